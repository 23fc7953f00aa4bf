"""PollMetrics: what a poller reports through the observer becomes exact self-metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from exporter.metrics.poll_metrics import PollMetrics
from exporter.polling.schedule.observer import PollOutcome
from tests.support.exposition import values
from tests.support.jobs import make_target

PROD = make_target(labels=(("account", "prod"),))
TEST = make_target(region="cn-shanghai", labels=(("account", "test"),))


def exposition(registry: CollectorRegistry) -> dict[tuple, float]:
    return values(generate_latest(registry).decode())


def key(name: str, target=PROD, **labels: str) -> tuple:
    region = {"region": target.region, "account": dict(target.labels)["account"]}
    return (name, *sorted({**region, **labels}.items()))


def test_children_exist_before_the_first_poll() -> None:
    registry = CollectorRegistry()
    PollMetrics(registry, (PROD, TEST), ("account",))
    found = exposition(registry)
    for target in (PROD, TEST):
        assert found[key("maxcompute_exporter_poll_errors_total", target, reason="auth")] == 0
        assert found[key("maxcompute_exporter_invalid_jobs_total", target)] == 0
        assert found[key("maxcompute_exporter_slice_rereads_total", target)] == 0
        assert found[key("maxcompute_exporter_approximate_parts_total", target)] == 0
        assert found[key("maxcompute_exporter_poll_duration_seconds_count", target)] == 0


def test_a_good_and_a_failed_poll_are_counted_for_their_target_only() -> None:
    registry = CollectorRegistry()
    observer = PollMetrics(registry, (PROD, TEST), ("account",))
    observer.rate_learned(PROD, 50.0)
    observer.request_sent(PROD, "200")
    observer.request_sent(PROD, "200")
    observer.request_sent(PROD, "connection_error")
    observer.poll_ended(
        PROD,
        PollOutcome(
            seconds=0.3,
            requests=3,
            rereads=1,
            request_rate=51.0,
            invalid_jobs=2,
            progress_out_of_range=1,
            approximate_jobs=380,
            approximate_parts=2,
            unseen_jobs=57,
        ),
    )
    observer.poll_ended(
        PROD, PollOutcome(seconds=0.2, requests=None, rereads=0, request_rate=51.0, failure="auth")
    )
    found = exposition(registry)
    assert found[key("maxcompute_exporter_api_requests_total", code="200")] == 2
    assert found[key("maxcompute_exporter_api_requests_total", code="connection_error")] == 1
    assert found[key("maxcompute_exporter_request_rate")] == 51.0
    # The failed poll sent no request: the last poll's count stays the good poll's.
    assert found[key("maxcompute_exporter_last_poll_requests")] == 3
    assert found[key("maxcompute_exporter_slice_rereads_total")] == 1
    assert found[key("maxcompute_exporter_invalid_jobs_total")] == 2
    assert found[key("maxcompute_exporter_progress_out_of_range_total")] == 1
    # Jobs of dense seconds read both ways: the last good poll's, kept through a failed one.
    assert found[key("maxcompute_exporter_last_poll_approximate_jobs")] == 380
    assert found[key("maxcompute_exporter_approximate_parts_total")] == 2
    assert found[key("maxcompute_exporter_last_poll_unseen_jobs")] == 57
    assert found[key("maxcompute_exporter_poll_errors_total", reason="auth")] == 1
    assert found[key("maxcompute_exporter_poll_duration_seconds_count")] == 2
    assert found[key("maxcompute_exporter_poll_duration_seconds_sum")] == 0.5
    assert found[key("maxcompute_exporter_poll_errors_total", TEST, reason="auth")] == 0
    assert found[key("maxcompute_exporter_poll_duration_seconds_count", TEST)] == 0
