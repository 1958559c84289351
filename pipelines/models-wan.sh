#!/bin/sh
# models-wan.sh — `make models-wan`: downloads the Wan2.1 weights that
# `make pipeline MODEL=wan` needs (docs/pipeline.md, "Wan models") into DIR
# (default models/, where the tools' model lookup finds them):
#   DIR/wan2.1-t2v-1.3b/   transformer of Wan-AI/Wan2.1-T2V-1.3B-Diffusers (WAN_T2V)
#   DIR/wan2.1-vae/        its vae/ (WAN_VAE)
#   DIR/umt5-xxl/          its text_encoder/ and tokenizer files (UMT5; the tokenizer is found beside it)
#   DIR/wan2.1-vace-1.3b/  transformer of Wan-AI/Wan2.1-VACE-1.3B-diffusers (WAN_DIT)
# What to fetch, with each file's size and sha256, is the list
# pipelines/models-wan.list (WAN_LIST=FILE for another). Each file is
# downloaded to FILE.part with `curl -C -`, so a run cut short resumes where
# it stopped; it is checked (size, then sha256) and only then renamed into
# place. A file already in place with the right size and sha256 is kept.
# A list entry whose size or sha256 is `-` (unknown: see the list) is
# downloaded, but the script says plainly that it could not verify it.
#
#   WAN_MIRROR=URL   fetch from URL/<owner>/<repo>/<path> instead of
#                    https://huggingface.co/<owner>/<repo>/resolve/<revision>/<path>
#                    (file:///a/local/copy works: the tests use one)
#   WAN_LIST=FILE    the list to use
# Exit: 0 all present and verified (or unverifiable, said so), 1 a download
# or check failed (the .part file is kept for the next run unless its
# checksum was wrong), 64 a bad list, 69 curl missing.
set -eu
DIR=${1:-models}
HERE=$(cd "$(dirname "$0")" && pwd)
LIST=${WAN_LIST:-$HERE/models-wan.list}
MIRROR=${WAN_MIRROR:-}
command -v curl >/dev/null 2>&1 || { echo "models-wan: curl is missing (apt-get install curl)" >&2; exit 69; }
[ -f "$LIST" ] || { echo "models-wan: no list '$LIST'" >&2; exit 64; }
mkdir -p "$DIR"

repo_of() { # KEY -> "owner/name revision"
    awk -v k="$1" '$1 == "repo" && $2 == k { print $3, $4; exit }' "$LIST"
}
url_of() { # KEY REMOTE-PATH
    set -- "$1" "$2" $(repo_of "$1")
    [ -n "${3:-}" ] || { echo "models-wan: list names no repo '$1'" >&2; exit 64; }
    if [ -n "$MIRROR" ]; then echo "${MIRROR%/}/$3/$2"
    else echo "https://huggingface.co/$3/resolve/$4/$2"; fi
}
safe_rel() { # a relative path without .. or odd characters
    case "$1" in ''|/*|*..*) return 1 ;; esac
    case "$1" in *[!A-Za-z0-9._/+-]*) return 1 ;; esac
    return 0
}
fsize() { stat -c %s "$1" 2>/dev/null || echo -1; }

unverified=0 failed=0 fetched=0 kept=0
# one file: KEY REMOTE LOCAL SIZE SHA
get() {
    key=$1 remote=$2 local=$3 size=$4 sum=$5
    safe_rel "$remote" && safe_rel "$local" || { echo "models-wan: bad path in the list: '$remote' '$local'" >&2; exit 64; }
    out="$DIR/$local"
    mkdir -p "$(dirname "$out")"
    if [ -f "$out" ]; then
        if [ "$size" != - ] && [ "$(fsize "$out")" != "$size" ]; then
            echo "models-wan: $local: present but $(fsize "$out") bytes, expected $size: fetching it again" >&2
            # shorter: maybe a cut-short copy, which curl -C - goes on from; longer: not ours
            if [ "$(fsize "$out")" -lt "$size" ]; then mv -f "$out" "$out.part"; else rm -f "$out"; fi
        elif [ "$sum" != - ] && ! echo "$sum  $out" | sha256sum -c --status; then
            echo "models-wan: $local: present but its sha256 is not $sum: fetching it again" >&2
            rm -f "$out"
        else
            if [ "$sum" = - ]; then unverified=$((unverified + 1))
                echo "models-wan: $local present (NOT verified: the list has no sha256 for it)"
            else echo "models-wan: $local present (size and sha256 ok)"; fi
            kept=$((kept + 1)); return 0
        fi
    fi
    url=$(url_of "$key" "$remote")
    part="$out.part"
    # a part longer than the file cannot be continued
    if [ "$size" != - ] && [ "$(fsize "$part")" -gt "$size" ]; then rm -f "$part"; fi
    if [ "$size" != - ] && [ "$(fsize "$part")" = "$size" ]; then
        : # complete already: a run stopped between the download and the check
    elif ! curl -fsSL --retry 3 -C - -o "$part" "$url"; then
        echo "models-wan: $local: download from $url failed (what arrived is kept in $part; run again to resume)" >&2
        failed=$((failed + 1)); return 0
    fi
    if [ "$size" != - ] && [ "$(fsize "$part")" != "$size" ]; then
        echo "models-wan: $local: $(fsize "$part") bytes, expected $size (kept in $part; run again to resume)" >&2
        failed=$((failed + 1)); return 0
    fi
    if [ "$sum" != - ]; then
        got=$(sha256sum "$part" | cut -d' ' -f1)
        if [ "$got" != "$sum" ]; then
            echo "models-wan: $local: sha256 mismatch (expected $sum, got $got); removed" >&2
            rm -f "$part"; failed=$((failed + 1)); return 0
        fi
        mv -f "$part" "$out"
        echo "models-wan: $local fetched (size and sha256 ok)"
    else
        mv -f "$part" "$out"
        unverified=$((unverified + 1))
        echo "models-wan: $local fetched but NOT verified: the list has no $([ "$size" = - ] && echo "size or ")sha256 for it (docs/pipeline.md, \"Wan models\")" >&2
    fi
    fetched=$((fetched + 1))
}

# sharded KEY REMOTE-DIR LOCAL-DIR BASE: the index BASE.safetensors.index.json
# and every shard it names, else BASE.safetensors alone (for a repository
# whose file names the list could not confirm); none of them verified
sharded() {
    key=$1 rdir=$2 ldir=$3 base=$4
    idx="$base.safetensors.index.json"
    tmp="$DIR/$ldir/.$idx.probe"
    mkdir -p "$DIR/$ldir"
    if [ -f "$DIR/$ldir/$idx" ] || curl -fsSL -o "$tmp" "$(url_of "$key" "$rdir/$idx")" 2>/dev/null; then
        [ -f "$tmp" ] && mv -f "$tmp" "$DIR/$ldir/$idx"
        unverified=$((unverified + 1))
        echo "models-wan: $ldir/$idx present (NOT verified: the list has no sha256 for it)"
        for shard in $(python3 -c 'import json, sys
for f in sorted(set(json.load(open(sys.argv[1]))["weight_map"].values())): print(f)' "$DIR/$ldir/$idx"); do
            get "$key" "$rdir/$shard" "$ldir/$shard" - -
        done
    else
        rm -f "$tmp"
        get "$key" "$rdir/$base.safetensors" "$ldir/$base.safetensors" - -
    fi
}

# the list, without comments; each line one entry
entries=$(grep -v '^[[:space:]]*#' "$LIST" | grep -v '^[[:space:]]*$' || true)
echo "$entries" | awk '$1 != "repo" && $1 != "file" && $1 != "sharded" { bad = 1 } END { exit bad }' ||
    { echo "models-wan: '$LIST' has a line that is not repo/file/sharded" >&2; exit 64; }
# (a here-document, not a pipe: the counters must survive the loop)
while read -r kind a b c d e; do
    case "$kind" in
    file) get "$a" "$b" "$c" "$d" "$e" ;;
    sharded) sharded "$a" "$b" "$c" "$d" ;;
    esac
done <<EOF
$entries
EOF
echo "models-wan: $fetched fetched, $kept already present, $unverified not verifiable (no sha256 in the list), $failed failed; into $DIR"
[ "$failed" -eq 0 ] || exit 1
