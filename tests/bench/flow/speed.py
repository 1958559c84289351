#!/usr/bin/python3
"""720p speed of flow-extract medium against OpenCV DIS-medium, back to back,
several rounds (a loaded machine makes single runs vary by 20-30%).

Each round: flow-extract --preset medium on the frames of DIR (CPU time and
wall time of the flow computation from its flow.json), then OpenCV's
DIS-medium on the same frames in this process (process_time and wall time,
after one warm-up pair). Prints one line per round and the medians.

usage: speed.py BIN_DIR FRAME_DIR [--rounds N] [--threads N] [--preset P] [--also BIN_DIR2]
(--also: a second flow-extract, e.g. an older build, timed in the same rounds)
(FRAME_DIR: frame_00000.png ... as written by tests/helpers/flowgen;
tests/bench/flow/speed.sh makes them and runs this.)
"""
import json, os, statistics, subprocess, sys, tempfile, time
import cv2

args = sys.argv[1:]
BIN, D = args[0], args[1]
rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 5
threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 2
preset = args[args.index("--preset") + 1] if "--preset" in args else "medium"
also = args[args.index("--also") + 1] if "--also" in args else None
cvp = {"fast": cv2.DISOPTICAL_FLOW_PRESET_FAST, "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset]
cv2.setNumThreads(threads)
n = len([f for f in os.listdir(D) if f.startswith("frame_") and f.endswith(".png")])
frames = [cv2.imread(os.path.join(D, "frame_%05d.png" % i), cv2.IMREAD_GRAYSCALE) for i in range(n)]
dis = cv2.DISOpticalFlow_create(cvp)
rows = []
with tempfile.TemporaryDirectory() as work:
    for r in range(rounds):
        def ours(bindir):
            out = os.path.join(work, "out")
            subprocess.run([os.path.join(bindir, "flow-extract"), "-q", "--no-vis", "--threads", str(threads),
                            "--preset", preset, "-o", out, D], check=True)
            j = json.load(open(os.path.join(out, "flow.json")))
            np_ = len(j["pairs"])
            return j["timing"]["flow_cpu_seconds"] / np_ * 1000, np_ / j["timing"]["flow_seconds"]
        ours_cpu, ours_fps = ours(BIN)
        also_cpu, also_fps = ours(also) if also else (0.0, 0.0)
        dis.calc(frames[0], frames[1], None)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n - 1):
            dis.calc(frames[i], frames[i + 1], None)
        cv_cpu = (time.process_time() - c0) / (n - 1) * 1000
        cv_fps = (n - 1) / (time.perf_counter() - t0)
        load = " ".join(open("/proc/loadavg").read().split()[:3])
        rows.append((ours_cpu, cv_cpu, ours_fps, cv_fps, also_cpu, also_fps))
        print("round %d: isopipe-%s %.0f CPU ms/frame %.2f frames/s | cv-dis-%s %.0f CPU ms/frame %.2f frames/s%s | load %s"
              % (r, preset, ours_cpu, ours_fps, preset, cv_cpu, cv_fps,
                 " | --also %.0f CPU ms/frame %.2f frames/s" % (also_cpu, also_fps) if also else "", load), flush=True)
med = [statistics.median(c) for c in zip(*rows)]
print("median over %d rounds (%dx%d, %d pairs, %d threads): isopipe-%s %.0f CPU ms/frame, %.2f frames/s; "
      "cv-dis-%s %.0f CPU ms/frame, %.2f frames/s; CPU ratio dis/ours %.2f, frames/s ratio ours/dis %.2f"
      % (rounds, frames[0].shape[1], frames[0].shape[0], n - 1, threads, preset, med[0], med[2], preset, med[1], med[3],
         med[1] / med[0], med[2] / med[3]))
if also:
    print("--also (%s): median %.0f CPU ms/frame, %.2f frames/s; CPU ratio dis/it %.2f" % (also, med[4], med[5], med[1] / med[4]))
