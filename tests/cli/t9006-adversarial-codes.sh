#!/bin/sh
# adversarial (issue 11, item 9): the right exit code and a message that
# names what went wrong -- a PNG decompression bomb that does not fit in
# memory is 75 with its sizes; NaN/negative GGUF hyperparameters are 65
# naming file and key; an unknown --codec is 64 with no libav noise; a full
# disk while writing memory.png names memory.png; `-o ''` is 64 before any
# work; report.json's elapsed time covers its serial stages.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MK=$TESTBIN/helpers/mkkeyframes
GEN=$TESTBIN/helpers/stitch_gen
for t in flow-extract prompt-expand stitch pipeline-report segment-gen; do
    [ -x "$BIN/$t" ] || { skip "codes ($t not built)"; test_done; exit; }
done
command -v python3 >/dev/null 2>&1 || { skip "codes (python3 missing)"; test_done; exit; }

# a 65535x65535 RGB PNG of a few hundred bytes (12 GiB decoded) under a 2 GiB address-space limit
python3 - <<'P'
import struct, zlib
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
w = h = 65535
row = b'\0' + b'\0' * (w * 3)
idat = zlib.compress(row * 4, 9)       # a few rows only: the decoder allocates first
open('bomb.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                             + chunk(b'IDAT', idat) + chunk(b'IEND', b''))
P
if [ -n "${ISOPIPE_SANITIZE:-}" ]; then
    skip "decompression bomb under ulimit -v (sanitizers reserve terabytes of address space)"
else
    expect_exit "a PNG bomb that does not fit: 75" 75 sh -c "ulimit -v 2000000; exec '$BIN/flow-extract' -q -o fl --pair bomb.png bomb.png"
    check "  ... with its sizes" stderr_has "65535x65535"
    check "  ... in one line" test "$(grep -c . "$T/.err")" -eq 1
fi

# GGUF hyperparameters: NaN, negative, zero, infinite
for v in nan -1e-5 0 inf; do
    python3 - "$v" <<'P'
import struct, sys
v = float(sys.argv[1])
def s(x): b = x.encode(); return struct.pack('<Q', len(b)) + b
kv = [(b'general.architecture', 8, s('llama')), (b'llama.embedding_length', 4, struct.pack('<I', 64)),
      (b'llama.block_count', 4, struct.pack('<I', 1)), (b'llama.feed_forward_length', 4, struct.pack('<I', 128)),
      (b'llama.attention.head_count', 4, struct.pack('<I', 4)),
      (b'llama.attention.layer_norm_rms_epsilon', 6, struct.pack('<f', v))]
out = b'GGUF' + struct.pack('<IQQ', 3, 0, len(kv))
for k, t, val in kv: out += struct.pack('<Q', len(k)) + k + struct.pack('<I', t) + val
open('hp.gguf', 'wb').write(out)
P
    printf 'topic: x\n' > p.topic
    expect_exit "GGUF rms epsilon $v: 65" 65 "$BIN/prompt-expand" -q -m "$T/hp.gguf" --segments 1 -o sc.json p.topic
    check "  ... names the file and the key" sh -c "grep -q \"hp.gguf'.*llama.attention.layer_norm_rms_epsilon\" '$T/.err'"
done

# stitch --codec
$GEN s0 32 32 4 1 || fail "stitch_gen"
expect_exit "unknown --codec: 64" 64 "$BIN/stitch" --codec nosuchcodec -o v.mp4 s0
check "  ... the message is ours, no libav noise" sh -c "! grep -qiE '@ 0x|Unknown encoder|Encoder not found' '$T/.err' && grep -q '^stitch: --codec' '$T/.err'"
check "  ... names the codec" stderr_has "'nosuchcodec' is not a video encoder"
expect_exit "an audio encoder as --codec: 64" 64 "$BIN/stitch" --codec aac -o v.mp4 s0
check "nothing written" test ! -e v.mp4

# -o '' before any work
expect_exit "prompt-expand -o ''" 64 "$BIN/prompt-expand" -q -m "$T/hp.gguf" -o '' p.topic

# memory.png on a full disk (a 64 KiB tmpfs, where mounting is allowed)
mkdir full
if mount -t tmpfs -o size=64k tmpfs full 2>/dev/null; then
    printf '{"tool": "segment-gen", "memory": {"mode": "cpu"}}\n' > full/s.json
    mkdir full/.travel
    dd if=/dev/zero of=full/fill bs=1k count=200 2>/dev/null
    expect_exit "memory.png on a full disk: 74" 74 "$BIN/pipeline-report" -q report --dir full/.travel --png full/memory.png -o full/report.json seg=full/s.json
    check "  ... the message names memory.png" stderr_has "full/memory.png"
    check "  ... no temporary left" sh -c '! ls -A full | grep -q tmp'
    umount full
else
    skip "memory.png on a full disk (cannot mount a tmpfs here)"
fi

# report.json: elapsed (first start to last end) >= the sum of serial stages
mkdir -p r/.travel
cat > st.sh <<'S'
#!/bin/sh
# a stand-in stage: sleeps, writes its JSON (-o is the last argument pair)
out=$1
sleep 0.35
printf '{"tool": "stand-in", "memory": {"mode": "cpu"}}\n' > "$out"
S
chmod +x st.sh
for i in 1 2 3; do
    "$BIN/pipeline-report" -q run --dir r/.travel --name s$i --kind x --json r/s$i.json -- "$T/st.sh" r/s$i.json || fail "run s$i"
done
"$BIN/pipeline-report" -q report --dir r/.travel --png r/m.png -o r/report.json s1=r/s1.json s2=r/s2.json s3=r/s3.json || fail "report"
check "elapsed >= the sum of three serial stages" python3 -c '
import json; t = json.load(open("r/report.json"))["totals"]
print("#", t["elapsed_s"], t["stage_wall_s"]); exit(not t["elapsed_s"] >= t["stage_wall_s"] - 1e-6)'
test_done
