#!/usr/bin/env python3
"""Writes tests/fixtures/ptckpt/: tiny checkpoints written by a real torch.save,
and what torch.load(weights_only=True) reads back from them (expect.json for
names, dtypes, shapes, strides, storage offsets and shared storages;
expect.safetensors for the values as float32), for test_ptckpt.

  dtypes.pth     a module-like OrderedDict state dict (with the _metadata
                 attribute state_dict() sets, pickled as BUILD) of every dtype
                 we read: f32 f16 bf16 f8_e4m3fn f8_e5m2 f64 i8 u8 i16 i32 i64
                 bool, a 0-dim tensor
  nested.pth     {"epoch", "model": {...nested dicts...}, "optimizer": a real
                 Adam state_dict (int keys, lists, floats, tuples, None)}
  proto4.pth     torch.save(..., pickle_protocol=4)
  views.pth      a transposed (non-contiguous) view, a slice with a storage
                 offset sharing its base's storage, an expanded (stride 0) view
  params.pth     nn.Parameter values (_rebuild_parameter) and a Parameter with a
                 python attribute (_rebuild_parameter_with_state)
  conv.pth       nn.Sequential(Conv2d, BatchNorm2d).state_dict() under "state_dict"
  bigendian.pth  views.pth with its byteorder record rewritten to "big"
  legacy.pth     torch.save(..., _use_new_zipfile_serialization=False)
  wholemodel.pth torch.save(module) (pickles the module's class: refused)

Run: /tmp/ref/bin/python tests/ref/ptckpt_fixtures.py   (torch 2.15.0 made the committed files)
"""
import collections
import json
import os
import zipfile

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "ptckpt")
g = torch.Generator().manual_seed(1515)
expect = {}
values = {}


def randn(*s):
    return torch.randn(*s, generator=g)


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if not isinstance(k, str):
            continue
        if isinstance(v, torch.Tensor):
            out[prefix + k] = v
        elif isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
    return out


def record(fname, sd_for_names, weights_only=True):
    """what torch.load(weights_only=True) reads back, flattened like ptckpt does"""
    loaded = torch.load(os.path.join(OUT, fname), weights_only=weights_only)
    for key in ("state_dict", "model", "params", "module"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    flat = flatten(loaded)
    assert set(flat) == set(sd_for_names), (fname, set(flat) ^ set(sd_for_names))
    ptrs = {}
    rows = []
    for name, t in flat.items():
        p = t.untyped_storage().data_ptr()
        ptrs.setdefault(p, name)
        rows.append({
            "name": name, "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
            "stride": list(t.stride()), "storage_offset": t.storage_offset(),
            "contiguous": t.is_contiguous(), "shares_storage_with": ptrs[p],
        })
        values[fname + ":" + name] = t.detach().float().contiguous().clone()
    expect[fname] = rows


class Holder(torch.nn.Module):
    pass


def main():
    os.makedirs(OUT, exist_ok=True)
    # dtypes: a state dict with _metadata, as Module.state_dict() makes it
    sd = collections.OrderedDict()
    sd["f32"] = randn(3, 4)
    sd["f16"] = (randn(5) * 300).half()
    sd["bf16"] = randn(2, 3).bfloat16()
    sd["f8e4m3"] = (randn(6) * 40).to(torch.float8_e4m3fn)
    sd["f8e5m2"] = (randn(6) * 4000).to(torch.float8_e5m2)
    sd["f64"] = randn(2).double()
    sd["i8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i32"] = torch.tensor([[-(1 << 20), 7]], dtype=torch.int32)
    sd["i64"] = torch.tensor([-5, 1 << 33], dtype=torch.int64)
    sd["bool"] = torch.tensor([True, False])
    sd["scalar"] = torch.tensor(2.5)
    sd._metadata = collections.OrderedDict({"": {"version": 1}})
    torch.save(sd, os.path.join(OUT, "dtypes.pth"))
    record("dtypes.pth", sd)

    # nested: model dict inside a training checkpoint with a real optimizer state
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-3)
    lin(randn(4, 3)).sum().backward()
    opt.step()
    model = {"enc": {"w": randn(2, 2), "deep": {"b": randn(3)}}, "dec.w": randn(1, 2)}
    torch.save({"epoch": 3, "model": model, "optimizer": opt.state_dict(), "note": "fixture"},
               os.path.join(OUT, "nested.pth"))
    record("nested.pth", flatten(model))

    # views: non-contiguous, offsets into a shared storage, stride 0
    base = randn(4, 6)
    views = {"base": base, "t": base.t(), "rows": base[1:3], "col": base[:, 2], "expand": randn(1, 3).expand(4, 3)}
    torch.save(views, os.path.join(OUT, "views.pth"))
    record("views.pth", views)

    # pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL)
    torch.save({"nest": {"a": randn(2, 3).t(), "b": randn(2).half()}}, os.path.join(OUT, "proto4.pth"), pickle_protocol=4)
    # torch's own weights_only unpickler refuses FRAME (opcode 149): this file
    # is ours, so the full unpickler may read it back
    record("proto4.pth", {"nest.a": None, "nest.b": None}, weights_only=False)

    # parameters
    p = torch.nn.Parameter(randn(2, 2))
    q = torch.nn.Parameter(randn(3), requires_grad=False)
    q.extra_note = "kept as python state"
    torch.save({"p": p, "q": q}, os.path.join(OUT, "params.pth"))
    record("params.pth", {"p": p, "q": q})

    # a conv/bn module's state dict (running stats, num_batches_tracked 0-dim int64)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    with torch.no_grad():
        for prm in net.parameters():
            prm.copy_(randn(*prm.shape))
        net[1].running_mean.copy_(randn(3))
        net[1].running_var.copy_(randn(3).abs() + 0.5)
    torch.save({"state_dict": net.state_dict()}, os.path.join(OUT, "conv.pth"))
    record("conv.pth", net.state_dict())

    # big-endian flag: the same archive with byteorder "big"
    src = zipfile.ZipFile(os.path.join(OUT, "views.pth"))
    with zipfile.ZipFile(os.path.join(OUT, "bigendian.pth"), "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = b"big" if info.filename.endswith("/byteorder") else src.read(info.filename)
            dst.writestr(info.filename, data)

    torch.save({"w": randn(2)}, os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)
    h = Holder()
    h.lin = torch.nn.Linear(2, 2)
    torch.save(h, os.path.join(OUT, "wholemodel.pth"))

    with open(os.path.join(OUT, "expect.json"), "w") as f:
        json.dump({"torch": torch.__version__, "files": expect}, f, indent=1, sort_keys=True)
    save_file(values, os.path.join(OUT, "expect.safetensors"), metadata={"script": "tests/ref/ptckpt_fixtures.py"})


if __name__ == "__main__":
    main()
