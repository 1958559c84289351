#!/bin/sh
# tests/gpu/wave2.sh — every GPU check of the models on the nn core in one
# device run, so that a session lent a card spends its minutes once:
#   nn_check    every nn.h op, CUDA against CPU            (tests/gpu/nn_check.sh)
#   rife        nn_img ops bit-identical; RIFE vs PyTorch    (tests/gpu/rife_check.sh)
#   wan         the DiT T2V + VACE, resident and streamed     (tests/gpu/wan_check.sh)
#   umt5        text-encode's encoder, resident and streamed  (tests/gpu/umt5_check.sh)
#   vae         the Wan VAE, fixtures + a full-size random one (tests/gpu/vae_check.sh)
# Each script is bounded on its own (timeout); this one adds a 280 s bound
# per script and prints each summary, then the total
# "N passed, N failed, N skipped". When all pass, NN_CUDA_MODELS_VERIFIED
# (common/nn.h) may become 1 — with the figures in docs/nn.md.
#
# Here (no GPU needed):   sh tests/gpu/bundle.sh      -> .gpu/bundle.tar.xz
# On the card, e.g.:      run(command="sh tests/gpu/wave2.sh", carry=[".gpu", "models/rife.pkl"], timeout_s=540)
# WAVE2_ONLY="wan vae" runs a subset. The bundle is unpacked over the
# checkout (bin/, build/gpu/, build/tests/helpers/, .gpu/lib); its
# libraries and PyTorch's cuBLAS/cuDNN folders go on LD_LIBRARY_PATH
# (tests/gpu/env.sh, shared with tests/gpu/wave2_bench.sh).
cd "$(dirname "$0")/../.." || exit 1
unset ISOPIPE_FAKE_GPU MAKEFLAGS MFLAGS MAKELEVEL
. tests/gpu/env.sh || { echo "FAIL - cannot unpack .gpu/bundle.tar.xz"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
P=0 F=0 S=0
ONLY=${WAVE2_ONLY:-"nn rife wan umt5 vae"}
for c in $ONLY; do
    echo "## $c"
    t0=$(date +%s)
    timeout 280 sh "tests/gpu/${c}_check.sh" >"/tmp/wave2-$c.log" 2>&1
    rc=$?
    cat "/tmp/wave2-$c.log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "/tmp/wave2-$c.log" | tail -1)
    if [ -z "$line" ]; then
        echo "FAIL - $c: no summary line (exit $rc)"
        F=$((F + 1))
    else
        set -- $line
        P=$((P + $1)) F=$((F + $3)) S=$((S + $5))
        [ $rc -ne 0 ] && [ "$3" -eq 0 ] && { echo "FAIL - $c exited $rc"; F=$((F + 1)); }
    fi
    echo "# $c: $(( $(date +%s) - t0 )) s"
done
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
