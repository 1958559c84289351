#!/bin/sh
# run.sh — segment-gen's Wan DiT (cpu mode) against diffusers on the same
# threads: seconds per sampling step (UniPC, CFG: two forward passes per
# step) on a mid-size random DiT. Not a test: prints a table.
#
#   sh tests/bench/wan/run.sh [WORKDIR] [THREADS] [STEPS] [ROUNDS]
#
# Model (tests/bench/wan/bench.py make): dim 512 = 4 heads x 128, 8 blocks,
# FFN 2048, text_dim 4096, float32, every weight random; 17 frames at 448x256
# -> latents [16, 5, 32, 56] = 2240 tokens. Both sides start from the same
# noise and embeddings; the first step is excluded from the mean on both sides
# (one-time allocation). The runs alternate ROUNDS times; each side's best
# round is reported, as wall seconds per step and as the process's CPU
# seconds (user + sys, whole run including load) per step: on a shared
# machine the CPU figure is the steadier one. The final latents are compared (max |a-b| / max |b|).
# Needs /tmp/ref/bin/python (or $REF_PY) with torch + diffusers.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
W=${1:-$(mktemp -d "${TMPDIR:-/tmp}/isopipe-wanbench-XXXXXX")}
THREADS=${2:-2}
STEPS=${3:-3}
ROUNDS=${4:-2}
PY=${REF_PY:-/tmp/ref/bin/python}
"$PY" -c 'import torch, diffusers' 2>/dev/null || { echo "run.sh: $PY lacks torch/diffusers" >&2; exit 69; }
nice make -s -C "$ROOT" CUDA=0 bin/segment-gen build/tests/helpers/st_tool >/dev/null || exit 70
SG=$ROOT/bin/segment-gen
ST=$ROOT/build/tests/helpers/st_tool
mkdir -p "$W"
[ -f "$W/model/config.json" ] || "$PY" "$ROOT/tests/bench/wan/bench.py" make "$W" 512 4 8 2048 4096 17 448 256 || exit 70

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# random Wan DiT dim 512 (4x128), 8 blocks, ffn 2048, text_dim 4096, f32; 17 frames 448x256 = 2240 tokens; unipc $STEPS steps, CFG 5, threads $THREADS"
printf '%-6s %-10s %12s %14s\n' round impl "wall s/step" "CPU s/step"
best_o=999999 best_r=999999 cbest_o=999999 cbest_r=999999
TIME=/usr/bin/time
cpu() { awk '{printf "%.3f", ($1 + $2) / '"$STEPS"'}' "$1"; }
r=1
while [ "$r" -le "$ROUNDS" ]; do
    rm -rf "$W/out"
    $TIME -f '%U %S' -o "$W/cpu_o" "$SG" -q -m "$W/model" --text "$W/text.safetensors" --noise "$W/noise.safetensors" --frames 17 --width 448 \
        --height 256 --steps "$STEPS" --guidance 5 --shift 3 --threads "$THREADS" -o "$W/out" || exit 70
    o=$("$PY" -c 'import json,sys; s=json.load(open(sys.argv[1]))["timing"]["steps_s"]; s=s[1:] or s; print("%.4f" % (sum(s)/len(s)))' "$W/out/segment.json")
    co=$(cpu "$W/cpu_o")
    printf '%-6s %-10s %12s %14s\n' "$r" isopipe "$o" "$co"
    line=$($TIME -f '%U %S' -o "$W/cpu_r" "$PY" "$ROOT/tests/bench/wan/bench.py" run "$W" "$THREADS" "$STEPS" 3 5) || exit 70
    ref=$(echo "$line" | sed -n 's/.*per_step_s=\([0-9.]*\).*/\1/p')
    cr=$(cpu "$W/cpu_r")
    printf '%-6s %-10s %12s %14s\n' "$r" diffusers "$ref" "$cr"
    cbest_o=$(echo "$cbest_o $co" | awk '{print ($2<$1)?$2:$1}')
    cbest_r=$(echo "$cbest_r $cr" | awk '{print ($2<$1)?$2:$1}')
    best_o=$(echo "$best_o $o" | awk '{print ($2<$1)?$2:$1}')
    best_r=$(echo "$best_r $ref" | awk '{print ($2<$1)?$2:$1}')
    r=$((r + 1))
done
echo "# reference: $line"
echo "# latents ours vs diffusers: $("$ST" diff "$W/out/latents.safetensors" latents "$W/ref_latents.safetensors" latents 1)"
echo "# best wall: isopipe $best_o s/step, diffusers $best_r s/step, speed ratio (diffusers/isopipe) $(echo "$best_o $best_r" | awk '{printf "%.2f", $2/$1}')x"
echo "# best CPU (whole process incl. load, / steps): isopipe $cbest_o, diffusers $cbest_r, ratio $(echo "$cbest_o $cbest_r" | awk '{printf "%.2f", $2/$1}')x"
