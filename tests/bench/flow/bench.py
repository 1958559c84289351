#!/usr/bin/python3
"""flow-extract against OpenCV 4.6 (DIS fast, DIS medium, Farneback) on the
same frames with the same thread count. Prints a markdown table.

Sets: (1) synthetic pairs from tests/helpers/flowgen (clean; and with a
brightness change of +8 grey levels and Gaussian noise sigma 3), motions
from sub-pixel to 40 px; (2) the Middlebury 2014 'motorcycle' stereo pair
shipped by python3-skimage (left->right flow is u = -disparity, v = 0;
non-finite disparities have no ground truth; occluded pixels are found by
z-buffering the disparity along each row); (3) speed at 1280x720.

Metrics: EPE (mean end-point error) over all pixels with ground truth and
over non-occluded ones, the share of pixels with error > 3 px, and
frames/s (flow computation only: our flow.json "flow_seconds", OpenCV's
calc() wall time; image decoding excluded on both sides), and at 1280x720
also the CPU time per frame summed over threads (flow.json
"flow_cpu_seconds", Python's process_time), which a loaded machine
distorts far less than wall time.

usage: bench.py BIN_DIR HELPER_DIR WORK_DIR [--threads N] [--quick]
"""
import json, os, subprocess, sys, time
import numpy as np
import cv2

args = sys.argv[1:]
threads = 2
quick = "--quick" in args
if "--threads" in args:
    threads = int(args[args.index("--threads") + 1])
BIN, HELPERS, WORK = args[0], args[1], args[2]
cv2.setNumThreads(threads)


def read_flo(p):
    with open(p, "rb") as f:
        magic = np.frombuffer(f.read(4), np.float32)[0]
        assert abs(magic - 202021.25) < 1e-3, p
        w, h = np.frombuffer(f.read(8), np.int32)
        return np.frombuffer(f.read(), np.float32).reshape(h, w, 2)


def metrics(f, gt, valid, nonocc):
    e = np.hypot(f[..., 0] - gt[..., 0], f[..., 1] - gt[..., 1])
    return e[valid].mean(), e[valid & nonocc].mean(), (e[valid] > 3).mean() * 100


def ours(a, b, preset, tag):
    out = os.path.join(WORK, "out-" + tag)
    subprocess.run([os.path.join(BIN, "flow-extract"), "-q", "--no-vis", "--threads", str(threads),
                    "--preset", preset, "-o", out, "--pair", a, b], check=True)
    j = json.load(open(os.path.join(out, "flow.json")))
    return read_flo(os.path.join(out, "flow_00000.flo")), j["pairs"][0]["flow_seconds"]


def cv_methods():
    m = {}
    for name, p in (("cv-dis-fast", cv2.DISOPTICAL_FLOW_PRESET_FAST), ("cv-dis-medium", cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)):
        d = cv2.DISOpticalFlow_create(p)
        m[name] = (lambda d: lambda a, b: d.calc(a, b, None))(d)
    m["cv-farneback"] = lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 3, 5, 1.2, 0)
    return m


def run_set(name, pairs):
    """pairs: list of (pathA, pathB, gt, valid, nonocc)"""
    rows = {}
    methods = [("isopipe-medium", None), ("isopipe-fast", None), ("isopipe-accurate", None)] + list(cv_methods().items())
    for i, (pa, pb, gt, valid, nonocc) in enumerate(pairs):
        ga, gb = cv2.imread(pa, cv2.IMREAD_GRAYSCALE), cv2.imread(pb, cv2.IMREAD_GRAYSCALE)
        for mname, fn in methods:
            if fn is None:
                f, t = ours(pa, pb, mname.split("-")[1], "%s-%d-%s" % (name, i, mname))
            else:
                fn(ga, gb)  # warm-up (allocations)
                t0 = time.perf_counter(); f = fn(ga, gb); t = time.perf_counter() - t0
            r = rows.setdefault(mname, [])
            r.append(metrics(f, gt, valid, nonocc) + (t,))
    out = []
    for mname, r in rows.items():
        a = np.array(r)
        out.append((name, mname, a[:, 0].mean(), a[:, 1].mean(), a[:, 2].mean(), 1.0 / a[:, 3].mean()))
    return out


def synth(seeds, extra, tag, w=640, h=480):
    pairs = []
    for s in seeds:
        d = os.path.join(WORK, "%s-%d" % (tag, s))
        subprocess.run([os.path.join(HELPERS, "flowgen"), "-o", d, "--seed", str(s), "--width", str(w), "--height", str(h),
                        "--frames", "2", "--max-motion", "40"] + extra, check=True)
        gt = read_flo(os.path.join(d, "gt_00000.flo"))
        occ = cv2.imread(os.path.join(d, "occ_00000.png"), cv2.IMREAD_GRAYSCALE) > 0
        pairs.append((os.path.join(d, "frame_00000.png"), os.path.join(d, "frame_00001.png"), gt,
                      np.ones(gt.shape[:2], bool), ~occ))
    return pairs


def motorcycle():
    # the pair ships with scikit-image; SKIMAGE_DATA names its data folder when the
    # Python that has cv2 lacks skimage (e.g. /usr/lib/python3/dist-packages/skimage/data)
    d = os.environ.get("SKIMAGE_DATA")
    if not d:
        import skimage
        d = os.path.join(os.path.dirname(skimage.__file__), "data")
    disp = np.load(os.path.join(d, "motorcycle_disp.npz"))["arr_0"].astype(np.float64)
    valid = np.isfinite(disp)
    h, w = disp.shape
    gt = np.zeros((h, w, 2), np.float32)
    gt[..., 0] = np.where(valid, -disp, 0)
    # occlusion by z-buffer: a left pixel is hidden in the right view when a
    # pixel with a larger disparity lands on the same right-image column
    nonocc = valid.copy()
    for y in range(h):
        zb = np.full(w + 1, -np.inf)
        xs = np.nonzero(valid[y])[0]
        tx = np.round(xs - disp[y, xs]).astype(int)
        ok = (tx >= 0) & (tx < w)
        np.maximum.at(zb, np.clip(tx, 0, w), np.where(ok, disp[y, xs], -np.inf))
        hidden = ~ok | (disp[y, xs] < zb[np.clip(tx, 0, w)] - 1.0)
        nonocc[y, xs[hidden]] = False
    return [(os.path.join(d, "motorcycle_left.png"), os.path.join(d, "motorcycle_right.png"), gt, valid, nonocc)]


def speed(tag="speed"):
    d = os.path.join(WORK, tag)
    n = 4 if quick else 8
    subprocess.run([os.path.join(HELPERS, "flowgen"), "-o", d, "--seed", "7", "--width", "1280", "--height", "720",
                    "--frames", str(n), "--max-motion", "40"], check=True)
    res = []
    for preset in ("medium", "fast"):
        out = os.path.join(WORK, "out-speed-" + preset)
        subprocess.run([os.path.join(BIN, "flow-extract"), "-q", "--no-vis", "--threads", str(threads),
                        "--preset", preset, "-o", out, d], check=True)
        j = json.load(open(os.path.join(out, "flow.json")))
        res.append(("isopipe-" + preset, len(j["pairs"]) / j["timing"]["flow_seconds"],
                    j["timing"]["flow_cpu_seconds"] / len(j["pairs"]) * 1000))
    frames = [cv2.imread(os.path.join(d, "frame_%05d.png" % i), cv2.IMREAD_GRAYSCALE) for i in range(n)]
    for name, fn in cv_methods().items():
        fn(frames[0], frames[1])
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n - 1):
            fn(frames[i], frames[i + 1])
        res.append((name, (n - 1) / (time.perf_counter() - t0), (time.process_time() - c0) / (n - 1) * 1000))
    return res


os.makedirs(WORK, exist_ok=True)
seeds = [1, 2] if quick else list(range(1, 13))
table = []
table += run_set("synthetic clean", synth(seeds, [], "clean"))
table += run_set("synthetic +8 brightness, noise 3", synth(seeds, ["--noise", "3", "--brightness", "8"], "noisy"))
table += run_set("middlebury motorcycle (741x500)", motorcycle())
print("| set | method | EPE all | EPE non-occ | >3 px % | frames/s |")
print("|---|---|---:|---:|---:|---:|")
for s, m, e, en, o, fps in table:
    print("| %s | %s | %.3f | %.3f | %.2f | %.1f |" % (s, m, e, en, o, fps))
print()
print("| 1280x720, %d threads | frames/s (wall) | CPU ms per frame (all threads) |" % threads)
print("|---|---:|---:|")
for m, fps, cpu in speed():
    print("| %s | %.2f | %.0f |" % (m, fps, cpu))
