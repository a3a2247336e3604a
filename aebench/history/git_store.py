"""Committed files at any commit, read from git's object store: no checkout, no work-tree change.

One ``git cat-file --batch`` process answers every read, so reading N commits costs N small
object look-ups rather than N process starts.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aebench.compare import CompareError, repo_root


@dataclass(frozen=True)
class Commit:
    """One commit, as the history shows it."""

    full: str
    short: str
    subject: str
    timestamp: int  # committer time, seconds since the epoch (git's %ct)
    date: str  # committer date, YYYY-MM-DD

    @property
    def anchor(self) -> str:
        """A fixed-length id for links (git's short hashes grow with the repository, which would
        break links kept in pages built earlier)."""
        return f"commit-{self.full[:12]}"


def commits_changing(repo: Path, rev_range: str, paths: list[str]) -> list[Commit]:
    """The commits of ``rev_range`` (git log syntax: ``A..B``, ``HEAD~30..``, a branch) that
    changed any of ``paths``, oldest first, along the first-parent line: a branch's results count
    from the merge that brought them, so consecutive commits are never on two branches."""
    if rev_range.startswith("-"):
        raise CompareError(f"unknown revision range: {rev_range!r} (try HEAD~30..HEAD or main)")
    done = subprocess.run(
        [
            "git",
            "log",
            "--reverse",
            "--first-parent",
            "--format=%H%x00%h%x00%ct%x00%cs%x00%s",
            rev_range,
            "--",
            *paths,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        raise CompareError(
            f"unknown revision range: {rev_range!r} (try HEAD~30..HEAD, main, or a commit)"
            + (f": {detail}" if detail else "")
        )
    commits = []
    for line in done.stdout.splitlines():
        full, short, timestamp, date, subject = line.split("\0", 4)
        commits.append(Commit(full, short, subject, int(timestamp), date))
    return commits


def _askable(name: str) -> bool:
    """A name ``git cat-file --batch`` reads as one request: a newline would split it in two and
    put every later answer out of step."""
    return "\n" not in name and "\r" not in name


def _header(line: bytes) -> tuple[str, str, int] | None:
    """``(object id, type, size)`` from a batch answer's first line; None where the object is
    missing (the answer then names the request, which may hold spaces)."""
    parts = line.decode("utf-8", errors="replace").rstrip("\n").split(" ")
    if len(parts) != 3 or not parts[2].isdigit() or parts[1] not in OBJECT_TYPES:
        return None
    return parts[0], parts[1], int(parts[2])


OBJECT_TYPES = ("blob", "tree", "commit", "tag")


class GitStore:
    """Blobs by ``(commit, path)`` through one long-lived ``git cat-file --batch``.

    Use as a context manager; reads after ``close`` fail loudly.
    """

    def __init__(self, cwd: Path) -> None:
        self.repo = repo_root(Path(cwd))
        self._process = self._start("--batch")
        self._check: subprocess.Popen[bytes] | None = None  # ids only, started on first use

    def _start(self, mode: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["git", "cat-file", mode], cwd=self.repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def __enter__(self) -> GitStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for process in (self._process, self._check):
            if process is not None and process.poll() is None:
                assert process.stdin is not None and process.stdout is not None
                process.stdin.close()
                process.wait()
                process.stdout.close()

    def blob_id(self, commit: Commit, path: str) -> str | None:
        """The blob id of ``path`` in ``commit`` without reading its content; None if absent."""
        if self._check is None:
            self._check = self._start("--batch-check")
        stdin, stdout = self._check.stdin, self._check.stdout
        assert stdin is not None and stdout is not None
        if not _askable(path):
            return None
        stdin.write(f"{commit.full}:{path}\n".encode())
        stdin.flush()
        header = _header(stdout.readline())
        return header[0] if header and header[1] == "blob" else None

    def object(self, name: str) -> tuple[str, bytes] | None:
        """``(object id, content)`` of ``name`` (``<commit>:<path>`` or an id); None if absent."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        if not _askable(name):
            return None
        stdin.write(name.encode() + b"\n")
        stdin.flush()
        header = _header(stdout.readline())
        if header is None:  # "<name> missing" (or ambiguous): no content follows
            return None
        object_id, kind, size = header
        content = stdout.read(size)
        stdout.read(1)  # the newline after every object
        return (object_id, content) if kind == "blob" else None

    def blob(self, commit: Commit, path: str) -> tuple[str, bytes] | None:
        """The file at ``path`` in ``commit``: its blob id and bytes, or None where absent."""
        return self.object(f"{commit.full}:{path}")

    def text(self, commit: Commit, path: str) -> str | None:
        found = self.blob(commit, path)
        return None if found is None else found[1].decode("utf-8")


def tip_commit(repo: Path, rev_range: str) -> Commit:
    """The newest commit of ``rev_range``: the revision a site's front page and docs come from."""
    done = subprocess.run(
        ["git", "log", "-1", "--format=%H%x00%h%x00%ct%x00%cs%x00%s", rev_range],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CompareError(f"unknown revision range: {rev_range!r} (try HEAD~30..HEAD or main)")
    if not done.stdout.strip():
        raise CompareError(f"the range {rev_range!r} holds no commit: nothing to publish")
    full, short, timestamp, date, subject = done.stdout.rstrip("\n").split("\0", 4)
    return Commit(full, short, subject, int(timestamp), date)


def files_under(repo: Path, commit: Commit, directory: str) -> list[str]:
    """Every file path under ``directory`` in ``commit`` (recursive)."""
    done = subprocess.run(
        ["git", "ls-tree", "-r", "-z", "--name-only", commit.full, "--", directory],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    return [p for p in done.stdout.split("\0") if p] if done.returncode == 0 else []
