"""ListQuotas: the quotas' capacity, plan and hierarchy, one page of level-1 quotas at a time.

``GET /api/v1/quotas?maxItem=&marker=``; the answer's ``marker`` (or ``NextToken``) goes back as
``marker`` until it comes back empty. ``quotaInfoList`` sits at the top of the body or under
``data``: both are read. Each level-1 quota and each of its ``subQuotaInfoList`` becomes one
``QuotaCapacity``; a value the answer does not give (or gives mistyped) is ``None``, never 0,
and every record, field or value skipped is counted in ``QuotaPage.skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.api.errors import ApiError
from exporter.api.wire.jobs import is_renderable
from exporter.api.wire.pages import open_envelope

QUOTAS_PATH = "/api/v1/quotas"
LIST_QUOTAS_ACTION = "ListQuotas"
LIST_QUOTAS_RAM_ACTION = "odps:ListQuotas"
# Level-1 quotas asked for per page; a page may hold fewer (never stop on a short page).
QUOTAS_PER_PAGE = 50
# A listing that never ends (a marker that repeats) is cut here and fails the poll.
MAX_QUOTA_PAGES = 200


@dataclass(frozen=True, slots=True)
class QuotaCapacity:
    """One quota as ListQuotas describes it: level 1 (``parent`` '') or level 2.

    CU values are ``None`` where the answer gives none; 1 CU is 1 core and 4 GB.
    """

    nickname: str
    parent: str
    level: int
    plan: str
    billing_method: str
    scheduler_type: str
    status: str
    reserved_cu: float | None  # minCU: guaranteed
    max_cu: float | None  # maxCU: the ceiling
    elastic_reserved_cu: float | None  # elasticReservedCU, or adhocCU in older answers
    job_max_cu: float | None  # singleJobCULimit (level 2 only)


@dataclass(frozen=True, slots=True)
class QuotaPage:
    """One answer of ListQuotas: its quotas (level 1 and 2), the next marker, what was skipped."""

    quotas: tuple[QuotaCapacity, ...]
    marker: str
    skipped: int


def _finite(value: object) -> float | None:
    """A number (or a numeric string) as a finite float, else None: 10**400 is valid JSON and
    no float, "1e400" is infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


class Skips:
    """Counts values skipped while one answer is read."""

    def __init__(self) -> None:
        self.count = 0

    def cu(self, parameter: Mapping, *keys: str) -> float | None:
        """The first of ``keys`` present in ``parameter`` as a finite number >= 0, else None."""
        for key in keys:
            if key not in parameter or parameter[key] is None:
                continue
            value = parameter[key]
            number = _finite(value)
            if number is None or number < 0:
                self.count += 1
                return None
            return number
        return None

    def text(self, record: Mapping, key: str, fallback: str = "") -> str:
        """A short label value: stripped (the reference shows ``"ON \\n"``), else ``fallback``."""
        value = record.get(key)
        if value is None:
            return fallback
        if not isinstance(value, str) or not is_renderable(value.strip() or "x"):
            self.count += 1
            return fallback
        return value.strip()[:64] or fallback

    def mapping(self, record: Mapping, key: str) -> Mapping:
        value = record.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.count += 1
            return {}
        return value


def _quota(record: Mapping, parent: QuotaCapacity | None, skips: Skips) -> QuotaCapacity | None:
    nickname = record.get("nickName")
    if not isinstance(nickname, str) or not 0 < len(nickname) <= 256 or not is_renderable(nickname):
        skips.count += 1
        return None
    parameter = skips.mapping(record, "parameter")
    billing = skips.mapping(record, "billingPolicy")
    schedule = skips.mapping(record, "scheduleInfo")
    inherited = parent or QuotaCapacity("", "", 0, "", "", "", "", None, None, None, None)
    scheduler = skips.text(record, "schedulerType") or skips.text(parameter, "schedulerType")
    return QuotaCapacity(
        nickname=nickname,
        parent=parent.nickname if parent else "",
        level=2 if parent else 1,
        # A sub-quota runs under its parent's plan and billing unless it names its own.
        plan=skips.text(schedule, "currPlan", inherited.plan),
        billing_method=skips.text(billing, "billingMethod", inherited.billing_method),
        scheduler_type=scheduler,
        status=skips.text(record, "status"),
        reserved_cu=skips.cu(parameter, "minCU"),
        max_cu=skips.cu(parameter, "maxCU"),
        elastic_reserved_cu=skips.cu(parameter, "elasticReservedCU", "adhocCU"),
        job_max_cu=skips.cu(parameter, "singleJobCULimit") if parent else None,
    )


def _quota_list(envelope: dict, request_id: str | None) -> list:
    """``quotaInfoList`` at the top of the body, else under ``data``; null is an empty page."""
    data = envelope.get("data")
    data = data if isinstance(data, dict) else {}
    for holder in (envelope, data):
        if "quotaInfoList" in holder:
            listing = holder["quotaInfoList"]
            if listing is None:
                return []
            if not isinstance(listing, list):
                raise ApiError(
                    "invalid_response", "quotaInfoList is not a list", request_id=request_id
                )
            return listing
    if "marker" in envelope or "marker" in data or "NextToken" in envelope:
        return []  # an empty last page may leave the list out
    raise ApiError("invalid_response", "answer holds no quotaInfoList", request_id=request_id)


def _next_marker(envelope: dict) -> str:
    data = envelope.get("data")
    holders = (envelope, data) if isinstance(data, dict) else (envelope,)
    for holder in holders:
        for key in ("marker", "NextToken", "nextToken"):
            value = holder.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def parse_quota_page(status: int, body: bytes, retry_after: str | None = None) -> QuotaPage:
    """One ListQuotas answer: its level-1 quotas followed each by its sub-quotas; or ApiError."""
    envelope, request_id = open_envelope(status, body, retry_after, LIST_QUOTAS_ACTION)
    skips = Skips()
    quotas: list[QuotaCapacity] = []
    for record in _quota_list(envelope, request_id):
        if not isinstance(record, Mapping):
            skips.count += 1
            continue
        top = _quota(record, None, skips)
        if top is None:
            continue
        quotas.append(top)
        subs = record.get("subQuotaInfoList")
        if subs is not None and not isinstance(subs, list):
            skips.count += 1
            subs = None
        for sub in subs or ():
            if not isinstance(sub, Mapping):
                skips.count += 1
                continue
            child = _quota(sub, top, skips)
            if child is not None:
                quotas.append(child)
    return QuotaPage(tuple(quotas), _next_marker(envelope), skips.count)


def list_quotas_query(marker: str, per_page: int = QUOTAS_PER_PAGE) -> dict[str, str]:
    """The query of one ListQuotas page; the first has no marker, as the official SDK sends it."""
    query = {"maxItem": str(per_page)}
    if marker:
        query["marker"] = marker
    return query
