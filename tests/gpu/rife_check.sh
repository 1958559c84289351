#!/bin/sh
# tests/gpu/rife_check.sh — RIFE's CUDA path on a real card, in one go:
#   1. nn_img_check (tests/unit/test_nn_img_cuda.c): every nn_img.h op
#      (bilinear resize, border-clamped warp, pixel shuffle, leaky ReLU,
#      PReLU, fill, sigmoid, scale_channels_add, lerp_plane) on NN_CUDA
#      against NN_CPU: bit-identical, the sigmoid within 1e-6 relative;
#   2. rife_check (tests/unit/test_segment_gen_rife.c): segment-gen's RIFE on
#      every case of tests/fixtures/rife/ in beefy mode (NN_CUDA, weights
#      resident) against PyTorch's frames (>= 45 dB) and the CPU's (>= 60 dB,
#      at most 2 levels apart). Needs the checkpoint: models/rife.pkl, or
#      ISOPIPE_MODELS=DIR holding rife.pkl (24.6 MB; carry it to the card).
# Seconds on an H100-class card (small frames); bounded by `timeout 100` and
# `timeout 200`.
#
#   sh tests/gpu/rife_check.sh --build   on the build machine (no GPU needed):
#       writes build/gpu/nn_img_check and build/gpu/rife_check, which need
#       only libc, libm, libstdc++ and libgcc at run time (CUDA runtime,
#       OpenBLAS, jansson, libpng and zlib linked statically; cuBLAS is loaded
#       with dlopen at run time, never linked)
#   sh tests/gpu/rife_check.sh           on the GPU machine: runs them (builds
#       them first when absent and nvcc is there)
#
# cuBLAS is searched for as tests/gpu/nn_check.sh does (PyTorch's copy in
# python3's site-packages). Prints ok/FAIL/skip lines and
# "N passed, N failed, N skipped".
cd "$(dirname "$0")/../.." || exit 1
unset ISOPIPE_FAKE_GPU
IMG=build/gpu/nn_img_check
RIFE=build/gpu/rife_check
build() {
    J=${JOBS:-$(nproc)}
    make -j"$J" CUDA=1 build/libisopipe.a build/tools/segment-gen/rife.o >build/gpu-rife.log 2>&1 ||
        { echo "FAIL - CUDA build of libisopipe.a and rife.o (see build/gpu-rife.log)"; return 1; }
    mkdir -p build/gpu
    . tests/gpu/static.sh
    # shellcheck disable=SC2086
    ${CC:-cc} $GPU_CFLAGS -Itools/segment-gen -o "$IMG" tests/unit/test_nn_img_cuda.c $GPU_LIBS >>build/gpu-rife.log 2>&1 ||
        { echo "FAIL - linking $IMG (see build/gpu-rife.log)"; return 1; }
    # shellcheck disable=SC2086
    ${CC:-cc} $GPU_CFLAGS -Itools/segment-gen -o "$RIFE" tests/unit/test_segment_gen_rife.c build/tools/segment-gen/rife.o \
        $GPU_LIBS >>build/gpu-rife.log 2>&1 || { echo "FAIL - linking $RIFE (see build/gpu-rife.log)"; return 1; }
    echo "ok - built $IMG and $RIFE"
}
if [ "${1:-}" = "--build" ]; then
    build || exit 1
    exit 0
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - RIFE and the nn_img ops on CUDA against the CPU (no GPU)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
if [ ! -x "$IMG" ] || [ ! -x "$RIFE" ]; then
    if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
        echo "skip - RIFE on CUDA (no $IMG / $RIFE and no nvcc to build them: run --build elsewhere)"
        echo "0 passed, 0 failed, 1 skipped"; exit 0
    fi
    build || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
fi
. tests/gpu/cublas.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/# /'
ISOPIPE_ROOT=$(pwd); export ISOPIPE_ROOT
ISOPIPE_MODELS=${ISOPIPE_MODELS:-$ISOPIPE_ROOT/models}; export ISOPIPE_MODELS
ISOPIPE_LEDGER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-ledger-XXXXXX"); export ISOPIPE_LEDGER_DIR
P=0 F=0 S=0 RC=0
one() { # limit, binary
    out=$(timeout "$1" "$2" 2>&1); r=$?
    echo "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed'
    [ $r -eq 124 ] && { echo "FAIL - $2 ran past $1 s"; F=$((F + 1)); RC=1; return; }
    sum=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$sum" ]; then echo "FAIL - $2 exited $r without a summary"; F=$((F + 1)); RC=1; return; fi
    set -- $sum
    P=$((P + $1)); F=$((F + $3)); S=$((S + $5))
    [ $r -ne 0 ] && RC=1
}
one 100 "$IMG"
one 200 "$RIFE"
rm -rf "$ISOPIPE_LEDGER_DIR"
echo "$P passed, $F failed, $S skipped"
exit $RC
