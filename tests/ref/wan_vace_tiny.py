#!/usr/bin/env python3
"""Write one tiny random Wan2.1 VACE DiT (diffusers' WanVACETransformer3DModel,
every weight random and seeded: tests/ref/wan_vace_ref.py's make_vace_model)
for tests that need a VACE checkpoint segment-gen can run, not a proof.

  /tmp/ref/bin/python tests/ref/wan_vace_tiny.py OUT_DIR [--text-dim 16] [--heads 2]
      [--head-dim 8] [--layers 2] [--vace-layers 0,1] [--ffn 32] [--freq-dim 16]
      [--layout diffusers|wan|comfy] [--dtype f32|bf16] [--seed 1]

--layout diffusers (default): OUT_DIR/config.json + diffusion_pytorch_model.safetensors,
the layout of Wan-AI/Wan2.1-VACE-1.3B-diffusers; wan: the original names with Wan's
config.json (model_type "vace", vace_layers, vace_in_dim); comfy: OUT_DIR/wan_vace.safetensors,
original names behind "model.diffusion_model.", no config (segment-gen then needs
--heads unless dim / 128 heads, and infers vace_layers: every k-th block).
--text-dim must be the width of the embeddings text-encode writes (umT5's d_model).
Prints the files written and their total size.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wan_vace_ref import check_names, make_vace_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--text-dim", type=int, default=16)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=8)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vace-layers", default="0,1")
    ap.add_argument("--ffn", type=int, default=32)
    ap.add_argument("--freq-dim", type=int, default=16)
    ap.add_argument("--no-cross-attn-norm", action="store_true")
    ap.add_argument("--layout", choices=["diffusers", "wan", "comfy"], default="diffusers")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    vl = [int(x) for x in a.vace_layers.split(",")]
    model = make_vace_model(a.heads, a.head_dim, a.layers, vl, a.ffn, a.text_dim, a.freq_dim,
                            not a.no_cross_attn_norm, a.seed)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    os.makedirs(a.out, exist_ok=True)
    meta = {"made_by": "tests/ref/wan_vace_tiny.py"}
    if a.layout == "diffusers":
        model.to(dt).save_pretrained(a.out, safe_serialization=True)
    else:
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        wan = {k: v.to(dt) for k, v in check_names(sd).items()}
        if a.layout == "comfy":
            save_file({"model.diffusion_model." + k: v for k, v in wan.items()},
                      os.path.join(a.out, "wan_vace.safetensors"), metadata=meta)
        else:
            save_file(wan, os.path.join(a.out, "diffusion_pytorch_model.safetensors"), metadata=meta)
            with open(os.path.join(a.out, "config.json"), "w") as f:
                json.dump({"_class_name": "VaceWanModel", "dim": a.heads * a.head_dim, "eps": 1e-6, "ffn_dim": a.ffn,
                           "freq_dim": a.freq_dim, "in_dim": 16, "model_type": "vace", "num_heads": a.heads,
                           "num_layers": a.layers, "out_dim": 16, "text_len": 512, "vace_in_dim": 96,
                           "vace_layers": vl}, f, indent=2)
    total = 0
    for f in sorted(os.listdir(a.out)):
        n = os.path.getsize(os.path.join(a.out, f))
        total += n
        print(f"{os.path.join(a.out, f)} {n}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
