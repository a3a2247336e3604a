"""DVC stage report: gather every evaluation into reports/ — metrics.json (for `dvc metrics`),
README.md (renders on any git host), index.html (one self-contained file) and figures/*.png."""

import argparse
from pathlib import Path

from aebench.cli import run_stage
from aebench.config import load_params
from aebench.io import staged_outputs, write_json
from aebench.report.assemble import ReportDirs, gather
from aebench.report.content import build_report
from aebench.report.html import render_html
from aebench.report.markdown import render_markdown
from aebench.report.results import aggregate, flat_metrics


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
            figures=figures_dir,
            report=staging,
        )
        inputs = gather(params, dirs)
        doc = build_report(inputs)
        (staging / "README.md").write_text(render_markdown(doc), encoding="utf-8")
        html = render_html(doc, staging)
        (staging / "index.html").write_text(html, encoding="utf-8")
        write_json(
            staging / "metrics.json", flat_metrics(aggregate(inputs.runs), inputs.evaluators)
        )
    print(
        f"wrote {args.out}/: README.md, index.html ({len(html) / 1e6:.2f} MB), metrics.json, "
        "figures/"
    )


if __name__ == "__main__":
    run_stage(main)
