#!/bin/sh
# seeds.sh — how often prompt-expand needs its retries, its constrained
# attempts, or the topic fallback, over many seeds of one topic (not a test:
# prints a table). Each run is the real tool on THREADS threads.
#   sh tests/bench/llm/seeds.sh [TOPICFILE] [SEEDS] [MODEL] [THREADS]
set -u
TOPIC=${1:-sample_inputs/harbor.topic}
SEEDS=${2:-100}
FIRST=${FIRST:-0}   # the first seed
MODEL=${3:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${4:-2}
[ -f "$TOPIC" ] || { echo "seeds.sh: '$TOPIC' is missing" >&2; exit 66; }
[ -x bin/prompt-expand ] || { echo "seeds.sh: build bin/prompt-expand first (make)" >&2; exit 69; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pe-seeds-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), topic $TOPIC, model $MODEL, $SEEDS seeds, $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
s=$FIRST fail=0
t0=$(date +%s)
while [ "$s" -lt $((FIRST + SEEDS)) ]; do
    bin/prompt-expand -q -m "$MODEL" --threads "$THREADS" --seed "$s" -o "$tmp/s$s.json" "$TOPIC" 2>"$tmp/s$s.err" ||
        { fail=$((fail + 1)); echo "seed $s: exit $?: $(tail -n 1 "$tmp/s$s.err")"; }
    s=$((s + 1))
done
t1=$(date +%s)
python3 - "$tmp" "$SEEDS" "$fail" "$((t1 - t0))" <<'PY'
import glob, json, os, sys
d, seeds, fail, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
prompts = first = retried = constrained = fallback = runs_fb = 0
tokens = 0
for f in glob.glob(d + "/s*.json"):
    j = json.load(open(f))
    runs_fb += j["fallback_prompts"] > 0
    tokens += j["generation"]["tokens_generated"]
    for s in j["segments"]:
        prompts += 1
        if s.get("source") == "topic":
            fallback += 1
            print(f"{os.path.basename(f)} prompt {s['index']}: topic fallback ({s.get('fallback_reason')})")
        elif s.get("constrained"): constrained += 1
        elif s["attempts"] == 1: first += 1
        else: retried += 1
print(f"runs {seeds}, exit != 0: {fail}, runs with a topic fallback: {runs_fb}")
print(f"prompts {prompts}: first try {first}, after retries {retried}, from constrained decoding {constrained}, topic fallback {fallback}")
print(f"{secs} s wall, {tokens} tokens generated")
PY
