"""Dispatch a plan's stages to Dask workers, then let one `dvc repro` assemble the results."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aebench.config import load_params
from aebench.dispatch.plan import DispatchError, Plan, plan_stages
from aebench.dispatch.worker import Job, StageFailed, StageOutcome, reproduce
from aebench.dispatch.workspace import dvc_cache_dir, remove_worktrees, snapshot
from aebench.hardware import gpu_names


@dataclass
class RunSummary:
    outcomes: list[StageOutcome]
    failed: dict[str, str]  # stage -> why
    final_ran: list[str]  # stages the closing `dvc repro` ran (the report, normally)
    seconds: float


def check_workers(workers: int, threads: int, cores: int, gpus: int) -> None:
    """Workers × threads must fit the cores (oversubscribed fp32 kernels only slow each other
    down); with GPUs, one worker per GPU."""
    if workers < 1:
        raise DispatchError(f"--workers {workers}: at least 1 is needed")
    if gpus and workers > gpus:
        raise DispatchError(f"--workers {workers}: this machine has {gpus} GPU(s), one per worker")
    if not gpus and workers * threads > cores:
        raise DispatchError(
            f"--workers {workers} × train.threads {threads} = {workers * threads} threads, but "
            f"this machine has {cores} cores: use at most --workers {max(1, cores // threads)} "
            "(or lower train.threads, which changes the results' cache key)"
        )


def default_workers(threads: int, cores: int, gpus: int) -> int:
    return gpus or max(1, cores // threads)


def _connect(workers: int | None, scheduler: str | None, threads: int, gpus: int):
    """A Dask client on a local cluster of ``workers`` processes or on a running scheduler."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as err:
            raise DispatchError(
                f"--scheduler {scheduler}: no Dask scheduler answers there ({err}); start one "
                "(`dask scheduler`, or a dask-jobqueue cluster) or use --workers N"
            ) from err
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,  # one stage at a time per worker; the stage sets its own threads
        processes=True,
        dashboard_address=None,
        memory_limit=0,
        silence_logs=logging.ERROR,
        env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
    )
    return Client(cluster)


def run_matrix(
    root: Path,
    workers: int | None = None,
    scheduler: str | None = None,
    params_file: str = "params.yaml",
    progress: bool = True,
) -> RunSummary:
    """Run every out-of-date stage on Dask workers, then the closing `dvc repro` in ``root``."""
    root = root.resolve()
    started = time.perf_counter()
    params = load_params(root / params_file)
    gpus = 0 if params.train.device == "cpu" else len(gpu_names())
    if scheduler is None:
        cores = os.cpu_count() or 1
        workers = workers or default_workers(params.train.threads, cores, gpus)
        check_workers(workers, params.train.threads, cores, gpus)
    plan = plan_stages(root, params_file)
    for stage in plan.local_first:  # committed outputs (the evaluator): here, before the snapshot
        print(f"aebench run: {stage} writes outputs kept in git; running it here first")
        _repro(root, stage)
    commit = snapshot(root)
    job = Job(root=root, commit=commit, cache_dir=dvc_cache_dir(root), gpus=gpus)
    print(
        f"aebench run: {len(plan.order)} stage(s) to dispatch, {plan.up_to_date} up to date; "
        + (f"scheduler {scheduler}" if scheduler else f"{workers} local worker(s)")
    )
    outcomes: list[StageOutcome] = []
    failed: dict[str, str] = {}
    if plan.order:
        try:
            outcomes, failed = _dispatch(
                plan, job, workers, scheduler, params.train.threads, progress
            )
        except KeyboardInterrupt:
            print(
                "\naebench run: stopped; finished stages are in the run-cache, so "
                "`aebench run` resumes from them",
                file=sys.stderr,
            )
            raise
        finally:
            remove_worktrees(root)
    final_ran: list[str] = []
    if not failed:
        final_ran = _closing_repro(root)
    return RunSummary(outcomes, failed, final_ran, time.perf_counter() - started)


def _dispatch(
    plan: Plan, job: Job, workers: int | None, scheduler: str | None, threads: int, progress: bool
) -> tuple[list[StageOutcome], dict[str, str]]:
    from distributed import as_completed
    from tqdm import tqdm

    client = _connect(workers, scheduler, threads, job.gpus)
    try:
        futures = {}
        for stage in plan.order:
            upstream = [futures[name] for name in plan.upstream[stage]]
            futures[stage] = client.submit(
                reproduce, stage, job, *upstream, key=f"stage-{stage}", pure=False
            )
        names = {future.key: stage for stage, future in futures.items()}
        outcomes, failed = [], {}
        bar = tqdm(total=len(futures), unit="stage", disable=not progress, desc="stages")
        for future in as_completed(futures.values()):
            stage = names[future.key]
            try:
                outcomes.append(future.result())
            except StageFailed as err:
                failed[stage] = str(err)
            except Exception as err:  # a dependency failed, or a worker kept dying
                failed[stage] = f"{type(err).__name__}: {err}"
            bar.update()
            done = len(outcomes) + len(failed)
            bar.set_postfix(running=min(len(futures) - done, _slots(client)), failed=len(failed))
        bar.close()
        return outcomes, failed
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()


def _slots(client) -> int:
    try:
        return sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    except Exception:  # progress display only
        return 0


def _repro(root: Path, *targets: str) -> list[str]:
    """`dvc repro` in the user's workspace; returns the stages it ran."""
    env = dict(os.environ)
    env["DVC_NO_ANALYTICS"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", *targets],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        what = " ".join(targets) or "the closing"
        raise DispatchError(f"`dvc repro` ({what}) failed:\n{result.stdout}{result.stderr}")
    return re.findall(r"Running stage '([^']+)'", result.stdout)


def _closing_repro(root: Path) -> list[str]:
    """One `dvc repro` in the user's workspace: restores every dispatched stage from the
    run-cache, writes dvc.lock once and runs what is left (the report)."""
    return _repro(root)


def summary_table(summary: RunSummary) -> str:
    """Per-stage seconds and worker, slowest first, as Markdown."""
    lines = ["| stage | worker | seconds | outcome |", "|---|---|---|---|"]
    for outcome in sorted(summary.outcomes, key=lambda o: -o.seconds):
        how = "restored from cache" if outcome.restored else "ran"
        lines.append(f"| {outcome.stage} | {outcome.worker} | {outcome.seconds:.1f} | {how} |")
    for stage in sorted(summary.failed):
        lines.append(f"| {stage} | – | – | failed |")
    ran = ", ".join(summary.final_ran) or "nothing"
    lines.append("")
    lines.append(f"closing `dvc repro` ran: {ran}; total {summary.seconds:.1f} s")
    return "\n".join(lines)
