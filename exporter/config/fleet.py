"""Many targets in one file: the mistakes only visible across targets.

Two kinds are errors (exit 2, one line each), because the exporter would publish wrong sums:

- **colliding labels**: two targets whose series would carry the same region and constant
  label values (a label set to '' is the same as a label not set), so two targets would write
  the same series;
- **duplicates**: the same region, endpoint, quotas, owners and credentials twice: the same
  jobs polled twice, every sum over targets doubled, and the API bill with it.

The same region, endpoint and filters with *different* credentials is only a warning
(``duplicate_warnings``): two accounts look exactly like that, and so do two RAM users of one
account, which the configuration cannot tell apart.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from exporter.config.model import Target
from exporter.config.values import ConfigError


class FleetConflicts(ConfigError):
    """Every conflict between targets; ``str()`` is one line per conflict."""

    def __init__(self, lines: tuple[str, ...]) -> None:
        super().__init__("targets", "")
        self.args = ("\n".join(lines),)
        self.lines = lines


def series_identity(target: Target, label_names: tuple[str, ...]) -> tuple[str, ...]:
    """What tells this target's series apart from another's: region and label values."""
    labels = dict(target.labels)
    return (target.region, *(labels.get(name, "") for name in label_names))


def read_identity(target: Target) -> tuple[Hashable, ...]:
    """What decides which jobs a poll reads, credentials aside (filters in any order)."""
    return (target.region, target.endpoint, frozenset(target.quotas), frozenset(target.owners))


def _pairs(
    targets: tuple[Target, ...], identity: Callable[[Target], Hashable]
) -> list[tuple[int, int]]:
    """(first index, later index) for each target whose identity an earlier one has."""
    first: dict[Hashable, int] = {}
    pairs = []
    for index, target in enumerate(targets):
        key = identity(target)
        if key in first:
            pairs.append((first[key], index))
        else:
            first[key] = index
    return pairs


def target_conflicts(targets: tuple[Target, ...]) -> tuple[str, ...]:
    """One line per pair of targets that collide or duplicate each other, in file order."""
    names = tuple(sorted({name for target in targets for name, _ in target.labels}))
    lines = [
        f"targets[{later}]: expected region and labels different from targets[{first}] "
        "(their series would be the same; add a label such as account to tell them apart)"
        for first, later in _pairs(targets, lambda t: series_identity(t, names))
    ]
    lines += [
        f"targets[{later}]: expected a target different from targets[{first}] (same region, "
        "endpoint, quotas, owners and credentials: the same jobs polled twice; remove one)"
        for first, later in _pairs(targets, lambda t: (read_identity(t), t.credentials))
    ]
    return tuple(lines)


def duplicate_warnings(targets: tuple[Target, ...]) -> tuple[str, ...]:
    """Targets reading the same jobs with other credentials: two accounts, or one twice."""
    duplicates = set(_pairs(targets, lambda t: (read_identity(t), t.credentials)))
    return tuple(
        f"targets[{later}]: same region, endpoint, quotas and owners as targets[{first}] with "
        "other credentials: if both are the same account, its jobs are polled and counted twice"
        for first, later in _pairs(targets, read_identity)
        if (first, later) not in duplicates
    )
