#!/bin/sh
# Benchmark: bin/stitch against the ffmpeg CLI doing the same job.
#
#   tests/bench/stitch/run.sh [RUNS] [WORKDIR]
#
# 4 segments x 49 frames of 832x480 PNG (tests/helpers/stitch_gen: textured,
# moving), overlap 8 at 24 fps -> 4*49 - 3*8 = 172 frames. Both encode with
# libx264 --preset medium --crf 20, 2 threads, yuv420p; ffmpeg crossfades
# with a chain of xfade=transition=fade filters. Runs alternate (ours,
# ffmpeg, ours, ...) RUNS times each (default 3) and the table shows the
# best and median wall times, the median CPU time (user + sys: on a shared,
# loaded machine the wall time depends on how the scheduler shares the
# cores, the CPU time much less), peak RSS (GNU time %M), output frames and
# size, and the PSNR of stitch's video against ffmpeg's. Not a test: prints
# a table, asserts nothing. Build first: make bin/stitch
# build/tests/helpers/stitch_gen.
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
RUNS=${1:-3}
W=${2:-${TMPDIR:-/tmp}/isopipe-bench-stitch}
STITCH=$ROOT/bin/stitch
GEN=$ROOT/build/tests/helpers/stitch_gen
TIME=/usr/bin/time
for x in "$STITCH" "$GEN" "$TIME"; do [ -x "$x" ] || { echo "missing $x (make bin/stitch build/tests/helpers/stitch_gen; apt-get install time)"; exit 1; }; done
command -v ffmpeg >/dev/null || { echo "missing ffmpeg"; exit 1; }

N=49 K=8 FPS=24 WID=832 HEI=480
mkdir -p "$W"
cd "$W"
for i in 0 1 2 3; do
    if [ "$(ls s$i 2>/dev/null | grep -c png)" != $N ]; then
        rm -rf s$i && "$GEN" s$i $WID $HEI $N $((i + 11)) $FPS "bench segment $i"
    fi
done

# xfade offsets: transition i starts at frame i*(N-K) of the output
dur=$(awk "BEGIN { printf \"%.6f\", $K / $FPS }")
o1=$(awk "BEGIN { printf \"%.6f\", 1 * ($N - $K) / $FPS }")
o2=$(awk "BEGIN { printf \"%.6f\", 2 * ($N - $K) / $FPS }")
o3=$(awk "BEGIN { printf \"%.6f\", 3 * ($N - $K) / $FPS }")
FILTER="[0][1]xfade=transition=fade:duration=$dur:offset=$o1[x1];[x1][2]xfade=transition=fade:duration=$dur:offset=$o2[x2];[x2][3]xfade=transition=fade:duration=$dur:offset=$o3,format=yuv420p[v]"

run_ours() {
    $TIME -f "%e %M %U %S" -o t_ours.txt "$STITCH" -q --overlap $K --preset medium --crf 20 --threads 2 -o ours.mp4 s0 s1 s2 s3
}
run_ff() {
    $TIME -f "%e %M %U %S" -o t_ff.txt ffmpeg -v error -y \
        -framerate $FPS -i s0/frame_%05d.png -framerate $FPS -i s1/frame_%05d.png \
        -framerate $FPS -i s2/frame_%05d.png -framerate $FPS -i s3/frame_%05d.png \
        -filter_complex "$FILTER" -map "[v]" -c:v libx264 -preset medium -crf 20 -threads 2 -pix_fmt yuv420p ff.mp4
}
: > ours.all; : > ff.all
r=0
while [ $r -lt "$RUNS" ]; do
    run_ours; cat t_ours.txt >> ours.all
    run_ff; cat t_ff.txt >> ff.all
    r=$((r + 1))
done
stats() { # file -> "best_wall median_wall peakKB median_cpu"
    sort -n "$1" | awk '{ t[NR] = $1; if ($2 > m) m = $2 } END { printf "%.2f %.2f %d", t[1], t[int((NR + 1) / 2)], m }'
    awk '{ print $3 + $4 }' "$1" | sort -n | awk '{ c[NR] = $1 } END { printf " %.2f", c[int((NR + 1) / 2)] }'
}
frames() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of default=nw=1:nk=1 "$1"; }
size() { wc -c < "$1"; }
psnr() { # a b -> average PSNR (ffmpeg's psnr filter on the yuv420p frames)
    ffmpeg -v info -i "$1" -i "$2" -lavfi psnr -f null - 2>&1 | sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | tail -n 1
}
set -- $(stats ours.all); ob=$1 om=$2 ok=$3 oc=$4
set -- $(stats ff.all); fb=$1 fm=$2 fk=$3 fc=$4
echo "stitch benchmark: 4 x $N frames ${WID}x${HEI}, overlap $K, libx264 medium crf 20, 2 threads, $RUNS runs each"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %9s %11s %12s %9s %7s %10s\n' tool best_s median_s median_cpu_s peak_MB frames bytes
printf '%-8s %9s %11s %12s %9d %7s %10s\n' stitch "$ob" "$om" "$oc" $((ok / 1024)) "$(frames ours.mp4)" "$(size ours.mp4)"
printf '%-8s %9s %11s %12s %9d %7s %10s\n' ffmpeg "$fb" "$fm" "$fc" $((fk / 1024)) "$(frames ff.mp4)" "$(size ff.mp4)"
awk "BEGIN { printf \"ratio stitch/ffmpeg: wall best %.3f, wall median %.3f, cpu median %.3f\n\", $ob / $fb, $om / $fm, $oc / $fc }"
echo "runs (wall_s peak_KB user_s sys_s):"; sed 's/^/  stitch /' ours.all; sed 's/^/  ffmpeg /' ff.all
echo "PSNR (Y/U/V average, dB) of stitch's video against ffmpeg's: $(psnr ours.mp4 ff.mp4)"
