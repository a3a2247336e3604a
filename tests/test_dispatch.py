"""`aebench run`: Dask workers reproduce the stages in worktrees and DVC's run-cache assembles them.

The end-to-end tests run the tiny pipeline (digits, two variants, one seed, three epochs) three
ways from the same commit: plain `dvc repro`, `aebench run --workers 2`, and `aebench run` with
a worker killed (SIGKILL) in the middle of a training stage. All three must give the same output
hashes in dvc.lock, and the closing `dvc repro` of a parallel run must re-run no train or
evaluate stage.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aebench.dispatch.plan import DispatchError
from aebench.dispatch.runner import _connect, check_workers
from aebench.dispatch.workspace import snapshot
from aebench.hardware import CAPABILITY_FLAGS, cpu_capability, cpu_flags, hardware_class

RUN = {"datasets": ["digits"], "variants": ["dae_masking", "vae"], "seeds": [0]}
TRAIN_OR_EVALUATE = re.compile(r"^(train|evaluate)@")


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


# ---------------------------------------------------------------- fast checks


def test_too_many_workers_for_the_cores_is_refused_with_the_limit():
    with pytest.raises(
        DispatchError, match=r"4 threads, but this machine has 2 cores.*at most --workers 1"
    ):
        check_workers(2, threads=2, cores=2, gpus=0)
    with pytest.raises(DispatchError, match="at least 1"):
        check_workers(0, threads=1, cores=2, gpus=0)
    with pytest.raises(DispatchError, match="2 GPU"):
        check_workers(3, threads=1, cores=64, gpus=2)
    check_workers(2, threads=1, cores=2, gpus=0)  # fits


def test_unreachable_scheduler_is_one_clear_message():
    with pytest.raises(DispatchError, match="no Dask scheduler answers there"):
        _connect(None, "tcp://127.0.0.1:9", threads=1, gpus=0)


def test_workers_get_a_snapshot_of_uncommitted_edits_and_the_user_keeps_theirs(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout

    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / ".gitignore").write_text("/models/\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "init")
    head = git("rev-parse", "HEAD").strip()
    assert snapshot(tmp_path) == head  # nothing to snapshot
    (tmp_path / "params.yaml").write_text("a: 2\n")
    (tmp_path / "new_module.py").write_text("x = 1\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "weights.pt").write_text("ignored output")
    status = git("status", "--porcelain")
    commit = snapshot(tmp_path)
    assert commit != head
    assert git("show", f"{commit}:params.yaml") == "a: 2\n"
    assert git("show", f"{commit}:new_module.py") == "x = 1\n"
    assert "models/weights.pt" not in git("ls-tree", "-r", "--name-only", commit)
    # the user's branch, index and files are as they were
    assert git("rev-parse", "HEAD").strip() == head
    assert git("status", "--porcelain") == status


def test_snapshot_outside_a_repository_is_one_clear_message(tmp_path):
    with pytest.raises(DispatchError, match="must be a git repository"):
        snapshot(tmp_path)


def test_cpu_capability_read_from_the_os_matches_torch():
    # the hardware stage avoids importing torch; it must name the kernel path torch takes
    assert cpu_capability(cpu_flags()) == torch.backends.cpu.get_cpu_capability()
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    lowered = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert cpu_capability(cpu_flags(), "default") == lowered == "DEFAULT"
    # an override cannot raise the path above what the CPU has
    assert cpu_capability(CAPABILITY_FLAGS["AVX2"], "avx512") == "AVX2"


def test_the_hardware_class_tells_cpu_vendors_apart(tmp_path):
    """An AMD EPYC with AVX-512 takes torch's AVX512 path like an Intel Xeon, yet trains other
    bits: a record without the vendor would let one's run-cache stand in for the other's."""
    from aebench.hardware import cpu_vendor

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2\n")
    assert cpu_vendor(info) == "AuthenticAMD"
    assert cpu_vendor(tmp_path / "missing") == "unknown"
    assert hardware_class("cpu", 1)["cpu_vendor"] == cpu_vendor()


def test_guard_kills_the_command_when_its_parent_dies(tmp_path):
    pid_file = tmp_path / "pid"
    # parent -> guard -> shell that records its pid and sleeps; the parent is then SIGKILLed
    command = f"echo $$ > {pid_file}; exec sleep 60"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.run([sys.executable, '-m', "
            f"'aebench.dispatch.guard', '--', 'sh', '-c', {command!r}])",
        ]
    )
    deadline = time.monotonic() + 30
    while not pid_file.is_file() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the guarded command never started"
        time.sleep(0.05)
    sleeper = int(pid_file.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{sleeper}").exists() and _state(sleeper) != "Z":
        assert time.monotonic() < deadline, "the guarded command outlived its worker"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "gone"


# ---------------------------------------------------------------- end to end

# pytest puts tests/ on sys.path (no __init__.py)
from tests.test_caching import _lock, _outs  # noqa: E402
from tests.test_pipeline import REPO, _copy_repo, _env  # noqa: E402


def _run(root: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*args], cwd=root, env=_env(root), capture_output=True, text=True, timeout=timeout
    )


AEBENCH_RUN = [sys.executable, "-m", "aebench.cli", "run", "--workers", "2", "--quiet"]


def _result_hashes(root: Path) -> dict[str, dict[str, str]]:
    lock = _lock(root)
    return {stage: _outs(lock, stage) for stage in lock if TRAIN_OR_EVALUATE.match(stage)}


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> Path:
    """The tiny project committed, nothing run yet: the starting point of every scenario. Its
    evaluator (outputs kept in git) is out of date, so `aebench run` trains it in place first."""
    root = _copy_repo(tmp_path_factory.mktemp("dispatch") / "repo", RUN, epochs=3)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "tiny project")
    return root


@pytest.fixture(scope="module")
def sequential(committed, tmp_path_factory) -> Path:
    root = Path(shutil.copytree(committed, tmp_path_factory.mktemp("sequential") / "repo"))
    result = _run(root, sys.executable, "-m", "dvc", "repro")
    assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.mark.slow
def test_two_workers_match_a_sequential_repro(committed, sequential, tmp_path):
    root = Path(shutil.copytree(committed, tmp_path / "repo"))
    result = _run(root, *AEBENCH_RUN)
    assert result.returncode == 0, result.stdout + result.stderr
    # every train and evaluate stage ran on a worker; the closing repro only restored them
    assert re.search(r"\| train@digits-vae-0 \| \d+ \| [\d.]+ \| ran \|", result.stdout)
    closing = re.search(r"closing `dvc repro` ran: (.*);", result.stdout).group(1)
    assert not [stage for stage in closing.split(", ") if TRAIN_OR_EVALUATE.match(stage)]
    assert "report" in closing
    hashes = _result_hashes(root)
    assert len(hashes) == 4
    assert hashes == _result_hashes(sequential)
    assert (root / "reports" / "metrics.json").read_bytes() == (
        sequential / "reports" / "metrics.json"
    ).read_bytes()
    assert not list((root / ".aebench" / "workers").glob("*")), "worktrees left behind"
    # a worker's trimmed dvc.lock keeps the evaluator's entry: it restores, never retrains it
    for log in (root / ".aebench" / "logs").glob("*.log"):
        assert "Running stage 'evaluator" not in log.read_text(), log.name
    # and a later plain repro finds nothing to run but the two always-run stages
    again = _run(root, sys.executable, "-m", "dvc", "repro")
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(re.findall(r"Running stage '([^']+)'", again.stdout)) <= {"hardware", "settings"}


@pytest.mark.slow
def test_a_fresh_clone_of_committed_results_trains_each_model_once(sequential, tmp_path):
    """A newcomer's clone: dvc.lock committed, DVC cache empty. Each committed train entry names
    a timing file no new run reproduces, so DVC would rerun the stage wherever that entry is
    present; the workers and the closing repro must restore from the run-cache instead."""
    published = Path(shutil.copytree(sequential, tmp_path / "published"))
    _git(published, "add", "-A")
    _git(published, "commit", "-qm", "results")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(published), str(clone)], check=True)
    result = _run(clone, *AEBENCH_RUN)
    assert result.returncode == 0, result.stdout + result.stderr
    closing = re.search(r"closing `dvc repro` ran: (.*);", result.stdout).group(1)
    assert not [stage for stage in closing.split(", ") if TRAIN_OR_EVALUATE.match(stage)]
    for log in (clone / ".aebench" / "logs").glob("*.log"):
        ran = re.findall(r"Running stage '([^']+)'", log.read_text())
        assert set(ran) <= {"hardware", log.stem}, f"{log.name} ran {ran}"
    assert _result_hashes(clone) == _result_hashes(sequential)


@pytest.mark.slow
def test_a_worker_killed_mid_stage_still_ends_in_identical_results(committed, sequential, tmp_path):
    root, run = _start_run(committed, tmp_path)
    stage_pid, worker_pid = _wait_for_training(root, run)
    os.kill(worker_pid, signal.SIGKILL)
    # the guard notices within its poll interval; a stage that merely finished would take
    # longer than this (its imports alone take seconds)
    deadline = time.monotonic() + 2
    while _state(stage_pid) not in {"gone", "Z"}:
        assert time.monotonic() < deadline, "the killed worker's stage kept running"
        time.sleep(0.05)
    output, _ = run.communicate(timeout=900)
    assert run.returncode == 0, output
    assert _result_hashes(root) == _result_hashes(sequential)


@pytest.mark.slow
def test_an_interrupted_run_stops_cleanly_and_a_rerun_resumes(committed, sequential, tmp_path):
    root, run = _start_run(committed, tmp_path)
    stage_pid, _ = _wait_for_training(root, run)
    run.send_signal(signal.SIGTERM)  # what Ctrl-C does, as a job scheduler would send it
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 130, output
    assert "resumes" in output
    assert _state(stage_pid) in {"gone", "Z"}, "a stage outlived the interrupted run"
    assert not list((root / ".aebench" / "workers").glob("*")), "worktrees left behind"
    rerun = _run(root, *AEBENCH_RUN)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert _result_hashes(root) == _result_hashes(sequential)


def _start_run(committed: Path, tmp_path: Path) -> tuple[Path, subprocess.Popen]:
    """`aebench run` on a fresh copy of the committed project, in the background."""
    root = Path(shutil.copytree(committed, tmp_path / "repo"))
    run = subprocess.Popen(
        AEBENCH_RUN,
        cwd=root,
        env=_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return root, run


def _wait_for_training(root: Path, run: subprocess.Popen) -> tuple[int, int]:
    """The pid of a training stage script running in a worker's checkout, and of that worker
    (the stage's ancestors: dvc, then the guard, then the Dask worker process)."""
    workers = str(root / ".aebench" / "workers")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert run.poll() is None, run.stdout.read()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if "pipeline/train.py" in cmdline and cwd.startswith(workers):
                pid = int(proc.name)
                chain = [pid]
                for _ in range(4):
                    chain.append(_parent(chain[-1]))
                guard = next(p for p in chain if b"aebench.dispatch.guard" in _cmdline(p))
                return pid, _parent(guard)
        time.sleep(0.1)
    raise AssertionError("no training stage started on a worker")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_run_plans_one_pipeline_and_the_stages_it_depends_on(tmp_path, raw_params):
    """The default run never dispatches the studies pipeline; a study run dispatches its own
    stages and the default stages they read, in dependency order."""
    import yaml

    from aebench.dispatch.plan import plan_stages

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    stage = {"cmd": "echo a > a.txt", "outs": ["a.txt"]}
    other = {"cmd": "echo c > c.txt", "outs": ["c.txt"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"a": stage, "c": other}}))
    (tmp_path / "studies").mkdir()
    study = {"wdir": "..", "cmd": "cat a.txt > studies/b.txt", "deps": ["a.txt"]}
    study["outs"] = ["studies/b.txt"]
    (tmp_path / "studies" / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"b": study}}))

    assert sorted(plan_stages(tmp_path).order) == ["a", "c"]
    assert plan_stages(tmp_path, pipeline="studies/dvc.yaml").order == ["a", "studies/dvc.yaml:b"]
    with pytest.raises(DispatchError, match=r"nope/dvc\.yaml: no such pipeline file"):
        plan_stages(tmp_path, pipeline="nope/dvc.yaml")
    # one file only (the full-MNIST section): the default stage it reads is not run
    single = plan_stages(tmp_path, pipeline="studies/dvc.yaml", single_file=True)
    assert single.order == ["studies/dvc.yaml:b"]
    assert single.closing == []  # a plain closing repro of the file


def test_a_group_read_as_it_is_is_neither_run_nor_followed(tmp_path, raw_params):
    """`aebench tune --from-validation`: the grid's stage groups are read as the workspace
    holds them; what they depend on is not planned either, and the closing `--single-item`
    repro names the rest as whole groups, dependencies first, or item by item where a group is
    only partly needed."""
    import yaml

    from aebench.dispatch.plan import plan_stages

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))

    def group(cmd: str, deps: list[str], out: str) -> dict:
        return {"foreach": ["x", "y"], "do": {"cmd": cmd, "deps": deps, "outs": [out]}}

    stages = {
        "d": {"cmd": "echo d > d.txt", "outs": ["d.txt"]},  # only the grid needs it
        "g": group("cat d.txt > g_${item}.txt", ["d.txt"], "g_${item}.txt"),  # the grid
        "e": group("echo > e_${item}.txt", [], "e_${item}.txt"),
        "h": group("cat e_${item}.txt > h_${item}.txt", ["e_${item}.txt"], "h_${item}.txt"),
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (tmp_path / "report").mkdir()

    def report(needs: list[str]) -> None:
        stage = {"wdir": "..", "cmd": "cat g_x.txt > r.txt", "deps": needs, "outs": ["r.txt"]}
        (tmp_path / "report" / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"r": stage}}))

    report(["g_x.txt", "g_y.txt", "h_x.txt", "h_y.txt"])
    every = plan_stages(tmp_path, pipeline="report/dvc.yaml")
    assert {"d", "g@x", "g@y"} <= set(every.order) and every.closing == []
    as_is = plan_stages(tmp_path, pipeline="report/dvc.yaml", read_as_is=frozenset({"g"}))
    assert as_is.order == ["e@x", "h@x", "e@y", "h@y", "report/dvc.yaml:r"]  # no grid, no d
    assert as_is.closing == ["e", "h", "report/dvc.yaml:r"]
    report(["g_x.txt", "h_x.txt"])  # half of each group: named item by item
    partial = plan_stages(tmp_path, pipeline="report/dvc.yaml", read_as_is=frozenset({"g"}))
    assert partial.closing == ["e@x", "h@x", "report/dvc.yaml:r"]


def test_a_matrix_is_dispatched_run_by_run_in_the_order_it_is_listed(tmp_path, raw_params):
    """Each row's train stage, then its evaluation, then the next row: the first-listed runs
    (the full-MNIST literature rows) are finished first, whatever order DVC's graph holds."""
    import yaml

    from aebench.dispatch.plan import plan_stages

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    rows = ["zeta", "alpha", "mid"]
    train = {
        "foreach": rows,
        "do": {"cmd": "echo ${item} > t_${item}.txt", "outs": ["t_${item}.txt"]},
    }
    evaluate = {
        "foreach": rows,
        "do": {
            "cmd": "cat t_${item}.txt > e_${item}.txt",
            "deps": ["t_${item}.txt"],
            "outs": ["e_${item}.txt"],
        },
    }
    pipeline = {"stages": {"train": train, "evaluate": evaluate}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    assert plan_stages(tmp_path).order == [
        f"{stage}@{row}" for row in rows for stage in ("train", "evaluate")
    ]


def test_a_worker_named_by_its_address_gets_a_path_safe_checkout():
    """`dask worker` without --name is called tcp://host:port: a ':' in the checkout's path
    splits PYTHONPATH, and the stages would import another copy of aebench."""
    from aebench.dispatch.worker import checkout_name

    name = checkout_name("tcp://127.0.0.1:40219")
    assert ":" not in name and "/" not in name
    assert name.startswith("tcp___127.0.0.1_40219-")


@pytest.mark.slow
def test_a_local_remote_restores_the_report_without_training(sequential, tmp_path):
    """scripts/remote.sh pushes the results and the run-cache; a fresh clone pulls them, and
    `dvc repro` re-renders the report without training or evaluating anything."""
    published = Path(shutil.copytree(sequential, tmp_path / "published"))
    (published / "scripts").mkdir(exist_ok=True)  # the script acts on the checkout it is in
    shutil.copy2(REPO / "scripts" / "remote.sh", published / "scripts" / "remote.sh")
    env = {**_env(published), "DVC": "dvc"}
    remote = tmp_path / "remote"
    pushed = subprocess.run(
        ["bash", "scripts/remote.sh", str(remote)],
        cwd=published,
        env=env,
        capture_output=True,
        text=True,
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    _git(published, "add", "-A")
    _git(published, "commit", "-qm", "results and their remote")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(published), str(clone)], check=True)
    clone_env = {**_env(clone), "DVC": "dvc"}
    pulled = subprocess.run(
        ["bash", "scripts/remote.sh", str(remote), "--pull"],
        cwd=clone,
        env=clone_env,
        capture_output=True,
        text=True,
    )
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    shutil.rmtree(clone / "reports")
    result = _run(clone, sys.executable, "-m", "dvc", "repro")
    assert result.returncode == 0, result.stdout + result.stderr
    ran = re.findall(r"Running stage '([^']+)'", result.stdout)
    assert not [stage for stage in ran if TRAIN_OR_EVALUATE.match(stage)], ran
    assert "report" in ran and (clone / "reports" / "README.md").is_file()
    assert _result_hashes(clone) == _result_hashes(sequential)


def test_the_remaining_estimate_weighs_each_stage_by_its_kind():
    """Two train stages left at the finished trains' mean (600 s) and one evaluation at the
    evaluations' (60 s), over two workers: 630 s; restored stages cost nothing and inform
    nothing."""
    from aebench.dispatch.runner import remaining_estimate
    from aebench.dispatch.worker import StageOutcome

    done = [
        StageOutcome("full_mnist/dvc.yaml:train@a-0", "w0", 500.0, False),
        StageOutcome("full_mnist/dvc.yaml:train@a-1", "w1", 700.0, False),
        StageOutcome("full_mnist/dvc.yaml:evaluate@a-0", "w0", 60.0, False),
        StageOutcome("full_mnist/dvc.yaml:train@b-0", "w1", 1.0, True),
    ]
    left = [
        "full_mnist/dvc.yaml:train@b-1",
        "full_mnist/dvc.yaml:train@b-2",
        "full_mnist/dvc.yaml:evaluate@a-1",
    ]
    assert remaining_estimate(done, left, 2) == "~0h10m"  # 1,260 s / 2 workers = 10.5 min
    assert remaining_estimate(done[3:], left, 2) == "?"  # only a restore: nothing measured
    assert remaining_estimate(done[:1], ["report"], 1) == "~0h08m"  # no report yet: the mean
