#!/bin/sh
# run.sh — LLM engine speed and memory vs llama.cpp (not a test: prints a table).
#   sh tests/bench/llm/run.sh [MODEL] [THREADS] [N_PROMPT] [N_GEN] [ROUNDS]
# Same GGUF, same thread count, same prompt pattern, greedy generation; the two
# engines run alternately ROUNDS times (each run keeps its best of 2) so that
# load from other programs hits both alike. llama.cpp comes from the PyPI
# package llama-cpp-python (pip install llama-cpp-python numpy; PYTHON=... picks
# the interpreter): a reference for this benchmark only, never a dependency of
# isopipe. Also printed: this machine's memory read bandwidth on THREADS
# threads (membw.c) and what each engine's generation streams (tokens/s x the
# bytes of the matrices a step reads), the ceiling generation runs against.
set -u
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${2:-2}
NP=${3:-128}
NG=${4:-64}
ROUNDS=${5:-3}
[ -f "$MODEL" ] || { echo "run.sh: '$MODEL' is missing (make models)" >&2; exit 66; }
PYTHON=${PYTHON:-python3}
make -s build/libisopipe.a || exit 70
mkdir -p build/bench
cudalibs=""   # a CUDA build's library holds the CUDA runtime's callers
nm build/libisopipe.a 2>/dev/null | grep -q ' U cudaSetDevice' && cudalibs="-L/usr/local/cuda/lib64 -lcudart_static -lrt -lstdc++ -ldl"
cc -std=c11 -D_GNU_SOURCE -O2 -pthread -Icommon -Itools/prompt-expand $(pkg-config --cflags jansson) \
   -o build/bench/llm_bench tests/bench/llm/llm_bench.c tools/prompt-expand/llm.c tools/prompt-expand/quant.c \
   tools/prompt-expand/quant_avx2.c tools/prompt-expand/quant_avx512.c build/libisopipe.a $(pkg-config --libs jansson) \
   -lm -lpthread $cudalibs || exit 70
cc -O2 -pthread -o build/bench/membw tests/bench/llm/membw.c || exit 70
have_ref=1
"$PYTHON" -c 'import llama_cpp, numpy' 2>/dev/null || { have_ref=0; echo "# llama-cpp-python not installed: our figures only"; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# model $MODEL ($(stat -c %s "$MODEL") bytes), threads $THREADS, prompt $NP tokens, generate $NG tokens"
printf '%-6s %-12s %10s %10s\n' round engine "pp tok/s" "tg tok/s"
best() { echo "$1" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p"; }
opp=0 otg=0 rpp=0 rtg=0 line=""
r=1
while [ "$r" -le "$ROUNDS" ]; do
    line=$(build/bench/llm_bench "$MODEL" "$THREADS" "$NP" "$NG" 2) || exit 70
    printf '%-6s %-12s %10s %10s\n' "$r" isopipe "$(best "$line" pp_tps)" "$(best "$line" tg_tps)"
    opp=$(echo "$opp $(best "$line" pp_tps)" | awk '{print ($2>$1)?$2:$1}')
    otg=$(echo "$otg $(best "$line" tg_tps)" | awk '{print ($2>$1)?$2:$1}')
    ours=$line
    if [ $have_ref = 1 ]; then
        ref=$("$PYTHON" tests/bench/llm/llama_cpp_bench.py "$MODEL" "$THREADS" "$NP" "$NG" 2) || exit 70
        printf '%-6s %-12s %10s %10s\n' "$r" llama.cpp "$(best "$ref" pp_tps)" "$(best "$ref" tg_tps)"
        rpp=$(echo "$rpp $(best "$ref" pp_tps)" | awk '{print ($2>$1)?$2:$1}')
        rtg=$(echo "$rtg $(best "$ref" tg_tps)" | awk '{print ($2>$1)?$2:$1}')
    fi
    r=$((r + 1))
done
printf '%-6s %-12s %10s %10s\n' best isopipe "$opp" "$otg"
if [ $have_ref = 1 ]; then
    printf '%-6s %-12s %10s %10s\n' best llama.cpp "$rpp" "$rtg"
    echo "$opp $rpp $otg $rtg" | awk '{printf "ratio  isopipe/llama.cpp  pp %.2fx  tg %.2fx (target tg >= 1.20x)\n", $1/$2, $3/$4}'
fi
bw=$(build/bench/membw "$THREADS" 512 | sed -n 's/.*membw_gbs=\([0-9.]*\).*/\1/p')
stream=$(best "$ours" stream)
echo "$bw $stream $otg $rtg" | awk '{printf "memory read bandwidth, %s threads: %.2f GB/s; a generation step streams %.1f MB: isopipe %.2f GB/s (%.0f%%)", "'"$THREADS"'", $1, $2/1e6, $2*$3/1e9, 100*$2*$3/1e9/$1; if ($4 > 0) printf ", llama.cpp %.2f GB/s (%.0f%%)", $2*$4/1e9, 100*$2*$4/1e9/$1; printf "\n"}'

hwm=$(best "$ours" hwm); kv=$(best "$ours" kv); file=$(best "$ours" file)
echo "$hwm $kv $file" | awk '{lim=$3+$2+64*1048576; printf "peak RSS (cpu mode) %.1f MiB; file + KV cache + 64 MiB = %.1f MiB: %s\n", $1/1048576, lim/1048576, ($1<=lim)?"within":"OVER"}'
