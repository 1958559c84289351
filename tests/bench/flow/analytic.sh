#!/bin/sh
# flow-extract against OpenCV 4.6 DIS on pairs with exact analytic ground
# truth (tests/bench/flow/analytic.py; results in docs/bench/flow.md).
#   [PYTHON=python-with-cv2] sh tests/bench/flow/analytic.sh [--set tune|heldout|fresh|both|all] [--seeds 1,2,...] [--res 640x480,...] [--kinds ...] [--threads N]
# Builds bin/flow-extract first (CPU build); the held-out part is the default.
set -eu
cd "$(dirname "$0")/../../.."
make -s CUDA=0 bin/flow-extract >/dev/null
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg), flow-extract at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
"${PYTHON:-/usr/bin/python3}" tests/bench/flow/analytic.py --bin bin "$@"
