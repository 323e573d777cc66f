#!/usr/bin/env bash
# Create the project virtualenv (.venv) and install Kizuna with its pinned
# dependencies. Idempotent: a second run with unchanged pins does nothing.
# Kizuna installs top-level packages named `agents`, `streams` and `schemas`;
# keep it in its own virtualenv (this one) so they shadow nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${KIZUNA_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON="$candidate"; break
    fi
  done
fi
if [[ -z "$PYTHON" ]]; then
  echo "bootstrap: Python 3.11 is required (set KIZUNA_PYTHON to its path)" >&2
  exit 1
fi
stamp_of() { cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1; }
STAMP=".venv/.kizuna-installed"
if [[ -x .venv/bin/python && -f "$STAMP" && "$(cat "$STAMP")" == "$(stamp_of)" ]]; then
  exit 0
fi
echo "bootstrap: installing Kizuna into .venv" >&2
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
mkdir -p .cache
LOG=.cache/bootstrap.log
if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade "pip==26.3" &&
       .venv/bin/python -m pip install --disable-pip-version-check -c requirements.lock -e ".[dev]"; } >"$LOG" 2>&1; then
  tail -40 "$LOG" >&2
  echo "bootstrap: pip install failed (full log: $LOG)" >&2
  exit 1
fi
stamp_of > "$STAMP"
