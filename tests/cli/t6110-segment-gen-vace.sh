#!/bin/sh
# segment-gen with a Wan2.1 VACE DiT: end to end against the latents of
# diffusers' WanVACEPipeline loop (tests/fixtures/wan_vace, from
# tests/ref/wan_vace_ref.py: 4 UniPC / 3 Euler steps with CFG 5, shift 3, the
# hints at scale 1 (a) and 0.6 (b), within 1e-3 relative: max |ours - ref| <=
# 1e-3 max |ref|) for every layout, the sizes taken from the context,
# segment.json's "vace", the plan, and bad input (exit code, what is wrong
# said, nothing written).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
SG=$BIN/segment-gen
ST=$TESTBIN/helpers/st_tool
A=$ROOT/tests/fixtures/wan_vace/a
B=$ROOT/tests/fixtures/wan_vace/b
ARGS_A="--vace-context $A/vace_context.safetensors --text $A/text.safetensors --noise $A/noise.safetensors --frames 5 --width 80 --height 48 --guidance 5 --shift 3"
ARGS_B="--vace-context $B/vace_context.safetensors --vace-scale 0.6 --text $B/text.safetensors --noise $B/noise.safetensors --frames 9 --width 48 --height 32 --guidance 5 --shift 3"

close() { # description, out dir, expected tensor, fixture dir
    r=
    if [ -f "$2/latents.safetensors" ] && r=$("$ST" diff "$2/latents.safetensors" latents "$4/expected.safetensors" "$3" 1e-3); then
        ok "$1 ($r)"
    else
        fail "$1: ${r:-no latents}"
    fi
}

# ---- against diffusers' WanVACEPipeline, every layout
# shellcheck disable=SC2086
{
$SG -q -m "$A/diffusers" $ARGS_A --steps 4 -o un_a_diff; close "a diffusers dir, unipc" un_a_diff unipc "$A"
$SG -q -m "$A/diffusers" $ARGS_A --steps 3 --sampler euler -o eu_a_diff; close "a diffusers dir, euler" eu_a_diff euler "$A"
$SG -q -m "$A/comfy_bf16.safetensors" --heads 2 $ARGS_A --steps 4 -o un_a_comfy
close "a ComfyUI prefix bf16 single file (vace_layers inferred), unipc" un_a_comfy bf16_unipc "$A"
$SG -q -m "$B/diffusers" $ARGS_B --steps 4 -o un_b_diff; close "b sharded diffusers dir, scale 0.6, unipc" un_b_diff unipc "$B"
$SG -q -m "$B/wan" $ARGS_B --steps 4 -o un_b_wan; close "b Wan checkpoint dir (vace_layers [0, 1] from config.json), unipc" un_b_wan unipc "$B"
# frames, width and height from the context's shape when not given
$SG -q -m "$A/diffusers" --vace-context "$A/vace_context.safetensors" --text "$A/text.safetensors" \
    --noise "$A/noise.safetensors" --guidance 5 --shift 3 --steps 4 -o sizes
close "frames, width, height from the context [96, 2, 6, 10] (5 frames, 80x48)" sizes unipc "$A"
# the scale is applied: b at the default scale 1 is not b at 0.6
$SG -q -m "$B/diffusers" $(echo "$ARGS_B" | sed 's/--vace-scale 0.6//') --steps 4 -o b_s1
check "b at --vace-scale 1 (the default) differs from the reference at 0.6" sh -c \
    "test -f b_s1/latents.safetensors && ! '$ST' diff b_s1/latents.safetensors latents '$B/expected.safetensors' unipc 1e-2 >/dev/null"
}

# ---- segment.json
PY=
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1; then PY=$p; break; fi
done
if [ -n "$PY" ] && [ -f un_a_comfy/segment.json ] && [ -f un_b_wan/segment.json ]; then
    check "segment.json: model wan2.1-vace, vace file, scale, layers and where they came from" "$PY" -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["model"]["name"] == "wan2.1-vace" and a["model"]["vace_blocks"] == 2, a["model"]
v = a["vace"]
assert v["file"].endswith("a/vace_context.safetensors") and v["scale"] == 1.0 and v["layers"] == [0, 2], v
assert v["layers_from"].startswith("tensor names") and v["context_channels"] == 96, v
v = b["vace"]
assert v["scale"] == 0.6 and v["layers"] == [0, 1] and v["layers_from"] == "config.json", v
assert a["latents"]["shape"] == [16, 2, 6, 10] and b["latents"]["shape"] == [16, 3, 4, 6]
' un_a_comfy/segment.json un_b_wan/segment.json
else
    skip "segment.json checks (python3 not found)"
fi
check "latents metadata records the VACE scale" sh -c "grep -a -q '\"vace_scale\":\"0.6\"' un_b_wan/latents.safetensors"

# ---- the plan: a VACE model plans without its context (the pipeline plans before vae encode runs)
if $SG -m "$A/diffusers" --text "$A/text.safetensors" --frames 81 --width 832 --height 480 --plan >plan.json 2>/dev/null; then
    ok "--plan of a VACE model without --vace-context"
    if [ -n "$PY" ]; then
        check "--plan: VACE blocks, layers and the context's memory counted" "$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["vace"]["layers"] == [0, 2] and j["vace"]["blocks"] == 2, j["vace"]
# the context [96, 21, 60, 104] float32 alone is 50 MiB of activations
assert j["modes"]["cpu"]["activations"] > 96 * 21 * 60 * 104 * 4, j["modes"]["cpu"]
' plan.json
    fi
else
    fail "--plan of a VACE model without --vace-context"
fi

# ---- the GPU memory modes on a pretend device (ISOPIPE_FAKE_GPU): the weights go through nn_wres (one
# arena; packed blocks streamed, VACE block k numbered just before main block vace_layers[k]) and the
# latents are those of cpu mode, bit for bit
# shellcheck disable=SC2086
{
for mm in cpu beefy lightweight; do
    ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$A/diffusers" $ARGS_A --steps 4 --memory-mode $mm -o ma_$mm
    ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$B/wan" $ARGS_B --steps 3 --sampler euler --memory-mode $mm -o mb_$mm
done
ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$A/comfy_bf16.safetensors" --heads 2 $ARGS_A --steps 2 -o mc_cpu
ISOPIPE_FAKE_GPU=8192:8192 $SG -q -m "$A/comfy_bf16.safetensors" --heads 2 $ARGS_A --steps 2 --memory-mode lightweight -o mc_light
}
close "pretend device, cpu mode: still diffusers' latents" ma_cpu unipc "$A"
check "the activation reservation held every GPU-mode run (the CPU's shadow of the device's heaps)" \
    act_fits ma_beefy/segment.json ma_lightweight/segment.json mb_beefy/segment.json mb_lightweight/segment.json mc_light/segment.json
for mm in beefy lightweight; do
    check "pretend device, a, $mm: latents bit-identical to cpu mode" cmp -s ma_cpu/latents.safetensors ma_$mm/latents.safetensors
    check "pretend device, b (vace_layers [0, 1], scale 0.6), $mm: bit-identical to cpu mode" \
        cmp -s mb_cpu/latents.safetensors mb_$mm/latents.safetensors
done
check "pretend device, ComfyUI bf16 file, lightweight: bit-identical to cpu mode" cmp -s mc_cpu/latents.safetensors mc_light/latents.safetensors
if [ -n "$PY" ] && [ -f ma_lightweight/segment.json ] && [ -f mb_lightweight/segment.json ]; then
    check "the stream follows the forward's order (VACE blocks interleaved): every enter but the first was prefetched" \
        "$PY" -c '
import json, sys
a, b = (json.load(open(p))["memory"]["nn"] for p in sys.argv[1:3])
assert a["weights"] == "streamed" and b["weights"] == "streamed", (a, b)
# a: 4 blocks + 2 VACE blocks (layers 0, 2): 6 streamed blocks > the 2-buffer window;
# 4 steps x (cond, uncond) = 8 forwards x 6 enters
sa = a["streamed"]
assert sa["hits"] == 8 * 6 - 1 and sa["copies"] == 8 * 6 + 1, sa
# b: 3 blocks + 2 VACE blocks (layers 0, 1): 3 euler steps x 2 forwards x 5 enters
sb = b["streamed"]
assert sb["hits"] == 3 * 2 * 5 - 1 and sb["copies"] == 3 * 2 * 5 + 1, sb
' ma_lightweight/segment.json mb_lightweight/segment.json
fi

# ---- bad input: exit code, what is wrong said, nothing written
W1="$A/comfy_bf16.safetensors"
"$ST" edit "$W1" noafter.safetensors drop model.diffusion_model.vace_blocks.1.after_proj.weight
"$ST" edit "$W1" nobefore.safetensors drop model.diffusion_model.vace_blocks.0.before_proj.bias
# blocks are counted up to the first missing one: without blocks.1 the file has 1 block and 2 VACE blocks
"$ST" edit "$W1" oneblock.safetensors drop model.diffusion_model.blocks.1.self_attn.q.weight
mkdir -p badcfg badcfg0
cp "$A/diffusers/diffusion_pytorch_model.safetensors" badcfg/
cp "$A/diffusers/diffusion_pytorch_model.safetensors" badcfg0/
# config.json with other vace_layers (the list spans lines: drop it, put one after vace_in_channels)
vl() { sed -e '/"vace_layers"/,/]/d' -e "s/\"vace_in_channels\": 96,/\"vace_in_channels\": 96, \"vace_layers\": $1/" "$A/diffusers/config.json"; }
vl '[0, 4]' >badcfg/config.json
vl '[1, 2]' >badcfg0/config.json
T2V=$ROOT/tests/fixtures/wan/a/diffusers
BASE="--text $A/text.safetensors --frames 5 --width 80 --height 48 --steps 1"
# shellcheck disable=SC2086
{
expect_exit "a VACE checkpoint without --vace-context" 64 $SG -m "$A/diffusers" $BASE -o bad
check "  ... says to pass --vace-context from vae encode --vace" sh -c "grep -q -- '--vace-context' '$T/.err' && grep -q 'vae encode --vace' '$T/.err'"
expect_exit "--vace-context given to a text-to-video checkpoint" 64 $SG -m "$T2V" $BASE --vace-context "$A/vace_context.safetensors" -o bad
check "  ... says it is text-to-video and needs a VACE checkpoint" sh -c "grep -q 'text-to-video' '$T/.err' && grep -q 'VACE checkpoint' '$T/.err'"
expect_exit "a context of another shape than the latents'" 65 $SG -m "$A/diffusers" $BASE --vace-context "$B/vace_context.safetensors" -o bad
check "  ... gives both shapes" sh -c "grep -q '96, 3, 4, 6' '$T/.err' && grep -q '96, 2, 6, 10' '$T/.err'"
expect_exit "--vace-scale without --vace-context" 64 $SG -m "$A/diffusers" $BASE --vace-scale 0.5 -o bad
expect_exit "--vace-scale out of range" 64 $SG -m "$A/diffusers" $BASE --vace-context "$A/vace_context.safetensors" --vace-scale -1 -o bad
expect_exit "a context file without 'vace_context'" 65 $SG -m "$A/diffusers" $BASE --vace-context "$A/noise.safetensors" -o bad
check "  ... names 'vace_context'" stderr_has "vace_context"
expect_exit "a context file that does not exist" 66 $SG -m "$A/diffusers" $BASE --vace-context no-such-ctx.safetensors -o bad
expect_exit "a VACE block without its after_proj" 65 $SG -m noafter.safetensors --heads 2 $BASE --vace-context "$A/vace_context.safetensors" -o bad
check "  ... is named" stderr_has "vace_blocks.1.after_proj.weight"
expect_exit "the first VACE block without before_proj's bias" 65 $SG -m nobefore.safetensors --heads 2 $BASE --vace-context "$A/vace_context.safetensors" -o bad
check "  ... is named" stderr_has "vace_blocks.0.before_proj.bias"
expect_exit "more VACE blocks than blocks" 65 $SG -m oneblock.safetensors --heads 2 $BASE --vace-context "$A/vace_context.safetensors" -o bad
check "  ... says so" stderr_has "more VACE blocks"
expect_exit "config.json's vace_layers past the last block" 65 $SG -m badcfg $BASE --vace-context "$A/vace_context.safetensors" -o bad
check "  ... says vace_layers" stderr_has "vace_layers"
expect_exit "config.json's vace_layers not starting at 0" 65 $SG -m badcfg0 $BASE --vace-context "$A/vace_context.safetensors" -o bad
expect_exit "--vace-context given to a keyframe model" 64 $SG -m morph --start a.png --end b.png --vace-context "$A/vace_context.safetensors" -o bad
check "  ... says it is for a VACE checkpoint" stderr_has "VACE"
}
check "nothing written by any refused run" test ! -e bad
test_done
