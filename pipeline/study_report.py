"""DVC stage studies/dvc.yaml:study_report: draw every study of run.studies into reports/studies/
— README.md, index.html (self-contained), figures/*.png, metrics.json (for `dvc metrics`),
runs.csv (every run's values, for a paired history) and environment.json (the hardware class).

Nothing written depends on the clock: re-rendering unchanged inputs gives identical bytes."""

import argparse
from pathlib import Path

from aebench.config import load_params
from aebench.io import staged_outputs, write_json, write_text
from aebench.report.environment import machine
from aebench.report.html import write_html
from aebench.report.markdown import render_markdown
from aebench.stage import run_stage
from aebench.studies import StaleStudies, check_points
from aebench.study_report import (
    build_document,
    gather_study,
    study_figure,
    study_metrics,
    study_section,
    write_study_runs,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/studies")
    args = parser.parse_args()
    params = load_params(args.params)
    check_points(params)  # the runs DVC just made are the ones params.yaml declares
    with staged_outputs(Path(args.out)) as staging:
        figures_dir = staging / "figures"
        figures_dir.mkdir()
        sections, results = [], []
        for name in params.run.studies:
            for dataset in params.run.datasets:
                result = gather_study(params, params.studies[name], dataset, Path("data"))
                path = study_figure(result, figures_dir / f"{dataset}_{name}.png")
                sections.append(study_section(result, path, staging))
                results.append(result)
        doc = build_document(sections)
        write_text(staging / "README.md", render_markdown(doc))
        write_html(doc, staging, staging / "index.html")
        write_json(staging / "metrics.json", study_metrics(results))
        write_study_runs(results, staging / "runs.csv")
        devices = sorted({d for r in results for d in r.runs.get("device", [])})
        write_json(staging / "environment.json", machine(params, devices))
    print(f"wrote {args.out}/: {len(sections)} study section(s)")


if __name__ == "__main__":
    run_stage(main, (StaleStudies,))
