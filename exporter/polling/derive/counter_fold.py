"""Which (quota, project) groups of one target's counters keep a series of their own.

Counters (jobs started and finished, CU-share seconds) add up over the life of the process, so
unlike the gauges' fold they cannot be re-chosen at every poll: a count moved from one series
to another would read as a reset to ``rate()``. ``CounterFold`` is the one policy every family of
counters keyed by (quota, project) follows, fed one round (a good poll) at a time:

- **Bounded.** At most ``max_quotas`` quotas and, per quota, ``max_projects`` projects have
  series of their own. Counts of a project without a series go to ``(quota, "__other__")``,
  those of a quota without one to ``("__other__", "__other__")``: every sum stays exact. A target
  exports at most ``max_quotas * (max_projects + 1) + 1`` series per family.
- **Retention.** A series neither counted nor seen (its group in the round's ``present``) for
  ``retention`` seconds is dropped; its slot is free again. A group that comes back starts a
  new series at 0 (``rate()`` reads it as a counter reset).
- **Re-chosen on a slow schedule.** Every ``retention`` seconds, per quota, the projects that
  counted most since the last choice (``counts`` summed; ties: the named ones first, then the
  name) are the ones that should be named. A named project that is no longer among them is
  *frozen*: its series stays as it is, its new counts go to ``__other__``, until retention drops
  it (it holds its slot until then). A project that should be named gets a slot when one is free.
- **No count is lost to ``rate()``.** A group whose counts went to an ``__other__`` series gets
  its own series at the end of a round, at 0, and counts into it from the next round on; only a
  group never seen before, in a quota with no ``__other__`` series, counts into its new series
  at once (its first poll's counts are that series' first sample, as for any new counter).

Pure: time comes in as ``now``, nothing is read or written elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from exporter.config import Config
from exporter.polling.derive.aggregation import GroupKey
from exporter.polling.derive.project_fold import OTHER_PROJECT

# Not a valid MaxCompute quota or project name (those start with a letter): the gauges' word.
OTHER = OTHER_PROJECT
OTHER_GROUP = GroupKey(OTHER, OTHER)


@dataclass(frozen=True, slots=True)
class FoldLimits:
    """The configuration's limits of counter series (``metrics.max_quotas_per_target``,
    ``metrics.max_projects_per_quota``, ``metrics.counter_retention``): one ``CounterFold`` per
    target and family of counters is made from them."""

    max_quotas: int = 100
    max_projects: int = 500
    retention: float = 3600.0

    @classmethod
    def of(cls, config: Config) -> FoldLimits:
        """The limits ``config`` sets."""
        metrics = config.metrics
        return cls(metrics.max_quotas_per_target, metrics.max_projects_per_quota,
                   config.counter_retention)  # fmt: skip

    def fold(self) -> CounterFold:
        """A new, empty policy with these limits."""
        return CounterFold(self.max_quotas, self.max_projects, self.retention)

    @property
    def most_series(self) -> int:
        """The most series a target exports per family keyed by (quota, project)."""
        return self.max_quotas * (self.max_projects + 1) + 1


DEFAULT_FOLD_LIMITS = FoldLimits()


@dataclass(frozen=True, slots=True)
class FoldRound:
    """What one round decided: where each group's counts of this round go, and the series
    that exist after it (a family drops every other series and creates the missing ones at 0)."""

    routes: Mapping[GroupKey, GroupKey]
    series: frozenset[GroupKey]

    @property
    def quotas(self) -> frozenset[str]:
        """The quotas that have series (a per-quota family, such as a histogram, keeps these)."""
        return frozenset(key.quota for key in self.series)


@dataclass(slots=True)
class _Quota:
    """A quota with series: its named and frozen projects (each with the time it was last
    counted or seen), its ``__other__`` series' time, and what each project counted lately."""

    named: dict[str, float] = field(default_factory=dict)
    frozen: dict[str, float] = field(default_factory=dict)
    other: float | None = None
    activity: dict[str, float] = field(default_factory=dict)

    def full(self, max_projects: int) -> bool:
        return len(self.named) + len(self.frozen) >= max_projects

    def expire(self, oldest: float) -> None:
        self.named = {p: t for p, t in self.named.items() if t > oldest}
        self.frozen = {p: t for p, t in self.frozen.items() if t > oldest}
        if self.other is not None and self.other <= oldest:
            self.other = None

    @property
    def empty(self) -> bool:
        return not self.named and not self.frozen and self.other is None


def _ranked(activity: Mapping[str, float], incumbents: Iterable[str] = ()) -> list[str]:
    """Most counted first; ties: ``incumbents`` first, then the name."""
    keep = set(incumbents)
    return sorted(activity, key=lambda name: (-activity[name], name not in keep, name))


class CounterFold:
    """One target's naming policy for one or more counter families keyed by (quota, project).

    Call ``round`` once per good poll with the groups it saw and what each counted; count each
    group's increments under ``routes[group]``; keep exactly the ``series`` (see module doc).
    """

    def __init__(self, max_quotas: int, max_projects: int, retention: float) -> None:
        if max_quotas < 1 or max_projects < 1 or not retention > 0:
            raise ValueError("max_quotas and max_projects must be >= 1, retention > 0")
        self.max_quotas = max_quotas
        self.max_projects = max_projects
        self.retention = retention
        self._quotas: dict[str, _Quota] = {}
        self._other: float | None = None  # ("__other__", "__other__"): last counted
        self._folded_quotas: dict[str, float] = {}  # quotas without series: what they counted
        self._next_choice: float | None = None

    def round(
        self, now: float, present: Iterable[GroupKey], counts: Mapping[GroupKey, float]
    ) -> FoldRound:
        """One good poll at ``now`` (seconds): ``present``, the groups it saw (running jobs,
        holding CUs); ``counts``, what each group adds to the family this round (any number >= 0,
        also what the slow re-choice ranks by). Returns where each group's counts go and the
        series that exist after the round."""
        if self._next_choice is None:
            self._next_choice = now + self.retention
        self._expire(now - self.retention)
        present = set(present)
        groups = sorted(present | counts.keys(), key=lambda g: (-counts.get(g, 0), g))
        for group in groups:
            self._name_new(group, now)
        routes = {group: self._route(group) for group in groups}
        self._touch(now, counts, routes)
        if now >= self._next_choice:
            self._choose(now)
        self._fill(now, groups, present)
        if now >= self._next_choice:
            self._next_choice = now + self.retention
            self._folded_quotas.clear()
            for quota in self._quotas.values():
                quota.activity.clear()
        self._prune()
        return FoldRound(routes, self.series())

    def series(self) -> frozenset[GroupKey]:
        """Every series that exists now: named, frozen and ``__other__`` ones."""
        keys = {GroupKey(q, p) for q, s in self._quotas.items() for p in (*s.named, *s.frozen)}
        keys |= {GroupKey(q, OTHER) for q, s in self._quotas.items() if s.other is not None}
        if self._other is not None:
            keys.add(OTHER_GROUP)
        return frozenset(keys)

    def _expire(self, oldest: float) -> None:
        for name in list(self._quotas):
            self._quotas[name].expire(oldest)
            if self._quotas[name].empty:
                del self._quotas[name]
        if self._other is not None and self._other <= oldest:
            self._other = None

    def _name_new(self, group: GroupKey, now: float) -> None:
        """A group seen for the first time gets a series at once while nothing of its own
        was counted under ``__other__`` (no such series exists for its quota) and there is room."""
        if OTHER in (group.quota, group.project):
            return
        quota = self._quotas.get(group.quota)
        if quota is None:
            if self._other is not None or len(self._quotas) >= self.max_quotas:
                return
            quota = self._quotas[group.quota] = _Quota()
        known = group.project in quota.named or group.project in quota.frozen
        if not known and quota.other is None and not quota.full(self.max_projects):
            quota.named[group.project] = now

    def _route(self, group: GroupKey) -> GroupKey:
        quota = self._quotas.get(group.quota)
        if quota is None or group.quota == OTHER:
            return OTHER_GROUP
        if group.project in quota.named:
            return group
        return GroupKey(group.quota, OTHER)

    def _touch(
        self, now: float, counts: Mapping[GroupKey, float], routes: Mapping[GroupKey, GroupKey]
    ) -> None:
        """The series this round's groups go to live on; what each group counted is noted."""
        for group, series in routes.items():
            counted = counts.get(group, 0)
            # Every group of the round is seen or counted: the series it goes to lives on. So
            # an __other__ series exists, at 0, from the round that first sees a group folded
            # into it, and ``rate()`` sees its first increase.
            if series == OTHER_GROUP:
                self._other = now
                if group.quota != OTHER:
                    self._folded_quotas[group.quota] = (
                        self._folded_quotas.get(group.quota, 0) + counted
                    )
                continue
            quota = self._quotas[group.quota]
            if group.project != OTHER:
                quota.activity[group.project] = quota.activity.get(group.project, 0) + counted
            if series.project != OTHER:
                quota.named[group.project] = now
            else:
                quota.other = now

    def _choose(self, now: float) -> None:
        """The slow re-choice: per quota, named projects that counted least are frozen when
        others counted more; a frozen one that counted among the most is named again."""
        for quota in self._quotas.values():
            should = set(_ranked(quota.activity, quota.named)[: self.max_projects])
            rising = max((quota.activity[p] for p in should - quota.named.keys()), default=0)
            for project in [p for p in quota.named if p not in should]:
                if quota.activity.get(project, 0) < rising:
                    quota.frozen[project] = quota.named.pop(project)
                    # Its counts go to __other__ from the next round: that series exists.
                    quota.other = now
            for project in should & quota.frozen.keys():
                if len(quota.named) < self.max_projects:
                    quota.named[project] = quota.frozen.pop(project)

    def _fill(self, now: float, groups: list[GroupKey], present: set[GroupKey]) -> None:
        """Free slots go to the folded groups seen this round (in ``present``; not those only
        counted: their jobs are gone), most counted lately first: a series at 0 now, counted
        into from the next round."""
        seen: dict[str, set[str]] = {}
        for group in groups:
            if group in present and group.project != OTHER:
                seen.setdefault(group.quota, set()).add(group.project)
        waiting = {q: a for q, a in self._folded_quotas.items() if q in seen}
        named_now = _ranked(waiting)[: max(0, self.max_quotas - len(self._quotas))]
        for name in named_now:
            self._quotas[name] = _Quota()
            self._folded_quotas.pop(name)
        for name, projects in seen.items():
            quota = self._quotas.get(name)
            if quota is None:
                continue
            folded = projects - quota.named.keys() - quota.frozen.keys()
            free = max(0, self.max_projects - len(quota.named) - len(quota.frozen))
            for project in _ranked({p: quota.activity.get(p, 0) for p in folded})[:free]:
                quota.named[project] = now
        fresh = set(named_now)
        for group in groups:
            # What of this round a quota named now left unnamed counts under its __other__
            # from the next round: that series exists, at 0.
            if group.quota in fresh and group.project not in self._quotas[group.quota].named:
                self._quotas[group.quota].other = now

    def _prune(self) -> None:
        """What folded groups counted is kept for the best few only (bounded memory)."""
        if len(self._folded_quotas) > self.max_quotas:
            keep = _ranked(self._folded_quotas)[: self.max_quotas]
            self._folded_quotas = {name: self._folded_quotas[name] for name in keep}
        for quota in self._quotas.values():
            if len(quota.activity) > 2 * self.max_projects:
                keep = _ranked(quota.activity, quota.named)[: 2 * self.max_projects]
                keep_set = set(keep) | quota.named.keys()
                quota.activity = {p: quota.activity[p] for p in keep_set if p in quota.activity}
