#!/bin/sh
# Admission across processes on the fake device: --wait-vram 2 with no room
# exits 75 after about 2 s; of two processes where only one fits the second
# waits, then runs (never both loaded at once); a kill -9'ed holder's
# reservation is reclaimed at once; four at once over one device queue
# (xargs -P4, as `parallel -j4` would) and all succeed, one at a time.
# Overlap is judged from the checkpoints' CLOCK_MONOTONIC times, which all
# processes share: [before load, reported_at] of two runs must not overlap.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
RTL=$TESTBIN/helpers/rt_load
P=$BIN/vram-probe
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
secs() { python3 -c 'import time; print(time.monotonic())'; }
# beefy peak 2 MiB, lightweight 1.5 MiB (see t3010)
"$RTL" --synth 4:262144 --resident 1047296 -o m.safetensors
export ISOPIPE_FAKE_GPU=4096:3

# loaded = some ledger entry reports use
wait_loaded() {
    i=0; while [ $i -lt 100 ]; do
        "$P" -o p.json 2>/dev/null && [ "$(jget p.json 'sum(e["used"] for e in d["ledger"])')" -gt 0 ] && return 0
        sleep 0.1; i=$((i + 1))
    done; return 1
}

ISOPIPE_FAKE_GPU=4096:1 ; export ISOPIPE_FAKE_GPU
t0=$(secs)
expect_exit "--wait-vram 2 with no room: 75" 75 "$RTL" --wait-vram 2 m.safetensors
el=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$t0" "$(secs)")
check "  after about 2 s ($el s)" python3 -c "import sys; sys.exit(not 1.9 <= float(sys.argv[1]) < 6)" "$el"
check "  message says it waited" stderr_has "no room after waiting 2"
check "  and gives need and free" stderr_has "needs 1.5 MiB of VRAM, 1.0 MiB usable (free 1.0 MiB"
check "  end checkpoint on the error path" stderr_has "end: Process="

export ISOPIPE_FAKE_GPU=4096:3
"$RTL" --hold 3.5 -o a.json m.safetensors 2>a.err &
a=$!
check "first process loaded" wait_loaded
expect_exit "second process waits, then runs" 0 "$RTL" --wait-vram 20 -o b.json m.safetensors
wait $a; check "first process succeeded" [ $? -eq 0 ]
check "  second waited (polled more than once)" python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["memory"]["admission"]; sys.exit(a["waited_seconds"] < 0.2 or a["attempts"] < 2)' b.json
check "  second did not load before the first cleaned up" python3 -c '
import json, sys
cp = lambda f, l: [c["time"] for c in json.load(open(f))["memory"]["checkpoints"] if c["label"] == l][0]
sys.exit(not cp(sys.argv[2], "before load") > json.load(open(sys.argv[1]))["memory"]["reported_at"])' a.json b.json
check "  both beefy" [ "$(jget a.json 'd["memory"]["mode"]')$(jget b.json 'd["memory"]["mode"]')" = beefybeefy ]

"$RTL" --hold 60 -o k.json m.safetensors 2>k.err &
k=$!
check "holder loaded" wait_loaded
kill -9 $k; wait $k 2>/dev/null
t0=$(secs)
expect_exit "a kill -9'ed holder's reservation is reclaimed" 0 "$RTL" --wait-vram 10 -o c.json m.safetensors
check "  without waiting" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["memory"]["admission"]["waited_seconds"] > 0.5)' c.json
check "  no output from the killed one" [ ! -e k.json ]

# four at once, room for one: they queue and all succeed
seq 1 4 | xargs -P4 -I{} sh -c '"$0" --hold 0.3 --wait-vram 30 -o q{}.json m.safetensors 2>q{}.err' "$RTL"
check "four queued runs all succeeded" [ -e q1.json ] && [ -e q2.json ] && [ -e q3.json ] && [ -e q4.json ]
check "  never two loaded at once" python3 -c '
import json, sys
iv = []
for f in sys.argv[1:]:
    m = json.load(open(f))["memory"]
    cps = {c["label"]: c["time"] for c in m["checkpoints"]}
    iv.append((cps["before load"], m["reported_at"]))
iv.sort()
sys.exit(any(iv[i + 1][0] < iv[i][1] for i in range(len(iv) - 1)))' q1.json q2.json q3.json q4.json
check "ledger empty at the end" [ "$("$P" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ledger"]))')" -eq 0 ]
test_done
