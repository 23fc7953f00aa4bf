"""The job metric families: names, HELP texts, what each reads, and the labels every series carries.

A new job metric is one ``JobMetric`` here (its value computed in ``polling.aggregation``), a row
in the metric table of docs/metrics.md and a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exporter.config import Target
from exporter.polling.derive.aggregation import GroupAggregate


def target_label_values(target: Target, label_names: tuple[str, ...]) -> list[str]:
    """``region`` then the constant labels in ``label_names`` order ('' where not set)."""
    labels = dict(target.labels)
    return [target.region, *(labels.get(name, "") for name in label_names)]


@dataclass(frozen=True, slots=True)
class JobMetric:
    """One job metric family: its name, HELP text and the aggregate it reads."""

    name: str
    help: str
    value: Callable[[GroupAggregate], float | None]


JOB_METRICS = (
    JobMetric("maxcompute_running_jobs", "Running jobs", lambda g: g.running_jobs),
    JobMetric(
        "maxcompute_running_jobs_cu_ratio",
        "Sum of the running jobs' cuSnapshot, their share of the quota's CUs (0..1 per quota)",
        lambda g: g.cu_ratio,
    ),
    JobMetric(
        "maxcompute_running_jobs_memory_ratio",
        "Sum of the running jobs' memorySnapshot, their share of the quota's memory",
        lambda g: g.memory_ratio,
    ),
    JobMetric(
        "maxcompute_running_jobs_progress_sum_ratio",
        "Sum of the running jobs' progress, each 0..1 (out-of-range values clamped); "
        "divided by maxcompute_running_jobs it is their mean progress",
        lambda g: g.progress_sum,
    ),
    JobMetric(
        "maxcompute_running_jobs_oldest_start_timestamp_seconds",
        "Earliest runningAtTime among the running jobs, Unix seconds",
        lambda g: g.oldest_start_seconds,
    ),
    JobMetric(
        "maxcompute_running_jobs_max_queue_seconds",
        "Longest wait from submission to start among the running jobs",
        lambda g: g.max_queue_seconds,
    ),
    JobMetric(
        "maxcompute_running_jobs_zero_progress",
        "Running jobs whose progress is 0",
        lambda g: g.zero_progress_jobs,
    ),
    JobMetric(
        "maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds",
        "Earliest runningAtTime among the running jobs at progress 0, Unix seconds",
        lambda g: g.zero_progress_oldest_start_seconds,
    ),
)
