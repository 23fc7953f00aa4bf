"""The sharded overlay (deploy/kubernetes-sharded): the base with a StatefulSet of one pod per
shard instead of its Deployment, checked as the base is (Kubernetes schemas, hardening carried
over) and against `kubectl kustomize` where kubectl is installed."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections import Counter
from typing import Any

import pytest
import yaml

from exporter.polling.schedule.sharding import parse_shard
from tests.deploy.test_deploy_kubernetes import (
    BASE,
    CORE_KINDS,
    CRD_KINDS,
    KUBERNETES_VERSIONS,
    NAME,
    only,
    render,
    validated_kinds,
)
from tests.support.tools import ROOT

SHARDED = ROOT / "deploy" / "kubernetes-sharded"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(SHARDED)


def test_the_statefulset_replaces_the_deployment_and_the_rest_is_the_base(docs) -> None:
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == sorted((CORE_KINDS - {"Deployment"}) | {"StatefulSet"} | CRD_KINDS)
    base = {(d["kind"], d["metadata"]["name"]): d for d in render(BASE)}
    for doc in docs:
        if doc["kind"] != "StatefulSet":
            assert doc == base[doc["kind"], doc["metadata"]["name"]]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_manifests_match_the_kubernetes_schema(docs, version) -> None:
    kinds = (CORE_KINDS - {"Deployment"}) | {"StatefulSet"}
    assert validated_kinds(docs, version) == Counter(kinds)


def test_each_pod_is_the_shard_its_ordinal_names_of_as_many_as_there_are_replicas(docs) -> None:
    stateful = only(docs, "StatefulSet")
    (container,) = stateful["spec"]["template"]["spec"]["containers"]
    shard_args = [arg for arg in container["args"] if arg.startswith(("--shard", "--total-"))]
    assert shard_args == ["--shard=auto", f"--total-shards={stateful['spec']['replicas']}"]
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    total = str(stateful["spec"]["replicas"])
    pods = [f"{stateful['metadata']['name']}-{n}" for n in range(int(total))]
    assert [parse_shard("auto", total, {"POD_NAME": pod}).index for pod in pods] == [0, 1, 2]
    with pytest.raises(ValueError, match="out of range"):  # one pod too many: it says so
        parse_shard("auto", total, {"POD_NAME": f"{NAME}-{total}"})


def test_the_pod_is_the_base_deployments_pod_but_for_the_shard(docs) -> None:
    pod = copy.deepcopy(only(docs, "StatefulSet")["spec"]["template"])
    base_pod = only(render(BASE), "Deployment")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    container["args"] = [a for a in container["args"] if not a.startswith(("--shard", "--total-"))]
    container["env"] = [item for item in container["env"] if item["name"] != "POD_NAME"]
    assert pod == base_pod  # hardening, probes, credentials and the generated ConfigMap


def test_prometheus_scrapes_every_shard(docs) -> None:
    stateful = only(docs, "StatefulSet")
    service = only(docs, "Service")
    labels = stateful["spec"]["template"]["metadata"]["labels"]
    assert stateful["spec"]["serviceName"] == service["metadata"]["name"]
    assert stateful["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The Service selects every shard's pod, unready ones too, and the ServiceMonitor scrapes
    # each endpoint of it: every pod, so every target once.
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["publishNotReadyAddresses"] is True
    monitor = only(docs, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert stateful["spec"]["podManagementPolicy"] == "Parallel"


def test_the_python_rendering_is_what_kustomize_builds(docs) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the rendering is checked by the tests above")
    built = subprocess.run(
        [kubectl, "kustomize", str(SHARDED)], capture_output=True, text=True, timeout=60, check=True
    )
    real = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in yaml.safe_load_all(built.stdout)
        if doc is not None
    }
    assert {(d["kind"], d["metadata"]["name"]): d for d in docs} == real
