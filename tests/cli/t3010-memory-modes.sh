#!/bin/sh
# Memory modes on the fake device with synthetic safetensors headers: the
# plan's numbers (worked out by hand below), auto picking beefy, lightweight
# or nothing exactly at each threshold (one byte either side), the reserve,
# explicit modes obeyed or refused (75 when there is no room now, 69 when the mode can never run here), no GPU, --plan reserving nothing.
#
# File: 4 blocks "blocks.K.weight" of 262144 bytes + one resident tensor of R
# bytes; 5 tensors -> 1280 bytes of alignment slack. Then
#   beefy peak       = R + 4*262144 + 1280 = R + 1049856
#   lightweight peak = R + 2*262144 + 1280 = R + 525568
# and with 2 MiB (2097152 bytes) free: beefy fits up to R = 1047296,
# lightweight up to R = 1571584.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
RTL=$TESTBIN/helpers/rt_load
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
mk() { "$RTL" --synth 4:262144 --resident "$1" -o "m$1.safetensors"; }
for r in 1047296 1047297 1571584 1571585; do mk $r; done

export ISOPIPE_FAKE_GPU=4096:2
expect_exit "--plan" 0 "$RTL" --plan m1047296.safetensors
cp "$T/.out" plan.json
check "plan: beefy peak" [ "$(jget plan.json 'd["modes"]["beefy"]["vram_peak"]')" -eq 2097152 ]
check "plan: lightweight peak" [ "$(jget plan.json 'd["modes"]["lightweight"]["vram_peak"]')" -eq $((1047296 + 525568)) ]
check "plan: lightweight pins all blocks" [ "$(jget plan.json 'd["modes"]["lightweight"]["pinned_host"]')" -eq 1048576 ]
check "plan: cpu needs no VRAM" [ "$(jget plan.json 'd["modes"]["cpu"]["vram_peak"]')" -eq 0 ]
check "plan: 4 blocks of 262144" [ "$(jget plan.json 'd["blocks"]["n_blocks"], d["blocks"]["block_bytes"]')" = "(4, 262144)" ]
check "plan: auto would pick beefy" [ "$(jget plan.json 'd["auto_pick"]')" = beefy ]
check "plan: device seen" [ "$(jget plan.json 'd["device"]["free"]')" -eq 2097152 ]
check "--plan reserves nothing" [ -z "$(cat "$ISOPIPE_LEDGER_DIR"/fake.ledger 2>/dev/null)" ]

mode_of() { jget "$1" 'd["memory"]["mode"]'; }
expect_exit "beefy exactly at its threshold" 0 "$RTL" -o a.json m1047296.safetensors
check "  -> beefy" [ "$(mode_of a.json)" = beefy ]
expect_exit "one byte over: lightweight" 0 "$RTL" -o b.json m1047297.safetensors
check "  -> lightweight" [ "$(mode_of b.json)" = lightweight ]
expect_exit "lightweight exactly at its threshold" 0 "$RTL" -o c.json m1571584.safetensors
check "  -> lightweight" [ "$(mode_of c.json)" = lightweight ]
expect_exit "one byte over: no room, exit 75" 75 "$RTL" -o d.json m1571585.safetensors
check "  message gives need and usable" stderr_has "lightweight mode needs 2.0 MiB of VRAM, 2.0 MiB usable (free 2.0 MiB"
check "  no output on failure" [ ! -e d.json ]
expect_exit "--plan when nothing fits still exits 0" 0 "$RTL" --plan m1571585.safetensors
check "  auto_pick is null" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["auto_pick"] is not None or "needs" not in d["auto_reason"])' "$T/.out"

export ISOPIPE_FAKE_GPU=4096:3
expect_exit "reserve 1 MiB of 3: beefy at the threshold" 0 "$RTL" --vram-reserve 1 -o e.json m1047296.safetensors
check "  -> beefy" [ "$(mode_of e.json)" = beefy ]
expect_exit "reserve 1 MiB of 3: one byte over" 0 "$RTL" --vram-reserve 1 -o f.json m1047297.safetensors
check "  -> lightweight" [ "$(mode_of f.json)" = lightweight ]
expect_exit "reserve 1 MiB of 3: lightweight one byte over" 75 "$RTL" --vram-reserve 1 m1571585.safetensors
check "  message names the reserve" stderr_has "reserve 1.0 MiB"

export ISOPIPE_FAKE_GPU=4096:2
expect_exit "explicit lightweight is obeyed when beefy fits" 0 "$RTL" --memory-mode lightweight -o g.json m1047296.safetensors
check "  -> lightweight" [ "$(mode_of g.json)" = lightweight ]
check "  requested recorded" [ "$(jget g.json 'd["memory"]["requested"]')" = lightweight ]
expect_exit "explicit beefy without room is refused, not changed" 75 "$RTL" --memory-mode beefy -o h.json m1047297.safetensors
check "  message names beefy" stderr_has "beefy mode needs"
check "  no output" [ ! -e h.json ]
expect_exit "explicit cpu" 0 "$RTL" --memory-mode cpu -o i.json m1571585.safetensors
check "  -> cpu" [ "$(mode_of i.json)" = cpu ]

unset ISOPIPE_FAKE_GPU
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    skip "no-GPU modes (this machine has a GPU)"; skip "no-GPU modes"
else
    expect_exit "no GPU: auto runs on the CPU" 0 "$RTL" -o j.json m1571585.safetensors
    check "  -> cpu" [ "$(mode_of j.json)" = cpu ]
    expect_exit "no GPU: explicit beefy can never run here: 69, not 75" 69 "$RTL" --memory-mode beefy m1047296.safetensors
    check "  says why" stderr_has "needs a GPU"
fi
expect_exit "bad mode is a usage error" 64 "$RTL" --memory-mode huge m1047296.safetensors
check "ledger empty after all runs" [ -z "$(cat "$ISOPIPE_LEDGER_DIR"/fake.ledger 2>/dev/null)" ]
test_done
