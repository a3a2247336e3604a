#!/usr/bin/env bash
# Set up (if needed) and run the whole pipeline on the params in params.yaml: the train and
# evaluate stages on local Dask workers (one per core at train.threads 1), the report last.
# Arguments go to `aebench run` (e.g. --workers 1); plain `dvc repro` gives the same results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DVC_NO_ANALYTICS=1 PATH="$PWD/.venv/bin:$PATH"
aebench validate
aebench run "$@"
