"""Paths and names agree across deploy/README.md, the compose stack, the Grafana provisioning
files, the systemd unit, the Dockerfile and the Kubernetes manifests: a path the docs name is a
path some deploy file creates, mounts or reads."""

from __future__ import annotations

import configparser
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tests.support.tools import ROOT

DEPLOY_README = ROOT / "deploy" / "README.md"
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
UNIT = ROOT / "deploy" / "systemd" / "maxcompute-exporter.service"
KUBERNETES = ROOT / "deploy" / "kubernetes"
DASHBOARD_PROVIDER = ROOT / "grafana" / "provisioning" / "dashboards" / "maxcompute.yml"
DATASOURCE = ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
CONFIG_PATH = "/etc/maxcompute-exporter/config.yaml"
# Absolute paths in prose that belong to the deploy files (not e.g. /tmp or /dev/null).
OWNED = re.compile(r"(/(?:etc|opt|var/lib)/(?:maxcompute-exporter|grafana|prometheus)[\w./-]*)")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose_mounts() -> dict[str, Path]:
    """Container path -> repository path of every bind mount in the compose stack."""
    mounts = {}
    for service in load(COMPOSE)["services"].values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def unit_paths() -> set[str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    text = " ".join(parser["Service"].values())
    return {match.rstrip(".") for match in OWNED.findall(text)}


def kubernetes_paths() -> set[str]:
    deployment = load(KUBERNETES / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    paths = {mount["mountPath"] for mount in container["volumeMounts"]}
    paths |= {arg.split("=", 1)[1] for arg in container["args"] if arg.startswith("--config=")}
    return paths


def resolves(path: str, mounts: dict[str, Path], known: set[str]) -> bool:
    """``path`` is a path a deploy file names, or lies inside a compose mount that has it."""
    if path in known or any(path.startswith(f"{k}/") and k.endswith("/bin") for k in known):
        return True
    for target, source in mounts.items():
        if path == target:
            return True
        if path.startswith(f"{target}/"):
            return (source / PurePosixPath(path).relative_to(target)).exists()
    return False


def test_every_path_deploy_readme_names_exists_in_a_deploy_file() -> None:
    mounts = compose_mounts()
    provider = load(DASHBOARD_PROVIDER)["providers"][0]["options"]["path"]
    known = unit_paths() | kubernetes_paths() | {provider, "/etc/maxcompute-exporter"}
    known |= {"/opt/maxcompute-exporter", "/opt/maxcompute-exporter/bin"}
    named = {p.rstrip(".,:") for p in OWNED.findall(DEPLOY_README.read_text(encoding="utf-8"))}
    named = {p.removesuffix(":ro") for p in named}
    assert f"{provider}" in named, "deploy/README.md must say where the dashboards are read"
    unknown = sorted(p for p in named if not resolves(p, mounts, known))
    assert unknown == [], f"deploy/README.md names paths no deploy file has: {unknown}"


def test_grafana_reads_the_dashboards_where_compose_mounts_them() -> None:
    mounts = compose_mounts()
    provider = load(DASHBOARD_PROVIDER)["providers"][0]["options"]["path"]
    assert mounts[provider] == ROOT / "grafana" / "dashboards"
    grafana = load(COMPOSE)["services"]["grafana"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert resolves(home, mounts, set()) and home.startswith(f"{provider}/")
    assert mounts["/etc/grafana/provisioning/dashboards"] == DASHBOARD_PROVIDER.parent
    assert mounts["/etc/grafana/provisioning/datasources"] == DATASOURCE.parent


def test_the_datasource_is_the_compose_prometheus_at_its_scrape_interval() -> None:
    (source,) = load(DATASOURCE)["datasources"]
    services = load(COMPOSE)["services"]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"]).groups()
    assert host in services
    assert f"{port}:{port}" in services[host]["ports"]
    scrape = load(COMPOSE.parent / "prometheus.yml")["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape


def test_one_config_path_in_the_image_the_unit_and_kubernetes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f'CMD ["--config", "{CONFIG_PATH}"]' in dockerfile
    assert CONFIG_PATH in unit_paths()
    assert CONFIG_PATH in kubernetes_paths()
    assert str(PurePosixPath(CONFIG_PATH).parent) in kubernetes_paths()  # the mount
    generator = load(KUBERNETES / "kustomization.yaml")["configMapGenerator"]
    assert [entry["files"] for entry in generator] == [[PurePosixPath(CONFIG_PATH).name]]


def test_kubernetes_names_in_deploy_readme_match_the_manifests() -> None:
    readme = DEPLOY_README.read_text(encoding="utf-8")
    kustomization = load(KUBERNETES / "kustomization.yaml")
    deployment = load(KUBERNETES / "deployment.yaml")
    service = load(KUBERNETES / "service.yaml")
    secret = re.search(r"create secret generic ([\w-]+)", readme).group(1)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    referenced = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for item in container["env"]
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert referenced == {secret}
    namespace = kustomization["namespace"]
    assert f"kubectl create namespace {namespace}" in readme
    assert (
        f"kubectl -n {namespace} rollout status deploy/{deployment['metadata']['name']}" in readme
    )
    assert f"port-forward svc/{service['metadata']['name']} 10181" in readme
    assert "kubernetes/config.yaml" in readme and (KUBERNETES / "config.yaml").is_file()


def test_systemd_reload_checks_the_config_then_sends_sighup() -> None:
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    reloads = [line.split("=", 1)[1] for line in lines if line.startswith("ExecReload=")]
    assert reloads == [
        f"/opt/maxcompute-exporter/bin/maxcompute-exporter --config {CONFIG_PATH} --check-config",
        "/bin/kill -HUP $MAINPID",
    ]
