#!/bin/sh
# batch.sh — the travel pipeline over many topic files, N at a time; one
# run's failure does not stop the others; a summary table at the end.
#
#   pipelines/batch.sh [-j N] [-o OUTROOT] [-m wan] TOPIC_OR_DIR...
#
# Each topic T runs as `make pipeline TOPIC=T OUT=OUTROOT/<name of T>` (with
# -m wan: `make pipeline MODEL=wan ...`, the Wan2.1 stages; the WAN_* and
# UMT5* model variables come from the environment) with its log in
# OUTROOT/<name>.log (a directory argument means every *.topic in it).
# Runs are independent Make invocations, so each resumes on its own if
# the batch is run again; on one GPU the tools' admission ledger queues them.
# Exit status: 0 when every run finished, 1 when any failed, 64 for bad usage.
# Environment: MAKE, and any TRAVEL_* variable of pipelines/travel.mk.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAKE=${MAKE:-make}

if [ "${1:-}" = "--one" ]; then
    # one run (called through xargs): OUTROOT MODEL TOPIC (MODEL: "" or wan)
    outroot=$2 model=$3 topic=$4
    name=$(basename "$topic" .topic)
    t0=$(date +%s.%N)
    if [ "$model" = wan ]; then
        $MAKE -C "$ROOT" --no-print-directory pipeline MODEL=wan TOPIC="$topic" OUT="$outroot/$name" >"$outroot/$name.log" 2>&1
    else
        $MAKE -C "$ROOT" --no-print-directory pipeline TOPIC="$topic" OUT="$outroot/$name" >"$outroot/$name.log" 2>&1
    fi
    rc=$?
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    echo "$rc $wall" > "$outroot/.batch/$name.status"
    if [ "$rc" -eq 0 ]; then echo "batch: $name: ok (${wall} s)"
    else echo "batch: $name: FAILED with exit $rc (${wall} s), log: $outroot/$name.log"; fi
    exit 0
fi

usage() { echo "usage: pipelines/batch.sh [-j N] [-o OUTROOT] [-m wan] TOPIC_OR_DIR..." >&2; exit 64; }
J=1 OUTROOT=out/batch MODEL_ARG=
while [ $# -gt 0 ]; do
    case "$1" in
    -j) [ $# -ge 2 ] || usage; J=$2; shift 2 ;;
    -j*) J=${1#-j}; shift ;;
    -o) [ $# -ge 2 ] || usage; OUTROOT=$2; shift 2 ;;
    -m) [ $# -ge 2 ] || usage; MODEL_ARG=$2; shift 2 ;;
    -h|--help) sed -n '2,/^[^#]/p' "$0" | sed -n '/^#/s/^# \{0,1\}//p'; exit 0 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || usage
case "$J" in ''|*[!0-9]*) usage ;; esac
case "$MODEL_ARG" in
'' | morph) MODEL_ARG= ;;
wan) ;;
*) echo "batch: -m '$MODEL_ARG': the pipelines are 'morph' (the default) and 'wan'" >&2; exit 64 ;;
esac
mkdir -p "$OUTROOT/.batch" || exit 73
OUTROOT=$(cd "$OUTROOT" && pwd)
rm -f "$OUTROOT"/.batch/*.status

list="$OUTROOT/.batch/topics"
: > "$list"
for a in "$@"; do
    if [ -d "$a" ]; then
        for t in "$a"/*.topic; do [ -f "$t" ] && echo "$(cd "$(dirname "$t")" && pwd)/$(basename "$t")" >> "$list"; done
    elif [ -f "$a" ]; then
        echo "$(cd "$(dirname "$a")" && pwd)/$(basename "$a")" >> "$list"
    else
        echo "batch: '$a' is neither a topic file nor a directory" >&2; exit 66
    fi
done
n=$(wc -l < "$list")
[ "$n" -gt 0 ] || { echo "batch: no *.topic files in $*" >&2; exit 66; }

# build the tools once, so parallel runs do not race to build them
if [ -z "${TRAVEL_BIN:-}" ]; then
    $MAKE -C "$ROOT" --no-print-directory -s pipeline-tools || exit 70
fi
BIN=${TRAVEL_BIN:-$ROOT/bin}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac

echo "batch: $n topics, $J at a time, outputs under $OUTROOT"
tr '\n' '\0' < "$list" | xargs -0 -n 1 -P "$J" sh "$0" --one "$OUTROOT" "$MODEL_ARG"

set --
while IFS= read -r t; do
    name=$(basename "$t" .topic)
    if [ -f "$OUTROOT/.batch/$name.status" ]; then read -r rc wall < "$OUTROOT/.batch/$name.status"
    else rc=130 wall=0; fi
    set -- "$@" "$name" "$rc" "$wall" "$OUTROOT/$name"
done < "$list"
echo
"$BIN/pipeline-report" -q summary -- "$@"
