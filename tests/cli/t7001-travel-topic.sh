#!/bin/sh
# travel driver, before any stage runs: the topic as Make variables
# (pipeline-report topic-vars), write-if-changed stamps, the clear errors for
# a bad topic through `make pipeline` (nothing runs, nothing is written), and
# the sample keyframes being exactly what tests/helpers/mkkeyframes draws.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
PR=$BIN/pipeline-report
MK=$TESTBIN/helpers/mkkeyframes
if [ ! -x "$PR" ] || [ ! -x "$MK" ]; then
    skip "travel topic tests (bin/pipeline-report or the mkkeyframes helper not built)"; test_done; exit
fi
travel_make() { # make pipeline in the repository with the tools under test
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$ROOT" pipeline \
        SANITIZE="${ISOPIPE_SANITIZE:-}" CUDA=0 TRAVEL_BIN="$BIN" "$@"
}

"$MK" --scene forest --width 48 --height 32 --count 3 -o kf || fail "mkkeyframes"
"$MK" --scene harbor --width 40 --height 32 --count 1 -o other || fail "mkkeyframes"
cat > good.topic <<'T'
# a comment
topic: a walk in the woods
keyframes: kf/forest_00.png kf/forest_01.png
keyframes: kf/forest_02.png
frames: 9
overlap: 2
fps: 7.5
seed: 42
T
expect_exit "topic-vars on a good topic" 0 "$PR" topic-vars --prompt-topic p.topic -o vars.mk good.topic
check "vars: three keyframes, two segments" grep -qx 'TRAVEL_NSEG := 2' vars.mk
check "vars: segment names" grep -qx 'TRAVEL_SEGS := 000 001' vars.mk
check "vars: keyframes resolved against the topic file" grep -qx 'TRAVEL_B_001 := kf/forest_02.png' vars.mk
check "vars: index of a segment is a plain integer" grep -qx 'TRAVEL_IDX_001 := 1' vars.mk
check "vars: frames, overlap, fps, seed" sh -c 'grep -qx "TRAVEL_FRAMES := 9" vars.mk && grep -qx "TRAVEL_OVERLAP := 2" vars.mk && grep -qx "TRAVEL_FPS := 7.5" vars.mk && grep -qx "TRAVEL_SEED := 42" vars.mk'
check "vars: size from the keyframes" sh -c 'grep -qx "TRAVEL_WIDTH := 48" vars.mk && grep -qx "TRAVEL_HEIGHT := 32" vars.mk'
check "vars: total frames 2*9 - 2" grep -qx 'TRAVEL_TOTAL_FRAMES := 16' vars.mk
check "prompt topic: text, segments, seed only" sh -c 'grep -qx "topic: a walk in the woods" p.topic && grep -qx "segments: 2" p.topic && ! grep -q keyframes p.topic'

# a keyframe edit leaves the prompt topic untouched (mtime), a text edit does not
touch -d '2001-01-01' p.topic vars.mk
sed 's/^frames: 9/frames: 10/' good.topic > g2.topic && mv g2.topic good.topic
"$PR" -q topic-vars --prompt-topic p.topic -o vars.mk good.topic
check "frames edit: prompt topic not rewritten" test "$(stat -c %Y p.topic)" = "$(date -d 2001-01-01 +%s)"
check "frames edit: vars rewritten" grep -qx 'TRAVEL_FRAMES := 10' vars.mk
sed 's/^topic: .*/topic: a run in the woods/' good.topic > g2.topic && mv g2.topic good.topic
"$PR" -q topic-vars --prompt-topic p.topic -o vars.mk good.topic
check "topic edit: prompt topic rewritten" grep -qx 'topic: a run in the woods' p.topic

# stamps move only when their words change
"$PR" stamp st -- --a 1 --b two
touch -d '2001-01-01' st
"$PR" stamp st -- --a 1 --b two
check "stamp: same words keep the mtime" test "$(stat -c %Y st)" = "$(date -d 2001-01-01 +%s)"
"$PR" stamp st -- --a 1 --b three
check "stamp: new words rewrite it" sh -c 'test "$(stat -c %Y st)" != "$(date -d 2001-01-01 +%s)" && grep -qx three st'

# bad topics: exit code, one clear line naming the problem
printf 'topic: x\nkeyframes: kf/forest_00.png\n' > one.topic
expect_exit "one keyframe for the morph model" 65 "$PR" -q topic-vars -o v.mk one.topic
check "one keyframe: message" stderr_has "needs at least two keyframes"
printf 'topic: x\nkeyframes: kf/forest_00.png kf/nope.png\n' > missing.topic
expect_exit "a missing keyframe" 66 "$PR" -q topic-vars -o v.mk missing.topic
check "missing keyframe: message names it" stderr_has "keyframe 'kf/nope.png' does not exist"
printf 'topic: x\nkeyframes: kf/forest_00.png other/harbor_00.png\n' > sizes.topic
expect_exit "keyframes of two sizes" 65 "$PR" -q topic-vars -o v.mk sizes.topic
check "sizes: message" stderr_has "48x32"
printf 'topic: x\nkeyframes: kf/forest_00.png kf/forest_01.png\nsegments: 3\n' > segs.topic
expect_exit "segments that do not match the keyframes" 65 "$PR" -q topic-vars -o v.mk segs.topic
printf 'topic: x\nkeyframes: kf/forest_00.png kf/forest_01.png\nframes: 4\noverlap: 4\n' > ov.topic
expect_exit "overlap as long as a segment" 65 "$PR" -q topic-vars -o v.mk ov.topic
cp kf/forest_01.png 'kf/a:b$c.png'
printf 'topic: x\nkeyframes: kf/forest_00.png kf/a:b$c.png\n' > colon.topic
expect_exit "a keyframe path Make cannot carry" 65 "$PR" -q topic-vars -o v.mk colon.topic
check "path: message names the path and the allowed characters" stderr_has "keyframe path 'kf/a:b\$c.png' has a character"
printf 'topic: x\nkeyframes: kf/forest_00.png, kf/forest_01.png\n' > comma.topic
expect_exit "comma-separated keyframes" 0 "$PR" -q topic-vars -o v.mk comma.topic
"$PR" -q topic-vars -o never.mk missing.topic 2>/dev/null
check "no vars file after a failed check" test ! -e never.mk

# the same through make: the error shows and no stage runs
expect_exit "make pipeline with a missing keyframe fails" 2 travel_make TOPIC="$T/missing.topic" OUT="$T/out1"
check "make: the topic's message is shown" stderr_has "keyframe '$T/kf/nope.png' does not exist"
check "make: no stage ran" test ! -e out1/scenes.json -a ! -e out1/.travel/run.log -a ! -d out1/flow
expect_exit "make pipeline without TOPIC" 2 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" pipeline TRAVEL_BIN="$BIN"
check "make: says TOPIC is needed" stderr_has "TOPIC="

# sample keyframes: exactly what the generator draws (decoded pixels, so a
# different zlib does not matter)
if command -v ffmpeg >/dev/null 2>&1; then
    "$MK" --scene harbor --count 3 --step 12 -o gen && "$MK" --scene forest --count 3 --step 16 -o gen
    bad=0
    for f in harbor/harbor_00 harbor/harbor_01 harbor/harbor_02 forest/forest_00 forest/forest_01 forest/forest_02; do
        a=$(ffmpeg -v error -i "$ROOT/sample_inputs/$f.png" -f rawvideo -pix_fmt rgb24 - | md5sum)
        b=$(ffmpeg -v error -i "gen/$(basename $f).png" -f rawvideo -pix_fmt rgb24 - | md5sum)
        [ "$a" = "$b" ] || { bad=1; echo "# $f differs from the generator's output"; }
    done
    check "sample keyframes are reproduced by mkkeyframes" test $bad -eq 0
    for t in harbor forest; do
        check "sample $t.topic passes the topic check" "$PR" -q topic-vars -o s.mk "$ROOT/sample_inputs/$t.topic"
    done
else
    skip "sample keyframes check (ffmpeg not found)"
fi
test_done
