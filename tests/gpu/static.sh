# tests/gpu/static.sh — sourced by the --build step of the GPU check scripts
# (tests/gpu/*_check.sh): the flags that link a check binary which needs only
# libc, libm, libstdc++ and libgcc on the GPU machine. OpenBLAS, jansson,
# libpng and zlib are linked from their static archives where the -dev
# packages have them (else dynamically), the CUDA runtime statically; cuBLAS
# and cuDNN are never linked (the nn core dlopens them there).
#   GPU_CFLAGS  compile flags of a CUDA build of the tests (add -Itools/X)
#   GPU_LIBS    what follows the objects: libisopipe.a, the libraries, cudart
static_or() { # library file candidates..., fallback flag (last)
    for a in "$@"; do
        case "$a" in -*) echo "$a"; return ;; esac
        [ -f "$a" ] && { echo "$a"; return; }
    done
}
_L=/usr/lib/x86_64-linux-gnu
_NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
_CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$_NVCC")")}
GPU_CFLAGS="-std=c11 -D_GNU_SOURCE -O2 -g -pthread -DISOPIPE_CUDA=1 -Icommon -Itests/unit"
GPU_LIBS="build/libisopipe.a $(static_or $_L/openblas-pthread/libopenblas.a $_L/libopenblas.a -lopenblas)
 $(static_or $_L/libjansson.a -ljansson) $(static_or $_L/libpng16.a -lpng16) $(static_or $_L/libz.a -lz)
 -L$_CUDA_HOME/lib64 -L$_CUDA_HOME/targets/x86_64-linux/lib -lcudart_static -lrt -lstdc++ -lm -ldl -lpthread"
unset _L _NVCC _CUDA_HOME
