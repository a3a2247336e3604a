#!/usr/bin/env bash
# Set up (if needed) and run the studies listed in params.yaml's run.studies: their generated
# variants (and any default-run stage they read that is out of date) on local Dask workers, then
# reports/studies/. Arguments go to `aebench study` (e.g. --workers 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DVC_NO_ANALYTICS=1 PATH="$PWD/.venv/bin:$PATH"
aebench study "$@"
