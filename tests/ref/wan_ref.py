#!/usr/bin/env python3
"""Reference fixtures for segment-gen's Wan2.1 DiT (tools/segment-gen/wan*.c), from diffusers.

For several tiny random Wan2.1 text-to-video transformers (diffusers'
WanTransformer3DModel; every weight randomised, norms, biases and both
scale_shift_tables included) this writes, under tests/fixtures/wan/<cfg>/:

  diffusers/        config.json + diffusion_pytorch_model*.safetensors (diffusers names;
                    config "b" is sharded with a .safetensors.index.json)
  wan/ or wan.safetensors
                    the same weights under the original Wan2.1 names (time_embedding.0,
                    blocks.N.self_attn.q, ffn.0, modulation, head.head, ...; diffusers'
                    norm2 is Wan's norm3). The mapping is checked here against diffusers'
                    own convert_wan_transformer_to_diffusers, key for key and bit for bit.
                    "a" is a Wan checkpoint directory whose config.json has what Wan's has
                    (dim, num_heads, ... but no text_dim); "b" a bare single file (heads
                    cannot come from dim/128 there: the test passes --heads).
  comfy_fp8.safetensors (a only)
                    ComfyUI-style: "model.diffusion_model." prefix, every block Linear
                    weight float8_e4m3fn with a float32 "<name>.scale_weight" beside it
                    ("scaled fp8"), a "scaled_fp8" marker tensor; expected outputs for it
                    come from diffusers run on the dequantised weights.
  wan_bf16.safetensors (b only)
                    every tensor in bfloat16 (as ComfyUI's bf16 files); expected outputs
                    from diffusers run on the bf16-rounded weights in float32
  text.safetensors  prompt.0 [7, text_dim], prompt.1 [3, text_dim], negative [5, text_dim]
                    (the layout text-encode writes; zero-padded to 512 rows inside)
  noise.safetensors noise [16, F, H/8, W/8]
  expected.safetensors
                    velocity_cond: one forward, prompt.0, t = T_COND (float)
                    velocity_neg:  one forward, negative, t = T_NEG
                    euler: 3 steps, shift 3, guidance 5 (FlowMatchEulerDiscreteScheduler)
                    unipc: 4 steps, shift 3, guidance 5 (UniPCMultistepScheduler,
                           flow_prediction, use_flow_sigmas, bh2, order 2)
                    (+ fp8_velocity_cond, fp8_unipc for "a", bf16_velocity_cond,
                    bf16_unipc for "b"); the run parameters are
                    in the file's __metadata__.

The sampling loop is diffusers' WanPipeline's: latents float32, the transformer
called with timestep = t (UniPC: int64 timesteps; Euler: float 1000*sigma),
noise_pred = uncond + G * (cond - uncond), scheduler.step(noise_pred, t, latents).
The prompt embeddings are zero-padded to 512 rows, as WanPipeline does.

This is a test-data generator only: PyTorch/diffusers are never isopipe dependencies.
  /tmp/ref/bin/python tests/ref/wan_ref.py tests/fixtures/wan
"""
import json
import os
import sys

import numpy as np
import torch
import diffusers
from diffusers import WanTransformer3DModel, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from safetensors.torch import save_file

TEXT_LEN = 512
T_COND = 999.0
T_NEG = 333.75
EULER = dict(steps=3, shift=3.0, guidance=5.0)
UNIPC = dict(steps=4, shift=3.0, guidance=5.0)

CONFIGS = {
    # 2 heads x 12, 2 blocks, cross-attention norm, 2x6x10 latents (5 frames, 80x48): 2x3x5 tokens
    "a": dict(heads=2, head_dim=12, layers=2, ffn=40, text_dim=20, freq_dim=32, cross_attn_norm=True,
              frames=5, width=80, height=48, seed=1, sharded=False, wan_dir=True, fp8=True, half=None),
    # 4 heads x 8, 1 block, no cross-attention norm, 3x4x6 latents (9 frames, 48x32): 3x2x3 tokens
    "b": dict(heads=4, head_dim=8, layers=1, ffn=48, text_dim=16, freq_dim=16, cross_attn_norm=False,
              frames=9, width=48, height=32, seed=2, sharded=True, wan_dir=False, fp8=False, half="bf16"),
}


def randomise(model, g):
    """Every parameter random, norms and modulation tables included: a weight
    left at 1 or 0 would hide a missing or misplaced term."""
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


def to_wan_names(sd):
    """diffusers -> original Wan2.1 names (our own inverse of the published map)."""
    out = {}
    for k, v in sd.items():
        n = k
        for a, b in [("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
                     ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
                     ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
                     ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
                     ("condition_embedder.time_proj", "time_projection.1"),
                     ("attn1.", "self_attn."), ("attn2.", "cross_attn."),
                     (".to_q.", ".q."), (".to_k.", ".k."), (".to_v.", ".v."), (".to_out.0.", ".o."),
                     ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2")]:
            n = n.replace(a, b)
        if n.startswith("blocks.") and ".norm2." in n:
            n = n.replace(".norm2.", ".norm3.")
        if n == "scale_shift_table":
            n = "head.modulation"
        elif n.endswith(".scale_shift_table"):
            n = n.replace(".scale_shift_table", ".modulation")
        n = n.replace("proj_out", "head.head")
        out[n] = v.clone().contiguous()
    return out


def wan_sample(model, sched, noise, cond, uncond, guidance):
    lat = noise.clone()
    for t in sched.timesteps:
        ts = t.expand(1)
        with torch.no_grad():
            vc = model(hidden_states=lat, timestep=ts, encoder_hidden_states=cond, return_dict=False)[0]
            vu = model(hidden_states=lat, timestep=ts, encoder_hidden_states=uncond, return_dict=False)[0]
        v = vu + guidance * (vc - vu)
        lat = sched.step(v, t, lat, return_dict=False)[0]
    return lat


def schedulers():
    eu = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=EULER["shift"])
    eu.set_timesteps(EULER["steps"])
    un = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                 use_flow_sigmas=True, flow_shift=UNIPC["shift"])
    un.set_timesteps(UNIPC["steps"])
    return eu, un


def pad(e):
    out = torch.zeros(1, TEXT_LEN, e.shape[1])
    out[0, : e.shape[0]] = e
    return out


def run_all(model, noise, text, tag, exp):
    cond, neg = pad(text["prompt.0"]), pad(text["negative"])
    with torch.no_grad():
        exp[tag + "velocity_cond"] = model(hidden_states=noise, timestep=torch.tensor([T_COND]),
                                           encoder_hidden_states=cond, return_dict=False)[0][0]
        if not tag:
            exp["velocity_neg"] = model(hidden_states=noise, timestep=torch.tensor([T_NEG]),
                                        encoder_hidden_states=neg, return_dict=False)[0][0]
    eu, un = schedulers()
    if not tag:
        exp["euler"] = wan_sample(model, eu, noise, cond, neg, EULER["guidance"])[0]
    exp[tag + "unipc"] = wan_sample(model, un, noise, cond, neg, UNIPC["guidance"])[0]


def fp8_scaled(sd):
    out, deq = {}, {}
    for k, v in sd.items():
        if k.startswith("blocks.") and k.endswith(".weight") and v.ndim == 2:
            scale = v.abs().max() / 448.0
            q = (v / scale).to(torch.float8_e4m3fn)
            out["model.diffusion_model." + k] = q
            out["model.diffusion_model." + k[: -len("weight")] + "scale_weight"] = scale.reshape(()).float()
            deq[k] = q.float() * scale
        else:
            out["model.diffusion_model." + k] = v
            deq[k] = v
    out["model.diffusion_model.scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    return out, deq


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/wan"
    torch.set_num_threads(2)
    versions = f"torch {torch.__version__}, diffusers {diffusers.__version__}"
    for name, c in CONFIGS.items():
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        g = torch.Generator().manual_seed(1000 + c["seed"])
        model = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=c["heads"],
                                      attention_head_dim=c["head_dim"], in_channels=16, out_channels=16,
                                      text_dim=c["text_dim"], freq_dim=c["freq_dim"], ffn_dim=c["ffn"],
                                      num_layers=c["layers"], cross_attn_norm=c["cross_attn_norm"],
                                      qk_norm="rms_norm_across_heads", eps=1e-6).float().eval()
        randomise(model, g)
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

        # the original names, proven against diffusers' own converter
        wan = to_wan_names(sd)
        back = convert_wan_transformer_to_diffusers({k: v.clone() for k, v in wan.items()})
        assert set(back) == set(sd), (set(back) ^ set(sd))
        for k in sd:
            assert torch.equal(back[k], sd[k]), k

        # diffusers directory
        dd = os.path.join(d, "diffusers")
        os.makedirs(dd, exist_ok=True)
        for f in os.listdir(dd):
            os.remove(os.path.join(dd, f))
        model.save_pretrained(dd, safe_serialization=True,
                              max_shard_size="40KB" if c["sharded"] else "100MB")
        meta = {"made_by": "tests/ref/wan_ref.py", "versions": versions}
        if c["wan_dir"]:
            wd = os.path.join(d, "wan")
            os.makedirs(wd, exist_ok=True)
            save_file(wan, os.path.join(wd, "diffusion_pytorch_model.safetensors"), metadata=meta)
            dim = c["heads"] * c["head_dim"]
            # what Wan2.1's own config.json holds (no text_dim, no patch_size: those come from shapes)
            with open(os.path.join(wd, "config.json"), "w") as f:
                json.dump({"_class_name": "WanModel", "dim": dim, "eps": 1e-6, "ffn_dim": c["ffn"],
                           "freq_dim": c["freq_dim"], "in_dim": 16, "model_type": "t2v",
                           "num_heads": c["heads"], "num_layers": c["layers"], "out_dim": 16,
                           "text_len": 512}, f, indent=2)
        else:
            save_file(wan, os.path.join(d, "wan.safetensors"), metadata=meta)

        # inputs
        g2 = torch.Generator().manual_seed(2000 + c["seed"])
        text = {"prompt.0": torch.randn(7, c["text_dim"], generator=g2),
                "prompt.1": torch.randn(3, c["text_dim"], generator=g2),
                "negative": torch.randn(5, c["text_dim"], generator=g2)}
        save_file(text, os.path.join(d, "text.safetensors"), metadata=meta)
        F, H, W = (c["frames"] - 1) // 4 + 1, c["height"] // 8, c["width"] // 8
        noise = torch.randn(1, 16, F, H, W, generator=g2)
        save_file({"noise": noise[0].contiguous()}, os.path.join(d, "noise.safetensors"), metadata=meta)

        exp = {}
        run_all(model, noise, text, "", exp)
        if c["fp8"]:
            q, deq = fp8_scaled(wan)
            save_file(q, os.path.join(d, "comfy_fp8.safetensors"), metadata=meta)
            m2 = WanTransformer3DModel.from_config(model.config).float().eval()
            m2.load_state_dict(convert_wan_transformer_to_diffusers(deq), strict=True)
            run_all(m2, noise, text, "fp8_", exp)
        if c["half"]:
            h = {k: v.to(torch.bfloat16) for k, v in wan.items()}
            save_file(h, os.path.join(d, "wan_bf16.safetensors"), metadata=meta)
            m3 = WanTransformer3DModel.from_config(model.config).float().eval()
            m3.load_state_dict(convert_wan_transformer_to_diffusers({k: v.float() for k, v in h.items()}), strict=True)
            run_all(m3, noise, text, "bf16_", exp)
        eu, un = schedulers()
        emeta = dict(meta, config=json.dumps(c), t_cond=repr(T_COND), t_neg=repr(T_NEG),
                     euler=json.dumps(EULER), unipc=json.dumps(UNIPC),
                     euler_timesteps=json.dumps([float(t) for t in eu.timesteps]),
                     euler_sigmas=json.dumps([float(s) for s in eu.sigmas]),
                     unipc_timesteps=json.dumps([int(t) for t in un.timesteps]),
                     unipc_sigmas=json.dumps([float(s) for s in un.sigmas]))
        save_file({k: v.contiguous() for k, v in exp.items()}, os.path.join(d, "expected.safetensors"),
                  metadata=emeta)
        print(name, "tokens", F * (H // 2) * (W // 2), "euler t", [float(t) for t in eu.timesteps],
              "sigmas", [float(s) for s in eu.sigmas], "unipc t", [int(t) for t in un.timesteps],
              "sigmas", [float(s) for s in un.sigmas],
              "|v|", float(exp["velocity_cond"].abs().mean()), "|euler|", float(exp["euler"].abs().mean()))


if __name__ == "__main__":
    main()
