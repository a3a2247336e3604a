"""``aebench history`` and ``aebench publish``: also runnable as ``python -m aebench.history``,
which loads no model code (no torch), so a CI job can publish with a light install."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aebench.compare import CompareError


def add_history_commands(commands: argparse._SubParsersAction) -> None:
    """The ``history`` and ``publish`` subcommands (``aebench``, ``python -m aebench.history``)."""
    history = commands.add_parser(
        "history",
        help="a page of every headline metric across the commits that changed the results",
        description="Read the committed results of every commit in REV_RANGE that changed them "
        "(git reads only: no checkout, no retraining) and write a history page: each headline "
        "metric per variant over commit order with its 95%% interval, hardware and settings "
        "changes marked, and the changes resolved between consecutive comparable commits; "
        "plus history.csv (every point) and changes.csv (every tested change).",
    )
    history.add_argument(
        "rev_range",
        metavar="REV_RANGE",
        nargs="?",
        default="HEAD",
        help="git log range, e.g. HEAD~30..HEAD or main (default: HEAD, all of its history)",
    )
    history.add_argument("--out", default="build/history", help="output folder")
    publish = commands.add_parser(
        "publish",
        help="a static site: latest reports, history, every past report, the docs",
        description="Build a static site in OUT_DIR that opens from disk or any static host: the "
        "latest report as front page, the history page, the studies and full-MNIST reports, one "
        "page per past commit's committed report, and the README and docs/. Incremental: an "
        "up-to-date past-report page is not rewritten. See docs/publishing.md for CI recipes.",
    )
    publish.add_argument("out_dir", metavar="OUT_DIR", help="the site folder (created if absent)")
    publish.add_argument(
        "--range",
        dest="rev_range",
        default="HEAD",
        help="git log range to publish (default: HEAD, all of its history)",
    )


def run_command(args: argparse.Namespace) -> None:
    if args.command == "history":
        history(args.rev_range, Path(args.out))
    else:
        publish_site(args.rev_range, Path(args.out_dir))


def history(rev_range: str, out: Path) -> None:
    from aebench.history.build import read_history
    from aebench.history.page import write_history

    started = time.perf_counter()
    history = read_history(Path.cwd(), rev_range)
    read_s = time.perf_counter() - started
    written = write_history(out, history)
    resolved = history.resolved
    print(
        f"read {len(history.commits)} commit(s) with results in {read_s:.2f} s; "
        f"{len(history.steps)} change(s) tested, {len(resolved)} resolved, "
        f"{len(history.breaks)} break(s)"
    )
    for step in resolved[:10]:
        print(f"  {step.new.commit.short} {step.change.kind}: {step.section} {'.'.join(step.key)}")
    print("wrote " + ", ".join(str(p) for p in written))


def publish_site(rev_range: str, out_dir: Path) -> None:
    from aebench.history.site import MANIFEST, publish

    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise CompareError(
            f"{out_dir} is not empty and holds no {MANIFEST}: not a site aebench published; "
            "give an empty or new folder, or a site folder from an earlier `aebench publish`"
        )
    published = publish(Path.cwd(), out_dir, rev_range)
    print(
        f"published {out_dir}/: {len(published.written)} page(s) written, "
        f"{len(published.kept)} unchanged; open {out_dir / 'index.html'}"
    )
    if published.missing:
        print("no committed report for: " + ", ".join(published.missing))
