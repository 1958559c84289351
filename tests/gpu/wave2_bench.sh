#!/bin/sh
# tests/gpu/wave2_bench.sh — the GPU benchmarks of issues 16, 17, 18 (and the
# per-stage figures 19 needs): the models on the nn core against diffusers /
# transformers in the same device run, time and peak VRAM, the plan beside
# the measured peak. Random full-size weights made on the device:
#   wan   Wan2.1 T2V-1.3B-shaped DiT (dim 1536, 12 x 128, 30 layers, FFN 8960,
#         text_dim 4096) in bf16: diffusers' UniPC + CFG loop (bf16, SDPA) vs
#         segment-gen --memory-mode beefy and lightweight, 480x832, WAN_FRAMES
#         (33) frames, WAN_STEPS (2) steps, guidance 5; s/step, peak VRAM,
#         plan, and ours' latents against diffusers' (printed, not asserted)
#   vae   Wan2.1 VAE (base_dim 96, [1,2,4,4], 2 res blocks) in bf16: decode of
#         [16, VAE_T (9), 60, 104] by AutoencoderKLWan vs `vae decode` per mode
#   umt5  umT5-XXL-width encoder of UMT5_LAYERS (4) layers (bf16, made by
#         tests/bench/t5/bench.py make): one 120-token prompt, transformers'
#         UMT5EncoderModel vs `text-encode --precision bf16` per mode
# then one table. Ours run with ISOPIPE_NN_PREC=bf16 (WAVE2_BENCH_PREC: bf16
# activations into cuBLAS, as the references compute; f32 is the tools'
# default, 3 bf16 terms per product).
#
# Here (no GPU needed):  sh tests/gpu/bundle.sh         -> .gpu/bundle.tar.xz
#                        .whl/ holds diffusers-*.whl and importlib_metadata-*.whl
# On the card:           run(command="sh tests/gpu/wave2_bench.sh", carry=[".gpu", ".whl"], timeout_s=540)
# WAVE2_BENCH_ONLY="wan vae umt5" selects phases (default order: vae umt5 wan,
# the cheap ones first). The whole run keeps to WAVE2_BENCH_BUDGET seconds
# (480): every command is bounded by its own `timeout` and by what is left
# of the budget after the later phases' reserve; a failed or cut phase
# leaves "-" in its cells and the others go on; the exit status is 1 when
# any command failed or was cut. Results and logs are also copied to $OUT
# when the device tool gives one.
# WAN_FRAMES=81 VAE_T=21 are the issues' sizes (WAN 81 frames: ~5.4x the
# attention time of 33; see the estimate printed before the run).
# Without a card: WAVE2_BENCH_TINY=1 ISOPIPE_FAKE_GPU=8192:8192
# PYTHON=/tmp/ref/bin/python sh tests/gpu/wave2_bench.sh runs the same
# plumbing with tiny models on the CPU (the tools' pretend-device modes).
cd "$(dirname "$0")/../.." || exit 1
unset MAKEFLAGS MFLAGS MAKELEVEL
T_START=$(date +%s)
TINY=${WAVE2_BENCH_TINY:-0}
[ "$TINY" = 1 ] || unset ISOPIPE_FAKE_GPU
BUDGET=${WAVE2_BENCH_BUDGET:-480}
ONLY=${WAVE2_BENCH_ONLY:-"vae umt5 wan"}
FRAMES=${WAN_FRAMES:-33}
STEPS=${WAN_STEPS:-2}
VT=${VAE_T:-9}
LAYERS=${UMT5_LAYERS:-4}
PREC=${WAVE2_BENCH_PREC:-bf16}
export ISOPIPE_NN_PREC=$PREC
# nothing outside the device can be reached: diffusers/transformers must not try
# (here a local from_pretrained waited past its bound on the hub without this)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
if [ "$TINY" = 1 ]; then W_=48 H_=32 FRAMES=${WAN_FRAMES:-5} VT=${VAE_T:-2}; else W_=832 H_=480; fi
PY_LD=${LD_LIBRARY_PATH:-}   # the Python side keeps the machine's own libraries (not the bundle's .gpu/lib)
. tests/gpu/env.sh || echo "# FAIL - cannot unpack .gpu/bundle.tar.xz: the tools of this checkout are used"
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1 && [ -z "${PYTHON:-}" ]; then
    rm -rf /tmp/site
    if python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    else
        echo "# pip could not install .whl/*.whl: the diffusers phases will fail"
    fi
fi
LD_LIBRARY_PATH="$PY_LD" $PY -c 'import torch, diffusers, transformers; print("# torch %s (cuda %s), diffusers %s, transformers %s" % (torch.__version__, torch.version.cuda, diffusers.__version__, transformers.__version__))' 2>&1 | tail -1
for t in segment-gen vae text-encode; do
    echo "# bin/$t: $(bin/$t --version 2>&1 | head -1)"
done
W=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-bench-XXXXXX") || exit 1
R=$W/results
mkdir -p "$R"
export ISOPIPE_LEDGER_DIR=$W/ledger
mkdir -p "$ISOPIPE_LEDGER_DIR"
trap 'rm -rf "$W"' EXIT
HAVE_SMI=0
nvidia-smi -L >/dev/null 2>&1 && [ "$TINY" != 1 ] && HAVE_SMI=1

# reserve: the seconds kept for the phases after the current one
reserve() {
    n=0 after=0
    for p in $ONLY; do
        [ $after = 1 ] && case $p in vae) n=$((n + 60)) ;; umt5) n=$((n + 70)) ;; wan) n=$((n + 180)) ;; esac
        [ "$p" = "$1" ] && after=1
    done
    echo $n
}
# bound PHASE MAX: seconds a command of PHASE may take (MAX, or less when the budget is short)
bound() {
    left=$((BUDGET - ($(date +%s) - T_START) - $(reserve "$1") - 15))
    [ "$left" -gt "$2" ] && left=$2
    [ "$left" -lt 5 ] && left=5
    echo $left
}
# timed PHASE MAX NAME cmd...: runs cmd under `timeout`, its output in $R/NAME.log;
# writes $R/NAME.run {"wall", "rc", "timeout", "smi_peak" (bytes above the idle device, sampled)}
timed() {
    ph=$1 max=$2 name=$3
    shift 3
    lim=$(bound "$ph" "$max")
    base=0 spid=
    if [ $HAVE_SMI = 1 ]; then
        base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2>/dev/null | head -1)
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 200 >"$R/$name.smi" 2>/dev/null &
        spid=$!
    fi
    t0=$(date +%s.%N)
    timeout -k 10 "$lim" "$@" >"$R/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
    smi=null
    if [ -n "$spid" ] && [ -s "$R/$name.smi" ]; then
        mx=$(sort -n "$R/$name.smi" | tail -1)
        [ -n "$mx" ] && [ -n "$base" ] && smi=$(( (mx - base) * 1048576 ))
    fi
    wall=$(echo "$t1 $t0" | awk '{printf "%.3f", $1 - $2}')
    echo "{\"wall\": $wall, \"rc\": $rc, \"timeout\": $lim, \"smi_peak\": $smi}" >"$R/$name.run"
    if [ $rc -eq 0 ]; then
        msg=
        [ "$smi" != null ] && msg=", nvidia-smi peak +$((smi / 1048576)) MiB"
        echo "# $name: $wall s (bound $lim s)$msg"
    else
        case $rc in 124 | 137) why="ran past its $lim s bound" ;; *) why="exit $rc" ;; esac
        echo "# FAIL - $name: $why after $wall s; the last lines:"
        tail -n 5 "$R/$name.log" | sed 's/^/#   /'
    fi
    return $rc
}

# ---- wan: the DiT
phase_wan() {
    d=$W/wan
    mkdir -p "$d"
    L=$(( ((FRAMES - 1) / 4 + 1) * (H_ / 16) * (W_ / 16) ))
    # our attention per step: 2 forwards x 30 layers x 12 heads x L^2 x 2 x 128 FMAs; with ISOPIPE_NN_PREC=bf16
    # on tensor cores (WMMA, bf16 operands), else float32 on CUDA cores. The rates are guesses (no card has
    # run either kernel) to size the run, not figures
    echo "$L" | awk -v s="$STEPS" -v p="$PREC" '{f = 2 * 30 * 12 * $1 * $1 * 256 * 2; r = p == "bf16" ? 50e12 : 5e12; printf "# wan: %d tokens; attention %.1f TFLOP per step (CFG pair); at a guessed %.0f TFLOPS (%s) ~%.0f s/step, %d steps per mode\n", $1, f / 1e12, r / 1e12, p == "bf16" ? "bf16 tensor cores" : "fp32 CUDA cores", f / r, s}'
    timed wan 90 wan.make env LD_LIBRARY_PATH="$PY_LD" "$PY" tests/gpu/wave2_bench.py wan-make "$d" "$FRAMES" && grep '^#' "$R/wan.make.log"
    [ -f "$d/noise.safetensors" ] || { echo "# wan: no model was made: skipped"; return; }
    timed wan 120 wan.ref env LD_LIBRARY_PATH="$PY_LD" "$PY" tests/gpu/wave2_bench.py wan-ref "$d" "$STEPS" 8 5 && grep '^#' "$R/wan.ref.log"
    [ -f "$d/ref.json" ] && cp "$d/ref.json" "$R/wan.ref.json" && cp "$d/ref_latents.safetensors" "$R/wan.ref_latents.safetensors"
    for mm in beefy lightweight; do
        bin/segment-gen -m "$d/model" --text "$d/text.safetensors" --noise "$d/noise.safetensors" --frames "$FRAMES" \
            --width "$W_" --height "$H_" --steps "$STEPS" --guidance 5 --shift 8 --sampler unipc --memory-mode $mm \
            --plan >"$R/wan.$mm.plan.json" 2>"$R/wan.$mm.plan.err" || echo "# wan $mm --plan failed: $(tail -1 "$R/wan.$mm.plan.err")"
        rm -rf "$d/ours-$mm"
        timed wan 150 "wan.$mm" bin/segment-gen -m "$d/model" --text "$d/text.safetensors" --noise "$d/noise.safetensors" \
            --frames "$FRAMES" --width "$W_" --height "$H_" --steps "$STEPS" --guidance 5 --shift 8 --sampler unipc \
            --memory-mode $mm -o "$d/ours-$mm"
        [ -f "$d/ours-$mm/segment.json" ] && cp "$d/ours-$mm/segment.json" "$R/wan.$mm.json"
        [ -f "$d/ours-$mm/latents.safetensors" ] && cp "$d/ours-$mm/latents.safetensors" "$R/wan.$mm.latents.safetensors"
        rm -rf "$d/ours-$mm"
    done
    rm -rf "$d"
}

# ---- vae: decode
phase_vae() {
    d=$W/vae
    mkdir -p "$d"
    timed vae 60 vae.make env LD_LIBRARY_PATH="$PY_LD" "$PY" tests/gpu/wave2_bench.py vae-make "$d" "$VT" && grep '^#' "$R/vae.make.log"
    [ -f "$d/latents.safetensors" ] || { echo "# vae: no model was made: skipped"; return; }
    timed vae 60 vae.ref env LD_LIBRARY_PATH="$PY_LD" "$PY" tests/gpu/wave2_bench.py vae-ref "$d" && grep '^#' "$R/vae.ref.log"
    [ -f "$d/ref.json" ] && cp "$d/ref.json" "$R/vae.ref.json"
    for mm in beefy lightweight; do
        bin/vae decode -m "$d/model" "$d/latents.safetensors" --memory-mode $mm --plan -o "$d/plan-$mm" \
            >"$R/vae.$mm.plan.json" 2>"$R/vae.$mm.plan.err" || echo "# vae $mm --plan failed: $(tail -1 "$R/vae.$mm.plan.err")"
        rm -rf "$d/ours-$mm"
        timed vae 60 "vae.$mm" bin/vae decode -q -m "$d/model" "$d/latents.safetensors" --memory-mode $mm -o "$d/ours-$mm"
        [ -f "$d/ours-$mm/vae.json" ] && cp "$d/ours-$mm/vae.json" "$R/vae.$mm.json"
        rm -rf "$d/ours-$mm"
    done
    rm -rf "$d"
}

# ---- umt5: one 120-token prompt
phase_umt5() {
    d=$W/umt5
    mkdir -p "$d"
    TOK=tests/fixtures/spm/uni_nobf.tokenizer.json
    if [ "$TINY" = 1 ]; then
        cp -r tests/fixtures/umt5/tool/hf "$d/model"
    else
        timed umt5 120 umt5.make env LD_LIBRARY_PATH="$PY_LD" "$PY" tests/bench/t5/bench.py make "$d/model" "$LAYERS" ||
            { echo "# umt5: no model was made: skipped"; return; }
    fi
    # the prompt of tests/gpu/umt5_check.sh's UMT5_CHECK_BIG part (121 tokens with this tokenizer)
    prompt="A slow dolly shot through a misty pine forest at dawn: golden light falls between the trunks, a red fox \
trots across the mossy ground and stops to look at the camera."
    for mm in beefy lightweight; do
        bin/text-encode -m "$d/model" --tokenizer "$TOK" -p "$prompt" --no-negative --precision "$PREC" \
            --memory-mode $mm --plan -o "$d/plan.safetensors" >"$R/umt5.$mm.plan.json" 2>"$R/umt5.$mm.plan.err" ||
            echo "# umt5 $mm --plan failed: $(tail -1 "$R/umt5.$mm.plan.err")"
        timed umt5 60 "umt5.$mm" bin/text-encode -q -m "$d/model" --tokenizer "$TOK" -p "$prompt" --no-negative \
            --precision "$PREC" --memory-mode $mm -o "$d/ours-$mm.safetensors"
        [ -f "$d/ours-$mm.json" ] && cp "$d/ours-$mm.json" "$R/umt5.$mm.json"
    done
    rep=$R/umt5.beefy.json
    [ -f "$rep" ] || rep=$R/umt5.lightweight.json
    if [ -f "$rep" ]; then
        timed umt5 90 umt5.ref env LD_LIBRARY_PATH="$PY_LD" "$PY" tests/gpu/wave2_bench.py umt5 "$d/model" "$rep" && grep '^#' "$R/umt5.ref.log"
        [ -f "$d/ref.json" ] && cp "$d/ref.json" "$R/umt5.ref.json"
    else
        echo "# umt5: no report of ours to take the token ids from: transformers skipped"
    fi
    rm -rf "$d"
}

for ph in $ONLY; do
    case $ph in
    wan | vae | umt5) ;;
    *) echo "# unknown phase '$ph' (wan, vae, umt5)"; continue ;;
    esac
    echo "## $ph ($(( $(date +%s) - T_START )) s into the run, budget $BUDGET s)"
    p0=$(date +%s)
    "phase_$ph"
    echo "# $ph: $(( $(date +%s) - p0 )) s"
done
[ "$TINY" = 1 ] && LAYERS="2 (the tiny fixture's)"
echo "## table ($(( $(date +%s) - T_START )) s into the run; ISOPIPE_NN_PREC=$PREC; wan $FRAMES frames ${W_}x$H_, $STEPS steps; vae T=$VT; umt5 $LAYERS layers)"
WAVE2_BENCH_ONLY=$ONLY LD_LIBRARY_PATH="$PY_LD" "$PY" tests/gpu/wave2_bench.py table "$R" 2>&1 || echo "# the table could not be made"
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
    # results for the record; the large tensors stay behind
    mkdir -p "$OUT/wave2_bench"
    for f in "$R"/*; do
        case $f in *.safetensors | *.smi) ;; *) cp "$f" "$OUT/wave2_bench/" ;; esac
    done
fi
failed=$(grep -L '"rc": 0,' "$R"/*.run 2>/dev/null | sed 's|.*/||; s|\.run$||' | tr '\n' ' ')
echo "# total $(( $(date +%s) - T_START )) s${failed:+; failed or cut: $failed}"
[ -z "$failed" ]
