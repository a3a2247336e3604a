#!/usr/bin/env bash
# Set up (if needed), lint, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DVC_NO_ANALYTICS=1 PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check . || true  # style report only; lint errors above fail the run
python -m pytest "$@"
