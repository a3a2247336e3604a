"""DVC stage report: gather every evaluation into reports/ — metrics.json (for `dvc metrics`),
README.md (renders on any git host), index.html (one self-contained file), figures/*.png,
environment.json (the machine, for `aebench compare`; DVC metrics must be numbers) and runs.csv
(every run's every metric, for paired comparisons from git alone).

Nothing written depends on the clock: re-rendering unchanged inputs gives identical bytes."""

import argparse
from pathlib import Path

from aebench.config import load_params
from aebench.io import staged_outputs, write_json, write_text
from aebench.report.assemble import ReportDirs, gather
from aebench.report.content import build_report
from aebench.report.environment import machine
from aebench.report.html import write_html
from aebench.report.markdown import render_markdown
from aebench.report.results import aggregate, flat_metrics, write_run_table
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--metrics-dir", default="metrics")
    parser.add_argument("--evaluators-dir", default="evaluators")
    parser.add_argument("--history-dir", default="history")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args()
    params = load_params(args.params)
    # Everything is rendered into a staging directory and swapped in only once complete, so a
    # failure leaves the previous report intact.
    with staged_outputs(Path(args.out)) as staging:
        figures_dir = staging / "figures"
        figures_dir.mkdir()
        dirs = ReportDirs(
            metrics=Path(args.metrics_dir),
            evaluators=Path(args.evaluators_dir),
            history=Path(args.history_dir),
            chain=Path("chain"),
            memorisation=Path("memorisation"),
            diagnostics=Path("diagnostics"),
            figures=figures_dir,
            report=staging,
        )
        inputs = gather(params, dirs)
        doc = build_report(inputs)
        write_text(staging / "README.md", render_markdown(doc))
        write_html(doc, staging, staging / "index.html")
        html_bytes = (staging / "index.html").stat().st_size
        write_json(
            staging / "metrics.json", flat_metrics(aggregate(inputs.runs), inputs.evaluators)
        )
        write_json(staging / "environment.json", machine(params, sorted(set(inputs.runs.device))))
        write_run_table(inputs.runs, staging / "runs.csv")
    print(
        f"wrote {args.out}/: README.md, index.html ({html_bytes / 1e6:.2f} MB), metrics.json, "
        "environment.json, runs.csv, figures/"
    )


if __name__ == "__main__":
    run_stage(main)
