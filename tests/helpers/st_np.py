"""st_np.py — a safetensors reader in a few lines of numpy, for the test and
check scripts (the format: u64 header size, JSON header, raw data).
load(path) -> {name: ndarray}; only: the dtypes to keep (others skipped)."""
import json
import struct

import numpy as np

DT = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "I64": "<i8", "BF16": "<u2"}


def load(path, only=None):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__" or (only is not None and v["dtype"] not in only):
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], DT[v["dtype"]]).reshape(v["shape"])
    return out
