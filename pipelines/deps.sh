#!/bin/sh
# Installs the Debian packages isopipe needs. Run as root (or with sudo
# available). Safe to run again.
#
#   sh pipelines/deps.sh [run|dev] [--if-missing]
#
# run (default, `make deps`): what building and running the tools and the
#     pipeline need, nothing more (make sample installs only these).
# dev (`make deps-dev`, and `make test` installs what is missing of it):
#     run + the tests', fuzzers' and benchmarks' tools and references.
# --if-missing: do nothing (not even apt-get update) when every package of
#     the set is installed already.
set -eu
SET=run IFMISSING=0
for a in "$@"; do
    case "$a" in
    run|dev) SET=$a ;;
    --if-missing) IFMISSING=1 ;;
    *) echo "usage: sh pipelines/deps.sh [run|dev] [--if-missing]" >&2; exit 64 ;;
    esac
done
# build and run: compiler, pkg-config, PNG, JSON, libav (stitch, video input),
# OpenBLAS (the nn core's GEMM), python3 + pip (make models reads wheels),
# help2man (man pages of make install)
RUN="make build-essential pkg-config libpng-dev libjansson-dev libavcodec-dev libavformat-dev
libavutil-dev libswscale-dev libopenblas-dev python3 python3-pip help2man"
# tests and benchmarks: ffmpeg/ffprobe (checks, minterpolate), clang + libFuzzer's
# runtime (only a Recommends of clang-14, and this script installs without
# recommends), GNU time (peak RSS), numpy/OpenCV/skimage (DIS, Farneback,
# Middlebury pair), GNU parallel (the batch examples), real footage for the
# interpolation benchmark (opencv-doc's vtest.avi, Apache-2.0/BSD-3-Clause)
DEV="ffmpeg clang libclang-rt-14-dev time python3-numpy python3-opencv python3-skimage parallel opencv-doc"
# SIMDe's portable x86 intrinsics (headers only): the AVX-512 kernels run,
# emulated, in the unit tests on CPUs without AVX-512 (tests/unit/quant_avx512_emu.h)
DEV="$DEV libsimde-dev"
# a one-node Slurm for tests/cli/t8000-slurm.sh (make slurm-pipeline; docs/slurm.md)
DEV="$DEV slurm-wlm munge"
PKGS=$RUN
[ "$SET" = dev ] && PKGS="$RUN $DEV"
if [ "$IFMISSING" = 1 ]; then
    missing=""
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && exit 0
    echo "deps: missing for '$SET':$missing"
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps: run as root, or install sudo: apt-get install $PKGS" >&2; exit 77; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
echo "deps: installed the $SET set ($(echo $PKGS | wc -w) packages)"
