#!/bin/sh
# llm_check.sh — on a machine with an NVIDIA GPU: build the CUDA engine and
# compare CUDA (beefy and lightweight) logits with the CPU path (relative error
# <= 1e-3) and the VRAM held with the plan. Usage (from the repository root):
#   sh tests/gpu/llm_check.sh [MODEL.gguf] [N_TOKENS]
# Builds only what the engine needs (so a GPU box without libpng/libav works);
# jansson comes from pkg-config, or from build/gpu/deps/{include,lib} when the
# machine lacks it. Without a GPU (or nvcc) it says so and skips.
set -u
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
N=${2:-100}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [ ! -x "$NVCC" ] || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - no CUDA toolkit or no GPU"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
if [ ! -f "$MODEL" ]; then echo "skip - $MODEL is absent (make models)"; echo "0 passed, 0 failed, 1 skipped"; exit 0; fi
CUDA_HOME=$(dirname "$(dirname "$NVCC")")
if pkg-config --exists jansson 2>/dev/null; then
    JI=$(pkg-config --cflags jansson); JL=$(pkg-config --libs jansson)
else
    JI=-Ibuild/gpu/deps/include; JL=build/gpu/deps/lib/libjansson.a
fi
O=build/gpu/obj
mkdir -p $O
CF="-std=c11 -D_GNU_SOURCE -O2 -g -pthread -DISOPIPE_CUDA=1 -DISOPIPE_VERSION=\"gpu-check\" -DISOPIPE_PREFIX=\"/usr/local\" -Icommon -Itools/prompt-expand $JI"
objs=""
for f in common/err.c common/gguf.c common/cli.c common/log.c common/mem.c common/gpu.c common/ledger.c common/stream.c common/fs.c \
         common/plan.c common/gguf_quant.c common/wt_dtype.c tools/prompt-expand/llm.c tools/prompt-expand/quant.c \
         tools/prompt-expand/quant_avx2.c tools/prompt-expand/quant_avx512.c tests/gpu/llm_check.c; do
    o=$O/$(basename "$f" .c).o
    cc $CF -c "$f" -o "$o" || { echo "FAIL - compiling $f"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
    objs="$objs $o"
done
for f in common/gpu_cuda.cu tools/prompt-expand/llm_cuda.cu; do
    o=$O/$(basename "$f" .cu).cu.o
    "$NVCC" -O2 -std=c++17 -Icommon -Itools/prompt-expand -DISOPIPE_CUDA=1 $JI -gencode arch=compute_80,code=sm_80 \
        -gencode arch=compute_90,code=sm_90 -c "$f" -o "$o" || { echo "FAIL - compiling $f"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
    objs="$objs $o"
done
cc -pthread -o build/gpu/llm_check $objs $JL -lm -ldl -lpthread -L"$CUDA_HOME/lib64" -L"$CUDA_HOME/targets/x86_64-linux/lib" \
   -lcudart_static -lrt -lstdc++ || { echo "FAIL - linking llm_check"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
exec build/gpu/llm_check "$MODEL" "$N"
