#!/bin/sh
# flow-extract end to end: pair, frame directory, video; --backward, --every,
# --no-vis, --max-size, --vis-max; flow.json contents; accuracy on flowgen
# ground truth (EPE computed by numpy, float64); every failure is one line on
# stderr with the documented exit code and leaves no output (nor temp) behind.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
FX="$BIN/flow-extract"
GEN="$TESTBIN/helpers/flowgen"
PY=/usr/bin/python3

"$GEN" -o gen --seed 5 --width 160 --height 120 --frames 4 --max-motion 6 || fail "flowgen"

epe() { # flo gt -> mean EPE on stdout
    "$PY" - "$1" "$2" <<'PYEOF'
import sys, numpy as np
def rd(p):
    a = np.fromfile(p, np.float32); w, h = a[1:3].view(np.int32); return a[3:].reshape(h, w, 2).astype(np.float64)
f, g = rd(sys.argv[1]), rd(sys.argv[2])
print("%.4f" % np.hypot(*(f - g).transpose(2, 0, 1)).mean())
PYEOF
}
lt() { "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$1" "$2"; }
jget() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$1" "$2"; }

# --- a pair
expect_exit "pair" 0 "$FX" --threads 2 -o pair --pair gen/frame_00000.png gen/frame_00001.png
check "pair: flo, png, json" test -f pair/flow_00000.flo -a -f pair/flow_00000.png -a -f pair/flow.json
e=$(epe pair/flow_00000.flo gen/gt_00000.flo)
echo "# pair EPE vs ground truth: $e px"
check "pair: EPE $e < 0.8 px (layers with occlusions, motions up to 6 px)" lt "$e" 0.8
check "pair: flow.json paths relative, kind pair" test "$(jget pair/flow.json 'd["pairs"][0]["flow"]+" "+d["inputs"]["kind"]')" = "flow_00000.flo pair"
check "pair: memory object with checkpoints" test "$(jget pair/flow.json 'len(d["memory"]["checkpoints"])>=3 and d["memory"]["peak_rss"]>0')" = True
check "pair: header fields" test "$(jget pair/flow.json 'd["tool"]+" "+d["preset"]')" = "flow-extract medium"
check "checkpoints logged" grep -q "after load" "$T/.err"
check "pair: no temp sibling left" test -z "$(ls -A . | grep '\.tmp-')"

# --- a frame directory, backward, every
expect_exit "frames dir --backward" 0 "$FX" -q --backward -o dirout gen
check "dir: 3 flows + 3 backward" test "$(ls dirout/flow_0*.flo | wc -l) $(ls dirout/flow_bwd_*.flo | wc -l)" = "3 3"
e=$(epe dirout/flow_00002.flo gen/gt_00002.flo)
check "dir: pair 2 EPE $e < 0.8 px" lt "$e" 0.8
check "dir: timing per pair" test "$(jget dirout/flow.json 'all(p["flow_seconds"]>0 for p in d["pairs"]) and len(d["pairs"])==3')" = True
expect_exit "--every 2 --no-vis" 0 "$FX" -q --every 2 --no-vis -o every gen
check "every 2: one flow 0->2, no PNG" test "$(ls every | tr '\n' ' ')" = "flow.json flow_00000.flo "
check "every 2: frames recorded" test "$(jget every/flow.json '(d["pairs"][0]["from_frame"], d["pairs"][0]["to_frame"])')" = "(0, 2)"
expect_exit "--preset fast --vis-max 4" 0 "$FX" -q --preset fast --vis-max 4 -o fast --pair gen/frame_00000.png gen/frame_00001.png
check "vis max recorded" test "$(jget fast/flow.json 'd["vis"]["max"]==4.0 and d["vis"]["max_source"]=="--vis-max"')" = True
check "dominant-motion candidate on by default (recorded)" test "$(jget fast/flow.json 'd["parameters"]["global_motion"]')" = True
expect_exit "--no-global-motion" 0 "$FX" -q --no-global-motion -o nogm --pair gen/frame_00000.png gen/frame_00001.png
check "--no-global-motion recorded in flow.json" test "$(jget nogm/flow.json 'd["parameters"]["global_motion"]')" = False
expect_exit "--global-motion (still accepted)" 0 "$FX" -q --global-motion -o gm --pair gen/frame_00000.png gen/frame_00001.png
check "--global-motion recorded in flow.json" test "$(jget gm/flow.json 'd["parameters"]["global_motion"]')" = True
expect_exit "default medium" 0 "$FX" -q -o defm --pair gen/frame_00000.png gen/frame_00001.png
check "--global-motion is the default: the same flow" cmp -s gm/flow_00000.flo defm/flow_00000.flo

# --- --max-size: computed smaller, written at input size in input pixels
expect_exit "--max-size 80" 0 "$FX" -q --max-size 80 -o small --pair gen/frame_00000.png gen/frame_00001.png
check "max-size: computed 80x60, output 160x120" test "$(jget small/flow.json '(d["computed_width"],d["computed_height"],d["width"],d["scaled"])')" = "(80, 60, 160, True)"
e=$(epe small/flow_00000.flo gen/gt_00000.flo)
check "max-size: EPE $e < 1.5 px in input pixels" lt "$e" 1.5

# --- video: a clip encoded here with the ffmpeg CLI
if command -v ffmpeg >/dev/null 2>&1; then
    "$GEN" -o vgen --seed 9 --width 128 --height 96 --frames 5 --max-motion 4 >/dev/null
    ffmpeg -loglevel error -y -framerate 10 -i vgen/frame_%05d.png -c:v libx264 -qp 0 -pix_fmt yuv420p clip.mp4
    expect_exit "video" 0 "$FX" -q -o vout clip.mp4
    check "video: 5 frames decoded -> 4 flows" test "$(ls vout/flow_*.flo | wc -l)" = 4
    check "video: kind video" test "$(jget vout/flow.json 'd["inputs"]["kind"]+" "+str(d["inputs"]["frames_read"])')" = "video 5"
    e=$(epe vout/flow_00000.flo vgen/gt_00000.flo)
    check "video: EPE $e < 1.0 px (after yuv420p)" lt "$e" 1.0
    # corrupt: the same clip with its middle overwritten
    cp clip.mp4 bad.mp4
    sz=$(wc -c < bad.mp4)
    dd if=/dev/urandom of=bad.mp4 bs=1 seek=$((sz / 3)) count=$((sz / 3)) conv=notrunc 2>/dev/null
    head -c 3000 /dev/urandom > noise.mp4
    expect_exit "random bytes as video -> 65" 65 "$FX" -q -o bad1 noise.mp4
    check "one line, no output" test "$(wc -l < "$T/.err")" = 1 -a ! -e bad1
    "$FX" -q -o bad2 bad.mp4 2>"$T/.err"; rc=$?
    if [ $rc -eq 0 ]; then ok "damaged clip decoded anyway (decoder concealment): allowed"
    else check "damaged clip: exit 65 (got $rc), no output" test $rc -eq 65 -a ! -e bad2; fi
else
    skip "video input (no ffmpeg CLI)"
fi

# --- bad inputs
mkdir empty one mixed
cp gen/frame_00000.png one/
cp gen/frame_00000.png mixed/frame_00000.png
"$GEN" -o other --seed 1 --width 64 --height 48 --frames 2 >/dev/null
cp other/frame_00001.png mixed/frame_00001.png
expect_exit "empty dir -> 66" 66 "$FX" -q -o o1 empty
check "empty dir: one line, no output" test "$(wc -l < "$T/.err")" = 1 -a ! -e o1
check "empty dir: says why" stderr_has "no frame_\*.png"
expect_exit "single frame -> 65" 65 "$FX" -q -o o2 one
check "single frame: one line, no output" test "$(wc -l < "$T/.err")" = 1 -a ! -e o2
expect_exit "frames of different sizes -> 65" 65 "$FX" -q -o o3 mixed
check "sizes: one line naming both, no output" test "$(wc -l < "$T/.err")" = 1 -a ! -e o3
check "sizes: message" stderr_has "must have one size"
expect_exit "missing input -> 66" 66 "$FX" -q -o o4 nothere.mp4
check "missing: one line" test "$(wc -l < "$T/.err")" = 1 -a ! -e o4
echo "not a png" > fake.png
expect_exit "pair with a non-PNG -> 65" 65 "$FX" -q -o o5 --pair fake.png gen/frame_00000.png
check "non-PNG: one line" test "$(wc -l < "$T/.err")" = 1 -a ! -e o5
if [ "$(id -u)" -ne 0 ]; then
    mkdir locked; cp gen/frame_0000[01].png locked/; chmod 000 locked
    expect_exit "unreadable dir -> 74" 74 "$FX" -q -o o6 locked
    check "unreadable: one line, no output" test "$(wc -l < "$T/.err")" = 1 -a ! -e o6
    chmod 755 locked
else
    skip "unreadable directory (running as root: permissions do not apply)"
fi
expect_exit "output parent missing -> 73" 73 "$FX" -o no/such/dir --pair gen/frame_00000.png gen/frame_00001.png
expect_exit "bad preset -> 64" 64 "$FX" --preset turbo -o o7 gen
expect_exit "--pair with one file -> 64" 64 "$FX" -o o8 --pair gen/frame_00000.png
expect_exit "unknown model -> 69" 69 "$FX" -m raft -o o9 gen
check "no temp siblings after failures" test -z "$(ls -A . | grep '\.tmp-')"
# an existing output is replaced whole
expect_exit "rerun over an existing output" 0 "$FX" -q --no-vis -o pair --pair gen/frame_00000.png gen/frame_00001.png
check "rerun: old PNG gone" test ! -e pair/flow_00000.png -a -f pair/flow_00000.flo
# memory: the plan has the common schema, a GPU mode without a GPU is refused with 69, the report carries the plan
before=$(ls -A | grep -cv '^\.\(out\|err\)$')
expect_exit "--plan needs no -o" 0 "$FX" --plan --pair gen/frame_00000.png gen/frame_00001.png
# a CUDA build has a GPU path (dis_cuda.cu): beefy is possible in the plan,
# but without a device auto still picks cpu
check "--plan: auto picks cpu, cpu possible, beefy only in a CUDA build" /usr/bin/python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
cuda = sys.argv[2] == "1"
assert p["auto_pick"] == "cpu" and p["modes"]["cpu"]["possible"] and p["modes"]["beefy"]["possible"] == cuda
assert p["modes"]["lightweight"]["possible"] == cuda
if cuda: assert p["modes"]["beefy"]["vram_peak"] > 0
assert p["modes"]["cpu"]["host_rss"] > 0 and p["width"] > 0' "$T/.out" "${ISOPIPE_CUDA_BUILD:-0}"
check "--plan wrote nothing" test "$(ls -A | grep -cv '^\.\(out\|err\)$')" = "$before"
expect_exit "--memory-mode beefy without a GPU -> 69 (never, not retry)" 69 "$FX" --memory-mode beefy -o o10 --pair gen/frame_00000.png gen/frame_00001.png
check "beefy refused: no output" test ! -e o10
expect_exit "--memory-mode lightweight without a GPU -> 69" 69 "$FX" --memory-mode lightweight -o o11 --pair gen/frame_00000.png gen/frame_00001.png
check "lightweight refused: no output" test ! -e o11
check "flow.json memory: mode cpu, plan within 25% of measured peak RSS" /usr/bin/python3 -c '
import json, sys
m = json.load(open("pair/flow.json"))["memory"]
plan = m["plan"]["modes"]["cpu"]["host_rss"]
assert m["mode"] == "cpu" and m["peak_rss"] > 0
assert json.load(open("pair/flow.json"))["compute"] == "cpu"
assert plan >= 0.75 * m["peak_rss"] and plan <= 1.5 * m["peak_rss"], (plan, m["peak_rss"])'
expect_exit "--help" 0 "$FX" --help
test_done
