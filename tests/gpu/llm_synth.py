#!/usr/bin/env python3
"""Write a small random GGUF model whose weights use every tensor type the
engine computes with (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K F16 BF16 F32),
for the CUDA-vs-CPU check (tests/gpu/llm_check.sh) — the real default model
only has Q8_0 and Q4_1. Random bytes with sane half-precision scales; the
architecture is llama or qwen2 (QKV biases, NEOX rope). No tokenizer: the
engine does not need one.

  python3 tests/gpu/llm_synth.py OUT.gguf [llama|qwen2]
"""
import random
import struct
import sys

QT = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
      "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
      "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}


def half(v):
    return struct.pack("<e", v)


def tensor_bytes(rng, typ, ne0, ne1, scale):
    tid, be, bb = QT[typ]
    n = ne0 * ne1
    if typ == "F32":
        return struct.pack("<%df" % n, *[rng.uniform(-scale, scale) for _ in range(n)])
    if typ == "F16":
        return b"".join(half(rng.uniform(-scale, scale)) for _ in range(n))
    if typ == "BF16":
        return b"".join(struct.pack("<f", rng.uniform(-scale, scale))[2:] for _ in range(n))
    out = bytearray(rng.getrandbits(8) for _ in range(n // be * bb))
    # scales: small positive halves so that weights land near +-scale
    for b in range(n // be):
        o = b * bb
        if typ in ("Q4_0", "Q5_0"):
            out[o:o + 2] = half(scale / 8)
        elif typ in ("Q4_1", "Q5_1"):
            out[o:o + 4] = half(scale / 8) + half(-scale)
        elif typ == "Q8_0":
            out[o:o + 2] = half(scale / 127)
        elif typ in ("Q4_K", "Q5_K"):
            out[o:o + 4] = half(scale / 500) + half(scale / 100)
        elif typ == "Q6_K":
            out[o + 208:o + 210] = half(scale / 2000)
    return bytes(out)


def main():
    out, arch = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "llama"
    rng = random.Random(7)
    E, FF, NH, NKV, HD, NL, V = 512, 1024, 8, 4, 64, 4, 2048
    types = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16", "F32"]
    tensors = []   # (name, ne0, ne1, type, scale)
    tensors.append(("token_embd.weight", E, V, "Q8_0", 1.0))
    tensors.append(("output.weight", E, V, "Q6_K", E ** -0.5))
    tensors.append(("output_norm.weight", E, 1, "F32", None))
    k = 0
    for l in range(NL):
        for name, ne0, ne1 in (("attn_q", E, NH * HD), ("attn_k", E, NKV * HD), ("attn_v", E, NKV * HD),
                               ("attn_output", NH * HD, E), ("ffn_gate", E, FF), ("ffn_up", E, FF), ("ffn_down", FF, E)):
            tensors.append(("blk.%d.%s.weight" % (l, name), ne0, ne1, types[k % len(types)], ne0 ** -0.5))
            k += 1
        tensors.append(("blk.%d.attn_norm.weight" % l, E, 1, "F32", None))
        tensors.append(("blk.%d.ffn_norm.weight" % l, E, 1, "F32", None))
        if arch == "qwen2":
            for name, n in (("attn_q", NH * HD), ("attn_k", NKV * HD), ("attn_v", NKV * HD)):
                tensors.append(("blk.%d.%s.bias" % (l, name), n, 1, "F32", 0.5))

    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x

    kv = [s("general.architecture") + struct.pack("<I", 8) + s(arch)]
    for key, v in (("embedding_length", E), ("block_count", NL), ("feed_forward_length", FF),
                   ("attention.head_count", NH), ("attention.head_count_kv", NKV), ("context_length", 4096)):
        kv.append(s(arch + "." + key) + struct.pack("<II", 4, v))
    kv.append(s(arch + ".rope.freq_base") + struct.pack("<If", 6, 1e6 if arch == "qwen2" else 1e4))
    kv.append(s(arch + ".attention.layer_norm_rms_epsilon") + struct.pack("<If", 6, 1e-6))
    hdr = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv)
    blobs, off, infos = [], 0, b""
    for name, ne0, ne1, typ, scale in tensors:
        if scale is None:
            data = struct.pack("<%df" % ne0, *[1.0 + rng.uniform(-0.2, 0.2) for _ in range(ne0)])
        else:
            data = tensor_bytes(rng, typ, ne0, ne1, scale)
        dims = [ne0] if ne1 == 1 else [ne0, ne1]
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", QT[typ][0], off)
        data += b"\0" * ((-len(data)) % 32)
        blobs.append(data)
        off += len(data)
    body = hdr + infos
    body += b"\0" * ((-len(body)) % 32)
    with open(out, "wb") as f:
        f.write(body + b"".join(blobs))
    print("%s: %s, %d tensors, types %s" % (out, arch, len(tensors), " ".join(types)))


if __name__ == "__main__":
    main()
