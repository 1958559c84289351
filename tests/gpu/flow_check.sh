#!/bin/sh
# tests/gpu/flow_check.sh — flow-extract's CUDA DIS against its CPU path on a
# real card (tests/gpu/flow_check.c): mean EPE between the two <= 0.05 px on
# synthetic pairs (translation, rotation, zoom; 320x240 to 1280x720), each
# path's EPE against the ground truth, and ms per pair on both.
# FLOW_CHECK_BIN=path runs a binary built elsewhere (a GPU machine without
# the -dev packages: it needs only libc, libm, libstdc++, libgcc and
# libjansson.so.4, e.g. LD_LIBRARY_PATH=.gpu/lib). Otherwise it is built here
# with nvcc and cc (NVCC_ARCH, default -arch=native). Extra arguments go to
# flow_check (--threads N, --cpu-only).
# Prints ok/FAIL/skip lines and "N passed, N failed, N skipped".
cd "$(dirname "$0")/../.." || exit 1
unset ISOPIPE_FAKE_GPU
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - CUDA DIS against the CPU path (no GPU)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
BIN=${FLOW_CHECK_BIN:-}
if [ -z "$BIN" ]; then
    if ! command -v nvcc >/dev/null 2>&1; then
        echo "skip - CUDA DIS against the CPU path (no nvcc and no FLOW_CHECK_BIN)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
    fi
    O=build/tests/gpu/flow_check-obj
    mkdir -p "$O" || exit 1
    CC=${CC:-cc}
    CF="-O2 -std=c11 -D_GNU_SOURCE -pthread -fno-strict-aliasing -DISOPIPE_CUDA=1 -Icommon -Itools/flow-extract"
    ARCH=${NVCC_ARCH:--arch=native}
    NF="-O2 -std=c++17 -Icommon -Itools/flow-extract -DISOPIPE_CUDA=1 $ARCH"
    for f in tools/flow-extract/dis.c common/pool.c common/err.c common/gpu.c common/mem.c \
             common/log.c common/ledger.c common/fs.c tests/gpu/flow_check.c; do
        $CC $CF -c "$f" -o "$O/$(basename "$f" .c).o" || { echo "FAIL - build $f"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
    done
    nvcc $NF -c common/gpu_cuda.cu -o "$O/gpu_cuda.cu.o" &&
        nvcc $NF -c tools/flow-extract/dis_cuda.cu -o "$O/dis_cuda.cu.o" &&
        nvcc $ARCH -o build/tests/gpu/flow_check "$O"/*.o -ljansson -ldl -lpthread -lm ||
        { echo "FAIL - nvcc build of flow_check"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
    BIN=build/tests/gpu/flow_check
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/# /'
exec "$BIN" "$@"
