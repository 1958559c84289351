#!/bin/sh
# tests/gpu/nn_check.sh — the nn core's CUDA backend against its CPU backend
# on a real card: every op of tests/unit/test_nn_cuda.c (GEMM, linear with
# f32/f16/bf16/fp8 weights in each precision mode, norms, element-wise ops,
# RoPE, fused attention with bias and k_valid, convolutions), each within
# the tolerance the test states. Well under a minute on an H100-class card
# (the inputs are small); the whole script is bounded by `timeout 240`.
#
#   sh tests/gpu/nn_check.sh --build   on the build machine (no GPU needed):
#       writes build/gpu/nn_check, which needs only libc, libm, libstdc++ and
#       libgcc at run time (CUDA runtime and OpenBLAS linked statically;
#       cuBLAS is loaded with dlopen at run time, never linked)
#   sh tests/gpu/nn_check.sh           on the GPU machine: runs NN_CHECK_BIN,
#       else build/gpu/nn_check, else builds it first (needs nvcc and the
#       -dev packages)
#
# cuBLAS: every site-packages folder of python3 is searched for PyTorch's
# copy (nvidia/cublas/lib for CUDA 12 wheels, nvidia/cu13/lib for CUDA 13
# wheels) and each folder holding libcublas.so.* is put in front of
# LD_LIBRARY_PATH. Prints ok/FAIL/skip lines and "N passed, N failed, N skipped".
cd "$(dirname "$0")/../.." || exit 1
unset ISOPIPE_FAKE_GPU
OUT=build/gpu/nn_check
build() {
    J=${JOBS:-$(nproc)}
    make -j"$J" CUDA=1 build/libisopipe.a >build/gpu-nn.log 2>&1 || { echo "FAIL - CUDA build of libisopipe.a (see build/gpu-nn.log)"; return 1; }
    mkdir -p build/gpu
    . tests/gpu/static.sh
    # shellcheck disable=SC2086
    ${CC:-cc} $GPU_CFLAGS -o "$OUT" tests/unit/test_nn_cuda.c $GPU_LIBS \
        >>build/gpu-nn.log 2>&1 || { echo "FAIL - linking $OUT (see build/gpu-nn.log)"; return 1; }
    echo "ok - built $OUT"
}
if [ "${1:-}" = "--build" ]; then
    build || exit 1
    exit 0
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - nn CUDA backend against the CPU backend (no GPU)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
BIN=${NN_CHECK_BIN:-}
if [ -z "$BIN" ]; then
    if [ ! -x "$OUT" ]; then
        if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
            echo "skip - nn CUDA backend (no $OUT and no nvcc to build it: run --build elsewhere)"
            echo "0 passed, 0 failed, 1 skipped"; exit 0
        fi
        build || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
    fi
    BIN=$OUT
fi
. tests/gpu/cublas.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/# /'
timeout 240 "$BIN"
rc=$?
[ $rc -eq 124 ] && { echo "FAIL - nn_check ran past 240 s"; echo "0 passed, 1 failed, 0 skipped"; }
exit $rc
