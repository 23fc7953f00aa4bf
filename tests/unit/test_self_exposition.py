"""The exporter's own metrics, rendered with each series' text kept: byte for byte what
``generate_latest`` writes, whatever the metric types, labels and values, render after render.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import (
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily

from exporter.metrics.poll_metrics import PollMetrics
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.self_exposition import SelfExposition, SelfRegistry
from exporter.polling.publish.snapshot import SnapshotStore
from tests.support.jobs import make_target

# Label values a text format must escape, and some it must not touch.
AWKWARD = ('say "hi"', "back\\slash", "two\nlines", "ünïcödé", "", "a b  c")


class Families:
    """A custom collector serving given families."""

    def __init__(self, *families) -> None:
        self.families = families

    def collect(self):
        return list(self.families)


def both(registry: SelfRegistry, exposition: SelfExposition) -> tuple[str, str]:
    return exposition.render().decode(), generate_latest(registry).decode()


def test_labelled_counters_gauges_and_histograms_render_as_generate_latest() -> None:
    registry = SelfRegistry()
    counter = Counter("requests", "Requests by code.", ["target", "code"], registry=registry)
    gauge = Gauge("rate", "The rate, per second.", ["target"], registry=registry)
    histogram = Histogram(
        "duration_seconds", "How long.", ["target"], buckets=(0.1, 1.0, 10.0), registry=registry
    )
    exposition = SelfExposition(registry)
    for n, value in enumerate(AWKWARD):
        counter.labels(value, "200").inc(n)
        gauge.labels(value).set(n / 3)
        histogram.labels(value).observe(n * 0.7)
    rendered, expected = both(registry, exposition)
    assert rendered == expected
    assert 'requests_total{code="200",target="say \\"hi\\""} 0.0\n' in rendered
    assert 'duration_seconds_bucket{le="10.0",target="two\\nlines"} 1.0\n' in rendered


def test_values_move_between_renders_and_new_children_appear() -> None:
    registry = SelfRegistry()
    counter = Counter("polls", "Polls.", ["target"], registry=registry)
    histogram = Histogram("wait_seconds", "Waits.", ["target"], registry=registry)
    exposition = SelfExposition(registry)
    counter.labels("a").inc()
    assert both(registry, exposition)[0] == both(registry, exposition)[1]
    counter.labels("a").inc(2.5)
    counter.labels("b").inc(1e21)
    histogram.labels("a").observe(math.inf)
    histogram.labels("b").observe(-3.0)
    rendered, expected = both(registry, exposition)
    assert rendered == expected
    assert 'polls_total{target="a"} 3.5\n' in rendered
    assert 'polls_total{target="b"} 1e+21\n' in rendered
    counter.remove("a")
    assert both(registry, exposition)[0] == both(registry, exposition)[1]


def test_unlabelled_metrics_and_other_types_render_as_generate_latest() -> None:
    registry = SelfRegistry()
    Counter("started", "Starts.", registry=registry).inc(4)
    Gauge("temperature", "Degrees.", registry=registry).set(-1.5)
    Histogram("negative", "Negative bounds.", buckets=(-1.0, 0.0, 1.0), registry=registry).observe(
        -0.5
    )
    Summary("latency_seconds", "A summary.", ["target"], registry=registry).labels("a").observe(2)
    Info("build", "The build.", registry=registry).info({"version": "1.2", "revision": "abc"})
    Enum("state", "A state.", states=["up", "down"], registry=registry).state("down")
    called = Gauge("called", "From a function.", ["target"], registry=registry)
    called.labels("a").set_function(lambda: 42.0)
    rendered, expected = both(registry, SelfExposition(registry))
    assert rendered == expected
    assert 'called{target="a"} 42.0\n' in rendered
    assert "negative_sum" not in rendered  # a negative bound: generate_latest writes no sum


def test_custom_collectors_with_timestamps_and_gauge_histograms_render_as_generate_latest() -> None:
    registry = SelfRegistry()
    plain = GaugeMetricFamily("up_ratio", "Up.", labels=["target", "zone"])
    for n, value in enumerate(AWKWARD):
        plain.add_metric([value, "z"], n / 7)
    stamped = GaugeMetricFamily("stamped", "With a time.", labels=["target"])
    stamped.add_metric(["a"], 1.0, timestamp=1700000000.5)
    histogram = GaugeHistogramMetricFamily("queue", "Queue.", labels=["target"])
    histogram.add_metric(["a"], [("1.0", 2.0), ("+Inf", 5.0)], gsum_value=7.5)
    registry.register(Families(plain, stamped, histogram))
    exposition = SelfExposition(registry)
    rendered, expected = both(registry, exposition)
    assert rendered == expected
    assert 'stamped{target="a"} 1.0 1700000000500\n' in rendered
    assert "queue_gsum" in rendered


def test_created_series_fall_back_to_collect_and_stay_exact() -> None:
    enable_created_metrics()
    try:
        registry = SelfRegistry()
        Counter("made", "Made.", ["target"], registry=registry).labels("a").inc()
        Histogram("took_seconds", "Took.", registry=registry).observe(0.2)
        rendered, expected = both(registry, SelfExposition(registry))
    finally:
        disable_created_metrics()
    assert rendered == expected
    assert 'made_created{target="a"}' in rendered


def test_an_unregistered_collector_is_no_longer_rendered() -> None:
    registry = SelfRegistry()
    kept = Counter("kept", "Kept.", registry=registry)
    gone = Counter("gone", "Gone.", registry=registry)
    exposition = SelfExposition(registry)
    exposition.render()
    registry.unregister(gone)
    assert registry.collectors() == [kept]
    rendered, expected = both(registry, exposition)
    assert rendered == expected
    assert "gone" not in rendered


def test_the_exporters_own_metrics_of_a_fleet_render_as_generate_latest() -> None:
    targets = tuple(make_target(labels=(("account", f"a{n}"),)) for n in range(3))
    store = SnapshotStore(targets)
    metrics = ExporterMetrics(store, targets, ("account",), 60.0, process_metrics=False)
    polls: PollMetrics = metrics.polls.polls
    exposition = SelfExposition(metrics.self_registry)
    polls.request_sent(targets[0], "200")
    polls.rate_learned(targets[1], 12.5)
    rendered, expected = both(metrics.self_registry, exposition)
    assert rendered == expected
    polls.request_sent(targets[0], "200")
    polls.request_sent(targets[2], "503")
    rendered, expected = both(metrics.self_registry, exposition)
    assert rendered == expected
    assert (
        'maxcompute_exporter_api_requests_total{account="a0",code="200",region="cn-hangzhou"} 2.0'
        in rendered
    )


label_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
floats = st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e30)


@settings(max_examples=60, deadline=None)
@given(
    series=st.lists(st.tuples(label_values, label_values, floats), max_size=6),
    later=st.lists(floats, min_size=6, max_size=6),
)
def test_any_labels_and_values_render_as_generate_latest(series, later) -> None:
    registry = SelfRegistry()
    counter = Counter("things", "Things.", ["a", "b"], registry=registry)
    gauge = Gauge("level", "Level.", ["a", "b"], registry=registry)
    histogram = Histogram("size", "Size.", ["a"], buckets=(1.0, 1e6), registry=registry)
    exposition = SelfExposition(registry)
    for a, b, value in series:
        counter.labels(a, b).inc(value)
        gauge.labels(a, b).set(-value)
        histogram.labels(a).observe(value)
    assert both(registry, exposition)[0] == both(registry, exposition)[1]
    for (a, b, _), value in zip(series, later, strict=False):
        counter.labels(a, b).inc(value)
        gauge.labels(a, b).set(value)
    rendered, expected = both(registry, exposition)
    assert rendered == expected


@pytest.mark.parametrize("count", [0, 1])
def test_a_registry_with_target_info_renders_as_generate_latest(count: int) -> None:
    registry = SelfRegistry(target_info={"service": "x"} if count else None)
    Counter("one", "One.", registry=registry).inc()
    rendered, expected = both(registry, SelfExposition(registry))
    assert rendered == expected


def test_metrics_laid_out_otherwise_than_read_are_collected_as_usual() -> None:
    registry = SelfRegistry()
    counter = Counter("odd", "Odd.", ["target"], registry=registry)
    counter.labels("a").inc(3)
    del counter._metrics  # as if another prometheus_client kept its children elsewhere
    counter._metrics = {("a",): object()}  # children that cannot be read directly
    counter.collect = lambda: [family("odd", 3.0)]
    rendered = SelfExposition(registry).render().decode()
    assert rendered == generate_latest(registry).decode()
    assert 'odd_total{target="a"} 3.0\n' in rendered


def family(name: str, value: float):
    from prometheus_client.core import CounterMetricFamily

    made = CounterMetricFamily(name, "Odd.", labels=["target"])
    made.add_metric(["a"], value)
    return made


def test_a_gauge_set_from_zero_to_minus_zero_is_written_as_generate_latest_writes_it() -> None:
    registry = SelfRegistry()
    gauge = Gauge("offset", "Offset.", ["target"], registry=registry)
    counter = Counter("count", "Count.", ["target"], registry=registry)
    exposition = SelfExposition(registry)
    gauge.labels("a").set(0.0)
    counter.labels("a")
    assert 'offset{target="a"} 0.0\n' in exposition.render().decode()
    gauge.labels("a").set(-0.0)
    counter.labels("a").inc(0.0)  # unchanged: its kept line is written again
    rendered, expected = both(registry, exposition)
    assert rendered == expected
    assert 'offset{target="a"} -0.0\n' in rendered
