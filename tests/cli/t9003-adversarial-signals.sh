#!/bin/sh
# adversarial (issue 11, items 4 and 5): SIGTERM/SIGINT/SIGHUP at random
# points make every tool exit 130 with no partial output and no temporary
# left (or exit 0 with the whole output when the signal came too late); the
# stage runner forwards the signal to its tool's process group, waits, and
# records the end; a tool whose runner is SIGKILLed stops itself
# (PR_SET_PDEATHSIG) before publishing. The random delays are printed so a
# failure can be replayed (ISOPIPE_SIG_SEED).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MK=$TESTBIN/helpers/mkkeyframes
for t in flow-extract segment-gen stitch vram-probe pipeline-report; do
    [ -x "$BIN/$t" ] || { skip "signals ($t not built)"; test_done; exit; }
done
[ -x "$MK" ] || { skip "signals (mkkeyframes helper not built)"; test_done; exit; }
seed=${ISOPIPE_SIG_SEED:-$$}
echo "# random delays from seed $seed"
n=0
delay() { awk -v s="$seed" -v n="$1" 'BEGIN { srand(s * 7919 + n); printf "%.2f", 0.02 + rand() * 1.2 }'; }

"$MK" --scene forest --width 640 --height 480 --count 2 -o kf || fail "mkkeyframes"
A=kf/forest_00.png B=kf/forest_01.png
"$BIN/flow-extract" -q --backward --threads 1 -o fl0 --pair $A $B || fail "flow-extract"
"$BIN/segment-gen" -q -m morph --threads 1 --start $A --end $B --flow fl0/flow_00000.flo --flow-back fl0/flow_bwd_00000.flo --frames 16 -o seg0 || fail "segment-gen"

# one run of a tool with a signal after a random delay; $1 label, $2 signal,
# $3 the output that must be whole or absent, then the command
signal_run() {
    label=$1 sig=$2 out=$3; shift 3
    n=$((n + 1)); d=$(delay $n)
    "$@" 2>err.txt &
    pid=$!
    sleep "$d"
    kill -"$sig" $pid 2>/dev/null
    wait $pid; rc=$?
    if [ $rc -eq 130 ]; then
        check "$label: SIG$sig after ${d}s: exit 130, no output" test ! -e "$out"
    elif [ $rc -gt 128 ] && [ ! -e "$out" ] && ! grep -q . err.txt; then
        # the signal came before main() could install its handler (the
        # sanitizers' start-up takes a while): killed by it, nothing written
        check "$label: SIG$sig after ${d}s, before main: killed by it, no output" test ! -e "$out"
    elif [ $rc -eq 0 ]; then
        check "$label: SIG$sig after ${d}s came too late: exit 0, whole output" test -s "$out"
    else
        fail "$label: SIG$sig after ${d}s: exit $rc (want 130, or 0 when it had finished)"; sed 's/^/    /' err.txt | head -n 3
    fi
    check "$label: no temporary left" sh -c '! find . -name ".*.tmp-*" | grep -q .'
    rm -rf fl seg v.mp4 fo
}
for sig in TERM INT HUP; do
    signal_run "flow-extract" $sig fl/flow.json "$BIN/flow-extract" -q --backward --preset accurate --threads 1 -o fl --pair $A $B
    signal_run "segment-gen" $sig seg/segment.json "$BIN/segment-gen" -q -m morph --threads 1 --start $A --end $B \
        --flow fl0/flow_00000.flo --flow-back fl0/flow_bwd_00000.flo --frames 24 -o seg
    signal_run "stitch" $sig v.mp4 "$BIN/stitch" -q --threads 1 --preset ultrafast --overlap 1 --frames-out fo -o v.mp4 seg0 seg0 seg0
    check "stitch: no --frames-out after a signal unless it finished" sh -c 'test ! -e fo || test -s fo/frames.json'
    rm -rf fo
done
M=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$M" ] && [ -x "$BIN/prompt-expand" ]; then
    printf 'topic: a slow walk through a pine forest at dawn\n' > p.topic
    signal_run "prompt-expand" TERM sc.json "$BIN/prompt-expand" -q -m "$M" --memory-mode cpu --segments 3 -o sc.json p.topic
else
    skip "prompt-expand under a signal (no model; make models)"
fi
# vram-probe waiting for a baseline that never comes back (pretend device)
ISOPIPE_FAKE_GPU=1000:200 "$BIN/vram-probe" -q --wait-baseline 900 --timeout 60 >/dev/null 2>&1 &
pid=$!; sleep 0.5; kill -TERM $pid; wait $pid
check "vram-probe --wait-baseline: SIGTERM gives 130 at once" test $? -eq 130

# the runner: forwards to the tool's group, waits, records the end
cat > slowtool <<'S'
#!/bin/sh
# a stage tool that takes its time and says which signal it got
trap 'echo TERM > "$OUTD/got"; exit 130' TERM
trap 'echo INT > "$OUTD/got"; exit 130' INT
echo $$ > "$OUTD/pid"
i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
echo done > "$OUTD/published"
S
chmod +x slowtool
export OUTD=$T
run_runner() { "$BIN/pipeline-report" -q run --dir d --name st --kind x -- "$T/slowtool" & }
for sig in TERM INT; do
    rm -f got pid published; rm -rf d
    run_runner; rpid=$!
    i=0; while [ ! -s pid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    kill -$sig $rpid; wait $rpid; rc=$?
    check "runner: SIG$sig: exit 130" test $rc -eq 130
    check "runner: SIG$sig reached the tool once" sh -c "[ \"\$(cat got 2>/dev/null)\" = $sig ]"
    check "runner: the tool is gone when the runner returns" sh -c "! kill -0 \$(cat pid) 2>/dev/null"
    check "runner: run.log records the end" grep -q "end st exit=130" d/run.log
    check "runner: the record names the signal" grep -q '"signal"' d/records/st.json
done
# SIGKILL of the runner: the kernel tells the tool (PR_SET_PDEATHSIG), which stops unpublished
rm -f got pid published; rm -rf d
run_runner; rpid=$!
i=0; while [ ! -s pid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -KILL $rpid; wait $rpid 2>/dev/null
# up to 10 s: under load (CI beside other jobs) the kernel's SIGTERM can take a while to be handled
i=0; while [ ! -s got ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
check "runner SIGKILLed: its tool got SIGTERM" sh -c '[ "$(cat got 2>/dev/null)" = TERM ]'
check "runner SIGKILLed: the tool published nothing" test ! -e published
tp=$(cat pid 2>/dev/null); [ -n "$tp" ] && kill -KILL "$tp" 2>/dev/null

# SIGTERM to make itself during the prompt stage: make passes it to the
# runner, the runner to prompt-expand; nothing is published, the end is recorded
if [ -f "$M" ] && [ -x "$BIN/prompt-expand" ] && [ -x "$TESTBIN/helpers/mkkeyframes" ]; then
    "$MK" --scene forest --width 48 --height 32 --count 2 -o mkf || fail "mkkeyframes"
    printf 'topic: a long slow walk through a pine forest
keyframes: mkf/forest_00.png mkf/forest_01.png
frames: 4
' > m.topic
    ( unset MAKEFLAGS MFLAGS MAKELEVEL; exec make -s --no-print-directory -C "$ROOT" pipeline SANITIZE="${ISOPIPE_SANITIZE:-}" \
        CUDA=0 TRAVEL_BIN="$BIN" TRAVEL_MODE=cpu TOPIC="$T/m.topic" OUT="$T/mo" ) >make.out 2>&1 &
    mpid=$!
    i=0; while ! grep -q ' start prompt$' mo/.travel/run.log 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 0.5
    kill -TERM $mpid; wait $mpid
    i=0; while ! grep -q 'end prompt exit=' mo/.travel/run.log 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    check "make SIGTERMed: the runner recorded the prompt stage's end (130)" grep -q 'end prompt exit=130' mo/.travel/run.log
    check "make SIGTERMed: no prompt-expand left running for this run" sh -c "! pgrep -f 'prompt-expand.*[m]o/scenes.json' >/dev/null"
    check "make SIGTERMed: scenes.json was not published" test ! -e mo/scenes.json
    check "make SIGTERMed: no temporary left" sh -c '! find mo -name ".*.tmp-*" | grep -q .'
else
    skip "SIGTERM to make (no model; make models)"
fi
test_done
