#!/bin/sh
# adversarial (issue 11, item 8): the preflight (pipeline-report topic-vars,
# run by make before any stage) refuses what a later stage would refuse --
# more segments than the prompt stage writes, keyframes below flow-extract's
# 16x16, an overlap/fps stitch will not take -- so a bad topic costs no LLM
# run; a rejected topic is exactly one line on stderr (no stray
# "vars.mk: No such file"), and the fixed topic then runs.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
PR=$BIN/pipeline-report
MK=$TESTBIN/helpers/mkkeyframes
if [ ! -x "$PR" ] || [ ! -x "$MK" ]; then skip "preflight (pipeline-report or mkkeyframes not built)"; test_done; exit; fi
unset MAKEFLAGS MFLAGS MAKELEVEL
travel_make() {
    make -s --no-print-directory -C "$ROOT" pipeline SANITIZE="${ISOPIPE_SANITIZE:-}" CUDA=0 TRAVEL_BIN="$BIN" "$@"
}
"$MK" --scene forest --width 48 --height 32 --count 2 -o kf || fail "mkkeyframes"
"$MK" --scene forest --width 12 --height 10 --count 2 -o tiny || fail "mkkeyframes"
{ printf 'topic: many\nkeyframes:'; i=0; while [ $i -lt 66 ]; do printf ' kf/forest_00.png'; i=$((i + 1)); done; echo; } > many.topic
printf 'topic: tiny\nkeyframes: tiny/forest_00.png tiny/forest_01.png\n' > tiny.topic
printf 'topic: ov\nkeyframes: kf/forest_00.png kf/forest_01.png\nframes: 3000\noverlap: 1500\n' > ov.topic
printf 'topic: one\nkeyframes: kf/forest_00.png\n' > one.topic
for t in many tiny ov one; do
    expect_exit "topic-vars refuses $t.topic" 65 "$PR" -q topic-vars -o v.mk $t.topic
    expect_exit "make pipeline refuses $t.topic" 2 travel_make TOPIC="$T/$t.topic" OUT="$T/o_$t"
    check "  ... in exactly one line" test "$(grep -c . "$T/.err")" -eq 1
    check "  ... no 'No such file' noise" sh -c "! grep -q 'No such file' '$T/.err'"
    check "  ... no stage ran (no run.log, no scenes.json)" test ! -e o_$t/.travel/run.log -a ! -e o_$t/scenes.json
done
expect_exit "make pipeline refuses many.topic again" 2 travel_make TOPIC="$T/many.topic" OUT="$T/o_many"
check "many: the message says the prompt stage's limit" stderr_has "the prompt stage writes at most 64"
expect_exit "make pipeline refuses tiny.topic again" 2 travel_make TOPIC="$T/tiny.topic" OUT="$T/o_tiny"
check "tiny: the message names flow-extract's minimum" stderr_has "too small for flow-extract (at least 16x16)"
# the rejection is not sticky: the fixed topic runs (make -n: planned, nothing executed)
printf 'topic: tiny\nkeyframes: kf/forest_00.png kf/forest_01.png\nframes: 4\n' > tiny.topic
travel_make -n TOPIC="$T/tiny.topic" OUT="$T/o_tiny" > plan.txt 2>&1
check "fixed topic: make plans the stages" grep -q "prompt-expand" plan.txt
check "fixed topic: vars.mk holds the topic" grep -qx 'TRAVEL_NSEG := 1' o_tiny/.travel/vars.mk
test_done
