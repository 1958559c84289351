#!/bin/sh
# adversarial (issue 11, item 3): a FIFO or a device given as a keyframe,
# flow, video, topic or model is refused at once (65) -- every reader opens
# inputs through fs_open_input (O_NONBLOCK, then fstat S_ISREG). Each run
# is under `timeout 20`: a hang shows as 124.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MK=$TESTBIN/helpers/mkkeyframes
for t in flow-extract segment-gen pipeline-report prompt-expand; do
    [ -x "$BIN/$t" ] || { skip "special files ($t not built)"; test_done; exit; }
done
[ -x "$MK" ] || { skip "special files (mkkeyframes helper not built)"; test_done; exit; }
command -v timeout >/dev/null 2>&1 || { skip "special files (no timeout(1))"; test_done; exit; }
"$MK" --scene forest --width 48 --height 32 --count 2 -o kf || fail "mkkeyframes"
A=kf/forest_00.png B=kf/forest_01.png
mkfifo fifo.png fifo.flo fifo.topic fifo.gguf fifo.mp4 || fail "mkfifo"
T20="timeout 20"

expect_exit "flow-extract --pair with a FIFO keyframe" 65 $T20 "$BIN/flow-extract" -q -o f1 --pair $A fifo.png
check "  ... names the file and says FIFO" stderr_has "fifo.png'.*FIFO"
expect_exit "flow-extract --pair with /dev/zero" 65 $T20 "$BIN/flow-extract" -q -o f1 --pair /dev/zero $B
expect_exit "flow-extract on a FIFO video" 65 $T20 "$BIN/flow-extract" -q -o f1 fifo.mp4
"$BIN/flow-extract" -q --backward -o fl --pair $A $B || fail "flow-extract"
SG="$BIN/segment-gen -q -m morph --frames 3"
expect_exit "segment-gen with a FIFO start keyframe" 65 $T20 $SG --start fifo.png --end $B --flow fl/flow_00000.flo --flow-back fl/flow_bwd_00000.flo -o s1
expect_exit "segment-gen with a FIFO flow" 65 $T20 $SG --start $A --end $B --flow fifo.flo --flow-back fl/flow_bwd_00000.flo -o s1
expect_exit "segment-gen with a FIFO scenes file" 65 $T20 $SG --start $A --end $B --flow fl/flow_00000.flo --flow-back fl/flow_bwd_00000.flo --scenes fifo.topic --index 0 -o s1
check "segment-gen left no output" test ! -e s1
expect_exit "topic-vars on a FIFO topic" 65 $T20 "$BIN/pipeline-report" -q topic-vars -o v.mk fifo.topic
printf 'topic: x\nkeyframes: %s fifo.png\n' $A > k.topic
expect_exit "topic-vars with a FIFO keyframe" 65 $T20 "$BIN/pipeline-report" -q topic-vars -o v.mk k.topic
expect_exit "prompt-expand with a FIFO model" 65 $T20 "$BIN/prompt-expand" -q -m "$T/fifo.gguf" --segments 1 -o sc.json k.topic
expect_exit "prompt-expand with a FIFO topic" 65 $T20 "$BIN/prompt-expand" -q -m "$T/fifo.gguf" --segments 1 -o sc.json fifo.topic
expect_exit "prompt-expand with /dev/zero as the model" 65 $T20 "$BIN/prompt-expand" -q -m /dev/zero --segments 1 -o sc.json k.topic
test_done
