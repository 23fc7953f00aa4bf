"""``maxcompute_exporter_shard_info``: which shard of how many this replica is.

# HELP maxcompute_exporter_shard_info This replica's shard (--shard) of --total-shards; ...
# TYPE maxcompute_exporter_shard_info gauge
maxcompute_exporter_shard_info{shard="1",total_shards="3"} 1.0
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from exporter.config.model import Shard

SHARD_INFO = "maxcompute_exporter_shard_info"
HELP = (
    "This replica's shard (--shard) of --total-shards; it polls only the targets whose hash of "
    "identity falls to it. shard 0 of 1 when not sharded."
)


class ShardInfoCollector(Collector):
    """One constant sample naming the shard; it never changes while the process runs."""

    def __init__(self, shard: Shard) -> None:
        self._shard = shard

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self.collect()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(SHARD_INFO, HELP, labels=["shard", "total_shards"])
        family.add_metric([str(self._shard.index), str(self._shard.total)], 1.0)
        yield family
