#!/bin/sh
# prompt-expand end to end with the real default model (SmolLM2-135M Q4_1):
# scenes.json has N distinct non-empty prompts, the header, the model's size
# and sha256 (checked with sha256sum), sampling settings and the memory
# object with its checkpoints; a fixed seed gives the same prompts twice;
# replies that cannot be used never fail the topic: the topic stands in,
# marked in scenes.json, the raw output kept (--strict: exit 69, nothing written); a missing model is exit 69 naming every path tried; bad topics
# are 65 (66 when the file is missing) with one line on stderr and no output;
# SIGINT ends a run with 130, cleaned up, nothing written; the model's sha256
# comes from the cache on the second run; --constrain gives marked, clean
# prompts; the progress line shows on a terminal only.
# Skips the model runs when models/ lacks the file (`make models` fetches it).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
PE=$BIN/prompt-expand
FIX=$ROOT/tests/fixtures/prompt-expand
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
jget() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
one_line() { [ "$(wc -l <"$T/.err")" -eq 1 ]; }

# ---- usage and bad input (no model needed)
expect_exit "--help" 0 "$PE" --help
check "--help shows the sampling flags with defaults" grep -q "top-p P.*default 0.9" "$T/.out"
expect_exit "no topic" 64 "$PE" -q
expect_exit "topic file and --topic" 64 "$PE" -q --topic x "$FIX/lantern.topic"
expect_exit "missing topic file" 66 "$PE" -q -o s.json "$FIX/no-such.topic"
check "missing topic file: one line naming it" sh -c "one_line() { [ \$(wc -l <'$T/.err') -eq 1 ]; }; one_line && grep -q no-such.topic '$T/.err'"
expect_exit "empty topic file" 65 "$PE" -q -o s.json "$FIX/empty.topic"
check "empty topic: one line on stderr" one_line
expect_exit "non-UTF-8 topic file" 65 "$PE" -q -o s.json "$FIX/latin1.topic"
check "non-UTF-8 topic: one line on stderr" one_line
expect_exit "empty --topic" 65 "$PE" -q -o s.json --topic ""
expect_exit "--segments 0" 64 "$PE" -q --segments 0 --topic x
expect_exit "--top-p 2" 64 "$PE" -q --top-p 2 --topic x
expect_exit "missing model" 69 "$PE" -q -m no-such-model -o s.json --topic "a harbor"
check "missing model: every path tried is named" sh -c "grep -q \"no-such-model.gguf\" '$T/.err' && grep -q \"models/no-such-model\" '$T/.err'"
expect_exit "--system file missing" 66 "$PE" -q --system no-such.txt -o s.json --topic "a harbor"
: >empty.txt
expect_exit "--system file empty" 65 "$PE" -q --system empty.txt -o s.json --topic "a harbor"
expect_exit "output directory missing" 73 "$PE" -q -o no/such/dir/s.json --topic "a harbor"
# bad model files: one error line naming the file, exit 65, nothing written
printf 'hello' > notgguf.gguf
expect_exit "not a GGUF file" 65 "$PE" -q -m ./notgguf.gguf -o s.json --topic "a harbor"
check "not a GGUF: one line naming the file" sh -c '[ "$(wc -l < "$1")" -eq 1 ] && grep -q "notgguf.gguf.*not a GGUF" "$1"' _ "$T/.err"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\177\000\000\000\000\000\000\000\000' > absurd.gguf
expect_exit "absurd tensor count" 65 "$PE" -q -m ./absurd.gguf -o s.json --topic "a harbor"
check "absurd count: named in the message" grep -q "absurd tensor count" "$T/.err"
if [ -f "$MODEL" ]; then
    head -c 5000000 "$MODEL" > trunc.gguf
    expect_exit "truncated GGUF (tensor data beyond the end)" 65 "$PE" -q -m ./trunc.gguf -o s.json --topic "a harbor"
    check "truncated: the tensor and the file are named" grep -q "trunc.gguf.*beyond the end of the file" "$T/.err"
fi
check "no output left by failed runs" sh -c '! ls s.json* >/dev/null 2>&1'

if [ ! -f "$MODEL" ]; then
    skip "model runs: '$MODEL' is absent (make models fetches it)"
    test_done; exit
fi

# ---- --plan: JSON on stdout, nothing loaded or written
expect_exit "--plan" 0 "$PE" --plan --n-ctx 512 -o s.json "$FIX/lantern.topic"
check "--plan prints the plan with a cpu mode and the KV cache" \
    python3 -c "import json,sys; p=json.load(open(sys.argv[1])); assert p['modes']['cpu']['kv_cache'] == 2*30*512*192*2, p" "$T/.out"
check "--plan writes no output" sh -c '! test -e s.json'

# ---- the real model, end to end: 2 segments from the topic file, seed 5 from the file
SUM=$(sha256sum "$MODEL" | cut -d' ' -f1)
XDG_CACHE_HOME=$PWD/cache; export XDG_CACHE_HOME   # the sha256 cache of this test only
mkdir -p a b
expect_exit "run 1" 0 "$PE" --threads 2 --max-tokens 80 -o a/scenes.json "$FIX/lantern.topic"
cp "$T/.err" err1.txt
if [ -f a/scenes.json ]; then
    check "header" test "$(jget a/scenes.json "j['tool'], j['version'] != '', len(j['task_id']) > 0")" = "prompt-expand True True"
    check "2 segments with indices 0, 1" test "$(jget a/scenes.json "[s['index'] for s in j['segments']]")" = "[0, 1]"
    check "prompts are non-empty, distinct, sane length" python3 - a/scenes.json <<'PY'
import json, sys
p = [s["prompt"] for s in json.load(open(sys.argv[1]))["segments"]]
assert len(p) == 2 and len(set(p)) == 2, p
assert all(20 <= len(x.encode()) <= 400 and "<|" not in x and "\n" not in x for x in p), p
PY
    check "topic and topic_file (relative to the JSON)" test "$(jget a/scenes.json "j['topic'], j['topic_file'].endswith('tests/fixtures/prompt-expand/lantern.topic')")" = "a paper lantern drifting over a night market, then up into the stars True"
    check "model: relative path to the file, llama Q4_1, size, sha256" python3 - a/scenes.json "$MODEL" "$SUM" <<'PY'
import json, os, sys
j = json.load(open(sys.argv[1])); m = j["model"]
assert os.path.samefile(os.path.join(os.path.dirname(sys.argv[1]), m["path"]), sys.argv[2]), m["path"]
assert not os.path.isabs(m["path"])
assert (m["architecture"], m["quant"], m["size"], m["sha256"]) == ("llama", "Q4_1", 98362432, sys.argv[3]), m
assert (m["tokenizer"], m["chat_template"]) == ("smollm", "chatml"), m
PY
    check "sampling settings recorded (seed from the topic file)" test "$(jget a/scenes.json "j['sampling']['seed'], j['sampling']['top_k'], j['sampling']['max_tokens']")" = "5 40 80"
    check "memory object: mode, peak RSS, checkpoints" python3 - a/scenes.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["memory"]
labels = [c["label"] for c in m["checkpoints"]]
assert m["mode"] == "cpu" and m["peak_rss"] > 0, m
assert labels[:3] == ["start", "before load", "after load"], labels
PY
    check "checkpoints logged on stderr (start .. end)" sh -c "grep -q '\[RAM\] start:' err1.txt && grep -q '\[RAM\] before cleanup:' err1.txt && grep -q '\[RAM\] end:' err1.txt"
else
    fail "run 1 wrote no scenes.json"
fi

expect_exit "run 2, same seed" 0 "$PE" --threads 2 --max-tokens 80 --no-sha256 -o b/scenes.json "$FIX/lantern.topic"
if [ -f a/scenes.json ] && [ -f b/scenes.json ]; then
    check "same seed, same prompts" test "$(jget a/scenes.json "j['segments']")" = "$(jget b/scenes.json "j['segments']")"
    check "--no-sha256 records the size only" test "$(jget b/scenes.json "'sha256' in j['model'], j['model']['size']")" = "False 98362432"
fi

# ---- the sha256 cache: the second run with a digest reads it from the cache, same value
expect_exit "run 3, sha256 from the cache" 0 "$PE" -v --threads 2 --max-tokens 80 -o b/s3.json "$FIX/lantern.topic"
check "  logged as from the cache" grep -q 'sha256 of the model in .* (from the cache)' "$T/.err"
check "  the same sha256 as sha256sum" test "$(jget b/s3.json "j['model']['sha256']")" = "$SUM"
check "  the cache names the model" grep -q "^$SUM .*SmolLM2-135M-Instruct.Q4_1.gguf\$" cache/isopipe/sha256

# ---- constrained decoding on every attempt (--constrain): usable prompts, marked
expect_exit "--constrain" 0 "$PE" -q --threads 2 --constrain --segments 2 --seed 3 -o k.json --topic "a paper boat drifting down a rainy street"
check "  prompts marked constrained, one line, no markup" python3 - k.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
s = j["segments"]
assert j["fallback_prompts"] == 0 and j["constrained_prompts"] == 2, j
assert all(x.get("constrained") is True and x["attempts"] >= 1 for x in s), s
assert all(not any(c in x["prompt"] for c in '<>|*#`"{}[]_\\/@=~^:;$%&+\n') for x in s), s
assert j["sampling"]["constrained_attempts"] == 2
PY

# ---- the progress line: on a terminal only
if command -v script >/dev/null 2>&1; then
    script -qec "'$PE' --threads 2 --segments 2 --no-sha256 -o p.json --topic 'a harbor at dawn'" /dev/null >tty.txt 2>&1
    check "progress on a terminal: segment i/N and tokens/s" sh -c "grep -q 'segment 1/2.*tokens/s' tty.txt && grep -q 'segment 2/2' tty.txt"
    expect_exit "no terminal" 0 "$PE" --threads 2 --segments 1 --no-sha256 -o p2.json --topic 'a harbor at dawn'
    check "  no progress line when stderr is a file" sh -c "! grep -q 'segment 1/1' '$T/.err'"
else
    skip "progress line: no script(1) to give it a terminal"
fi

# ---- SIGINT mid-run: exit 130, the "end" checkpoint, no output (8 prompts take far longer than 3 s)
"$PE" --threads 2 --segments 8 -o int.json --topic "a harbor at dawn" 2>int.err &
pid=$!
sleep 3
kill -INT $pid
wait $pid
rc=$?
check "SIGINT: exit 130" test "$rc" = 130
check "SIGINT: cleaned up ('end' checkpoint logged)" grep -q '\[RAM\] end:' int.err
check "SIGINT: no output" sh -c '! ls int.json* >/dev/null 2>&1'

# ---- replies that cannot be used: cut off at 4 tokens, 2 attempts each, then the topic stands in
expect_exit "unusable replies do not fail the topic" 0 "$PE" --threads 2 --max-tokens 4 --retries 1 --segments 2 \
    -o c.json --topic "a harbor at dawn"
check "  a warning naming the raw file" grep -q 'c.json.raw.txt' "$T/.err"
check "  both prompts are the topic, marked, with the reason, distinct" python3 -c '
import json, sys
j = json.load(open("c.json"))
s = j["segments"]
ok = j["fallback_prompts"] == 2 and all(x["source"] == "topic" and "cut off" in x["fallback_reason"] for x in s)
ok = ok and s[0]["prompt"] == "Opening shot: A harbor at dawn." and s[1]["prompt"] == "Final shot: A harbor at dawn."
sys.exit(0 if ok else 1)'
check "  raw output kept with every attempt (2 sampled + 2 constrained each)" test "$(grep -c '^### prompt [01], attempt' c.json.raw.txt 2>/dev/null)" = 8
check "  the last two attempts were constrained" test "$(grep -c '^### prompt [01], attempt [34] (constrained)' c.json.raw.txt 2>/dev/null)" = 4
expect_exit "--strict: unusable replies are 69 (the model, not the input)" 69 "$PE" -q --threads 2 --max-tokens 4 \
    --retries 1 --segments 1 --strict -o d.json --topic "a harbor at dawn"
check "  one line naming the raw file" sh -c "[ \$(wc -l <'$T/.err') -eq 1 ] && grep -q 'd.json.raw.txt' '$T/.err'"
check "  no scenes.json" sh -c '! test -e d.json'
test_done
