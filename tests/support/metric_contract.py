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

# How far a published count may be from the truth (issue 23): jobs of dense seconds read both
# ways that moved, and jobs a totalCount counted that no answer showed.
BOUND_METRICS = {
    "maxcompute_exporter_last_poll_approximate_jobs",
    "maxcompute_exporter_approximate_parts_total",
    "maxcompute_exporter_last_poll_unseen_jobs",
}
CONTRACT_METRICS |= BOUND_METRICS

# The per-job view: served only with metrics.top_jobs above 0.
PER_JOB_METRICS = {
    "maxcompute_running_job_cu_ratio",
    "maxcompute_running_job_progress_ratio",
    "maxcompute_running_job_start_timestamp_seconds",
}
CONTRACT_METRICS |= PER_JOB_METRICS

# Jobs over time: counters and histograms from successive polls, and running time now.
JOBS_OVER_TIME_METRICS = {
    "maxcompute_jobs_started_total",
    "maxcompute_jobs_finished_total",
    "maxcompute_exporter_reappeared_jobs_total",
    "maxcompute_running_jobs_run_time_seconds_bucket",
    "maxcompute_running_jobs_run_time_seconds_gcount",
    "maxcompute_running_jobs_run_time_seconds_gsum",
} | {
    f"{name}_{suffix}"
    for name in ("maxcompute_job_queue_wait_seconds", "maxcompute_job_run_seconds")
    for suffix in ("bucket", "sum", "count")
}
CONTRACT_METRICS |= JOBS_OVER_TIME_METRICS
# The quota poll (issue 18): ListQuotas and GetQuotaUsage, and the poll's own health.
QUOTA_METRICS = {
    "maxcompute_quota_reserved_cu",
    "maxcompute_quota_max_cu",
    "maxcompute_quota_elastic_reserved_cu",
    "maxcompute_quota_job_max_cu",
    "maxcompute_quota_info",
    "maxcompute_quota_used_cpu_cores",
    "maxcompute_quota_requested_cpu_cores",
    "maxcompute_quota_usage_age_seconds",
    "maxcompute_exporter_quota_poll_up",
    "maxcompute_exporter_quota_poll_last_success_timestamp_seconds",
    "maxcompute_exporter_quota_poll_interval_seconds",
    "maxcompute_exporter_quota_poll_errors_total",
    "maxcompute_exporter_quota_api_requests_total",
    "maxcompute_exporter_quota_invalid_values_total",
} | {f"maxcompute_exporter_quota_poll_duration_seconds_{s}" for s in ("bucket", "sum", "count")}
CONTRACT_METRICS |= QUOTA_METRICS
# Consumption (issue 26): share-seconds counters; the owner view only with
# metrics.owner_consumption.
OWNER_CONSUMPTION_METRICS = {"maxcompute_owner_cu_share_seconds_total"}
CONSUMPTION_METRICS = {
    "maxcompute_cu_share_seconds_total",
    "maxcompute_memory_share_seconds_total",
    "maxcompute_exporter_consumption_unmeasured_seconds_total",
    "maxcompute_exporter_consumption_cu_share_seconds_bound_total",
} | OWNER_CONSUMPTION_METRICS
CONTRACT_METRICS |= CONSUMPTION_METRICS
# Sharding (issue 24): which shard of how many a replica is; shard 0 of 1 when not sharded.
CONTRACT_METRICS |= {"maxcompute_exporter_shard_info"}

# A metric or recording-rule name inside a PromQL expression.
METRIC_NAME = re.compile(r"\b(maxcompute[_:][a-zA-Z0-9_:]*)")
