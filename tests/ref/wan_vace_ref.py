#!/usr/bin/env python3
"""Reference fixtures for segment-gen's Wan2.1 VACE DiT (tools/segment-gen/wan.c), from diffusers.

For tiny random diffusers WanVACETransformer3DModels (every weight randomised:
norms, biases, both kinds of scale_shift_table, the VACE patch embedding and
every VACE block's proj_in / proj_out included) this runs diffusers' own
WanVACEPipeline denoising loop (output_type="latent", text embeddings passed in
as prompt_embeds / negative_prompt_embeds zero-padded to 512 rows, latents =
our noise, its own scheduler) and writes, under tests/fixtures/wan_vace/<cfg>/:

  diffusers/        config.json (with vace_layers, vace_in_channels) +
                    diffusion_pytorch_model*.safetensors (config "b" sharded)
  comfy_bf16.safetensors (a only)
                    the same weights under the original Wan2.1 names
                    (vace_blocks.N.before_proj / after_proj, self_attn.q, norm3,
                    modulation, ...) behind ComfyUI's "model.diffusion_model."
                    prefix, in bfloat16, no config.json: vace_layers must be
                    inferred from the block count (2 VACE blocks of 4: every 2nd);
                    its expected outputs come from diffusers run on the
                    bf16-rounded weights
  wan/ (b only)     a Wan checkpoint directory: Wan's config.json (dim,
                    num_heads, vace_layers [0, 1] -- not every k-th block, so
                    only the config can say it -- vace_in_dim, model_type
                    "vace") + the weights under the original names
                    The name mapping is checked here against diffusers' own
                    convert_wan_transformer_to_diffusers, key for key, bit for bit.
  text.safetensors  prompt.0, prompt.1, negative (text-encode's layout)
  noise.safetensors noise [16, F, H/8, W/8]
  vace_context.safetensors
                    vace_context [96, F, H/8, W/8]: what WanVACEPipeline built
                    from a travel-between-images video and mask (keyframes at
                    the first and the last frame kept, mask 0; the frames
                    between gray, mask 1) with a tiny random AutoencoderKLWan,
                    captured at the transformer's input (the layout `vae encode
                    --vace` writes)
  expected.safetensors
                    velocity_cond: one forward, prompt.0, t = T_COND, with the
                                   context at the config's scale
                    unipc: WanVACEPipeline, UniPCMultistepScheduler
                           (flow_prediction, use_flow_sigmas, flow_shift 3),
                           4 steps, guidance 5, conditioning_scale = the config's
                    euler (a only): the same with FlowMatchEulerDiscreteScheduler
                           (shift 3), 3 steps
                    (+ bf16_velocity_cond, bf16_unipc for "a")
                    the run parameters are in its __metadata__.

The module also builds tiny random VACE models for other tests:
tests/ref/wan_vace_tiny.py writes one in the diffusers layout to a directory.

This is a test-data generator only: PyTorch/diffusers are never isopipe dependencies.
  /tmp/ref/bin/python tests/ref/wan_vace_ref.py tests/fixtures/wan_vace
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
import diffusers
from diffusers import (AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler,
                       WanVACEPipeline, WanVACETransformer3DModel)
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from PIL import Image
from safetensors.torch import save_file

TEXT_LEN = 512
T_COND = 999.0
SHIFT = 3.0
GUIDANCE = 5.0
UNIPC_STEPS = 4
EULER_STEPS = 3

CONFIGS = {
    # 2 heads x 12, 4 blocks, VACE after blocks 0 and 2 (every 2nd: inferable), cross-attention
    # norm, 5 frames at 80x48: latents 2x6x10, 30 tokens; hints at scale 1
    "a": dict(heads=2, head_dim=12, layers=4, vace_layers=[0, 2], ffn=40, text_dim=20, freq_dim=32,
              cross_attn_norm=True, frames=5, width=80, height=48, scale=1.0, seed=11, sharded=False,
              comfy_bf16=True, wan_dir=False, euler=True),
    # 3 heads x 6, 3 blocks, VACE after blocks 0 and 1 (only config.json can say so), no
    # cross-attention norm, 9 frames at 48x32: latents 3x4x6, 18 tokens; hints at scale 0.6
    "b": dict(heads=3, head_dim=6, layers=3, vace_layers=[0, 1], ffn=28, text_dim=12, freq_dim=16,
              cross_attn_norm=False, frames=9, width=48, height=32, scale=0.6, seed=12, sharded=True,
              comfy_bf16=False, wan_dir=True, euler=False),
}


def randomise(model, g):
    """Every parameter random, norms and modulation tables included: a weight
    left at 1 or 0 (VACE's projections start at 0 in Wan) would hide a missing
    or misplaced term."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "scale_shift_table" in name:
                p.copy_(0.4 * torch.randn(p.shape, generator=g))
            else:
                fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else p.shape[0]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def make_vace_model(heads, head_dim, layers, vace_layers, ffn, text_dim, freq_dim, cross_attn_norm, seed,
                    vace_in=96):
    """A tiny WanVACETransformer3DModel, float32, every weight random (seeded)."""
    model = WanVACETransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim,
                                      in_channels=16, out_channels=16, text_dim=text_dim, freq_dim=freq_dim,
                                      ffn_dim=ffn, num_layers=layers, cross_attn_norm=cross_attn_norm,
                                      qk_norm="rms_norm_across_heads", eps=1e-6, vace_layers=list(vace_layers),
                                      vace_in_channels=vace_in).float().eval()
    randomise(model, torch.Generator().manual_seed(1000 + seed))
    return model


def to_wan_names(sd):
    """diffusers -> original Wan2.1 names (our own inverse of the published map),
    VACE blocks included (proj_in = before_proj, proj_out = after_proj)."""
    out = {}
    for k, v in sd.items():
        n = k
        vace = n.startswith("vace_blocks.")
        if vace:
            n = n.replace(".proj_in.", ".before_proj.").replace(".proj_out.", ".after_proj.")
        for a, b in [("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
                     ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
                     ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
                     ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
                     ("condition_embedder.time_proj", "time_projection.1"),
                     ("attn1.", "self_attn."), ("attn2.", "cross_attn."),
                     (".to_q.", ".q."), (".to_k.", ".k."), (".to_v.", ".v."), (".to_out.0.", ".o."),
                     ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2")]:
            n = n.replace(a, b)
        if (n.startswith("blocks.") or vace) and ".norm2." in n:
            n = n.replace(".norm2.", ".norm3.")
        if n == "scale_shift_table":
            n = "head.modulation"
        elif n.endswith(".scale_shift_table"):
            n = n.replace(".scale_shift_table", ".modulation")
        if n.startswith("proj_out."):
            n = n.replace("proj_out", "head.head")
        out[n] = v.clone().contiguous()
    return out


def check_names(sd):
    wan = to_wan_names(sd)
    back = convert_wan_transformer_to_diffusers({k: v.clone() for k, v in wan.items()})
    assert set(back) == set(sd), (set(back) ^ set(sd))
    for k in sd:
        assert torch.equal(back[k], sd[k]), k
    return wan


def pad(e):
    out = torch.zeros(1, TEXT_LEN, e.shape[1])
    out[0, : e.shape[0]] = e
    return out


def tiny_vae():
    """A tiny random AutoencoderKLWan (Wan's layout: 8x in space, 4x in time); the
    context it makes is an input fixture, its exact weights do not matter."""
    torch.manual_seed(5)
    return AutoencoderKLWan(base_dim=4, z_dim=16, dim_mult=[1, 1, 2, 2], num_res_blocks=1,
                            temperal_downsample=[False, True, True]).float().eval()


def travel_video(c, g):
    """keyframes A (frame 0) and B (frame N-1) kept, the frames between gray and generated"""
    N, H, W = c["frames"], c["height"], c["width"]
    video, mask = [], []
    for f in range(N):
        if f in (0, N - 1):
            px = (torch.rand(H, W, 3, generator=g) * 255).round().to(torch.uint8).numpy()
            video.append(Image.fromarray(px))
            mask.append(Image.fromarray(np.zeros((H, W, 3), np.uint8)))
        else:
            video.append(Image.fromarray(np.full((H, W, 3), 128, np.uint8)))
            mask.append(Image.fromarray(np.full((H, W, 3), 255, np.uint8)))
    return video, mask


def run_pipeline(model, vae, sched, c, noise, cond, neg, video, mask, steps):
    """WanVACEPipeline's loop; returns (latents, the control_hidden_states the transformer saw)"""
    seen = []
    orig = model.forward

    def spy(*a, **k):
        seen.append(k["control_hidden_states"].detach().clone())
        return orig(*a, **k)

    model.forward = spy
    try:
        pipe = WanVACEPipeline(tokenizer=None, text_encoder=None, vae=vae, scheduler=sched, transformer=model)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(video=video, mask=mask, conditioning_scale=c["scale"], height=c["height"], width=c["width"],
                   num_frames=c["frames"], num_inference_steps=steps, guidance_scale=GUIDANCE,
                   latents=noise.clone(), prompt_embeds=cond, negative_prompt_embeds=neg, output_type="latent",
                   return_dict=False)[0]
    finally:
        del model.forward
    assert len(seen) == 2 * steps, len(seen)   # cond and uncond per step
    for s in seen[1:]:
        assert torch.equal(s, seen[0])
    return out[0].float(), seen[0][0].float().contiguous()


def schedulers():
    un = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
                                 flow_shift=SHIFT)
    eu = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=SHIFT)
    return un, eu


def run_all(model, vae, c, noise, text, video, mask, tag, exp):
    cond, neg = pad(text["prompt.0"]), pad(text["negative"])
    un, eu = schedulers()
    exp[tag + "unipc"], ctx = run_pipeline(model, vae, un, c, noise, cond, neg, video, mask, UNIPC_STEPS)
    if c["euler"] and not tag:
        exp["euler"], ctx2 = run_pipeline(model, vae, eu, c, noise, cond, neg, video, mask, EULER_STEPS)
        assert torch.equal(ctx, ctx2)
    n = len(c["vace_layers"])
    with torch.no_grad():
        exp[tag + "velocity_cond"] = model(hidden_states=noise, timestep=torch.tensor([T_COND]),
                                           encoder_hidden_states=cond, control_hidden_states=ctx[None],
                                           control_hidden_states_scale=torch.full((n,), c["scale"]),
                                           return_dict=False)[0][0]
    return ctx


def fixture_size(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/wan_vace"
    torch.set_num_threads(2)
    versions = f"torch {torch.__version__}, diffusers {diffusers.__version__}"
    meta = {"made_by": "tests/ref/wan_vace_ref.py", "versions": versions}
    for name, c in CONFIGS.items():
        d = os.path.join(root, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        model = make_vace_model(c["heads"], c["head_dim"], c["layers"], c["vace_layers"], c["ffn"], c["text_dim"],
                                c["freq_dim"], c["cross_attn_norm"], c["seed"])
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        wan = check_names(sd)

        model.save_pretrained(os.path.join(d, "diffusers"), safe_serialization=True,
                              max_shard_size="60KB" if c["sharded"] else "100MB")
        if c["wan_dir"]:
            wd = os.path.join(d, "wan")
            os.makedirs(wd)
            save_file(wan, os.path.join(wd, "diffusion_pytorch_model.safetensors"), metadata=meta)
            # what Wan2.1-VACE's config.json holds (VaceWanModel's fields)
            with open(os.path.join(wd, "config.json"), "w") as f:
                json.dump({"_class_name": "VaceWanModel", "dim": c["heads"] * c["head_dim"], "eps": 1e-6,
                           "ffn_dim": c["ffn"], "freq_dim": c["freq_dim"], "in_dim": 16, "model_type": "vace",
                           "num_heads": c["heads"], "num_layers": c["layers"], "out_dim": 16, "text_len": 512,
                           "vace_in_dim": 96, "vace_layers": c["vace_layers"]}, f, indent=2)

        g = torch.Generator().manual_seed(2000 + c["seed"])
        text = {"prompt.0": torch.randn(7, c["text_dim"], generator=g),
                "prompt.1": torch.randn(3, c["text_dim"], generator=g),
                "negative": torch.randn(5, c["text_dim"], generator=g)}
        save_file(text, os.path.join(d, "text.safetensors"), metadata=meta)
        F, H, W = (c["frames"] - 1) // 4 + 1, c["height"] // 8, c["width"] // 8
        noise = torch.randn(1, 16, F, H, W, generator=g)
        save_file({"noise": noise[0].contiguous()}, os.path.join(d, "noise.safetensors"), metadata=meta)
        video, mask = travel_video(c, g)
        vae = tiny_vae()

        exp = {}
        ctx = run_all(model, vae, c, noise, text, video, mask, "", exp)
        assert tuple(ctx.shape) == (96, F, H, W), ctx.shape
        save_file({"vace_context": ctx}, os.path.join(d, "vace_context.safetensors"), metadata=meta)
        if c["comfy_bf16"]:
            h = {"model.diffusion_model." + k: v.to(torch.bfloat16) for k, v in wan.items()}
            save_file(h, os.path.join(d, "comfy_bf16.safetensors"), metadata=meta)
            m2 = WanVACETransformer3DModel.from_config(model.config).float().eval()
            m2.load_state_dict(convert_wan_transformer_to_diffusers({k: v.float() for k, v in h.items()}),
                               strict=True)
            ctx2 = run_all(m2, vae, c, noise, text, video, mask, "bf16_", exp)
            assert torch.equal(ctx, ctx2)
        un, eu = schedulers()
        un.set_timesteps(UNIPC_STEPS)
        eu.set_timesteps(EULER_STEPS)
        emeta = dict(meta, config=json.dumps(c), t_cond=repr(T_COND), shift=repr(SHIFT), guidance=repr(GUIDANCE),
                     scale=repr(c["scale"]), unipc_steps=str(UNIPC_STEPS), euler_steps=str(EULER_STEPS),
                     unipc_timesteps=json.dumps([int(t) for t in un.timesteps]),
                     euler_timesteps=json.dumps([float(t) for t in eu.timesteps]))
        save_file({k: v.contiguous() for k, v in exp.items()}, os.path.join(d, "expected.safetensors"),
                  metadata=emeta)
        # how much the VACE branch moves the result: the same loop with the hints at scale 0
        c0 = dict(c, scale=0.0)
        un0, _ = schedulers()
        lat0, _ = run_pipeline(model, vae, un0, c0, noise, pad(text["prompt.0"]), pad(text["negative"]), video, mask,
                               UNIPC_STEPS)
        diff = float((exp["unipc"] - lat0).abs().max() / exp["unipc"].abs().max())
        print(f"{name}: tokens {F * (H // 2) * (W // 2)}, vace_layers {c['vace_layers']}, scale {c['scale']}, "
              f"|ctx| {float(ctx.abs().mean()):.3f}, |unipc| {float(exp['unipc'].abs().mean()):.3f}, "
              f"VACE moves unipc by {diff:.3f} of max|ref|, {fixture_size(d)} bytes")
    print(f"total {fixture_size(root)} bytes")


if __name__ == "__main__":
    main()
