#!/usr/bin/env bash
# Idempotent set-up of a fresh clone: the virtual environment in .venv, the pinned packages, and
# DVC's per-machine config (analytics off, site cache inside the repo). Safe to run every time:
# it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=.venv/.aebench-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing aebench and its pinned dependencies (torch is large: a few minutes)"
  .venv/bin/python -m pip install --quiet -e ".[test]"
  echo "$wanted" > "$stamp"
fi

export DVC_NO_ANALYTICS=1
# Per-machine DVC settings go to .dvc/config.local (git-ignored); the site cache must be an
# absolute path, else DVC resolves it against whatever directory it is started from.
.venv/bin/dvc config --local core.analytics false
.venv/bin/dvc config --local core.site_cache_dir "$PWD/.dvc/site_cache"
