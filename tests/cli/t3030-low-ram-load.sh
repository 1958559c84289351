#!/bin/sh
# Low-RAM loading: a 1 GiB synthetic safetensors file (64 tensors of 16 MiB,
# sparse, made in no time) "loaded" in beefy mode on the fake device keeps
# the peak RSS (VmHWM) under 128 MiB, because each tensor's mapped pages are
# dropped after its upload; the same load without dropping (the control)
# reaches the model size, so the measurement can fail. Then the block
# stream and the cpu path deliver every block's bytes in block order: their
# FNV-1a 64 equals one computed independently (Python) on a file written
# independently (Python, blocks stored out of order).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
RTL=$TESTBIN/helpers/rt_load
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
MIB=1048576
export ISOPIPE_FAKE_GPU=8192:8000

"$RTL" --synth 64:16777216 -o big.safetensors
check "1 GiB file, sparse" [ "$(stat -c %s big.safetensors)" -gt $((1024 * MIB)) ]
expect_exit "beefy load of 1 GiB on the fake device" 0 "$RTL" --memory-mode beefy -o big.json big.safetensors
rss=$(jget big.json 'd["memory"]["peak_rss"]')
echo "# peak RSS $((rss / MIB)) MiB (plan: $(($(jget big.json 'd["memory"]["plan"]["modes"]["beefy"]["host_rss"]') / MIB)) MiB)"
check "peak RSS $((rss / MIB)) MiB < 128 MiB" [ "$rss" -lt $((128 * MIB)) ]
check "peak VRAM = 1 GiB of weights" [ "$(jget big.json 'd["memory"]["peak_vram"]')" -ge $((1024 * MIB)) ]
check "load time recorded" python3 -c 'import json,sys; sys.exit(not json.load(open(sys.argv[1]))["memory"]["load_seconds"] > 0)' big.json
expect_exit "control: the same load keeping pages" 0 "$RTL" --memory-mode beefy --no-drop -o ctl.json big.safetensors
crss=$(jget ctl.json 'd["memory"]["peak_rss"]')
echo "# control peak RSS $((crss / MIB)) MiB"
check "control peak RSS $((crss / MIB)) MiB > 900 MiB" [ "$crss" -gt $((900 * MIB)) ]
rm -f big.safetensors

python3 - <<'PY'
import json, random, struct
random.seed(7)
blocks = {k: bytes(random.getrandbits(8) for _ in range(1000 + 37 * k)) for k in range(6)}
resident = bytes(random.getrandbits(8) for _ in range(500))
order = [3, 0, 5, 1, 4, 2]            # stored out of block order
hdr, data = {}, b""
hdr["embed.weight"] = {"dtype": "U8", "shape": [len(resident)], "data_offsets": [0, len(resident)]}
data += resident
for k in order:
    b = blocks[k]
    hdr["model.layers.%d.w" % k] = {"dtype": "U8", "shape": [len(b)], "data_offsets": [len(data), len(data) + len(b)]}
    data += b
h = json.dumps(hdr).encode()
open("small.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data)
x = 0xcbf29ce484222325
for k in range(6):
    for c in blocks[k]:
        x = ((x ^ c) * 0x100000001b3) & 0xffffffffffffffff
open("want.txt", "w").write("%016x\n" % x)
PY
ref=$(cat want.txt)
expect_exit "lightweight run over 6 streamed blocks" 0 "$RTL" --memory-mode lightweight -o lw.json small.safetensors
check "stream checksum = Python's ($ref)" [ "$(jget lw.json 'd["checksum"]')" = "$ref" ]
check "window of 2 blocks" [ "$(jget lw.json 'd["stream"]["window"]')" -eq $(( ((1000 + 37 * 5 + 255) / 256 * 256) * 2 )) ]
check "one miss, then every block prefetched" [ "$(jget lw.json 'd["stream"]["hits"]')" -eq 5 ]
expect_exit "cpu run" 0 "$RTL" --memory-mode cpu -o cpu.json small.safetensors
check "cpu checksum = Python's" [ "$(jget cpu.json 'd["checksum"]')" = "$ref" ]
check "report path is relative" [ "$(jget cpu.json 'd["model"]')" = small.safetensors ]
test_done
