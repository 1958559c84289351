#!/bin/sh
# segment-gen with a Wan2.1 T2V DiT: end to end against diffusers' latents
# (tests/fixtures/wan, from tests/ref/wan_ref.py: 3 Euler / 4 UniPC steps with
# CFG 5, shift 3, within 1e-3 relative: max |ours - ref| <= 1e-3 max |ref|) for
# every layout, segment.json, determinism across runs and thread counts, the
# plan, the GPU memory modes on a pretend device (ISOPIPE_FAKE_GPU: beefy and
# lightweight put the weights through nn_wres — one arena, packed blocks
# streamed in the forward's order — and compute on the CPU: latents
# bit-identical to cpu mode), and bad input (exit code, the tensor or value
# named, nothing written).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
SG=$BIN/segment-gen
ST=$TESTBIN/helpers/st_tool
A=$ROOT/tests/fixtures/wan/a
B=$ROOT/tests/fixtures/wan/b
ARGS_A="--text $A/text.safetensors --noise $A/noise.safetensors --frames 5 --width 80 --height 48 --guidance 5 --shift 3"
ARGS_B="--text $B/text.safetensors --noise $B/noise.safetensors --frames 9 --width 48 --height 32 --guidance 5 --shift 3"

close() { # description, out dir, expected tensor, fixture dir
    r=
    if [ -f "$2/latents.safetensors" ] && r=$("$ST" diff "$2/latents.safetensors" latents "$4/expected.safetensors" "$3" 1e-3); then
        ok "$1 ($r)"
    else
        fail "$1: ${r:-no latents}"
    fi
}

# ---- against diffusers, every layout
# shellcheck disable=SC2086
$SG -q -m "$A/diffusers" $ARGS_A --steps 3 --sampler euler -o eu_a_diff; close "a diffusers dir, euler" eu_a_diff euler "$A"
$SG -q -m "$A/diffusers" $ARGS_A --steps 4 --sampler unipc -o un_a_diff; close "a diffusers dir, unipc" un_a_diff unipc "$A"
$SG -q -m "$A/wan" $ARGS_A --steps 4 -o un_a_wan; close "a Wan checkpoint dir, unipc (the default sampler)" un_a_wan unipc "$A"
$SG -q -m "$A/wan" $ARGS_A --steps 3 --sampler euler -o eu_a_wan; close "a Wan checkpoint dir, euler" eu_a_wan euler "$A"
$SG -q -m "$A/comfy_fp8.safetensors" --heads 2 $ARGS_A --steps 4 -o un_a_fp8
close "a ComfyUI prefix + scaled fp8 single file, unipc" un_a_fp8 fp8_unipc "$A"
$SG -q -m "$B/diffusers" $ARGS_B --steps 4 -o un_b_diff; close "b sharded diffusers dir, unipc" un_b_diff unipc "$B"
$SG -q -m "$B/wan.safetensors" --heads 4 $ARGS_B --steps 3 --sampler euler -o eu_b_wan
close "b bare Wan single file, euler" eu_b_wan euler "$B"
$SG -q -m "$B/wan_bf16.safetensors" --heads 4 $ARGS_B --steps 4 -o un_b_bf16
close "b bf16 single file, unipc" un_b_bf16 bf16_unipc "$B"

# ---- segment.json
PY=
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1; then PY=$p; break; fi
done
if [ -n "$PY" ] && [ -f un_a_diff/segment.json ]; then
    check "segment.json: model, sampler, UniPC timesteps 999 900 750 500, latents shape, per-step timing, memory" \
        "$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
s = j["sampler"]
assert j["model"]["layout"] == "diffusers" and j["model"]["layers"] == 2 and j["model"]["heads"] == 2, j["model"]
assert s["name"] == "unipc" and s["steps"] == 4 and s["guidance"] == 5 and s["shift"] == 3 and s["cfg"], s
assert s["timesteps"] == [999, 900, 750, 500], s["timesteps"]
assert j["latents"]["shape"] == [16, 2, 6, 10] and j["latents"]["tokens"] == 30, j["latents"]
assert j["text"]["index"] == 0 and j["text"]["prompt_rows"] == 7 and j["text"]["negative_rows"] == 5, j["text"]
assert len(j["timing"]["steps_s"]) == 4 and j["memory"]["mode"] == "cpu", j["timing"]
assert j["noise"]["file"].endswith("noise.safetensors")
' un_a_diff/segment.json
else
    skip "segment.json checks (python3 not found)"
fi

# ---- determinism: our own noise generator, runs and thread counts
G="-m $A/wan --text $A/text.safetensors --frames 5 --width 80 --height 48 --steps 2 --seed 7"
# shellcheck disable=SC2086
$SG -q $G --threads 1 -o d1; $SG -q $G --threads 1 -o d2; $SG -q $G --threads 3 -o d3
$SG -q $G --seed 8 -o d4
check "two identical runs give identical latents.safetensors" cmp -s d1/latents.safetensors d2/latents.safetensors
check "1 and 3 threads give identical latents.safetensors" cmp -s d1/latents.safetensors d3/latents.safetensors
check "another --seed gives other latents" sh -c 'test -f d4/latents.safetensors && ! cmp -s d1/latents.safetensors d4/latents.safetensors'
# shellcheck disable=SC2086
$SG -q $G --index 1 -o d5
check "--index 1 takes prompt.1 (other latents)" sh -c 'test -f d5/latents.safetensors && ! cmp -s d1/latents.safetensors d5/latents.safetensors'

# ---- the plan (no weights read, no output)
if $SG -m "$A/wan" --text "$A/text.safetensors" --frames 81 --width 832 --height 480 --plan >plan.json 2>/dev/null; then
    ok "--plan at 832x480, 81 frames"
    if [ -n "$PY" ]; then
        check "--plan: cpu possible and auto's pick, 32760 tokens" "$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
m = j["modes"]
assert m["cpu"]["possible"] and j["auto_pick"] == "cpu", (m, j["auto_pick"])
assert j["tokens"] == 21 * 30 * 52, j["tokens"]
assert m["cpu"]["activations"] > 21 * 30 * 52 * 24 * 4 * 6, m["cpu"]
' plan.json
    fi
else
    fail "--plan at 832x480, 81 frames"
fi
# with a device (pretend, 8 GiB free): beefy and lightweight possible, auto still cpu (the CUDA path is
# not verified on a card: gpu_auto false), the GPU numbers from nn_wres's sizes and the backend
if ISOPIPE_FAKE_GPU=8192:8192 $SG -m "$A/wan" --text "$A/text.safetensors" --frames 81 --width 832 --height 480 --plan \
    >plan_gpu.json 2>/dev/null; then
    if [ -n "$PY" ]; then
        check "--plan with a device: beefy/lightweight possible, gpu_auto false, auto picks cpu" "$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
m = j["modes"]
assert m["beefy"]["possible"] and m["lightweight"]["possible"] and m["cpu"]["possible"], m
assert j["gpu_auto"] is False and j["auto_pick"] == "cpu", (j["gpu_auto"], j["auto_pick"])
b, l = m["beefy"], m["lightweight"]
# every weight of the f32 file (+ 256-byte alignment each) resident in beefy; lightweight holds less
assert b["weights"] > j["weights_total"] and l["weights"] < b["weights"], (b, l, j["weights_total"])
# device activations: the state (>= 6 [L, dim] buffers) + the CUDA backend fixed 160 MiB; no L x L scores
L = 21 * 30 * 52
assert b["activations"] >= L * 24 * 4 * 6 + (160 << 20) and b["activations"] < L * 24 * 4 * 40 + (161 << 20), b
assert b["vram_peak"] == b["weights"] + b["activations"] and l["pinned_host"] > 0, (b, l)
' plan_gpu.json
    fi
else
    fail "--plan with a pretend device"
fi

# ---- the GPU modes on a pretend device: the same latents as cpu mode, bit for bit
RUN_A="-m $A/diffusers $ARGS_A --steps 4"
# shellcheck disable=SC2086
{
ISOPIPE_FAKE_GPU=8192:8192 $SG -q $RUN_A -o m_cpu
ISOPIPE_FAKE_GPU=8192:8192 $SG -q $RUN_A --memory-mode beefy -o m_beefy
ISOPIPE_FAKE_GPU=8192:8192 $SG -q $RUN_A --memory-mode lightweight -o m_light
ISOPIPE_FAKE_GPU=8192:8192 $SG -q $RUN_A --memory-mode auto -o m_auto
ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$B/wan_bf16.safetensors" --heads 4 $ARGS_B --steps 3 --sampler euler -o mb_cpu
ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$B/wan_bf16.safetensors" --heads 4 $ARGS_B --steps 3 --sampler euler \
    --memory-mode lightweight -o mb_light
ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$A/comfy_fp8.safetensors" --heads 2 $ARGS_A --steps 2 -o mf_cpu
ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$A/comfy_fp8.safetensors" --heads 2 $ARGS_A --steps 2 --memory-mode beefy -o mf_beefy
ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$A/comfy_fp8.safetensors" --heads 2 $ARGS_A --steps 2 --memory-mode lightweight \
    -o mf_light
}
check "pretend device, beefy: latents bit-identical to cpu mode" cmp -s m_cpu/latents.safetensors m_beefy/latents.safetensors
check "pretend device, lightweight: latents bit-identical to cpu mode" cmp -s m_cpu/latents.safetensors m_light/latents.safetensors
check "pretend device, auto: cpu mode (the same latents)" cmp -s m_cpu/latents.safetensors m_auto/latents.safetensors
check "pretend device, bf16 file, lightweight: bit-identical to cpu mode" cmp -s mb_cpu/latents.safetensors mb_light/latents.safetensors
check "pretend device, scaled fp8 file, beefy: bit-identical to cpu mode" cmp -s mf_cpu/latents.safetensors mf_beefy/latents.safetensors
check "pretend device, scaled fp8 file, lightweight: bit-identical to cpu mode" cmp -s mf_cpu/latents.safetensors mf_light/latents.safetensors
check "the activation reservation held every GPU-mode run (the CPU's shadow of the device's heaps)" \
    act_fits m_beefy/segment.json m_light/segment.json mb_light/segment.json mf_beefy/segment.json mf_light/segment.json
if [ -n "$PY" ] && [ -f m_light/segment.json ] && [ -f m_beefy/segment.json ] && [ -f m_auto/segment.json ]; then
    check "segment.json memory: mode, where the weights lived, the stream's counts (2 blocks: both stay in the window)" \
        "$PY" -c '
import json, sys
c, b, l, a = (json.load(open(p))["memory"] for p in sys.argv[1:5])
assert c["mode"] == "cpu" and c["nn"]["weights"] == "mapped" and c["nn"]["backend"] == "cpu", c
assert a["mode"] == "cpu" and a["nn"]["weights"] == "mapped", a
assert b["mode"] == "beefy" and b["nn"]["weights"] == "resident" and "streamed" not in b["nn"], b
assert l["mode"] == "lightweight" and l["nn"]["weights"] == "streamed" and "fallback" not in l["nn"], l
enters = 4 * 2 * 2   # steps x (cond, uncond) x 2 blocks
s = l["nn"]["streamed"]
assert s["hits"] == enters - 1 and s["copies"] == 2 and s["bytes"] > 0, s
' m_cpu/segment.json m_beefy/segment.json m_light/segment.json m_auto/segment.json
fi
check "--plan wrote nothing" test ! -e plan_out

# ---- bad input: exit code, what is wrong named, nothing written
W1="$A/wan/diffusion_pytorch_model.safetensors"
"$ST" edit "$W1" miss.safetensors drop blocks.1.ffn.2.weight
"$ST" edit "$W1" shape.safetensors shrink blocks.0.self_attn.k.weight
"$ST" edit "$W1" i2v.safetensors add img_emb.proj.0.weight
"$ST" edit "$W1" vace.safetensors add vace_patch_embedding.weight
"$ST" edit "$A/text.safetensors" noneg.safetensors drop negative
BASE="--text $A/text.safetensors --frames 5 --width 80 --height 48 --steps 1"

# shellcheck disable=SC2086
{
expect_exit "a missing tensor" 65 $SG -m miss.safetensors --heads 2 $BASE -o bad
check "  ... is named" stderr_has "blocks.1.ffn.2.weight"
expect_exit "a misshapen tensor" 65 $SG -m shape.safetensors --heads 2 $BASE -o bad
check "  ... is named" stderr_has "blocks.0.self_attn.k.weight"
expect_exit "an image-to-video checkpoint" 65 $SG -m i2v.safetensors --heads 2 $BASE -o bad
check "  ... is said to be I2V and not supported yet" sh -c "grep -q 'image-to-video' '$T/.err' && grep -q 'not supported yet' '$T/.err'"
expect_exit "a VACE patch embedding without VACE blocks (VACE itself: t6110)" 65 $SG -m vace.safetensors --heads 2 $BASE -o bad
check "  ... says no VACE blocks" stderr_has "no VACE blocks"
expect_exit "a single file whose heads are not dim/128, without --heads" 65 $SG -m "$W1" $BASE -o bad
check "  ... says --heads" stderr_has "heads"
expect_exit "embeddings of another width than text_dim" 65 $SG -m "$A/wan" --text "$B/text.safetensors" --frames 5 --width 80 --height 48 -o bad
check "  ... says text_dim" stderr_has "text_dim"
expect_exit "noise of the wrong shape" 65 $SG -m "$A/wan" $BASE --noise "$B/noise.safetensors" -o bad
check "  ... says the shape needed" stderr_has "16, 2, 6, 10"
expect_exit "no negative prompt with guidance > 1" 65 $SG -m "$A/wan" --text noneg.safetensors --frames 5 --width 80 --height 48 --steps 1 -o bad
check "  ... names 'negative'" stderr_has "negative"
expect_exit "no negative prompt with guidance 1 is fine" 0 $SG -m "$A/wan" --text noneg.safetensors --frames 5 --width 80 --height 48 --steps 1 --guidance 1 -o g1
expect_exit "a prompt index the file lacks" 65 $SG -m "$A/wan" $BASE --index 5 -o bad
check "  ... names prompt.5" stderr_has "prompt.5"
expect_exit "frames not 4k+1" 65 $SG -m "$A/wan" --text "$A/text.safetensors" --frames 6 --width 80 --height 48 -o bad
check "  ... gives the nearest valid (5 and 9)" stderr_has "5 and 9"
expect_exit "a width not a multiple of 16" 65 $SG -m "$A/wan" --text "$A/text.safetensors" --frames 5 --width 90 --height 40 -o bad
check "  ... gives the nearest valid size (96x48)" stderr_has "96x48"
expect_exit "no --text" 64 $SG -m "$A/wan" --frames 5 --width 80 --height 48 -o bad
expect_exit "keyframes given to a text-to-video model" 64 $SG -m "$A/wan" $BASE --start x.png -o bad
expect_exit "an unknown sampler" 64 $SG -m "$A/wan" $BASE --sampler ddim -o bad
expect_exit "beefy asked for without a GPU (69)" 69 env -u ISOPIPE_FAKE_GPU $SG -m "$A/wan" $BASE --memory-mode beefy -o bad
# a CUDA build: "beefy mode needs a GPU"; a CPU-only build: "... cannot run in beefy mode"
check "  ... says beefy mode cannot run here" stderr_has "beefy mode"
expect_exit "a model that does not exist" 69 $SG -m no-such-wan-model $BASE -o bad
expect_exit "a file that is not a Wan DiT" 65 $SG -m "$A/noise.safetensors" $BASE -o bad
}
check "nothing written by any refused run" test ! -e bad

# an interrupt during sampling: exit 130, nothing left behind (1000 steps take seconds)
$SG -q -m "$A/wan" --text "$A/text.safetensors" --frames 5 --width 80 --height 48 --steps 1000 --threads 1 -o intr 2>intr.err &
pid=$!
sleep 0.5
kill -INT $pid
wait $pid; rc=$?
check "SIGINT exits 130" test "$rc" -eq 130
check "SIGINT leaves no output" test ! -e intr -a "$(ls -A . | grep -c '^\.intr')" -eq 0
check "SIGINT says interrupted" grep -q 'segment-gen: interrupted' intr.err
test_done
