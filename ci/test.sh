#!/usr/bin/env bash
# The CI gates of DESIGN.md, in order. Run through `make test` (which puts .venv/bin on PATH).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
passed=0; failed=0; failures=()

gate() {
    local name="$1"; shift
    echo
    echo "=== gate: $name"
    local start=$SECONDS
    if "$@"; then
        passed=$((passed + 1)); echo "--- ok: $name ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1)); failures+=("$name"); echo "--- FAILED: $name ($((SECONDS - start)) s)"
    fi
}

gate "1 harness tests"                    python -m pytest tests -q -p no:cacheprovider
gate "2 solutions get full marks"         llmlab grade --impl solutions --strict --quiet --json build/grade-solutions.json --junit build/grade-solutions.xml
gate "3 skeletons fail with their TODOs"  python ci/check_skeletons.py
gate "4a exercises in sync"               llmlab sync --check
gate "4b reference data reproducible"     llmlab fixtures --check
gate "5 every mutant caught, every correct variant accepted"  llmlab mutants
gate "6 notebooks build, execute, release and autograde"      python ci/check_notebooks.py

echo
if [ "$failed" -ne 0 ]; then
    printf 'failed gates: %s\n' "${failures[@]}"
fi
echo "gates: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
