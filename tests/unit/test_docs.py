"""The documentation: a short front page, every docs/ page reachable from it and saying first what
it is for, every relative link and #anchor resolving as GitHub resolves them, and the tables a
reader relies on (alerts, metrics) naming exactly what the rules and the code define."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from tests.support.markdown import github_anchors, is_relative, links
from tests.support.metric_contract import CONTRACT_METRICS
from tests.support.tools import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250
DOC_PAGES = sorted(DOCS.glob("*.md"))
# Every Markdown file a reader follows links from.
LINKED_FILES = [README, *DOC_PAGES, *sorted((ROOT / "deploy").rglob("README.md"))]
LINKED_FILES += [ROOT / "bench" / "README.md"]
SAMPLE_SUFFIXES = ("_bucket", "_sum", "_count", "_gcount", "_gsum")


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def broken_links(source: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `source` whose file or #anchor does not exist inside `root`, as
    `line: target (why)`."""
    broken = []
    for number, target in links(source.read_text(encoding="utf-8")):
        if not is_relative(target):
            continue
        path_part, _, anchor = target.partition("#")
        path = (source.parent / unquote(path_part)).resolve() if path_part else source
        if not path.exists() or not path.is_relative_to(root):
            broken.append(f"{number}: {target} (no such file)")
        elif anchor and (path.suffix != ".md" or path.is_dir()):
            broken.append(f"{number}: {target} (an anchor into a file that is not Markdown)")
        elif anchor and unquote(anchor) not in github_anchors(path.read_text(encoding="utf-8")):
            broken.append(f"{number}: {target} (no heading #{anchor} in {path.name})")
    return broken


def test_the_readme_is_a_short_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_keeps_the_two_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "```sh\nbash scripts/run.sh\n```" in readme
    assert "```sh\nbash scripts/test.sh\n```" in readme


def test_every_docs_page_is_linked_from_the_readme() -> None:
    assert DOC_PAGES, "docs/ holds no page"
    targets = {target.partition("#")[0] for _, target in links(README.read_text(encoding="utf-8"))}
    unlinked = [relative(page) for page in DOC_PAGES if relative(page) not in targets]
    assert unlinked == []


@pytest.mark.parametrize("page", DOC_PAGES, ids=relative)
def test_every_docs_page_says_first_what_it_is_for(page: Path) -> None:
    title, blank, first_paragraph, *_ = page.read_text(encoding="utf-8").split("\n", 3)
    assert re.fullmatch(r"# \S.*", title), f"{relative(page)} must start with its title"
    assert blank == ""
    assert first_paragraph.startswith("This page "), relative(page)


@pytest.mark.parametrize("source", LINKED_FILES, ids=relative)
def test_every_relative_link_and_anchor_resolves(source: Path) -> None:
    assert broken_links(source) == []


def test_the_link_check_finds_missing_files_and_anchors_outside_code(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Credentials\n", encoding="utf-8")
    (tmp_path / "data.json").write_text("{}", encoding="utf-8")
    sample = tmp_path / "docs" / "sample.md"
    sample.write_text(
        "# Sample\n\n## A heading, with `code`\n\n"
        "[ok](#a-heading-with-code) [ok](other.md#credentials) [ok](https://example.com/x.md)\n"
        "[ok](../data.json) ![ok](other.md)\n"
        "[gone](#nowhere) [gone](other.md#nowhere) [gone](missing.md) [gone](../data.json#x)\n"
        "[gone](../../outside.md) `[in code](missing-too.md)`\n"
        "```\n[in a fence](missing-three.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(sample, root=tmp_path) == [
        "7: #nowhere (no heading #nowhere in sample.md)",
        "7: other.md#nowhere (no heading #nowhere in other.md)",
        "7: missing.md (no such file)",
        "7: ../data.json#x (an anchor into a file that is not Markdown)",
        "8: ../../outside.md (no such file)",
    ]


def rule_alerts() -> set[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules.yml").read_text(encoding="utf-8"))
    every_rule = [rule for group in rules["groups"] for rule in group["rules"]]
    return {rule["alert"] for rule in every_rule if "alert" in rule}


@pytest.mark.parametrize("doc", [README, DOCS / "alerts.md"], ids=relative)
def test_the_alert_tables_name_every_alert_of_the_rules(doc: Path) -> None:
    rows = [line for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    tabled = {name for row in rows for name in re.findall(r"^\| \[?`(MaxCompute\w+)`", row)}
    assert tabled == rule_alerts()


def test_the_metrics_reference_documents_every_contract_metric() -> None:
    reference = (DOCS / "metrics.md").read_text(encoding="utf-8")
    rows = {
        match.group(1)
        for line in reference.splitlines()
        if (match := re.match(r"^\| `(maxcompute_\w+)", line))
    }
    undocumented = {
        name
        for name in CONTRACT_METRICS
        if name not in rows
        and not any(name.endswith(s) and name.removesuffix(s) in rows for s in SAMPLE_SUFFIXES)
    }
    assert undocumented == set()


def test_the_readme_metrics_are_contract_metrics() -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## The metrics used most", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `(maxcompute_\w+)`", section, flags=re.MULTILINE))
    assert len(named) == 12
    families = {n.removesuffix(s) for n in CONTRACT_METRICS for s in SAMPLE_SUFFIXES} | set(
        CONTRACT_METRICS
    )
    assert named <= families
