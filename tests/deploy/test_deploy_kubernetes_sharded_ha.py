"""The sharded overlay made highly available (deploy/kubernetes-sharded-ha): the sharded
StatefulSet twice, replicas a and b, so every shard runs in two pods. Checked as the other
overlays are (Kubernetes schemas, `kubectl kustomize` where installed) and for what HA needs:
each shard exactly twice, disjoint StatefulSets, every pod scraped, the two replicas of a
shard apart, and nothing that splits the rules' de-duplication of the pair."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections import Counter
from typing import Any

import pytest
import yaml

from exporter.polling.schedule.sharding import parse_shard
from tests.deploy.test_deploy_kubernetes import (
    KUBERNETES_VERSIONS,
    NAME,
    RULES,
    only,
    render,
    validated_kinds,
)
from tests.deploy.test_deploy_kubernetes_sharded import SHARDED
from tests.support.tools import ROOT

SHARDED_HA = ROOT / "deploy" / "kubernetes-sharded-ha"
REPLICA_LABEL = "maxcompute-exporter/replica"
REPLICAS = {"a": f"{NAME}-a", "b": f"{NAME}-b"}
# The StatefulSet controller labels each pod with its ordinal (Kubernetes 1.28 and later).
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
# The labels every rule drops before it aggregates: `max/min without (instance, pod)`.
DEDUPLICATED = {"instance", "pod"}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(SHARDED_HA)


def stateful_sets(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "StatefulSet"}


def pod_labels(stateful: dict[str, Any], ordinal: int) -> dict[str, str]:
    """The labels a pod of ``stateful`` carries: its template's and the controller's own."""
    return stateful["spec"]["template"]["metadata"]["labels"] | {
        "statefulset.kubernetes.io/pod-name": f"{stateful['metadata']['name']}-{ordinal}",
        POD_INDEX_LABEL: str(ordinal),
    }


def selects(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return match_labels.items() <= labels.items()


def test_two_statefulsets_replace_the_one_and_the_rest_is_the_sharded_overlay(docs) -> None:
    assert set(stateful_sets(docs)) == set(REPLICAS.values())
    sharded = {(d["kind"], d["metadata"]["name"]): d for d in render(SHARDED)}
    del sharded["StatefulSet", NAME]
    ours = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] != "StatefulSet"}
    budget = ours.pop(("PodDisruptionBudget", NAME))
    assert ours == sharded  # Service, ServiceMonitor, rules, ConfigMap, ServiceAccount
    assert budget["metadata"]["namespace"] == "monitoring"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_manifests_match_the_kubernetes_schema(docs, version) -> None:
    checked = validated_kinds(docs, version)
    assert checked["StatefulSet"] == 2 and checked["PodDisruptionBudget"] == 1


def test_every_shard_runs_exactly_twice_once_in_each_replica(docs) -> None:
    shards: Counter[int] = Counter()
    replicas_of: dict[int, set[str]] = {}
    totals = set()
    for name, stateful in stateful_sets(docs).items():
        (container,) = stateful["spec"]["template"]["spec"]["containers"]
        (total,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--total-")]
        assert "--shard=auto" in container["args"]
        totals.add(total)
        for ordinal in range(stateful["spec"]["replicas"]):
            # --shard=auto reads the pod's name from POD_NAME: maxcompute-exporter-b-2 is 2.
            shard = parse_shard("auto", total, {"POD_NAME": f"{name}-{ordinal}"})
            shards[shard.index] += 1
            replicas_of.setdefault(shard.index, set()).add(name)
    assert len(totals) == 1, f"the replicas disagree on --total-shards: {totals}"
    assert shards == dict.fromkeys(range(int(totals.pop())), 2)
    assert all(names == set(REPLICAS.values()) for names in replicas_of.values())


def test_the_pod_is_the_sharded_overlays_but_for_the_replica_label_and_the_spread(docs) -> None:
    sharded_pod = only(render(SHARDED), "StatefulSet")["spec"]["template"]
    for replica, name in REPLICAS.items():
        pod = copy.deepcopy(stateful_sets(docs)[name]["spec"]["template"])
        assert pod["metadata"]["labels"].pop(REPLICA_LABEL) == replica
        del pod["spec"]["topologySpreadConstraints"]
        assert pod == sharded_pod


def test_the_statefulsets_never_claim_each_others_pods(docs) -> None:
    sets = stateful_sets(docs)
    for name, stateful in sets.items():
        selector = stateful["spec"]["selector"]
        assert set(selector) == {"matchLabels"}
        assert (
            selector["matchLabels"][REPLICA_LABEL] == stateful["metadata"]["labels"][REPLICA_LABEL]
        )
        for other_name, other in sets.items():
            for ordinal in range(other["spec"]["replicas"]):
                claimed = selects(selector["matchLabels"], pod_labels(other, ordinal))
                assert claimed == (name == other_name), (name, other_name, ordinal)


def test_the_service_and_the_budget_cover_every_pod_of_both_replicas(docs) -> None:
    service = only(docs, "Service")
    budget = only(docs, "PodDisruptionBudget")
    pods = [
        pod_labels(stateful, ordinal)
        for stateful in stateful_sets(docs).values()
        for ordinal in range(stateful["spec"]["replicas"])
    ]
    assert len(pods) == 2 * only(render(SHARDED), "StatefulSet")["spec"]["replicas"]
    for labels in pods:
        assert selects(service["spec"]["selector"], labels)
        assert selects(budget["spec"]["selector"]["matchLabels"], labels)
    assert service["spec"]["publishNotReadyAddresses"] is True
    for stateful in stateful_sets(docs).values():
        assert stateful["spec"]["serviceName"] == service["metadata"]["name"]
    # One exporter pod evicted at a time, so a drain never takes both replicas of a shard;
    # unready pods (the API down) may still be evicted, or a down API would block drains.
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_the_two_replicas_of_a_shard_prefer_different_nodes_and_zones(docs) -> None:
    sets = list(stateful_sets(docs).values())
    for stateful in sets:
        constraints = stateful["spec"]["template"]["spec"]["topologySpreadConstraints"]
        keys = [c["topologyKey"] for c in constraints]
        assert keys == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        for constraint in constraints:
            assert constraint["maxSkew"] == 1
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"  # preferred
            assert constraint["matchLabelKeys"] == [POD_INDEX_LABEL]
            match = constraint["labelSelector"]["matchLabels"]
            # The pods counted with pod N: the selector plus N's pod-index, in either replica,
            # and only those (the replica label must not narrow it to one StatefulSet).
            for ordinal in range(stateful["spec"]["replicas"]):
                counted = [
                    other["metadata"]["name"]
                    for other in sets
                    for n in range(other["spec"]["replicas"])
                    if selects(match | {POD_INDEX_LABEL: str(ordinal)}, pod_labels(other, n))
                ]
                assert counted == list(REPLICAS.values()), (ordinal, counted)


def scrape_labels(monitor, service, stateful, ordinal: int, address: str) -> dict[str, str]:
    """The target labels the Prometheus Operator gives the endpoint of ``service`` backed by
    pod ``ordinal`` of ``stateful`` (its relabelling for a ServiceMonitor): fixed ones, and
    pod labels only as ``podTargetLabels`` names them."""
    (endpoint,) = monitor["spec"]["endpoints"]
    (container,) = stateful["spec"]["template"]["spec"]["containers"]
    pod = pod_labels(stateful, ordinal)
    labels = {
        "job": service["metadata"]["name"],
        "namespace": service["metadata"]["namespace"],
        "service": service["metadata"]["name"],
        "endpoint": endpoint["port"],
        "container": container["name"],
        "pod": pod["statefulset.kubernetes.io/pod-name"],
        "instance": address,
    }
    for name in monitor["spec"].get("podTargetLabels", []):
        labels[re.sub(r"[^a-zA-Z0-9_]", "_", name)] = pod[name]
    return labels


def test_the_replicas_series_differ_only_in_what_the_rules_drop(docs) -> None:
    monitor = only(docs, "ServiceMonitor")
    service = only(docs, "Service")
    # What the model above does not follow: relabellings, a job or labels from the Service.
    assert not {"jobLabel", "targetLabels"} & set(monitor["spec"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert not {"relabelings", "metricRelabelings", "honorLabels"} & set(endpoint)
    a, b = (stateful_sets(docs)[name] for name in REPLICAS.values())
    for ordinal in range(a["spec"]["replicas"]):
        one = scrape_labels(monitor, service, a, ordinal, "10.0.0.1:10181")
        two = scrape_labels(monitor, service, b, ordinal, "10.0.0.2:10181")
        differing = {key for key in one.keys() | two.keys() if one.get(key) != two.get(key)}
        assert differing == DEDUPLICATED, differing
    # ... which every rule drops first (tests/deploy/test_deploy_rules.py checks each rule).
    assert "max without (instance, pod)" in RULES.read_text(encoding="utf-8")


def test_the_python_rendering_is_what_kustomize_builds(docs) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the rendering is checked by the tests above")
    built = subprocess.run(
        [kubectl, "kustomize", str(SHARDED_HA)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    real = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in yaml.safe_load_all(built.stdout)
        if doc is not None
    }
    assert {(d["kind"], d["metadata"]["name"]): d for d in docs} == real
