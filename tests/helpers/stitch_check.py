#!/usr/bin/env python3
"""stitch_check.py — an independent reference for stitch's output (numpy + OpenCV).

  stitch_check.py exact  K FRAMESDIR SEGDIR...        --frames-out must equal the expected frames bit for bit
  stitch_check.py psnr   K DECODEDDIR IDX[,IDX..] MIN SEGDIR...  decoded frames IDX.. vs the expected ones, each PSNR >= MIN dB
  stitch_check.py batch  FILE       one check per line, "DESCRIPTION|exact ..." or "DESCRIPTION|psnr ..."
                                    (or "DESCRIPTION|!psnr ..." for a check that must fail); prints
                                    "ok DESCRIPTION" or "FAIL DESCRIPTION: details" per line (one Python start)

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


def load_png(f):
    """8-bit RGB as int64. 16-bit samples are scaled as PNG spec 13.12 says,
    round(v * 255 / 65535) (OpenCV's own conversion truncates, v >> 8);
    grey is replicated, alpha dropped."""
    a = cv2.imread(f, cv2.IMREAD_UNCHANGED)
    if a is None:
        raise FileNotFoundError(f"cannot read '{f}'")
    a = a.astype(np.int64)
    if cv2.imread(f, cv2.IMREAD_ANYDEPTH).dtype == np.uint16:
        a = (a * 255 + 32767) // 65535
    if a.ndim == 2:
        a = np.stack([a, a, a], axis=2)
    return a[:, :, 2::-1]  # BGR(A) -> RGB


def load_seg(d):
    files = sorted(glob.glob(os.path.join(d, "frame_*.png")))
    return [load_png(f) for f in files]


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
    if sys.argv[1] == "batch":
        import io
        import contextlib
        for line in open(sys.argv[2]):
            line = line.rstrip("\n")
            if not line:
                continue
            desc, cmd = line.split("|", 1)
            neg = cmd.startswith("!")
            args = (cmd[1:] if neg else cmd).split()
            out = io.StringIO()
            crashed = False
            with contextlib.redirect_stdout(out):
                try:
                    rc = run(args)
                except Exception as e:  # a missing file is a failed check (negated or not), not a crash
                    print(f"error: {e!r}")
                    rc, crashed = 2, True
            ok = not crashed and ((rc != 0) if neg else (rc == 0))
            detail = out.getvalue().strip().replace("\n", "; ")
            print(f"{'ok' if ok else 'FAIL'} {desc}: {detail}")
        return 0
    return run(sys.argv[1:])


def run(argv):
    mode, k = argv[0], int(argv[1])
    sys_argv = [None] + argv
    if mode == "exact":
        outdir, segs = sys_argv[3], sys_argv[4:]
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
        decdir, lim, segs = sys_argv[3], float(sys_argv[5]), sys_argv[6:]
        exp = expected(k, segs)
        rc = 0
        for idx in map(int, sys_argv[4].split(",")):
            dec = cv2.imread(os.path.join(decdir, "frame_%05d.png" % idx), cv2.IMREAD_COLOR)
            if dec is None:
                raise FileNotFoundError(f"cannot read decoded frame {idx} in '{decdir}'")
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
