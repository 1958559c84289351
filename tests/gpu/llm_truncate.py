#!/usr/bin/env python3
"""Write a copy of a llama/qwen2 GGUF keeping only its first N layers.

The GPU checks (tests/gpu/llm_check.sh) need a real model on a machine where
the full file may not fit the transfer budget; the first layers of the real
model exercise the same kernels with realistic activations. The metadata is
copied verbatim except <arch>.block_count; tensor data is re-packed at the
file's alignment.

  python3 tests/gpu/llm_truncate.py IN.gguf OUT.gguf N_LAYERS
"""
import re
import struct
import sys

SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         12: (256, 144), 13: (256, 176), 14: (256, 210), 10: (256, 84), 11: (256, 110)}


def main():
    src, dst, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
    b = open(src, "rb").read()
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def skip_value(t):
        nonlocal pos
        if t in SCALAR:
            pos += SCALAR[t]
        elif t == 8:
            n = rd("Q")
            pos += n
        elif t == 9:
            et, n = rd("I"), rd("Q")
            for _ in range(n):
                skip_value(et)
        else:
            raise ValueError("bad type %d" % t)

    assert b[:4] == b"GGUF"
    pos = 4
    version, n_t, n_kv = rd("I"), rd("Q"), rd("Q")
    kvs, arch, align = [], None, 32
    for _ in range(n_kv):
        start = pos
        klen = rd("Q")
        key = b[pos:pos + klen].decode()
        pos += klen
        t = rd("I")
        vstart = pos
        if t == 8:
            n = rd("Q")
            val = b[pos:pos + n]
            pos += n
            if key == "general.architecture":
                arch = val.decode()
        else:
            skip_value(t)
        if key == "general.alignment":
            align = struct.unpack_from("<I", b, vstart)[0]
        kvs.append((key, t, b[start:pos]))
    tensors = []
    for _ in range(n_t):
        nlen = rd("Q")
        name = b[pos:pos + nlen].decode()
        pos += nlen
        nd = rd("I")
        ne = [rd("Q") for _ in range(nd)]
        typ, off = rd("I"), rd("Q")
        tensors.append((name, ne, typ, off))
    data0 = (pos + align - 1) // align * align
    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, 0, len(kvs)))
    for key, t, raw in kvs:
        if key == arch + ".block_count":
            raw = struct.pack("<Q", len(key)) + key.encode() + struct.pack("<II", 4, keep)
        out += raw
    kept, off, blobs = [], 0, []
    for name, ne, typ, o in tensors:
        m = re.match(r"blk\.(\d+)\.", name)
        if m and int(m.group(1)) >= keep:
            continue
        be, bb = BLOCK[typ]
        n = 1
        for d in ne:
            n *= d
        nbytes = n // be * bb
        kept.append((name, ne, typ, off))
        blobs.append(b[data0 + o:data0 + o + nbytes])
        off += (nbytes + align - 1) // align * align
    struct.pack_into("<Q", out, 8, len(kept))
    for name, ne, typ, o in kept:
        out += struct.pack("<Q", len(name)) + name.encode() + struct.pack("<I", len(ne))
        out += b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", typ, o)
    out += b"\0" * ((-len(out)) % align)
    for blob in blobs:
        out += blob + b"\0" * ((-len(blob)) % align)
    open(dst, "wb").write(out)
    print("%s: %d of %d tensors, %d bytes" % (dst, len(kept), len(tensors), len(out)))


if __name__ == "__main__":
    main()
