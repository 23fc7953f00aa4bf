"""deploy/ram-policy.json: exactly the actions the exporter calls, in RAM's policy format."""

from __future__ import annotations

import json

from exporter.api.transport.quota_client import RAM_ACTIONS
from exporter.api.wire.running_jobs import ACTION
from tests.support.tools import ROOT

POLICY = ROOT / "deploy" / "ram-policy.json"


def test_the_policy_allows_exactly_the_operations_the_client_calls() -> None:
    policy = json.loads(POLICY.read_text(encoding="utf-8"))
    assert policy["Version"] == "1"
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == [f"odps:{ACTION}", *RAM_ACTIONS.values()]
    assert statement["Action"] == ["odps:GetRunningJobs", "odps:ListQuotas", "odps:GetQuotaUsage"]
    # No resource-level authorization for these (the API reference lists none).
    assert statement["Resource"] == "*"
    assert set(statement) == {"Effect", "Action", "Resource"}
