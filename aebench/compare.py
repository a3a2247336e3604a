"""Compare the committed results of two git revisions: what got better, worse, or is not resolved.

Every commit carries ``reports/metrics.json`` (flat keys ``{dataset}.{variant}.{metric}``
``.mean|std|count`` and ``{dataset}.evaluator.{key}``), so two revisions compare from that file
alone, with no retraining. Each change gets the same rule as the report: a Welch 95% interval
from each revision's mean, std and seed count, and a change counts only when that interval
excludes 0, so a reseeded run is not mistaken for a regression. ``reports/environment.json``,
where committed, says whether the two revisions ran on the same CPU and GPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aebench.report.glossary import Metric, describe
from aebench.report.intervals import (
    Difference,
    difference_from_moments,
    estimate_text,
    interval_text,
)

METRICS_PATH = "reports/metrics.json"
ENVIRONMENT_PATH = "reports/environment.json"
# What a result may depend on beyond code, data and params; named in the output when it differs.
ENVIRONMENT_KEYS = {
    "cpu_model": "CPU model",
    "cpu_capability": "torch CPU capability",
    "torch_threads": "torch threads",
    "gpu": "GPU",
    "devices": "training device(s)",
    "torch": "torch",
}

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NOT_RESOLVED = "not resolved"
CHANGED = "changed"
ADDED = "added"
REMOVED = "removed"
UNCHANGED = "unchanged"
# Report order: what needs attention first.
KINDS = (REGRESSION, IMPROVEMENT, NOT_RESOLVED, CHANGED, ADDED, REMOVED, UNCHANGED)
SECTION_TITLES = {
    REGRESSION: "Regressions",
    IMPROVEMENT: "Improvements",
    NOT_RESOLVED: "Not resolved: the 95% CI of the change spans 0, or too few seeds",
    CHANGED: "Changed: costs, counts and copy rate, no better direction",
    ADDED: "Added",
    REMOVED: "Removed",
    UNCHANGED: "Unchanged",
}

RULE = (
    "Change = new − old mean over seeds, in the metric's own unit. Its 95% CI is Welch's, from "
    "each revision's committed mean, std and seed count: (s_old²/n_old + s_new²/n_new), "
    "Welch–Satterthwaite degrees of freedom, Student's t. It covers training noise only (the "
    "seed part): per-image values are not committed, so the report's test-set part is left "
    "out; when both revisions score the same test split, most of it is shared anyway. A change "
    "is a regression or an improvement only when its CI excludes 0 and it survives "
    "Benjamini–Hochberg (false discovery rate 0.05) over every change with an interval "
    "(hundreds of metrics are compared at once), otherwise it is *not resolved*; one seed, or "
    "no recorded count, gives no interval. Direction (↑ "
    "higher is better, ↓ lower is better) comes from the metric glossary; density (→ 1) is "
    "judged by its distance from 1; costs, counts and copy rate have none."
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
class Stat:
    """One revision's summary of a metric: mean, and where recorded its std and seed count."""

    mean: float
    std: float | None = None
    count: int | None = None


@dataclass(frozen=True)
class Change:
    """One metric (``dataset.variant.metric``) in both revisions and how it moved."""

    key: str
    old: Stat | None
    new: Stat | None
    kind: str
    diff: Difference | None = None  # new − old with its interval, where the means exist
    reason: str = ""  # why there is no interval, where there is none

    @property
    def delta(self) -> float | None:
        return None if self.diff is None else self.diff.estimate


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


def read_file_at(revision: Revision, repo: Path, path: str) -> str | None:
    """A committed file's text at ``revision`` (from disk for the work tree); None if absent."""
    if revision.commit is None:
        on_disk = repo / path
        return on_disk.read_text() if on_disk.is_file() else None
    done = _git(["show", f"{revision.full}:{path}"], repo)
    return done.stdout if done.returncode == 0 else None


def read_metrics_text(revision: Revision, repo: Path) -> str:
    """The raw metrics file at ``revision``: from the git object store, or from disk."""
    text = read_file_at(revision, repo, METRICS_PATH)
    if text is not None:
        return text
    if revision.commit is None:
        raise CompareError(
            f"{METRICS_PATH} is missing in the working tree: run `dvc repro` to produce it "
            "(and commit reports/ to record it)"
        )
    raise CompareError(
        f"{METRICS_PATH} is missing at revision {revision.name} ({revision.commit}): "
        "run `dvc repro` and commit reports/ there"
    )


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
                "(flat keys dataset.variant.metric.mean|std|count)"
            )
        metrics[key] = float(value)
    return metrics


def parse_environment(text: str | None) -> dict | None:
    """The environment record, or None where it is missing or unreadable (older revisions)."""
    if text is None:
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def load_metrics_at(rev: str | None, repo: Path) -> dict[str, float]:
    """The metrics committed at ``rev`` (``None``: the working tree's file)."""
    revision = resolve_revision(rev, repo)
    return parse_metrics(read_metrics_text(revision, repo), revision.name)


# --- comparing ---------------------------------------------------------------------------------

SUFFIXES = (".mean", ".std", ".count")


def split_stats(metrics: dict[str, float]) -> dict[str, Stat]:
    """A :class:`Stat` per ``dataset.variant.metric``; a key without a suffix counts as a mean
    (an evaluator scalar)."""
    parts: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        suffix = next((s for s in SUFFIXES if key.endswith(s)), ".mean")
        parts.setdefault(key.removesuffix(suffix), {})[suffix] = value
    out = {}
    for key, found in parts.items():
        if ".mean" not in found:
            continue
        count = found.get(".count")
        out[key] = Stat(found[".mean"], found.get(".std"), None if count is None else int(count))
    return out


def metric_name(key: str) -> str:
    """The glossary key: the last part of ``dataset.variant.metric``."""
    return key.rsplit(".", 1)[-1]


def change_interval(old: Stat, new: Stat, is_scalar: bool) -> tuple[Difference, str]:
    """``new − old`` with its Welch interval, and why there is none where there is none."""
    n_old, n_new = old.count, new.count
    if is_scalar:
        reason = "a single value (no seeds): no interval"
        return difference_from_moments(new.mean, None, 1, old.mean, None, 1), reason
    if n_old is None or n_new is None:
        reason = "no seed count recorded in a revision's metrics.json: no interval"
        return difference_from_moments(new.mean, None, 1, old.mean, None, 1), reason
    var_old = None if old.std is None else old.std**2
    var_new = None if new.std is None else new.std**2
    diff = difference_from_moments(new.mean, var_new, n_new, old.mean, var_old, n_old)
    return diff, "" if diff.resolvable else f"not resolved with {diff.seeds_text}"


def direction_of(metric: Metric, old: float, new: float) -> bool | None:
    """True when ``new`` is better than ``old``, False when worse, None without a direction."""
    if metric.target is not None:
        before, after = abs(old - metric.target), abs(new - metric.target)
        return None if before == after else after < before
    if metric.higher_is_better is None:
        return None
    return (new > old) == metric.higher_is_better


def crosses(old: float, new: float, target: float) -> bool:
    """Whether ``old`` and ``new`` lie on different sides of ``target`` (or one sits on it).
    On one side, |new − t| − |old − t| is ±(new − old), so the interval of the raw change tests
    the distance too; across the target it does not."""
    return (old - target) * (new - target) <= 0


def classify_change(
    key: str,
    old: Stat | None,
    new: Stat | None,
    interval: tuple[Difference, str] | None = None,
) -> Change:
    """One of :data:`KINDS` for a metric, from both revisions' summaries. ``interval`` (the
    change with its interval, and why there is none) replaces the Welch interval from the
    summaries where the caller has better evidence, e.g. per-seed values paired by seed."""
    if old is None:
        return Change(key, old, new, ADDED)
    if new is None:
        return Change(key, old, new, REMOVED)
    seeds_moved = interval is not None and bool(interval[0].seed_var)  # equal means, not seeds
    same = old.mean == new.mean or (math.isnan(old.mean) and math.isnan(new.mean))
    if same and not seeds_moved:
        return Change(key, old, new, UNCHANGED)
    is_scalar = key.split(".")[1:2] == ["evaluator"]  # one evaluator per dataset, no seeds
    diff, reason = interval or change_interval(old, new, is_scalar)
    metric = describe(metric_name(key))
    if metric.target is not None and crosses(old.mean, new.mean, metric.target):
        # on opposite sides of the target the distance change is not new − old: no verdict
        reason = f"crossed the target {metric.target:g}: distance change not tested"
        return Change(key, old, new, CHANGED, diff, reason)
    better = direction_of(metric, old.mean, new.mean)
    if better is None or not math.isfinite(diff.estimate):
        return Change(key, old, new, CHANGED, diff, reason)
    if not diff.excludes_zero:
        if not reason:
            reason = f"not resolved with {diff.seeds_text}"
        return Change(key, old, new, NOT_RESOLVED, diff, reason)
    return Change(key, old, new, IMPROVEMENT if better else REGRESSION, diff)


def compare_metrics(old: dict[str, float], new: dict[str, float]) -> list[Change]:
    """Every metric of either revision, regressions first, then in the files' order."""
    old_stats, new_stats = split_stats(old), split_stats(new)
    keys = list(new_stats) + [k for k in old_stats if k not in new_stats]
    changes = control_false_discoveries(
        [classify_change(k, old_stats.get(k), new_stats.get(k)) for k in keys]
    )
    return sorted(changes, key=lambda c: KINDS.index(c.kind))


def control_false_discoveries(changes: list[Change], alpha: float = 0.05) -> list[Change]:
    """Benjamini–Hochberg over every change with an interval: hundreds of metrics are compared
    at once, so about 5% of truly unchanged ones would otherwise show a CI that excludes 0. A
    regression or improvement stays one only when its BH-adjusted q < ``alpha`` too (scipy's
    ``false_discovery_control``); the others become *not resolved*, with their q."""
    from scipy.stats import false_discovery_control

    tested = [
        i
        for i, c in enumerate(changes)
        if c.diff is not None and c.diff.p is not None and math.isfinite(c.diff.p)
    ]
    if not tested:
        return changes
    qvalues = false_discovery_control([changes[i].diff.p for i in tested], method="bh")
    out = list(changes)
    for i, q in zip(tested, qvalues, strict=True):
        change = changes[i]
        if change.kind in (IMPROVEMENT, REGRESSION) and q >= alpha:
            reason = (
                f"CI excludes 0, but not resolved after Benjamini–Hochberg over {len(tested)} "
                f"changes (q = {q:.2g})"
            )
            out[i] = dataclasses.replace(change, kind=NOT_RESOLVED, reason=reason)
    return out


def count_kinds(changes: list[Change]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for change in changes:
        counts[change.kind] += 1
    return counts


def environment_note(old: dict | None, new: dict | None) -> str:
    """One line on whether both revisions ran on the same machine type."""
    if old is None or new is None:
        missing = " and ".join(n for n, e in (("old", old), ("new", new)) if e is None)
        return f"not recorded for the {missing} revision (`{ENVIRONMENT_PATH}`)"
    differ = [
        f"{label} {old.get(k, '?')!s} → {new.get(k, '?')!s}"
        for k, label in ENVIRONMENT_KEYS.items()
        if old.get(k) != new.get(k)
    ]
    if not differ:
        return "same CPU model, torch CPU capability, threads and GPU"
    return (
        "**differs**: "
        + "; ".join(differ)
        + " (results can change with the machine, not only the code)"
    )


# --- rendering ---------------------------------------------------------------------------------


def stat_text(stat: Stat | None) -> str:
    if stat is None:
        return "—"
    text = f"{stat.mean:.5g}"
    if stat.std is not None:
        text += f" ± {stat.std:.2g}"
    if stat.count is not None:
        text += f" (n={stat.count})"
    return text


def change_text(change: Change) -> str:
    """``+0.005 (95% CI 0.001 to 0.009)``, with the reason where it is not resolved."""
    if change.diff is None:
        return "—"
    value, decimals = estimate_text(change.diff)
    if change.diff.resolvable:
        value += f" ({interval_text(change.diff, decimals)})"
    return f"{value}: {change.reason}" if change.reason else value


def _row(change: Change) -> str:
    what = describe(metric_name(change.key)).header.replace("|", "\\|")
    cells = [
        f"`{change.key}`",
        what,
        stat_text(change.old),
        stat_text(change.new),
        change_text(change),
    ]
    return "| " + " | ".join(cells) + " |"


def _table(changes: list[Change]) -> list[str]:
    header = ["metric", "what", "old", "new", "change (new − old, 95% CI)"]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *map(_row, changes)]


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {counts[kind]}" for kind in KINDS)


def render_comparison(
    changes: list[Change],
    old: Revision,
    new: Revision,
    show_all: bool = False,
    environment: str = "",
) -> str:
    """Markdown: the two revisions, their environments, counts per class, the rule, one table
    per class."""
    counts = count_kinds(changes)
    lines = [
        "# Metrics comparison",
        "",
        f"- **old:** {old.label}",
        f"- **new:** {new.label}",
        *([f"- **environment:** {environment}"] if environment else []),
        f"- **summary:** {_summary(counts)}",
        "",
        RULE,
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
    environment = environment_note(
        parse_environment(read_file_at(old_rev, repo, ENVIRONMENT_PATH)),
        parse_environment(read_file_at(new_rev, repo, ENVIRONMENT_PATH)),
    )
    return render_comparison(compare_metrics(old, new), old_rev, new_rev, show_all, environment)
