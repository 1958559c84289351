#!/bin/sh
# Accuracy and speed of flow-extract against OpenCV 4.6 (python3-opencv) on
# the same frames and thread count; prints markdown tables (docs/bench/flow.md).
#   [PYTHON=python-with-cv2] sh tests/bench/flow/run.sh [--threads N] [--quick]
# Builds bin/flow-extract and the flowgen helper first (CPU build).
set -eu
cd "$(dirname "$0")/../../.."
make -s CUDA=0 bin/flow-extract build/tests/helpers/flowgen >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-flowbench-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
"${PYTHON:-/usr/bin/python3}" tests/bench/flow/bench.py bin build/tests/helpers "$work" "$@"
