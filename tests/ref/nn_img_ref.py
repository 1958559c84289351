#!/usr/bin/env python3
"""Reference outputs for common/nn_img.c from PyTorch (CPU, float32):
F.interpolate(mode="bilinear", align_corners=False) down, up and to sizes
that are not a whole ratio; F.grid_sample(mode="bilinear",
padding_mode="border", align_corners=True) driven by a pixel flow the way
RIFE's warp builds its grid (flows reach past every border);
nn.PixelShuffle; LeakyReLU; PReLU; sigmoid. Inputs are random with a fixed
seed. tests/unit/test_nn_img.c reads the JSON and compares (tolerances there).

  /tmp/ref/bin/python tests/ref/nn_img_ref.py tests/fixtures/nn_img/ops.json
"""
import json
import sys

import torch
import torch.nn.functional as F


def lst(t):
    return [round(float(v), 7) for v in t.reshape(-1).tolist()]


def main(out):
    g = torch.Generator().manual_seed(15)
    cases = []
    # resize: (C, H, W) -> (Ho, Wo)
    for (C, H, W, Ho, Wo) in [(2, 16, 24, 4, 6), (3, 4, 6, 16, 24), (1, 7, 5, 3, 4), (2, 5, 3, 11, 8), (1, 6, 6, 6, 6)]:
        x = torch.rand(1, C, H, W, generator=g) * 4 - 2
        y = F.interpolate(x, size=(Ho, Wo), mode="bilinear", align_corners=False)
        cases.append({"op": "resize", "C": C, "H": H, "W": W, "Ho": Ho, "Wo": Wo, "x": lst(x), "y": lst(y)})
    # warp: grid = base (linspace -1..1) + flow / ((size - 1) / 2), as RIFE's warp()
    for (C, H, W, amp) in [(3, 9, 13, 3.0), (2, 8, 8, 12.0), (1, 5, 17, 0.7)]:
        x = torch.rand(1, C, H, W, generator=g)
        flow = (torch.rand(1, 2, H, W, generator=g) * 2 - 1) * amp
        hor = torch.linspace(-1.0, 1.0, W).view(1, 1, 1, W).expand(1, -1, H, -1)
        ver = torch.linspace(-1.0, 1.0, H).view(1, 1, H, 1).expand(1, -1, -1, W)
        grid = torch.cat([hor, ver], 1)
        nf = torch.cat([flow[:, 0:1] / ((W - 1.0) / 2.0), flow[:, 1:2] / ((H - 1.0) / 2.0)], 1)
        y = F.grid_sample(x, (grid + nf).permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                          align_corners=True)
        cases.append({"op": "warp", "C": C, "H": H, "W": W, "x": lst(x), "u": lst(flow[0, 0]), "v": lst(flow[0, 1]),
                      "y": lst(y)})
    for (C, H, W, r) in [(2, 3, 5, 2), (1, 2, 3, 3)]:
        x = torch.rand(1, C * r * r, H, W, generator=g)
        y = torch.nn.PixelShuffle(r)(x)
        cases.append({"op": "shuffle", "C": C, "H": H, "W": W, "r": r, "x": lst(x), "y": lst(y)})
    x = torch.randn(1, 3, 4, 5, generator=g)
    cases.append({"op": "leaky", "slope": 0.2, "x": lst(x), "y": lst(F.leaky_relu(x, 0.2))})
    a = torch.rand(3, generator=g)
    cases.append({"op": "prelu", "C": 3, "S": 20, "a": lst(a), "x": lst(x), "y": lst(F.prelu(x, a))})
    x = torch.randn(50, generator=g) * 8
    cases.append({"op": "sigmoid", "x": lst(x), "y": lst(torch.sigmoid(x))})
    with open(out, "w") as f:
        json.dump({"made_by": "tests/ref/nn_img_ref.py", "torch": torch.__version__, "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
