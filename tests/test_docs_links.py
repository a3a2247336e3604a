"""Every relative link in the README, the docs and the report points at something that exists.

For README.md, every ``docs/*.md`` and ``reports/README.md``: each relative link or image target
(resolved against the linking file's folder, ``#anchor`` stripped) must exist inside the
repository, and each ``#anchor`` (``#section`` in the same file, or ``page.md#section``) must be
the slug of a heading of its target Markdown file, as GitHub writes it: the heading's text
lowercased, punctuation other than hyphens and underscores dropped, each space a hyphen, and
``-1``, ``-2``, ... after repeated headings. Links with a scheme (``https:``, ``mailto:``) are not
followed. README.md stays a page a newcomer reads in five minutes: at most 300 lines.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

pytestmark = pytest.mark.quick

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 300
_PARSER = MarkdownIt("commonmark").enable("table")


def checked_files() -> list[Path]:
    """README.md, every page in docs/, and the committed report."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "reports/README.md"]


def _inline_text(token: Token) -> str:
    """A heading's text as rendered: text and code spans, without the markup around them."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(_inline_text(child))
    return "".join(parts)


def slug(text: str) -> str:
    """GitHub's anchor for a heading's text: ``Parallel runs: aebench run`` →
    ``parallel-runs-aebench-run``."""
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def heading_slugs(text: str) -> set[str]:
    """Every anchor the headings of a Markdown text define (repeats numbered as GitHub does)."""
    tokens = _PARSER.parse(text)
    seen: dict[str, int] = {}
    slugs = set()
    for opening, inline in itertools.pairwise(tokens):
        if opening.type != "heading_open":
            continue
        base = slug(_inline_text(inline))
        count = seen.get(base, 0)
        seen[base] = count + 1
        slugs.add(base if count == 0 else f"{base}-{count}")
    return slugs


@functools.cache
def slugs_of(path: Path) -> frozenset[str]:
    return frozenset(heading_slugs(path.read_text(encoding="utf-8")))


def link_targets(text: str) -> list[str]:
    """The target of every link and image in a Markdown text, in order (code is not parsed)."""
    targets = []

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            if token.type == "link_open":
                targets.append(str(token.attrGet("href") or ""))
            elif token.type == "image":
                targets.append(str(token.attrGet("src") or ""))
            if token.children:
                walk(token.children)

    walk(_PARSER.parse(text))
    return targets


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Why each relative link of ``path`` is broken; empty when every one resolves."""
    problems = []
    for target in link_targets(path.read_text(encoding="utf-8")):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # https:, mailto:, ...: not this repository's files
        if not parts.path and not parts.fragment:
            problems.append(f"{target!r}: an empty link")
            continue
        linked = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not linked.is_relative_to(root.resolve()):
            problems.append(f"{target!r}: points outside the repository")
            continue
        if not linked.exists():
            problems.append(f"{target!r}: {linked.relative_to(root.resolve())} does not exist")
            continue
        anchor = unquote(parts.fragment)
        if not anchor:
            continue
        if linked.suffix != ".md" or not linked.is_file():
            problems.append(f"{target!r}: an anchor into a file that is not Markdown")
        elif anchor not in slugs_of(linked):
            problems.append(f"{target!r}: no heading of {linked.name} has the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("path", checked_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(path):
    assert path.is_file(), f"{path} is missing"
    problems = broken_links(path)
    assert not problems, f"{path.relative_to(ROOT)}: broken links:\n" + "\n".join(problems)


def test_the_readme_is_at_most_300_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; move detail to docs/ (at most {README_MAX_LINES})"
    )


def test_slugs_are_githubs():
    headings = (
        "# The full MNIST\n"
        "## Parallel runs: `aebench run`\n"
        "## The data, offline\n"
        "## What runs\n"
        "## What runs\n"
        "### Measured: two workers against plain `dvc repro`\n"
        "#### `recon`: reconstructions of the test split\n"
        "## Benchmark your own model and data\n"
        "## No-op runs and β_vae × 2\n"
    )
    assert heading_slugs(headings) == {
        "the-full-mnist",
        "parallel-runs-aebench-run",
        "the-data-offline",
        "what-runs",
        "what-runs-1",
        "measured-two-workers-against-plain-dvc-repro",
        "recon-reconstructions-of-the-test-split",
        "benchmark-your-own-model-and-data",
        "no-op-runs-and-β_vae--2",
    }


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/target.md").write_text("# Target\n\n## A section: here\n")
    page = tmp_path / "docs/page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](target.md) [ok](target.md#a-section-here) [ok](#page) [web](https://example.org)\n"
        "[gone](missing.md) [bad anchor](target.md#nowhere) [bad local](#nothing)\n"
        "![gone image](figures/none.png) [outside](../../elsewhere.md)\n\n"
        "```\n[in code](not-a-link.md)\n```\n"
    )
    problems = broken_links(page, tmp_path)
    assert [p.split(":")[0] for p in problems] == [
        "'missing.md'",
        "'target.md#nowhere'",
        "'#nothing'",
        "'figures/none.png'",
        "'../../elsewhere.md'",
    ]
