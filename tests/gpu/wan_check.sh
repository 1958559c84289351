#!/bin/sh
# tests/gpu/wan_check.sh — segment-gen's Wan2.1 DiT (T2V and VACE) on the nn
# core's CUDA backend against its CPU backend, on a real card: the committed
# tiny fixtures (tests/fixtures/wan, tests/fixtures/wan_vace; f32, scaled fp8,
# bf16 weights; VACE hints at layers [0, 2] and [0, 1]) run one forward and 4
# UniPC steps with CFG 5 on NN_CPU and on NN_CUDA with the weights resident
# (beefy) and streamed through common/stream (lightweight): velocity within
# 1e-4, latents within 1e-3 relative (check_cuda in
# tests/unit/test_segment_gen_wan.c, which also runs the CPU fixture tests
# against diffusers there). Seconds on any card (the models are tiny); the
# whole script is bounded by `timeout 240`.
#
#   sh tests/gpu/wan_check.sh --build   on the build machine (no GPU needed):
#       writes build/gpu/wan_check, which needs only libc, libm, libstdc++
#       and libgcc at run time (CUDA runtime, OpenBLAS and jansson linked
#       statically; cuBLAS is loaded with dlopen at run time, never linked)
#   sh tests/gpu/wan_check.sh           on the GPU machine, in the repository
#       (the fixtures are read from ./tests/fixtures): runs WAN_CHECK_BIN,
#       else build/gpu/wan_check, else builds it first (needs nvcc and the
#       -dev packages)
#
# Then, when bin/segment-gen is a CUDA build that starts there (make CUDA=1,
# or tests/gpu/bundle.sh with its libraries on LD_LIBRARY_PATH), the tool
# itself: the T2V fixture a and the VACE fixture a in --memory-mode cpu, beefy
# and lightweight, the GPU modes' latents within 1e-3 relative of cpu mode's,
# and each run's plan beside its measured peak VRAM ("# " lines: the plan
# leaves out the CUDA context, so no bound is asserted).
#
# cuBLAS: as tests/gpu/nn_check.sh (PyTorch's copy in site-packages is put on
# LD_LIBRARY_PATH). Prints ok/FAIL/skip lines and "N passed, N failed, N skipped"
# (the unit program's line, then the tool's).
cd "$(dirname "$0")/../.." || exit 1
unset ISOPIPE_FAKE_GPU
OUT=build/gpu/wan_check
build() {
    J=${JOBS:-$(nproc)}
    make -j"$J" CUDA=1 build/libisopipe.a >build/gpu-wan.log 2>&1 || { echo "FAIL - CUDA build of libisopipe.a (see build/gpu-wan.log)"; return 1; }
    mkdir -p build/gpu
    . tests/gpu/static.sh
    # shellcheck disable=SC2086
    ${CC:-cc} $GPU_CFLAGS -Itools/segment-gen -o "$OUT" tests/unit/test_segment_gen_wan.c tools/segment-gen/wan.c \
        tools/segment-gen/wan_sched.c $GPU_LIBS >>build/gpu-wan.log 2>&1 ||
        { echo "FAIL - linking $OUT (see build/gpu-wan.log)"; return 1; }
    echo "ok - built $OUT"
}
if [ "${1:-}" = "--build" ]; then
    build || exit 1
    exit 0
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - Wan DiT on the CUDA backend against the CPU backend (no GPU)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
BIN=${WAN_CHECK_BIN:-}
if [ -z "$BIN" ]; then
    if [ ! -x "$OUT" ]; then
        if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
            echo "skip - Wan DiT on CUDA (no $OUT and no nvcc to build it: run --build elsewhere)"
            echo "0 passed, 0 failed, 1 skipped"; exit 0
        fi
        build || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
    fi
    BIN=$OUT
fi
. tests/gpu/cublas.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/# /'
ISOPIPE_ROOT=$(pwd) timeout 240 "$BIN"
rc=$?
[ $rc -eq 124 ] && { echo "FAIL - wan_check ran past 240 s"; echo "0 passed, 1 failed, 0 skipped"; }

# ---- the tool on the card
p=0 f=0 s=0
SG=bin/segment-gen
if [ ! -x "$SG" ] || ! nm "$SG" 2>/dev/null | grep -q ' cudaSetDevice'; then
    echo "skip - segment-gen on the card ($SG is missing or not a CUDA build)"; s=1
elif ! "$SG" --version >/dev/null 2>&1; then
    echo "skip - segment-gen on the card ($SG does not start here: its libraries? see tests/gpu/bundle.sh)"; s=1
else
    T=$(mktemp -d /tmp/isopipe-wan-gpu-XXXXXX)
    export ISOPIPE_LEDGER_DIR="$T/ledger"
    mkdir -p "$ISOPIPE_LEDGER_DIR"
    A=tests/fixtures/wan/a V=tests/fixtures/wan_vace/a
    for m in cpu beefy lightweight; do
        timeout 120 "$SG" -q -m "$A/diffusers" --text "$A/text.safetensors" --noise "$A/noise.safetensors" --frames 5 \
            --width 80 --height 48 --guidance 5 --shift 3 --steps 4 --memory-mode $m -o "$T/t2v_$m" 2>"$T/t2v_$m.err"
        timeout 120 "$SG" -q -m "$V/diffusers" --vace-context "$V/vace_context.safetensors" --text "$V/text.safetensors" \
            --noise "$V/noise.safetensors" --guidance 5 --shift 3 --steps 4 --memory-mode $m -o "$T/vace_$m" 2>"$T/vace_$m.err"
    done
    out=$(python3 - "$T" <<'PY'
import array, json, struct, sys
T = sys.argv[1]
def latents(d):
    with open(f"{T}/{d}/latents.safetensors", "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        h = json.loads(fh.read(n))
        a, b = h["latents"]["data_offsets"]
        fh.seek(8 + n + a)
        x = array.array("f")
        x.frombytes(fh.read(b - a))
        return x
for kind in ("t2v", "vace"):
    try:
        ref = latents(f"{kind}_cpu")
    except Exception as e:
        print(f"FAIL - {kind}: cpu mode gave no latents ({e})")
        continue
    mref = max(abs(v) for v in ref)
    for m in ("beefy", "lightweight"):
        try:
            x = latents(f"{kind}_{m}")
            mem = json.load(open(f"{T}/{kind}_{m}/segment.json"))["memory"]
            nn = mem.get("nn", {})
        except Exception as e:
            print(f"FAIL - {kind} {m}: no output ({e})")
            continue
        err = max(abs(a - b) for a, b in zip(x, ref)) / mref
        on = nn.get("backend", "?")
        ok = err <= 1e-3 and on.startswith("cuda") and "fallback" not in nn
        print(f"{'ok' if ok else 'FAIL'} - segment-gen {kind} --memory-mode {m} on {on}: latents rel err {err:.3g} "
              f"of cpu mode's (tol 1e-3){'; fell back: ' + nn['fallback'] if 'fallback' in nn else ''}")
        pm = mem["plan"]["modes"][m]
        print(f"# {kind} {m}: weights {nn.get('weights')}, plan vram_peak {pm['vram_peak'] / 2**20:.1f} MiB "
              f"(weights {pm['weights'] / 2**20:.2f}, activations {pm['activations'] / 2**20:.1f}), measured peak_vram "
              f"{mem.get('peak_vram', 0) / 2**20:.1f} MiB ({mem.get('vram_source')}), streamed {nn.get('streamed')}")
PY
)
    echo "$out"
    p=$(echo "$out" | grep -c '^ok ') f=$(echo "$out" | grep -c '^FAIL ')
    [ "$f" -eq 0 ] || for e in "$T"/*.err; do [ -s "$e" ] && sed "s|^|# $(basename "$e" .err): |" "$e" | tail -n 3; done
    rm -rf "$T"
fi
echo "$p passed, $f failed, $s skipped"
[ $rc -eq 0 ] && [ "$f" -eq 0 ]
