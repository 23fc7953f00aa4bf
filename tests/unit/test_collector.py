"""Given a published snapshot, /metrics shows exactly these lines."""

from __future__ import annotations

from exporter.api.errors import REASONS
from exporter.metrics.collectors import JobMetricsCollector
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.publish.snapshot import SnapshotStore
from tests.support.exposition import values_of as samples
from tests.support.jobs import NOW, job_record, make_target
from tests.support.jobs import snapshot_of as snapshot

PROD = make_target(labels=(("account", "prod"),))
OTHER = make_target(region="cn-shanghai")


def render(store: SnapshotStore, targets=(PROD, OTHER)) -> str:
    metrics = ExporterMetrics(store, targets, ("account",), 60.0, process_metrics=False)
    return MetricsRenderer(store, metrics).render().decode()


def test_job_metrics_lines_for_a_known_snapshot() -> None:
    store = SnapshotStore((PROD, OTHER))
    store.publish_success(
        PROD,
        snapshot(
            job_record(
                "a", cu=0.25, memory=0.125, progress=0.5, submitted=NOW - 900, running=NOW - 600
            ),
            job_record(
                "b", cu=0.5, memory=0.25, progress=0.0, submitted=NOW - 700, running=NOW - 400
            ),
        ),
    )
    text = render(store)
    group = (
        ("account", "prod"),
        ("project", "sales_dw"),
        ("quota", "etl_quota"),
        ("region", "cn-hangzhou"),
    )
    prod = (("account", "prod"), ("region", "cn-hangzhou"))
    shanghai = (("account", ""), ("region", "cn-shanghai"))
    expected = {
        "maxcompute_running_jobs": {group: 2},
        "maxcompute_running_jobs_cu_ratio": {group: 0.75},
        "maxcompute_running_jobs_memory_ratio": {group: 0.375},
        "maxcompute_running_jobs_progress_sum_ratio": {group: 0.5},
        "maxcompute_running_jobs_oldest_start_timestamp_seconds": {group: NOW - 600},
        "maxcompute_running_jobs_max_queue_seconds": {group: 300},
        "maxcompute_running_jobs_zero_progress": {group: 1},
        "maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds": {group: NOW - 400},
        "maxcompute_up": {prod: 1, shanghai: 0},
        "maxcompute_exporter_last_success_timestamp_seconds": {prod: NOW},
        "maxcompute_exporter_build_info": {(("version", "0.1.0"),): 1},
        "maxcompute_exporter_invalid_jobs_total": {prod: 0, shanghai: 0},
    }
    for name, values in expected.items():
        assert samples(text, name) == values, name
    errors = samples(text, "maxcompute_exporter_poll_errors_total")
    assert len(errors) == 2 * len(REASONS)
    assert set(errors.values()) == {0}
    assert "_created" not in text
    # A target that never succeeded has no job series and no last-success timestamp.
    assert 'region="cn-shanghai",project' not in text
    assert not samples(text, "maxcompute_exporter_last_success_timestamp_seconds").get(
        (("account", ""), ("region", "cn-shanghai"))
    )


def test_every_metric_has_help_and_no_sample_has_a_timestamp() -> None:
    store = SnapshotStore((PROD,))
    store.publish_success(PROD, snapshot(job_record("a")))
    text = render(store, (PROD,))
    lines = text.splitlines()
    typed = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    helped = {line.split()[2]: line for line in lines if line.startswith("# HELP ")}
    assert typed
    for name in typed:
        assert len(helped[name].split(" ", 3)[3]) > 10, name
    for line in lines:
        if line and not line.startswith("#"):
            # "name{labels} value" and no third field: no sample carries a timestamp.
            assert len(line.rsplit("} ", 1)[-1].split(" ")) in (1, 2)
            assert len(line.split("} ")[-1].split()) == 1, line
    assert "every 60s" in text


def test_a_group_with_no_running_jobs_disappears_at_the_next_good_poll() -> None:
    store = SnapshotStore((PROD,))
    store.publish_success(
        PROD, snapshot(job_record("a", project="p1"), job_record("b", project="p2"))
    )
    assert len(samples(render(store, (PROD,)), "maxcompute_running_jobs")) == 2
    store.publish_success(PROD, snapshot(job_record("b", project="p2")))
    remaining = samples(render(store, (PROD,)), "maxcompute_running_jobs")
    assert list(remaining) == [
        (("account", "prod"), ("project", "p2"), ("quota", "etl_quota"), ("region", "cn-hangzhou"))
    ]


def test_a_failed_poll_keeps_the_last_good_snapshot_and_marks_the_target_down() -> None:
    store = SnapshotStore((PROD,))
    store.publish_success(PROD, snapshot(job_record("a")))
    store.publish_failure(PROD)
    text = render(store, (PROD,))
    assert samples(text, "maxcompute_up") == {(("account", "prod"), ("region", "cn-hangzhou")): 0}
    assert len(samples(text, "maxcompute_running_jobs")) == 1
    assert samples(text, "maxcompute_exporter_last_success_timestamp_seconds") == {
        (("account", "prod"), ("region", "cn-hangzhou")): NOW
    }


def test_poll_settings_are_exported_per_target_for_the_staleness_rules() -> None:
    store = SnapshotStore((PROD, OTHER))
    metrics = ExporterMetrics(
        store, (PROD, OTHER), ("account",), 15.0, max_staleness=45.0, process_metrics=False
    )
    text = MetricsRenderer(store, metrics).render().decode()
    prod = (("account", "prod"), ("region", "cn-hangzhou"))
    shanghai = (("account", ""), ("region", "cn-shanghai"))
    assert samples(text, "maxcompute_exporter_poll_interval_seconds") == {
        prod: 15.0,
        shanghai: 15.0,
    }
    assert samples(text, "maxcompute_exporter_max_staleness_seconds") == {
        prod: 45.0,
        shanghai: 45.0,
    }
    # Without a staleness limit there is no setting to export, and no +Inf sample.
    assert samples(render(store), "maxcompute_exporter_max_staleness_seconds") == {}


def test_describe_never_collects() -> None:
    class ExplodingStore(SnapshotStore):
        def statuses(self):
            raise AssertionError("describe() must not read the snapshot")

    collector = JobMetricsCollector(ExplodingStore((PROD,)), ("account",), 60.0)
    assert next(m.name for m in collector.describe()) == "maxcompute_running_jobs"


def test_job_exposition_is_rendered_once_per_published_snapshot() -> None:
    store = SnapshotStore((PROD,))
    metrics = ExporterMetrics(store, (PROD,), ("account",), 60.0, process_metrics=False)
    renderer = MetricsRenderer(store, metrics)
    store.publish_success(PROD, snapshot(job_record("a")))
    first = renderer.job_exposition()
    assert renderer.job_exposition() is first
    store.publish_success(PROD, snapshot(job_record("a"), job_record("b")))
    assert renderer.job_exposition() is not first
    assert b"maxcompute_running_jobs{" in b"".join(renderer.job_exposition())


def test_the_job_exposition_assembled_per_target_is_what_one_render_of_all_writes() -> None:
    from prometheus_client import generate_latest

    store = SnapshotStore((PROD, OTHER))
    metrics = ExporterMetrics(
        store, (PROD, OTHER), ("account",), 60.0, process_metrics=False, top_jobs=2
    )
    renderer = MetricsRenderer(store, metrics)
    store.publish_success(PROD, snapshot(job_record("a"), job_record("b", project="p2")))
    store.publish_success(OTHER, snapshot(job_record("c", quota="q2", progress=0.0)))
    assert b"".join(renderer.job_exposition()) == generate_latest(metrics.job_registry)
    store.publish_failure(PROD)  # still served (no staleness limit): same bytes
    assert b"".join(renderer.job_exposition()) == generate_latest(metrics.job_registry)


def test_a_publication_renders_only_its_own_target_again(monkeypatch) -> None:
    from exporter.metrics import job_chunks

    store = SnapshotStore((PROD, OTHER))
    metrics = ExporterMetrics(store, (PROD, OTHER), ("account",), 60.0, process_metrics=False)
    renderer = MetricsRenderer(store, metrics)
    store.publish_success(PROD, snapshot(job_record("a")))
    store.publish_success(OTHER, snapshot(job_record("b")))
    renderer.render()
    rendered: list[int] = []
    original = job_chunks.family_texts
    monkeypatch.setattr(
        job_chunks, "family_texts", lambda families: rendered.append(1) or original(families)
    )
    store.publish_success(OTHER, snapshot(job_record("b"), job_record("c")))
    assert b'maxcompute_running_jobs{account="",' in renderer.render()
    assert rendered == [1]  # OTHER's families; PROD's chunks came from the cache


def test_gzip_body_is_one_gzip_member_holding_exactly_the_plain_body() -> None:
    import gzip
    import zlib

    store = SnapshotStore((PROD, OTHER))
    metrics = ExporterMetrics(store, (PROD, OTHER), ("account",), 60.0, process_metrics=False)
    renderer = MetricsRenderer(store, metrics)
    store.publish_success(
        PROD, snapshot(*(job_record(f"j{n}", project=f"p{n}") for n in range(50)))
    )
    store.publish_success(OTHER, snapshot(*(job_record(f"k{n}", quota="q2") for n in range(9))))
    for _ in range(2):  # the second time from the cached compressor state
        compressed = renderer.render_gzip()
        # A single-member decoder (what curl and httpx use) sees the whole body.
        single = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert single.decompress(compressed) == renderer.render()
        assert single.eof and single.unused_data == b""
        assert gzip.decompress(compressed) == renderer.render()


def test_a_scrape_never_queues_behind_another_one_rendering_a_new_state() -> None:
    store = SnapshotStore((PROD,))
    metrics = ExporterMetrics(store, (PROD,), ("account",), 60.0, process_metrics=False)
    renderer = MetricsRenderer(store, metrics)
    store.publish_success(PROD, snapshot(job_record("a")))
    before = renderer.job_exposition()
    store.publish_success(PROD, snapshot(job_record("a"), job_record("b")))
    with renderer._lock:  # another scrape is rendering the new state
        assert renderer.job_exposition() is before
    assert renderer.job_exposition() is not before


def test_a_scrape_during_a_publication_serves_the_last_state_and_renders_no_chunk(
    monkeypatch,
) -> None:
    from exporter.metrics import job_chunks

    store = SnapshotStore((PROD, OTHER))
    metrics = ExporterMetrics(store, (PROD, OTHER), ("account",), 60.0, process_metrics=False)
    scraped: list[tuple[bytes, int]] = []
    rendered: list[int] = []
    # Registered before the renderer's: called while the new status is not yet rendered.
    store.on_success(lambda status: scraped.append((renderer.render(), len(rendered))))
    renderer = MetricsRenderer(store, metrics)
    store.publish_success(PROD, snapshot(job_record("a")))
    store.publish_success(OTHER, snapshot(job_record("b")))
    scraped.clear()
    original = job_chunks.family_texts
    monkeypatch.setattr(
        job_chunks, "family_texts", lambda families: rendered.append(1) or original(families)
    )
    store.publish_success(OTHER, snapshot(job_record("b"), job_record("c", project="p9")))
    [(during, renders_by_the_scrape)] = scraped
    assert b'project="p9"' not in during  # the publication is not served before it is rendered
    assert renders_by_the_scrape == 0
    assert rendered == [1]  # OTHER's new snapshot, by the publication
    assert b'project="p9"' in renderer.render()
    assert rendered == [1]


def test_an_assembly_combines_the_chunks_crcs_and_reads_no_body_again(monkeypatch) -> None:
    import gzip
    import zlib

    store = SnapshotStore((PROD, OTHER))
    metrics = ExporterMetrics(store, (PROD, OTHER), ("account",), 60.0, process_metrics=False)
    renderer = MetricsRenderer(store, metrics)
    store.publish_success(PROD, snapshot(*(job_record(f"j{n}", project=f"p{n}") for n in range(9))))
    renderer.render_gzip()
    store.publish_success(OTHER, snapshot(job_record("k", quota="q2")))
    summed: list[int] = []
    original = zlib.crc32
    with monkeypatch.context() as patched:
        patched.setattr(
            zlib, "crc32", lambda data, crc=0: summed.append(len(data)) or original(data, crc)
        )
        compressed = renderer.render_gzip()  # a new state: assembled again
    # The jobs' and counters' CRCs were combined from their chunks'; only the self-metrics,
    # rendered per scrape, were summed.
    assert summed == [len(renderer.render_parts()[-1])]
    assert gzip.decompress(compressed) == renderer.render()
