#!/bin/sh
# tests/gpu/vae_check.sh — the Wan VAE (tools/vae) on a real card:
#  1. build/gpu/vae_check (tests/unit/test_vae_wan.c): the three tiny fixture
#     models of tests/fixtures/wan_vae (f32 diffusers, bf16 and f16 original
#     names) with every weight resident on the device, each decode (1, 3, 5,
#     9 frames) and encode (1, 5, 9 frames) against the CPU backend (max
#     |cuda - cpu| <= 1e-4 * max |cpu|) and against diffusers (the fixtures'
#     tolerances); the product attention (one 384-channel head, past the
#     fused kernel's 256) against the CPU; a full-size random Wan2.1 VAE
#     (127 M bf16 parameters written to /tmp, the real channel counts)
#     decoding and encoding 5 frames of 120x208 on CUDA against the CPU
#     (1e-3), with both times; plus the CPU checks of the same program.
#  2. when bin/vae (a CUDA build) and build/tests/helpers/vae_check run on this
#     machine: the tool itself in --memory-mode beefy and lightweight (decode,
#     encode, encode --vace) against the diffusers references (PSNR >= 40 dB on
#     every frame, latents / vace_context within 1e-3), each run's vae.json or
#     report saying its mode, memory.nn "weights": "resident" and a cuda backend. Skipped with
#     the reason when the binaries cannot start here (they link libpng, jansson
#     and FFmpeg dynamically).
# Under a minute on an H100-class card with 16 CPU cores (the CPU side of the
# full-size comparison dominates); bounded by `timeout 240` for part 1 and
# 60 s per tool run.
#
#   sh tests/gpu/vae_check.sh --build   on the build machine (no GPU needed):
#       writes build/gpu/vae_check (CUDA runtime, OpenBLAS, jansson, libpng and
#       zlib linked statically where their .a files exist; cuBLAS is loaded with
#       dlopen at run time) and, for part 2, `make CUDA=1 bin/vae
#       build/tests/helpers/vae_check`. Carry build/gpu/vae_check, bin/vae and
#       build/tests/helpers/vae_check to the GPU machine.
#   sh tests/gpu/vae_check.sh           on the GPU machine (from the repository
#       root, with tests/fixtures/wan_vae): runs them, building first when
#       build/gpu/vae_check is missing and nvcc is there.
# cuBLAS: as tests/gpu/nn_check.sh, PyTorch's copy in python3's site-packages
# is put in front of LD_LIBRARY_PATH. Prints ok/FAIL/skip lines and
# "N passed, N failed, N skipped".
cd "$(dirname "$0")/../.." || exit 1
unset ISOPIPE_FAKE_GPU
OUT=build/gpu/vae_check
build() {
    J=${JOBS:-$(nproc)}
    make -j"$J" CUDA=1 build/libisopipe.a build/tools/vae/wan_vae.o >build/gpu-vae.log 2>&1 ||
        { echo "FAIL - CUDA build of libisopipe.a (see build/gpu-vae.log)"; return 1; }
    mkdir -p build/gpu
    . tests/gpu/static.sh
    # shellcheck disable=SC2086
    ${CC:-cc} $GPU_CFLAGS -Itools/vae -o "$OUT" tests/unit/test_vae_wan.c build/tools/vae/wan_vae.o $GPU_LIBS \
        >>build/gpu-vae.log 2>&1 || { echo "FAIL - linking $OUT (see build/gpu-vae.log)"; return 1; }
    echo "ok - built $OUT"
    make -j"$J" CUDA=1 bin/vae build/tests/helpers/vae_check >>build/gpu-vae.log 2>&1 &&
        echo "ok - built bin/vae and build/tests/helpers/vae_check (CUDA)" ||
        echo "# bin/vae not built (see build/gpu-vae.log): part 2 will be skipped"
}
if [ "${1:-}" = "--build" ]; then
    build || exit 1
    exit 0
fi
p=0 f=0 s=0
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - Wan VAE on the CUDA backend (no GPU)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
if [ ! -x "$OUT" ]; then
    if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
        echo "skip - Wan VAE on the CUDA backend (no $OUT and no nvcc to build it: run --build elsewhere)"
        echo "0 passed, 0 failed, 1 skipped"; exit 0
    fi
    build || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
fi
. tests/gpu/cublas.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/# /'

# ---- 1. the model on both backends
res=$(timeout 240 "$OUT" 2>&1); rc=$?
echo "$res" | grep -E '^(ok|FAIL|skip|#|  )'
sum=$(echo "$res" | tail -n 1)
case "$sum" in
*" passed, "*" failed, "*" skipped")
    set -- $sum
    p=$((p + $1)); f=$((f + $3)); s=$((s + $5)) ;;
*) f=$((f + 1)); echo "FAIL - $OUT ended without a summary (exit $rc)" ;;
esac
[ $rc -eq 124 ] && { f=$((f + 1)); echo "FAIL - $OUT ran past 240 s"; }
echo "$res" | grep -q '^skip - Wan VAE on the CUDA backend' && { f=$((f + 1)); echo "FAIL - a GPU is here, yet the CUDA case was skipped"; }

# ---- 2. the tool in beefy and lightweight
VAE=bin/vae CHK=build/tests/helpers/vae_check FX=tests/fixtures/wan_vae
if ! "$VAE" --version 2>/dev/null | grep -q "built with CUDA" || ! [ -x "$CHK" ]; then
    s=$((s + 1)); echo "skip - vae in beefy/lightweight (bin/vae or $CHK missing, not a CUDA build, or cannot start here)"
else
    W=$(mktemp -d /tmp/isopipe-vae-gpu-XXXXXX)
    export ISOPIPE_LEDGER_DIR=$W/ledger
    t() { # description, command...: ok when it succeeds
        d=$1; shift
        if "$@" >"$W/out" 2>"$W/err"; then p=$((p + 1)); echo "ok - $d"
        else f=$((f + 1)); echo "FAIL - $d"; tail -n 3 "$W/err" | sed 's/^/#   /'; fi
    }
    B=$FX/b_original/model/wan_vae.safetensors C=$FX/c_original_f16/model/wan_vae.safetensors A=$FX/a_diffusers/model
    for m in beefy lightweight; do
        t "decode $m" timeout 60 "$VAE" decode -q --memory-mode $m -m "$B" "$FX/b_original/dec_3.safetensors" -o "$W/d_$m"
        t "decode $m: PSNR >= 40 dB against diffusers" "$CHK" frames "$W/d_$m" "$FX/b_original/dec_3.safetensors" 40
        t "decode $m: vae.json says $m, nn on cuda" sh -c "grep -q '\"mode\": \"$m\"' '$W/d_$m/vae.json' && grep -q '\"backend\": \"cuda: cuBLAS' '$W/d_$m/vae.json' && grep -q '\"weights\": \"resident\"' '$W/d_$m/vae.json'"
        t "decode --tile 4 $m: against diffusers' tiled decode" sh -c "timeout 60 '$VAE' decode -q --memory-mode $m --tile 4 --tile-overlap 1 -m '$A' '$FX/tiled.safetensors' -o '$W/t_$m' && '$CHK' frames '$W/t_$m' '$FX/tiled.safetensors' 40"
        t "encode $m" timeout 60 "$VAE" encode -q --memory-mode $m -m "$C" "$FX/c_original_f16/enc_5" -o "$W/e_$m.safetensors"
        t "encode $m: latents within 1e-3" "$CHK" latents "$W/e_$m.safetensors" "$FX/c_original_f16/enc_5.safetensors" 1e-3
        t "encode --vace $m" timeout 60 "$VAE" encode -q --vace --memory-mode $m -m "$A" --keep "$FX/vace/prev" --keep-frames 2 --end "$FX/vace/end.png" --frames 9 -o "$W/v_$m.safetensors"
        t "encode --vace $m: vace_context within 1e-3" "$CHK" tensor vace_context "$W/v_$m.safetensors" "$FX/vace/keep.safetensors" 1e-3
    done
    rm -rf "$W"
fi
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
