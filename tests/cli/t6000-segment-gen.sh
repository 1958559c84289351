#!/bin/sh
# segment-gen: keyframes byte for byte, a translation pair against the true
# half shift, segment.json, and bad input (exit code, one error line, no output).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
SG=$BIN/segment-gen

# python3 with numpy and OpenCV (Debian python3-numpy, python3-opencv) makes the inputs and scores
PY=
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import numpy, cv2' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    skip "segment-gen CLI tests (python3 with numpy and cv2 not found)"
    test_done; exit
fi

# A smooth analytic texture shifted by d = (6.4, -3.2) px: A = I(x, y), B = I(x - d),
# the true middle frame I(x - d/2); exact flows F = d, G = -d as Middlebury .flo.
$PY - <<'EOF' || { fail "making the inputs"; test_done; exit 1; }
import numpy as np, cv2
def tex(X, Y):
    r = 128 + 50*np.sin(X*0.21 + Y*0.05) + 40*np.cos(Y*0.17 - X*0.03) + 20*np.sin((X+Y)*0.37)
    g = 128 + 60*np.sin(X*0.11 - Y*0.13 + 1) + 30*np.cos(X*0.29)
    b = 128 + 55*np.cos(Y*0.23 + 2) + 35*np.sin(X*0.07 + Y*0.19)
    return np.clip(np.stack([b, g, r], -1), 0, 255)
def flo(path, u, v):
    h, w = u.shape
    with open(path, 'wb') as f:
        np.array([202021.25], '<f4').tofile(f); np.array([w, h], '<i4').tofile(f)
        np.stack([u, v], -1).astype('<f4').tofile(f)
W, H, dx, dy = 160, 120, 6.4, -3.2
Y, X = np.mgrid[0:H, 0:W].astype(np.float64)
for name, (sx, sy) in (('a', (0, 0)), ('b', (dx, dy)), ('mid', (dx/2, dy/2))):
    cv2.imwrite(name + '.png', np.round(tex(X - sx, Y - sy)).astype(np.uint8))
cv2.imwrite('small.png', np.zeros((60, 80, 3), np.uint8))
cv2.imwrite('gray_a.png', np.round(tex(X, Y)[:, :, 1]).astype(np.uint8))
cv2.imwrite('gray_b.png', np.round(tex(X - dx, Y - dy)[:, :, 1]).astype(np.uint8))
flo('f.flo', np.full((H, W), dx), np.full((H, W), dy))
flo('g.flo', np.full((H, W), -dx), np.full((H, W), -dy))
flo('f_small.flo', np.zeros((60, 80)), np.zeros((60, 80)))
EOF
cat >scenes.json <<'EOF'
{"tool": "prompt-expand", "segments": [{"index": 0, "prompt": "a harbor at dawn"}, {"index": 1, "prompt": "gulls over the pier"}]}
EOF
ARGS="--start a.png --end b.png --flow f.flo --flow-back g.flo"

expect_exit "--help" 0 $SG --help
expect_exit "translation pair, 5 frames" 0 $SG $ARGS --frames 5 --fps 12 --scenes scenes.json --index 1 -o seg
check "five frames and segment.json" test -f seg/frame_00004.png -a ! -e seg/frame_00005.png -a -f seg/segment.json
check "nothing but the segment beside it" test "$(ls -A . | grep -c '^\.seg')" -eq 0

# pixel bytes of the first and last frame are the keyframes'; the middle one is the half shift
$PY - <<'EOF' >score.txt
import numpy as np, cv2
rd = lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED)
a, b, m = rd('a.png'), rd('b.png'), rd('mid.png')
f0, f2, f4 = rd('seg/frame_00000.png'), rd('seg/frame_00002.png'), rd('seg/frame_00004.png')
print('first_exact', int(f0.shape == a.shape and (f0 == a).all()))
print('last_exact', int(f4.shape == b.shape and (f4 == b).all()))
def psnr(x, y):
    return 10 * np.log10(255.0**2 / np.mean((x.astype(float) - y.astype(float))**2))
print('psnr_mid %.2f' % psnr(f2, m))
print('psnr_blend %.2f' % psnr((a.astype(float) + b) / 2, m))
EOF
sed 's/^/# /' score.txt
check "frame_00000 is A byte for byte" grep -q '^first_exact 1$' score.txt
check "frame_00004 is B byte for byte" grep -q '^last_exact 1$' score.txt
# 40 dB: bilinear resampling of 8-bit frames costs ~52 dB here, the crossfade scores ~31 dB
check "middle frame within 40 dB PSNR of the true half shift" \
    awk '/^psnr_mid/ { exit !($2 >= 40) }' score.txt

$PY - <<'EOF' >json.txt
import json
j = json.load(open('seg/segment.json'))
m = j.get('memory', {})
labels = [c.get('label') for c in m.get('checkpoints', [])]
checks = {
    'tool': j.get('tool') == 'segment-gen',
    'model': j.get('model', {}).get('name') == 'morph',
    'keyframes': j.get('keyframes') == {'start': '../a.png', 'end': '../b.png'},
    'flows': j.get('flows') == {'forward': '../f.flo', 'backward': '../g.flo'},
    'frames': j.get('frames') == 5 and len(j.get('files', [])) == 5,
    'fps': j.get('fps') == 12,
    'prompt': j.get('prompt') == 'gulls over the pier',
    'scenes': j.get('scenes', {}).get('file') == '../scenes.json',
    'memory': m.get('mode') == 'cpu' and m.get('peak_rss', 0) > 0 and 'plan' in m,
    'checkpoints': labels[:4] == ['start', 'before load', 'after load', 'before cleanup'],
    'timing': isinstance(j.get('timing', {}).get('generate_s'), float),
    'task_id': bool(j.get('task_id')),
}
for k, v in checks.items():
    if not v: print('# segment.json: bad', k, json.dumps(j.get(k))[:300])
ok = all(checks.values())
print('json_ok', int(ok))
EOF
sed -n 's/^# /# /p' json.txt
check "segment.json: model, relative keyframes and flows, frames, fps, prompt, memory, timing" grep -q '^json_ok 1$' json.txt

expect_exit "gray keyframes" 0 $SG --start gray_a.png --end gray_b.png --flow f.flo --flow-back g.flo --frames 3 -o gseg
check "gray keyframes kept byte for byte" $PY -c '
import cv2, sys
r = lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED)
sys.exit(not ((r("gseg/frame_00000.png") == r("gray_a.png")).all() and (r("gseg/frame_00002.png") == r("gray_b.png")).all()))'

expect_exit "--plan prints the plan and writes nothing" 0 $SG $ARGS --plan -o planned
check "--plan output is JSON with a cpu mode" $PY -c '
import json, sys; j = json.load(open(sys.argv[1])); sys.exit(not j["modes"]["cpu"]["possible"])' "$T/.out"
check "--plan wrote no directory" test ! -e planned

# bad input: the exit code, one error line naming the problem, and no output left behind
bad() { # description, code, pattern, args... (with -q stderr holds errors only: exactly one line)
    d=$1; code=$2; pat=$3; shift 3
    expect_exit "$d" "$code" $SG -q "$@" -o badout
    n=$(wc -l <"$T/.err")
    if [ "$n" -eq 1 ] && stderr_has "segment-gen: .*$pat"; then ok "$d: one error line"
    else fail "$d: $n lines on stderr, want 1 with '$pat'"; sed 's/^/    stderr: /' "$T/.err"; fi
    if [ -e badout ] || ls -A . | grep -q '^\.badout'; then fail "$d: output left behind"; else ok "$d: no output"; fi
}
bad "keyframes of different sizes" 65 "differ in size" --start a.png --end small.png --flow f.flo --flow-back g.flo
bad "forward flow of another size" 65 "f_small.flo' is 80x60" --start a.png --end b.png --flow f_small.flo --flow-back g.flo
bad "backward flow of another size" 65 "f_small.flo' is 80x60" --start a.png --end b.png --flow f.flo --flow-back f_small.flo
bad "N = 1" 65 "at least 2 frames" $ARGS --frames 1
bad "N = -3" 65 "at least 2 frames" $ARGS --frames -3
bad "index not in scenes.json" 65 "no segment with index 7" $ARGS --scenes scenes.json --index 7
echo '{"segments": [{"index": 0}]}' >noprompt.json
echo '{"segments": [' >broken.json
bad "a segment without a prompt" 65 "segment 0 has no \"prompt\"" $ARGS --scenes noprompt.json --index 0
bad "scenes.json that is not JSON" 65 "cannot parse 'broken.json'" $ARGS --scenes broken.json --index 0
bad "--scenes without --index" 64 "go together" $ARGS --scenes scenes.json
bad "missing scenes.json" 66 "nope.json" $ARGS --scenes nope.json --index 0
# a file that does not exist is "input missing" (docs/DESIGN.md exit 66), not bad data
bad "missing flow file" 66 "cannot read 'nope.flo'" --start a.png --end b.png --flow nope.flo --flow-back g.flo
bad "missing keyframe" 66 "cannot read 'nope.png'" --start a.png --end nope.png --flow f.flo --flow-back g.flo
bad "unknown model names the known ones" 69 "known models: morph" -m wan $ARGS
bad "morph without flows" 64 "needs --flow" --start a.png --end b.png
bad "a GPU mode the morph does not have (never: 69)" 69 "cannot run in beefy mode" $ARGS --memory-mode beefy

expect_exit "-o with a trailing slash" 0 $SG -q $ARGS --frames 3 -o slash/
check "-o DIR/ writes DIR" test -f slash/frame_00002.png -a -f slash/segment.json

# a failed run leaves an existing segment untouched; a good one replaces it whole
expect_exit "failed run over an existing segment" 65 $SG $ARGS --frames 1 -o seg
check "the old segment is untouched" test -f seg/frame_00004.png
expect_exit "re-run with 3 frames" 0 $SG $ARGS --frames 3 -o seg
check "the new segment replaced the old one" test -f seg/frame_00002.png -a ! -e seg/frame_00003.png

# an interrupt: exit 130 and nothing left behind (the signal is sent once the temporary directory exists)
$SG -q $ARGS --frames 5000 -o intr 2>intr.err &
pid=$!
i=0
while [ $i -lt 200 ] && ! ls -A . | grep -q '^\.intr'; do sleep 0.05; i=$((i + 1)); done
kill -INT $pid
wait $pid; rc=$?
check "SIGINT exits 130" test "$rc" -eq 130
check "SIGINT leaves no output" test ! -e intr -a "$(ls -A . | grep -c '^\.intr')" -eq 0
check "SIGINT says interrupted" grep -q 'segment-gen: interrupted' intr.err
test_done
