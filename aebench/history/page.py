"""The history page (one self-contained HTML file) and its CSV exports.

Per section, dataset and headline metric, one chart: each variant's mean with its 95% interval
over seeds against commit order. A series is drawn as a line only between comparable commits: a
hardware change draws a dashed rule across the chart, named at its top, and a settings change
starts a new line at a hollow marker. Every point links to its commit (the commit's report page
on a published site, the commits table otherwise). Charts are inline SVG so their links work.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from aebench.compare import KINDS, Stat, change_text, stat_text
from aebench.history.build import History
from aebench.history.git_store import Commit
from aebench.history.snapshots import SECTIONS, SeriesKey, Snapshot
from aebench.history.steps import SETTINGS, break_cause
from aebench.io import write_text
from aebench.report.glossary import describe
from aebench.report.html import CSP, STYLE
from aebench.report.intervals import mean_interval

CommitLink = Callable[[str, Commit], str]  # (section name, commit) -> href
EXTRA_STYLE = """
nav.site { margin: 0 0 1rem; padding: .4rem 0; border-bottom: 1px solid #ccc; }
nav.site a { margin-right: 1rem; }
figure.history svg { max-width: 100%; height: auto; }
"""


def anchor_link(section: str, commit: Commit) -> str:
    """Where a point links on a stand-alone history page: its row in the commits table."""
    return f"#{commit.anchor}"


def interval(stat: Stat) -> tuple[float, float] | None:
    """The 95% t interval of a mean over seeds, from its std and count; None with one seed."""
    return mean_interval(stat.mean, stat.std, stat.count)


# --- CSV ---------------------------------------------------------------------------------------


def points_table(history: History) -> pd.DataFrame:
    """One row per (section, dataset, variant, metric, commit): the history as data."""
    rows = []
    for name, snapshots in history.sections.items():
        for snapshot in snapshots:
            commit = snapshot.commit
            for (dataset, variant, metric), stat in snapshot.stats.items():
                bounds = interval(stat) or (None, None)
                rows.append(
                    {
                        "section": name,
                        "dataset": dataset,
                        "variant": variant,
                        "metric": metric,
                        "commit": commit.full,
                        "date": commit.date,
                        "subject": commit.subject,
                        "hardware": snapshot.hardware,
                        "settings": snapshot.settings.get((dataset, variant), ""),
                        "mean": stat.mean,
                        "std": stat.std,
                        "count": stat.count,
                        "ci_low": bounds[0],
                        "ci_high": bounds[1],
                    }
                )
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


POINT_COLUMNS = (
    "section",
    "dataset",
    "variant",
    "metric",
    "commit",
    "date",
    "subject",
    "hardware",
    "settings",
    "mean",
    "std",
    "count",
    "ci_low",
    "ci_high",
)
CHANGE_COLUMNS = (
    "section",
    "dataset",
    "variant",
    "metric",
    "old_commit",
    "new_commit",
    "subject",
    "kind",
    "change",
    "ci_low",
    "ci_high",
    "test",
    "reason",
)


def changes_table(history: History) -> pd.DataFrame:
    """One row per tested change between consecutive comparable commits, newest first."""
    rows = []
    for step in sorted(history.steps, key=lambda s: -history.position(s.new.commit)):
        diff = step.change.diff
        rows.append(
            {
                "section": step.section,
                "dataset": step.key[0],
                "variant": step.key[1],
                "metric": step.key[2],
                "old_commit": step.old.commit.full,
                "new_commit": step.new.commit.full,
                "subject": step.new.commit.subject,
                "kind": step.change.kind,
                "change": None if diff is None else diff.estimate,
                "ci_low": None if diff is None else diff.low,
                "ci_high": None if diff is None else diff.high,
                "test": "paired by seed" if step.paired else "Welch",
                "reason": step.change.reason,
            }
        )
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


# --- charts ------------------------------------------------------------------------------------


def chart_svg(
    history: History,
    snapshots: list[Snapshot],
    dataset: str,
    metric: str,
    link: CommitLink,
    salt: str,
) -> str:
    """One metric's chart as inline SVG: lines between comparable commits, links on points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = {c.full: i for i, c in enumerate(history.commits)}
    variants = sorted({v for s in snapshots for d, v, m in s.stats if d == dataset and m == metric})
    colours = plt.get_cmap("tab20")
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig, ax = plt.subplots(figsize=(10, 3.8))
        for n, variant in enumerate(variants):
            key: SeriesKey = (dataset, variant, metric)
            colour = colours(n % 20)
            held = [s for s in snapshots if key in s.stats]
            segment: list[Snapshot] = []
            for i, snapshot in enumerate(held):
                cause = None if i == 0 else break_cause(held[i - 1], snapshot, dataset, variant)
                if cause is not None:
                    _draw(ax, segment, key, positions, colour, link, None)
                    segment = []
                segment.append(snapshot)
                if cause == SETTINGS:  # drawn hollow: a new experiment starts here
                    _hollow(ax, snapshot, key, positions, colour)
            _draw(ax, segment, key, positions, colour, link, variant)
        for i in range(1, len(snapshots)):
            old, new = snapshots[i - 1], snapshots[i]
            if old.hardware != new.hardware:
                x = positions[new.commit.full] - 0.5
                ax.axvline(x, color="0.4", linestyle="--", linewidth=1)
                ax.text(
                    x + 0.05,
                    0.98,
                    f"→ {new.hardware}",
                    transform=ax.get_xaxis_transform(),
                    fontsize=6.5,
                    ha="left",
                    va="top",
                    rotation=90,
                    color="0.3",
                )
        shown = sorted({positions[s.commit.full] for s in snapshots})
        ax.set_xticks(shown, [history.commits[i].short for i in shown], rotation=45, fontsize=7)
        ax.set_xlim(min(shown) - 0.7, max(shown) + 0.7)
        ax.set_ylabel(describe(metric).header)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(fig)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)  # RDF boilerplate
    text = text.replace(' target="_blank"', "")  # a point opens its commit here, not in a new tab
    return text[text.index("<svg") :]


def _draw(ax, segment, key, positions, colour, link: CommitLink, label) -> None:
    """A segment of comparable commits: the line, the 95% intervals, the linked points."""
    if not segment:
        return
    xs = [positions[s.commit.full] for s in segment]
    means = [s.stats[key].mean for s in segment]
    ax.plot(xs, means, "-", color=colour, linewidth=1.2, label=label)
    for x, s in zip(xs, segment, strict=True):
        bounds = interval(s.stats[key])
        if bounds is not None:
            ax.vlines(x, *bounds, color=colour, linewidth=1)
    points = ax.scatter(xs, means, s=18, color=colour, zorder=3)
    points.set_urls([link(s.section.name, s.commit) for s in segment])


def _hollow(ax, snapshot, key, positions, colour) -> None:
    ax.scatter(
        [positions[snapshot.commit.full]],
        [snapshot.stats[key].mean],
        s=70,
        facecolors="none",
        edgecolors=colour,
        linewidths=1.5,
        zorder=4,
    )


# --- page --------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    """An HTML table from cells that are already HTML."""
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _subject(commit: Commit, limit: int = 100) -> str:
    """A commit subject cut to ``limit`` characters, whole in its tooltip."""
    text = commit.subject if len(commit.subject) <= limit else commit.subject[: limit - 1] + "…"
    return f'<span title="{html.escape(commit.subject)}">{html.escape(text)}</span>'


def _commit_cell(section: str, commit: Commit, link: CommitLink) -> str:
    return f'<a href="{html.escape(link(section, commit))}"><code>{commit.short}</code></a>'


RULE = (
    "Each point is a commit that changed the section's committed results: the mean over seeds "
    "with its 95% t interval (a point without a bar has one seed). A line joins two commits "
    "only when both ran on the same known hardware class (CPU vendor, kernel path and threads, "
    "or the GPU) with the same settings for the variant; a dashed rule marks a hardware change, "
    "a hollow marker the first commit of a variant's new settings. Changes are tested between "
    "consecutive comparable commits: paired by seed where both committed the same seeds' "
    "values (runs.csv), otherwise Welch's interval from means, stds and seed counts; a change "
    "is listed only when its 95% interval excludes 0 and it survives Benjamini–Hochberg over "
    "every change tested between the same two commits, or when a series became NaN (a run "
    "diverged). Timing values are never drawn."
)


def render_page(history: History, link: CommitLink = anchor_link, nav: str = "") -> str:
    """The whole history page."""
    parts = [nav, "<h1>aebench history</h1>"]
    parts.append(
        f"<p>Range <code>{html.escape(history.rev_range)}</code>: {len(history.commits)} "
        "commit(s) changed the committed results.</p>"
    )
    parts.append(f"<p>{html.escape(RULE)}</p>")
    for problem in history.problems:
        parts.append(f'<div class="callout" role="note"><p>{html.escape(problem)}</p></div>')
    parts += _changes_section(history, link)
    parts += _breaks_section(history, link)
    parts += _commits_section(history, link)
    for section in SECTIONS:
        snapshots = history.sections.get(section.name)
        if not snapshots:
            continue
        parts.append(f'<h2 id="section-{section.name}">{html.escape(section.title)}</h2>')
        keys = sorted({(d, m) for s in snapshots for d, _, m in s.stats})
        for dataset, metric in keys:
            salt = f"{section.name}-{dataset}-{metric}"
            svg = chart_svg(history, snapshots, dataset, metric, link, salt)
            title = f"{dataset}: {describe(metric).header}"
            parts.append(
                f'<figure class="history" id="chart-{html.escape(salt)}">{svg}'
                f"<figcaption>{html.escape(title)}</figcaption></figure>"
            )
    body = "\n".join(p for p in parts if p)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>aebench history</title>\n"
        f"<style>{STYLE}{EXTRA_STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )


def _changes_section(history: History, link: CommitLink) -> list[str]:
    resolved = history.resolved
    counts = {kind: sum(s.change.kind == kind for s in history.steps) for kind in KINDS}
    summary = ", ".join(f"{kind}: {n}" for kind, n in counts.items() if n)
    rows = [
        [
            _commit_cell(step.section, step.new.commit, link),
            _subject(step.new.commit),
            html.escape(step.section),
            html.escape(".".join(step.key)),
            html.escape(step.change.kind),
            html.escape(f"{stat_text(step.change.old)} → {stat_text(step.change.new)}"),
            html.escape(change_text(step.change) if step.change.diff else step.change.reason),
            "paired by seed" if step.paired else "Welch",
        ]
        for step in resolved
    ]
    header = [
        "commit",
        "subject",
        "section",
        "metric",
        "kind",
        "old → new",
        "change (95% CI)",
        "test",
    ]
    out = ['<h2 id="changes">Changes resolved between consecutive comparable commits</h2>']
    out.append(f"<p>{len(history.steps)} change(s) tested ({html.escape(summary or 'none')}).</p>")
    out.append(_table(header, rows) if rows else "<p>No change resolved.</p>")
    return out


def _breaks_section(history: History, link: CommitLink) -> list[str]:
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for item in history.breaks:
        grouped.setdefault((item.new.commit.full, item.section, item.text), []).append(item.variant)
    commits = {c.full: c for c in history.commits}
    rows = [
        [
            _commit_cell(section, commits[full], link),
            html.escape(section),
            html.escape(text),
            html.escape(", ".join(sorted(variants))),
        ]
        for (full, section, text), variants in sorted(
            grouped.items(), key=lambda kv: -history.position(commits[kv[0][0]])
        )
    ]
    out = ['<h2 id="breaks">Where a series is not joined</h2>']
    out.append(_table(["commit", "section", "why", "variants"], rows) if rows else "<p>None.</p>")
    return out


def _commits_section(history: History, link: CommitLink) -> list[str]:
    rows = []
    for commit in reversed(history.commits):
        held = [
            name
            for name, snaps in history.sections.items()
            if any(s.commit.full == commit.full for s in snaps)
        ]
        hardware = sorted(
            {
                s.hardware
                for name in held
                for s in history.sections[name]
                if s.commit.full == commit.full
            }
        )
        rows.append(
            [
                f'<span id="{commit.anchor}">{_commit_cell(held[0], commit, link)}</span>',
                commit.date,
                _subject(commit),
                html.escape(", ".join(held)),
                html.escape("; ".join(hardware)),
            ]
        )
    header = ["commit", "date", "subject", "sections", "hardware"]
    return ['<h2 id="commits">Commits</h2>', _table(header, rows)]


def write_history(
    out_dir: Path, history: History, link: CommitLink = anchor_link, nav: str = ""
) -> list[Path]:
    """index.html, history.csv (every point) and changes.csv (every tested change)."""
    out_dir = Path(out_dir)
    written = [out_dir / "index.html", out_dir / "history.csv", out_dir / "changes.csv"]
    write_text(written[0], render_page(history, link, nav))
    write_text(written[1], points_table(history).to_csv(index=False))
    write_text(written[2], changes_table(history).to_csv(index=False))
    return written
