"""The kustomize base generates its ConfigMap from deploy/kubernetes/config.yaml with a hash of
the content in its name, so an edited config rolls the Deployment's pods."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_deploy_kubernetes import BASE, only, render
from tests.support.kustomize_generator import config_map_hash


def copy_of_base(tmp_path: Path) -> Path:
    copied = tmp_path / "kubernetes"
    shutil.copytree(BASE, copied)
    return copied


def config_map_name(docs: list[dict[str, Any]]) -> tuple[str, str]:
    """The generated ConfigMap's name, and the name the Deployment's volume mounts."""
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    return only(docs, "ConfigMap")["metadata"]["name"], volume["configMap"]["name"]


def test_the_config_map_is_generated_with_a_content_hash_the_deployment_follows(tmp_path):
    name, mounted = config_map_name(render())
    config = (BASE / "config.yaml").read_text(encoding="utf-8")
    assert name == f"maxcompute-exporter-config-{config_map_hash({'config.yaml': config})}"
    assert mounted == name

    edited = copy_of_base(tmp_path)
    (edited / "config.yaml").write_text(config.replace("interval: 60s", "interval: 30s"))
    new_name, new_mounted = config_map_name(render(edited))
    assert new_name != name, "an edited config must get a new ConfigMap name (pods roll)"
    assert new_mounted == new_name
    assert config_map_name(render(copy_of_base(tmp_path / "again"))) == (name, name)


def test_config_map_hash_of_known_data() -> None:
    # Suffixes `kubectl kustomize` (kustomize v5.5.0) gave these ConfigMaps: HTML characters
    # and non-ASCII text are where a JSON encoding most easily differs from Go's.
    assert config_map_hash({"one.txt": 'a: b <x> & "q"\n'}) == "c74mtkkg4d"
    assert config_map_hash({"cfg": "region: \u676d\u5dde\n"}) == "2fh89k7c42"


def test_the_python_rendering_names_the_config_map_as_kustomize_does() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the hash is checked against known values above")
    built = subprocess.run(
        [kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=60, check=True
    )
    real = [doc for doc in yaml.safe_load_all(built.stdout) if doc is not None]
    assert config_map_name(render()) == config_map_name(real)
