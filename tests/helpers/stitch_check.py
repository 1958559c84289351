#!/usr/bin/env python3
"""stitch_check.py — an independent reference for stitch's output (numpy + OpenCV).

  stitch_check.py exact  K FRAMESDIR SEGDIR...        --frames-out must equal the expected frames bit for bit
  stitch_check.py psnr   K DECODEDDIR IDX[,IDX..] MIN SEGDIR...  decoded frames IDX.. vs the expected ones, each PSNR >= MIN dB

The expected video is the fold of ffmpeg's xfade chain, computed here with
numpy int64 from the PNGs (read with OpenCV): S = segment 0; for each next
segment B, S[-K+j] = (S[-K+j]*(K-j) + B[j]*j + K//2) // K for j = 0..K-1,
then S += B[K:]. Prints one line per check; exits 1 on any failure.
"""
import glob
import os
import sys

import cv2
import numpy as np


def load_seg(d):
    files = sorted(glob.glob(os.path.join(d, "frame_*.png")))
    return [cv2.imread(f, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.int64) for f in files]


def expected(k, segdirs):
    s = load_seg(segdirs[0])
    for d in segdirs[1:]:
        b = load_seg(d)
        for j in range(k):
            s[len(s) - k + j] = (s[len(s) - k + j] * (k - j) + b[j] * j + k // 2) // k
        s += b[k:]
    return s


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main():
    mode, k = sys.argv[1], int(sys.argv[2])
    if mode == "exact":
        outdir, segs = sys.argv[3], sys.argv[4:]
        exp = expected(k, segs)
        got = load_seg(outdir)
        if len(got) != len(exp):
            print(f"frame count {len(got)} != expected {len(exp)}")
            return 1
        bad = [i for i in range(len(exp)) if not np.array_equal(got[i], exp[i])]
        if bad:
            i = bad[0]
            print(f"{len(bad)} frames differ, first {i}: max abs diff {np.abs(got[i] - exp[i]).max()}")
            return 1
        print(f"all {len(exp)} frames equal the expected blend")
        return 0
    if mode == "psnr":
        decdir, lim, segs = sys.argv[3], float(sys.argv[5]), sys.argv[6:]
        exp = expected(k, segs)
        rc = 0
        for idx in map(int, sys.argv[4].split(",")):
            dec = cv2.imread(os.path.join(decdir, "frame_%05d.png" % idx), cv2.IMREAD_COLOR)
            if dec is None:
                print(f"frame {idx}: cannot read the decoded frame")
                rc = 1
                continue
            dec, e = dec[:, :, ::-1], exp[idx]
            if dec.shape != e.shape:
                # an odd source was padded to even: compare the source area
                dec = dec[: e.shape[0], : e.shape[1]]
            p = psnr(dec, e)
            print(f"frame {idx}: PSNR {p:.2f} dB (limit {lim})")
            if p < lim:
                rc = 1
        return rc
    print("unknown mode", mode)
    return 2


if __name__ == "__main__":
    sys.exit(main())
