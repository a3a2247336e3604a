#!/usr/bin/env bash
# Set up (if needed: .venv, packages, DVC config, Chromium for the browser test), lint, and run
# the whole test suite. Exactly what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-browser.sh
export DVC_NO_ANALYTICS=1 PATH="$PWD/.venv/bin:$PATH"
# The browser test's screenshots, kept for the record (git-ignored).
export AEBENCH_SCREENSHOT="${AEBENCH_SCREENSHOT:-$PWD/test-artifacts/browser-demo.png}"
mkdir -p "$(dirname "$AEBENCH_SCREENSHOT")"
ruff check .
ruff format --check . || echo "test: ruff format would restyle the files above (not a failure)"
# One pytest worker per core, a module at a time (why: docs/testing.md#one-worker-per-core);
# AEBENCH_TEST_WORKERS=0 runs in this process.
python -m pytest -n "${AEBENCH_TEST_WORKERS:-auto}" --dist loadscope --no-loadscope-reorder "$@"
