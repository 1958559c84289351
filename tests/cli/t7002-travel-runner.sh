#!/bin/sh
# travel driver's stage runner (pipeline-report run) and report, with stand-in
# tools so every branch is exercised without a GPU: exit 75 in auto/beefy
# mode retried once in lightweight mode, no retry for explicit lightweight or
# cpu, any other failure passed through unchanged with the stage's message;
# the VRAM check through a stand-in vram-probe (baseline before the stage,
# --wait-baseline after it, only when the stage's JSON says it used the GPU);
# the record and run.log; report.json + memory.png from the records.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
PR=$BIN/pipeline-report
if [ ! -x "$PR" ]; then skip "runner tests (bin/pipeline-report not built)"; test_done; exit; fi

# a tool that exits $FAKE_RC_<mode> for --memory-mode <mode> and otherwise
# writes a JSON output with a memory object saying which mode it ran in
cat > tool <<'S'
#!/bin/sh
out= mode=
while [ $# -gt 0 ]; do
    case "$1" in -o) out=$2; shift ;; --memory-mode) mode=$2; shift ;; esac; shift
done
echo "$mode" >> "$(dirname "$0")/modes.log"
eval "rc=\${FAKE_RC_$mode:-0}"
if [ "$rc" -ne 0 ]; then echo "tool: fake failure in $mode mode" >&2; exit "$rc"; fi
used=$mode; [ "$mode" = auto ] && used=${FAKE_AUTO_PICK:-cpu}
printf '{"tool": "tool", "model": "fake", "memory": {"mode": "%s", "peak_rss": 5000000, "peak_vram": %s, "plan": {"modes": {"%s": {"host_rss": 6000000, "vram_peak": 300000000}}}}}\n' \
    "$used" "${FAKE_VRAM:-0}" "$used" > "$out.tmp" && mv "$out.tmp" "$out"
S
# a vram-probe: device free from $T/free (MiB), args logged
cat > probe <<'S'
#!/bin/sh
echo "$*" >> "$(dirname "$0")/probe.log"
free=$(cat "$(dirname "$0")/free")
printf '{"device": {"free": %s, "total": %s}}\n' "$((free * 1048576))" "$((8192 * 1048576))"
S
chmod +x tool probe
echo 4096 > free
run() { # name, mode, then runner args
    n=$1 m=$2; shift 2
    "$PR" -q run --dir rd --name "$n" --kind segment --json "o_$n.json" --memory-mode "$m" "$@" -- ./tool -o "o_$n.json"
}
jq_() { "${PY:-/usr/bin/python3}" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
PY=; for p in /usr/bin/python3 python3; do command -v $p >/dev/null 2>&1 && { PY=$p; break; }; done
[ -n "$PY" ] || { skip "runner tests (python3 not found for reading JSON)"; test_done; exit; }

export FAKE_RC_auto=75
: > modes.log
expect_exit "75 in auto mode, then lightweight succeeds" 0 run s1 auto
check "tried auto then lightweight" test "$(tr '\n' ' ' < modes.log)" = "auto lightweight "
check "record: one retry, exit 0" test "$(jq_ rd/records/s1.json 'd["retries"], d["exit_code"]')" = "(1, 0)"
check "record: attempts with their modes and codes" test "$(jq_ rd/records/s1.json '[(a["mode"], a["exit_code"]) for a in d["attempts"]]')" = "[('auto', 75), ('lightweight', 0)]"
check "record: the command" test "$(jq_ rd/records/s1.json 'd["argv"]')" = "['./tool', '-o', 'o_s1.json']"
check "run.log: start and end" sh -c 'grep -q " start s1$" rd/run.log && grep -q " end s1 exit=0 " rd/run.log'

export FAKE_RC_beefy=75 FAKE_RC_lightweight=75
: > modes.log
expect_exit "75 in beefy, 75 again in lightweight: the run stops with 75" 75 run s2 beefy
check "tried beefy then lightweight, no third try" test "$(tr '\n' ' ' < modes.log)" = "beefy lightweight "
check "the stage's own message is shown" stderr_has "fake failure in lightweight mode"
check "the runner says the run stops" stderr_has "stage 's2' failed with exit 75"
check "no output left" test ! -e o_s2.json
: > modes.log
expect_exit "75 in explicit lightweight mode: no retry" 75 run s3 lightweight
check "one attempt only" test "$(cat modes.log)" = lightweight
unset FAKE_RC_auto FAKE_RC_beefy FAKE_RC_lightweight
export FAKE_RC_cpu=69
: > modes.log
expect_exit "69 passes through, no retry" 69 run s4 cpu
check "69: message says model unavailable" stderr_has "exit 69 (model unavailable)"
check "record of a failed stage" test "$(jq_ rd/records/s4.json 'd["exit_code"], d["retries"]')" = "(69, 0)"
unset FAKE_RC_cpu

# VRAM check: without a probe, the record says no GPU
expect_exit "no probe" 0 run s5 auto
check "no probe: record says no GPU" sh -c "$PY -c \"import json; v=json.load(open('rd/records/s5.json'))['vram']; assert v['device'] is False and 'no GPU' in v['note']\""
# with a probe and a stage on the CPU: baseline taken, no wait
: > probe.log
expect_exit "probe, CPU stage" 0 run s6 auto --probe ./probe
check "CPU stage: probe asked once, no --wait-baseline" test "$(cat probe.log | wc -l)" -eq 1 -a -z "$(grep wait probe.log)"
# with a probe and a GPU stage: --wait-baseline with the pre-stage figure
: > probe.log
FAKE_AUTO_PICK=beefy FAKE_VRAM=250000000 run s7 auto --probe ./probe --baseline-timeout 5
check "GPU stage: waits for the baseline in MiB" grep -qx -- "-q --wait-baseline 4096 --timeout 5" probe.log
check "GPU stage: record has baseline and after" test "$(jq_ rd/records/s7.json 'd["vram"]["baseline_free"]//1048576, d["vram"]["after_free"]//1048576, d["vram"]["returned"]')" = "(4096, 4096, True)"

# temporaries of a dead process (what kill -9 leaves) are swept before the
# stage runs; a live process's are kept
mkdir sw
sh -c 'exit 0' & dead=$!; wait $dead
mkdir "sw/.seg_000.tmp-$dead-0badc0de" && touch "sw/.seg_000.tmp-$dead-0badc0de/frame_00000.png"
touch "sw/.scenes.json.tmp-$dead-12345678" "sw/.final.mp4.tmp-$$-12345678" sw/keep.tmp-1-12345678
expect_exit "run with --sweep" 0 run s8 cpu --sweep sw
check "sweep: a dead process's directory and file removed" test ! -e "sw/.seg_000.tmp-$dead-0badc0de" -a ! -e "sw/.scenes.json.tmp-$dead-12345678"
check "sweep: a live process's temporary and other files kept" test -e "sw/.final.mp4.tmp-$$-12345678" -a -e sw/keep.tmp-1-12345678

# report over the records: every stage, totals, reclaimed bytes, the chart
expect_exit "report" 0 "$PR" -q report --dir rd --png mem.png -o report.json s1=o_s1.json s6=o_s6.json s7=o_s7.json
check "report: three stages in order" test "$(jq_ report.json '[s["name"] for s in d["stages"]]')" = "['s1', 's6', 's7']"
check "report: retries and exit codes" test "$(jq_ report.json '[(s["retries"], s["exit_code"]) for s in d["stages"]]')" = "[(1, 0), (0, 0), (0, 0)]"
check "report: plan vs measured" test "$(jq_ report.json 'd["stages"][2]["plan"]["vram"], d["stages"][2]["measured"]["vram"], d["stages"][0]["plan"]["ram"]')" = "(300000000, 250000000, 6000000)"
check "report: reclaimed VRAM of the GPU stage" test "$(jq_ report.json 'd["stages"][2]["reclaimed_vram"]["bytes"], d["totals"]["reclaimed_vram"]["bytes"]')" = "(250000000, 250000000)"
check "report: CPU stage says why there is no VRAM figure" test "$(jq_ report.json 'd["stages"][1]["reclaimed_vram"]')" = "stage ran on the CPU; no check"
check "report: totals" test "$(jq_ report.json 'd["totals"]["stages"], d["totals"]["retries"], d["totals"]["peak_rss"]')" = "(3, 1, 5000000)"
check "report: paths relative to the report" test "$(jq_ report.json 'd["stages"][0]["output"]')" = "o_s1.json"
check "memory.png is a PNG" sh -c 'head -c 8 mem.png | od -An -c | grep -q "P   N   G"'
expect_exit "report on a missing stage output" 66 "$PR" -q report -o r2.json s1=o_s1.json nope=nope.json
check "report: names the stage" stderr_has "stage 'nope'"
check "report: nothing written" test ! -e r2.json
test_done
