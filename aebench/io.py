"""Atomic writes: an output appears under its final name only once it is complete.

A killed stage therefore leaves no half-written file that DVC or a later stage could mistake for
a result, and a failed run never destroys what a previous run produced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``final``, else vanishes."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling file path; on success it is renamed onto ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_torch(payload: Any, path: Path) -> None:
    """``torch.save`` atomically and byte-for-byte reproducibly.

    Saving to a path names the archive's inner folder after the file, here a random temporary
    name, so identical weights would give different bytes; through an open file object torch
    uses a fixed name.
    """
    import torch  # only the checkpoint writers need it

    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, payload: Any) -> None:
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


@contextmanager
def staged_outputs(final_dir: Path) -> Iterator[Path]:
    """Yield an empty staging directory inside ``final_dir``; on success each of its entries
    replaces the entry of the same name in ``final_dir`` (files by ``os.replace``, directories by
    :func:`atomic_dir`'s swap). A failure while staging leaves ``final_dir`` as it was; each
    entry is swapped atomically, the set of them one after the other."""
    final_dir = Path(final_dir)
    final_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging.", suffix=".tmp", dir=final_dir))
    try:
        yield staging
        for entry in sorted(staging.iterdir()):
            target = final_dir / entry.name
            if entry.is_dir():
                with atomic_dir(target) as tmp:
                    tmp.rmdir()
                    entry.rename(tmp)
            else:
                os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def sha256_file(path: Path) -> str:
    """The file's sha256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
