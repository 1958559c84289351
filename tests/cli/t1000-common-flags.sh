#!/bin/sh
# t1000: the common flags per tool (docs/DESIGN.md, "Common command-line
# contract"): --help lists only the common options a tool takes, a common
# option the tool does not take is a usage error naming it (never accepted
# and ignored), and --version says whether the build has CUDA.
. "$(dirname "$0")/lib.sh"

# tool, a common option it must not list or accept
for pair in "stitch --model" "stitch --seed" "stitch --device" "vram-probe --plan" "vram-probe --memory-mode" \
            "vram-probe --threads" "pipeline-report --plan" "flow-extract --seed"; do
    set -- $pair
    tool=$1 opt=$2
    "$BIN/$tool" --help >help.txt 2>&1
    if grep -q -- "$opt" help.txt; then fail "$tool --help does not list $opt"; else ok "$tool --help does not list $opt"; fi
    case $opt in --model|--seed|--device|--memory-mode|--threads) arg=1 ;; *) arg= ;; esac
    expect_exit "$tool $opt is refused" 64 "$BIN/$tool" $opt $arg
    check "$tool $opt: the message says it does not apply" stderr_has "option '$opt' does not apply to $tool"
done
# what a tool takes is still there
for pair in "stitch --threads" "stitch --plan" "vram-probe --device" "flow-extract --memory-mode" "segment-gen --seed" \
            "prompt-expand --vram-reserve"; do
    set -- $pair
    "$BIN/$1" --help >help.txt 2>&1
    check "$1 --help lists $2" grep -q -- "$2" help.txt
done
# --version: one line with the version, one saying CUDA or not
for tool in stitch vram-probe flow-extract segment-gen prompt-expand pipeline-report; do
    "$BIN/$tool" --version >v.txt 2>&1
    if [ "${ISOPIPE_CUDA_BUILD:-0}" = 1 ]; then want="built with CUDA"; else want="built without CUDA"; fi
    check "$tool --version says '$want'" grep -q "^$want" v.txt
done
# '-' is a stream only where a tool reads or writes one; elsewhere it is refused, never a file named '-'
expect_exit "segment-gen -o - is refused" 64 "$BIN/segment-gen" -o - --start a.png --end b.png --frames 3
check "  saying so" stderr_has "does not write to standard output"
check "  no file named '-'" test ! -e ./-
expect_exit "flow-extract -o - is refused" 64 "$BIN/flow-extract" -o - --pair a.png b.png
expect_exit "stitch reading '-' is refused" 64 "$BIN/stitch" -o x.mp4 -
check "  saying so" stderr_has "does not read standard input"
# a missing GPU is said once, in words, by a tool that could use one; a tool without a GPU path is silent
"$TESTBIN/helpers/flowgen" -o gen --seed 5 --width 64 --height 48 --frames 2 --max-motion 2 >/dev/null 2>&1 || fail "flowgen"
if [ "${ISOPIPE_CUDA_BUILD:-0}" = 1 ] && ! nvidia-smi -L >/dev/null 2>&1; then
    "$BIN/flow-extract" -o fl --pair gen/frame_00000.png gen/frame_00001.png 2>err.txt >/dev/null
    check "flow-extract says once that there is no usable GPU" [ "$(grep -c 'no usable GPU' err.txt)" = 1 ]
    check "  in words (driver), not a CUDA error string" grep -q "no usable GPU (no NVIDIA driver" err.txt
    "$BIN/segment-gen" -o sg --start gen/frame_00000.png --end gen/frame_00001.png --flow fl/flow_00000.flo \
        --flow-back fl/flow_00000.flo --frames 3 2>err2.txt >/dev/null
    check "segment-gen ran" test -f sg/segment.json
    check "segment-gen's morph (no GPU path) says nothing about GPUs" sh -c '! grep -qi "gpu\|cuda" err2.txt'
else
    skip "GPU messages: not a CUDA build on a machine without a GPU driver"
fi
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$MODEL" ]; then
    printf 'topic: a red kite over green hills\n' | "$BIN/prompt-expand" -q -m "$MODEL" --segments 1 -o sc.json - 2>err.txt
    check "prompt-expand - reads the topic from standard input" \
        python3 -c 'import json,sys; sys.exit(0 if json.load(open("sc.json"))["topic"] == "a red kite over green hills" else 1)'
else
    skip "prompt-expand -: '$MODEL' is absent (make models fetches it)"
fi
test_done
