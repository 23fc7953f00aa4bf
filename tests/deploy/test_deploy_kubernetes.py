"""Checks of the kustomize base in deploy/kubernetes, rendered without kubectl.

The base is rendered in Python (tests/support/kustomize_render.py) and every core manifest
is validated against the Kubernetes OpenAPI schemas of kubernetes-validate.
ServiceMonitor and PrometheusRule are CRDs without a bundled schema: their key fields are
checked by hand, and the PrometheusRule must carry exactly the groups of
deploy/prometheus/rules.yml. After editing rules.yml, regenerate the copy with:

    python -m tests.deploy.test_deploy_kubernetes --sync
"""

from __future__ import annotations

import copy
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import kustomize_render
from tests.support.tools import ROOT

BASE = ROOT / "deploy" / "kubernetes"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
PROMETHEUS_RULE = BASE / "prometheusrule.yaml"

# The oldest and the newest Kubernetes minor the base is validated against.
KUBERNETES_VERSIONS = ("1.28.0", "1.37.0")
CORE_KINDS = {"ConfigMap", "Deployment", "Service", "ServiceAccount"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
NAME = "maxcompute-exporter"
PORT_NAME = "http-metrics"
PORT = 10181
CREDENTIALS_SECRET = "maxcompute-exporter-credentials"
# All optional: without the Secret, the credential chain goes on to RRSA (the default path).
CREDENTIAL_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": True,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": True,
    "ALIBABA_CLOUD_SECURITY_TOKEN": True,
}
RRSA_ROLE_ANNOTATION = "pod-identity.alibabacloud.com/role-name"

PROMETHEUS_RULE_HEADER = """\
# GENERATED from deploy/prometheus/rules.yml: do not edit by hand. After changing
# rules.yml run `python -m tests.deploy.test_deploy_kubernetes --sync`; a test checks that the
# groups below equal the groups of rules.yml.
#
# Needs the Prometheus Operator. Its Prometheus selects rules by label (ruleSelector):
# kube-prometheus-stack, for example, wants `release: <helm release name>`; add it in an
# overlay.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: maxcompute-exporter
  labels:
    app.kubernetes.io/name: maxcompute-exporter
    role: alert-rules
spec:
"""


def prometheus_rule_text() -> str:
    """The PrometheusRule manifest: rules.yml, comments and all, indented under spec."""
    lines = RULES.read_text(encoding="utf-8").splitlines()
    body = "".join(f"  {line}\n" if line.strip() else "\n" for line in lines)
    return PROMETHEUS_RULE_HEADER + body


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))


def render(base: Path = BASE) -> list[dict[str, Any]]:
    """The base (or an overlay of it) as `kustomize build` gives it, rendered in Python."""
    return kustomize_render.render(base)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render()


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected exactly one {kind} in the base, found {len(found)}"
    return found[0]


def kubernetes_validate_module():
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(
            "kubernetes-validate is not installed: pip install -r deploy/requirements-ci.txt",
            pytrace=False,
        )
    return kubernetes_validate


def test_kustomization_lists_every_manifest_once(docs):
    kust = kustomization()
    assert kust["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kust["kind"] == "Kustomization"
    assert len(kust["resources"]) == len(set(kust["resources"]))
    generated_from = {
        path for entry in kust["configMapGenerator"] for path in entry.get("files", [])
    }
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"} - generated_from
    assert on_disk == set(kust["resources"]), "every manifest in the base must be listed"
    assert {doc["kind"] for doc in docs} == CORE_KINDS | CRD_KINDS
    keys = [(doc["kind"], doc["metadata"]["name"]) for doc in docs]
    assert len(keys) == len(set(keys)), f"duplicate resources: {keys}"


def validated_kinds(docs: list[dict[str, Any]], version: str) -> Counter[str]:
    """Each core (non-CRD) manifest validated against Kubernetes ``version``'s schema; how many
    of each kind were."""
    kv = kubernetes_validate_module()
    checked: Counter[str] = Counter()
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kv.validate(copy.deepcopy(doc), version, strict=True)
        except kv.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {path}: {error.message}")
        checked[doc["kind"]] += 1
    return checked


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_manifests_match_the_kubernetes_schema(docs, version):
    assert validated_kinds(docs, version) == Counter(CORE_KINDS)


def test_deployment_is_hardened(docs):
    deployment = only(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    assert not container["image"].endswith(":latest")
    assert ":" in container["image"], "the image must carry a tag"


def test_deployment_probes_port_and_args(docs):
    (container,) = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": PORT_NAME}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": PORT_NAME}
    assert "--config=/etc/maxcompute-exporter/config.yaml" in container["args"]
    assert f"--web.listen-address=:{PORT}" in container["args"]


def test_credentials_come_from_the_secret(docs):
    (container,) = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    for name, optional in CREDENTIAL_ENV.items():
        assert name in env, f"{name} is not set"
        assert "value" not in env[name], f"{name} must not be set inline"
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == CREDENTIALS_SECRET
        assert ref["key"] == name
        assert ref.get("optional", False) is optional, name
    assert not any(doc["kind"] == "Secret" for doc in docs), "the base must not ship a Secret"


def test_rrsa_is_the_default_identity(docs):
    """ACK's pod identity webhook reads the ServiceAccount's role annotation."""
    account = only(docs, "ServiceAccount")
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"][RRSA_ROLE_ANNOTATION] == NAME
    assert account["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    env = {item["name"]: item for item in container["env"]}
    # The node's ECS role is never borrowed: the chain's ECS step is off.
    assert env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"]["value"] == "true"


def test_config_map_is_mounted_and_parses(docs):
    deployment = only(docs, "Deployment")
    config_map = only(docs, "ConfigMap")
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    mount = mounts["/etc/maxcompute-exporter"]
    assert mount.get("readOnly") is True
    assert volumes[mount["name"]]["configMap"]["name"] == config_map["metadata"]["name"]
    # readOnlyRootFilesystem: /tmp is a writable emptyDir.
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]

    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert set(config) <= {"targets", "poll"}
    assert config["targets"], "the example config needs a target"
    for target in config["targets"]:
        assert target["region"]
        assert set(target) <= {"region", "endpoint", "quotas", "owners", "labels"}
    assert set(config["poll"]) <= {"interval", "window", "page_concurrency", "timeout"}


def test_service_selects_the_pods(docs):
    service = only(docs, "Service")
    template_labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector.items() <= template_labels.items()
    assert service["spec"]["ports"] == [
        {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
    ]


def test_service_monitor_scrapes_the_service(docs):
    monitor = only(docs, "ServiceMonitor")
    service = only(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    match = monitor["spec"]["selector"]["matchLabels"]
    assert match.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == PORT_NAME
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] in {"30s", "60s"}
    # The alerts match job="maxcompute-exporter": the job label is the Service's name.
    assert "jobLabel" not in monitor["spec"]
    assert service["metadata"]["name"] == NAME


def test_prometheus_rule_carries_the_rules_of_rules_yml(docs):
    rule = only(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == NAME
    assert set(rule["spec"]) == {"groups"}
    expected = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    assert rule["spec"]["groups"] == expected, (
        "deploy/kubernetes/prometheusrule.yaml is out of date with "
        "deploy/prometheus/rules.yml: run `python -m tests.deploy.test_deploy_kubernetes --sync`"
    )
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for item in group["rules"]:
            assert ("alert" in item) != ("record" in item)
            assert item["expr"]


def test_prometheus_rule_file_is_the_generated_text():
    assert PROMETHEUS_RULE.read_text(encoding="utf-8") == prometheus_rule_text(), (
        "deploy/kubernetes/prometheusrule.yaml differs from what "
        "`python -m tests.deploy.test_deploy_kubernetes --sync` generates"
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--sync"]:
        sys.exit("usage: python -m tests.deploy.test_deploy_kubernetes --sync")
    PROMETHEUS_RULE.write_text(prometheus_rule_text(), encoding="utf-8")
    print(f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}")


def test_configmap_config_passes_the_exporters_own_validation() -> None:
    from exporter.config import parse_config

    config = parse_config(
        yaml.safe_load((BASE / "config.yaml").read_text(encoding="utf-8")),
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIx", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"},
    )
    assert config.targets
