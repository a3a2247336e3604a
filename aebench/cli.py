"""Command-line entry points: the ``aebench`` command and the error handling every stage shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aebench.config import ParamsError, load_params
from aebench.history.commands import add_history_commands
from aebench.io import write_text
from aebench.stage import USER_ERRORS
from aebench.stage import run_stage as _run_stage


def run_stage(stage: Callable[[], None]) -> None:
    """A command body with the stages' error handling, plus the comparison tool's and the
    dispatcher's errors."""
    from aebench.compare import CompareError  # its statistics load only for this command
    from aebench.dispatch.plan import DispatchError
    from aebench.studies import StaleStudies

    _run_stage(stage, (CompareError, DispatchError, StaleStudies))


__all__ = ["USER_ERRORS", "main", "run_stage"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="aebench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check params.yaml and print the run matrix")
    validate.add_argument("--params", default="params.yaml")
    _add_compare(commands)
    add_history_commands(commands)
    _add_bench(commands)
    _add_run(commands)
    _add_study(commands)
    _add_full_mnist(commands)
    _add_tune(commands)
    _add_schema(commands)
    _add_check_family(commands)
    args = parser.parse_args(argv)
    if args.command == "validate":
        run_stage(lambda: _validate(args.params))
    elif args.command == "compare":
        run_stage(lambda: _compare(args.rev_a, args.rev_b, args.out, args.all))
    elif args.command in ("history", "publish"):
        from aebench.history.commands import run_command

        run_stage(lambda: run_command(args))
    elif args.command == "bench":
        run_stage(lambda: _bench(args))
    elif args.command == "run":
        run_stage(lambda: _run(args))
    elif args.command == "study":
        run_stage(lambda: _study(args))
    elif args.command == "full-mnist":
        run_stage(lambda: _full_mnist(args))
    elif args.command == "tune":
        run_stage(lambda: _tune(args))
    elif args.command == "schema":
        run_stage(lambda: _schema(args.out))
    elif args.command == "check-family":
        _check_family(args)


def _validate(path: str) -> None:
    params = load_params(path)
    run = params.run
    print(
        f"{path}: ok — {len(run.datasets)} dataset(s) × {len(run.variants)} variant(s) × "
        f"{len(run.seeds)} seed(s) = {len(run.datasets) * len(run.variants) * len(run.seeds)} runs"
    )
    for name in run.studies:
        study = params.studies[name]
        new = [n for n in study.variant_names if n in params.study_points]
        print(
            f"study {name}: {study.key} × {len(study.curves)} variant(s), "
            f"{len(study.variant_names)} points ({len(new)} generated) × {len(run.seeds)} seed(s)"
        )
    tuning = params.tuning
    if tuning is not None:
        from aebench.tuning import tuning_runs

        runs = len(tuning_runs(params))
        line = f"tuning (`aebench tune`): {len(tuning.grids)} grid(s), {runs} grid run(s)"
        if tuning.not_run:
            line += f"; not tuned (not in run.variants): {', '.join(tuning.not_run)}"
        print(line)
    if run.studies:  # the default run does not read it; `aebench study` rewrites it first
        from aebench.studies import StaleStudies, check_points

        try:
            check_points(params, Path(path).parent)
        except StaleStudies:
            print("studies/points.yaml is out of date: `aebench study` rewrites it")


def _add_check_family(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check-family",
        help="run the family interface's contract checks on families (built-in or module:Class)",
        description="Build each family on 1×8×8 images and check what the stages rely on: "
        "shapes, a finite loss of scalar terms, gradients to every parameter, determinism, "
        "checkpoint round trip, its samplers, and its posterior and prior densities. Exit "
        "status 1 if any check fails.",
    )
    check.add_argument("names", metavar="NAME", nargs="*", help="built-in or module:Class")
    check.add_argument("--all", action="store_true", help="every built-in family")
    check.add_argument(
        "--search",
        metavar="FOLDER",
        help="where module:Class is looked up first (default: the working directory)",
    )
    check.set_defaults(check_parser=check)


def _check_family(args: argparse.Namespace) -> None:
    """One line per check (✓/✗), per family; exit status 1 if any check failed."""
    from aebench.contract import check_family
    from aebench.models.registry import BY_NAME

    if bool(args.names) == args.all:
        args.check_parser.error("give family names or --all (every built-in family), not both")
    search = Path(args.search) if args.search else None
    failed = 0
    for name in list(BY_NAME) if args.all else args.names:
        print(f"family {name}:")
        results = check_family(name, search)
        for result in results:
            print(f"  {result.line()}")
        failed += sum(not result.passed for result in results)
    if failed:
        print(f"{failed} check(s) failed")
        sys.exit(1)


def _add_schema(commands: argparse._SubParsersAction) -> None:
    schema = commands.add_parser(
        "schema",
        help="write the JSON Schema of params.yaml, for an editor's YAML language server",
        description="Write the JSON Schema (draft 2020-12) of params.yaml: point an editor at it "
        "and a wrong key or value is flagged as you type, before `aebench validate` runs.",
    )
    schema.add_argument("--out", metavar="PATH", help="write it here, not to stdout")


def _schema(out: str | None) -> None:
    from aebench.schema import schema_text  # builds every family's model: only when asked

    text = schema_text()
    if out is None:
        print(text, end="")
        return
    write_text(Path(out), text)
    print(f"wrote {out}")


def _add_compare(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="Markdown comparison of reports/metrics.json between two git revisions",
        description="Compare the committed results (reports/metrics.json) of two git revisions: "
        "regressions and improvements beyond the seed spread first. No retraining.",
    )
    compare.add_argument("rev_a", metavar="REV_A", help="the old revision, e.g. HEAD~1")
    compare.add_argument(
        "rev_b",
        metavar="REV_B",
        nargs="?",
        default=None,
        help="the new one (default: working tree)",
    )
    compare.add_argument("--out", metavar="FILE", help="write the Markdown here, not to stdout")
    compare.add_argument("--all", action="store_true", help="also list unchanged metrics")


def _compare(rev_a: str, rev_b: str | None, out: str | None, show_all: bool) -> None:
    from aebench.compare import comparison_report

    report = comparison_report(rev_a, rev_b, Path.cwd(), show_all)
    if out is None:
        print(report, end="")
        return
    write_text(Path(out), report)
    print(f"wrote {out}")


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench",
        help="time training here against a textbook PyTorch loop and the matmul peak",
        description="Training throughput of the default MLP and conv models on this device, "
        "interleaved with a textbook PyTorch loop of the same model; prints a Markdown table "
        "and writes the figures as JSON.",
    )
    bench.add_argument("--params", default="params.yaml")
    bench.add_argument("--variants", nargs="+", default=["vae", "dae_gaussian", "conv_vae"])
    bench.add_argument(
        "--epochs",
        type=int,
        default=40,
        help="epochs per timed run (default 40: subnormal Adam moments, which flush-to-zero "
        "removes, slow a plain loop from about epoch 20, so a few epochs miss them)",
    )
    bench.add_argument("--repeats", type=int, default=3, help="interleaved timed runs per loop")
    bench.add_argument("--out", metavar="FILE", help="write the JSON figures here")


def _bench(args: argparse.Namespace) -> None:
    import json

    from aebench.bench import markdown_table, run_bench  # torch only when benchmarking

    if args.epochs < 1 or args.repeats < 1:
        raise ParamsError("--epochs and --repeats: allowed values are integers >= 1")
    params = load_params(args.params)
    for name in args.variants:
        params.variant(name)
    result = run_bench(params, args.variants, args.epochs, args.repeats)
    print(markdown_table(result), end="")
    if args.out:
        write_text(Path(args.out), json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run the out-of-date stages on Dask workers, then `dvc repro` the rest",
        description="Reproduce the pipeline with its train and evaluate stages spread over Dask "
        "workers, each in a git worktree of a snapshot of this workspace (uncommitted edits "
        "included) sharing the DVC cache; one closing `dvc repro` restores every result from "
        "the run-cache and renders the report.",
    )
    _add_worker_options(run)


def _add_worker_options(parser: argparse.ArgumentParser) -> None:
    """Where the stages run, shared by `aebench run`, `aebench study` and `aebench full-mnist`."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        help="local worker processes (default: cores // train.threads, or one per GPU)",
    )
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_study(commands: argparse._SubParsersAction) -> None:
    study = commands.add_parser(
        "study",
        help="run the studies of run.studies (the studies pipeline) like `aebench run`",
        description="Rewrite studies/points.yaml from params.yaml's studies, then reproduce "
        "studies/dvc.yaml (and the default-pipeline stages it needs) on Dask workers; the "
        "curves go to reports/studies/.",
    )
    _add_worker_options(study)
    study.add_argument("--write-only", action="store_true", help="only rewrite studies/points.yaml")


def _study(args: argparse.Namespace) -> None:
    from aebench.studies import POINTS_FILE, write_points

    params = load_params(args.params)
    root = Path(args.params).resolve().parent

    def write() -> None:
        changed = write_points(params, root)
        runs = len(params.points_to_run()) * len(params.run.seeds) * len(params.run.datasets)
        studies = ", ".join(params.run.studies) or "none (run.studies is empty)"
        state = "rewritten" if changed else "current"
        print(f"{POINTS_FILE}: {state} — studies {studies}, {runs} generated run(s)")

    if args.write_only:
        write()
        return
    if not params.run.studies:
        declared = ", ".join(params.studies) or "none"
        raise ParamsError(f"run.studies is empty: list the studies to run (declared: {declared})")
    _run(args, pipeline="studies/dvc.yaml", prepare=write)


def _add_tune(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser(
        "tune",
        help="train and score the tuning grids (tuning/dvc.yaml) like `aebench run`",
        description="Rewrite tuning/points.yaml from params.yaml's tuning section, then train "
        "every grid point with the selection seeds and score it on the validation split "
        "(tuning/validation/), on Dask workers; resumable from the DVC run-cache.",
    )
    _add_worker_options(tune)
    tune.add_argument("--write-only", action="store_true", help="only rewrite tuning/points.yaml")
    tune.add_argument(
        "--from-validation",
        action="store_true",
        help="select from the validation scores the workspace holds (committed in "
        "tuning/validation/) and run the second pass only: the grid is not re-trained (a fresh "
        "clone has none of its models), and its scores are taken as they are, even where the "
        "code or machine that scored them has changed since",
    )


def _tune(args: argparse.Namespace) -> None:
    """Two passes: tuning/dvc.yaml's grids (trained with the selection seeds, scored on
    validation, selected), then tuning/report/dvc.yaml, whose report pulls in the selected
    settings' runs with the reporting seeds (and the default runs it compares them with). The
    second pass's runs file is written from the first's selection, so it is emptied before the
    first: a selection from older grids never trains anything. With ``--from-validation`` the
    first pass is the selection alone, from the grid's scores as they are."""
    import json

    from aebench.dispatch.plan import DispatchError
    from aebench.dispatch.runner import repro_in_workspace
    from aebench.tuning import (
        FINAL_FILE,
        GRID_STAGES,
        POINTS_FILE,
        SELECT_STAGE,
        SELECTED_FILE,
        final_runs,
        write_final,
        write_points,
    )

    params = load_params(args.params)
    root = Path(args.params).resolve().parent

    def write() -> None:
        changed = write_points(params, root)
        write_final({}, root)
        tuning = params.tuning
        runs = 0 if tuning is None else len(tuning.points) * len(tuning.seeds)
        state = "rewritten" if changed else "current"
        print(f"{POINTS_FILE}: {state} — {runs * len(params.run.datasets)} grid run(s)")

    if args.write_only:
        write()
        return
    if params.tuning is None:
        raise ParamsError("params.yaml has no tuning section: declare its grids to tune")
    if not params.tuning.grids:
        raise ParamsError(
            f"tuning.grids: none of the grids' variants ({', '.join(params.tuning.not_run)}) is "
            f"in run.variants ({', '.join(params.run.variants)}); a tuned setting is set beside "
            "its variant's default runs, so list the variants to tune in run.variants"
        )

    def write_selected_runs() -> None:
        runs = final_runs(params, json.loads((root / SELECTED_FILE).read_text()))
        write_final(runs, root)
        print(f"{FINAL_FILE}: {len(runs)} run(s) of the selected settings with run.seeds")

    if not args.from_validation:
        _run(args, pipeline="tuning/dvc.yaml", prepare=write)
        _run(args, pipeline="tuning/report/dvc.yaml", prepare=write_selected_runs)
        return

    def select_from_scores() -> None:
        write()  # a grid that differs from the scores' is refused by the selection, by name
        try:
            repro_in_workspace(root, "--single-item", SELECT_STAGE)
        except DispatchError as err:
            raise DispatchError(
                f"{err}\n--from-validation selects from the grid's scores as the workspace holds "
                "them: run `aebench tune` without it to train and score the grid"
            ) from err
        write_selected_runs()

    _run(
        args,
        pipeline="tuning/report/dvc.yaml",
        prepare=select_from_scores,
        read_as_is=GRID_STAGES,
    )


def _add_full_mnist(commands: argparse._SubParsersAction) -> None:
    full = commands.add_parser(
        "full-mnist",
        help="run the full-MNIST section (full_mnist/dvc.yaml) like `aebench run`: hours",
        description="Reproduce full_mnist/dvc.yaml, params.yaml's full_mnist section, on Dask "
        "workers; an interrupted run resumes from the DVC run-cache. The report goes to "
        "reports/full_mnist/; it compares with the quick run's results as the workspace holds "
        "them (it does not re-run them: `aebench run` does).",
    )
    _add_worker_options(full)


def _full_mnist(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    if params.full_mnist is None:
        raise ParamsError("params.yaml has no full_mnist section: declare it to run the section")
    missing = _quick_results_missing(params)
    if missing:  # said now, not after hours of training
        print(
            f"aebench full-mnist: {len(missing)} quick-run result(s) the section's report compares "
            f"with are missing (e.g. {missing[0]}); the section's runs go ahead, and its report "
            "renders once `aebench run` has produced them",
            file=sys.stderr,
        )
    # the section's own stages: its report reads the quick run's results as they are (run
    # `aebench run` first), so hours of section runs never wait on a re-run of the quick matrix
    _run(args, pipeline="full_mnist/dvc.yaml", single_file=True)


def _quick_results_missing(params) -> list[str]:
    """The quick run's metrics files of the variants the full-MNIST section shares with it, and
    its chain and memorisation results (the section's report stage depends on those folders)."""
    from aebench.report.results import run_path

    shared = [v for v in params.full_mnist.variants if v in params.run.variants]
    dataset = params.run.datasets[0]
    missing = [
        str(path)
        for variant in shared
        for seed in params.run.seeds
        if not (path := run_path(Path("metrics"), dataset, variant, seed)).is_file()
    ]
    return missing + [
        f"{folder}/" for folder in ("chain", "memorisation") if not Path(folder).is_dir()
    ]


def _run(
    args: argparse.Namespace,
    pipeline: str = "dvc.yaml",
    prepare: Callable[[], None] | None = None,
    single_file: bool = False,
    read_as_is: frozenset[str] = frozenset(),
) -> None:
    import signal

    from aebench.dispatch.runner import run_matrix, summary_table

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a job scheduler, `kill`) stops as cleanly as Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where a shell ignored it
    try:
        summary = run_matrix(
            Path.cwd(),
            args.workers,
            args.scheduler,
            args.params,
            not args.quiet,
            pipeline,
            prepare,
            single_file,
            read_as_is,
        )
    except KeyboardInterrupt:
        sys.exit(130)
    print(summary_table(summary))
    if summary.failed or summary.skipped:
        for why in summary.failed.values():
            print(why, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
