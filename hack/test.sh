#!/usr/bin/env bash
# The test command: quality gates, then the whole test suite. Exits non-zero on any failure,
# and treats "no tests ran" as a failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PWD/.venv/bin:$PATH"

failed=()
step() {
  local name="$1"; shift
  echo "=== $name: $*"
  local start=$SECONDS
  if "$@"; then
    echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    echo "=== $name: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}

step ruff ruff check operator tests hack
step format ruff format --check operator tests hack
step mypy mypy
step imports lint-imports
step crds proxnix crds --check
step pytest pytest "$@"

if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all gates passed"
