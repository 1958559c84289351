#!/usr/bin/env python3
"""Reference side of tests/bench/wan/run.sh (never an isopipe dependency).

  bench.py make DIR DIM HEADS LAYERS FFN TEXT_DIM FRAMES WIDTH HEIGHT
      a random WanTransformer3DModel (float32, every weight random) saved as a
      diffusers directory DIR/model, text embeddings DIR/text.safetensors
      (prompt.0 [40, TEXT_DIM], negative [20, TEXT_DIM]) and DIR/noise.safetensors
  bench.py run DIR THREADS STEPS SHIFT GUIDANCE
      diffusers' WanPipeline loop (UniPCMultistepScheduler flow_prediction, CFG)
      on torch.set_num_threads(THREADS); writes DIR/ref_latents.safetensors and
      prints "per_step_s=..." (wall seconds per step, the first step excluded
      when STEPS > 1: it pays one-time allocation)
"""
import sys
import time

import torch
from diffusers import WanTransformer3DModel, UniPCMultistepScheduler
from safetensors.torch import load_file, save_file


def make(d, dim, heads, layers, ffn, text_dim, frames, width, height):
    import os
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    m = WanTransformer3DModel(num_attention_heads=heads, attention_head_dim=dim // heads, in_channels=16,
                              out_channels=16, text_dim=text_dim, freq_dim=256, ffn_dim=ffn, num_layers=layers,
                              cross_attn_norm=True).float().eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif "scale_shift_table" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                fan = p[0].numel() if p.ndim > 1 else p.shape[0]
                p.copy_(torch.randn(p.shape, generator=g) / fan ** 0.5)
    m.save_pretrained(d + "/model", safe_serialization=True)
    save_file({"prompt.0": torch.randn(40, text_dim, generator=g), "negative": torch.randn(20, text_dim, generator=g)},
              d + "/text.safetensors")
    F, H, W = (frames - 1) // 4 + 1, height // 8, width // 8
    save_file({"noise": torch.randn(16, F, H, W, generator=g)}, d + "/noise.safetensors")


def run(d, threads, steps, shift, guidance):
    torch.set_num_threads(threads)
    import glob
    m = WanTransformer3DModel.from_config(WanTransformer3DModel.load_config(d + "/model")).float().eval()
    sd = {}
    for f in sorted(glob.glob(d + "/model/*.safetensors")):
        sd.update(load_file(f))
    m.load_state_dict(sd, strict=True)
    text = load_file(d + "/text.safetensors")
    lat = load_file(d + "/noise.safetensors")["noise"][None]

    def pad(e):
        out = torch.zeros(1, 512, e.shape[1])
        out[0, : e.shape[0]] = e
        return out
    cond, neg = pad(text["prompt.0"]), pad(text["negative"])
    sched = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                    use_flow_sigmas=True, flow_shift=shift)
    sched.set_timesteps(steps)
    times = []
    with torch.no_grad():
        for t in sched.timesteps:
            t0 = time.perf_counter()
            ts = t.expand(1)
            vc = m(hidden_states=lat, timestep=ts, encoder_hidden_states=cond, return_dict=False)[0]
            vu = m(hidden_states=lat, timestep=ts, encoder_hidden_states=neg, return_dict=False)[0]
            lat = sched.step(vu + guidance * (vc - vu), t, lat, return_dict=False)[0]
            times.append(time.perf_counter() - t0)
    save_file({"latents": lat[0].contiguous()}, d + "/ref_latents.safetensors")
    use = times[1:] if len(times) > 1 else times
    print("per_step_s=%.4f first_step_s=%.4f torch=%s threads=%d" % (sum(use) / len(use), times[0],
                                                                     torch.__version__, torch.get_num_threads()))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], *[int(x) for x in sys.argv[3:11]])
    else:
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
