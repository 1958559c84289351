#!/usr/bin/env python3
"""The diffusers side of tests/bench/vae/run.sh (a benchmark, not a test).

  diffusers_vae.py make DIR BASE_DIM SEED        a random AutoencoderKLWan (Wan2.1 layout,
                                                 base_dim BASE_DIM, every RMS gamma random),
                                                 saved as a diffusers directory
  diffusers_vae.py latents OUT.safetensors T h w SEED   random normalised latents [16, T, h, w]
  diffusers_vae.py frames DIR F H W SEED         F smooth random RGB frames as frame_%05d.png
  diffusers_vae.py decode DIR LATENTS THREADS    times AutoencoderKLWan.decode (fp32, no tiling)
  diffusers_vae.py encode DIR FRAMES_DIR THREADS times AutoencoderKLWan.encode (posterior mean)

decode/encode print one line "seconds S" (the model call alone, after loading);
peak RSS is measured by the caller around the whole process.
"""
import glob
import os
import sys
import time


def main():
    cmd = sys.argv[1]
    import numpy as np
    import torch
    if cmd in ("decode", "encode"):
        torch.set_num_threads(int(sys.argv[4]))
        torch.set_num_interop_threads(1)
    from diffusers import AutoencoderKLWan
    from safetensors.torch import load_file, save_file
    if cmd == "make":
        d, base, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        g = torch.Generator().manual_seed(seed)
        vae = AutoencoderKLWan(base_dim=base).eval()
        with torch.no_grad():
            for n, p in vae.named_parameters():
                if n.endswith("gamma"):
                    p.copy_(0.5 + torch.rand(p.shape, generator=g))
                elif n.endswith("bias"):
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
        vae.save_pretrained(d)
    elif cmd == "latents":
        out, T, h, w, seed = sys.argv[2], *map(int, sys.argv[3:7])
        g = torch.Generator().manual_seed(seed)
        save_file({"latents": torch.randn((16, T, h, w), generator=g)}, out)
    elif cmd == "frames":
        from PIL import Image
        d, F, H, W, seed = sys.argv[2], *map(int, sys.argv[3:7])
        os.makedirs(d, exist_ok=True)
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand((1, 3 * F, H // 16, W // 16), generator=g)
        x = torch.nn.functional.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)
        x = (x.reshape(3, F, H, W) * 255).round().clamp(0, 255).to(torch.uint8)
        for t in range(F):
            Image.fromarray(x[:, t].permute(1, 2, 0).numpy()).save(os.path.join(d, "frame_%05d.png" % t))
    elif cmd == "decode":
        vae = AutoencoderKLWan.from_pretrained(sys.argv[2]).eval()
        lat = load_file(sys.argv[3])["latents"]
        mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)
        z = (lat * std + mean).unsqueeze(0)
        with torch.no_grad():
            t0 = time.perf_counter()
            out = vae.decode(z).sample
            s = time.perf_counter() - t0
        print(f"seconds {s:.3f} frames {out.shape[2]}")
    elif cmd == "encode":
        from PIL import Image
        vae = AutoencoderKLWan.from_pretrained(sys.argv[2]).eval()
        files = sorted(glob.glob(os.path.join(sys.argv[3], "frame_*.png")))
        x = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files], 1)  # H? -> [H, F, W, 3]
        x = torch.from_numpy(x).permute(3, 1, 0, 2).float() / 255 * 2 - 1
        with torch.no_grad():
            t0 = time.perf_counter()
            mu = vae.encode(x.unsqueeze(0)).latent_dist.mode()
            s = time.perf_counter() - t0
        print(f"seconds {s:.3f} latents {tuple(mu.shape)}")


if __name__ == "__main__":
    main()
