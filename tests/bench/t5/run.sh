#!/bin/sh
# text-encode against transformers' UMT5EncoderModel on the CPU: the same
# random umT5-XXL-sized encoder (d_model 4096, 64 heads x 64, d_ff 10240,
# 256,384 embedding rows, bf16 weights built directly in bf16), the same
# ~120 token ids, the same thread count; prints a markdown table (seconds,
# tokens/s, peak RSS against the weight bytes, and the difference of the
# states: ours computes in float32 from the bf16 weights, transformers in
# bf16).
#   sh tests/bench/t5/run.sh [--layers N] [--threads N] [--keep DIR]
# --layers (default 24, the real model) lets a machine without 2 x 11.4 GB
# of RAM to spare time fewer identical layers: the cost per layer is what
# is compared. Needs /tmp/ref/bin/python (torch, transformers, safetensors)
# or $REF_PYTHON.
set -eu
cd "$(dirname "$0")/../../.."
layers=24 threads=2 keep=
while [ $# -gt 0 ]; do
    case $1 in
    --layers) layers=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "usage: $0 [--layers N] [--threads N] [--keep DIR]" >&2; exit 64 ;;
    esac
done
PY=${REF_PYTHON:-/tmp/ref/bin/python}
make -s CUDA=0 bin/text-encode >/dev/null
work=${keep:-$(mktemp -d "${TMPDIR:-/tmp}/isopipe-t5bench-XXXXXX")}
mkdir -p "$work"
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT INT TERM
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# umT5-XXL dims, $layers layers, $threads threads"
if [ -f "$work/model/model.safetensors" ] && grep -q "\"num_layers\": $layers," "$work/model/config.json"; then
    echo "# reusing $work/model"
else
    "$PY" tests/bench/t5/bench.py make "$work/model" "$layers"
fi
tok=tests/fixtures/spm/uni_nobf.tokenizer.json
# 121 tokens with this tokenizer (umT5's own would give fewer; the ids are what both sides get)
prompt="A slow dolly shot through a misty pine forest at dawn: golden light falls between the trunks, a red fox \
trots across the mossy ground and stops to look at the camera."
OPENBLAS_NUM_THREADS=$threads /usr/bin/time -f '%M' -o "$work/ours.rss" bin/text-encode -q --threads "$threads" \
    -m "$work/model" --tokenizer "$tok" -p "$prompt" --no-negative -o "$work/ours.safetensors"
"$PY" tests/bench/t5/bench.py compare "$work" "$threads"
