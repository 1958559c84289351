#!/bin/sh
# pipelines/batch.sh: three topics two at a time, one broken (a keyframe
# missing): the two good runs finish with their MP4s, the broken one fails
# without stopping them, the summary table shows all three, exit status 1.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MK=$TESTBIN/helpers/mkkeyframes
need=
for t in pipeline-report prompt-expand flow-extract segment-gen stitch; do [ -x "$BIN/$t" ] || need="$need $t"; done
[ -x "$MK" ] || need="$need mkkeyframes(helper)"
[ -f "$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf" ] || need="$need models/SmolLM2-135M-Instruct.Q4_1.gguf(make models)"
if [ -n "$need" ]; then skip "batch test (not built or missing:$need)"; test_done; exit; fi
# a private copy of the tools: a rebuild in the checkout while this runs
# must not look like "a tool changed" to the resume checks
mkdir tb && for t in pipeline-report prompt-expand flow-extract segment-gen stitch vram-probe; do
    [ -x "$BIN/$t" ] && cp -p "$BIN/$t" tb/
done
BIN=$T/tb
unset MAKEFLAGS MFLAGS MAKELEVEL
export TRAVEL_BIN="$BIN" TRAVEL_X264_PRESET=veryfast

mkdir topics
"$MK" --scene forest --width 48 --height 32 --count 2 --step 4 -o topics/kf || fail "mkkeyframes"
for n in alpha beta; do
    printf 'topic: a path through a pine forest (%s)\nkeyframes: kf/forest_00.png kf/forest_01.png\nframes: 4\nfps: 8\n' $n > topics/$n.topic
done
printf 'topic: broken\nkeyframes: kf/forest_00.png kf/missing.png\n' > topics/broken.topic
expect_exit "batch over three topics, one broken" 1 sh "$ROOT/pipelines/batch.sh" -j 2 -o "$T/out" topics
cp "$T/.out" summary.txt
check "alpha finished" test -s out/alpha/final.mp4 -a -s out/alpha/report.json
check "beta finished" test -s out/beta/final.mp4 -a -s out/beta/report.json
check "broken left no video" test ! -e out/broken/final.mp4
check "summary: alpha ok" grep -Eq '^alpha +ok ' summary.txt
check "summary: beta ok" grep -Eq '^beta +ok ' summary.txt
check "summary: broken FAIL with the reason" grep -Eq "^broken +FAIL .*keyframe .*missing.png' does not exist" summary.txt
check "summary: totals line" grep -qx '2 ok, 1 failed' summary.txt
check "summary: peak RAM of a finished run" sh -c "grep -E '^alpha ' summary.txt | grep -Eq '[0-9.]+ (MiB|GiB)'"
check "each run has its log" test -s out/alpha.log -a -s out/broken.log
expect_exit "batch without topics is a usage error" 64 sh "$ROOT/pipelines/batch.sh"
test_done
