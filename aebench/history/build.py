"""Read a revision range's committed results into snapshots, changes and breaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from aebench.compare import CompareError
from aebench.history.git_store import Commit, GitStore, commits_changing
from aebench.history.snapshots import SECTIONS, SettingsDigests, Snapshot, read_snapshot
from aebench.history.steps import Break, Step, control_per_commit_pair, series_steps


@dataclass
class History:
    rev_range: str
    commits: list[Commit]  # every commit that changed a section's results, oldest first
    sections: dict[str, list[Snapshot]]  # section name -> its snapshots, oldest first
    steps: list[Step] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unreadable files, named by commit

    @property
    def resolved(self) -> list[Step]:
        """The changes resolved (regressions and improvements), newest first."""
        chosen = [s for s in self.steps if s.resolved]
        return sorted(chosen, key=lambda s: self.position(s.new.commit), reverse=True)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {c.full: i for i, c in enumerate(self.commits)}

    def position(self, commit: Commit) -> int:
        """The commit's place in the range, oldest first."""
        return self._positions[commit.full]


def read_history(cwd: Path, rev_range: str = "HEAD") -> History:
    """Every section's snapshots over ``rev_range``: git reads only, no checkout."""
    with GitStore(cwd) as store:
        digests = SettingsDigests(store)
        sections: dict[str, list[Snapshot]] = {}
        problems: list[str] = []
        every = [f for section in SECTIONS for f in section.files]
        order = {c.full: i for i, c in enumerate(commits_changing(store.repo, rev_range, every))}
        seen: set[str] = set()
        for section in SECTIONS:
            snapshots = []
            for commit in commits_changing(store.repo, rev_range, section.files):
                try:
                    snapshot = read_snapshot(store, digests, section, commit)
                except CompareError as err:
                    problems.append(f"{commit.short}: {err}; left out")
                    continue
                if snapshot is not None:
                    snapshots.append(snapshot)
                    seen.add(commit.full)
            if snapshots:
                sections[section.name] = snapshots
    commits = [c for c in _ordered(order, sections) if c.full in seen]
    history = History(rev_range, commits, sections, problems=problems)
    for snapshots in sections.values():
        steps, breaks = series_steps(snapshots)
        history.steps += steps
        history.breaks += breaks
    history.steps = control_per_commit_pair(history.steps)
    return history


def _ordered(order: dict[str, int], sections: dict[str, list[Snapshot]]) -> list[Commit]:
    """The commits of every section once each, in git's order over the whole range."""
    commits = {s.commit.full: s.commit for snapshots in sections.values() for s in snapshots}
    return sorted(commits.values(), key=lambda c: order[c.full])
