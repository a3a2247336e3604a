"""DVC stage full_mnist/dvc.yaml:report: the full-MNIST section into reports/full_mnist/ —
README.md, index.html (self-contained), figures/*.png, metrics.json (for `dvc metrics`) and
runs.csv (every run's every metric).

Nothing written depends on the clock: re-rendering unchanged inputs gives identical bytes."""

import argparse
from pathlib import Path

from aebench.config import RunConfig, load_params
from aebench.full_mnist_report import build_document, section_params
from aebench.io import staged_outputs, write_json, write_text
from aebench.report.assemble import ReportDirs, gather
from aebench.report.environment import machine
from aebench.report.html import write_html
from aebench.report.markdown import render_markdown
from aebench.report.results import aggregate, flat_metrics, load_runs, write_run_table
from aebench.report.stats import Evidence
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/full_mnist")
    args = parser.parse_args()
    params = load_params(args.params)
    section = section_params(params)
    small_name = params.run.datasets[0]
    shared = [v for v in section.run.variants if v in params.run.variants]
    small = None
    if shared:  # the quick run's results for the same variants, read beside the section's
        run = RunConfig(datasets=(small_name,), variants=tuple(shared), seeds=params.run.seeds)
        small = Evidence(load_runs(Path("metrics"), run, [Path("chain"), Path("memorisation")]))
    with staged_outputs(Path(args.out)) as staging:
        figures_dir = staging / "figures"
        figures_dir.mkdir()
        dirs = ReportDirs(
            metrics=Path("full_mnist/metrics"),
            evaluators=Path("evaluators"),
            history=Path("full_mnist/history"),
            figures=figures_dir,
            report=staging,
            chain=Path("full_mnist/chain"),
            memorisation=Path("full_mnist/memorisation"),
            diagnostics=Path("full_mnist/diagnostics"),
            lock=Path("full_mnist/dvc.lock"),
        )
        inputs = gather(section, dirs)
        doc = build_document(section, inputs, small, small_name, shared)
        write_text(staging / "README.md", render_markdown(doc))
        write_html(doc, staging, staging / "index.html")
        write_json(
            staging / "metrics.json", flat_metrics(aggregate(inputs.runs), inputs.evaluators)
        )
        write_run_table(inputs.runs, staging / "runs.csv")
        write_json(staging / "environment.json", machine(params, sorted(set(inputs.runs.device))))
    print(
        f"wrote {args.out}/: README.md, index.html, metrics.json, runs.csv, environment.json, "
        "figures/"
    )


if __name__ == "__main__":
    run_stage(main)
