#!/usr/bin/python3
"""Helpers for tests/bench/interp/run.sh (numpy, OpenCV, scikit-image from Debian).

  interp.py blend F0 F2 OUT             the crossfade (F0 + F2) / 2, rounded
  interp.py dis F0 F2 FWD.flo BWD.flo   OpenCV DIS-medium flows (used only when
                                        bin/flow-extract is not built yet)
  interp.py score TRUTH NAME=IMG...     one line per candidate: NAME PSNR SSIM

PSNR and SSIM are scikit-image's (peak_signal_noise_ratio, structural_similarity
with data_range 255 and the colour channels as channel_axis): an implementation
independent of the code under test."""
import sys

import cv2
import numpy as np


def read(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        sys.exit("interp.py: cannot read '%s'" % path)
    return img


def write_flo(path, flow):
    h, w = flow.shape[:2]
    with open(path, "wb") as f:
        np.array([202021.25], "<f4").tofile(f)
        np.array([w, h], "<i4").tofile(f)
        flow.astype("<f4").tofile(f)


def main(argv):
    cmd = argv[1]
    if cmd == "blend":
        a, b = read(argv[2]).astype(np.float64), read(argv[3]).astype(np.float64)
        cv2.imwrite(argv[4], np.clip(np.round((a + b) / 2), 0, 255).astype(np.uint8))
    elif cmd == "dis":
        a = cv2.cvtColor(read(argv[2]), cv2.COLOR_BGR2GRAY)
        b = cv2.cvtColor(read(argv[3]), cv2.COLOR_BGR2GRAY)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        write_flo(argv[4], dis.calc(a, b, None))
        write_flo(argv[5], dis.calc(b, a, None))
    elif cmd == "score":
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity
        truth = read(argv[2])
        for arg in argv[3:]:
            name, path = arg.split("=", 1)
            img = read(path)
            if img.shape != truth.shape:
                sys.exit("interp.py: '%s' is %s, the truth is %s" % (path, img.shape, truth.shape))
            p = peak_signal_noise_ratio(truth, img, data_range=255)
            s = structural_similarity(truth, img, data_range=255, channel_axis=2)
            print("%s %.3f %.4f" % (name, p, s))
    else:
        sys.exit("interp.py: unknown command '%s'" % cmd)


if __name__ == "__main__":
    main(sys.argv)
