"""The changes between consecutive comparable commits of each series, tested as ``aebench
compare`` tests them.

A series is one (section, dataset, variant, metric). Two consecutive commits of a series are
comparable when both ran on the same known hardware class with the same settings digest; a
change of either breaks the series instead (:class:`Break`). Where both commits committed the
per-run values of the same seeds (``runs.csv``), the change is paired by seed: the same seed on
the same hardware gives the same number, so a shift that hits every seed alike is resolved however
small, while independent samples would bury it under the seed-to-seed spread. Otherwise the
interval is Welch's from each commit's mean, std and seed count. Benjamini–Hochberg runs over
every change tested between the same two commits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from aebench.compare import (
    IMPROVEMENT,
    REGRESSION,
    Change,
    classify_change,
    control_false_discoveries,
)
from aebench.history.snapshots import UNKNOWN_HARDWARE, SeriesKey, Snapshot, agrees, seed_values
from aebench.report.intervals import Difference, paired_difference

NAN_REASON = "became NaN: a run diverged or the metric failed"
HARDWARE = "hardware"
SETTINGS = "settings"


@dataclass(frozen=True)
class Step:
    """One series' change from ``old`` to ``new`` (consecutive commits holding it)."""

    section: str
    key: SeriesKey
    old: Snapshot
    new: Snapshot
    change: Change
    paired: bool  # the interval pairs the same seeds of both commits

    @property
    def resolved(self) -> bool:
        return self.change.kind in (IMPROVEMENT, REGRESSION)


@dataclass(frozen=True)
class Break:
    """Where a series is not joined: the hardware class or the variant's settings changed."""

    section: str
    dataset: str
    variant: str
    old: Snapshot
    new: Snapshot
    cause: str  # HARDWARE or SETTINGS

    @property
    def text(self) -> str:
        if self.cause == SETTINGS:
            return "settings changed: another experiment"
        if UNKNOWN_HARDWARE in (self.old.hardware, self.new.hardware):
            return f"hardware {UNKNOWN_HARDWARE}: not comparable"
        return f"hardware changed: {self.old.hardware} → {self.new.hardware}"


def break_cause(old: Snapshot, new: Snapshot, dataset: str, variant: str) -> str | None:
    """Why two commits of a variant's series cannot be compared; None where they can."""
    if old.hardware != new.hardware or UNKNOWN_HARDWARE in (old.hardware, new.hardware):
        return HARDWARE
    if old.settings.get((dataset, variant)) != new.settings.get((dataset, variant)):
        return SETTINGS
    return None


def paired_interval(old: Snapshot, new: Snapshot, key: SeriesKey) -> tuple[Difference, str] | None:
    """The change paired by seed, where both commits hold the same seeds' values and those
    values are the ones their metrics files summarise (a runs table left stale beside new
    metrics is not evidence about them)."""
    before, after = seed_values(old.runs, key), seed_values(new.runs, key)
    if before is None or after is None or set(before.index) != set(after.index):
        return None
    if len(before) < 2 or not (agrees(before, old.stats[key]) and agrees(after, new.stats[key])):
        return None
    diff = paired_difference(after.sort_index().to_numpy(), before.sort_index().to_numpy())
    return diff, "" if diff.excludes_zero else f"not resolved with {diff.seeds_text}, paired"


def series_steps(snapshots: list[Snapshot]) -> tuple[list[Step], list[Break]]:
    """Every change and every break over one section's snapshots (oldest first)."""
    steps: list[Step] = []
    breaks: dict[tuple[str, str, str, str], Break] = {}
    last: dict[SeriesKey, Snapshot] = {}
    for snapshot in snapshots:
        for key, stat in snapshot.stats.items():
            previous = last.get(key)
            last[key] = snapshot
            if previous is None:
                continue
            dataset, variant, _ = key
            cause = break_cause(previous, snapshot, dataset, variant)
            if cause is not None:
                at = (dataset, variant, previous.commit.full, snapshot.commit.full)
                breaks.setdefault(
                    at, Break(snapshot.section.name, dataset, variant, previous, snapshot, cause)
                )
                continue
            interval = paired_interval(previous, snapshot, key)
            dotted = ".".join(key)
            change = classify_change(dotted, previous.stats[key], stat, interval)
            if math.isnan(stat.mean) and not math.isnan(previous.stats[key].mean):
                # a run that diverged (or a metric that failed) is worse whatever the direction
                change = Change(dotted, previous.stats[key], stat, REGRESSION, reason=NAN_REASON)
            steps.append(
                Step(snapshot.section.name, key, previous, snapshot, change, interval is not None)
            )
    return steps, list(breaks.values())


def control_per_commit_pair(steps: list[Step]) -> list[Step]:
    """Benjamini–Hochberg over the changes tested between the same two commits, every section's
    together."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, step in enumerate(steps):
        groups[(step.old.commit.full, step.new.commit.full)].append(i)
    out = list(steps)
    for indices in groups.values():
        controlled = control_false_discoveries([steps[i].change for i in indices])
        for i, change in zip(indices, controlled, strict=True):
            out[i] = Step(
                steps[i].section, steps[i].key, steps[i].old, steps[i].new, change, steps[i].paired
            )
    return out
