"""Jobs over time: the diff of two good polls, and the counters and histograms it becomes.

Given the jobs of successive polls of a target, these jobs started, these finished (and ran at
least this long), these slid out of the window and are not counted.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.metrics.job_changes import JobChangeMetrics
from exporter.polling.derive import job_changes as job_changes_module
from exporter.polling.derive.counter_fold import FoldLimits
from exporter.polling.derive.job_changes import (
    FinishedJob,
    JobTracker,
    SeenJobs,
    TrackedJob,
    UnseenJobs,
    job_changes,
)
from exporter.polling.derive.start_times import started_by
from tests.support.exposition import values_of
from tests.support.jobs import NOW, make_target

WINDOW = 3600
PROD = make_target(labels=(("account", "prod"),))


def job(instance_id: str, submitted: int, running: int, quota: str = "etl", project: str = "dw"):
    return RunningJob(instance_id, project, quota, 0.1, 0.1, 0.5, submitted, running)


def poll(at: int, *jobs: RunningJob) -> SeenJobs:
    """A good poll at ``at`` (its window's end) that saw ``jobs`` running."""
    return SeenJobs.of(TimeSlice(at - WINDOW, at), jobs)


def tracked(j: RunningJob) -> TrackedJob:
    return TrackedJob(j.quota, j.project, j.submitted_at, j.running_at)


STEADY = job("steady", NOW - 1000, NOW - 900)
ENDING = job("ending", NOW - 500, NOW - 400)
QUEUED = job("queued", NOW - 100, NOW + 30)  # submitted before the poll, ran 130 s later
FRESH = job("fresh", NOW + 40, NOW + 40)


def test_a_job_the_last_polls_count_said_was_there_unseen_did_not_start() -> None:
    burst = [job(f"b{n}", NOW - 300, NOW - 300) for n in range(5)]
    other = job("other", NOW - 300, NOW - 300, quota="adhoc")
    # The last poll's count of etl's part in that second said 2 more jobs than it showed.
    unseen = (UnseenJobs(TimeSlice(NOW - 300, NOW - 299), ("etl",), 2),)
    last = SeenJobs.of(TimeSlice(NOW - WINDOW, NOW), burst[:2], unseen=unseen)
    changes = job_changes(last, poll(NOW + 60, *burst, other))
    # Two of the three new etl jobs of that second were the unseen ones; adhoc's is no part.
    assert len(changes.started) == 2
    assert tracked(other) in changes.started
    assert changes.came_into_view == 2


def test_a_job_seen_for_the_first_time_started_and_its_queue_wait_is_known() -> None:
    changes = job_changes(poll(NOW, STEADY), poll(NOW + 60, STEADY, QUEUED, FRESH))
    assert sorted(changes.started, key=lambda j: j.submitted_at) == [
        tracked(QUEUED),
        tracked(FRESH),
    ]
    assert [j.queue_seconds for j in sorted(changes.started, key=lambda j: j.submitted_at)] == [
        130,
        0,
    ]
    assert changes.finished == ()
    assert (changes.aged_out, changes.came_into_view) == (0, 0)


def test_a_job_gone_within_the_window_finished_after_running_until_the_last_poll_saw_it() -> None:
    changes = job_changes(poll(NOW, STEADY, ENDING), poll(NOW + 60, STEADY))
    # Seen running by the poll at NOW, started at NOW - 400: it ran at least 400 s.
    assert changes.finished == (FinishedJob(tracked(ENDING), 400, "ending"),)
    assert changes.started == ()


def test_a_job_that_slid_out_of_the_window_did_not_finish() -> None:
    old = job("old", NOW - WINDOW + 10, NOW - WINDOW + 20)
    changes = job_changes(poll(NOW, old, STEADY), poll(NOW + 60, STEADY))
    # The new window starts at NOW + 60 - 3600, after "old" was submitted: out of view.
    assert changes.finished == ()
    assert changes.aged_out == 1


def test_a_job_submitted_before_the_last_window_came_into_view_and_did_not_start() -> None:
    last = SeenJobs.of(TimeSlice(NOW - 600, NOW), [STEADY])  # a short window at first
    older = job("older", NOW - 800, NOW - 700)
    changes = job_changes(last, poll(NOW + 60, STEADY, older))
    assert changes.started == ()
    assert changes.came_into_view == 1


def test_a_job_start_time_before_its_submission_waited_zero_seconds() -> None:
    odd = job("odd", NOW + 10, NOW + 5)
    assert job_changes(poll(NOW), poll(NOW + 60, odd)).started[0].queue_seconds == 0


def test_the_first_good_poll_after_start_is_a_baseline() -> None:
    tracker = JobTracker()
    assert tracker.observe(PROD, poll(NOW, STEADY, ENDING)) is None
    changes = tracker.observe(PROD, poll(NOW + 60, STEADY, FRESH))
    assert changes is not None
    assert (len(changes.started), len(changes.finished)) == (1, 1)
    # The two running, and the one counted finished (remembered while in the window).
    assert tracker.tracked() == 3


def test_a_failed_poll_between_two_good_ones_changes_nothing() -> None:
    # A failed poll is never handed up: the poll at NOW + 120 is compared with the one at NOW.
    tracker = JobTracker()
    tracker.observe(PROD, poll(NOW, STEADY, ENDING))
    changes = tracker.observe(PROD, poll(NOW + 120, STEADY, FRESH))
    assert changes is not None
    assert changes.started == (tracked(FRESH),)
    # Run time from the last poll that saw it, at NOW: off by the time up to the next good one.
    assert changes.finished == (FinishedJob(tracked(ENDING), 400, "ending"),)


def test_a_target_whose_filters_changed_on_reload_starts_from_a_baseline() -> None:
    tracker = JobTracker()
    tracker.observe(PROD, poll(NOW, STEADY, ENDING))
    narrowed = make_target(labels=(("account", "prod"),), quotas=("etl",))
    assert tracker.observe(narrowed, poll(NOW + 60, STEADY)) is None
    # The old target's state is not what the new one is compared with.
    changes = tracker.observe(narrowed, poll(NOW + 120, STEADY, FRESH))
    assert changes is not None
    assert changes.started == (tracked(FRESH),) and changes.finished == ()


def exposition(metrics: JobChangeMetrics) -> str:
    registry = CollectorRegistry()
    registry.register(metrics)
    return generate_latest(registry).decode()


def labels(quota: str, project: str | None = None) -> tuple:
    pairs = {"account": "prod", "quota": quota, "region": "cn-hangzhou"}
    if project is not None:
        pairs["project"] = project
    return tuple(sorted(pairs.items()))


def bucket(quota: str, le: str) -> tuple:
    return tuple(sorted((*labels(quota), ("le", le))))


def test_counters_and_histograms_after_a_baseline_and_two_polls() -> None:
    metrics = JobChangeMetrics(("account",), 60.0, (60.0, 600.0), (300.0, 3600.0))
    window = TimeSlice(NOW - WINDOW, NOW)
    ad_hoc = job("adhoc", NOW - 50, NOW - 40, quota="adhoc", project="bi")
    metrics.poll_published(PROD, window, [STEADY, ENDING, ad_hoc])
    text = exposition(metrics)
    # The baseline counts nothing, but its groups' series exist at 0 for rate().
    assert values_of(text, "maxcompute_jobs_started_total") == {
        labels("etl", "dw"): 0.0,
        labels("adhoc", "bi"): 0.0,
    }
    assert values_of(text, "maxcompute_job_queue_wait_seconds_count")[labels("etl")] == 0.0
    metrics.poll_published(PROD, TimeSlice(NOW + 60 - WINDOW, NOW + 60), [STEADY, QUEUED, FRESH])
    metrics.poll_published(PROD, TimeSlice(NOW + 120 - WINDOW, NOW + 120), [QUEUED, FRESH])
    text = exposition(metrics)
    assert values_of(text, "maxcompute_jobs_started_total") == {
        labels("etl", "dw"): 2.0,
        labels("adhoc", "bi"): 0.0,
    }
    assert values_of(text, "maxcompute_jobs_finished_total") == {
        labels("etl", "dw"): 2.0,
        labels("adhoc", "bi"): 1.0,
    }
    # Waits 130 and 0; runs: ENDING 400 s and ad_hoc 40 s (seen at NOW), STEADY 960 s (NOW + 60).
    assert values_of(text, "maxcompute_job_queue_wait_seconds_bucket") == {
        bucket("etl", "60.0"): 1.0,
        bucket("etl", "600.0"): 2.0,
        bucket("etl", "+Inf"): 2.0,
        bucket("adhoc", "60.0"): 0.0,
        bucket("adhoc", "600.0"): 0.0,
        bucket("adhoc", "+Inf"): 0.0,
    }
    assert values_of(text, "maxcompute_job_queue_wait_seconds_sum")[labels("etl")] == 130.0
    assert values_of(text, "maxcompute_job_run_seconds_bucket")[bucket("etl", "300.0")] == 0.0
    assert values_of(text, "maxcompute_job_run_seconds_bucket")[bucket("etl", "3600.0")] == 2.0
    assert values_of(text, "maxcompute_job_run_seconds_sum") == {
        labels("etl"): 1360.0,
        labels("adhoc"): 40.0,
    }
    assert values_of(text, "maxcompute_job_run_seconds_count") == {
        labels("etl"): 2.0,
        labels("adhoc"): 1.0,
    }
    # Two running, three counted finished (remembered while in the window, see below).
    assert metrics.tracked_jobs == 5


def test_an_observation_equal_to_a_bound_is_in_that_bucket() -> None:
    metrics = JobChangeMetrics((), 60.0, (60.0,), (300.0,))
    target = make_target()
    metrics.poll_published(target, TimeSlice(NOW - WINDOW, NOW), [])
    waited = job("w", NOW - 10, NOW + 50)
    metrics.poll_published(target, TimeSlice(NOW + 60 - WINDOW, NOW + 60), [waited])
    buckets = values_of(exposition(metrics), "maxcompute_job_queue_wait_seconds_bucket")
    assert buckets[(("le", "60.0"), ("quota", "etl"), ("region", "cn-hangzhou"))] == 1.0


def test_a_reload_hands_the_tracker_on_and_the_new_counters_count_from_zero() -> None:
    tracker = JobTracker()
    ending = job("ending", NOW - 500, NOW - 400, project="bi")
    before = JobChangeMetrics(("account",), 60.0, (60.0,), (300.0,), tracker)
    before.poll_published(PROD, TimeSlice(NOW - WINDOW, NOW), [STEADY, ending])
    # The reload: the new configuration keeps PROD; new counters, the same tracker.
    tracker.retain([PROD, make_target(region="cn-shanghai")])
    after = JobChangeMetrics(("account",), 60.0, (60.0,), (300.0,), tracker)
    after.poll_published(PROD, TimeSlice(NOW + 60 - WINDOW, NOW + 60), [STEADY, FRESH])
    text = exposition(after)
    # The first poll after the reload is compared with the last before it, not a baseline;
    # the finished job's group was in no poll the new counters saw, its series exist anyway.
    assert values_of(text, "maxcompute_jobs_finished_total") == {
        labels("etl", "dw"): 0.0,
        labels("etl", "bi"): 1.0,
    }
    assert values_of(text, "maxcompute_jobs_started_total")[labels("etl", "dw")] == 1.0
    # A target the new configuration does not have is forgotten.
    tracker.retain([])
    assert after.tracked_jobs == 0


def test_counters_of_projects_past_the_limit_count_as_other() -> None:
    """Per quota, ``max_projects`` projects keep counters of their own (the rest of the policy,
    retention and re-choice, is ``CounterFold``'s: tests/unit/test_counter_fold.py)."""
    limits = FoldLimits(max_quotas=10, max_projects=2, retention=3600)
    metrics = JobChangeMetrics((), 60.0, (60.0,), (300.0,), limits=limits)
    window = TimeSlice(NOW - WINDOW, NOW)
    first = [job(f"j{n}", NOW - 50, NOW - 40, quota="etl", project=f"p{n}") for n in (1, 2, 3)]
    metrics.poll_published(PROD, window, first)
    later = TimeSlice(NOW + 60 - WINDOW, NOW + 60)
    new = [job(f"k{n}", NOW + 10, NOW + 20, quota="etl", project=f"p{n}") for n in (1, 3, 4)]
    metrics.poll_published(PROD, later, [*first, *new])
    started = values_of(exposition(metrics), "maxcompute_jobs_started_total")
    assert {dict(key)["project"]: value for key, value in started.items()} == {
        "p1": 1.0,
        "p2": 0.0,
        "__other__": 2.0,  # p3 (seen third) and p4
    }


def test_a_job_counted_finished_and_seen_again_reappeared_and_is_counted_once() -> None:
    """Issue 23, row 15: present, absent, present... is one start and one finish."""
    tracker, flap = JobTracker(), job("flap", NOW - 50, NOW - 40)
    tracker.observe(PROD, poll(NOW, STEADY))
    changes = [tracker.observe(PROD, poll(NOW + 2 * n, STEADY, *[flap] * (n % 2))) for n in (1, 2)]
    changes += [tracker.observe(PROD, poll(NOW + 2 * n, STEADY, *[flap] * (n % 2))) for n in (3, 4)]
    assert [len(c.started) for c in changes] == [1, 0, 0, 0]
    assert [len(c.finished) for c in changes] == [0, 1, 0, 0]
    assert [c.reappeared for c in changes] == [(), (), (tracked(flap),), ()]
    # Once its submission is out of the window it cannot come back: forgotten.
    assert tracker.tracked() == 2
    tracker.observe(PROD, poll(NOW - 50 + WINDOW + 1, STEADY))
    assert tracker.tracked() == 1


def test_the_jobs_remembered_as_finished_are_bounded_oldest_forgotten_first(monkeypatch) -> None:
    monkeypatch.setattr(job_changes_module, "MAX_FINISHED_REMEMBERED", 2)
    tracker = JobTracker()
    ended = [job(f"e{n}", NOW - 50, NOW - 40) for n in range(3)]
    tracker.observe(PROD, poll(NOW, *ended))
    tracker.observe(PROD, poll(NOW + 60))
    assert tracker.tracked() == 2
    back = tracker.observe(PROD, poll(NOW + 120, *ended))
    assert back is not None
    # Which one was forgotten depends on set order; it counts as a start, the others reappear.
    assert (len(back.started), len(back.reappeared)) == (1, 2)


def test_a_start_after_the_poll_time_is_clamped_to_it_and_the_rest_kept_as_they_are() -> None:
    early, late = job("early", NOW - 10, NOW - 5), job("late", NOW - 5, NOW + 250)
    clamped = list(started_by([early, late], NOW))
    assert clamped[0] is early
    assert (clamped[1].instance_id, clamped[1].running_at) == ("late", NOW)
    assert tracked(clamped[1]).queue_seconds == 5
