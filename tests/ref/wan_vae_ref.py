#!/usr/bin/env python3
"""Reference fixtures for the Wan2.1 video VAE (tools/vae), from diffusers.

Builds tiny random diffusers `AutoencoderKLWan` models (several base_dim /
dim_mult / num_res_blocks / temporal-downsampling choices, every RMS-norm
gamma randomised), and writes for each under tests/fixtures/wan_vae/<name>/:

  model/            the weights as users have them: either a diffusers
                    directory (config.json + diffusion_pytorch_model.safetensors,
                    diffusers names) or one safetensors file with the original
                    Wan2.1 / ComfyUI names (encoder.conv1, residual.{0,2,3,6},
                    middle, head, decoder.upsamples.N, conv1/conv2) and no
                    config.json (the tool infers the configuration from shapes
                    and uses Wan2.1's published latent mean/std)
  dec_<T>.safetensors  `latents` [z, T, h, w] (normalised, as the DiT sees
                    them) and `frames` [3, 4(T-1)+1, 8h, 8w]: diffusers'
                    decode of latents*std+mean, clamped to [-1, 1], float32
  decoder.pth       (c_original_f16 only) the decoder half with the original
                    names as a PyTorch checkpoint (torch.save of a state dict)
  enc_<F>/frame_NNNNN.png  8-bit RGB input frames, and
  enc_<F>.safetensors  `latents` [z, 1+(F-1)/4, H/8, W/8]: the posterior mean
                    of diffusers' encode of (png/255*2-1), normalised with
                    (mu - mean)/std

VACE (tests/fixtures/wan_vae/vace/, with the a_diffusers model): the
conditioning `vace_context` [96, T, h, w] exactly as diffusers'
WanVACEPipeline builds it without reference images (its own
prepare_video_latents and prepare_masks, called on the model; video and mask
as its preprocess_conditions makes them from PNGs: x/255*2-1 and m/255), for
  start_end:   start.png at frame 0, end.png at frame 8 of 9, the rest 0, mask 1 there
  keep:        the last 2 frames of prev/ at frames 0-1, end.png at frame 8 of 9
  explicit:    video/ and mask/ PNG directories (mask values 0, 100, 128, 200, 255:
               the 128 and 200 binarise to 1 for the video latents but enter the
               mask channels as 128/255, 200/255)

Tiled decode (tests/fixtures/wan_vae/tiled.safetensors, the a_diffusers model):
diffusers' own tiled_decode (enable_tiling with 32-pixel tiles and a 24-pixel
stride: 4 latent pixels, overlap 1) of `latents` [16, 2, 7, 9]; `frames`
stored as float16 to stay small.

Weights are rounded to the dtype stored (f32, f16 or bf16) before the
reference runs, so the C side sees exactly the weights PyTorch used.
Everything stays small (the whole set <= 1 MB).

  /tmp/ref/bin/python tests/ref/wan_vae_ref.py tests/fixtures/wan_vae
"""
import json
import os
import shutil
import sys
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

import diffusers
from diffusers import AutoencoderKLWan

# Wan2.1's published latent statistics (wan/modules/vae.py, WanVAE.__init__;
# the same numbers are diffusers' AutoencoderKLWan defaults)
WAN_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
            0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
WAN_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
           3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]

CONFIGS = [
    # Wan2.1's layout (temporal downsampling in the last two levels), tiny widths,
    # diffusers directory with its own latent statistics in config.json
    dict(name="a_diffusers", layout="diffusers", dtype=torch.float32, seed=1,
         base_dim=4, z_dim=16, dim_mult=[1, 1, 2, 2], num_res_blocks=1,
         temperal_downsample=[False, True, True], custom_stats=True,
         dec=[(1, 3, 5), (3, 2, 4)], enc=[(5, 24, 40)]),
    # two residual blocks per level, temporal downsampling in the first two
    # levels, original (ComfyUI) names, no config.json, bf16
    dict(name="b_original", layout="original", dtype=torch.bfloat16, seed=2,
         base_dim=3, z_dim=16, dim_mult=[1, 2, 2, 3], num_res_blocks=2,
         temperal_downsample=[True, True, False], custom_stats=False,
         dec=[(3, 4, 3)], enc=[(9, 16, 24), (1, 24, 16)]),
    # Wan's layout again, one block, f16, original names, 9 frames (3 latent)
    dict(name="c_original_f16", layout="original", dtype=torch.float16, seed=3, pth_decoder=True,
         base_dim=6, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
         temperal_downsample=[False, True, True], custom_stats=False,
         dec=[(1, 2, 2), (2, 3, 2)], enc=[(5, 16, 16)]),
]


def randomise(vae, gen, dtype):
    """Every parameter random; RMS gammas around 1, biases small; conv
    weights scaled by fan-in so activations keep a unit-ish scale. Then
    rounded to the stored dtype."""
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                gain = 0.6 if name.startswith("decoder.conv_out") else 1.3
                p.copy_(torch.randn(p.shape, generator=gen) * (gain / fan_in ** 0.5))
            p.copy_(p.to(dtype).float())


def to_original(sd, cfg):
    """diffusers names -> the original Wan2.1 names (the inverse of diffusers'
    convert_wan_vae_to_diffusers, written for any number of levels/blocks)."""
    nrb = cfg["num_res_blocks"]
    out = {}

    def res(s):
        return (s.replace(".norm1.gamma", ".residual.0.gamma")
                 .replace(".conv1.", ".residual.2.")
                 .replace(".norm2.gamma", ".residual.3.gamma")
                 .replace(".conv2.", ".residual.6.")
                 .replace(".conv_shortcut.", ".shortcut."))

    for k, v in sd.items():
        n = k
        if k.startswith("quant_conv."):
            n = k.replace("quant_conv.", "conv1.")
        elif k.startswith("post_quant_conv."):
            n = k.replace("post_quant_conv.", "conv2.")
        elif k.startswith("encoder.conv_in.") or k.startswith("decoder.conv_in."):
            n = k.replace(".conv_in.", ".conv1.")
        elif ".norm_out." in k:
            n = k.replace(".norm_out.", ".head.0.")
        elif ".conv_out." in k:
            n = k.replace(".conv_out.", ".head.2.")
        elif ".mid_block.resnets." in k:
            parts = k.split(".")
            i = int(parts[3])
            n = res(".".join([parts[0], "middle", str(2 * i)] + parts[4:]))
        elif ".mid_block.attentions.0." in k:
            n = k.replace(".mid_block.attentions.0.", ".middle.1.")
        elif k.startswith("encoder.down_blocks."):
            n = res(k.replace("encoder.down_blocks.", "encoder.downsamples."))
        elif k.startswith("decoder.up_blocks."):
            parts = k.split(".")
            i = int(parts[2])
            base = i * (nrb + 2)
            if parts[3] == "resnets":
                j = int(parts[4])
                n = res(".".join(["decoder", "upsamples", str(base + j)] + parts[5:]))
            elif parts[3] == "upsamplers":
                n = ".".join(["decoder", "upsamples", str(base + nrb + 1)] + parts[5:])
            else:
                raise ValueError(k)
        else:
            raise ValueError(k)
        assert n not in out, n
        out[n] = v
    return out


def smooth_noise(gen, c, t, h, w, scale):
    """random smooth-ish field: coarse noise, bilinearly upsampled, plus fine noise"""
    coarse = torch.randn((1, c * t, max(1, h // 4), max(1, w // 4)), generator=gen)
    up = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    up = up.reshape(c, t, h, w)
    return scale * (up + 0.3 * torch.randn((c, t, h, w), generator=gen))


def save_png(path, u8):
    """u8 [3, H, W] uint8 tensor"""
    Image.fromarray(u8.permute(1, 2, 0).numpy()).save(path, optimize=True)


def load_png(path):
    """as diffusers' VideoProcessor.preprocess_video makes it: [3, H, W] in [-1, 1]"""
    a = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
    return torch.from_numpy(a).permute(2, 0, 1) / 255.0 * 2 - 1


def vace_context(vae, video, mask):
    """video [3, F, H, W] in [-1, 1], mask [3, F, H, W] in [0, 1] -> [96, T, h, w],
    through WanVACEPipeline's own methods (no reference images)"""
    from diffusers import WanVACEPipeline
    fake = SimpleNamespace(vae=vae, _execution_device=torch.device("cpu"), vae_scale_factor_temporal=4,
                           vae_scale_factor_spatial=8, transformer_2=None,
                           transformer=SimpleNamespace(config=SimpleNamespace(patch_size=(1, 2, 2))))
    with torch.no_grad():
        lat = WanVACEPipeline.prepare_video_latents(fake, video[None], mask[None], [[]], None, torch.device("cpu"))
        m = WanVACEPipeline.prepare_masks(fake, mask[None], [[]], None)
    return torch.cat([lat, m], 1)[0].float().contiguous()


def write_vace(d, vae):
    gen = torch.Generator().manual_seed(99)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    N, H, W = 9, 16, 32
    meta = {"generator": "tests/ref/wan_vae_ref.py",
            "versions": f"torch {torch.__version__}, diffusers {diffusers.__version__}"}

    def rand_u8(n):
        x = smooth_noise(gen, 3, n, H, W, 0.5).clamp(-1, 1)
        return torch.round((x + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)

    ends = rand_u8(2)
    save_png(os.path.join(d, "start.png"), ends[:, 0])
    save_png(os.path.join(d, "end.png"), ends[:, 1])
    a, b = load_png(os.path.join(d, "start.png")), load_png(os.path.join(d, "end.png"))
    os.makedirs(os.path.join(d, "prev"))
    prev = rand_u8(6)
    for t in range(6):
        save_png(os.path.join(d, "prev", "frame_%05d.png" % t), prev[:, t])

    # start/end: A at 0, B at N-1, every other frame 0 and to be generated (mask 1)
    video = torch.zeros(3, N, H, W)
    mask = torch.ones(3, N, H, W)
    video[:, 0], video[:, N - 1] = a, b
    mask[:, 0] = mask[:, N - 1] = 0
    ctx = {"start_end": vace_context(vae, video, mask)}
    # keep: the last 2 frames of prev/ at 0..1 (kept), B at N-1
    video = torch.zeros(3, N, H, W)
    mask = torch.ones(3, N, H, W)
    for k in range(2):
        video[:, k] = load_png(os.path.join(d, "prev", "frame_%05d.png" % (4 + k)))
        mask[:, k] = 0
    video[:, N - 1], mask[:, N - 1] = b, 0
    ctx["keep"] = vace_context(vae, video, mask)
    # explicit video and mask directories, 5 frames, a mask with in-between values
    F = 5
    os.makedirs(os.path.join(d, "video"))
    os.makedirs(os.path.join(d, "mask"))
    vid = rand_u8(F)
    levels = torch.tensor([0, 100, 128, 200, 255], dtype=torch.uint8)
    idx = torch.randint(0, 5, (F, H // 4, W // 4), generator=gen)
    mk = levels[idx].repeat_interleave(4, 1).repeat_interleave(4, 2)  # [F, H, W] blocks of 4x4
    video = torch.zeros(3, F, H, W)
    mask = torch.zeros(3, F, H, W)
    for t in range(F):
        save_png(os.path.join(d, "video", "frame_%05d.png" % t), vid[:, t])
        save_png(os.path.join(d, "mask", "frame_%05d.png" % t), mk[t][None].repeat(3, 1, 1))
        video[:, t] = load_png(os.path.join(d, "video", "frame_%05d.png" % t))
        mask[:, t] = (load_png(os.path.join(d, "mask", "frame_%05d.png" % t)) + 1) / 2
    ctx["explicit"] = vace_context(vae, video, mask.clamp(0, 1))
    for k, v in ctx.items():
        print(f"vace {k}: {tuple(v.shape)} std {float(v.std()):.3f}")
        save_file({"vace_context": v}, os.path.join(d, f"{k}.safetensors"), metadata=meta)
    total = 0
    for root, _, files in os.walk(d):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def write_tiled(path, vae):
    gen = torch.Generator().manual_seed(123)
    lat = torch.randn((16, 2, 7, 9), generator=gen)
    mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)
    vae.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32, tile_sample_stride_height=24,
                      tile_sample_stride_width=24)
    with torch.no_grad():
        frames = vae.decode((lat * std + mean).unsqueeze(0)).sample[0].float()
    vae.disable_tiling()
    print(f"tiled: frames {tuple(frames.shape)} std {float(frames.std()):.3f}")
    meta = {"generator": "tests/ref/wan_vae_ref.py",
            "versions": f"torch {torch.__version__}, diffusers {diffusers.__version__}"}
    save_file({"latents": lat.contiguous(), "frames": frames.half().contiguous()}, path, metadata=meta)
    return os.path.getsize(path)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: wan_vae_ref.py OUTDIR")
    outdir = sys.argv[1]
    torch.set_num_threads(2)
    os.makedirs(outdir, exist_ok=True)
    total = 0
    models = {}
    for cfg in CONFIGS:
        gen = torch.Generator().manual_seed(cfg["seed"])
        kw = dict(base_dim=cfg["base_dim"], z_dim=cfg["z_dim"], dim_mult=cfg["dim_mult"],
                  num_res_blocks=cfg["num_res_blocks"],
                  temperal_downsample=cfg["temperal_downsample"])
        if cfg["custom_stats"]:
            kw["latents_mean"] = [round(float(x), 4) for x in torch.randn(cfg["z_dim"], generator=gen) * 0.5]
            kw["latents_std"] = [round(float(x), 4) for x in 0.5 + torch.rand(cfg["z_dim"], generator=gen) * 2]
        vae = AutoencoderKLWan(**kw).eval()
        randomise(vae, gen, cfg["dtype"])
        models[cfg["name"]] = vae
        mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)
        if not cfg["custom_stats"]:
            assert vae.config.latents_mean == WAN_MEAN and vae.config.latents_std == WAN_STD

        d = os.path.join(outdir, cfg["name"])
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "model"))
        sd = {k: v.detach().to(cfg["dtype"]).contiguous() for k, v in vae.state_dict().items()}
        meta = {"generator": "tests/ref/wan_vae_ref.py",
                "versions": f"torch {torch.__version__}, diffusers {diffusers.__version__}"}
        if cfg["layout"] == "diffusers":
            vae.save_config(os.path.join(d, "model"))
            save_file(sd, os.path.join(d, "model", "diffusion_pytorch_model.safetensors"), metadata=meta)
        else:
            orig = to_original(sd, cfg)
            save_file(orig, os.path.join(d, "model", "wan_vae.safetensors"), metadata=meta)
            if cfg.get("pth_decoder"):
                # the decoder half as a PyTorch checkpoint (torch.save of a
                # plain state dict, like Wan2.1_VAE.pth), for the .pth reader
                torch.save({k: v for k, v in orig.items() if k.startswith(("decoder.", "conv2."))},
                           os.path.join(d, "decoder.pth"))

        with torch.no_grad():
            for (T, h, w) in cfg["dec"]:
                lat = torch.randn((cfg["z_dim"], T, h, w), generator=gen)
                z = (lat * std + mean).unsqueeze(0)
                frames = vae.decode(z).sample[0].float()
                sat = float((frames.abs() >= 1.0).float().mean())
                print(f"{cfg['name']} dec T={T} {h}x{w}: frames {tuple(frames.shape)} "
                      f"std {float(frames.std()):.3f} saturated {sat:.3f}")
                save_file({"latents": lat.contiguous(), "frames": frames.contiguous()},
                          os.path.join(d, f"dec_{T}.safetensors"), metadata=meta)
            for (F, H, W) in cfg["enc"]:
                x = smooth_noise(gen, 3, F, H, W, 0.5).clamp(-1, 1)
                u8 = torch.round((x + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)
                fd = os.path.join(d, f"enc_{F}")
                os.makedirs(fd)
                for t in range(F):
                    Image.fromarray(u8[:, t].permute(1, 2, 0).numpy()).save(
                        os.path.join(fd, "frame_%05d.png" % t), optimize=True)
                xin = (u8.float() / 255.0 * 2 - 1).unsqueeze(0)
                mu = vae.encode(xin).latent_dist.mode()[0]
                lat = (mu - mean) / std
                print(f"{cfg['name']} enc F={F} {H}x{W}: latents {tuple(lat.shape)} std {float(lat.std()):.3f}")
                save_file({"latents": lat.contiguous()}, os.path.join(d, f"enc_{F}.safetensors"),
                          metadata=meta)
        for root, _, files in os.walk(d):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    total += write_vace(os.path.join(outdir, "vace"), models["a_diffusers"])
    total += write_tiled(os.path.join(outdir, "tiled.safetensors"), models["a_diffusers"])
    print(f"total {total} bytes")
    if total > 1 << 20:
        sys.exit("fixtures over 1 MB")


if __name__ == "__main__":
    main()
