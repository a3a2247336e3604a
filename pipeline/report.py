"""DVC stage report: gather every evaluation into reports/metrics.json and reports/README.md."""

import argparse
import json
from pathlib import Path

from aebench.cli import run_stage
from aebench.config import load_params
from aebench.io import write_json, write_text
from aebench.report.environment import environment_header
from aebench.report.markdown import render_markdown
from aebench.report.results import aggregate, flat_metrics, load_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--metrics-dir", default="metrics")
    parser.add_argument("--evaluators-dir", default="evaluators")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args()
    params = load_params(args.params)
    summary = aggregate(load_runs(Path(args.metrics_dir), params.run))
    evaluators = {
        dataset: json.loads((Path(args.evaluators_dir) / dataset / "evaluator.json").read_text())
        for dataset in params.run.datasets
    }
    out = Path(args.out)
    write_json(out / "metrics.json", flat_metrics(summary, evaluators))
    header = environment_header(Path(args.metrics_dir), params.run)
    write_text(out / "README.md", render_markdown(summary, params.run.seeds, evaluators, header))
    print(f"wrote {out / 'metrics.json'} and {out / 'README.md'}")


if __name__ == "__main__":
    run_stage(main)
