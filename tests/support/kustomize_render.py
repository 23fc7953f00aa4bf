"""`kustomize build`, done in Python for the deploy tests, for the features deploy/ uses.

CI has no kubectl, so the manifests are checked as this renders them; where kubectl is
installed, the tests compare the two (tests/deploy/test_deploy_kubernetes_sharded*.py).
What is rendered, in kustomize's order: ``resources`` (files, and directories rendered first),
``patches`` (a ``$patch: delete`` of one object, or JSON 6902 ``add`` operations on the
objects a ``target`` names), ``configMapGenerator`` (its name followed into workloads' volumes,
below too), ``nameSuffix``, ``namespace``, ``labels`` (metadata; with ``includeSelectors``
the workloads' selectors and pod templates too; with ``includeTemplates`` the templates) and
``images``. Anything else kustomize would do here (following a renamed object into another
object that refers to it, labels in selectors of other kinds) is refused, not guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.kustomize_generator import generate_config_map

Doc = dict[str, Any]
# Kinds whose pod template kustomize updates (ConfigMap names, images, template labels).
WORKLOADS = {"Deployment", "StatefulSet"}
# Fields of a pod spec whose label selectors kustomize's includeSelectors would also change.
POD_SELECTOR_FIELDS = {"affinity", "topologySpreadConstraints"}


def render(base: Path) -> list[Doc]:
    """The objects ``kustomize build base`` prints, in the features described above."""
    kust = yaml.safe_load((base / "kustomization.yaml").read_text(encoding="utf-8"))
    docs, renamed = resources(base, kust)
    for patch in kust.get("patches", []):
        docs = patched(
            docs, yaml.safe_load((base / patch["path"]).read_text(encoding="utf-8")), patch
        )
    generated = [generate_config_map(base, entry) for entry in kust.get("configMapGenerator", [])]
    renamed |= {
        entry["name"]: doc["metadata"]["name"]
        for entry, doc in zip(kust.get("configMapGenerator", []), generated, strict=True)
    }
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            for volume in doc["spec"]["template"]["spec"].get("volumes", []):
                if "configMap" in volume:
                    name = volume["configMap"]["name"]
                    volume["configMap"]["name"] = renamed.get(name, name)
    docs = generated + docs
    if "nameSuffix" in kust:
        add_name_suffix(docs, kust["nameSuffix"])
    for doc in docs:
        if "namespace" in kust:
            doc["metadata"]["namespace"] = kust["namespace"]
        for entry in kust.get("labels", []):
            add_labels(doc, entry)
        if doc["kind"] in WORKLOADS:
            set_images(doc, kust.get("images", []))
    return docs


def resources(base: Path, kust: Doc) -> tuple[list[Doc], dict[str, str]]:
    """The objects ``resources`` lists, and the generated ConfigMaps' names from below."""
    docs: list[Doc] = []
    renamed: dict[str, str] = {}
    for resource in kust["resources"]:
        path = (base / resource).resolve()
        if path.is_dir():  # a kustomization this one builds on, rendered first
            below = render(path)
            for doc in below:
                if doc["kind"] == "ConfigMap":  # generated: <name>-<hash>
                    renamed[doc["metadata"]["name"].rsplit("-", 1)[0]] = doc["metadata"]["name"]
            docs += below
            continue
        assert path.is_file(), f"kustomization.yaml lists {resource}, which does not exist"
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs, renamed


def patched(docs: list[Doc], patch: Any, entry: Doc) -> list[Doc]:
    """``docs`` after one entry of ``patches``: a deleting patch or JSON 6902 additions."""
    if isinstance(patch, list):  # JSON 6902, applied to every object the target names
        target = entry["target"]
        assert set(target) <= {"kind", "name"}, f"only kind and name targets: {target}"
        matched = [
            doc
            for doc in docs
            if doc["kind"] == target["kind"]
            and target.get("name", doc["metadata"]["name"]) == doc["metadata"]["name"]
        ]
        assert matched, f"the patch {entry['path']} matches nothing"
        for doc in matched:
            for operation in patch:
                json_patch_add(doc, operation)
        return docs
    assert patch.pop("$patch") == "delete", "only deleting strategic merge patches are rendered"
    key = (patch["kind"], patch["metadata"]["name"])
    return [doc for doc in docs if (doc["kind"], doc["metadata"]["name"]) != key]


def json_patch_add(doc: Doc, operation: Doc) -> None:
    """RFC 6902 ``add`` of a member to an object that exists (the only operation used)."""
    assert operation["op"] == "add", f"only `add` is rendered: {operation}"
    *parents, member = operation["path"].lstrip("/").split("/")
    node = doc
    for key in parents:
        node = node[key.replace("~1", "/").replace("~0", "~")]
    node[member.replace("~1", "/").replace("~0", "~")] = operation["value"]


def add_name_suffix(docs: list[Doc], suffix: str) -> None:
    """Rename every object; kustomize would also follow the new names into objects referring
    to them, which this does not, so only workloads (referred to by nothing) are renamed."""
    for doc in docs:
        assert doc["kind"] in WORKLOADS, f"nameSuffix is rendered for workloads only: {doc['kind']}"
        doc["metadata"]["name"] += suffix


def add_labels(doc: Doc, entry: Doc) -> None:
    """One entry of ``labels``: metadata, and selectors and templates as the entry asks."""
    pairs = entry["pairs"]
    doc["metadata"].setdefault("labels", {}).update(pairs)
    if doc["kind"] not in WORKLOADS:
        assert not entry.get("includeSelectors"), f"selector labels of a {doc['kind']}"
        return
    template = doc["spec"]["template"]
    if entry.get("includeSelectors"):
        assert not POD_SELECTOR_FIELDS & set(template["spec"]), "selectors inside the pod"
        doc["spec"]["selector"].setdefault("matchLabels", {}).update(pairs)
    if entry.get("includeSelectors") or entry.get("includeTemplates"):
        template["metadata"].setdefault("labels", {}).update(pairs)


def set_images(doc: Doc, images: list[Doc]) -> None:
    """``images``: a new name or tag for the containers running the image named."""
    for container in doc["spec"]["template"]["spec"]["containers"]:
        for image in images:
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
