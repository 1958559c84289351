#!/bin/sh
# prompt-expand on models it cannot run as they are (issue 14, "Bad input"):
# - a GGUF of an architecture we do not run: exit 69, one line naming the
#   architecture and the ones we run, nothing written;
# - a chat template we cannot render: the default template (ChatML) is used,
#   a warning line says so and scenes.json records "chat_template_fallback";
# - a model too big for the RAM there is, in cpu mode: exit 75 before any
#   weight is loaded, the message giving the plan's numbers (the RAM is made
#   small with the test-only ISOPIPE_FAKE_MEM_AVAILABLE_MiB).
# The last two need the default model (models/, `make models`); skipped without it.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
PE=$BIN/prompt-expand
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
SET="python3 $ROOT/tests/helpers/gguf_set.py"

# ---- an architecture we do not run (a header-only GGUF: it fails before any tensor is looked at)
$SET --new gemma2.gguf general.architecture=gemma2 general.name=stand-in
expect_exit "architecture gemma2" 69 "$PE" -q -m ./gemma2.gguf -o s.json --topic "a harbor"
check "architecture: one line naming it and the architectures we run" sh -c \
    '[ "$(wc -l < "$1")" -eq 1 ] && grep -q "gemma2.gguf.*architecture .gemma2. is not supported (supported: llama, qwen2)" "$1"' _ "$T/.err"
expect_exit "architecture: --plan refuses it too" 69 "$PE" -q --plan -m ./gemma2.gguf --topic "a harbor"
$SET --new noarch.gguf general.name=stand-in
expect_exit "no architecture at all: bad data" 65 "$PE" -q -m ./noarch.gguf -o s.json --topic "a harbor"
check "no architecture: named" grep -q "general.architecture' is missing" "$T/.err"
check "nothing written" sh -c '! ls s.json* >/dev/null 2>&1'

if [ ! -f "$MODEL" ]; then
    skip "chat template and RAM checks: '$MODEL' is absent (make models fetches it)"
    test_done; exit
fi

# ---- a chat template we cannot render: the default, said in the log and in scenes.json
$SET "$MODEL" inst.gguf 'tokenizer.chat_template={{ bos_token }}[INST] {{ m.content }} [/INST]'
expect_exit "unknown chat template: runs" 0 "$PE" --threads 2 -n 1 --seed 3 -m ./inst.gguf -o s.json --topic "a harbor at dusk"
check "unknown chat template: a warning names the fallback" \
    grep -q "inst.gguf': the model's chat template is neither ChatML nor Llama 3; using the default template (chatml)" "$T/.err"
check "unknown chat template: scenes.json says so" python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["model"]
assert m["chat_template"] == "chatml" and "neither ChatML nor Llama 3" in m["chat_template_fallback"], m' s.json
expect_exit "the model's own template: no fallback recorded" 0 "$PE" -q --threads 2 -n 1 --seed 3 --max-tokens 8 --retries 0 -m "$MODEL" -o own.json --topic "a harbor at dusk"
check "own template: no chat_template_fallback key" python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["model"]
assert m["chat_template"] == "chatml" and "chat_template_fallback" not in m, m' own.json
$SET "$MODEL" notmpl.gguf 'tokenizer.chat_template!'
expect_exit "no template, ChatML tokens in the vocabulary: no fallback" 0 "$PE" --threads 2 -n 1 --seed 3 --max-tokens 8 --retries 0 -m ./notmpl.gguf -o n.json --topic "a harbor"
check "no template: no warning" sh -c '! grep -q "default template" "$1"' _ "$T/.err"
rm -f inst.gguf notmpl.gguf

# ---- too big for RAM in cpu mode: 75 before loading, with the plan's numbers
"$PE" --plan -m "$MODEL" --topic x >plan.json
need=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["modes"]["cpu"]["host_rss"] / 1048576))' plan.json)
ISOPIPE_FAKE_MEM_AVAILABLE_MiB=50; export ISOPIPE_FAKE_MEM_AVAILABLE_MiB
expect_exit "cpu mode, 50 MiB available: temporary failure" 75 "$PE" -q --memory-mode cpu -m "$MODEL" -o big.json --topic "a harbor"
check "too big: one line with the plan's total and the RAM available" sh -c \
    '[ "$(wc -l < "$1")" -eq 1 ] && grep -q "needs $2 MiB of RAM in cpu mode (weights .* + KV cache .* + activations .* + base .* MiB), 50.0 MiB available" "$1"' _ "$T/.err" "$need"
expect_exit "too big: the same in auto mode without a GPU" 75 "$PE" -q -m "$MODEL" -o big.json --topic "a harbor"
"$PE" -m "$MODEL" -o big.json --topic "a harbor" 2>verbose.txt
check "too big: refused before loading (no 'before load' checkpoint)" sh -c '! grep -q "before load" "$1"' _ verbose.txt
check "too big: nothing written" sh -c '! ls big.json* >/dev/null 2>&1'
ISOPIPE_FAKE_MEM_AVAILABLE_MiB=100000000; export ISOPIPE_FAKE_MEM_AVAILABLE_MiB
expect_exit "the override never raises the budget: a huge value changes nothing" 0 "$PE" -q --threads 2 -n 1 --max-tokens 8 --retries 0 -m "$MODEL" -o ok.json --topic "a harbor"
unset ISOPIPE_FAKE_MEM_AVAILABLE_MiB
test_done
