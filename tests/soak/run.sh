#!/bin/sh
# tests/soak/run.sh [SECONDS] -- the hostile-input soak of issue 11 (not part
# of `make test`; docs/pipeline.md "Soak" records what was run).
#
# Rounds until SECONDS (default 1800) have passed. Each round starts
# SOAK_RUNS (default 8) `make pipeline`s at once on one pretend card
# (ISOPIPE_FAKE_GPU=1000:150: room for one beefy LLM), each in its own
# session, then after a random 1-15 s kills a random half of them -- the
# whole process group with SIGKILL, or make alone with SIGTERM -- and lets
# the others go on. Then every run is resumed with the same command and must
# finish; checked each round: every final.mp4 byte-identical to a clean run
# without any GPU, no temporary (.NAME.tmp-*) left anywhere, no process of
# the round left, the ledger empty, the ledger's reservations (sampled every
# 0.2 s by vram-probe) never above the card. Outputs are removed between
# rounds. Prints one line per round and a summary; exit 1 on any failure.
# Needs: make, bin/ tools, build/tests/helpers/mkkeyframes, models/.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DUR=${1:-1800}
N=${SOAK_RUNS:-8}
BIN=${TRAVEL_BIN:-$ROOT/bin}
MK=${SOAK_MKKEYFRAMES:-$ROOT/build/tests/helpers/mkkeyframes}
W=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-soak-XXXXXX")
export ISOPIPE_LEDGER_DIR="$W/ledger"
unset MAKEFLAGS MFLAGS MAKELEVEL ISOPIPE_FAKE_GPU
cd "$W" || exit 1
mkdir tb ledger && cp -p "$BIN"/pipeline-report "$BIN"/prompt-expand "$BIN"/flow-extract "$BIN"/segment-gen \
    "$BIN"/stitch "$BIN"/vram-probe tb/ || exit 1
"$MK" --scene harbor --width 48 --height 32 --count 3 --step 4 -o kf >/dev/null || exit 1
i=0
while [ $i -lt "$N" ]; do
    printf 'topic: boat %d drifting past a harbour\nkeyframes: kf/harbor_00.png kf/harbor_01.png kf/harbor_02.png\nframes: 4\nfps: 8\n' $i > t$i.topic
    i=$((i + 1))
done
run() { # topic out [extra...]: one pipeline, its own session (a process group to kill)
    t=$1 o=$2; shift 2
    exec setsid make -s --no-print-directory -C "$ROOT" pipeline CUDA=0 TRAVEL_BIN="$W/tb" TRAVEL_THREADS=1 \
        TRAVEL_X264_PRESET=ultrafast TRAVEL_WAIT_VRAM=900 TRAVEL_BASELINE_TIMEOUT=2 TOPIC="$W/$t" OUT="$W/$o" "$@"
}
(run t0.topic clean TRAVEL_MODE=cpu) > clean.log 2>&1 || { echo "soak: the clean run failed"; cat clean.log; exit 1; }
export ISOPIPE_FAKE_GPU=1000:150
LIMIT=$((150 * 1048576))
rand() { awk -v s="$(od -An -N4 -tu4 /dev/urandom)" -v n="$1" 'BEGIN { srand(s); print int(rand() * n) }'; }
start=$(date +%s) round=0 bad=0 kills_k=0 kills_t=0
while [ $(( $(date +%s) - start )) -lt "$DUR" ]; do
    round=$((round + 1))
    rm -rf o* stop samples; : > samples
    ( while [ ! -e stop ]; do "$W/tb/vram-probe" -q 2>/dev/null | python3 -c '
import json, sys; d = json.load(sys.stdin); print(sum(e["reserved"] for e in d["ledger"]))' >> samples 2>/dev/null
      sleep 0.2; done ) &
    mon=$!
    pids= i=0
    while [ $i -lt "$N" ]; do (run t$i.topic o$i) > o$i.log 2>&1 & pids="$pids $!"; i=$((i + 1)); done
    sleep $((1 + $(rand 15)))
    k= t=
    for p in $pids; do
        case $(rand 4) in
        0) kill -KILL -"$p" 2>/dev/null && k="$k $p" ;;
        1) kill -TERM "$p" 2>/dev/null && t="$t $p" ;;
        esac
    done
    for p in $pids; do wait "$p" 2>/dev/null; done
    kills_k=$((kills_k + $(echo $k | wc -w))) kills_t=$((kills_t + $(echo $t | wc -w)))
    # resume every run to the end
    pids= i=0
    while [ $i -lt "$N" ]; do (run t$i.topic o$i) > r$i.log 2>&1 & pids="$pids $!"; i=$((i + 1)); done
    fail=0 i=0
    for p in $pids; do wait "$p" || { fail=$((fail + 1)); sed "s/^/  o$i: /" r$i.log | tail -n 3; }; i=$((i + 1)); done
    touch stop; wait $mon
    same=0 i=0
    while [ $i -lt "$N" ]; do cmp -s clean/final.mp4 o$i/final.mp4 && same=$((same + 1)); i=$((i + 1)); done
    tmps=$(find "$W" -name '.*.tmp-*' | wc -l)
    procs=$(pgrep -f "$W/tb/" | wc -l)
    over=$(awk -v L=$LIMIT '$1 > L' samples | wc -l)
    held=$("$W/tb/vram-probe" -q 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ledger"]))')
    ok=1
    [ $fail -eq 0 ] && [ $same -eq "$N" ] && [ "$tmps" -eq 0 ] && [ "$procs" -eq 0 ] && [ "$over" -eq 0 ] && [ "$held" = 0 ] || ok=0
    [ $ok -eq 1 ] || bad=$((bad + 1))
    printf 'round %d: killed -9 %s, SIGTERM %s; resumed: %d failed, %d/%d final.mp4 identical, %s temporaries, %s processes left, ledger %s entries, %s of %s samples over the card -- %s\n' \
        $round "$(echo $k | wc -w)" "$(echo $t | wc -w)" $fail $same "$N" "$tmps" "$procs" "$held" "$over" "$(wc -l < samples)" \
        "$([ $ok -eq 1 ] && echo ok || echo FAIL)"
done
echo "soak: $round rounds in $(( $(date +%s) - start )) s, $N pipelines each, $kills_k process groups SIGKILLed, $kills_t makes SIGTERMed, $bad failed rounds"
cd / && rm -rf "$W"
[ $bad -eq 0 ]
