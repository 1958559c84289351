#!/usr/bin/env python3
"""Writes tests/fixtures/ptckpt/hostile/: checkpoints built to attack a
checkpoint reader, and hostile.tsv: for each file, the status test_ptckpt
expects (65 = ISO_EDATA, 69 = ISO_EUNAVAIL) and a piece of the message.
Standard library only (pickle, zipfile, struct): pickles are assembled opcode
by opcode (CPython Lib/pickletools.py documents them) so each file says
exactly what it tries, and zips are written by zipfile or by hand where the
zip itself is the attack (ZIP64 fields, offsets outside the file).

Run: python3 tests/ref/ptckpt_hostile.py
"""
import io
import os
import pickle
import struct
import zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "ptckpt", "hostile")
rows = []


# ---- a tiny pickle assembler (protocol 2, as torch.save writes)
def u(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def glob(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def i(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -(1 << 31) <= n < (1 << 31):
        return b"J" + struct.pack("<i", n)
    b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def tup(*items):
    return b"(" + b"".join(items) + b"t"


PROTO = b"\x80\x02"
ODICT = glob("collections", "OrderedDict") + b")R"


def storage(key, numel, cls="FloatStorage"):
    return tup(u("storage"), glob("torch", cls), u(key), u("cpu"), i(numel)) + b"Q"


def tensor(key, numel, size, stride, offset=0):
    return (glob("torch._utils", "_rebuild_tensor_v2")
            + tup(storage(key, numel), i(offset), tup(*map(i, size)), tup(*map(i, stride)), b"\x89", ODICT) + b"R")


def sd(**items):
    """an OrderedDict state dict pickle"""
    body = b"".join(u(k) + v for k, v in items.items())
    return PROTO + ODICT + b"(" + body + b"u."


def ckpt(name, pkl, storages=None, root="archive", method=zipfile.ZIP_STORED, extra=None):
    storages = storages or {}

    def put(z, n, data):   # a fixed timestamp: the files are the same on every run
        z.writestr(zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    with zipfile.ZipFile(os.path.join(OUT, name), "w", method) as z:
        if pkl is not None:
            put(z, root + "/data.pkl", pkl)
        put(z, root + "/byteorder", "little")
        for k, v in storages.items():
            put(z, root + "/data/" + k, v)
        for k, v in (extra or {}).items():
            put(z, k, v)


def expect(name, status, msg):
    rows.append((name, status, msg))


FLOATS4 = struct.pack("<4f", 1, 2, 3, 4)
GOOD = sd(w=tensor("0", 4, [2, 2], [2, 1]))


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def main():
    os.makedirs(OUT, exist_ok=True)
    # a good file from the same assembler: the corpus is only meaningful if this opens
    ckpt("good.pth", GOOD, {"0": FLOATS4})
    expect("good.pth", 0, "")

    # code execution through globals, pickled by CPython's own pickler
    import os as os_mod
    import subprocess
    ckpt("os_system.pth", pickle.dumps({"w": Evil(os_mod.system, "touch /tmp/isopipe-pwned")}, protocol=2))
    expect("os_system.pth", 65, "global 'posix.system' is not allowed")
    ckpt("eval.pth", pickle.dumps(Evil(eval, "__import__('os').system('id')"), protocol=2))
    expect("eval.pth", 65, "global '__builtin__.eval' is not allowed")   # protocol 2 names Python 2 modules
    ckpt("subprocess.pth", pickle.dumps({"a": Evil(subprocess.check_output, ["id"])}, protocol=4))
    expect("subprocess.pth", 65, "global 'subprocess.check_output' is not allowed")
    # the attack hidden after a valid tensor, and through STACK_GLOBAL (protocol 4)
    ckpt("late_global.pth", PROTO + ODICT + b"(" + u("w") + tensor("0", 4, [4], [1]) + u("x")
         + u("os") + u("system") + b"\x93" + tup(u("id")) + b"R" + b"u.", {"0": FLOATS4})
    expect("late_global.pth", 65, "global 'os.system' is not allowed")
    # an allowed name called with arguments it must not take
    ckpt("odict_args.pth", PROTO + glob("collections", "OrderedDict") + tup(u("x")) + b"R.")
    expect("odict_args.pth", 65, "OrderedDict() with arguments is not allowed")
    ckpt("newobj.pth", PROTO + glob("torch._utils", "_rebuild_tensor_v2") + b")\x81.")
    expect("newobj.pth", 65, "NEWOBJ of '_rebuild_tensor_v2' is not allowed")
    ckpt("call_dtype.pth", PROTO + glob("torch", "float32") + b")R.")
    expect("call_dtype.pth", 65, "'float32' cannot be called")
    ckpt("build_list.pth", PROTO + b"]" + b"}" + b"b.")
    expect("build_list.pth", 65, "BUILD on a list is not allowed")
    ckpt("inst.pth", PROTO + b"(ios\nsystem\n" + b".")
    expect("inst.pth", 65, "opcode 0x69")

    # recursive and exploding structures
    ckpt("self_dict.pth", PROTO + b"}q\x00" + u("me") + b"h\x00" + b"s.")
    expect("self_dict.pth", 65, "nested more than 32 deep")
    lst = []
    lst.append(lst)
    ckpt("self_list.pth", pickle.dumps({"l": lst, "w": 1}, protocol=2))
    expect("self_list.pth", 0, "")   # harmless: lists are not walked
    bomb = PROTO + b"}q\x000"   # d0 = {}; d(k+1) = {"a": dk, "b": dk}: 2^30 paths, 30 deep
    for k in range(30):
        bomb += b"}(" + u("a") + b"h" + bytes([k]) + u("b") + b"h" + bytes([k]) + b"u" + b"q" + bytes([k + 1]) + b"0"
    ckpt("dag_bomb.pth", bomb + b"h\x1e.")
    expect("dag_bomb.pth", 65, "state dict is too large")
    ckpt("mark_bomb.pth", PROTO + b"(" * 10000 + b".")
    expect("mark_bomb.pth", 65, "nested marks")
    ckpt("memo_huge.pth", PROTO + b"}r\xff\xff\xff\xff.")
    expect("memo_huge.pth", 65, "memo index 4294967295 is too large")
    ckpt("memo_unset.pth", PROTO + b"h\x07.")
    expect("memo_unset.pth", 65, "memo entry 7 is unset")
    ckpt("underflow.pth", PROTO + b"s.")
    expect("underflow.pth", 65, "stack underflow")
    ckpt("huge_string.pth", PROTO + b"\x8d" + struct.pack("<Q", 1 << 62) + b"abc")
    expect("huge_string.pth", 65, "runs past the end")
    ckpt("long_int.pth", PROTO + b"\x8a\x20" + b"\x01" * 32 + b".")
    expect("long_int.pth", 65, "integer of 32 bytes is too large")
    ckpt("no_stop.pth", PROTO + b"}")
    expect("no_stop.pth", 65, "data.pkl is truncated")
    ckpt("not_dict.pth", PROTO + b"]" + b".")
    expect("not_dict.pth", 65, "holds a list, not a state dict")

    # storages and tensors that lie about their size
    ckpt("storage_2e62.pth", sd(w=tensor("0", 1 << 62, [2], [1])), {"0": FLOATS4})
    expect("storage_2e62.pth", 65, "claims 4611686018427387904 elements")
    ckpt("storage_short.pth", sd(w=tensor("0", 100, [100], [1])), {"0": FLOATS4})
    expect("storage_short.pth", 65, "claims 100 elements of F32, its entry holds 16 bytes")
    ckpt("stride_out.pth", sd(w=tensor("0", 4, [2, 2], [3, 1])), {"0": FLOATS4})
    expect("stride_out.pth", 65, "reaches element 4 of a storage of 4")
    ckpt("offset_out.pth", sd(w=tensor("0", 4, [2], [1], offset=3)), {"0": FLOATS4})
    expect("offset_out.pth", 65, "reaches element 4 of a storage of 4")
    ckpt("stride_overflow.pth", sd(w=tensor("0", 4, [5, 2], [1 << 62, 1])), {"0": FLOATS4})
    expect("stride_overflow.pth", 65, "extent overflows")
    ckpt("expand_huge.pth", sd(w=tensor("0", 4, [1 << 61, 4], [0, 0])), {"0": FLOATS4})
    expect("expand_huge.pth", 65, "tensor size overflows")
    ckpt("empty_huge.pth", sd(w=tensor("0", 4, [0, 1 << 40, 1 << 40], [1, 1, 1])), {"0": FLOATS4})
    expect("empty_huge.pth", 0, "")   # an empty tensor whose other sizes multiply past 64 bits opens, empty
    ckpt("neg_size.pth", sd(w=tensor("0", 4, [-1], [1])), {"0": FLOATS4})
    expect("neg_size.pth", 65, "negative entry")
    ckpt("no_storage.pth", sd(w=tensor("7", 4, [4], [1])), {"0": FLOATS4})
    expect("no_storage.pth", 65, "storage '7' has no zip entry 'archive/data/7'")
    ckpt("traversal_key.pth", sd(w=tensor("../../etc/passwd", 4, [4], [1])), {"0": FLOATS4})
    expect("traversal_key.pth", 65, "has no zip entry")
    ckpt("dup_name.pth", PROTO + ODICT + b"(" + u("a.b") + tensor("0", 4, [4], [1]) + u("a") + b"}" + u("b")
         + tensor("0", 4, [4], [1]) + b"su.", {"0": FLOATS4})
    expect("dup_name.pth", 65, "tensor 'a.b' appears twice")
    ckpt("nul_key.pth", sd(**{"a\0b": tensor("0", 4, [4], [1])}), {"0": FLOATS4})
    expect("nul_key.pth", 65, "key holds a NUL byte")
    ckpt("nine_dims.pth", sd(w=tensor("0", 4, [1] * 9, [1] * 9)), {"0": FLOATS4})
    expect("nine_dims.pth", 65, "9 dimensions")

    # legacy formats: refused with ISO_EUNAVAIL and how to re-save (a bare pickle; a tar, as torch < 0.4 wrote)
    import tarfile
    with tarfile.open(os.path.join(OUT, "legacy_tar.pth"), "w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("pickle")
        info.size = len(GOOD)
        t.addfile(info, io.BytesIO(GOOD))
    expect("legacy_tar.pth", 69, "legacy (tar) PyTorch checkpoint")
    open(os.path.join(OUT, "legacy_pickle.pth"), "wb").write(GOOD)
    expect("legacy_pickle.pth", 69, "torch.save(torch.load('old.pth', weights_only=True), 'new.pth')")

    # the zip itself
    ckpt("deflated.pth", GOOD, {"0": FLOATS4}, method=zipfile.ZIP_DEFLATED)
    expect("deflated.pth", 65, "is compressed (method 8)")
    ckpt("no_data_pkl.pth", None, extra={"archive/other.pkl": GOOD})
    expect("no_data_pkl.pth", 65, "holds no <root>/data.pkl")
    ckpt("two_roots.pth", GOOD, {"0": FLOATS4}, extra={"other/data.pkl": GOOD})
    expect("two_roots.pth", 65, "several <root>/data.pkl")
    good = open(os.path.join(OUT, "good.pth"), "rb").read()
    open(os.path.join(OUT, "truncated.pth"), "wb").write(good[: len(good) // 2])
    expect("truncated.pth", 65, "no zip end-of-central-directory record")
    open(os.path.join(OUT, "tiny.pth"), "wb").write(b"PK\3\4" + b"\0" * 10)
    expect("tiny.pth", 65, "too short for a zip archive")
    eocd = good.rindex(b"PK\5\6")
    n, cd_size, cd_off = struct.unpack("<HII", good[eocd + 10:eocd + 20])
    bad = bytearray(good)
    struct.pack_into("<I", bad, eocd + 16, len(good) + 1000)   # central directory beyond the file
    open(os.path.join(OUT, "cd_outside.pth"), "wb").write(bad)
    expect("cd_outside.pth", 65, "is outside the file")
    bad = bytearray(good)   # first entry's local header offset beyond the file
    struct.pack_into("<I", bad, cd_off + 42, 0x7fffff00)
    open(os.path.join(OUT, "lh_outside.pth"), "wb").write(bad)
    expect("lh_outside.pth", 65, "no local header at offset 2147483392")
    bad = bytearray(good)   # entry size larger than the data area
    struct.pack_into("<II", bad, cd_off + 20, 1 << 30, 1 << 30)
    open(os.path.join(OUT, "size_outside.pth"), "wb").write(bad)
    expect("size_outside.pth", 65, "run past the data area")
    bad = bytearray(good)   # too many entries for the directory's size
    struct.pack_into("<HH", bad, eocd + 8, 60000, 60000)
    open(os.path.join(OUT, "count_lie.pth"), "wb").write(bad)
    expect("count_lie.pth", 65, "cannot hold 60000 entries")

    # ZIP64: saturated end record without a locator; a locator pointing outside;
    # a ZIP64 record that disagrees; a ZIP64 extra field that is too short
    bad = bytearray(good)
    struct.pack_into("<I", bad, eocd + 16, 0xFFFFFFFF)
    open(os.path.join(OUT, "zip64_no_locator.pth"), "wb").write(bad)
    expect("zip64_no_locator.pth", 65, "says ZIP64 but there is no ZIP64 locator")

    def with_zip64(rec_fields, loc_offset=None, n_eocd=0xFFFF):
        head = good[:eocd]
        z64_off = len(head)
        rec = b"PK\6\6" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, *rec_fields)
        loc = b"PK\6\7" + struct.pack("<IQI", 0, z64_off if loc_offset is None else loc_offset, 1)
        end = b"PK\5\6" + struct.pack("<HHHHIIH", 0, 0, n_eocd, n_eocd, 0xFFFFFFFF, 0xFFFFFFFF, 0)
        return head + rec + loc + end
    open(os.path.join(OUT, "zip64_ok.pth"), "wb").write(with_zip64((n, n, cd_size, cd_off)))
    expect("zip64_ok.pth", 0, "")
    open(os.path.join(OUT, "zip64_loc_outside.pth"), "wb").write(with_zip64((n, n, cd_size, cd_off), 1 << 40))
    expect("zip64_loc_outside.pth", 65, "ZIP64 end-of-central-directory offset 1099511627776 is outside the file")
    open(os.path.join(OUT, "zip64_cd_outside.pth"), "wb").write(with_zip64((n, n, cd_size, 1 << 35)))
    expect("zip64_cd_outside.pth", 65, "is outside the file")
    open(os.path.join(OUT, "zip64_disagree.pth"), "wb").write(with_zip64((n, n, cd_size, cd_off), n_eocd=n + 1))
    expect("zip64_disagree.pth", 65, "disagrees with the end record")
    open(os.path.join(OUT, "zip64_count.pth"), "wb").write(with_zip64((1 << 40, 1 << 40, cd_size, cd_off)))
    expect("zip64_count.pth", 65, "cannot hold 1099511627776 entries")
    # a central entry whose offset says "see ZIP64 extra" with no such extra
    bad = bytearray(good)
    struct.pack_into("<I", bad, cd_off + 42, 0xFFFFFFFF)
    open(os.path.join(OUT, "zip64_no_extra.pth"), "wb").write(bad)
    expect("zip64_no_extra.pth", 65, "no ZIP64 extra field")
    # ... and with an extra field (id 1) too short to hold it: rebuild the
    # directory with a 4-byte ZIP64 extra on entry 0
    cd = good[cd_off:cd_off + cd_size]
    nl, xl, cl = struct.unpack("<HHH", cd[28:34])
    e0 = bytearray(cd[:46 + nl + xl + cl])
    rest = cd[len(e0):]
    struct.pack_into("<I", e0, 42, 0xFFFFFFFF)
    struct.pack_into("<H", e0, 30, xl + 8)
    e0 = bytes(e0[:46 + nl]) + b"\x01\x00\x04\x00\x00\x00\x00\x00" + bytes(e0[46 + nl:])
    newcd = e0 + rest
    end = b"PK\5\6" + struct.pack("<HHHHIIH", 0, 0, n, n, len(newcd), cd_off, 0)
    open(os.path.join(OUT, "zip64_short_extra.pth"), "wb").write(good[:cd_off] + newcd + end)
    expect("zip64_short_extra.pth", 65, "ZIP64 extra field is too short")

    with open(os.path.join(OUT, "..", "hostile.tsv"), "w") as f:
        f.write("# file\texpected status (0 ok, 65 ISO_EDATA, 69 ISO_EUNAVAIL)\tmessage substring"
                " (written by tests/ref/ptckpt_hostile.py)\n")
        for r in rows:
            f.write("%s\t%d\t%s\n" % r)


if __name__ == "__main__":
    main()
