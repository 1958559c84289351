#!/usr/bin/env python3
"""Writes tests/fixtures/weights/: tiny weight files in every format
common/weights.c reads, written by the formats' own libraries, and the float32
values those libraries say they hold (expect.safetensors), for test_weights.

  st/model.safetensors        safetensors.torch.save_file: f32 f16 bf16 f8_e4m3fn
                              f8_e5m2 f64 i8 u8 i16 i32 i64 bool, metadata
  sharded/                    two shards + model.safetensors.index.json (the
                              transformers layout: {"metadata", "weight_map"})
  model.gguf                  gguf-py GGUFWriter: f32, f16, Q8_0/Q4_0/Q4_1/Q5_0/Q5_1
                              (gguf.quants.quantize), Q4_K/Q5_K/Q6_K (random
                              blocks with finite scales), a string kv
  expect.safetensors          what each tensor is as float32 (torch's .float(),
                              gguf.quants.dequantize), the 256 fp8 codes of each
                              kind decoded by torch, and f32 -> bf16/f16 rounding
                              by torch (bits stored as int16)

Run with the reference env and gguf-py (gguf 0.19.0 from PyPI) on sys.path:
  GGUF_PY=/path/to/site-packages /tmp/ref/bin/python tests/ref/weights_fixtures.py
Versions used for the committed files: torch 2.15.0, safetensors 0.8.0, gguf 0.19.0.
"""
import json
import os
import sys

if os.environ.get("GGUF_PY"):
    sys.path.append(os.environ["GGUF_PY"])
import gguf  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "weights")
g = torch.Generator().manual_seed(15)
rng = np.random.default_rng(15)
expect = {}


def randn(*shape):
    return torch.randn(*shape, generator=g)


def single():
    t = {
        "f32": randn(2, 3),
        "f16": (randn(3, 4) * 100).half(),
        "bf16": (randn(5) * 1e-3).bfloat16(),
        "f8e4m3": (randn(4, 4) * 50).clamp(-448, 448).to(torch.float8_e4m3fn),
        "f8e5m2": (randn(8) * 1000).to(torch.float8_e5m2),
        "f64": randn(2, 2).double(),
        "i8": torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "i16": torch.tensor([-32768, 5, 32767], dtype=torch.int16),
        "i32": torch.tensor([[-7, 1 << 20], [3, -(1 << 24)]], dtype=torch.int32),
        "i64": torch.tensor([-3, 1 << 40], dtype=torch.int64),
        "bool": torch.tensor([True, False, True]),
        "model.blocks.0.w": randn(4, 2),
        "model.blocks.1.w": randn(4, 2),
        "model.blocks.1.b": randn(4),
        "empty": torch.zeros(0, 3),
    }
    os.makedirs(os.path.join(OUT, "st"), exist_ok=True)
    save_file(t, os.path.join(OUT, "st", "model.safetensors"), metadata={"format": "pt", "who": "weights_fixtures"})
    for k, v in t.items():
        expect["st." + k] = v.float()


def sharded():
    d = os.path.join(OUT, "sharded")
    os.makedirs(d, exist_ok=True)
    a = {"enc.layers.0.w": randn(3, 2), "enc.layers.1.w": randn(3, 2)}
    b = {"dec.w": randn(2, 2).bfloat16(), "dec.layers.0.w": randn(1)}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for sd, n in zip((a, b), names):
        save_file(sd, os.path.join(d, n), metadata={"format": "pt"})
    wm = {k: names[0] for k in a}
    wm.update({k: names[1] for k in b})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f, indent=2, sort_keys=True)
    for k, v in {**a, **b}.items():
        expect["sharded." + k] = v.float()


def kquant_blocks(qtype, n_blocks):
    """random K-quant blocks whose f16 scales are finite (gguf-py cannot quantize K types)"""
    bb = gguf.GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, size=(n_blocks, bb), dtype=np.uint8)
    scales = (rng.standard_normal((n_blocks, 2)) * 0.01).astype(np.float16).view(np.uint8).reshape(n_blocks, 4)
    if qtype == gguf.GGMLQuantizationType.Q6_K:
        raw[:, 208:210] = scales[:, 0:2]   # d is the last f16
    else:
        raw[:, 0:4] = scales                # d, dmin first
    return raw


def gguf_file():
    T = gguf.GGMLQuantizationType
    w = gguf.GGUFWriter(os.path.join(OUT, "model.gguf"), "test")
    w.add_string("test.note", "weights fixture")
    f32 = rng.standard_normal((3, 5)).astype(np.float32)       # numpy shape = PyTorch order
    f16 = rng.standard_normal((2, 4)).astype(np.float16)
    w.add_tensor("g.f32", f32)
    w.add_tensor("g.f16", f16)
    expect["gguf.g.f32"] = torch.from_numpy(f32)
    expect["gguf.g.f16"] = torch.from_numpy(f16.astype(np.float32))
    x = rng.standard_normal((2, 64)).astype(np.float32)
    for name, q in [("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q5_0", T.Q5_0), ("q5_1", T.Q5_1)]:
        qb = quantize(x, q)
        w.add_tensor("g." + name, qb, raw_shape=qb.shape, raw_dtype=q)
        expect["gguf.g." + name] = torch.from_numpy(dequantize(qb, q).astype(np.float32).copy())
    for name, q in [("q4_k", T.Q4_K), ("q5_k", T.Q5_K), ("q6_k", T.Q6_K)]:
        qb = kquant_blocks(q, 2)   # two rows of 256
        w.add_tensor("g." + name, qb, raw_shape=qb.shape, raw_dtype=q)
        expect["gguf.g." + name] = torch.from_numpy(dequantize(qb, q).astype(np.float32).copy())
    # Q2_K: a type weights_to_f32 refuses
    qb = rng.integers(0, 256, size=(1, gguf.GGML_QUANT_SIZES[T.Q2_K][1]), dtype=np.uint8)
    w.add_tensor("g.q2_k", qb, raw_shape=qb.shape, raw_dtype=T.Q2_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def conversions():
    codes = torch.arange(256, dtype=torch.uint8)
    expect["fp8.e4m3fn"] = codes.view(torch.float8_e4m3fn).float()
    expect["fp8.e5m2"] = codes.view(torch.float8_e5m2).float()
    # f32 -> bf16 / f16 rounding: random values, exact ties, subnormals, overflow, NaN, +-0, inf
    vals = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.0, -1.0, 65504.0, 65519.99, 65520.0, 1e6,
            2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0001, 3 * 2.0 ** -26, 2.0 ** -14, 2.0 ** -14 * (1 - 2.0 ** -11),
            1e-30, 3.4e38, -3.4e38, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11]
    r = torch.cat([torch.tensor(vals, dtype=torch.float32), randn(200) * 10.0 ** torch.randint(-8, 8, (200,), generator=g)])
    # exact bf16 ties: a bf16 value plus half its ulp
    base = randn(40).bfloat16().float()
    ulp_half = (base.abs().view(torch.int32) & 0x7f800000).view(torch.float32) * 2.0 ** -8
    r = torch.cat([r, base + ulp_half, base - ulp_half])
    expect["round.in"] = r
    expect["round.bf16"] = r.bfloat16().view(torch.int16)
    expect["round.f16"] = r.half().view(torch.int16)


def main():
    os.makedirs(OUT, exist_ok=True)
    single()
    sharded()
    gguf_file()
    conversions()
    save_file({k: v.contiguous() for k, v in expect.items()}, os.path.join(OUT, "expect.safetensors"),
              metadata={"script": "tests/ref/weights_fixtures.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
