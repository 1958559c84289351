#!/bin/sh
# text-encode end to end on a tiny random umT5 (tests/fixtures/umt5/tool, a
# bfloat16 Hugging Face folder) with a trained tokenizer.json
# (tests/fixtures/spm/uni_nobf): the states of two prompts and Wan's default
# negative within 1e-4 relative of transformers' (tests/ref/umt5_ref.py, which
# cleaned and tokenised them as Wan does with the `tokenizers` library), ids
# in the report equal to those; the tokenizer found beside the model;
# --negative "", --no-negative, --scenes, truncation at 512 tokens, --plan;
# the memory modes on a pretend device (ISOPIPE_FAKE_GPU): beefy and
# lightweight bit-identical to cpu, auto still cpu; bad input: exit code, one
# error line, nothing written.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
TE=$BIN/text-encode
FIX=$ROOT/tests/fixtures/umt5/tool
TOK=$ROOT/tests/fixtures/spm/uni_nobf.tokenizer.json
P0='A red fox &amp; a crow   in the  snow'
P1='日本語のテキスト、雪の中の狐'
one_line() { [ "$(stderr_lines)" -eq 1 ]; }
nothing() { [ ! -e out.safetensors ] && [ ! -e out.json ]; }

PY=
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import numpy' 2>/dev/null; then PY=$p; break; fi
done
PYJ=$(command -v python3 || true)   # reading the JSON report needs python3 only
# a check that reads files with python3 (numpy when $1 is "np"): skipped without it
pycheck() {
    _need=$1; shift
    if [ "$_need" = np ] && [ -z "$PY" ]; then skip "$1 (python3 with numpy not found)"
    elif [ -z "$PYJ" ]; then skip "$1 (python3 not found)"
    else check "$@"; fi
}
# a safetensors reader in a few lines of numpy (tests/helpers/st_np.py), as st.py beside the outputs
cp "$ISOPIPE_ROOT/tests/helpers/st_np.py" st.py

# ---- usage
expect_exit "--help" 0 "$TE" --help
check "--help says ftfy is not done" grep -q "ftfy" "$T/.out"
expect_exit "nothing to encode" 64 "$TE" -q -m "$FIX/hf" -o out.safetensors
expect_exit "no -o" 64 "$TE" -q -m "$FIX/hf" -p x
expect_exit "--seed is not a text-encode flag" 64 "$TE" -q --seed 3 -m "$FIX/hf" -p x -o out.safetensors

# ---- the encoder against transformers
expect_exit "two prompts and the default negative" 0 "$TE" -q -m "$FIX/hf" --tokenizer "$TOK" -p "$P0" -p "$P1" -o out.safetensors
if [ -z "$PY" ]; then
    skip "numeric checks (python3 with numpy not found)"
else
    check "states within 1e-4 of transformers, ids and report as expected" $PY - "$FIX/expected.safetensors" <<'EOF'
import json, sys
import numpy as np
sys.path.insert(0, ".")
from st import load
exp, got, rep = load(sys.argv[1]), load("out.safetensors"), json.load(open("out.json"))
assert sorted(got) == ["negative", "prompt.0", "prompt.1"], sorted(got)
items = rep["prompts"] + [rep["negative"]]
for name, it in zip(["prompt.0", "prompt.1", "negative"], items):
    e, g = exp[name], got[name]
    assert g.shape == e.shape == (it["tokens"], 16), (name, g.shape, e.shape)
    rel = np.abs(g - e).max() / np.abs(e).max()
    assert rel <= 1e-4, (name, rel)
    assert it["ids"] == exp[name + ".ids"].tolist(), name
    assert it["ids"][-1] == 1 and not it["truncated"]
assert rep["prompts"][0]["text"] == "A red fox & a crow in the snow"
assert rep["prompts"][1]["index"] == 1 and rep["tool"] == "text-encode" and rep["memory"]["mode"] == "cpu"
assert rep["model"]["config"]["source"] == "config.json" and rep["model"]["tokenizer"]["format"] == "tokenizer.json"
EOF
fi

# --precision: bf16 activations (transformers' bf16 numerics) are close to, not equal to, float32
expect_exit "--precision bf16" 0 "$TE" -q -m "$FIX/hf" --tokenizer "$TOK" -p "$P0" -p "$P1" --precision bf16 -o p16.safetensors
pycheck np "--precision bf16: within 2e-2 of transformers' float32, not bit-equal to f32, named in the report" $PY - "$FIX/expected.safetensors" <<'EOF2'
import json, sys
import numpy as np
sys.path.insert(0, ".")
from st import load
exp, f32, got, rep = load(sys.argv[1]), load("out.safetensors"), load("p16.safetensors"), json.load(open("p16.json"))
assert rep["encode"]["precision"] == "bf16", rep["encode"]
assert json.load(open("out.json"))["encode"]["precision"] == "f32"
differs = False
for name in ["prompt.0", "prompt.1", "negative"]:
    e, g = exp[name], got[name]
    rel = np.abs(g - e).max() / np.abs(e).max()
    assert rel <= 2e-2, (name, rel)
    differs |= not np.array_equal(g, f32[name])
assert differs, "bf16 gave the float32 states bit for bit: the mode did not take effect"
EOF2
expect_exit "--precision foo" 64 "$TE" -q -m "$FIX/hf" -p x --precision foo -o p17.safetensors

# the tokenizer beside the model, the report elsewhere
mkdir m && cp "$FIX/hf/"* m/ && cp "$TOK" m/tokenizer.json
expect_exit "tokenizer found beside the model" 0 "$TE" -q -m ./m -p "$P0" --no-negative -o b.safetensors --report b-report.json
pycheck np "the same states as with --tokenizer" sh -c "[ -e b-report.json ] && $PY -c \"
import sys; sys.path.insert(0, '.'); from st import load
import numpy as np
a, b = load('out.safetensors'), load('b.safetensors')
assert sorted(b) == ['prompt.0'] and np.array_equal(a['prompt.0'], b['prompt.0'])\""
expect_exit "--negative \"\"" 0 "$TE" -q -m ./m -p x --negative "" -o c.safetensors
pycheck json "the empty negative is </s> alone" sh -c "$PYJ -c \"
import json; r = json.load(open('c.json')); assert r['negative']['ids'] == [1], r['negative']\""

# --scenes after the --prompts; an empty one is refused
printf '{"segments": [{"index": 0, "prompt": "a harbor at dawn"}, {"index": 1, "prompt": "boats leave"}]}' >scenes.json
expect_exit "--scenes" 0 "$TE" -q -m ./m -p first --scenes scenes.json --no-negative -o d.safetensors
pycheck json "--scenes: prompt.0 is --prompt, then the segments" sh -c "$PYJ -c \"
import json; r = json.load(open('d.json')); assert [p['text'] for p in r['prompts']] == ['first', 'a harbor at dawn', 'boats leave']\""
printf '{"segments": []}' >empty.json
expect_exit "empty --scenes" 65 "$TE" -q -m ./m --scenes empty.json -o out2.safetensors
check "empty --scenes: one line naming it, nothing written" sh -c "[ \$(grep -c . '$T/.err') -eq 1 ] && grep -q empty.json '$T/.err' && [ ! -e out2.safetensors ] && [ ! -e out2.json ]"

# a prompt past 512 tokens: cut to 511 pieces + </s>, said in the report
long=$(i=0; while [ $i -lt 700 ]; do printf 'fox crow '; i=$((i + 1)); done)
expect_exit "a prompt of 1400 words" 0 "$TE" -q -m ./m -p "$long" --no-negative -o e.safetensors
pycheck json "truncated to 512 tokens ending in </s>" sh -c "$PYJ -c \"
import json; p = json.load(open('e.json'))['prompts'][0]; assert p['tokens'] == 512 and p['truncated'] and p['ids'][-1] == 1\""

# --plan: no output; auto picks cpu (the CUDA path is not verified on a card: gpu_auto false)
expect_exit "--plan" 0 "$TE" -m ./m -p x --plan -o f.safetensors
pycheck json "--plan: auto picks cpu, GPU modes never auto, nothing written" sh -c "$PYJ -c \"
import json, sys; j = json.load(open('$T/.out')); m = j['modes']
assert m['cpu']['possible'] and j['auto_pick'] == 'cpu' and not j['gpu_auto']\" && [ ! -e f.safetensors ]"

# ---- memory modes on a pretend device (ISOPIPE_FAKE_GPU): beefy and lightweight
# keep the weights as the mode does (one arena / packed layers streamed in
# order) but compute on the CPU: the states are bit-identical to cpu mode's
expect_exit "--plan on a pretend 8 GiB device" 0 env ISOPIPE_FAKE_GPU=8192:8192 "$TE" -m ./m -p x --plan -o f.safetensors
pycheck json "--plan: beefy and lightweight possible, gpu_auto false, auto still cpu, the embedding host-only" sh -c "$PYJ -c \"
import json, sys; j = json.load(open('$T/.out')); m = j['modes']
assert m['beefy']['possible'] and m['lightweight']['possible'] and m['cpu']['possible'], m
assert not j['gpu_auto'] and j['auto_pick'] == 'cpu', (j['gpu_auto'], j['auto_pick'])
b = j['blocks']; assert m['lightweight']['weights'] == b['resident_bytes'] + 2 * b['block_bytes'], (m['lightweight'], b)
assert m['beefy']['vram_peak'] > m['lightweight']['vram_peak'] > 0 and m['cpu']['vram_peak'] == 0
assert j['host_only_bytes'] > 0 and m['beefy']['host_rss'] >= j['host_only_bytes']\" && [ ! -e f.safetensors ]"
expect_exit "--plan with --vram-reserve leaving no room" 0 env ISOPIPE_FAKE_GPU=8192:8192 "$TE" -m ./m -p x --plan --vram-reserve 8190 -o f.safetensors
pycheck json "--vram-reserve: auto picks cpu" sh -c "$PYJ -c \"
import json; j = json.load(open('$T/.out')); assert j['auto_pick'] == 'cpu', j['auto_pick']\""
# three prompts of different lengths (one cut at 512 tokens) and the negative, in one group
long=$(i=0; while [ $i -lt 300 ]; do printf 'fox crow '; i=$((i + 1)); done)
expect_exit "cpu mode, 4 prompts" 0 "$TE" -q -m ./m -p "$P0" -p "$P1" -p "$long" --memory-mode cpu -o mc.safetensors
for mm in beefy lightweight; do
    expect_exit "$mm on a pretend device" 0 env ISOPIPE_FAKE_GPU=8192:8192 "$TE" -q -m ./m -p "$P0" -p "$P1" -p "$long" --memory-mode $mm -o m$mm.safetensors
    check "$mm: output bit-identical to cpu mode" cmp -s mc.safetensors m$mm.safetensors
done
pycheck json "the reports say the mode and where the weights lived (streamed: every layer through the stream)" sh -c "$PYJ -c \"
import json
c, b, l = (json.load(open(f))['memory'] for f in ('mc.json', 'mbeefy.json', 'mlightweight.json'))
assert (c['mode'], c['weights']) == ('cpu', 'mapped') and 'stream' not in c, c
assert (b['mode'], b['weights']) == ('beefy', 'resident'), b
assert (l['mode'], l['weights']) == ('lightweight', 'streamed'), l
assert l['stream']['copies'] >= json.load(open('mc.json'))['model']['config']['num_layers'] and l['stream']['bytes'] > 0, l['stream']
assert json.load(open('mlightweight.json'))['encode']['backend'] == 'cpu'\""
# nine prompts of 512 tokens and the negative: more than the 4096 tokens encoded
# together, so two groups (each its own pass over the layers); the same states
set --
for k in 1 2 3 4 5 6 7 8 9; do set -- "$@" -p "$k $long"; done
expect_exit "cpu mode, 10 prompts in two groups" 0 "$TE" -q -m ./m "$@" --memory-mode cpu -o gc.safetensors
expect_exit "lightweight on a pretend device, two groups" 0 env ISOPIPE_FAKE_GPU=8192:8192 "$TE" -q -m ./m "$@" --memory-mode lightweight -o glw.safetensors
check "two groups: lightweight bit-identical to cpu" cmp -s gc.safetensors glw.safetensors
check "the activation reservation held every GPU-mode run (the CPU's shadow of the device's heaps)" act_fits mbeefy.json mlightweight.json glw.json
pycheck json "two groups, ten prompts of 512 tokens in the report" sh -c "$PYJ -c \"
import json; j = json.load(open('glw.json')); assert j['encode']['groups'] == 2 and j['encode']['tokens'] > 4096, j['encode']
assert [p['tokens'] for p in j['prompts']] == [512] * 9, [p['tokens'] for p in j['prompts']]\""

# ---- bad input: the documented code, one line, nothing written
rm -f out.safetensors out.json
expect_exit "missing model" 69 "$TE" -q -m no-such-umt5 -p x -o out.safetensors
check "missing model: nothing written" nothing
expect_exit "tokenizer ids past the embedding" 65 "$TE" -q -m ./m --tokenizer "$ROOT/tests/fixtures/spm/uni_bf.model" -p x -o out.safetensors
check "ids past the embedding: one line naming the tokenizer, nothing written" sh -c "one_line() { [ \$(grep -c . '$T/.err') -eq 1 ]; }; one_line && grep -q uni_bf.model '$T/.err' && [ ! -e out.safetensors ]"
printf 'this is not a tokenizer\n' >tok.txt
expect_exit "neither tokenizer format" 65 "$TE" -q -m ./m --tokenizer tok.txt -p x -o out.safetensors
check "neither format: nothing written" nothing
head -c 3000 "$ROOT/tests/fixtures/spm/uni_raw.model" >cut.model
expect_exit "a cut spiece.model" 65 "$TE" -q -m ./m --tokenizer cut.model -p x -o out.safetensors
expect_exit "missing tokenizer file" 66 "$TE" -q -m ./m --tokenizer no-such.model -p x -o out.safetensors
if [ -n "$PYJ" ]; then
    mkdir n && cp m/config.json n/ && "$PYJ" -c "
b = bytearray(open('m/model.safetensors', 'rb').read())
i = b.find(b'encoder.final_layer_norm.weight')
b[i:i + 31] = b'encoder.final_layer_norm.weighX'
open('n/model.safetensors', 'wb').write(b)"
    expect_exit "a missing tensor" 65 "$TE" -q -m ./n --tokenizer "$TOK" -p x -o out.safetensors
    check "missing tensor: one line naming it, nothing written" sh -c "grep -q final_layer_norm '$T/.err' && [ \$(grep -c . '$T/.err') -eq 1 ] && [ ! -e out.safetensors ] && [ ! -e out.json ]"
else
    skip "a missing tensor (python3 not found to edit the file)"
fi
expect_exit "a prompt that is not UTF-8" 65 "$TE" -q -m ./m -p "$(printf 'caf\351')" -o out.safetensors
check "not UTF-8: nothing written" nothing
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    skip "--memory-mode beefy without a GPU (this machine has one: tests/gpu/umt5_check.sh runs the CUDA path)"
else
    expect_exit "--memory-mode beefy without a GPU" 69 env -u ISOPIPE_FAKE_GPU "$TE" -q -m ./m -p x --memory-mode beefy -o out.safetensors
    # a CUDA build: "needs a GPU"; a CPU-only build plans no GPU mode: "cannot run in beefy mode"
    check "beefy without a GPU: one line saying so, nothing written" sh -c "grep -qE 'needs a GPU|cannot run in beefy mode' '$T/.err' && [ \$(grep -c . '$T/.err') -eq 1 ] && [ ! -e out.safetensors ]"
fi
expect_exit "beefy on a pretend device without room" 75 env ISOPIPE_FAKE_GPU=8192:100 "$TE" -q -m ./m -p x --memory-mode beefy -o out.safetensors
check "no room: one line, nothing written" sh -c "grep -q 'VRAM' '$T/.err' && [ \$(grep -c . '$T/.err') -eq 1 ] && [ ! -e out.safetensors ] && [ ! -e out.json ]"
expect_exit "output directory missing" 73 "$TE" -q -m ./m -p x -o no/such/dir/out.safetensors
test_done
