#!/bin/sh
# adversarial (issue 11, item 7): eight `make pipeline`s at once on one
# pretend card (ISOPIPE_FAKE_GPU, room for one beefy LLM at a time): the
# pretend device drives planning, admission and the report as a card would
# (GPU modes compute on the CPU), so the runs queue in the ledger, the
# ledger's reservations never exceed the card (sampled with vram-probe
# while they run), and all eight finish with final.mp4 byte-identical to a
# clean serial run without any GPU. ISOPIPE_FAKE_RUNS changes the count (3
# under the sanitizers).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MK=$TESTBIN/helpers/mkkeyframes
need=
for t in pipeline-report prompt-expand flow-extract segment-gen stitch vram-probe; do [ -x "$BIN/$t" ] || need="$need $t"; done
[ -x "$MK" ] || need="$need mkkeyframes(helper)"
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$MODEL" ] || need="$need $MODEL(make models)"
if [ -n "$need" ]; then skip "pretend-GPU concurrency (not built or missing:$need)"; test_done; exit; fi
N=${ISOPIPE_FAKE_RUNS:-8}
# under ASan+UBSan each LLM run is several times slower: three show the queue as well
[ -n "${ISOPIPE_SANITIZE:-}" ] && N=${ISOPIPE_FAKE_RUNS:-3}
mkdir tb && for t in pipeline-report prompt-expand flow-extract segment-gen stitch vram-probe; do cp -p "$BIN/$t" tb/; done
BIN=$T/tb
unset MAKEFLAGS MFLAGS MAKELEVEL ISOPIPE_FAKE_GPU
travel_make() {
    make -s --no-print-directory -C "$ROOT" pipeline SANITIZE="${ISOPIPE_SANITIZE:-}" CUDA=0 TRAVEL_BIN="$BIN" \
        TRAVEL_X264_PRESET=ultrafast TRAVEL_THREADS=1 TRAVEL_WAIT_VRAM=900 TRAVEL_BASELINE_TIMEOUT=2 "$@"
}
"$MK" --scene harbor --width 48 --height 32 --count 2 --step 4 -o kf || fail "mkkeyframes"
i=0
while [ $i -lt $N ]; do
    printf 'topic: boat number %d drifting past a harbour\nkeyframes: kf/harbor_00.png kf/harbor_01.png\nframes: 4\nfps: 8\n' $i > t$i.topic
    i=$((i + 1))
done
# the clean run: no GPU at all
expect_exit "clean run without a GPU" 0 travel_make TOPIC="$T/t0.topic" OUT="$T/clean" TRAVEL_MODE=cpu

# the pretend card: 150 MiB free, the LLM's beefy plan is about 116 MiB and
# lightweight about 57 MiB, so two LLMs never fit at once
export ISOPIPE_FAKE_GPU=1000:150
LIMIT=$((150 * 1048576))
: > samples
( while [ ! -e stop ]; do "$BIN/vram-probe" -q 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(e["reserved"] for e in d["ledger"]), len(d["ledger"]))' >> samples 2>/dev/null; sleep 0.1; done ) &
mon=$!
i=0; pids=
while [ $i -lt $N ]; do
    travel_make TOPIC="$T/t$i.topic" OUT="$T/o$i" > o$i.log 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
done
bad=0
for p in $pids; do wait $p || bad=$((bad + 1)); done
touch stop; wait $mon
check "all $N pipelines on one pretend card finished" test $bad -eq 0
[ $bad -eq 0 ] || for f in o*.log; do sed "s|^|    $f: |" $f | tail -n 3; done
same=0; i=0
while [ $i -lt $N ]; do cmp -s clean/final.mp4 o$i/final.mp4 && same=$((same + 1)); i=$((i + 1)); done
check "every final.mp4 is byte-identical to the clean run ($same of $N)" test $same -eq $N
check "the monitor sampled the ledger while they ran ($(wc -l < samples) samples)" test "$(wc -l < samples)" -gt 5
over=$(awk -v L=$LIMIT '$1 > L' samples | wc -l)
check "the ledger never reserved more than the card (max $(sort -n samples | tail -n 1 | cut -d' ' -f1) of $LIMIT)" test "$over" -eq 0
# the prompt stages ran in a GPU mode on the pretend card and some of them queued
python3 - "$N" > adm.txt <<'P'
import json, sys
n = int(sys.argv[1]); modes = []; waited = 0
for i in range(n):
    m = json.load(open("o%d/scenes.json" % i))["memory"]
    modes.append(m["mode"]); waited += m["admission"]["waited_seconds"] > 0.05
print(" ".join(sorted(set(modes))), waited)
P
check "prompt stages ran in GPU modes on the pretend card ($(cut -d' ' -f1-2 adm.txt))" sh -c "! grep -q cpu adm.txt"
check "some prompt stages waited for room ($(awk '{print $NF}' adm.txt) of $N)" test "$(awk '{print $NF}' adm.txt)" -ge 1
check "the report says the pretend device" grep -q '"fake"' o0/scenes.json
check "no temporaries left" sh -c '! find . -name ".*.tmp-*" | grep -q .'
check "the ledger is empty again" sh -c "\"$BIN/vram-probe\" -q | python3 -c 'import json,sys; sys.exit(len(json.load(sys.stdin)[\"ledger\"]))'"
test_done
