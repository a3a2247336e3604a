"""Dispatch a plan's stages to Dask workers, then let one `dvc repro` assemble the results."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aebench.config import load_params
from aebench.dispatch.lockfile import forget_entries
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
    skipped: dict[str, str] = field(default_factory=dict)  # stage -> the failed stage it needed
    rerun: list[str] = field(default_factory=list)  # dispatched, yet re-run by the closing repro


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
    pipeline: str = "dvc.yaml",
    prepare: Callable[[], None] | None = None,
    single_file: bool = False,
    read_as_is: frozenset[str] = frozenset(),
) -> RunSummary:
    """Run every out-of-date stage of ``pipeline`` (and of what it depends on) on Dask workers,
    then the closing `dvc repro` of ``pipeline`` in ``root``. ``prepare`` runs first, once
    this run holds the workspace (`aebench study` rewrites the run list there). With
    ``single_file`` the stages of other files (bar the always-run ones) are not run: their
    outputs are read as they are (the full-MNIST report reads the quick run's results); so are
    those of the stage groups in ``read_as_is`` (`aebench tune --from-validation`)."""
    root = root.resolve()
    with _one_run_at_a_time(root):
        if prepare is not None:
            prepare()
        return _run_matrix(
            root, workers, scheduler, params_file, progress, pipeline, single_file, read_as_is
        )


@contextmanager
def _one_run_at_a_time(root: Path) -> Iterator[None]:
    """Two runs in one workspace would share worktrees, logs and the closing `dvc repro`."""
    lock = root / ".aebench" / "run.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise DispatchError(
                f"another `aebench run` is using {root}; wait for it or stop it first"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_matrix(
    root: Path,
    workers: int | None,
    scheduler: str | None,
    params_file: str,
    progress: bool,
    pipeline: str,
    single_file: bool = False,
    read_as_is: frozenset[str] = frozenset(),
) -> RunSummary:
    started = time.perf_counter()
    params = load_params(root / params_file)
    gpus = 0 if params.train.device == "cpu" else len(gpu_names())
    if scheduler is None:
        cores = os.cpu_count() or 1
        workers = workers or default_workers(params.train.threads, cores, gpus)
        check_workers(workers, params.train.threads, cores, gpus)
    # every stage reads settings/: written here first, they travel with the snapshot, and the
    # plan sees which stages their bytes leave up to date
    repro_in_workspace(root, "settings")
    plan = plan_stages(root, params_file, pipeline, single_file, read_as_is)
    for stage in plan.local_first:  # committed outputs (the evaluator): here, before the snapshot
        print(f"aebench run: {stage} writes outputs kept in git; `dvc repro {stage}` here first")
        repro_in_workspace(root, stage)
    commit = snapshot(root)
    job = Job(root=root, commit=commit, cache_dir=dvc_cache_dir(root), gpus=gpus)
    print(
        f"aebench run: {len(plan.order)} stage(s) to dispatch, {plan.up_to_date} up to date; "
        + (f"scheduler {scheduler}" if scheduler else f"{workers} local worker(s)")
    )
    outcomes: list[StageOutcome] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    if plan.order:
        try:
            outcomes, failed, skipped = _dispatch(
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
        forget_entries(root, plan.order)  # else DVC would rerun what the workers ran
        final_ran = _closing_repro(root, pipeline, single_file, tuple(plan.closing))
    # a dispatched stage the closing repro had to run again: the workspace differed from the
    # snapshot the workers ran (a file edited during the run, or an ignored file inside a
    # dependency folder); the results are right, but they were computed twice
    rerun = [stage for stage in final_ran if stage in set(plan.order)]
    return RunSummary(outcomes, failed, final_ran, time.perf_counter() - started, skipped, rerun)


def _dispatch(
    plan: Plan, job: Job, workers: int | None, scheduler: str | None, threads: int, progress: bool
) -> tuple[list[StageOutcome], dict[str, str]]:
    from distributed import as_completed
    from tqdm import tqdm

    client = _connect(workers, scheduler, threads, job.gpus)
    run_id = uuid.uuid4().hex[:8]  # a rerun never attaches to an old run's tasks on a cluster
    futures = {}
    try:
        for index, stage in enumerate(plan.order):
            upstream = [futures[name] for name in plan.upstream[stage]]
            futures[stage] = client.submit(
                reproduce,
                stage,
                job,
                plan.lock_entries[stage],
                *upstream,
                key=f"stage-{stage}-{run_id}",
                pure=False,
                # Dask does not start ready tasks in submission order: without a priority a
                # worker took the last-listed rows first (higher runs first)
                priority=len(plan.order) - index,
            )
        names = {future.key: stage for stage, future in futures.items()}
        outcomes, failed, skipped = [], {}, {}
        bar = tqdm(total=len(futures), unit="stage", disable=not progress, desc="stages")
        for future in as_completed(futures.values()):
            stage = names[future.key]
            try:
                outcomes.append(future.result())
            except StageFailed as err:
                if err.stage == stage:
                    failed[stage] = str(err)
                else:  # Dask hands dependants the failed upstream stage's own exception
                    skipped[stage] = err.stage
            except Exception as err:  # the worker running it kept dying (KilledWorker)
                failed[stage] = f"{type(err).__name__}: {err}"
            bar.update()
            done = len(outcomes) + len(failed) + len(skipped)
            finished = {o.stage for o in outcomes} | set(failed) | set(skipped)
            left = remaining_estimate(
                outcomes, [s for s in plan.order if s not in finished], _slots(client)
            )
            bar.set_postfix(
                running=min(len(futures) - done, _slots(client)),
                failed=len(failed),
                skipped=len(skipped),
                left=left,
            )
        bar.close()
        return outcomes, failed, skipped
    finally:
        client.cancel(list(futures.values()))  # on a shared cluster, queued stages go too
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()


def stage_kind(stage: str) -> str:
    """``train`` for ``full_mnist/dvc.yaml:train@burda_vae-0``: stages of one kind cost alike."""
    return stage.rsplit(":", 1)[-1].split("@")[0]


def remaining_estimate(outcomes: list[StageOutcome], left: list[str], slots: int) -> str:
    """Work left, as wall time on ``slots`` workers: each stage left costs the mean of the
    finished (not restored) stages of its kind, or of all of them where none of its kind has
    finished; "?" until a stage has run. Progress display only (wall-clock values never go
    into an output)."""
    ran = [o for o in outcomes if not o.restored]
    if not ran or slots < 1:
        return "?"
    by_kind: dict[str, list[float]] = {}
    for outcome in ran:
        by_kind.setdefault(stage_kind(outcome.stage), []).append(outcome.seconds)
    mean = {kind: sum(times) / len(times) for kind, times in by_kind.items()}
    overall = sum(o.seconds for o in ran) / len(ran)
    seconds = sum(mean.get(stage_kind(s), overall) for s in left)
    minutes = round(seconds / slots / 60)
    return f"~{minutes // 60}h{minutes % 60:02d}m"


def _slots(client) -> int:
    try:
        return sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    except Exception:  # progress display only
        return 0


def repro_in_workspace(root: Path, *targets: str) -> list[str]:
    """`dvc repro` in the user's workspace; returns the stages it ran."""
    env = dict(os.environ)
    env["DVC_NO_ANALYTICS"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # in a process group of its own, so that an interrupt reaches the stage script too: DVC
    # ignores SIGINT while its stage runs and would leave the script writing into the workspace
    process = subprocess.Popen(
        [sys.executable, "-m", "aebench.dispatch.dvc_repro", *targets],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate()
    except KeyboardInterrupt:
        _stop_group(process)
        raise
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if result.returncode != 0:
        what = (
            " ".join(targets) if len(targets) <= 3 else f"{targets[0]} and {len(targets) - 1} more"
        )
        what = what or "the closing"
        raise DispatchError(f"`dvc repro` ({what}) failed:\n{result.stdout}{result.stderr}")
    return re.findall(r"Running stage '([^']+)'", result.stdout)


def _stop_group(process: subprocess.Popen, grace_seconds: float = 10) -> None:
    """SIGINT to the process group (DVC then stops between stages), SIGKILL if it lingers."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_seconds)
            return
        except subprocess.TimeoutExpired:
            continue


def _closing_repro(
    root: Path, pipeline: str = "dvc.yaml", single_file: bool = False, stages: tuple[str, ...] = ()
) -> list[str]:
    """One `dvc repro` of ``pipeline`` in the user's workspace: restores every dispatched stage
    from the run-cache and runs what is left (the report); lock files are written once, at the
    end. ``single_file``: the file's stages only, after the always-run hardware record.
    ``stages``: exactly these, in this order (a plan that reads some stages' outputs as they
    are; a plain repro would run those too)."""
    if stages:
        return repro_in_workspace(root, "--single-item", *stages)
    if single_file:
        hardware = repro_in_workspace(root, "hardware")
        return hardware + repro_in_workspace(root, "--single-item", pipeline)
    return repro_in_workspace(root, *([] if pipeline == "dvc.yaml" else [pipeline]))


def summary_table(summary: RunSummary) -> str:
    """Per-stage seconds and worker, slowest first, as Markdown."""
    lines = ["| stage | worker | seconds | outcome |", "|---|---|---|---|"]
    for outcome in sorted(summary.outcomes, key=lambda o: -o.seconds):
        how = "restored from cache" if outcome.restored else "ran"
        lines.append(f"| {outcome.stage} | {outcome.worker} | {outcome.seconds:.1f} | {how} |")
    for stage in sorted(summary.failed):
        lines.append(f"| {stage} | – | – | failed |")
    for stage, cause in sorted(summary.skipped.items()):
        lines.append(f"| {stage} | – | – | not run: {cause} failed |")
    lines.append("")
    if summary.failed or summary.skipped:
        lines.append(
            "not assembled: fix the failed stage(s) and rerun `aebench run`; the stages that "
            "finished are in the run-cache and will not run again"
        )
    else:
        ran = ", ".join(summary.final_ran) or "nothing"
        lines.append(f"closing `dvc repro` ran: {ran}; total {summary.seconds:.1f} s")
    if summary.rerun:
        lines.append(
            f"warning: the closing `dvc repro` ran {len(summary.rerun)} dispatched stage(s) "
            f"again ({', '.join(summary.rerun[:5])}): the workspace differed from the snapshot "
            "the workers ran (a file edited during the run, or a git-ignored file inside a "
            "dependency folder); results are right, but computed twice"
        )
    return "\n".join(lines)
