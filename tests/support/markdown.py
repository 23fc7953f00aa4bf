"""Markdown as GitHub renders it: the anchors of a file's headings and the links it holds, for the
tests that check the documentation's links and the rules' runbook URLs."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); a target may carry a "title" after a space.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def prose_lines(markdown: str) -> Iterator[tuple[int, str]]:
    """Each line outside fenced code blocks, numbered from 1."""
    in_fence = False
    for number, line in enumerate(markdown.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, line


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file (and explicit `<a id>` ones)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(markdown):
        anchors.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        text = re.sub(r"`([^`]*)`", r"\1", match.group(1)).lower()
        slug = "".join(
            ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN"
        ).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def links(markdown: str) -> Iterator[tuple[int, str]]:
    """Each link target in the prose (not in code), with its line number."""
    for number, line in prose_lines(markdown):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            yield number, match.group(1)


def is_relative(target: str) -> bool:
    """Whether a link points inside the repository (no scheme, no protocol-relative host)."""
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//", target)
