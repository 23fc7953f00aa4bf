"""Reading an exposition the way Prometheus does: prometheus_client's own text parser."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def samples(text: str) -> Iterator[Sample]:
    """Every sample of the exposition ``text``, in order."""
    for family in text_string_to_metric_families(text):
        yield from family.samples


def values(text: str) -> dict[tuple, float]:
    """(sample name, *sorted label pairs) -> value, for every sample."""
    return {(s.name, *sorted(s.labels.items())): s.value for s in samples(text)}


def values_of(text: str, name: str) -> dict[tuple, float]:
    """sorted label pairs -> value, for the samples named ``name``."""
    return {tuple(sorted(s.labels.items())): s.value for s in samples(text) if s.name == name}
