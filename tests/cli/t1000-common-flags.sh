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
test_done
