"""Compare the committed results of two git revisions: what got better, worse, or moved by noise.

Every commit carries ``reports/metrics.json`` (flat keys ``{dataset}.{variant}.{metric}.mean|std``
and ``{dataset}.evaluator.{key}``), so two revisions compare from that file alone, with no
retraining. A change counts only when it is larger than the spread over seeds, so a reseeded run
is not mistaken for a regression.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aebench.report.glossary import describe

METRICS_PATH = "reports/metrics.json"

REGRESSION = "regression"
IMPROVEMENT = "improvement"
WITHIN_SPREAD = "within spread"
CHANGED = "changed"
ADDED = "added"
REMOVED = "removed"
UNCHANGED = "unchanged"
# Report order: what needs attention first.
KINDS = (REGRESSION, IMPROVEMENT, WITHIN_SPREAD, CHANGED, ADDED, REMOVED, UNCHANGED)
SECTION_TITLES = {
    REGRESSION: "Regressions",
    IMPROVEMENT: "Improvements",
    WITHIN_SPREAD: "Within seed spread",
    CHANGED: "Changed: costs and counts, no better direction",
    ADDED: "Added",
    REMOVED: "Removed",
    UNCHANGED: "Unchanged",
}

SPREAD_RULE = (
    "A change is **beyond the seed spread** when |Δ mean| > max(std old, std new): larger than "
    "one standard deviation over seeds in either revision (the std that exists, if only one "
    "does). Where neither revision has a std (a single seed, or an evaluator scalar) the spread "
    'is "n/a" and any change counts as a regression or improvement. Direction (↑ higher is '
    "better, ↓ lower is better) comes from the metric glossary; costs and counts have none."
)


class CompareError(Exception):
    """A comparison the user asked for cannot be made (bad revision, missing file, no repo)."""


@dataclass(frozen=True)
class Revision:
    """What one side of the comparison is: a commit, or the working tree when ``commit`` is None."""

    name: str
    commit: str | None = None  # short hash, for people
    subject: str = ""
    full: str = ""  # full hash, for git

    @property
    def label(self) -> str:
        if self.commit is None:
            return f"working tree (`{METRICS_PATH}` on disk)"
        return f"`{self.name}` = `{self.commit}` {self.subject}".rstrip()


@dataclass(frozen=True)
class Change:
    """One metric (``dataset.variant.metric``) in both revisions and how it moved."""

    key: str
    old: float | None
    new: float | None
    old_std: float | None
    new_std: float | None
    kind: str

    @property
    def delta(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    @property
    def percent(self) -> float | None:
        delta = self.delta
        if delta is None or not self.old:
            return None
        return 100.0 * delta / abs(self.old)

    @property
    def spread(self) -> float | None:
        return spread_of(self.old_std, self.new_std)

    @property
    def beyond_spread(self) -> bool | None:
        """None where the test cannot be made: no std, or the metric exists on one side only."""
        if self.delta is None or self.spread is None:
            return None
        return abs(self.delta) > self.spread


# --- reading the metrics file from git ---------------------------------------------------------


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise CompareError("git is not installed or not on PATH") from err


def repo_root(cwd: Path) -> Path:
    """The top level of the repository holding ``cwd``, where ``reports/`` lives."""
    done = _git(["rev-parse", "--show-toplevel"], cwd)
    if done.returncode != 0:
        raise CompareError(
            f"not a git repository: {cwd} (aebench compare reads {METRICS_PATH} from git history)"
        )
    return Path(done.stdout.strip())


def resolve_revision(rev: str | None, repo: Path) -> Revision:
    """The short hash and subject of ``rev``; ``None`` stands for the working tree."""
    if rev is None:
        return Revision("working tree")
    # A leading dash would be read as an option; ^{commit} rejects ranges, trees and blobs.
    done = (
        None
        if rev.startswith("-")
        else _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], repo)
    )
    if done is None or done.returncode != 0:
        raise CompareError(f"unknown revision: {rev!r} (try a commit hash, tag, branch or HEAD~1)")
    full = done.stdout.strip()
    log = _git(["log", "-1", "--format=%h%x00%s", full], repo)
    commit, _, subject = log.stdout.rstrip("\n").partition("\0")
    return Revision(rev, commit, subject, full)


def read_metrics_text(revision: Revision, repo: Path) -> str:
    """The raw file at ``revision``: from the git object store, or from disk for the work tree."""
    if revision.commit is None:
        path = repo / METRICS_PATH
        if not path.is_file():
            raise CompareError(
                f"{METRICS_PATH} is missing in the working tree: run `dvc repro` to produce it "
                "(and commit reports/ to record it)"
            )
        return path.read_text()
    done = _git(["show", f"{revision.full}:{METRICS_PATH}"], repo)
    if done.returncode != 0:
        raise CompareError(
            f"{METRICS_PATH} is missing at revision {revision.name} ({revision.commit}): "
            "run `dvc repro` and commit reports/ there"
        )
    return done.stdout


def parse_metrics(text: str, source: str) -> dict[str, float]:
    """Check the file is the flat ``key: number`` object the report stage writes."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise CompareError(f"{METRICS_PATH} at {source} is not valid JSON: {err}") from err
    if not isinstance(payload, dict):
        raise CompareError(f"{METRICS_PATH} at {source} is not a JSON object")
    metrics: dict[str, float] = {}
    for key, value in payload.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CompareError(
                f"{METRICS_PATH} at {source}: {key!r} is {value!r}, expected a number "
                "(flat keys dataset.variant.metric.mean|std)"
            )
        metrics[key] = float(value)
    return metrics


def load_metrics_at(rev: str | None, repo: Path) -> dict[str, float]:
    """The metrics committed at ``rev`` (``None``: the working tree's file)."""
    revision = resolve_revision(rev, repo)
    return parse_metrics(read_metrics_text(revision, repo), revision.name)


# --- comparing ---------------------------------------------------------------------------------


def split_stats(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Means and stds keyed by ``dataset.variant.metric``; a scalar key counts as a mean."""
    means: dict[str, float] = {}
    stds: dict[str, float] = {}
    for key, value in metrics.items():
        if key.endswith(".std"):
            stds[key.removesuffix(".std")] = value
        else:
            means[key.removesuffix(".mean")] = value
    return means, stds


def spread_of(old_std: float | None, new_std: float | None) -> float | None:
    """The larger seed std of the two revisions (the one that exists), None without any."""
    stds = [s for s in (old_std, new_std) if s is not None and math.isfinite(s)]
    return max(stds) if stds else None


def metric_name(key: str) -> str:
    """The glossary key: the last part of ``dataset.variant.metric``."""
    return key.rsplit(".", 1)[-1]


def classify(
    old: float | None, new: float | None, spread: float | None, higher_is_better: bool | None
) -> str:
    """One of :data:`KINDS`, from the values, the seed spread and which direction is better."""
    if old is None:
        return ADDED
    if new is None:
        return REMOVED
    if old == new or (math.isnan(old) and math.isnan(new)):
        return UNCHANGED
    delta = new - old
    if higher_is_better is None or not math.isfinite(delta):
        return CHANGED
    if spread is not None and abs(delta) <= spread:
        return WITHIN_SPREAD
    return IMPROVEMENT if (delta > 0) == higher_is_better else REGRESSION


def compare_metrics(old: dict[str, float], new: dict[str, float]) -> list[Change]:
    """Every metric of either revision, regressions first, then in the files' order."""
    old_means, old_stds = split_stats(old)
    new_means, new_stds = split_stats(new)
    keys = list(new_means) + [k for k in old_means if k not in new_means]
    changes = []
    for key in keys:
        a, b = old_means.get(key), new_means.get(key)
        sa, sb = old_stds.get(key), new_stds.get(key)
        kind = classify(a, b, spread_of(sa, sb), describe(metric_name(key)).higher_is_better)
        changes.append(Change(key, a, b, sa, sb, kind))
    return sorted(changes, key=lambda c: KINDS.index(c.kind))


def count_kinds(changes: list[Change]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for change in changes:
        counts[change.kind] += 1
    return counts


# --- rendering ---------------------------------------------------------------------------------


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.5g}"


def _signed(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:+.3g}{suffix}"


def _beyond(change: Change) -> str:
    if change.kind in (ADDED, REMOVED):
        return "—"
    return {True: "yes", False: "no", None: "n/a"}[change.beyond_spread]


def _row(change: Change) -> str:
    what = describe(metric_name(change.key)).header.replace("|", "\\|")
    spread = "n/a" if change.spread is None else f"{change.spread:.3g}"
    cells = [
        f"`{change.key}`",
        what,
        _value(change.old),
        _value(change.new),
        _signed(change.delta),
        _signed(change.percent, "%"),
        spread,
        _beyond(change),
    ]
    return "| " + " | ".join(cells) + " |"


def _table(changes: list[Change]) -> list[str]:
    header = ["metric", "what", "old", "new", "Δ", "Δ %", "spread", "beyond spread"]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *map(_row, changes)]


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {counts[kind]}" for kind in KINDS)


def render_comparison(
    changes: list[Change], old: Revision, new: Revision, show_all: bool = False
) -> str:
    """Markdown: the two revisions, counts per class, the spread rule, one table per class."""
    counts = count_kinds(changes)
    lines = [
        "# Metrics comparison",
        "",
        f"- **old:** {old.label}",
        f"- **new:** {new.label}",
        f"- **summary:** {_summary(counts)}",
        "",
        SPREAD_RULE,
    ]
    for kind in KINDS:
        rows = [c for c in changes if c.kind == kind]
        if not rows or (kind == UNCHANGED and not show_all):
            continue
        lines += ["", f"## {SECTION_TITLES[kind]} ({len(rows)})", "", *_table(rows)]
    if counts[UNCHANGED] and not show_all:
        lines += ["", f"{counts[UNCHANGED]} metric(s) unchanged (`--all` lists them)."]
    return "\n".join(lines) + "\n"


def comparison_report(rev_a: str, rev_b: str | None, cwd: Path, show_all: bool = False) -> str:
    """The whole ``aebench compare`` output for ``rev_a`` against ``rev_b`` (None: work tree)."""
    repo = repo_root(cwd)
    old_rev, new_rev = resolve_revision(rev_a, repo), resolve_revision(rev_b, repo)
    old = parse_metrics(read_metrics_text(old_rev, repo), old_rev.name)
    new = parse_metrics(read_metrics_text(new_rev, repo), new_rev.name)
    return render_comparison(compare_metrics(old, new), old_rev, new_rev, show_all)
