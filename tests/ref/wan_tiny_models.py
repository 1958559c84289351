#!/usr/bin/env python3
"""Tiny random Wan2.1 models for the MODEL=wan pipeline's end-to-end test
(tests/cli/t7010-wan-pipeline.sh) and the `make models-wan` mirror test: the
four models the pipeline needs, each in the diffusers layout a user's
download has, named as the pipeline's defaults so that
ISOPIPE_MODELS=tests/fixtures/wan_tiny finds them:

  umt5-xxl/          UMT5EncoderModel (transformers): config.json, model.safetensors (bf16),
                     spiece.model (a copy of tests/fixtures/spm/uni_raw.model, 1400 pieces)
  wan2.1-t2v-1.3b/   WanTransformer3DModel (diffusers): config.json, diffusion_pytorch_model.safetensors
  wan2.1-vace-1.3b/  WanVACETransformer3DModel (diffusers), VACE blocks at layers 0 and 1
  wan2.1-vae/        AutoencoderKLWan (diffusers), bf16

The weights are random (seeded): the frames they make are noise. What the
test checks is the plumbing -- every stage, the files, the frame counts, the
resume -- not the pictures. The dimensions agree with each other (text_dim =
d_model = 16, 16 latent channels, VACE's 96 context channels) so the chain
runs; sizes are kept small so the whole set is a few hundred KB.

Usage: /tmp/ref/bin/python tests/ref/wan_tiny_models.py [OUTDIR]   (default tests/fixtures/wan_tiny)
"""
import json
import os
import shutil
import sys

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel, WanVACETransformer3DModel
from safetensors.torch import save_file
from transformers import UMT5Config, UMT5EncoderModel

HERE = os.path.dirname(os.path.abspath(__file__))


def randomise(model, seed, std=0.2):
    """every parameter random (norm weights around 1), so no zero-initialised
    projection hides a stage"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() == 1 and ("norm" in name or name.endswith("gamma")):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def save_diffusers(model, d, dtype):
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    if dtype is not torch.float32:
        f = os.path.join(d, "diffusion_pytorch_model.safetensors")
        from safetensors.torch import load_file
        sd = load_file(f)
        save_file({k: v.to(dtype).contiguous() for k, v in sd.items()}, f, metadata={"format": "pt"})


def main(out):
    os.makedirs(out, exist_ok=True)
    # text encoder: 1400 rows cover the tokenizer's pieces
    kw = dict(vocab_size=1400, d_model=16, d_kv=8, d_ff=24, num_layers=1, num_heads=2,
              relative_attention_num_buckets=32, relative_attention_max_distance=128, layer_norm_epsilon=1e-6)
    te = UMT5EncoderModel(UMT5Config(feed_forward_proj="gated-gelu", **kw)).eval()
    randomise(te, 1901, std=0.5)
    d = os.path.join(out, "umt5-xxl")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(kw, feed_forward_proj="gated-gelu", architectures=["UMT5EncoderModel"], model_type="umt5"), f,
                  indent=1)
    sd = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in te.state_dict().items()
          if k != "encoder.embed_tokens.weight"}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    shutil.copyfile(os.path.join(HERE, "..", "fixtures", "spm", "uni_raw.model"), os.path.join(d, "spiece.model"))

    common = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=16, out_channels=16,
                  text_dim=16, freq_dim=16, ffn_dim=24, num_layers=2, cross_attn_norm=True,
                  qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    t2v = WanTransformer3DModel(**common).eval()
    randomise(t2v, 1902)
    save_diffusers(t2v, os.path.join(out, "wan2.1-t2v-1.3b"), torch.bfloat16)
    vace = WanVACETransformer3DModel(vace_layers=[0, 1], vace_in_channels=96, **common).eval()
    randomise(vace, 1903)
    save_diffusers(vace, os.path.join(out, "wan2.1-vace-1.3b"), torch.bfloat16)

    vae = AutoencoderKLWan(base_dim=4, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True]).eval()
    randomise(vae, 1904, std=0.3)
    save_diffusers(vae, os.path.join(out, "wan2.1-vae"), torch.bfloat16)
    with open(os.path.join(out, "GENERATOR"), "w") as f:
        import diffusers
        import transformers
        f.write("tests/ref/wan_tiny_models.py with torch %s, diffusers %s, transformers %s\n"
                % (torch.__version__, diffusers.__version__, transformers.__version__))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/wan_tiny")
