#!/usr/bin/env bash
# Set up (if needed) and run the full-MNIST section (params.yaml's full_mnist; hours, see
# docs/full-mnist.md) on local Dask workers, then reports/full_mnist/. Resumable: an interrupted
# run keeps every finished model in the DVC run-cache. Arguments go to `aebench full-mnist`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DVC_NO_ANALYTICS=1 PATH="$PWD/.venv/bin:$PATH"
aebench full-mnist "$@"
