#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/seeds/<target>/.

Small, valid (and a few deliberately broken) inputs that reach the
interesting branches quickly: every PNG colour type and bit depth, Adam7,
palette + tRNS; scenes/segment-shaped JSON; topic files with and without
keys; .flo files. PNGs are assembled here from the spec (PNG 2nd ed.,
sections 5 and 11) with zlib, so the seeds do not depend on any encoder.
Run: python3 tests/fuzz/make_seeds.py
"""
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(vals, depth):
    if depth >= 8:
        fmt = ">B" if depth == 8 else ">H"
        return b"".join(struct.pack(fmt, v) for v in vals)
    out, acc, nbits = bytearray(), 0, 0
    for v in vals:
        acc = (acc << depth) | v
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


# samples per pixel by PNG colour type
SPP = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(w, h, ctype, depth, pixel, interlace=0, extra=b""):
    """pixel(x, y) -> tuple of samples"""
    raw = bytearray()
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            xs = list(range(x0, w, dx))
            if not xs:
                continue
            for y in range(y0, h, dy):
                raw.append(0)
                raw += pack_row([s for x in xs for s in pixel(x, y)], depth)
    else:
        for y in range(h):
            raw.append(0)
            raw += pack_row([s for x in range(w) for s in pixel(x, y)], depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(bytes(raw)))
            + chunk(b"IEND", b""))


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    w, h = 7, 5
    for depth in (1, 2, 4, 8, 16):
        m = (1 << depth) - 1
        write("fuzz_png", "gray%d.png" % depth, png(w, h, 0, depth, lambda x, y: ((x + y) % (m + 1),)))
    write("fuzz_png", "rgb8.png", png(w, h, 2, 8, lambda x, y: (x * 30, y * 40, 200)))
    write("fuzz_png", "rgb16.png", png(w, h, 2, 16, lambda x, y: (x * 9000, y * 13000, 65535)))
    write("fuzz_png", "ga8.png", png(w, h, 4, 8, lambda x, y: (x * 30, y * 50)))
    write("fuzz_png", "rgba8.png", png(w, h, 6, 8, lambda x, y: (x * 30, y * 40, 7, 128)))
    write("fuzz_png", "rgb8_adam7.png", png(9, 9, 2, 8, lambda x, y: (x * 25, y * 25, 99), interlace=1))
    write("fuzz_png", "gray2_adam7.png", png(9, 9, 0, 2, lambda x, y: ((x * y) % 4,), interlace=1))
    plte = chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]))
    trns = chunk(b"tRNS", bytes([0, 128]))
    write("fuzz_png", "pal4_trns.png", png(w, h, 3, 4, lambda x, y: ((x + y) % 4,), extra=plte + trns))
    write("fuzz_png", "pal8.png", png(w, h, 3, 8, lambda x, y: ((x * y) % 4,), extra=plte))
    gtrns = chunk(b"tRNS", struct.pack(">H", 3))
    write("fuzz_png", "gray8_trns.png", png(w, h, 0, 8, lambda x, y: (x % 5,), extra=gtrns))
    good = png(w, h, 2, 8, lambda x, y: (x, y, 0))
    write("fuzz_png", "truncated.png", good[: len(good) // 2])

    write("fuzz_json", "scenes.json", b'{"tool":"prompt-expand","version":"0.1.0","task_id":"ab12cd34",'
          b'"topic":"a harbor","segments":[{"index":0,"prompt":"boats at dawn","frames":49,'
          b'"keyframe":"../kf/a.png"},{"index":1,"prompt":"gulls \\u00e9","frames":49,"path":"seg_001"}],'
          b'"fps":16.0,"seed":42}\n')
    write("fuzz_json", "segment.json", b'{"tool":"segment-gen","fps":24,"frames":12,"width":832,"height":480,'
          b'"path":"frame_00000.png","memory":{"mode":"cpu","peak_rss":123456789,"checkpoints":[]}}')
    write("fuzz_json", "numbers.json", b'[0,-0.0,1e308,-1e-308,9223372036854775807,-9223372036854775808,1.5e19,"x",null,true]')
    write("fuzz_json", "bad.json", b'{"a": [1, 2,, 3]}')

    write("fuzz_topic", "keys.topic", "# sample\ntopic: a harbor at dawn\nkeyframes: a.png, ../b.png /abs/c.png\n"
          "segments: 3\nframes: 49\noverlap: 8\nfps: 16\nwidth: 832\nheight: 480\nseed: 7\n".encode())
    write("fuzz_topic", "plain.topic", "a quiet harbor\n# a comment\nboats drifting, gulls, café\n".encode())
    write("fuzz_topic", "bom_crlf.topic", b"\xef\xbb\xbftopic: x\r\nfps: 23.976\r\n")
    write("fuzz_topic", "bad.topic", b"topic: x\nframes: many\n")

    def flo(w, h, f):
        return struct.pack("<fii", 202021.25, w, h) + b"".join(struct.pack("<ff", *f(x, y)) for y in range(h) for x in range(w))
    write("fuzz_flo", "small.flo", flo(3, 2, lambda x, y: (x * 0.5, -y * 1.25)))
    write("fuzz_flo", "one.flo", flo(1, 1, lambda x, y: (1e10, 0.0)))
    write("fuzz_flo", "short.flo", flo(3, 2, lambda x, y: (0.0, 0.0))[:30])

    # safetensors: 8-byte LE header length, JSON header (padded with spaces), data
    def st(header, data):
        h = header.encode()
        h += b" " * (-len(h) % 8)
        return struct.pack("<Q", len(h)) + h + data
    write("fuzz_safetensors", "two.safetensors",
          st('{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},'
             '"b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},"__metadata__":{"format":"pt"}}', bytes(range(32))))
    write("fuzz_safetensors", "empty_shape.safetensors",
          st('{"s":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},"z":{"dtype":"I64","shape":[0,5],"data_offsets":[2,2]}}',
             b"\x01\x02"))
    write("fuzz_safetensors", "overlap.safetensors",
          st('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}',
             bytes(6)))
    ptckpt_seeds()


def ptckpt_seeds():
    """fuzz_ptckpt: checkpoints written by torch.save (tests/fixtures/ptckpt,
    see tests/ref/ptckpt_fixtures.py), their bare data.pkl pickles, which the
    target wraps in a zip of its own with storages "0".."3", and the hostile
    corpus"""
    import zipfile
    fix = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "ptckpt")
    for name in ("dtypes.pth", "nested.pth", "views.pth", "params.pth", "conv.pth", "hostile/zip64_ok.pth"):
        data = open(os.path.join(fix, name), "rb").read()
        base = os.path.basename(name)
        write("fuzz_ptckpt", base, data)
        z = zipfile.ZipFile(os.path.join(fix, name))
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        write("fuzz_ptckpt", base.replace(".pth", ".pkl"), z.read(pkl))
    # the hostile corpus (tests/ref/ptckpt_hostile.py): each reaches a different refusal
    hdir = os.path.join(fix, "hostile")
    for name in sorted(os.listdir(hdir)):
        write("fuzz_ptckpt", "hostile_" + name, open(os.path.join(hdir, name), "rb").read())


if __name__ == "__main__":
    main()
