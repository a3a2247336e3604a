"""``aebench publish``: the static site built from the throw-away repository of test_history."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag

import pytest

from aebench.cli import main
from aebench.history.site import publish
from tests.test_history import INTEL, ThrowAwayRepo, base_results, build_repository


class Links(HTMLParser):
    """Every href and src of a page, SVG links included, and every element id."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "xlink:href") and value:
                self.targets.append(value)
            if name == "id" and value:
                self.ids.add(value)


def parsed(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def links_of(page: Path) -> list[str]:
    return parsed(page).targets


def crawl(root: Path) -> set[Path]:
    """Every page reached by following relative links from the front page; a dead link fails."""
    seen, todo, fragments = set(), [root / "index.html"], []
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        for target in links_of(page):
            url, fragment = urldefrag(target)
            if url.startswith("data:"):
                continue
            assert not re.match(r"^[a-z]+:", url), f"{page}: link to elsewhere {target!r}"
            resolved = (page.parent / url).resolve() if url else page
            assert resolved.is_file(), f"{page.relative_to(root)}: dead link {target!r}"
            if fragment and resolved.suffix == ".html":
                fragments.append((page, resolved, fragment))
            if resolved.suffix == ".html":
                todo.append(resolved)
    for page, target, fragment in fragments:  # every #anchor names an element of its page
        if target.suffix == ".html" and not fragment.startswith("m"):  # SVG marker refs: #m…
            assert fragment in parsed(target).ids, f"{page.relative_to(root)}: dead #{fragment}"
    return seen


@pytest.fixture
def repo(tmp_path) -> ThrowAwayRepo:
    return build_repository(tmp_path / "repo")


def test_every_page_is_reached_by_links_and_nothing_points_elsewhere(repo, tmp_path):
    site = tmp_path / "site"
    published = publish(repo.path, site)
    pages = {p.resolve() for p in site.rglob("*.html")}
    assert crawl(site.resolve()) == pages
    names = {p.relative_to(site.resolve()).as_posix() for p in pages}
    assert {
        "index.html",
        "history/index.html",
        "reports/index.html",
        "docs/readme.html",
        "docs/guide.html",
    } <= names
    # 7 commits changed reports/index.html; "unrecorded" and "baseline" committed the same
    # bytes (only environment.json differs), stored once as one page naming both commits
    assert len([n for n in names if re.fullmatch(r"reports/[0-9a-f]{16}\.html", n)]) == 6
    manifest = json.loads((site / "manifest.json").read_text())
    shared = [e for e in manifest.values() if len(e["commits"]) == 2]
    assert len(shared) == 1
    assert published.missing == ["studies", "full_mnist"]
    assert (site / "history" / "history.csv").is_file()


def test_docs_are_pages_with_their_links_kept(repo, tmp_path):
    publish(repo.path, tmp_path / "site")
    readme = (tmp_path / "site" / "docs" / "readme.html").read_text()
    guide = (tmp_path / "site" / "docs" / "guide.html").read_text()
    assert 'href="guide.html#usage"' in readme and 'id="usage"' in guide
    assert 'href="readme.html"' in guide
    assert "<code>https://example.org</code>" in guide and 'href="https' not in guide
    assert 'href="../aebench/cli.py"' not in guide  # no page for code: its text stays


def test_a_past_report_links_back_to_the_history(repo, tmp_path):
    site = tmp_path / "site"
    publish(repo.path, site)
    history = (site / "history" / "index.html").read_text()
    targets = re.findall(r"<a xlink:href=\"([^\"]+)\"", history)
    assert targets and all(t.startswith("../reports/") for t in targets)
    row = re.search(rf'<span id="{repo.anchors["regression"]}"><a href="([^"]+)"', history)
    assert row is not None
    page = (site / "history" / row.group(1)).resolve()
    text = page.read_text()
    assert f"#{repo.anchors['regression']}" in text and "back to the history" in text
    assert "Report</h1>" in text  # the committed page itself, below the bar


def test_rebuild_after_one_commit_renders_only_its_page_and_the_history(repo, tmp_path):
    site = tmp_path / "site"
    publish(repo.path, site)
    before = {p.name for p in (site / "reports").iterdir()}
    # a new commit whose report is byte-identical to the baseline's: stored once
    repo.results(base_results(), INTEL)
    repo.commit("revert", "back to the baseline results")
    again = publish(repo.path, site)
    changed = set(again.written)
    assert {"history/index.html", "index.html", "reports/index.html"} <= changed
    past = [p for p in changed if re.fullmatch(r"reports/[0-9a-f]{16}\.html", p)]
    assert len(past) == 1  # the shared page, now naming the new commit too
    assert changed - set(past) <= {
        "history/index.html",
        "history/history.csv",
        "history/changes.csv",
        "index.html",
        "reports/index.html",
    }
    assert {p.name for p in (site / "reports").iterdir()} == before
    manifest = json.loads((site / "manifest.json").read_text())
    assert len(manifest[past[0]]["commits"]) == 3  # unrecorded, baseline and the new one


def test_publish_refuses_a_folder_that_is_not_a_site(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(repo.path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["publish", str(busy)])
    assert exit_info.value.code == 2
    assert "not a site aebench published" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    main(["publish", str(tmp_path / "fresh")])
    assert "page(s) written" in capsys.readouterr().out
    main(["publish", str(tmp_path / "fresh")])  # a site from before: brought up to date
    assert "0 page(s) written" in capsys.readouterr().out


def test_a_tip_without_a_report_gets_a_front_page_saying_so(repo, tmp_path):
    (repo.path / "reports" / "index.html").unlink()
    repo.commit("noreport", "the report removed")
    site = tmp_path / "site"
    publish(repo.path, site)
    front = (site / "index.html").read_text()
    assert "No report at this commit" in front
    assert {p.resolve() for p in site.rglob("*.html")} == crawl(site.resolve())


def test_a_broken_manifest_is_rebuilt_and_a_narrower_range_drops_old_pages(repo, tmp_path):
    site = tmp_path / "site"
    publish(repo.path, site)
    (site / "manifest.json").write_text("[1, 2")  # edited by hand, cut short
    again = publish(repo.path, site)  # every past page checked again (same bytes: kept)
    assert len([p for p in again.kept if p.startswith("reports/")]) >= 6
    assert len(json.loads((site / "manifest.json").read_text())) == 6
    narrower = publish(repo.path, site, "HEAD~2..HEAD")
    assert narrower.removed  # pages of commits outside the range are gone
    assert {p.resolve() for p in site.rglob("*.html")} == crawl(site.resolve())


def test_an_empty_range_is_one_clear_message(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(repo.path)
    with pytest.raises(SystemExit):
        main(["publish", str(tmp_path / "site"), "--range", "HEAD..HEAD"])
    assert "holds no commit: nothing to publish" in capsys.readouterr().err
