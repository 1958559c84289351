#!/bin/sh
# default_model.sh — which model should prompt-expand use by default? Runs the
# real tool on every held-out topic (tests/bench/llm/topics_heldout.txt) with
# each MODEL, then scores the prompts (tests/bench/llm/score_prompts.py) into
# one table (not a test: prints a table; docs/prompt-expand.md explains the
# checks). The outputs stay in OUTDIR/<model>/ so they can be scored again.
#   sh tests/bench/llm/default_model.sh OUTDIR MODEL...
# Environment: SEGMENTS (prompts per topic, default 2), THREADS (default 2),
# SEED (default 0), TOPICS (default the held-out file), PE (the binary, default
# bin/prompt-expand: copy it elsewhere to rebuild while this runs).
set -u
[ $# -ge 2 ] || { echo "usage: default_model.sh OUTDIR MODEL..." >&2; exit 64; }
OUT=$1; shift
SEGMENTS=${SEGMENTS:-2}
THREADS=${THREADS:-2}
SEED=${SEED:-0}
TOPICS=${TOPICS:-tests/bench/llm/topics_heldout.txt}
[ -f "$TOPICS" ] || { echo "default_model.sh: '$TOPICS' is missing" >&2; exit 66; }
PE=${PE:-bin/prompt-expand}
[ -x "$PE" ] || { echo "default_model.sh: build bin/prompt-expand first (make)" >&2; exit 69; }
mkdir -p "$OUT" || exit 73
dirs=""
for m in "$@"; do
    [ -f "$m" ] || { echo "default_model.sh: model '$m' is missing" >&2; exit 66; }
    d="$OUT/$(basename "$m" .gguf)"
    mkdir -p "$d" || exit 73
    dirs="$dirs $d"
    echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC') $m: $SEGMENTS prompts per topic, $THREADS threads, seed $SEED, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$d/run.txt"
    i=0
    # each topic is one line of the file, passed as one argument (never shell text)
    grep -v '^#' "$TOPICS" | grep -v '^[[:space:]]*$' | while IFS= read -r topic; do
        i=$((i + 1)); n=$(printf '%02d' "$i")
        [ -s "$d/$n.json" ] && continue          # resume an interrupted run
        t0=$(date +%s.%N)
        # CPU seconds too (user + system, from /usr/bin/time when installed):
        # on a shared machine they say more than the wall time
        if [ -x /usr/bin/time ]; then
            /usr/bin/time -f '%U %S' -o "$d/$n.cpu" "$PE" -q -m "$m" --threads "$THREADS" --seed "$SEED" \
                -n "$SEGMENTS" --topic "$topic" -o "$d/$n.json" 2>"$d/$n.err" </dev/null
        else
            "$PE" -q -m "$m" --threads "$THREADS" --seed "$SEED" -n "$SEGMENTS" \
                --topic "$topic" -o "$d/$n.json" 2>"$d/$n.err" </dev/null
        fi
        rc=$?
        t1=$(date +%s.%N)
        cpu=$(awk 'END { if (NF == 2) printf "%.2f", $1 + $2; else print "-" }' "$d/$n.cpu" 2>/dev/null || echo -)
        echo "$n $rc $(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}') $(cut -d' ' -f1 /proc/loadavg) $cpu" >>"$d/times.txt"
    done
    echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC') done, load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$d/run.txt"
done
# shellcheck disable=SC2086
python3 tests/bench/llm/score_prompts.py --topics "$TOPICS" $dirs
