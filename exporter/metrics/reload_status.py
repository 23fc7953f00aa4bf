"""Whether the last configuration reload worked, and when one last did, as two gauges."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class ReloadStatus(Collector):
    """Reports the two reload gauges; the last success starts as the process's start time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.successful = True
        self.success_timestamp = clock()

    def succeeded(self) -> None:
        """A reload loaded a good configuration, now."""
        self.successful = True
        self.success_timestamp = self.clock()

    def failed(self) -> None:
        """A reload was refused; the last success stays."""
        self.successful = False

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "maxcompute_exporter_config_last_reload_successful",
            "1 if the last configuration reload (SIGHUP or POST /-/reload) succeeded, else 0.",
            value=1.0 if self.successful else 0.0,
        )
        yield GaugeMetricFamily(
            "maxcompute_exporter_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully, Unix seconds.",
            value=self.success_timestamp,
        )
