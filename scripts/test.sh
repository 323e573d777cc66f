#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, lints,
# type-checks, then runs the unit and integration tests against a real Kafka
# broker and a real Redis started by scripts/stack.sh.
#
#   scripts/test.sh [pytest args...]
#
# A stack this script starts is stopped (and its data purged) on exit; a stack
# that was already running is reused and left running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null || { .venv/bin/ruff format --diff . >&2; exit 1; }
echo "== mypy" >&2
.venv/bin/mypy
started_here=0
if ! scripts/stack.sh status 2>/dev/null; then started_here=1; fi
cleanup() { if [[ $started_here == 1 ]]; then scripts/stack.sh down --purge >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
while IFS='=' read -r key value; do export "$key=$value"; done < <(scripts/stack.sh up)
echo "== pytest" >&2
.venv/bin/python -m pytest -p no:cacheprovider "$@"
