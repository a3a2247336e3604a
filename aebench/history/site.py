"""``aebench publish OUT_DIR``: the benchmark as a static site that opens from disk.

Layout (every link relative, nothing loaded from elsewhere)::

    index.html               the latest default report, with the site's navigation bar
    studies/index.html       the latest studies report, where committed
    full-mnist/index.html    the latest full-MNIST report, where committed
    history/                 the history page (its points link to the past reports), CSVs
    reports/index.html       every past report, by section and commit
    reports/<blob>.html      one committed report as it was (past reports cannot be re-rendered:
                             their per-run outputs are not in git), stored once per distinct
                             file however many commits hold it
    docs/                    the README and docs/*.md as pages
    manifest.json            what each past-report page holds, so a rebuild skips it unchanged

Everything comes from the newest commit of the range, never from the work tree, so a site
rebuilt from the same commits is the same site.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from aebench.history.build import History, read_history
from aebench.history.git_store import Commit, GitStore, commits_changing, files_under, tip_commit
from aebench.history.markdown_pages import relative_url, render_markdown_page
from aebench.history.page import changes_table, points_table, render_page
from aebench.history.snapshots import SECTIONS, Section
from aebench.io import write_text
from aebench.report.html import CSP, STYLE

MANIFEST = "manifest.json"
LATEST = {
    "default": "index.html",
    "studies": "studies/index.html",
    "full_mnist": "full-mnist/index.html",
}
HISTORY_PAGE = "history/index.html"
PAST_INDEX = "reports/index.html"
DOCS_INDEX = "docs/index.html"
SECTION_BY_NAME = {s.name: s for s in SECTIONS}


@dataclass
class Published:
    """What a build did: pages written (changed bytes) and past-report pages left as they were."""

    out_dir: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # sections without a report at the tip


def doc_page(repo_path: str, sections: list[str] | None = None) -> str | None:
    """A Markdown file's page on the site; None where it has none (a report the published commit
    does not hold, where ``sections`` says which it holds)."""
    if repo_path == "README.md":
        return "docs/readme.html"
    if repo_path == "docs/README.md":
        return DOCS_INDEX
    if repo_path.startswith("docs/") and repo_path.endswith(".md"):
        return repo_path.removesuffix(".md") + ".html"
    for section in SECTIONS:
        if repo_path in (section.path("README.md"), section.path("index.html")):
            held = sections is None or section.name in sections
            return LATEST[section.name] if held else None
    return None


def past_page(blob_id: str) -> str:
    return f"reports/{blob_id[:16]}.html"


PAST_PAGE = re.compile(r"reports/[0-9a-f]{16}\.html")


def navigation(page: str, sections: list[str], extra: str = "") -> str:
    """The bar every page carries: the latest reports, the history, past reports, the docs."""
    links = [("Report", LATEST["default"])]
    links += [
        (SECTION_BY_NAME[n].title, LATEST[n]) for n in ("studies", "full_mnist") if n in sections
    ]
    links += [("History", HISTORY_PAGE), ("Past reports", PAST_INDEX), ("Docs", "docs/readme.html")]
    anchors = " ".join(
        f'<a href="{html.escape(relative_url(page, target))}" style="margin-right:1em">'
        f"{html.escape(label)}</a>"
        for label, target in links
    )
    note = f'<div style="margin-top:.3em">{extra}</div>' if extra else ""
    return (
        '<nav class="site" style="font:14px/1.4 sans-serif;padding:.5em 1em;'
        'border-bottom:1px solid #ccc;background:#f6f8fa">'
        f'<strong style="margin-right:1em">aebench</strong>{anchors}{note}</nav>'
    )


def with_navigation(report_html: str, nav: str) -> str:
    """A committed report page with the bar put first in its body (the page is otherwise as
    committed)."""
    head, marker, rest = report_html.partition("<body>")
    if not marker:
        return nav + report_html
    return f"{head}<body>\n{nav}{rest}"


def plain_page(title: str, nav: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{nav}\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


class SiteWriter:
    """Writes pages under the site root, only where the bytes changed."""

    def __init__(self, out_dir: Path, published: Published) -> None:
        self.root = Path(out_dir)
        self.published = published

    def write(self, page: str, text: str) -> None:
        path = self.root / page
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            self.published.kept.append(page)
            return
        write_text(path, text)
        self.published.written.append(page)


def publish(cwd: Path, out_dir: Path, rev_range: str = "HEAD") -> Published:
    """Build (or bring up to date) the site for ``rev_range`` in ``out_dir``."""
    history = read_history(cwd, rev_range)
    published = Published(Path(out_dir))
    site = SiteWriter(out_dir, published)
    manifest_path = Path(out_dir) / MANIFEST
    old_manifest = read_manifest(manifest_path)
    if not manifest_path.is_file():  # marks the folder as a site from the start: a first
        write_text(manifest_path, "{}\n")  # build that fails part-way can be run again
    with GitStore(cwd) as store:
        tip = tip_commit(store.repo, rev_range)
        pages = past_reports(store, history)
        sections = [s.name for s in SECTIONS if store.blob_id(tip, s.path("index.html"))]
        published.missing = [s.name for s in SECTIONS if s.name not in sections]
        manifest = write_past_reports(store, site, pages, old_manifest, sections, history)
        write_latest(store, site, tip, sections, pages)
        link = report_link(pages)
        nav = navigation(HISTORY_PAGE, sections)
        site.write(HISTORY_PAGE, render_page(history, link, nav))
        site.write("history/history.csv", points_table(history).to_csv(index=False))
        site.write("history/changes.csv", changes_table(history).to_csv(index=False))
        write_past_index(site, pages, sections)
        write_docs(store, site, tip, sections)
    remove_stale_pages(site, old_manifest, manifest)
    write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return published


def read_manifest(path: Path) -> dict:
    """The previous build's record; an unreadable one (edited by hand, cut short) is ignored,
    so every past-report page is written again."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    return {page: entry for page, entry in manifest.items() if isinstance(entry, dict)}


def remove_stale_pages(site: SiteWriter, old: dict, new: dict) -> None:
    """Past-report pages an earlier build wrote that this one no longer has (a narrower range, a
    rewritten history): removed, so the site shows only what the range holds. Only pages the
    manifest names are touched."""
    for page in set(old) - set(new):
        path = site.root / page
        if PAST_PAGE.fullmatch(page) and path.is_file():
            path.unlink()
            site.published.removed.append(page)


# --- past reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PastReport:
    """A section's report page as one commit holds it."""

    section: str
    commit: Commit
    blob: str  # the page's git blob id: the same file at two commits is stored once

    @property
    def page(self) -> str:
        return past_page(self.blob)


def past_reports(store: GitStore, history: History) -> list[PastReport]:
    """Per section, each commit that changed its report page or its results (oldest first)."""
    out = []
    for section in SECTIONS:
        changed = commits_changing(store.repo, history.rev_range, [section.path("index.html")])
        in_history = [s.commit for s in history.sections.get(section.name, [])]
        commits = sorted(
            {c.full: c for c in [*changed, *in_history]}.values(), key=lambda c: c.timestamp
        )
        for commit in commits:
            blob = store.blob_id(commit, section.path("index.html"))
            if blob is not None:
                out.append(PastReport(section.name, commit, blob))
    return out


def report_link(pages: list[PastReport]):
    """The history page's link for a point: the section's report as its commit held it."""
    by_commit = {(p.section, p.commit.full): p.page for p in pages}

    def link(section: str, commit: Commit) -> str:
        target = by_commit.get((section, commit.full))
        return relative_url(HISTORY_PAGE, target) if target else f"#{commit.anchor}"

    return link


def write_past_reports(
    store: GitStore,
    site: SiteWriter,
    pages: list[PastReport],
    old_manifest: dict,
    sections: list[str],
    history: History,
) -> dict:
    """One page per distinct committed report file, skipped where the manifest says it is
    already there as it would be written (its blob, its commits)."""
    in_history = {c.full for c in history.commits}
    holders: dict[str, list[PastReport]] = {}
    for report in pages:
        holders.setdefault(report.blob, []).append(report)
    manifest = {}
    for blob, reports in holders.items():
        page = reports[0].page
        entry = {
            "section": reports[0].section,
            "in_history": [r.commit.full in in_history for r in reports],
            "commits": [r.commit.full for r in reports],
            "navigation": NAVIGATION_VERSION,
            "sections": sections,
        }
        manifest[page] = entry
        if old_manifest.get(page) == entry and (site.root / page).is_file():
            site.published.kept.append(page)
            continue
        found = store.object(blob)
        assert found is not None, f"blob {blob} vanished from the repository"
        text = found[1].decode("utf-8", errors="replace")
        site.write(page, with_navigation(text, past_nav(page, reports, sections, in_history)))
    return manifest


NAVIGATION_VERSION = 2  # bump when the bar's markup changes, so every past page is rewritten


def past_nav(
    page: str, reports: list[PastReport], sections: list[str], in_history: set[str]
) -> str:
    """The bar over a past report: which commit(s) committed it, each linked to its row in the
    history (a commit that changed the page but not the results has no row: the page's top)."""
    title = SECTION_BY_NAME[reports[0].section].title
    back = relative_url(page, HISTORY_PAGE)
    commits = ", ".join(
        f'<a href="{html.escape(back)}'
        f'{"#" + r.commit.anchor if r.commit.full in in_history else ""}">'
        f"<code>{r.commit.short}</code></a>"
        f" ({r.commit.date}, {html.escape(r.commit.subject[:80])})"
        for r in reports
    )
    extra = (
        f"<strong>{html.escape(title)} report as committed at</strong> {commits}. "
        f'<a href="{html.escape(back)}">← back to the history</a>'
    )
    return navigation(page, sections, extra)


def write_past_index(site: SiteWriter, pages: list[PastReport], sections: list[str]) -> None:
    parts = [
        "<h1>Past reports</h1>",
        "<p>Every committed report, newest first, as it was committed.</p>",
    ]
    for section in SECTIONS:
        rows = [p for p in pages if p.section == section.name]
        if not rows:
            continue
        items = "".join(
            f'<li><a href="{html.escape(relative_url(PAST_INDEX, p.page))}">'
            f"<code>{p.commit.short}</code></a> {p.commit.date}: "
            f"{html.escape(p.commit.subject[:120])}</li>"
            for p in reversed(rows)
        )
        parts += [f"<h2>{html.escape(section.title)}</h2>", f"<ul>{items}</ul>"]
    site.write(
        PAST_INDEX,
        plain_page("aebench: past reports", navigation(PAST_INDEX, sections), "\n".join(parts)),
    )


# --- latest reports and docs -------------------------------------------------------------------


def write_latest(
    store: GitStore,
    site: SiteWriter,
    tip: Commit,
    sections: list[str],
    pages: list[PastReport],
) -> None:
    """Each section's report as the newest commit holds it, with the bar naming the commit that
    committed it. Without a default report at the tip, the front page says so (the bar's
    "Report" link must lead somewhere, and an older build's front page must not linger)."""
    for name in sections:
        section: Section = SECTION_BY_NAME[name]
        found = store.blob(tip, section.path("index.html"))
        assert found is not None
        page = LATEST[name]
        made = [p.commit for p in pages if p.section == name and p.blob == found[0]]
        commit = made[-1] if made else tip
        extra = (
            f"Latest {html.escape(section.title.lower())} report, committed at "
            f"<code>{commit.short}</code> ({commit.date})."
        )
        text = found[1].decode("utf-8", errors="replace")
        site.write(page, with_navigation(text, navigation(page, sections, extra)))
    if "default" not in sections:
        body = (
            "<h1>No report at this commit</h1>"
            f"<p>Commit <code>{tip.short}</code> holds no committed default report "
            "(<code>reports/index.html</code>): run the pipeline and commit <code>reports/</code>. "
            "The history and the past reports are in the bar above.</p>"
        )
        site.write(
            LATEST["default"], plain_page("aebench", navigation("index.html", sections), body)
        )


def write_docs(store: GitStore, site: SiteWriter, tip: Commit, sections: list[str]) -> None:
    """The README and every docs/*.md of the newest commit as pages."""
    sources = ["README.md", *(p for p in files_under(store.repo, tip, "docs") if p.endswith(".md"))]

    def read_file(path: str) -> bytes | None:
        found = store.blob(tip, path)
        return None if found is None else found[1]

    for source in sources:
        text = store.text(tip, source)
        page = doc_page(source)
        if text is None or page is None:
            continue
        body = render_markdown_page(
            text, source, page, lambda path: doc_page(path, sections), read_file
        )
        title = next(
            (line.lstrip("# ") for line in text.splitlines() if line.startswith("#")), source
        )
        site.write(page, plain_page(f"aebench: {title}", navigation(page, sections), body))
