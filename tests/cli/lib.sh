# lib.sh — sourced by every CLI test (tests/cli/tNNNN-*.sh), after git's t/test-lib.sh.
# Gives: a fresh temp directory as cwd, ok/fail/skip helpers, expect_exit,
# and a closing summary line "N passed, N failed, N skipped" via test_done.
set -u
: "${ISOPIPE_BIN:?run through make test}"
BIN=$ISOPIPE_BIN
TESTBIN=$ISOPIPE_TESTBIN
ROOT=$ISOPIPE_ROOT
T=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
_p=0 _f=0 _s=0
ok()   { _p=$((_p + 1)); echo "ok - $*"; }
fail() { _f=$((_f + 1)); echo "FAIL - $*"; }
skip() { _s=$((_s + 1)); echo "skip - $*"; }
# helpers use _lib_* names so they never clobber a test's own variables
check() { # description, command... : passes when the command succeeds
    _lib_d=$1; shift
    if "$@"; then ok "$_lib_d"; else fail "$_lib_d"; fi
}
expect_exit() { # description, expected code, command...
    _lib_d=$1; _lib_want=$2; shift 2
    "$@" >"$T/.out" 2>"$T/.err"; _lib_got=$?
    if [ "$_lib_got" -eq "$_lib_want" ]; then ok "$_lib_d (exit $_lib_got)"
    else fail "$_lib_d: expected exit $_lib_want, got $_lib_got"; sed 's/^/    stderr: /' "$T/.err" | head -n 5; fi
}
stderr_has() { grep -q -- "$1" "$T/.err"; }   # after expect_exit
stderr_lines() { grep -cvE '^\[[^]]*\] \[(RAM|VRAM)\] ' "$T/.err"; }   # stderr lines other than memory checkpoints
test_done() { echo "$_p passed, $_f failed, $_s skipped"; [ "$_f" -eq 0 ]; }
# act_fits JSON...: every "activations" object (a GPU mode's nn context,
# memory.nn or memory: common/nn_heap.h) in the reports shows the
# reservation held the run's allocation sequence: nothing beyond it, the
# high water within it. On a pretend device these come from the CPU's
# shadow of the device's heaps. Fails when a report has none.
act_fits() {
    python3 - "$@" <<'PY'
import json, sys
found = 0
def walk(o, f):
    global found
    if isinstance(o, dict):
        a = o.get("activations")
        if isinstance(a, dict) and "beyond_reserve" in a:
            found += 1
            print("# %s: reserved %d, high water %d (%.1f%%), peak %d, beyond %d" % (f, a["reserved"], a["high_water"], 100.0 * a["high_water"] / max(a["reserved"], 1), a["peak"], a["beyond_reserve"]))
            assert a["beyond_reserve"] == 0 and a["high_water"] <= a["reserved"], (f, a)
        for v in o.values(): walk(v, f)
    elif isinstance(o, list):
        for v in o: walk(v, f)
for f in sys.argv[1:]:
    walk(json.load(open(f)), f)
assert found >= len(sys.argv) - 1, "%d activations objects in %d reports" % (found, len(sys.argv) - 1)
PY
}
