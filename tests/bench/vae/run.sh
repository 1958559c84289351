#!/bin/sh
# vae against diffusers' AutoencoderKLWan (fp32, CPU, same thread count) on a
# random Wan2.1-layout VAE with base_dim 32 (issue 18's CPU benchmark):
# decode of 5 latent frames to 17 frames of 256x256, and encode of those 17
# frames. Prints a markdown table of wall time of the model call and peak RSS
# of the whole process (GNU time), and the CPU seconds (user + sys) of the
# whole process (load, model building included), which a busy machine
# distorts less than wall time. A benchmark, not a test.
#   sh tests/bench/vae/run.sh [THREADS] [BASE_DIM] [SIZE] [LATENT_FRAMES]
# Needs the reference Python (PY, default /tmp/ref/bin/python: torch + diffusers).
set -eu
cd "$(dirname "$0")/../../.."
THREADS=${1:-2}
BASE=${2:-32}
SIZE=${3:-256}
T=${4:-5}
PY=${PY:-/tmp/ref/bin/python}
make -s CUDA=0 bin/vae >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-vaebench-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
F=$((4 * (T - 1) + 1))
h=$((SIZE / 8))
H="$PY tests/bench/vae/diffusers_vae.py"
$H make "$work/model" "$BASE" 7
$H latents "$work/lat.safetensors" "$T" "$h" "$h" 8
$H frames "$work/frames" "$F" "$SIZE" "$SIZE" 9
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

rss() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }
cpu() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$1"; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# random AutoencoderKLWan base_dim $BASE, $F frames of ${SIZE}x${SIZE} ($T latent frames), $THREADS threads, fp32"
echo
echo "| step | tool | model call, wall (s) | process CPU (s) | peak RSS (MiB) |"
echo "|---|---|---:|---:|---:|"
/usr/bin/time -v $H decode "$work/model" "$work/lat.safetensors" "$THREADS" >"$work/d.out" 2>"$work/d.time"
echo "| decode | diffusers $($PY -c 'import diffusers; print(diffusers.__version__)') | $(sed -n 's/^seconds \([0-9.]*\).*/\1/p' "$work/d.out") | $(cpu "$work/d.time") | $(($(rss "$work/d.time") / 1024)) |"
/usr/bin/time -v bin/vae decode -q --threads "$THREADS" -m "$work/model" "$work/lat.safetensors" -o "$work/dec" 2>"$work/v.time"
echo "| decode | vae | $(sed -n 's/.*"decode_s": \([0-9.]*\).*/\1/p' "$work/dec/vae.json" | cut -c1-6) | $(cpu "$work/v.time") | $(($(rss "$work/v.time") / 1024)) |"
/usr/bin/time -v $H encode "$work/model" "$work/frames" "$THREADS" >"$work/e.out" 2>"$work/e.time"
echo "| encode | diffusers | $(sed -n 's/^seconds \([0-9.]*\).*/\1/p' "$work/e.out") | $(cpu "$work/e.time") | $(($(rss "$work/e.time") / 1024)) |"
/usr/bin/time -v bin/vae encode -q --threads "$THREADS" -m "$work/model" "$work/frames" -o "$work/enc.safetensors" >"$work/ve.out" 2>"$work/ve.time"
echo "| encode | vae | $(sed -n 's/.*"encode_s": \([0-9.]*\).*/\1/p' "$work/ve.out" | cut -c1-6) | $(cpu "$work/ve.time") | $(($(rss "$work/ve.time") / 1024)) |"
