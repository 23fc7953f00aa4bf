"""One naming policy for every counter family keyed by (quota, project): bounded in quotas and
projects, series dropped after a retention, the named projects re-chosen on a slow schedule,
and every count seen by ``rate()`` across the changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.config import parse_config
from exporter.polling.derive.aggregation import GroupKey
from exporter.polling.derive.counter_fold import (
    OTHER,
    OTHER_GROUP,
    CounterFold,
    FoldLimits,
    FoldRound,
)

G = GroupKey


class Family:
    """A counter family as the metrics keep one: values per series, synced with each round;
    and what a Prometheus scraping after every round would see as increase (a series' first
    sample adds nothing, a fall is a reset)."""

    def __init__(self, fold: CounterFold) -> None:
        self.fold = fold
        self.values: dict[GroupKey, float] = {}
        self.scraped: dict[GroupKey, float] = {}
        self.seen_by_rate = 0.0
        self.counted = 0.0

    def round(self, now: float, present, counts) -> FoldRound:
        result = self.fold.round(now, present, counts)
        for group, amount in counts.items():
            series = result.routes[group]
            self.values[series] = self.values.get(series, 0) + amount
            self.counted += amount
        self.values = {key: self.values.get(key, 0) for key in result.series}
        for key, value in self.values.items():
            last = self.scraped.get(key)
            if last is not None:
                self.seen_by_rate += value - last if value >= last else value
        self.scraped = dict(self.values)
        return result


def test_the_first_round_names_every_group_with_room_and_the_rest_go_to_other() -> None:
    fold = CounterFold(max_quotas=2, max_projects=2, retention=600)
    present = [G("q1", "a"), G("q1", "b"), G("q1", "c"), G("q2", "x"), G("q3", "y")]
    result = fold.round(0, present, {})
    assert result.routes == {
        G("q1", "a"): G("q1", "a"),
        G("q1", "b"): G("q1", "b"),
        G("q1", "c"): G("q1", OTHER),
        G("q2", "x"): G("q2", "x"),
        G("q3", "y"): OTHER_GROUP,
    }
    assert result.series == {G("q1", "a"), G("q1", "b"), G("q1", OTHER), G("q2", "x"), OTHER_GROUP}
    assert result.quotas == {"q1", "q2", OTHER}


def test_a_group_named_like_the_fold_is_always_folded() -> None:
    fold = CounterFold(max_quotas=5, max_projects=5, retention=600)
    result = fold.round(0, [G("q", OTHER), G(OTHER, "p"), G("q", "real")], {})
    assert result.routes == {
        G("q", OTHER): G("q", OTHER),
        G(OTHER, "p"): OTHER_GROUP,
        G("q", "real"): G("q", "real"),
    }


def test_a_group_gone_for_the_retention_is_dropped_and_comes_back_from_zero() -> None:
    family = Family(CounterFold(max_quotas=10, max_projects=10, retention=300))
    family.round(0, [G("q", "a"), G("q", "b")], {})
    family.round(60, [G("q", "a"), G("q", "b")], {G("q", "b"): 3})
    family.round(120, [G("q", "a")], {})
    family.round(359, [G("q", "a")], {})  # b last seen at 60: 299 s ago, still kept
    assert family.values == {G("q", "a"): 0, G("q", "b"): 3}
    family.round(360, [G("q", "a")], {})  # 300 s: dropped
    assert family.values == {G("q", "a"): 0}
    family.round(420, [G("q", "a"), G("q", "b")], {})
    assert family.values == {G("q", "a"): 0, G("q", "b"): 0}


def test_quota_names_that_change_every_round_hold_a_bounded_number_of_series() -> None:
    """Row 4 of issue 23: 1 000 rounds of 100 new quotas each (a renaming service)."""
    family = Family(CounterFold(max_quotas=100, max_projects=5, retention=3600))
    most, last = 0, []
    for n in range(1000):
        quotas = [G(f"r{n}q{k}", f"p{k % 7}") for k in range(100)]
        # Each round the last round's jobs finish (counted) and new ones run.
        family.round(n * 60, quotas, {group: 1 for group in last})
        most, last = max(most, len(family.values)), quotas
    # At most 100 quotas (with one project each here) plus the one folded series.
    assert most == 101
    assert family.counted == 99_900
    assert family.seen_by_rate == 99_900


def test_a_project_created_later_gets_its_own_series_once_an_old_one_is_gone() -> None:
    """Row 5 of issue 23: the named set is not fixed at the first projects seen."""
    family = Family(CounterFold(max_quotas=10, max_projects=2, retention=3600))
    old, new = [G("q", "old1"), G("q", "old2")], [G("q", "old1"), G("q", "new")]
    family.round(0, old, {})
    family.round(60, [G("q", "old1")], {G("q", "old2"): 1})  # old2's last job ends
    # "new" runs jobs; until old2's retention ends, new is folded.
    family.round(120, new, {})
    family.round(180, new, {G("q", "new"): 4})
    assert family.values == {G("q", "old1"): 0, G("q", "old2"): 1, G("q", OTHER): 4}
    result = family.round(3660, new, {G("q", "new"): 2})
    # old2 (last counted at 60 s) dropped: new is named at 0; its counts of this round go to
    # __other__ (where they were going), from the next round to its own series.
    assert result.routes[G("q", "new")] == G("q", OTHER)
    assert family.values == {G("q", "old1"): 0, G("q", "new"): 0, G("q", OTHER): 6}
    family.round(3720, new, {G("q", "new"): 5})
    assert family.values == {G("q", "old1"): 0, G("q", "new"): 5, G("q", OTHER): 6}
    assert family.seen_by_rate == family.counted == 12
    # A project created next week, when nothing holds its slot, is named at first sight.
    family.round(7 * 86400, [G("q", "next_week")], {})
    assert family.values == {G("q", "next_week"): 0}


def test_the_slow_re_choice_freezes_the_quiet_project_and_names_the_busy_one() -> None:
    family = Family(CounterFold(max_quotas=10, max_projects=2, retention=600))
    groups = [G("q", "a"), G("q", "b"), G("q", "busy")]
    family.round(0, groups, {})  # a and b named (by name), busy folded
    for n in range(1, 11):  # busy counts 3 a round, a 1, b nothing: all still running
        family.round(n * 60, groups, {G("q", "busy"): 3, G("q", "a"): 1})
    # At 600 s the re-choice: b is frozen (kept as it is, holding its slot until retention).
    assert family.values == {G("q", "a"): 10, G("q", "b"): 0, G("q", OTHER): 30}
    busy_a_b = {G("q", "busy"): 3, G("q", "a"): 2, G("q", "b"): 1}
    for n in range(11, 21):
        family.round(n * 60, groups, busy_a_b)
    # b was last counted or seen under its name at 600 s; it counted into __other__ since, and
    # at 1200 s (600 s later) its series is dropped and busy is named, at 0.
    assert family.values == {G("q", "a"): 30, G("q", "busy"): 0, G("q", OTHER): 70}
    family.round(21 * 60, groups, busy_a_b)
    assert family.values == {G("q", "a"): 32, G("q", "busy"): 3, G("q", OTHER): 71}
    assert family.seen_by_rate == family.counted == 106


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_quotas and max_projects must be >= 1"):
        CounterFold(max_quotas=0, max_projects=1, retention=60)
    with pytest.raises(ValueError, match="retention > 0"):
        CounterFold(max_quotas=1, max_projects=1, retention=0)


GROUPS = [G(f"q{q}", f"p{p}") for q in range(4) for p in range(5)] + [G("q0", OTHER)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 400),  # seconds since the last round
            st.sets(st.sampled_from(GROUPS)),  # seen
            st.dictionaries(st.sampled_from(GROUPS), st.integers(0, 5)),  # counted
        ),
        max_size=40,
    ),
    st.integers(1, 3),
    st.integers(1, 3),
)
def test_series_stay_bounded_and_rate_sees_every_count_of_a_group_seen_before(
    rounds, max_quotas, max_projects
) -> None:
    limits = FoldLimits(max_quotas, max_projects, retention=300)
    family = Family(limits.fold())
    now, last_present, last_now = 0, set(), 0
    for gap, present, counts in rounds:
        now += gap
        # As in the job diff: a group counts only if the round before saw it (a finish) or
        # this round and the last one did (a start in a group that had jobs running).
        counts = {g: n for g, n in counts.items() if g in last_present and now - last_now < 300}
        family.round(now, present, counts)
        assert len(family.values) <= limits.most_series
        assert len({key.quota for key in family.values}) <= max_quotas + 1
        assert all(
            len([k for k in family.values if k.quota == q]) <= max_projects + 1
            for q in {k.quota for k in family.values}
        )
        last_present, last_now = present | counts.keys(), now
    assert family.seen_by_rate == family.counted


def test_the_limits_come_from_the_configuration() -> None:
    config = parse_config(
        {"targets": [{"region": "cn-beijing"}],
         "metrics": {"max_quotas_per_target": 7, "max_projects_per_quota": 3}},
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIx", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"},
    )  # fmt: skip
    assert FoldLimits.of(config) == FoldLimits(7, 3, 3600.0)
    assert FoldLimits.of(config).most_series == 7 * 4 + 1
