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
