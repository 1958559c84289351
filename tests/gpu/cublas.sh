# tests/gpu/cublas.sh — sourced (`. tests/gpu/cublas.sh`) by the GPU check
# scripts: every site-packages folder of python3 is searched for PyTorch's
# cuBLAS / cuDNN (nvidia/cublas/lib, nvidia/cudnn/lib for CUDA 12 wheels,
# nvidia/cu13/lib for CUDA 13 wheels); each folder holding libcublas.so.* or
# libcudnn.so.* goes in front of LD_LIBRARY_PATH (the nn core dlopens them;
# nothing is linked against them).
CUBLAS_DIRS=""
for sp in $(python3 -c 'import site, sys; print(" ".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2>/dev/null); do
    for d in "$sp"/nvidia/cublas/lib "$sp"/nvidia/cudnn/lib "$sp"/nvidia/cu1*/lib; do
        if [ -d "$d" ] && { ls "$d"/libcublas.so.* >/dev/null 2>&1 || ls "$d"/libcudnn.so.* >/dev/null 2>&1; }; then
            case ":$CUBLAS_DIRS:" in *":$d:"*) ;; *) CUBLAS_DIRS="${CUBLAS_DIRS:+$CUBLAS_DIRS:}$d" ;; esac
        fi
    done
done
[ -n "$CUBLAS_DIRS" ] && echo "# cuBLAS/cuDNN from $CUBLAS_DIRS"
CUBLAS_DIRS="$CUBLAS_DIRS${LD_LIBRARY_PATH:+${CUBLAS_DIRS:+:}$LD_LIBRARY_PATH}"
[ -n "$CUBLAS_DIRS" ] && export LD_LIBRARY_PATH="$CUBLAS_DIRS"
unset sp d
