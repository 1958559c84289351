#!/bin/sh
# vram-probe: JSON without a device and on the fake device (free/total in
# bytes, the ledger's live holders), malformed ISOPIPE_FAKE_GPU (64),
# --wait-baseline met (0) and timing out (75) after about --timeout seconds.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
P=$BIN/vram-probe
RTL=$TESTBIN/helpers/rt_load
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

expect_exit "--help" 0 "$P" --help
unset ISOPIPE_FAKE_GPU
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    skip "no-GPU discovery (this machine has a GPU)"
else
    # a CUDA build says so at the default level, a CPU-only build only with -v
    expect_exit "no GPU: CPU mode" 0 "$P" -v -o none.json
    check "backend none" [ "$(jget none.json 'd["device"]["backend"]')" = none ]
    check "one line says CPU mode" [ "$(grep -c 'CPU mode' "$T/.err")" -eq 1 ]
fi

export ISOPIPE_FAKE_GPU=8192:6000
expect_exit "fake device" 0 "$P" -o fake.json
check "fake total" [ "$(jget fake.json 'd["device"]["total"]')" -eq $((8192 * 1048576)) ]
check "fake free" [ "$(jget fake.json 'd["device"]["free"]')" -eq $((6000 * 1048576)) ]
check "fake ledger empty" [ "$(jget fake.json 'len(d["ledger"])')" -eq 0 ]
check "json header" [ "$(jget fake.json 'd["tool"]')" = vram-probe ]

# a holder on the fake device: its use shows in free VRAM and in the ledger
"$RTL" --synth 4:1048576 -o m.safetensors
"$RTL" --hold 30 --memory-mode beefy -o hold.json m.safetensors 2>hold.err &
h=$!
# loaded = its ledger entry reports use
i=0; while [ $i -lt 100 ]; do
    "$P" -o p.json 2>/dev/null && [ "$(jget p.json 'sum(e["used"] for e in d["ledger"])')" -gt 0 ] && break
    sleep 0.1; i=$((i + 1))
done
expect_exit "probe beside a holder" 0 "$P" -o held.json
check "holder in the ledger" [ "$(jget held.json 'd["ledger"][0]["pid"]')" -eq $h ]
# 4 tensors of 1 MiB + 256 bytes of alignment slack each
check "holder's 4 MiB are not free" [ "$(jget held.json 'd["device"]["free"]')" -eq $(((6000 - 4) * 1048576 - 1024)) ]
expect_exit "baseline not back while held" 75 "$P" --wait-baseline 6000 --tolerance 1 --timeout 0.3
# killed, not ended: the next reader drops its entry (pid gone)
kill $h; wait $h 2>/dev/null
expect_exit "baseline back after the holder ends" 0 "$P" --wait-baseline 6000 --tolerance 0 --timeout 2

export ISOPIPE_FAKE_GPU=8192:6000
expect_exit "baseline within tolerance" 0 "$P" --wait-baseline 6050 --tolerance 64 --timeout 1
start=$(date +%s.%N)
expect_exit "baseline never reached" 75 "$P" --wait-baseline 7000 --timeout 1
el=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
check "gave up after about 1 s ($el s)" python3 -c "import sys; sys.exit(not 0.9 <= float(sys.argv[1]) < 4)" "$el"
check "message names free and baseline" stderr_has "did not come back to the baseline 7000.0 MiB"

for bad in x 100 100: 100:200 0:0 -5:1; do
    ISOPIPE_FAKE_GPU=$bad expect_exit "ISOPIPE_FAKE_GPU=$bad refused" 64 "$P"
done
expect_exit "bad option" 64 "$P" --wait-baseline lots
test_done
