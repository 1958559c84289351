#!/bin/sh
# stitch streams: peak RSS (VmHWM, from stitch.json's memory object) does
# not grow with segment length. 2 segments x 10 frames vs 2 x 200 frames of
# 320x240 (230 KB each as RGB): holding all 400 frames would add ~90 MB, so
# the bound (long run <= short run + 12 MiB) would catch even a tenth of
# that. x264's own buffers (lookahead, references) are fixed per preset.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
GEN=$TESTBIN/helpers/stitch_gen
PY=
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import json' 2>/dev/null; then PY=$p; break; fi
done
if [ -n "${ISOPIPE_SANITIZE:-}" ]; then
    # ASan's quarantine keeps freed frames mapped, so VmHWM measures ASan, not stitch
    skip "peak RSS under a sanitizer build (ASan quarantine holds freed memory)"
    test_done; exit
fi
jget() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

$GEN s10a 320 240 10 1 && $GEN s10b 320 240 10 2 || fail "stitch_gen"
$GEN s200a 320 240 200 1 && $GEN s200b 320 240 200 2 || fail "stitch_gen"
mkdir short long
check "10 frames per segment" "$BIN/stitch" -q --overlap 4 --preset ultrafast --threads 2 -o short/v.mp4 s10a s10b
check "200 frames per segment" "$BIN/stitch" -q --overlap 4 --preset ultrafast --threads 2 -o long/v.mp4 s200a s200b
a=$(jget short/stitch.json "j['memory']['peak_rss']")
b=$(jget long/stitch.json "j['memory']['peak_rss']")
echo "# peak RSS: 2 x 10 frames $a bytes, 2 x 200 frames $b bytes"
check "peak RSS with 200 frames/segment ($b) <= with 10 ($a) + 12 MiB" [ "$b" -le $((a + 12 * 1048576)) ]
check "frames alive never above K+1 = 5" [ "$(jget long/stitch.json "j['memory']['max_frames_alive']")" -le 5 ]
check "long run encoded 396 frames" [ "$(jget long/stitch.json "j['frames']")" = 396 ]
# the memory plan (stitch --plan, and memory.plan in stitch.json) against the measured peak
plan=$(jget long/stitch.json "j['memory']['plan']['modes']['cpu']['host_rss']")
echo "# planned host RSS $plan bytes, measured peak $b bytes"
check "plan within [0.9, 2] x the measured peak RSS" [ "$((plan * 10))" -ge "$((b * 9))" -a "$plan" -le "$((b * 2))" ]
"$BIN/stitch" --plan --overlap 4 --preset ultrafast s200a s200b > plan.json 2>/dev/null
check "--plan exits 0 and prints the same plan" [ $? -eq 0 -a "$(jget plan.json "j['auto_pick'], j['modes']['cpu']['host_rss']")" = "cpu $plan" ]
check "--plan writes no video" [ ! -e stitch.json ]
"$BIN/stitch" --memory-mode beefy -o x.mp4 s10a 2>err.txt
check "--memory-mode beefy: usage error 64, stitch is CPU-only" [ $? -eq 64 -a ! -e x.mp4 ]
test_done
