#!/usr/bin/env bash
# Set up (if needed) and run the whole pipeline on the params in params.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DVC_NO_ANALYTICS=1 PATH="$PWD/.venv/bin:$PATH"
aebench validate
dvc repro "$@"
