#!/bin/sh
# tests/gpu/travel_check.sh — the travel pipeline on a real card. Builds the
# tools with CUDA, runs the harbor sample with TRAVEL_MODE=auto and again with
# TRAVEL_MODE=lightweight, then checks each report.json: every stage that ran
# on the GPU has its free VRAM back at the pre-stage baseline
# (reclaimed_vram.returned, after_free within 64 MiB of baseline_free), a
# non-zero peak VRAM no larger than its plan's vram_peak (+10%), and the two
# modes give the same number of frames. Then `make -j 4` over two topics at
# once on the one card: both finish (admission queues instead of OOM).
# Prints ok/FAIL/skip lines, "# " figures, and the summary line.
# Usage: sh tests/gpu/travel_check.sh [OUTDIR]   (default /tmp/isopipe-travel-gpu)
cd "$(dirname "$0")/../.." || exit 1
p=0 f=0 s=0
ok() { p=$((p + 1)); echo "ok - $*"; }
fail() { f=$((f + 1)); echo "FAIL - $*"; }
done_() { echo "$p passed, $f failed, $s skipped"; [ "$f" -eq 0 ]; exit $?; }
unset ISOPIPE_FAKE_GPU MAKEFLAGS MFLAGS MAKELEVEL
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skip - travel pipeline on a GPU (no GPU)"; s=1; done_
fi
command -v nvcc >/dev/null 2>&1 || { echo "skip - travel pipeline on a GPU (no nvcc)"; s=1; done_; }
[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ] || { echo "skip - travel pipeline on a GPU (run make models)"; s=1; done_; }
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader | sed 's/^/# /'
OUTD=${1:-/tmp/isopipe-travel-gpu}
rm -rf "$OUTD"; mkdir -p "$OUTD"
make -j"$(nproc)" CUDA=1 pipeline-tools >"$OUTD/build.log" 2>&1 || { fail "CUDA build (see $OUTD/build.log)"; done_; }
ok "CUDA build of the pipeline's tools"
export ISOPIPE_LEDGER_DIR=$(mktemp -d /tmp/isopipe-gpu-ledger-XXXXXX)

check_report() { # OUT, label
    python3 - "$1/report.json" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); lab = sys.argv[2]
gpu = [s for s in r["stages"] if s["mode"] not in (None, "cpu")]
print(f"# {lab}: stages on the GPU: {[s['name'] + ':' + s['mode'] for s in gpu]}")
res = []
res.append((len(gpu) > 0, f"{lab}: at least one stage ran on the GPU"))
for s in gpu:
    rv = s["reclaimed_vram"]
    okb = isinstance(rv, dict) and rv.get("returned") and rv["after_free"] >= rv["baseline_free"] - (64 << 20)
    print(f"# {lab}: {s['name']}: peak VRAM {s['peak_vram']/2**20:.1f} MiB, plan {(s['plan']['vram'] or 0)/2**20:.1f} MiB, "
          f"baseline free {rv.get('baseline_free', 0)/2**20 if isinstance(rv, dict) else 0:.0f} MiB, after {rv.get('after_free', 0)/2**20 if isinstance(rv, dict) else 0:.0f} MiB")
    res.append((okb, f"{lab}: {s['name']}: free VRAM back at the baseline (64 MiB)"))
    res.append((s["peak_vram"] and s["peak_vram"] > 0, f"{lab}: {s['name']}: non-zero peak VRAM"))
    if s["plan"]["vram"]:
        res.append((s["peak_vram"] <= s["plan"]["vram"] * 1.1, f"{lab}: {s['name']}: peak VRAM within the plan (+10%)"))
for good, what in res:
    print(("ok - " if good else "FAIL - ") + what)
PY
}
for mode in auto lightweight; do
    t0=$(date +%s)
    if make -s pipeline CUDA=1 TOPIC=sample_inputs/harbor.topic OUT="$OUTD/$mode" TRAVEL_MODE=$mode >"$OUTD/$mode.log" 2>&1; then
        ok "harbor sample, TRAVEL_MODE=$mode ($(( $(date +%s) - t0 )) s)"
        out=$(check_report "$OUTD/$mode" "$mode")
        echo "$out" | grep -E '^(ok|FAIL|#) '
        p=$((p + $(echo "$out" | grep -c '^ok '))); f=$((f + $(echo "$out" | grep -c '^FAIL ')))
    else
        fail "harbor sample, TRAVEL_MODE=$mode (see $OUTD/$mode.log)"
    fi
done
if [ -f "$OUTD/auto/final.mp4" ] && [ -f "$OUTD/lightweight/final.mp4" ]; then
    a=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$OUTD/auto/final.mp4")
    b=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$OUTD/lightweight/final.mp4")
    if [ "$a" = "$b" ] && [ "$a" = 47 ]; then ok "both modes: 47 frames"; else fail "frames: auto $a, lightweight $b (want 47)"; fi
fi
# two topics side by side on one card
( make -s -j 4 pipeline CUDA=1 TOPIC=sample_inputs/harbor.topic OUT="$OUTD/j_harbor" >"$OUTD/j_harbor.log" 2>&1 & 
  make -s -j 4 pipeline CUDA=1 TOPIC=sample_inputs/forest.topic OUT="$OUTD/j_forest" >"$OUTD/j_forest.log" 2>&1 &
  wait )
if [ -s "$OUTD/j_harbor/final.mp4" ] && [ -s "$OUTD/j_forest/final.mp4" ]; then ok "two topics with -j 4 each on one card both finished"
else fail "two topics side by side (see $OUTD/j_*.log)"; fi
rm -rf "$ISOPIPE_LEDGER_DIR"
done_
