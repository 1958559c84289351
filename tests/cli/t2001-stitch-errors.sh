#!/bin/sh
# stitch: every bad input gives the documented exit code, one error line
# that names the file, and leaves no output behind (no MP4, no report, no
# --frames-out directory, no temporary sibling).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
GEN=$TESTBIN/helpers/stitch_gen

$GEN a 48 32 6 1 25 && $GEN b 48 32 6 2 && $GEN big 64 32 6 3 || fail "stitch_gen"
mkdir out

nothing_left() { # description
    left=$(ls -A out)
    if [ -z "$left" ]; then ok "$1: nothing left in out/"; else fail "$1: left behind: $left"; fi
}
error_line() { # description, text the error line must contain
    # exactly one line on stderr besides the [RAM] checkpoints, and it names the input
    if [ "$(grep -cv '^\[[^]]*\] \[V\{0,1\}RAM\]' "$T/.err")" -eq 1 ] && stderr_has "$2"; then ok "$1: one error line naming '$2'"
    else fail "$1: error line should name '$2'"; sed 's/^/    stderr: /' "$T/.err" | head -n 5; fi
}
run_bad() { # description, exit code, text, stitch args...
    d=$1 code=$2 text=$3; shift 3
    expect_exit "$d" "$code" "$BIN/stitch" --preset ultrafast --frames-out out/frames -o out/final.mp4 "$@"
    error_line "$d" "$text"
    nothing_left "$d"
}

run_bad "no segments" 64 "no segment directories"
run_bad "missing segment directory" 66 "'nope'" a nope
mkdir empty
run_bad "empty segment" 65 "'empty'" a empty
cp -r a gap && rm gap/frame_00002.png
run_bad "gap in frame numbering" 65 "'gap/frame_00002.png'" a gap
cp -r a within && cp big/frame_00003.png within/frame_00003.png
run_bad "frames of different sizes within a segment" 65 "'within/frame_00003.png'" within
run_bad "frames of different sizes across segments" 65 "'big/frame_00000.png'" a big
$GEN short 48 32 3 4
run_bad "overlap larger than a segment" 65 "'short' (3 frames)" --overlap 4 a short
cp -r a notpng && echo "hello, I am not a PNG" > notpng/frame_00004.png
run_bad "non-PNG frame" 65 "'notpng/frame_00004.png': not a PNG file" a notpng
# truncated late in the sequence: the header is fine, so the frames before
# it are already encoded when the reader finds the damage
cp -r a trunc && sz=$(wc -c < a/frame_00005.png) && head -c $((sz / 2)) a/frame_00005.png > trunc/frame_00005.png
run_bad "truncated PNG" 65 "'trunc/frame_00005.png'" a trunc
# two bad frames decoded in parallel: the error is the first one in order
cp -r a two && cp trunc/frame_00005.png two/frame_00004.png && echo "not a PNG" > two/frame_00002.png
expect_exit "two bad frames, 4 decoder threads" 65 "$BIN/stitch" --decode-threads 4 --preset ultrafast -o out/final.mp4 two
error_line "two bad frames, 4 decoder threads" "'two/frame_00002.png'"
nothing_left "two bad frames"
cp -r a badjson && echo '{"fps": 25,' > badjson/segment.json
run_bad "malformed segment.json" 65 "'badjson/segment.json'" badjson
cp -r a badfps && echo '{"fps": -3}' > badfps/segment.json
run_bad "negative fps in segment.json" 65 "'badfps/segment.json'" badfps
cp -r a badname && cp a/frame_00000.png badname/frame_0006.png
run_bad "badly named frame" 65 "'badname/frame_0006.png'" badname

expect_exit "output in a missing directory" 73 "$BIN/stitch" -o out/missing/final.mp4 a
error_line "output in a missing directory" "'out/missing/final.mp4'"
nothing_left "output in a missing directory"
expect_exit "--frames-out in a missing directory" 73 "$BIN/stitch" --frames-out out/no/frames -o out/final.mp4 a
error_line "--frames-out in a missing directory" "'out/no/frames'"
nothing_left "--frames-out in a missing directory"
expect_exit "--report in a missing directory" 73 "$BIN/stitch" --report out/no/r.json -o out/final.mp4 a
error_line "--report in a missing directory" "'out/no/r.json'"
nothing_left "--report in a missing directory"

expect_exit "no -o" 64 "$BIN/stitch" a
expect_exit "bad preset" 64 "$BIN/stitch" --preset warp9 -o out/final.mp4 a
stderr_has "warp9" && ok "bad preset named" || fail "bad preset named"
nothing_left "bad preset"
expect_exit "crf out of range" 64 "$BIN/stitch" --crf 52 -o out/final.mp4 a
expect_exit "negative overlap" 64 "$BIN/stitch" --overlap -1 -o out/final.mp4 a
expect_exit "unknown codec (a usage error, issue 11)" 64 "$BIN/stitch" --codec nosuchcodec -o out/final.mp4 a
nothing_left "unknown codec"

# a re-run that fails keeps the previous good output untouched
"$BIN/stitch" -q --preset ultrafast -o out/final.mp4 a b
sum1=$(cksum < out/final.mp4)
expect_exit "failing re-run" 65 "$BIN/stitch" --preset ultrafast -o out/final.mp4 a trunc
check "failing re-run leaves the old video as it was" [ "$(cksum < out/final.mp4)" = "$sum1" ]
check "failing re-run leaves no temporary file" [ "$(ls -A out | grep -c tmp)" = 0 ]
rm -f out/final.mp4 out/stitch.json

# SIGINT while encoding: exit 130, nothing left
$GEN long 320 240 150 9
"$BIN/stitch" -q --preset medium --frames-out out/frames -o out/final.mp4 long long 2>"$T/.err" &
pid=$!
n=0
while [ $n -lt 200 ] && [ -z "$(ls -A out | grep tmp)" ]; do sleep 0.05; n=$((n + 1)); done
sleep 0.2
kill -INT $pid
wait $pid
rc=$?
check "SIGINT: exit 130 (got $rc)" [ "$rc" -eq 130 ]
stderr_has "interrupted" && ok "SIGINT: says interrupted" || fail "SIGINT: says interrupted"
nothing_left "SIGINT"
test_done
