"""kustomize's configMapGenerator, done in Python for the deploy tests (no kustomize needed).

The name suffix is computed as kustomize's api/hasher does: SHA-256 of the Go-JSON encoding of
``{"data": ..., "kind": "ConfigMap", "name": ""}`` (keys sorted, no spaces, ``<``, ``>`` and
``&`` escaped as Go's encoder does; the name is empty when kustomize hashes), its first ten hex
digits with 0, 1, 3, a and e replaced so the suffix never reads as a number or a word.
tests/deploy/test_deploy_kubernetes.py checks it against `kubectl kustomize` where kubectl is
installed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# kustomize's hasher.encode: letters that cannot form a word or a number.
SUFFIX_LETTERS = str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"})
GO_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def go_json(value: object) -> str:
    """``value`` as Go's json.Marshal writes it: sorted keys, no spaces, HTML-safe."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in GO_HTML_ESCAPES.items():
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def config_map_hash(data: dict[str, str]) -> str:
    """The ten-character suffix kustomize appends to a generated ConfigMap's name."""
    encoded = go_json({"kind": "ConfigMap", "name": "", "data": data})
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:10].translate(SUFFIX_LETTERS)


def generate_config_map(base: Path, generator: dict[str, Any]) -> dict[str, Any]:
    """The ConfigMap one ``configMapGenerator`` entry with ``files`` makes, hash-named."""
    data = {}
    for entry in generator.get("files", []):
        key, _, path = entry.rpartition("=")
        data[key or Path(path).name] = (base / path).read_text(encoding="utf-8")
    labels = dict(generator.get("options", {}).get("labels", {}))
    name = generator["name"]
    if not generator.get("options", {}).get("disableNameSuffixHash", False):
        name = f"{name}-{config_map_hash(data)}"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }
