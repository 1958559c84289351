#!/bin/sh
# make models-wan (pipelines/models-wan.sh) against a local mirror
# (WAN_MIRROR=file:///...) laid out like the Hugging Face repositories, made
# here from the tiny fixtures with a list of their sizes and sha256: every
# file lands where the model lookup finds it, a second run keeps them, a
# partial download is resumed (curl -C -: a .part with a wrong prefix ends
# in a sha256 mismatch, one with the right prefix completes), a wrong sum is
# refused and nothing is put in place, a file the mirror lacks fails the run,
# an entry without a sha256 is fetched and said to be unverified, and the
# committed list is well formed (every Hugging Face entry with a size and a
# 64-digit sha256, or said to be unknown).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
F=$ROOT/tests/fixtures/wan_tiny
S=$ROOT/pipelines/models-wan.sh
if ! command -v curl >/dev/null 2>&1; then skip "make models-wan (curl not installed)"; test_done; exit; fi

# ---- the committed list
check "models-wan.list: repo, file and sharded lines only; every file with a size and sha256 or '- -'" awk '
    /^[[:space:]]*(#|$)/ { next }
    $1 == "repo" && NF == 4 { next }
    $1 == "sharded" && NF == 5 { next }
    $1 == "file" && NF == 6 && (($5 ~ /^[0-9]+$/ && length($6) == 64 && $6 ~ /^[0-9a-f]+$/) || ($5 == "-" && $6 == "-")) { n++; next }
    { print "bad line " NR ": " $0; bad = 1 }
    END { exit bad || n < 10 }' "$ROOT/pipelines/models-wan.list"
check "models-wan.list: the four models' folders" sh -c "for d in wan2.1-t2v-1.3b wan2.1-vae umt5-xxl wan2.1-vace-1.3b; do grep -q \" \$d/\" '$ROOT/pipelines/models-wan.list' || grep -q \" \$d \" '$ROOT/pipelines/models-wan.list' || exit 1; done"

# ---- a mirror of two repositories, made from the fixtures
mkdir -p mirror/org/t2v/transformer mirror/org/t2v/vae mirror/org/t2v/text_encoder mirror/org/t2v/tokenizer \
         mirror/org/vace/transformer
cp "$F"/wan2.1-t2v-1.3b/* mirror/org/t2v/transformer/
cp "$F"/wan2.1-vae/* mirror/org/t2v/vae/
cp "$F"/umt5-xxl/config.json "$F"/umt5-xxl/model.safetensors mirror/org/t2v/text_encoder/
cp "$F"/umt5-xxl/spiece.model mirror/org/t2v/tokenizer/
cp "$F"/wan2.1-vace-1.3b/* mirror/org/vace/transformer/
{
    echo "# test list"; echo "repo T2V org/t2v 0123abc"; echo "repo VACE org/vace main"
    for p in transformer/config.json:wan2.1-t2v-1.3b/config.json \
             transformer/diffusion_pytorch_model.safetensors:wan2.1-t2v-1.3b/diffusion_pytorch_model.safetensors \
             vae/config.json:wan2.1-vae/config.json \
             vae/diffusion_pytorch_model.safetensors:wan2.1-vae/diffusion_pytorch_model.safetensors \
             text_encoder/config.json:umt5-xxl/config.json text_encoder/model.safetensors:umt5-xxl/model.safetensors \
             tokenizer/spiece.model:umt5-xxl/spiece.model; do
        r=${p%%:*} l=${p#*:}
        echo "file T2V $r $l $(stat -c %s "mirror/org/t2v/$r") $(sha256sum "mirror/org/t2v/$r" | cut -d' ' -f1)"
    done
    echo "file VACE transformer/config.json wan2.1-vace-1.3b/config.json - -"
    echo "sharded VACE transformer wan2.1-vace-1.3b diffusion_pytorch_model"
} > list
mw() { WAN_MIRROR="file://$T/mirror" WAN_LIST="$T/list" "$@"; }

expect_exit "make models-wan from the mirror" 0 mw env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
    make -s --no-print-directory -C "$ROOT" models-wan WAN_MODELS_DIR="$T/m"
same=1; for d in umt5-xxl wan2.1-t2v-1.3b wan2.1-vace-1.3b wan2.1-vae; do diff -r "$F/$d" "m/$d" >/dev/null || same=0; done
check "every file in place, identical to the mirror's" test $same = 1
check "the files without a sha256 are said to be unverified" sh -c "grep -c 'NOT verified' '$T/.err' | grep -qx 2"
check "the summary line counts them" grep -q "9 fetched, 0 already present, 2 not verifiable" "$T/.out"
check "no .part left" test -z "$(find m -name '*.part')"
check "the model lookup finds them (pipeline-report topic-vars --seg-model wan)" sh -c "
    printf 'topic: x\nframes: 5\n' > '$T/x.topic' &&
    ISOPIPE_MODELS='$T/m' '$BIN/pipeline-report' -q topic-vars --seg-model wan --wan-model WAN_DIT=wan2.1-vace-1.3b \
      --wan-model WAN_T2V=wan2.1-t2v-1.3b --wan-model WAN_VAE=wan2.1-vae --wan-model UMT5=umt5-xxl -o '$T/v.mk' '$T/x.topic' &&
    grep -q 'UMT5_PATH := $T/m/umt5-xxl' '$T/v.mk'"

expect_exit "second run" 0 mw sh "$S" m
check "second run: every file kept, nothing fetched" grep -q "0 fetched, 9 already present" "$T/.out"

# ---- resume: the part already there is continued, not fetched again
f=m/wan2.1-vae/diffusion_pytorch_model.safetensors
head -c 1000 "$f" | tr '\000-\377' '\001-\377\000' > "$f.part" && rm "$f"
expect_exit "a .part with a wrong first 1000 bytes" 1 mw sh "$S" m
check "... is continued by curl -C - (so the sum is wrong), removed and not put in place" \
    sh -c "grep -q 'sha256 mismatch' '$T/.err' && test ! -e '$f' -a ! -e '$f.part'"
head -c 1000 "mirror/org/t2v/vae/diffusion_pytorch_model.safetensors" > "$f.part"
expect_exit "a .part with the right first 1000 bytes" 0 mw sh "$S" m
check "... completes to the right file" cmp -s "$f" "$F/wan2.1-vae/diffusion_pytorch_model.safetensors"
cp -p "$F/wan2.1-vae/config.json" m/wan2.1-vae/config.json && printf 'x' >> m/wan2.1-vae/config.json
expect_exit "a present file of the wrong size" 0 mw sh "$S" m
check "... is fetched again" cmp -s m/wan2.1-vae/config.json "$F/wan2.1-vae/config.json"

# ---- a wrong sum in the list, a file the mirror lacks
sed 's/^\(file T2V tokenizer\/spiece.model [^ ]* [0-9]*\) [0-9a-f]*/\1 0000000000000000000000000000000000000000000000000000000000000000/' list > list2
rm -rf m2
expect_exit "a wrong sha256 in the list" 1 env WAN_MIRROR="file://$T/mirror" WAN_LIST="$T/list2" sh "$S" m2
check "... is refused, the file not put in place" sh -c "grep -q 'umt5-xxl/spiece.model: sha256 mismatch' '$T/.err' && test ! -e m2/umt5-xxl/spiece.model"
rm mirror/org/t2v/text_encoder/config.json
rm -rf m3
expect_exit "a file missing on the mirror" 1 mw sh "$S" m3
check "... is named, the rest fetched" sh -c "grep -q 'umt5-xxl/config.json: download from' '$T/.err' && test -s m3/umt5-xxl/model.safetensors"
printf 'repo T2V org/t2v x\nfile T2V ../etc/passwd x 1 -\n' > list3
expect_exit "a path with .. in the list" 64 env WAN_MIRROR="file://$T/mirror" WAN_LIST="$T/list3" sh "$S" m4
test_done
