"""The exporter's own metrics in the text format, byte for byte as ``generate_latest`` writes
them, at a fraction of its cost.

With a fleet the self-metrics are thousands of samples (at 50 targets about 6 000: each
target's poll and quota-poll counters and histograms, most of them zeros created up front),
rendered on every scrape since their values move while polls run. ``generate_latest`` spent
about 60 ms of CPU on them per scrape, nearly all of it rebuilding each sample's labels (a
dict, sorted, escaped) and each histogram bucket's ``le`` string. Here the text of each series
up to its value is rendered once, by ``generate_latest`` itself (so the bytes are its own), and
kept; a scrape writes only the values. prometheus_client's own Counter, Gauge and Histogram
are read from their children directly (a child whose samples do not have the expected shape,
e.g. with ``_created`` series on, falls back to ``collect()``); every other collector is
collected as usual and only its sample lines are cached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# Samples generate_latest moves to families of their own at the end: such a family is rendered
# by generate_latest whole.
OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")
# Cached lines beyond this many times those of the last render are dropped (series that went).
CACHE_SLACK = 2


class SelfRegistry(CollectorRegistry):
    """A registry that also tells its collectors, in registration order (the order
    ``generate_latest`` renders them in)."""

    def __init__(
        self, auto_describe: bool = False, target_info: dict[str, str] | None = None
    ) -> None:
        super().__init__(auto_describe=auto_describe, target_info=target_info)
        self._ordered: list[Collector] = []
        self._ordered_lock = threading.Lock()

    def register(self, collector: Collector) -> None:
        super().register(collector)
        with self._ordered_lock:
            self._ordered.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        with self._ordered_lock:
            self._ordered.remove(collector)

    def collectors(self) -> list[Collector]:
        with self._ordered_lock:
            return list(self._ordered)


class _Families:
    """Families as a registry, for ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def sample_prefixes(family: Metric) -> tuple[str, ...]:
    """Each sample line of ``family`` up to and including the space before its value, as
    ``generate_latest`` writes it (the family's HELP and TYPE lines left out)."""
    zeroed = Metric(family.name, family.documentation, family.type)
    for sample in family.samples:
        zeroed.add_sample(sample.name, sample.labels, 0.0)
    lines = generate_latest(_Families([zeroed])).decode().split("\n")[2:-1]
    return tuple(line.rpartition(" ")[0] + " " for line in lines)


def header(family: Metric) -> str:
    """The HELP and TYPE lines of ``family``."""
    return generate_latest(_Families([Metric(family.name, family.documentation, family.type)]))


@dataclass(frozen=True, slots=True)
class SeriesText:
    """A child's sample lines up to their values; its values and lines as last written."""

    prefixes: tuple[str, ...]
    values: tuple[float, ...] | None = None
    text: str = ""


def series_lines(prefixes: tuple[str, ...], values: tuple[float, ...]) -> str:
    return "".join(f"{p}{floatToGoString(v)}\n" for p, v in zip(prefixes, values, strict=True))


def counter_values(child: Counter) -> tuple[float, ...]:
    return (child._value.get(),)


def gauge_values(child: Gauge) -> tuple[float, ...]:
    return (child._value.get(),)


def histogram_values(child: Histogram) -> tuple[float, ...]:
    """Cumulative buckets, count and (unless a bound is negative) sum, as ``_child_samples``."""
    values, total = [], 0.0
    for bucket in child._buckets:
        total += bucket.get()
        values.append(total)
    values.append(total)
    if child._upper_bounds[0] >= 0:
        values.append(child._sum.get())
    return tuple(values)


def value_reader(collector: Collector) -> Callable | None:
    """How to read a child's sample values directly, for prometheus_client's own types."""
    readers = {Counter: counter_values, Gauge: gauge_values, Histogram: histogram_values}
    return readers.get(type(collector))  # subclasses may sample differently: not read directly


class SelfExposition:
    """Renders a ``SelfRegistry`` as ``generate_latest`` would, keeping each series' text."""

    def __init__(self, registry: SelfRegistry) -> None:
        self._registry = registry
        self._headers: dict[tuple[str, str, str], str] = {}
        # Per child of a Counter, Gauge or Histogram: its lines' text; per other sample: its
        # prefix. Filled by the first render that meets them, read by later ones.
        self._children: dict[tuple[Collector, tuple[str, ...]], SeriesText] = {}
        self._lines: dict[tuple, str] = {}
        # Collectors whose children sampled otherwise than expected: collected as usual.
        self._collected: set[Collector] = set()

    def render(self) -> bytes:
        if self._registry.get_target_info() is not None:
            return generate_latest(self._registry)
        out: list[str] = []
        for collector in self._registry.collectors():
            read = value_reader(collector)
            if read is None or collector in self._collected or not self._read(collector, read, out):
                self._collect(collector, out)
        if len(self._children) + len(self._lines) > CACHE_SLACK * len(out) + 1000:
            self._children.clear()
            self._lines.clear()
        return "".join(out).encode("utf-8")

    def _header(self, family: Metric) -> str:
        key = (family.name, family.type, family.documentation)
        text = self._headers.get(key)
        if text is None:
            text = self._headers[key] = header(family).decode()
        return text

    def _read(self, collector: Collector, read: Callable, out: list[str]) -> bool:
        """``_direct``, or False if this prometheus_client's metrics are not laid out as read
        here (their children are internals): then the collector is collected as usual."""
        try:
            return self._direct(collector, read, out)
        except (AttributeError, TypeError, ValueError):
            self._collected.add(collector)
            return False

    def _direct(self, collector: Collector, read: Callable, out: list[str]) -> bool:
        """Write a Counter, Gauge or Histogram from its children's values; False (nothing
        written) if a child's samples are not as ``read`` reads them."""
        (family,) = collector.describe()
        if collector._labelnames:
            with collector._lock:
                children = list(collector._metrics.items())
        else:
            children = [((), collector)]
        lines = [self._header(family)]
        for values, child in children:
            if "_child_samples" in vars(child):  # a Gauge's set_function
                self._collected.add(collector)
                return False
            kept = self._children.get((collector, values))
            if kept is None:
                kept = self._child_text(collector, family, values, child, read)
                if kept is None:
                    self._collected.add(collector)
                    return False
            now = read(child)
            # Most children do not move between scrapes (zeros made up front): their lines are
            # written once. A Gauge may be set to -0.0, which equals 0.0 but is written apart.
            if now != kept.values or read is gauge_values:
                kept = SeriesText(kept.prefixes, now, series_lines(kept.prefixes, now))
                self._children[(collector, values)] = kept
            lines.append(kept.text)
        out += lines
        return True

    def _child_text(
        self,
        collector: Collector,
        family: Metric,
        values: tuple[str, ...],
        child: Collector,
        read: Callable,
    ) -> SeriesText | None:
        samples = child._child_samples()
        if len(samples) != len(read(child)) or any(
            s.name in OPENMETRICS_SUFFIXES or s.timestamp is not None for s in samples
        ):
            return None
        labels = list(zip(collector._labelnames, values, strict=True))
        series = Metric(family.name, family.documentation, family.type)
        for sample in samples:
            series.add_sample(
                collector._name + sample.name, dict(labels + list(sample.labels.items())), 0.0
            )
        kept = SeriesText(sample_prefixes(series))
        self._children[(collector, values)] = kept
        return kept

    def _collect(self, collector: Collector, out: list[str]) -> None:
        for family in collector.collect():
            if any(map(special_to(family), family.samples)):
                out.append(generate_latest(_Families([family])).decode())
                continue
            out.append(self._header(family))
            out += self._sample_lines(family)

    def _sample_lines(self, family: Metric) -> Sequence[str]:
        lines = []
        for sample in family.samples:
            key = (sample.name, *sample.labels.items())
            prefix = self._lines.get(key)
            if prefix is None:
                prefix = self._lines[key] = sample_prefixes(
                    _one_sample(family, sample.name, sample.labels)
                )[0]
            lines.append(f"{prefix}{floatToGoString(sample.value)}\n")
        return lines


def special_to(family: Metric) -> Callable[[Sample], bool]:
    """Whether a sample of ``family`` is one generate_latest writes otherwise than as a plain
    line of the family (with a timestamp, or moved to a family of its own)."""
    moved = {family.name + suffix for suffix in OPENMETRICS_SUFFIXES}
    return lambda sample: sample.timestamp is not None or sample.name in moved


def _one_sample(family: Metric, name: str, labels: dict[str, str]) -> Metric:
    single = Metric(family.name, family.documentation, family.type)
    single.add_sample(name, labels, 0.0)
    return single
