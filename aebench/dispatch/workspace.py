"""Checkouts for workers: git worktrees of one commit that share the user's DVC cache."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aebench.dispatch.plan import DispatchError

# Inside the repository, git- and DVC-ignored: each worktree holds its own dvc.yaml.
WORKERS_DIR = Path(".aebench") / "workers"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def snapshot(root: Path) -> str:
    """A commit of the workspace as it is (tracked edits and new files that git does not ignore),
    made with a throw-away index so the user's branch, index and files stay untouched. Workers
    check it out: they run exactly the code and params the user sees, never a silently older
    commit. Returns HEAD itself when nothing differs from it."""
    try:  # inside .git, where `git add -A` cannot pick the index itself up
        git_dir = Path(_git(root, "rev-parse", "--absolute-git-dir").strip())
    except (OSError, subprocess.CalledProcessError) as err:
        raise DispatchError(
            f"{root}: cannot snapshot the workspace for the workers; it must be a git "
            "repository with at least one commit"
        ) from err
    index = git_dir / "aebench-snapshot.index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        git("read-tree", "HEAD")
        git("add", "-A")
        tree = git("write-tree")
        if tree == git("rev-parse", "HEAD^{tree}"):
            return head
        return git(
            "-c",
            "user.name=aebench",
            "-c",
            "user.email=aebench@localhost",
            "commit-tree",
            tree,
            "-p",
            head,
            "-m",
            "aebench run: snapshot of the workspace",
        )
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or err
        raise DispatchError(
            f"{root}: cannot snapshot the workspace for the workers; it must be a git repository "
            f"with at least one commit ({str(detail).strip()})"
        ) from err
    finally:
        index.unlink(missing_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialises `git worktree` calls from several worker processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create_worktree(root: Path, commit: str, name: str, cache_dir: Path) -> Path:
    """A fresh checkout of ``commit`` for one worker process, its DVC cache pointed at the
    user's and its DVC state kept inside it."""
    path = root / WORKERS_DIR / name
    with _locked(root / WORKERS_DIR.parent / "worktree.lock"):
        if path.exists():
            _remove(root, path)
        _git(root, "worktree", "add", "--detach", "--force", str(path), commit)
    (path / ".dvc" / "config.local").write_text(
        "[core]\n"
        "    analytics = false\n"
        f"    site_cache_dir = {path / '.dvc' / 'site_cache'}\n"
        "[cache]\n"
        f"    dir = {cache_dir}\n"
    )
    return path


def _remove(root: Path, path: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(path)], cwd=root, capture_output=True
    )
    shutil.rmtree(path, ignore_errors=True)


def remove_worktrees(root: Path) -> None:
    """Drops every worker checkout (results live in the shared cache, not there)."""
    workers = root / WORKERS_DIR
    if workers.is_dir():
        with _locked(root / WORKERS_DIR.parent / "worktree.lock"):
            for path in sorted(workers.iterdir()):
                _remove(root, path)
    subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)


def dvc_cache_dir(root: Path) -> Path:
    """The user's DVC cache directory, as DVC resolves it."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return Path(os.path.abspath(repo.cache.local_cache_dir))
