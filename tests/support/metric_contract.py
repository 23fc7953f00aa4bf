"""The exporter's metric names as the issues define them: the public contract that the rules and
the dashboard may use. A rename in the code without a rename here fails the deploy tests."""

import re

CONTRACT_METRICS = {
    "maxcompute_running_jobs",
    "maxcompute_running_jobs_cu_ratio",
    "maxcompute_running_jobs_memory_ratio",
    "maxcompute_running_jobs_progress_sum_ratio",
    "maxcompute_running_jobs_oldest_start_timestamp_seconds",
    "maxcompute_running_jobs_max_queue_seconds",
    "maxcompute_running_jobs_zero_progress",
    "maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds",
    "maxcompute_up",
    "maxcompute_exporter_last_success_timestamp_seconds",
    "maxcompute_exporter_poll_interval_seconds",
    "maxcompute_exporter_max_staleness_seconds",
    "maxcompute_exporter_api_requests_total",
    "maxcompute_exporter_invalid_jobs_total",
    "maxcompute_exporter_progress_out_of_range_total",
    "maxcompute_exporter_poll_errors_total",
    "maxcompute_exporter_build_info",
    "maxcompute_exporter_series",
    "maxcompute_exporter_folded_projects",
} | {f"maxcompute_exporter_poll_duration_seconds_{s}" for s in ("bucket", "sum", "count")}

# The per-job view: served only with metrics.top_jobs above 0.
PER_JOB_METRICS = {
    "maxcompute_running_job_cu_ratio",
    "maxcompute_running_job_progress_ratio",
    "maxcompute_running_job_start_timestamp_seconds",
}
CONTRACT_METRICS |= PER_JOB_METRICS

# A metric or recording-rule name inside a PromQL expression.
METRIC_NAME = re.compile(r"\b(maxcompute[_:][a-zA-Z0-9_:]*)")
