"""The simulator's quota operations: ListQuotas and GetQuotaUsage, as the service answers them.

A ``QuotaCatalog`` is the tenant's quotas: level-1 quotas (subscription or pay-as-you-go, their
``parameter`` a free map, older ones with ``adhocCU``), each with its sub-quotas, and plans that
switch on a period. ListQuotas pages by ``marker`` (at most ``page_cap`` level-1 quotas a page,
whatever ``maxItem`` asks), with the list at the top of the body, under ``data``, or each in
turn. GetQuotaUsage answers one point a minute, consistent with the running jobs served: a
sub-quota uses the sum of its running jobs' ``cuSnapshot`` times its ``maxCU`` cores (what the
shipped recording rules assume a share is a share of), a level-1 quota the sum of its
sub-quotas, and jobs ask for ``demand`` times what they use. The minute being aggregated is
null, as the service's newest point can be.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from exporter.api.wire.quota_usage import USAGE_ACTION
from exporter.api.wire.quotas import LIST_QUOTAS_ACTION, QUOTAS_PATH
from exporter.demo.simulator_state import SimulatorState, error_body


@dataclass(frozen=True, slots=True)
class SubQuota:
    """A level-2 quota: where jobs run (their ``quotaNickname``)."""

    nickname: str
    min_cu: int | None = None
    max_cu: int | None = None
    elastic_cu: int | None = None
    job_max_cu: int | None = None
    scheduler_type: str = "Fifo"


@dataclass(frozen=True, slots=True)
class Level1Quota:
    """A level-1 quota; ``plans`` are (plan name, minCU) in force in turn, one per period."""

    nickname: str
    subs: tuple[SubQuota, ...]
    billing: str = "subscription"
    min_cu: int | None = None
    max_cu: int | None = None
    elastic_cu: int | None = None
    legacy_adhoc: bool = False  # the elastic reserve named adhocCU, as older answers do
    plans: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class QuotaCatalog:
    """What the simulator's quota operations serve, and how."""

    quotas: tuple[Level1Quota, ...]
    page_cap: int = 50
    envelope: str = "top"  # "top", "data", or "alternate" (page by page)
    plan_start: float = 0.0
    plan_period: float = math.inf
    demand: float = 1.2
    denied: frozenset[str] = field(default_factory=frozenset)  # actions answered 403
    # GetQuotaUsage for every quota: "hang" (never answers), "throttle" (always 429), "" (as the
    # service does); a quota in ``gone`` is listed but its usage answers 404 (deleted since).
    usage_fault: str = ""
    gone: frozenset[str] = field(default_factory=frozenset)

    def plan(self, quota: Level1Quota, now: float) -> tuple[str, int | None]:
        if not quota.plans:
            return "Default", quota.min_cu
        if math.isinf(self.plan_period):
            return quota.plans[0]
        index = int((now - self.plan_start) // self.plan_period) % len(quota.plans)
        return quota.plans[index]

    def level1(self, nickname: str) -> Level1Quota | None:
        return next((q for q in self.quotas if q.nickname == nickname), None)


def quota_action(path: str) -> str | None:
    """The operation a quota path asks for, or None if it is no quota path."""
    if path == QUOTAS_PATH:
        return LIST_QUOTAS_ACTION
    if path.startswith(QUOTAS_PATH + "/") and path.endswith("/usage"):
        return USAGE_ACTION
    return None


def _parameter(**values: int | None) -> dict[str, int]:
    return {key: value for key, value in values.items() if value is not None}


def _sub_record(sub: SubQuota, plan: str) -> dict:
    parameter = _parameter(
        minCU=sub.min_cu,
        maxCU=sub.max_cu,
        elasticReservedCU=sub.elastic_cu,
        singleJobCULimit=sub.job_max_cu,
    )
    parameter["schedulerType"] = sub.scheduler_type
    return {
        "nickName": sub.nickname,
        "name": sub.nickname,
        "status": "ON",
        "type": "FUXI_ONLINE",
        "schedulerType": sub.scheduler_type,
        "scheduleInfo": {"currPlan": plan},
        "parameter": parameter,
    }


def level1_record(catalog: QuotaCatalog, quota: Level1Quota, now: float) -> dict:
    """One ``quotaInfoList`` entry: a level-1 quota and its sub-quotas."""
    plan, reserved = catalog.plan(quota, now)
    elastic = "adhocCU" if quota.legacy_adhoc else "elasticReservedCU"
    parameter: dict[str, float | int] = _parameter(minCU=reserved, maxCU=quota.max_cu)
    if quota.elastic_cu is not None:
        parameter[elastic] = float(quota.elastic_cu)  # numbers may come as floats
    names = [name for name, _ in quota.plans]
    schedule = {"currPlan": plan, "timezone": "UTC+8"}
    if len(names) > 1:
        schedule["nextPlan"] = names[(names.index(plan) + 1) % len(names)]
        schedule["nextTime"] = "0800"
    return {
        "nickName": quota.nickname,
        "name": quota.nickname,
        "id": f"id-{quota.nickname}",
        "status": "ON",
        "type": "FUXI_OFFLINE" if quota.billing == "subscription" else "FUXI_ONLINE",
        "regionId": "cn-hangzhou",
        "billingPolicy": {"billingMethod": quota.billing, "odpsSpecCode": "OdpsStandard"},
        "scheduleInfo": schedule,
        "parameter": parameter,
        "subQuotaInfoList": [_sub_record(sub, plan) for sub in quota.subs],
    }


def list_quotas_body(catalog: QuotaCatalog, query: dict[str, str], now: float) -> dict:
    """One page of ListQuotas, the next ``marker`` ('' on the last page)."""
    start = int(query["marker"][2:]) if query.get("marker", "").startswith("mk") else 0
    per_page = max(1, min(int(query.get("maxItem") or 50), catalog.page_cap))
    quotas = catalog.quotas[start : start + per_page]
    end = start + len(quotas)
    marker = f"mk{end}" if end < len(catalog.quotas) else ""
    listing = [level1_record(catalog, quota, now) for quota in quotas]
    page = start // per_page
    under_data = catalog.envelope == "data" or (catalog.envelope == "alternate" and page % 2)
    body: dict = {"requestId": uuid.uuid4().hex[:30], "httpCode": 200, "errorCode": "success"}
    if under_data:
        body["data"] = {"quotaInfoList": listing, "marker": marker, "maxItem": per_page}
    else:
        body.update(quotaInfoList=listing, marker=marker, NextToken=marker, maxItem=per_page)
    return body


def used_cores(catalog: QuotaCatalog, jobs: Sequence[dict], level1: Level1Quota, sub: str | None):
    """Cores in use by the running ``jobs`` in ``sub`` (or in all of ``level1``'s sub-quotas)."""
    subs = [s for s in level1.subs if sub is None or s.nickname == sub]
    total = 0.0
    for quota in subs:
        share = sum(
            job["cuSnapshot"]
            for job in jobs
            if isinstance(job, dict)
            and job.get("quotaNickname") == quota.nickname
            and isinstance(job.get("cuSnapshot"), (int, float))
        )
        total += share * (quota.max_cu or 0)
    return round(total, 3)


def usage_body(
    catalog: QuotaCatalog, jobs: Sequence[dict], path: str, query: dict[str, str]
) -> tuple[int, dict]:
    """GetQuotaUsage of the level-1 quota in ``path`` (or of ``subQuotaNickname``)."""
    level1 = catalog.level1(unquote(path[len(QUOTAS_PATH) + 1 : -len("/usage")]))
    sub = query.get("subQuotaNickname") or None
    unknown = sub is not None and level1 is not None and all(s.nickname != sub for s in level1.subs)
    if level1 is None or unknown or (sub or level1.nickname) in catalog.gone:
        return 404, {"errorCode": "QuotaNotFound", "errorMsg": "The quota is not found."}
    try:
        start, end = int(query["from"]), int(query["to"])
    except (KeyError, ValueError):
        return 400, {"errorCode": "InvalidParameter", "errorMsg": "from and to are seconds."}
    minutes = [m for m in range(start - start % 60, end, 60) if m >= start][-60:]
    used = used_cores(catalog, jobs, level1, sub)
    key = "postpay-usedCpu" if level1.billing == "payasyougo" else "usedCpu"
    # Only the newest complete minute holds the jobs now running; the one being aggregated is
    # null; older minutes repeat the value (the simulator keeps no history).
    values: list[float | None] = [used] * len(minutes)
    if values:
        values[-1] = None
    requested = [None if v is None else round(v * catalog.demand, 3) for v in values]
    metrics = {
        "timestamps": [m * 1000 for m in minutes],
        key: values,
        "requestCpu": requested,
    }
    return 200, {
        "requestId": uuid.uuid4().hex[:30],
        "httpCode": 200,
        "errorCode": "success",
        "data": {"metrics": metrics, "plot": [{"title": "cpu", "type": "line", "yAxis": []}]},
    }


def answer_quota_request(
    catalog: QuotaCatalog, state: SimulatorState, action: str, path: str, query: dict[str, str]
) -> tuple[int, dict]:
    """(status, body) of a signed quota request; the faults were applied before it got here."""
    if action in catalog.denied:
        message = f"You are not authorized to do action: odps:{action}."
        return 403, error_body("Forbidden.RAM", message, 403)
    if action == USAGE_ACTION and catalog.usage_fault == "throttle":
        message = "Request was denied due to api flow control."
        return 429, error_body("Throttling.Api", message, 429)
    now = state.clock()
    if action == LIST_QUOTAS_ACTION:
        try:
            return 200, list_quotas_body(catalog, query, now)
        except ValueError:
            return 400, error_body("InvalidParameter", "maxItem and marker are invalid.", 400)
    status, body = usage_body(catalog, state.jobs(now), path, query)
    if status != 200:
        return status, error_body(body["errorCode"], body["errorMsg"], status)
    return status, body
