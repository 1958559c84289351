#!/bin/sh
# Runs every unit test binary and every CLI test script, then prints one line:
#   N passed, N failed, N skipped
# Each test program prints "ok - ...", "FAIL - ...", "skip - ..." lines and a
# closing "N passed, N failed, N skipped" line of its own, which is summed here.
# A program that crashes or prints no summary counts as one failure.
# Arguments (optional): name filters, e.g. `make test TESTS="png t1"`.
: "${ISOPIPE_BIN:?}" "${ISOPIPE_TESTBIN:?}"
export ISOPIPE_BIN ISOPIPE_TESTBIN
ISOPIPE_ROOT=$(pwd); export ISOPIPE_ROOT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# tests never touch a real ledger or a real GPU unless a GPU script asks for it
ISOPIPE_LEDGER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-ledger-XXXXXX"); export ISOPIPE_LEDGER_DIR
ISOPIPE_MODELS="$ISOPIPE_ROOT/models"; export ISOPIPE_MODELS
log=$(mktemp "${TMPDIR:-/tmp}/isopipe-test-XXXXXX")
trap 'rm -rf "$log" "$ISOPIPE_LEDGER_DIR"' EXIT INT TERM

P=0 F=0 S=0
want() {
    [ $# -eq 0 ] && return 0
    for w in $FILTERS; do case "$1" in *"$w"*) return 0 ;; esac; done
    return 1
}
FILTERS="$*"
run_one() { # name, command...
    name=$1; shift
    [ -n "$FILTERS" ] && ! want "$name" && return
    start=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$summary" ]; then
        echo "FAIL - $name: exited $rc without a summary line"
        sed 's/^/    | /' "$log" | tail -n 30
        F=$((F + 1)); return
    fi
    p=$(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$summary" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p'); s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    grep -E '^(FAIL|skip) ' "$log" | sed "s|^|  $name: |"
    if [ "$f" -gt 0 ]; then sed 's/^/    | /' "$log" | tail -n 40; fi
    printf '%-34s %3d passed, %d failed, %d skipped (%ss)\n' "$name" "$p" "$f" "$s" "$secs"
    P=$((P + p)); F=$((F + f)); S=$((S + s))
}

for t in "$ISOPIPE_TESTBIN"/test_*; do
    [ -x "$t" ] || continue
    run_one "unit/$(basename "$t")" "$t"
done
for t in tests/cli/t[0-9]*.sh; do
    [ -f "$t" ] || continue
    run_one "cli/$(basename "$t" .sh)" sh "$t"
done
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
