#!/bin/sh
# tests/gpu/run.sh — the memory runtime on a real card. Builds with CUDA,
# then: arenas, streaming a 4.5 GiB synthetic weight set through the 2-block
# window with a checksum kernel (every byte, in order), streaming throughput
# vs the card's pinned H2D bandwidth (>= 80%) and copy/compute overlap
# (gpu_check.cu); rt_load in beefy and lightweight mode on the card; and free
# VRAM back at the baseline (within 64 MiB) after each process exits
# (vram-probe --wait-baseline). Prints ok/FAIL/skip lines and a summary.
# Usage: sh tests/gpu/run.sh [N_BLOCKS [BLOCK_MiB]]   (default 48 x 96 MiB)
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
p=0 f=0 s=0
ok() { p=$((p + 1)); echo "ok - $*"; }
fail() { f=$((f + 1)); echo "FAIL - $*"; }
done_() { echo "$p passed, $f failed, $s skipped"; [ "$f" -eq 0 ]; exit $?; }
unset ISOPIPE_FAKE_GPU
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - GPU checks (no GPU)"; s=1; done_
fi
if ! command -v nvcc >/dev/null 2>&1; then
    echo "skip - GPU checks (no nvcc)"; s=1; done_
fi
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader | sed 's/^/# /'
B=build/tests/gpu
PROBE=bin/vram-probe
RTL=build/tests/helpers/rt_load
if [ -n "${ISOPIPE_GPU_PREBUILT:-}" ]; then
    # binaries built elsewhere with CUDA (a GPU machine without the -dev packages)
    PROBE=$ISOPIPE_GPU_PREBUILT/vram-probe RTL=$ISOPIPE_GPU_PREBUILT/rt_load GPU_CHECK=$ISOPIPE_GPU_PREBUILT/gpu_check
    ok "prebuilt CUDA binaries from $ISOPIPE_GPU_PREBUILT"
else
    J=${JOBS:-$(nproc)}
    make -j"$J" CUDA=1 bin/vram-probe build/tests/helpers/rt_load >build-gpu.log 2>&1 || { fail "CUDA build (see build-gpu.log)"; done_; }
    ok "CUDA build"
    mkdir -p "$B"
    CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
    nvcc -O2 -std=c++17 -Icommon -DISOPIPE_CUDA=1 -arch=native -o "$B/gpu_check" tests/gpu/gpu_check.cu build/libisopipe.a \
        $(pkg-config --libs jansson libpng) -ldl -lpthread >>build-gpu.log 2>&1 || { fail "gpu_check build (see build-gpu.log)"; done_; }
    ok "gpu_check build"
    GPU_CHECK=$B/gpu_check
fi
export ISOPIPE_LEDGER_DIR=$(mktemp -d /tmp/isopipe-gpu-ledger-XXXXXX)
free_mib() { "$PROBE" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"]["free"] // 1048576)'; }

base=$(free_mib)
echo "# baseline free VRAM: $base MiB"
out=$("$GPU_CHECK" "$@" 2>&1); rc=$?
echo "$out" | grep -E '^(ok|FAIL|skip|#) '
p=$((p + $(echo "$out" | grep -c '^ok '))); f=$((f + $(echo "$out" | grep -c '^FAIL ')))
[ $rc -eq 0 ] || [ "$(echo "$out" | grep -c '^FAIL ')" -gt 0 ] || fail "gpu_check exited $rc"
if "$PROBE" --wait-baseline "$base" --tolerance 64 --timeout 10 >/dev/null 2>probe.err; then
    ok "free VRAM back at baseline after gpu_check (within 64 MiB)"
else fail "free VRAM not back after gpu_check: $(tail -n 1 probe.err)"; fi

T=$(mktemp -d /tmp/isopipe-gpu-XXXXXX)
"$RTL" --synth 32:33554432 --resident 16777216 -o "$T/m.safetensors" 2>/dev/null
for mode in beefy lightweight; do
    if "$RTL" --memory-mode $mode -o "$T/$mode.json" "$T/m.safetensors" 2>"$T/$mode.err"; then
        ok "rt_load $mode on the card"
        python3 - "$T/$mode.json" <<'PY' | sed 's/^/# /'
import json, sys
m = json.load(open(sys.argv[1]))["memory"]
print("%s: peak VRAM %.0f MiB (%s), plan %.0f MiB, peak RSS %.0f MiB, load %.2f s" % (m["mode"],
      m["peak_vram"] / 2**20, m["vram_source"], m["plan"]["modes"][m["mode"]]["vram_peak"] / 2**20,
      m["peak_rss"] / 2**20, m["load_seconds"]))
PY
    else fail "rt_load $mode: $(tail -n 1 "$T/$mode.err")"; fi
    if "$PROBE" --wait-baseline "$base" --tolerance 64 --timeout 10 >/dev/null 2>probe.err; then
        ok "free VRAM back at baseline after rt_load $mode"
    else fail "free VRAM not back after rt_load $mode: $(tail -n 1 probe.err)"; fi
done
rm -rf "$T" "$ISOPIPE_LEDGER_DIR" probe.err
done_
