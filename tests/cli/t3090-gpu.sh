#!/bin/sh
# The memory runtime on a real card: runs tests/gpu/run.sh when this
# machine has a GPU, else reports the skip (no GPU). Set ISOPIPE_SKIP_GPU=1
# to skip on a GPU machine (the run takes about a minute).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
if [ -n "${ISOPIPE_SKIP_GPU:-}" ]; then
    skip "memory runtime on a real card (ISOPIPE_SKIP_GPU set)"
elif ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    skip "memory runtime on a real card (no GPU)"
else
    out=$(sh "$ROOT/tests/gpu/run.sh" 2>&1)
    echo "$out" | grep -E '^(ok|FAIL|skip|#) '
    _p=$((_p + $(echo "$out" | grep -c '^ok '))); _f=$((_f + $(echo "$out" | grep -c '^FAIL ')))
    _s=$((_s + $(echo "$out" | grep -c '^skip ')))
fi
test_done
