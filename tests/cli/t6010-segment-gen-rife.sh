#!/bin/sh
# segment-gen -m rife: frames against PyTorch running the same checkpoint with
# the wheel's own IFNet (tests/fixtures/rife/, made by tests/ref/rife_ref.py:
# real footage and synthetic, t = 1/4, 1/2, 3/4, sizes that need padding,
# --scale 0.5, 1 and 2), the directory contract, and bad input (exit code, one
# error line, nothing written). The frames need the RIFE checkpoint
# (`make models`: models/rife.pkl); without it those checks say skipped.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
SG=$BIN/segment-gen
FX=$ROOT/tests/fixtures/rife

PY=
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import numpy, cv2' 2>/dev/null; then PY=$p; break; fi
done

bad() { # description, code, pattern, args... (with -q stderr holds errors only: exactly one line)
    d=$1; code=$2; pat=$3; shift 3
    expect_exit "$d" "$code" $SG -q "$@" -o badout
    n=$(wc -l <"$T/.err")
    if [ "$n" -eq 1 ] && stderr_has "segment-gen: .*$pat"; then ok "$d: one error line"
    else fail "$d: $n lines on stderr, want 1 with '$pat'"; sed 's/^/    stderr: /' "$T/.err"; fi
    if [ -e badout ] || ls -A . | grep -q '^\.badout'; then fail "$d: output left behind"; else ok "$d: no output"; fi
}
A=$FX/synth_a.png B=$FX/synth_b.png

# ---- without the checkpoint: 69 naming every path tried. A copy of the binary
# outside the checkout, so that no lookup directory (common/model.h) has one.
mkdir -p empty lone/bin
cp "$SG" lone/bin/segment-gen
SG_REAL=$SG SG=$T/lone/bin/segment-gen
ISOPIPE_MODELS=$T/empty XDG_DATA_HOME=$T/xdg bad "no RIFE checkpoint anywhere" 69 \
    "model 'rife' not found (tried .*empty/rife.pkl.*lone/bin/../models/rife.pkl" -m rife --start "$A" --end "$B" --frames 3
SG=$SG_REAL
bad "unknown model names the known ones" 69 "(known models: morph, rife" \
    -m rifle --start "$A" --end "$B" --frames 3
bad "--scale means nothing to the morph" 64 "--scale means nothing to model 'morph'" \
    --start "$A" --end "$B" --flow x.flo --flow-back y.flo --scale 0.5
bad "flows given to rife" 64 "estimates its own motion" -m rife --start "$A" --end "$B" --flow x.flo --flow-back y.flo
expect_exit "--scale outside the list" 64 $SG -q -m rife --start "$A" --end "$B" --scale 0.3 -o badout
check "--scale outside the list: says which values" stderr_has "segment-gen: --scale: 0.3 is not one of 0.25, 0.5, 1, 2, 4"
check "--scale outside the list: no output" test ! -e badout

# ---- checkpoints that are wrong: 65 naming the tensor
mkdir -p m_shape m_blocks
cp "$FX/bad_shape.pkl" m_shape/rife.pkl
cp "$FX/no_blocks.pkl" m_blocks/rife.pkl
ISOPIPE_MODELS=$T/m_shape bad "a tensor of the wrong shape" 65 "encode.cnn0.weight" \
    -m rife --start "$A" --end "$B" --frames 3
ISOPIPE_MODELS=$T/m_blocks bad "a checkpoint without the IFBlocks" 65 "block0.conv0.1.0.weight" \
    -m rife --start "$A" --end "$B" --frames 3

MODEL=
for d in ${ISOPIPE_MODELS:-} "$ROOT/models"; do
    [ -f "$d/rife.pkl" ] && { MODEL=$d/rife.pkl; break; }
done
if [ -z "$MODEL" ]; then
    skip "RIFE frames against PyTorch (no models/rife.pkl: make models)"
    test_done; exit
fi
mkdir -p m_trunc
head -c 12000000 "$MODEL" >m_trunc/rife.pkl
ISOPIPE_MODELS=$T/m_trunc bad "a truncated checkpoint" 65 "rife.pkl" -m rife --start "$A" --end "$B" --frames 3
bad "keyframes of different sizes" 65 "differ in size" -m rife --start "$A" --end "$FX/vtest520_a.png" --frames 3

# ---- memory modes on a pretend device (ISOPIPE_FAKE_GPU): beefy and
# lightweight run the forward on the CPU through nn_wres's RESIDENT path (the
# GPU modes' weight handling); their frames must equal cpu mode's byte for
# byte. --plan: both GPU modes possible, gpu_auto false (the CUDA path is not
# yet verified on a card), so auto picks cpu.
for args in "synth_a.png synth_b.png 1 4" "vtest200_a.png vtest200_b.png 0.5 3" "vtest520_a.png vtest520_b.png 2 3"; do
    set -- $args
    for m in cpu beefy lightweight; do
        ISOPIPE_FAKE_GPU=8192:8192 expect_exit "rife $1 --scale $3 --memory-mode $m on a pretend device" 0 \
            $SG -q -m rife --threads 2 --memory-mode $m --start "$FX/$1" --end "$FX/$2" --frames "$4" --scale "$3" -o "mode_$m"
    done
    same=1
    for f in mode_cpu/frame_*.png; do
        b=$(basename "$f")
        cmp -s "$f" "mode_beefy/$b" && cmp -s "$f" "mode_lightweight/$b" || same=0
    done
    check "rife $1 --scale $3: beefy and lightweight frames byte for byte cpu's" test "$same" -eq 1
    check "rife $1: segment.json says the mode and where the weights lived" sh -c '
        grep -q "\"mode\": \"cpu\"" mode_cpu/segment.json && grep -q "\"weights\": \"mapped\"" mode_cpu/segment.json &&
        grep -q "\"mode\": \"beefy\"" mode_beefy/segment.json && grep -q "\"weights\": \"resident\"" mode_beefy/segment.json &&
        grep -q "\"mode\": \"lightweight\"" mode_lightweight/segment.json &&
        grep -q "\"weights\": \"resident\"" mode_lightweight/segment.json'
    check "rife $1 --scale $3: the activation reservation held both GPU modes (the CPU's shadow of the device)" \
        act_fits mode_beefy/segment.json mode_lightweight/segment.json
    rm -rf mode_cpu mode_beefy mode_lightweight
done
ISOPIPE_FAKE_GPU=8192:8192 expect_exit "rife --plan on a pretend device" 0 $SG -m rife --plan --start "$A" --end "$B" --frames 3
cp "$T/.out" plan.json
check "--plan: beefy and lightweight possible" sh -c '
    tr -d " \n" <plan.json | grep -q "\"beefy\":{[^}]*\"possible\":true" &&
    tr -d " \n" <plan.json | grep -q "\"lightweight\":{[^}]*\"possible\":true"'
check "--plan: gpu_auto false, auto picks cpu" sh -c '
    grep -q "\"gpu_auto\": false" plan.json && grep -q "\"auto_pick\": \"cpu\"" plan.json'
check "--plan: the GPU modes count the device activations (more than cpu mode's, CUDA scratch included)" sh -c '
    tr -d " \n" <plan.json | sed "s/.*\"beefy\":{\"activations\":\([0-9]*\).*\"cpu\":{\"activations\":\([0-9]*\).*/\1 \2/" |
    awk "{ exit !(\$1 > \$2 + 100000000) }"'
ISOPIPE_FAKE_GPU=8192:8192 expect_exit "rife, auto on a pretend device" 0 \
    $SG -q -m rife --threads 2 --start "$A" --end "$B" --frames 3 -o mode_auto
check "auto on a pretend device ran in cpu mode" grep -q '"mode": "cpu"' mode_auto/segment.json

if [ -z "$PY" ]; then
    skip "RIFE frames against PyTorch (python3 with numpy and cv2 not found)"
    test_done; exit
fi

# ---- frames against PyTorch: one run per case of cases.json
$PY - "$FX/cases.json" >cases.txt <<'EOF'
import json, sys
for c in json.load(open(sys.argv[1]))["cases"]:
    print(c["name"], c["start"], c["end"], c["frames"], c["scale"])
EOF
check "cases.json lists real footage and synthetic cases" grep -q '^vtest' cases.txt
while read -r name a b n scale; do
    expect_exit "rife $name: $n frames, --scale $scale" 0 $SG -q -m rife --threads 2 --start "$FX/$a" --end "$FX/$b" \
        --frames "$n" --scale "$scale" -o "out_$name"
done <cases.txt
$PY - "$FX" >score.txt <<'EOF'
import json, os, sys
import numpy as np, cv2
fx = sys.argv[1]
rd = lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED)
for c in json.load(open(os.path.join(fx, "cases.json")))["cases"]:
    d = "out_" + c["name"]
    n = c["frames"]
    if not os.path.exists(os.path.join(d, "segment.json")):
        print("missing", c["name"]); continue
    a, b = rd(os.path.join(fx, c["start"])), rd(os.path.join(fx, c["end"]))
    f0, fl = rd(os.path.join(d, "frame_00000.png")), rd(os.path.join(d, "frame_%05d.png" % (n - 1)))
    print("keys", c["name"], int(f0.shape == a.shape and (f0 == a).all() and fl.shape == b.shape and (fl == b).all()))
    j = json.load(open(os.path.join(d, "segment.json")))
    print("json", c["name"], int(j["model"]["name"] == "rife" and j["frames"] == n and len(j["files"]) == n
                                 and "flows" not in j and j["memory"]["mode"] == "cpu"))
    for e in c["expected"]:
        ours = rd(os.path.join(d, "frame_%05d.png" % e["index"])).astype(np.float64)
        ref = rd(os.path.join(fx, e["file"])).astype(np.float64)
        mse = np.mean((ours - ref) ** 2) if ours.shape == ref.shape else 1e9
        psnr = 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
        print("psnr %s t=%.2f %.2f" % (c["name"], e["t"], psnr))
EOF
sed 's/^/# /' score.txt
check "every case ran" test "$(grep -c '^missing' score.txt)" -eq 0
check "frame 0 is A and the last frame B, byte for byte, in every case" \
    awk '/^keys/ { n++; if ($3 != 1) bad = 1 } END { exit bad || n < 1 }' score.txt
check "segment.json: model rife, frames, no flows, cpu mode" \
    awk '/^json/ { n++; if ($3 != 1) bad = 1 } END { exit bad || n < 1 }' score.txt
check "every in-between frame within 45 dB PSNR of PyTorch's" \
    awk '/^psnr/ { n++; if ($4 < 45) bad = 1 } END { exit bad || n < 6 }' score.txt

# ---- gray and RGBA keyframes: the layout is kept; an opaque alpha stays opaque
$PY - "$FX" <<'EOF'
import sys, cv2, numpy as np
a, b = cv2.imread(sys.argv[1] + "/synth_a.png"), cv2.imread(sys.argv[1] + "/synth_b.png")
for n, x in (("a", a), ("b", b)):
    cv2.imwrite("rgba_%s.png" % n, np.dstack([x, np.full(x.shape[:2], 255, np.uint8)]))
    cv2.imwrite("gray_%s.png" % n, cv2.cvtColor(x, cv2.COLOR_BGR2GRAY))
EOF
expect_exit "RGBA keyframes" 0 $SG -q -m rife --start rgba_a.png --end rgba_b.png --frames 3 -o rgba
expect_exit "RGB keyframes" 0 $SG -q -m rife --start "$A" --end "$B" --frames 3 -o rgb
expect_exit "gray keyframes" 0 $SG -q -m rife --start gray_a.png --end gray_b.png --frames 3 -o gray
check "RGBA: the colour of the RGB run, alpha 255; gray stays gray" $PY -c '
import cv2, sys
r = lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED)
x, y, g = r("rgba/frame_00001.png"), r("rgb/frame_00001.png"), r("gray/frame_00001.png")
sys.exit(not (x.shape[2] == 4 and (x[:, :, :3] == y).all() and (x[:, :, 3] == 255).all() and g.ndim == 2))'
test_done
