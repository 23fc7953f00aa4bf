"""Hostile job records: names that cannot be rendered and absurd shares are skipped and counted,
and /metrics never fails as a whole."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.registry import Collector

from exporter.api.wire.jobs import MAX_SNAPSHOT_SHARE, parse_job
from exporter.demo.simulator import ApiSimulator
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.derive.aggregation import aggregate
from exporter.polling.publish.snapshot import Snapshot, SnapshotStore
from tests.support.jobs import NOW, job_record, make_target
from tests.support.stack import JOBS, KEY, Stack
from tests.support.stack import NOW as REAL_NOW

GOOD = job_record("job-1")


@pytest.mark.parametrize("key", ["instanceId", "project", "quotaNickname"])
@pytest.mark.parametrize("bad", ["bad\ud800", "\udfff", "a\rb", "a\nb", "nul\x00", "c1\x85"])
def test_a_name_that_cannot_be_rendered_skips_the_record(key: str, bad: str) -> None:
    assert parse_job({**GOOD, key: bad}, NOW) is None


def test_non_ascii_names_are_kept() -> None:
    assert parse_job({**GOOD, "quotaNickname": "配额-é"}, NOW).quota == "配额-é"


@pytest.mark.parametrize("key", ["cuSnapshot", "memorySnapshot"])
@pytest.mark.parametrize("bad", [1e308, 100.0001, 10**400])
def test_an_absurd_share_skips_the_record(key: str, bad: float) -> None:
    assert parse_job({**GOOD, key: bad}, NOW) is None


@pytest.mark.parametrize("key", ["cuSnapshot", "memorySnapshot"])
def test_a_share_up_to_the_bound_is_kept(key: str) -> None:
    job = parse_job({**GOOD, key: MAX_SNAPSHOT_SHARE}, NOW)
    assert (job.cu_snapshot if key == "cuSnapshot" else job.memory_snapshot) == 100.0


@pytest.fixture
async def hostile_stack() -> Iterator[Stack]:
    times = {"submitted": REAL_NOW - 60, "running": REAL_NOW - 30}
    hostile = [
        job_record("x-surrogate", project="sales", quota="bad\ud800", **times),
        job_record("x-cu", project="sales", quota="etl", cu=1e308, **times),
        job_record("x-memory", project="sales", quota="etl", memory=1e308, **times),
    ]
    simulator = ApiSimulator(
        JOBS + hostile, credentials={KEY.access_key_id: (KEY.access_key_secret, None)}
    )
    simulator.start()
    stack = Stack(simulator)
    yield stack
    await stack.poller.aclose()
    simulator.stop()


async def test_hostile_records_are_counted_and_the_rest_is_served(hostile_stack: Stack) -> None:
    assert await hostile_stack.poller.poll()
    values = hostile_stack.scrape()
    assert values[("maxcompute_exporter_invalid_jobs_total",)] == 3
    assert values[("maxcompute_up",)] == 1
    # Exactly the 50 good jobs, and finite sums: 30 x 0.015625 and 20 x 0.0078125.
    assert values[("maxcompute_running_jobs", "sales")] == 30
    assert values[("maxcompute_running_jobs_cu_ratio", "sales")] == 0.46875
    assert values[("maxcompute_running_jobs_memory_ratio", "sales")] == 0.9375
    assert values[("maxcompute_running_jobs_cu_ratio", "ads")] == 0.15625


async def test_a_record_submitted_outside_the_slice_asked_for_is_skipped_not_the_poll() -> None:
    simulator = ApiSimulator(JOBS, credentials={KEY.access_key_id: (KEY.access_key_secret, None)})
    honest = simulator.state.matching
    # A hostile API: the newest slice's answer also holds a job "submitted" in the year 2286.
    far_future = job_record("x-future", project="sales", quota="etl", submitted=9_999_999_999)

    def lying(start: int, end: int, owners: frozenset, quotas: frozenset) -> list[dict]:
        listed = honest(start, end, owners, quotas)
        return [*listed, far_future] if end >= REAL_NOW - 10 else listed

    simulator.state.matching = lying  # type: ignore[method-assign]
    simulator.start()
    stack = Stack(simulator)
    # Windows end 5 s before the wall clock, so the record's time, clamped to the time of the
    # answer, always lies past the end of the slice asked for.
    stack.clock.offset = -5.0
    try:
        for _ in range(2):  # the first poll's survey, then a planned poll: both publish
            assert await stack.poller.poll()
        values = stack.scrape()
    finally:
        await stack.poller.aclose()
        simulator.stop()
    assert values[("maxcompute_up",)] == 1
    assert values[("maxcompute_exporter_invalid_jobs_total",)] == 2  # once per poll
    assert values[("maxcompute_running_jobs", "sales")] == 30
    assert values[("maxcompute_running_jobs", "ads")] == 20
    assert values[("maxcompute_exporter_slice_rereads_total",)] == 0


PROD = make_target(labels=(("account", "prod"),))
TEST = make_target(labels=(("account", "test"),))


def renderer_for(store: SnapshotStore) -> tuple[MetricsRenderer, ExporterMetrics]:
    metrics = ExporterMetrics(store, (PROD, TEST), ("account",), 60.0, process_metrics=False)
    return MetricsRenderer(store, metrics), metrics


def test_a_group_that_slipped_through_is_left_out_not_the_scrape() -> None:
    store = SnapshotStore((PROD, TEST))
    good = aggregate([parse_job(job_record("g1", quota="q", project="p"), NOW)])
    store.publish_success(PROD, Snapshot(good.groups, 1, completed_at=NOW))
    bad_job = parse_job(job_record("b1", quota="q", project="p"), NOW)
    slipped = aggregate([bad_job])
    (group,) = slipped.groups.values()
    key = type(next(iter(slipped.groups)))("q\ud800", "p")
    store.publish_success(TEST, Snapshot({key: group}, 1, completed_at=NOW))
    renderer, _ = renderer_for(store)
    text = renderer.render().decode()
    assert (
        'maxcompute_running_jobs{account="prod",project="p",quota="q",region="cn-hangzhou"} 1.0'
        in text
    )
    assert 'maxcompute_running_jobs{account="test"' not in text
    assert 'maxcompute_up{account="test",region="cn-hangzhou"} 1.0' in text


class BrokenCollector(Collector):
    def collect(self) -> Iterator:
        raise RuntimeError("a bug in a collector")

    def families_for(self, statuses) -> list:
        raise RuntimeError("a bug in a collector")

    def describe(self) -> Iterator:
        return iter(())


def test_a_job_rendering_failure_still_serves_the_self_metrics(caplog) -> None:
    store = SnapshotStore((PROD, TEST))
    metrics = ExporterMetrics(store, (PROD, TEST), ("account",), 60.0, process_metrics=False)
    metrics.job_collectors += (BrokenCollector(),)
    renderer = MetricsRenderer(store, metrics)
    text = renderer.render().decode()
    assert "maxcompute_running_jobs" not in text
    assert 'maxcompute_up{account="prod",region="cn-hangzhou"} 0.0' in text
    assert "rendering the job metrics failed: serving the exporter's own only" in caplog.text
    assert renderer.render_gzip()
