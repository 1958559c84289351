#!/bin/sh
# tests/gpu/umt5_check.sh — the umT5 encoder (text-encode) on a real card:
#  1. tests/unit/test_text_encode_cuda.c: the encoder's states on the CUDA
#     backend against the CPU backend on the committed fixtures (f32, bf16,
#     fp16 and scaled-fp8 weights, 2 and 3 layers, a 300-token sequence in
#     each batch), weights resident (beefy) and streamed (lightweight):
#     within 1e-4 relative in float32, 2e-2 with bf16 activations.
#  2. the tool end to end on tests/fixtures/umt5/tool: --memory-mode beefy and
#     lightweight against cpu (states within 1e-4 relative, needs python3 with
#     numpy), the report's mode, where the weights lived, and peak VRAM
#     against the plan (printed: the plan leaves out the CUDA context).
#  3. optional, UMT5_CHECK_BIG=LAYERS: an umT5-XXL-sized random model of that
#     many layers in each mode (tokens/s, peak VRAM vs the plan; see below).
# Seconds on an H100-class card (the models are tiny); bounded by
# `timeout 240` for the first part and 60 s per tool run (the optional
# part: 300 s to make the model, 300 s per run).
#
#   sh tests/gpu/umt5_check.sh --build   on the build machine (no GPU needed):
#       writes build/gpu/umt5_check and build/gpu/text-encode, which need only
#       libc, libm, libstdc++ and libgcc at run time (CUDA runtime, OpenBLAS
#       and jansson linked statically; cuBLAS is loaded with dlopen), and
#       both in build/gpu/umt5_check.tar.gz (carry that one: 16 MB)
#   sh tests/gpu/umt5_check.sh           on the GPU machine: runs them (from
#       UMT5_CHECK_DIR, else build/gpu; unpacked from umt5_check.tar.gz
#       there if only that came; built first if absent and nvcc is there)
# cuBLAS: found as tests/gpu/nn_check.sh finds it (PyTorch's wheels).
# Prints ok/FAIL/skip lines and "N passed, N failed, N skipped".
cd "$(dirname "$0")/../.." || exit 1
unset ISOPIPE_FAKE_GPU
OUTD=build/gpu
build() {
    J=${JOBS:-$(nproc)}
    make -j"$J" CUDA=1 build/libisopipe.a build/tools/text-encode/umt5.o build/tools/text-encode/spm.o \
        build/tools/text-encode/clean.o build/tools/text-encode/main.o >build/gpu-umt5.log 2>&1 ||
        { echo "FAIL - CUDA build (see build/gpu-umt5.log)"; return 1; }
    mkdir -p "$OUTD"
    . tests/gpu/static.sh
    # shellcheck disable=SC2086
    ${CC:-cc} $GPU_CFLAGS -Itools/text-encode -o "$OUTD/umt5_check" tests/unit/test_text_encode_cuda.c \
        build/tools/text-encode/umt5.o $GPU_LIBS >>build/gpu-umt5.log 2>&1 ||
        { echo "FAIL - linking $OUTD/umt5_check (see build/gpu-umt5.log)"; return 1; }
    # shellcheck disable=SC2086
    ${CC:-cc} -pthread -Wl,--as-needed -o "$OUTD/text-encode" build/tools/text-encode/clean.o \
        build/tools/text-encode/main.o build/tools/text-encode/spm.o build/tools/text-encode/umt5.o \
        $GPU_LIBS >>build/gpu-umt5.log 2>&1 ||
        { echo "FAIL - linking $OUTD/text-encode (see build/gpu-umt5.log)"; return 1; }
    # both in one archive (about 16 MB against 60 MB) for carrying to the GPU machine
    tar -czf "$OUTD/umt5_check.tar.gz" -C "$OUTD" umt5_check text-encode ||
        { echo "FAIL - packing $OUTD/umt5_check.tar.gz"; return 1; }
    echo "ok - built $OUTD/umt5_check and $OUTD/text-encode (both in $OUTD/umt5_check.tar.gz)"
}
if [ "${1:-}" = "--build" ]; then
    build || exit 1
    exit 0
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - umT5 CUDA backend against the CPU backend (no GPU)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
D=${UMT5_CHECK_DIR:-$OUTD}
if { [ ! -x "$D/umt5_check" ] || [ ! -x "$D/text-encode" ]; } && [ -f "$D/umt5_check.tar.gz" ]; then
    tar -xzf "$D/umt5_check.tar.gz" -C "$D" || echo "# could not unpack $D/umt5_check.tar.gz"
fi
if [ ! -x "$D/umt5_check" ] || [ ! -x "$D/text-encode" ]; then
    if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
        echo "skip - umT5 on CUDA (no $D/umt5_check and no nvcc to build it: run --build elsewhere)"
        echo "0 passed, 0 failed, 1 skipped"; exit 0
    fi
    D=$OUTD
    build || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
fi
. tests/gpu/cublas.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/# /'
ISOPIPE_ROOT=$(pwd); export ISOPIPE_ROOT
p=0 f=0 s=0
out=$(timeout 240 "$D/umt5_check" 2>&1); rc=$?
echo "$out" | grep -E '^(ok|FAIL|skip|#) '
sum=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
if [ -n "$sum" ]; then
    p=$((p + $(echo "$sum" | sed -E 's/^([0-9]+) passed.*/\1/')))
    f=$((f + $(echo "$sum" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
    s=$((s + $(echo "$sum" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')))
fi
[ $rc -eq 124 ] && { echo "FAIL - umt5_check ran past 240 s"; f=$((f + 1)); }
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ -z "$sum" ] && { echo "FAIL - umt5_check exited $rc without a summary"; f=$((f + 1)); }

# the tool end to end
T=$(mktemp -d /tmp/isopipe-umt5-XXXXXX)
export ISOPIPE_LEDGER_DIR="$T/ledger"
mkdir -p "$ISOPIPE_LEDGER_DIR"
FIX=tests/fixtures/umt5/tool/hf
TOK=tests/fixtures/spm/uni_nobf.tokenizer.json
long=$(i=0; while [ $i -lt 300 ]; do printf 'fox crow '; i=$((i + 1)); done)
for mm in cpu beefy lightweight; do
    if timeout 60 "$D/text-encode" -q -m "$FIX" --tokenizer "$TOK" -p "A red fox &amp; a crow in the snow" \
        -p "日本語のテキスト、雪の中の狐" -p "$long" --memory-mode $mm -o "$T/$mm.safetensors" 2>"$T/$mm.err"; then
        echo "ok - text-encode --memory-mode $mm"; p=$((p + 1))
    else
        echo "FAIL - text-encode --memory-mode $mm: $(tail -n 2 "$T/$mm.err" | tr '\n' ' ')"; f=$((f + 1))
    fi
done
if python3 -c 'import numpy' 2>/dev/null; then
    res=$(python3 - "$T" <<'PY'
import json, sys
import numpy as np
sys.path.insert(0, "tests/helpers")
from st_np import load
t = sys.argv[1]
try:
    cpu = load(t + "/cpu.safetensors")
except Exception as e:
    print("FAIL - reading the cpu output: %s" % e); sys.exit()
for mm in ("beefy", "lightweight"):
    try:
        got, rep = load("%s/%s.safetensors" % (t, mm)), json.load(open("%s/%s.json" % (t, mm)))
    except Exception as e:
        print("FAIL - %s output: %s" % (mm, e)); continue
    err = max(float(np.abs(got[k] - cpu[k]).max() / np.abs(cpu[k]).max()) for k in cpu)
    m = rep["memory"]
    want = {"beefy": "resident", "lightweight": "streamed"}[mm]
    ok = sorted(got) == sorted(cpu) and err <= 1e-4 and m["mode"] == mm and m.get("weights") == want \
        and rep["encode"]["backend"].startswith("cuda")
    print("%s - text-encode %s: states within %.3g of cpu mode (tol 1e-4), weights %s, backend %s" %
          ("ok" if ok else "FAIL", mm, err, m.get("weights"), rep["encode"]["backend"]))
    print("# %s: peak VRAM %.0f MiB (%s), plan %.0f MiB (CUDA context not included), peak RSS %.0f MiB, %.0f tokens/s%s" %
          (mm, m["peak_vram"] / 2**20, m.get("vram_source"), m["plan"]["modes"][mm]["vram_peak"] / 2**20,
           m["peak_rss"] / 2**20, rep["encode"]["tokens_per_second"],
           ", stream %s" % m["stream"] if "stream" in m else ""))
PY
)
    echo "$res"
    p=$((p + $(echo "$res" | grep -c '^ok '))); f=$((f + $(echo "$res" | grep -c '^FAIL ')))
else
    echo "skip - text-encode GPU modes against cpu (python3 with numpy not found)"; s=$((s + 1))
fi

# optional (UMT5_CHECK_BIG=LAYERS, e.g. 24): a random bf16 umT5-XXL-sized
# encoder of that many layers (tests/bench/t5/bench.py make: python3 with
# torch and safetensors; 0.47 GB a layer + 2 GB embedding on disk under
# $TMPDIR), one 121-token prompt in each mode: tokens/s, peak VRAM against
# the plan, states against cpu within 1e-3 relative (random weights over
# many layers; the measured value is printed)
if [ -n "${UMT5_CHECK_BIG:-}" ]; then
    if python3 -c 'import torch, safetensors' 2>/dev/null; then
        big="$T/big"
        if timeout 300 python3 tests/bench/t5/bench.py make "$big" "$UMT5_CHECK_BIG" >"$T/big.log" 2>&1; then
            prompt="A slow dolly shot through a misty pine forest at dawn: golden light falls between the trunks, a red fox \
trots across the mossy ground and stops to look at the camera."
            for mm in cpu beefy lightweight; do
                if timeout 300 "$D/text-encode" -q -m "$big" --tokenizer "$TOK" -p "$prompt" --no-negative \
                    --threads "$(nproc)" --memory-mode $mm -o "$T/big-$mm.safetensors" 2>"$T/big-$mm.err"; then
                    echo "ok - umT5-XXL-sized ($UMT5_CHECK_BIG layers) --memory-mode $mm"; p=$((p + 1))
                else
                    echo "FAIL - umT5-XXL-sized --memory-mode $mm: $(tail -n 2 "$T/big-$mm.err" | tr '\n' ' ')"; f=$((f + 1))
                fi
            done
            res=$(python3 - "$T" <<'PY'
import json, sys
import numpy as np
sys.path.insert(0, "tests/helpers")
from st_np import load
t = sys.argv[1]
try:
    cpu = load(t + "/big-cpu.safetensors")
except Exception as e:
    print("FAIL - reading the cpu output: %s" % e); sys.exit()
for mm in ("cpu", "beefy", "lightweight"):
    try:
        got, rep = load("%s/big-%s.safetensors" % (t, mm)), json.load(open("%s/big-%s.json" % (t, mm)))
    except Exception as e:
        print("FAIL - big %s output: %s" % (mm, e)); continue
    m = rep["memory"]
    print("# big %s: %.1f tokens/s (%s), peak VRAM %.0f MiB, plan %.0f MiB (CUDA context not included), peak RSS %.0f MiB" %
          (mm, rep["encode"]["tokens_per_second"], rep["encode"]["backend"], m["peak_vram"] / 2**20,
           m["plan"]["modes"][mm]["vram_peak"] / 2**20, m["peak_rss"] / 2**20))
    if mm != "cpu":
        err = max(float(np.abs(got[k] - cpu[k]).max() / np.abs(cpu[k]).max()) for k in cpu)
        print("%s - big %s: states within %.3g of cpu mode (tol 1e-3)" % ("ok" if err <= 1e-3 else "FAIL", mm, err))
PY
)
            echo "$res"
            p=$((p + $(echo "$res" | grep -c '^ok '))); f=$((f + $(echo "$res" | grep -c '^FAIL ')))
        else
            echo "FAIL - making the umT5-XXL-sized model: $(tail -n 2 "$T/big.log" | tr '\n' ' ')"; f=$((f + 1))
        fi
    else
        echo "skip - umT5-XXL-sized run (python3 with torch and safetensors not found)"; s=$((s + 1))
    fi
fi
rm -rf "$T"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
