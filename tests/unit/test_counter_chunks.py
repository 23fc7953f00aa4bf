"""The counters of jobs over time and consumption, rendered a target at a time.

Each target's counter samples are rendered once when its poll is published; a scrape stitches
them and renders none, and the stitched bytes are what one render of all the counters writes,
across targets, after a reload's retain and with the owner view on.
"""

from __future__ import annotations

import gzip

from prometheus_client import generate_latest

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.metrics.counter_chunks import stitched
from exporter.metrics.registries import ConsumptionOptions, ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.publish.snapshot import SnapshotStore
from tests.support.exposition import values_of
from tests.support.jobs import NOW, make_target

PROD = make_target(labels=(("account", "prod"),))
OTHER = make_target(labels=(("account", "other"),))
STARTED = "maxcompute_jobs_started_total"
CU = "maxcompute_cu_share_seconds_total"


def job(instance_id: str, quota: str = "etl", project: str = "dw") -> RunningJob:
    return RunningJob(instance_id, project, quota, 0.5, 0.25, 0.5, NOW - 910, NOW - 900)


def fleet() -> tuple[SnapshotStore, ExporterMetrics, MetricsRenderer]:
    store = SnapshotStore((PROD, OTHER))
    metrics = ExporterMetrics(
        store, (PROD, OTHER), ("account",), 60.0, process_metrics=False,
        consumption=ConsumptionOptions(owners=True),
    )  # fmt: skip
    return store, metrics, MetricsRenderer(store, metrics)


def poll(metrics: ExporterMetrics, target, minute: int, *jobs: RunningJob) -> None:
    window = TimeSlice(NOW - 3600 + 60 * minute, NOW + 60 * minute)
    metrics.polls.poll_published(target, window, iter(jobs))


def counters_text(metrics: ExporterMetrics) -> bytes:
    return b"".join(chunk.plain for chunk in stitched(metrics.counter_collectors))


def renders(metrics: ExporterMetrics) -> tuple[int, ...]:
    return tuple(collector.chunks.renders for collector in metrics.counter_collectors)


def test_the_stitched_counters_are_what_one_render_of_all_writes() -> None:
    _, metrics, renderer = fleet()
    assert counters_text(metrics) == generate_latest(metrics.counter_registry)  # headers only
    poll(metrics, PROD, 0, job("a"), job("b", project="p2"))
    poll(metrics, OTHER, 0, job("c", quota="q2"))
    poll(metrics, PROD, 1, job("b", project="p2"), job("d"), job("e", quota="q3"))
    poll(metrics, OTHER, 1)
    stitched_text = counters_text(metrics)
    assert stitched_text == generate_latest(metrics.counter_registry)
    prod = (("account", "prod"), ("region", "cn-hangzhou"))
    assert values_of(stitched_text.decode(), STARTED) == {
        (*prod[:1], ("project", "dw"), ("quota", "etl"), prod[1]): 1.0,
        (*prod[:1], ("project", "p2"), ("quota", "etl"), prod[1]): 0.0,
        (*prod[:1], ("project", "dw"), ("quota", "q3"), prod[1]): 1.0,
        (("account", "other"), ("project", "dw"), ("quota", "q2"), prod[1]): 0.0,
    }
    body = renderer.render()
    jobs = b"".join(renderer.job_exposition())
    assert body == jobs + stitched_text + generate_latest(metrics.self_registry)
    assert gzip.decompress(renderer.render_gzip()) == body


def test_a_scrape_renders_no_counters_and_a_poll_renders_only_its_target() -> None:
    _, metrics, renderer = fleet()
    poll(metrics, PROD, 0, job("a"))
    poll(metrics, OTHER, 0, job("c", quota="q2"))
    assert renders(metrics) == (2, 2)  # jobs over time, consumption: one per target each
    first = renderer.render()
    for _ in range(3):
        assert renderer.render() == first
        gzip.decompress(renderer.render_gzip())
    assert renders(metrics) == (2, 2)
    poll(metrics, PROD, 1, job("a"), job("b"))
    assert renders(metrics) == (3, 3)
    body = renderer.render()
    assert body != first
    assert b'maxcompute_jobs_started_total{account="prod",project="dw",quota="etl"' in body
    assert counters_text(metrics) in body
    assert renders(metrics) == (3, 3)


def test_a_reload_that_drops_a_target_drops_its_rendered_counters() -> None:
    _, metrics, renderer = fleet()
    poll(metrics, PROD, 0, job("a"))
    poll(metrics, OTHER, 0, job("c", quota="q2"))
    poll(metrics, OTHER, 1, job("c", quota="q2"))
    before = renderer.render()
    assert b'account="other"' in counters_text(metrics)
    metrics.job_changes.retain((PROD,))
    metrics.consumption.retain((PROD,))
    assert b'account="other"' not in counters_text(metrics)
    assert counters_text(metrics) == generate_latest(metrics.counter_registry)
    after = renderer.render()
    assert after != before
    assert counters_text(metrics) in after
    assert values_of(counters_text(metrics).decode(), CU) == {
        (("account", "prod"), ("project", "dw"), ("quota", "etl"), ("region", "cn-hangzhou")): 0.0
    }
