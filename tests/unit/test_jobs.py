"""Every way a job field can be bad, and what it becomes; property tests for the parser and
the aggregation."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.api.errors import ApiError
from exporter.api.wire.jobs import is_renderable, parse_job
from exporter.api.wire.pages import parse_page
from exporter.polling.derive.aggregation import aggregate
from tests.support.jobs import NOW, job_record

GOOD = job_record("job-1", submitted=NOW - 600, running=NOW - 300)


def with_field(key: str, value: object) -> dict:
    return {**GOOD, key: value}


def without(key: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != key}


TEXT_FIELDS = ("instanceId", "project", "quotaNickname")
NUMBER_FIELDS = ("cuSnapshot", "memorySnapshot", "progress")
TIME_FIELDS = ("submittedAtTime", "runningAtTime")


@pytest.mark.parametrize("key", TEXT_FIELDS + NUMBER_FIELDS + TIME_FIELDS)
@pytest.mark.parametrize("bad", ["missing", None, [], {}, True])
def test_missing_null_or_wrong_type_skips_the_record(key: str, bad: object) -> None:
    record = without(key) if bad == "missing" else with_field(key, bad)
    assert parse_job(record, NOW) is None


@pytest.mark.parametrize("key", TEXT_FIELDS)
@pytest.mark.parametrize("bad", ["", "x" * 257, 12345])
def test_empty_huge_or_numeric_names_skip_the_record(key: str, bad: object) -> None:
    assert parse_job(with_field(key, bad), NOW) is None


@given(st.text(alphabet=st.characters(max_codepoint=0x2FF)))
def test_a_name_is_renderable_exactly_when_it_holds_no_c0_del_or_c1_control(text: str) -> None:
    controls = [c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F]
    assert is_renderable(text) == (not controls)


@pytest.mark.parametrize("text", ["a\x00b", "tab\t", "del\x7f", "nel\x85", "c1\x9f", "\ud800"])
def test_controls_and_lone_surrogates_are_not_renderable(text: str) -> None:
    assert not is_renderable(text)


@pytest.mark.parametrize("text", ["etl_quota", "RAM$team01:scheduler", "\xa0nbsp", "项目", "😀"])
def test_names_beyond_ascii_are_renderable(text: str) -> None:
    assert is_renderable(text)


def test_a_name_of_256_characters_is_kept() -> None:
    assert parse_job(with_field("project", "p" * 256), NOW).project == "p" * 256


@pytest.mark.parametrize("key", NUMBER_FIELDS + TIME_FIELDS)
@pytest.mark.parametrize("bad", ["0.5", float("nan"), float("inf"), -float("inf")])
def test_numbers_as_strings_nan_and_infinity_skip_the_record(key: str, bad: object) -> None:
    assert parse_job(with_field(key, bad), NOW) is None


@pytest.mark.parametrize("key", ("cuSnapshot", "memorySnapshot"))
def test_a_negative_share_skips_the_record(key: str) -> None:
    assert parse_job(with_field(key, -0.1), NOW) is None


def test_a_share_above_one_is_kept_as_it_came() -> None:
    assert parse_job(with_field("cuSnapshot", 1.5), NOW).cu_snapshot == 1.5


def test_progress_out_of_range_is_kept_for_aggregation_to_clamp() -> None:
    assert parse_job(with_field("progress", 85.0), NOW).progress == 85.0
    assert parse_job(with_field("progress", -1), NOW).progress == -1.0


@pytest.mark.parametrize("key", TIME_FIELDS)
@pytest.mark.parametrize("bad", [0, -5, 1.5])
def test_zero_negative_or_fractional_timestamps_skip_the_record(key: str, bad: object) -> None:
    assert parse_job(with_field(key, bad), NOW) is None


def test_an_integral_float_timestamp_is_accepted() -> None:
    assert parse_job(with_field("runningAtTime", float(NOW - 300)), NOW).running_at == NOW - 300


def test_timestamps_in_milliseconds_are_converted() -> None:
    job = parse_job(
        {**GOOD, "submittedAtTime": (NOW - 600) * 1000 + 123, "runningAtTime": (NOW - 300) * 1000},
        NOW,
    )
    assert (job.submitted_at, job.running_at) == (NOW - 600, NOW - 300)


def test_timestamps_in_the_future_are_clamped_to_now() -> None:
    job = parse_job({**GOOD, "runningAtTime": NOW + 3600}, NOW)
    assert job.running_at == NOW
    assert parse_job({**GOOD, "runningAtTime": NOW + 299}, NOW).running_at == NOW + 299


def test_a_submission_time_in_the_future_skips_the_record() -> None:
    # Clamped, it would sit in the newest slice of submission time, where no filter put it.
    assert parse_job({**GOOD, "submittedAtTime": 9_999_999_999}, NOW) is None
    assert parse_job({**GOOD, "submittedAtTime": NOW + 301}, NOW) is None
    assert parse_job({**GOOD, "submittedAtTime": NOW + 300}, NOW).submitted_at == NOW + 300


def test_extra_and_missing_optional_fields_are_fine() -> None:
    record = {**without("jobOwner"), "newField": {"nested": [1, 2]}}
    assert parse_job(record, NOW) is not None


# --- properties ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_values = st.one_of(
    json_values,
    st.integers(min_value=-10, max_value=NOW * 2000),
    st.floats(min_value=-2, max_value=2),
    st.sampled_from(["", "etl", "sales", "x" * 300]),
)
records = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            key: field_values for key in TEXT_FIELDS + NUMBER_FIELDS + TIME_FIELDS + ("jobOwner",)
        },
    ),
    st.builds(
        lambda n, cu: job_record(f"j{n}", cu=cu),
        st.integers(0, 30),
        st.floats(min_value=0, max_value=1),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=20), st.integers(min_value=0, max_value=1000))
def test_parse_page_never_fails_on_bad_records_and_counts_every_one(page: list, total: int) -> None:
    body = {
        "httpCode": 200,
        "errorCode": "success",
        "data": {"runningJobInfoList": page, "totalCount": total},
    }
    parsed = parse_page(200, json.dumps(body).encode(), NOW)
    assert len(parsed.jobs) + parsed.invalid == len(page) == parsed.records
    for job in parsed.jobs:
        assert math.isfinite(job.cu_snapshot) and job.cu_snapshot >= 0
        assert 0 < job.running_at <= NOW + 300


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parse_page_raises_only_api_errors_on_any_body(body: bytes) -> None:
    try:
        parse_page(200, body, NOW)
    except ApiError as error:
        assert error.reason in (
            "invalid_response",
            "server_error",
            "client_error",
            "auth",
            "throttled",
        )


jobs_strategy = st.lists(
    st.builds(
        lambda n, quota, project, cu, progress: parse_job(
            job_record(f"j{n}", quota=quota, project=project, cu=cu, progress=progress), NOW
        ),
        st.integers(0, 50),
        st.sampled_from(["q1", "q2"]),
        st.sampled_from(["p1", "p2", "p3"]),
        st.floats(min_value=0, max_value=1),
        st.floats(min_value=-5, max_value=5),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(jobs_strategy)
def test_aggregation_counts_each_job_once_and_keeps_ratios_in_range(jobs: list) -> None:
    result = aggregate(jobs)
    first_seen = {}
    for job in jobs:
        first_seen.setdefault(job.instance_id, job)
    assert result.jobs == len(first_seen)
    assert sum(g.running_jobs for g in result.groups.values()) == len(first_seen)
    assert result.duplicates == len(jobs) - len(first_seen)
    assert math.isclose(
        sum(g.cu_ratio for g in result.groups.values()),
        math.fsum(j.cu_snapshot for j in first_seen.values()),
        abs_tol=1e-9,
    )
    for group in result.groups.values():
        assert 0.0 <= group.progress_sum <= group.running_jobs
        assert 0 <= group.zero_progress_jobs <= group.running_jobs
