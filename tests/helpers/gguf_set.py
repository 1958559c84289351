#!/usr/bin/env python3
"""gguf_set.py - copy a GGUF file with some string metadata replaced, added
or removed (Debian python3 standard library only; for tests).

  gguf_set.py IN OUT KEY=VALUE...     set string KEY (KEY= with no '=' value: KEY!)
  gguf_set.py IN OUT KEY!             remove KEY
  gguf_set.py --new OUT KEY=VALUE...  a GGUF v3 with these strings and no tensors

Tensor data is copied unchanged: its offsets count from the start of the
data section, which is re-aligned after the new header."""
import struct, sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def rd(f, fmt):
    n = struct.calcsize(fmt)
    return struct.unpack("<" + fmt, f.read(n))


def rd_str(f):
    (n,) = rd(f, "Q")
    return f.read(n)


def skip_value(f, t):
    """the raw bytes of one value of type t"""
    if t in SIZES:
        return f.read(SIZES[t])
    if t == 8:
        s = rd_str(f)
        return struct.pack("<Q", len(s)) + s
    if t == 9:
        (et,) = rd(f, "I")
        (n,) = rd(f, "Q")
        out = [struct.pack("<IQ", et, n)]
        for _ in range(n):
            out.append(skip_value(f, et))
        return b"".join(out)
    raise SystemExit("gguf_set: unknown value type %d" % t)


def w_str(s):
    return struct.pack("<Q", len(s)) + s


def main(a):
    new = a[1] == "--new"
    src, dst, edits = (None, a[2], a[3:]) if new else (a[1], a[2], a[3:])
    kv, tensors, data_off, f = [], b"", 0, None
    n_tensors = 0
    if not new:
        f = open(src, "rb")
        magic, ver = f.read(4), rd(f, "I")[0]
        if magic != b"GGUF" or ver != 3:
            raise SystemExit("gguf_set: %s is not a GGUF v3 file" % src)
        n_tensors, n_kv = rd(f, "QQ")
        for _ in range(n_kv):
            k = rd_str(f)
            (t,) = rd(f, "I")
            kv.append([k, t, skip_value(f, t)])
        start = f.tell()
        for _ in range(n_tensors):
            rd_str(f)
            (nd,) = rd(f, "I")
            f.read(8 * nd + 4 + 8)
        tensors = b""
        end = f.tell()
        f.seek(start)
        tensors = f.read(end - start)
    align = 32
    for k, t, v in kv:
        if k == b"general.alignment" and t == 4:
            align = struct.unpack("<I", v)[0]
    if not new:
        data_off = (end + align - 1) // align * align
    for e in edits:
        if e.endswith("!") and "=" not in e:
            kv = [x for x in kv if x[0] != e[:-1].encode()]
            continue
        k, v = e.split("=", 1)
        k = k.encode()
        val = w_str(v.encode())
        for x in kv:
            if x[0] == k:
                x[1], x[2] = 8, val
                break
        else:
            kv.append([k, 8, val])
    head = [b"GGUF", struct.pack("<IQQ", 3, n_tensors, len(kv))]
    for k, t, v in kv:
        head += [w_str(k), struct.pack("<I", t), v]
    head.append(tensors)
    head = b"".join(head)
    pad = (-len(head)) % align
    with open(dst, "wb") as o:
        o.write(head + b"\0" * pad)
        if f:
            f.seek(data_off)
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                o.write(b)


if __name__ == "__main__":
    main(sys.argv)
