# tests/gpu/env.sh — sourced (`. tests/gpu/env.sh`) from the repository root
# by the device scripts (tests/gpu/wave2.sh, tests/gpu/wave2_bench.sh):
# unpacks .gpu/bundle.tar.xz (tests/gpu/bundle.sh) over the checkout when it
# came with the run (bin/, build/gpu/, build/tests/helpers/, .gpu/lib), marks
# the unpacked binaries newer than the sources (make must not rebuild them),
# puts .gpu/lib and PyTorch's cuBLAS/cuDNN/CUDA folders (site-packages
# nvidia/*/lib) on LD_LIBRARY_PATH and prints the card. Returns 1 (the
# caller says FAIL) only when the bundle is there and cannot be unpacked.
# Only where a card answers (or with GPU_BUNDLE_UNPACK=1): on a development
# machine the bundle would replace its freshly built binaries with older ones.
if [ -f .gpu/bundle.tar.xz ] && { [ "${GPU_BUNDLE_UNPACK:-}" = 1 ] || nvidia-smi -L >/dev/null 2>&1; }; then
    tar -xJf .gpu/bundle.tar.xz || return 1
    echo "# bundle of $(head -1 .gpu/REVISION 2>/dev/null), checkout $(git rev-parse --short HEAD 2>/dev/null)"
    find bin build -type f -exec touch {} + 2>/dev/null
fi
. tests/gpu/cublas.sh
export LD_LIBRARY_PATH="$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/# /'
return 0
