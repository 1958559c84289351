#!/bin/sh
# kernel_bench.sh — builds and runs kernel_bench.c (see its header).
#   sh tests/bench/llm/kernel_bench.sh [ROWS] [COLS] [REPEATS]
set -u
make -s build/libisopipe.a || exit 70
mkdir -p build/bench
cudalibs=""
nm build/libisopipe.a 2>/dev/null | grep -q ' U cudaSetDevice' && cudalibs="-L/usr/local/cuda/lib64 -lcudart_static -lrt -lstdc++ -ldl"
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Icommon -Itools/prompt-expand -o build/bench/kernel_bench tests/bench/llm/kernel_bench.c \
   tools/prompt-expand/quant.c tools/prompt-expand/quant_avx2.c tools/prompt-expand/quant_avx512.c build/libisopipe.a \
   $(pkg-config --libs jansson) -lm -lpthread $cudalibs || exit 70
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
build/bench/kernel_bench "$@"
