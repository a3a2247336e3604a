#!/usr/bin/env bash
# One command for a DVC remote: checkpoints, per-image arrays and the run-cache go there, so
# another machine (or a fresh clone) restores every result without training.
#   bash scripts/remote.sh URL          set URL as the default remote, then push (run-cache too)
#   bash scripts/remote.sh URL --pull   set it, then pull; `dvc repro` then trains nothing
# URL: a directory, or anything `dvc remote add` takes (s3://, gs://, ssh://, ...; those need
# the matching `pip install dvc-s3` etc.). The remote is written to .dvc/config: commit it so
# that clones know where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:?usage: bash scripts/remote.sh URL [--pull]}
export DVC_NO_ANALYTICS=1
dvc=${DVC:-.venv/bin/dvc}
"$dvc" remote add --default --force aebench "$url"
if [ "${2:-}" = "--pull" ]; then
  "$dvc" pull --run-cache
else
  "$dvc" push --run-cache
fi
