#!/bin/sh
# The error path: a run that fails after admission or after loading exits
# with its status, logs the "end" checkpoint (stderr and --log-json), leaves
# no ledger reservation and no output; missing and malformed files too.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
RTL=$TESTBIN/helpers/rt_load
P=$BIN/vram-probe
export ISOPIPE_FAKE_GPU=4096:1000
ledger_n() { "$P" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ledger"]))'; }
labels() { python3 -c '
import json, sys
print(" ".join(e["label"] for e in map(json.loads, open(sys.argv[1])) if e.get("event") == "checkpoint"))' "$1"; }

"$RTL" --synth 8:65536 --resident 4096 -o m.safetensors
for where in after-admit after-load; do
    rm -f ev.jsonl
    expect_exit "--fail $where: exit 74" 74 "$RTL" --fail "$where" --log-json ev.jsonl -o out.json m.safetensors
    check "  end checkpoint on stderr" stderr_has "\[RAM\] end: Process="
    check "  error message" stderr_has "failing after .*(--fail)"
    check "  no output" [ ! -e out.json ]
    check "  no reservation left" [ "$(ledger_n)" -eq 0 ]
    case $where in
        after-admit) w="start end" ;;
        after-load) w="start before load after load end" ;;
    esac
    check "  checkpoints in the JSON log: $w" [ "$(labels ev.jsonl)" = "$w" ]
done
expect_exit "missing model: 66" 66 "$RTL" -o out.json nope.safetensors
check "  names the file" stderr_has "nope.safetensors"
check "  end checkpoint" stderr_has "\[RAM\] end:"
printf 'garbage!' > bad.safetensors
expect_exit "malformed model: 65" 65 "$RTL" -o out.json bad.safetensors
check "  says what is wrong" stderr_has "bad.safetensors"
check "  no reservation left" [ "$(ledger_n)" -eq 0 ]
test_done
