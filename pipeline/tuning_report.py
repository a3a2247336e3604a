"""DVC stage tuning/report/dvc.yaml:tuning_report: the tuned section into reports/tuning/ —
README.md, index.html (self-contained), figures/*.png (a heat map per grid and task) and runs.csv
(every compared run's values, the selected points' and the defaults', for paired comparisons from
git).

Nothing written depends on the clock: re-rendering unchanged inputs gives identical bytes."""

import argparse
import json
from pathlib import Path

from aebench.config import ParamsError, load_params
from aebench.io import staged_outputs, write_text
from aebench.report.html import write_html
from aebench.report.markdown import render_markdown
from aebench.report.results import write_run_table
from aebench.stage import run_stage
from aebench.tuning import SELECTED_FILE, StaleTuning, check_points
from aebench.tuning_report import build_document, gather_evidence, tuned_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/tuning")
    args = parser.parse_args()
    params = load_params(args.params)
    if params.tuning is None:
        raise ParamsError("params.yaml has no tuning section: nothing to report")
    check_points(params)
    selected = json.loads(SELECTED_FILE.read_text())
    evidence = gather_evidence(params, selected)
    rows = tuned_rows(params, selected, evidence)
    with staged_outputs(Path(args.out)) as staging:
        figures_dir = staging / "figures"
        figures_dir.mkdir()
        doc = build_document(params, selected, rows, evidence, figures_dir, staging)
        write_text(staging / "README.md", render_markdown(doc))
        write_html(doc, staging, staging / "index.html")
        write_run_table(evidence.runs, staging / "runs.csv")
    print(f"wrote {args.out}/: {len(rows)} tuned row(s)")


if __name__ == "__main__":
    run_stage(main, (StaleTuning,))
