#!/bin/sh
# tests/gpu/bundle.sh — everything a lent GPU machine needs to check the
# nn-core models, in one compressed file that fits the device tool's 64 MiB:
# the CUDA builds of the model tools (segment-gen, text-encode, vae,
# vram-probe), the check binaries of tests/gpu/*_check.sh that have a
# --build step, and the shared libraries they load that a bare machine may
# lack (OpenBLAS and its Fortran runtime, libpng, jansson; never glibc,
# libstdc++ or libgcc, which the machine has, nor cuBLAS/cuDNN, which come
# from PyTorch's wheels there). stitch and prompt-expand stay out: their
# FFmpeg closure alone is ~50 MiB compressed and neither runs on the GPU.
#
#   sh tests/gpu/bundle.sh [OUT]     default OUT: .gpu/bundle.tar.xz
#
# The archive mirrors the checkout: bin/<tool>, build/gpu/<check>,
# .gpu/lib/*.so, .gpu/REVISION. On the device, in the repository root:
# tar -xJf .gpu/bundle.tar.xz, then LD_LIBRARY_PATH=.gpu/lib plus PyTorch's
# nvidia/*/lib folders, and each tests/gpu/*_check.sh finds its binary where
# --build left it (tests/gpu/wave2.sh does all of it). .gpu/ must be
# ignored (.git/info/exclude) and named in the run's carry.
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${1:-.gpu/bundle.tar.xz}
J=${JOBS:-$(nproc)}
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-bundle-XXXXXX") || exit 1
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/.gpu/lib" "$STAGE/build/gpu" "$(dirname "$OUT")"
TOOLS="segment-gen text-encode vae vram-probe"
set --
for t in $TOOLS; do set -- "$@" "bin/$t"; done
make -j"$J" CUDA=1 "$@" >build/gpu-bundle.log 2>&1 || { echo "bundle: CUDA build failed (build/gpu-bundle.log)" >&2; exit 1; }
for t in $TOOLS; do
    nm "bin/$t" | grep -q ' cudaSetDevice' || { echo "bundle: bin/$t was built without CUDA" >&2; exit 1; }
    strip -o "$STAGE/bin/$t" "bin/$t" || exit 1
done
# the check binaries: every tests/gpu/*_check.sh with a --build step writes build/gpu/<name>
for s in tests/gpu/*_check.sh; do
    grep -q -- '--build' "$s" || continue
    sh "$s" --build >>build/gpu-bundle.log 2>&1 || { echo "bundle: $s --build failed (build/gpu-bundle.log)" >&2; exit 1; }
done
for b in build/gpu/*; do
    [ -f "$b" ] && [ -x "$b" ] && strip -o "$STAGE/build/gpu/$(basename "$b")" "$b"
done
# the test helpers the check scripts call beside the tools (a CUDA build)
HELPERS="vae_check st_tool"
set --
for h in $HELPERS; do set -- "$@" "build/tests/helpers/$h"; done
make -j"$J" CUDA=1 "$@" >>build/gpu-bundle.log 2>&1 || { echo "bundle: building $* failed (build/gpu-bundle.log)" >&2; exit 1; }
mkdir -p "$STAGE/build/tests/helpers"
for h in $HELPERS; do strip -o "$STAGE/build/tests/helpers/$h" "build/tests/helpers/$h" || exit 1; done
# shared libraries the tools and helpers load, but not the ones every Linux has
{ for t in $TOOLS; do ldd "bin/$t"; done; for h in $HELPERS; do ldd "build/tests/helpers/$h"; done; } | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' >"$STAGE/libs.txt"
while read -r l; do cp -L "$l" "$STAGE/.gpu/lib/" || exit 1; done <"$STAGE/libs.txt"
rm -f "$STAGE/libs.txt"
{ git rev-parse --short HEAD; git status --short | grep -v '^??' | head -20; } >"$STAGE/.gpu/REVISION" 2>/dev/null
tar -cJf "$OUT.tmp" -C "$STAGE" bin build .gpu && mv "$OUT.tmp" "$OUT" || exit 1
echo "bundle: $OUT ($(du -k "$OUT" | cut -f1) KiB): $(ls "$STAGE/bin" | tr '\n' ' ')| checks: $(ls "$STAGE/build/gpu" | tr '\n' ' ')| libs: $(ls "$STAGE/.gpu/lib" | tr '\n' ' ')"
