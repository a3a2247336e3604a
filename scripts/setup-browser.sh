#!/usr/bin/env bash
# Idempotent set-up for tests/test_browser.py on Debian, as root: Debian's Chromium headless shell
# (Playwright's own browser download cannot reach its host from here; the full `chromium` package
# calls Google hosts on start whatever its flags, which the test counts as network requests) with a
# fixed font for stable screenshots, and the pinned Playwright driver in .venv.
# Quiet and fast when everything is already there; apt-get update runs only when it must.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION=1.65.2  # keep in step with the test extras in pyproject.toml
apt_packages=(chromium-headless-shell fonts-dejavu-core)

quietly() {
  # Run a command with its chatter kept back; show it only when the command fails.
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

if [ "${AEBENCH_SKIP_BROWSER:-}" = 1 ]; then
  echo "setup-browser: skipped (AEBENCH_SKIP_BROWSER=1: tests/test_browser.py skips too)"
  exit 0
fi

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-browser: ${missing[*]} missing, and apt-get needs root; install them as root," \
      "or set AEBENCH_SKIP_BROWSER=1 to skip the browser test" >&2
    exit 1
  fi
  echo "setup-browser: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  quietly apt-get update
  quietly apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup-browser: .venv is missing; run scripts/setup.sh first" >&2
  exit 1
fi
installed=$(.venv/bin/python -c \
  'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null || true)
if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
  echo "setup-browser: installing playwright==$PLAYWRIGHT_VERSION into .venv"
  # Only the Python package and its bundled node driver; never `playwright install`.
  quietly .venv/bin/python -m pip install "playwright==$PLAYWRIGHT_VERSION"
fi
