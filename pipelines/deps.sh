#!/bin/sh
# Installs the Debian packages isopipe's build, tests and benchmarks need.
# Run as root (or with sudo available). Safe to run again.
set -eu
PKGS="build-essential pkg-config libpng-dev libjansson-dev libavcodec-dev libavformat-dev
libavutil-dev libswscale-dev ffmpeg clang python3 python3-pip python3-numpy parallel"
# libFuzzer's runtime is only a Recommends of clang-14, and this script installs
# without recommends; GNU time measures peak RSS in the benchmarks
PKGS="$PKGS libclang-rt-14-dev time"
# reference tools for benchmarks and tests (OpenCV's DIS/Farneback, skimage's Middlebury pair)
PKGS="$PKGS python3-opencv python3-skimage"
# real footage for the interpolation benchmark (OpenCV samples vtest.avi, Apache-2.0/BSD-3-Clause)
PKGS="$PKGS opencv-doc"
# a one-node Slurm for tests/cli/t8000-slurm.sh (make slurm-pipeline; docs/slurm.md)
PKGS="$PKGS slurm-wlm munge"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
echo "deps: installed $(echo $PKGS | wc -w) packages"
