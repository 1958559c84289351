#!/bin/sh
# 720p speed of flow-extract against OpenCV DIS, back to back, several rounds
# (tests/bench/flow/speed.py; results in docs/bench/flow.md).
#   [PYTHON=python-with-cv2] sh tests/bench/flow/speed.sh [--rounds N] [--threads N] [--preset fast|medium]
# Builds bin/flow-extract and flowgen first (CPU build); frames: flowgen seed 7,
# 1280x720, 8 frames (7 pairs), the frames of bench.py's speed row.
set -eu
cd "$(dirname "$0")/../../.."
make -s CUDA=0 bin/flow-extract build/tests/helpers/flowgen >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-flowspeed-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
build/tests/helpers/flowgen -o "$work/f" --seed 7 --width 1280 --height 720 --frames 8 --max-motion 40
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg), flow-extract at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
"${PYTHON:-/usr/bin/python3}" tests/bench/flow/speed.py bin "$work/f" "$@"
