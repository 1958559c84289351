#!/bin/sh
# stitch: frame count and duration of the MP4 (ffprobe), --frames-out equal
# bit for bit to the blend computed independently (numpy, stitch_check.py),
# decoded frames within a PSNR tolerance of the expected frames (a plain
# frame and the crossfade midpoint), --overlap 0, fps sources, odd sizes,
# the mpeg4 fallback and stitch.json.
#
# Tolerance: yuv420p halves the chroma resolution, so even crf 0 is not
# lossless in RGB; on stitch_gen's smooth-coloured content the decoded
# frames measure 39.9-43.5 dB at crf 0 and 36.7-39.9 dB at crf 18 (160x96,
# preset medium, 2 threads: x264 is deterministic for fixed settings), and
# the test asks for >= 35 dB at crf 18 and >= 38 dB at crf 0 (>= 36 dB for
# the small 81x49 odd-size frames, measured 38.3-40.6).
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
GEN=$TESTBIN/helpers/stitch_gen
CHECK=$ROOT/tests/helpers/stitch_check.py
PY=
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import cv2, numpy' 2>/dev/null; then PY=$p; break; fi
done
if ! command -v ffprobe >/dev/null || ! command -v ffmpeg >/dev/null; then
    skip "ffmpeg/ffprobe not installed"; test_done; exit
fi

probe() { # file entry -> value of that stream entry (frames counted by decoding); one ffprobe per file
    [ -s "$1.probe" ] || ffprobe -v error -count_frames -select_streams v:0 -of default=nw=1 \
        -show_entries stream=nb_read_frames,codec_name,pix_fmt,r_frame_rate,duration,width,height "$1" > "$1.probe"
    sed -n "s/^$2=//p" "$1.probe"
}
decode() { # mp4 dir
    rm -rf "$2" && mkdir "$2" && ffmpeg -v error -i "$1" -start_number 0 "$2/frame_%05d.png"
}
not_() { ! "$@"; }
# numpy/OpenCV checks are collected and run in one Python process at the end
# (starting Python with OpenCV costs about a second each time)
: > "$T/later.txt"
later() { # description, stitch_check.py arguments...
    d=$1; shift
    echo "$d|$*" >> "$T/later.txt"
}
run_later() {
    [ -s "$T/later.txt" ] || return 0
    "$PY" "$CHECK" batch "$T/later.txt" > "$T/later.out" 2>&1 || { fail "stitch_check.py batch crashed"; cat "$T/later.out"; }
    while IFS= read -r line; do
        case "$line" in
        "ok "*) ok "${line#ok }" ;;
        "FAIL "*) fail "${line#FAIL }" ;;
        esac
    done < "$T/later.out"
}
jget() { # json-file python-expression-on-j
    "${PY:-python3}" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}

$GEN s0 160 96 12 1 25 "a harbour at dawn" && $GEN s1 160 96 12 2 25 && $GEN s2 160 96 12 3 25 ||
    fail "stitch_gen"

# ---- 3 segments x 12 frames, K = 4: 36 - 2*4 = 28 frames at 25 fps
mkdir -p out
"$BIN/stitch" --overlap 4 --crf 18 --preset medium --threads 2 --frames-out out/frames -o out/final.mp4 s0 s1 s2 2>err.txt
check "stitch exits 0" [ $? -eq 0 ]
check "mp4 and stitch.json written" [ -s out/final.mp4 -a -s out/stitch.json ]
check "no temporary files left" [ -z "$(ls -A out | grep '\.tmp-')" ]
check "frame count 28 (ffprobe -count_frames)" [ "$(probe out/final.mp4 nb_read_frames)" = 28 ]
check "codec h264" [ "$(probe out/final.mp4 codec_name)" = h264 ]
check "pix_fmt yuv420p" [ "$(probe out/final.mp4 pix_fmt)" = yuv420p ]
check "frame rate 25/1 from segment.json" [ "$(probe out/final.mp4 r_frame_rate)" = 25/1 ]
d=$(probe out/final.mp4 duration)
check "stream duration 28/25 = 1.12 s (got $d)" [ "$d" = 1.120000 ]
d=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 out/final.mp4)
check "container duration 1.12 s (got $d)" [ "$d" = 1.120000 ]
check "28 frames in --frames-out" [ "$(ls out/frames | grep -c '^frame_[0-9]*\.png$')" = 28 ]
check "no error on stderr" not_ grep -q 'error' err.txt

if [ -n "$PY" ]; then
    later "--frames-out equals the numpy blend bit for bit" exact 4 out/frames s0 s1 s2
    decode out/final.mp4 dec
    # frame 3: only segment 0; 10: midpoint of the first crossfade (j = 2 of 4);
    # 14: only segment 1; 22: midpoint of the second crossfade; 27: the last frame
    later "decoded frames 3, 10, 14, 22, 27 >= 35 dB PSNR vs expected (crf 18)" psnr 4 dec 3,10,14,22,27 35 s0 s1 s2
    # the crossfade really blends: the midpoint is far from both of its sources
    later "the midpoint is a blend: < 30 dB from segment 0's own frame 10" !psnr 0 out/frames 10 30 s0
    j=out/stitch.json
    check "stitch.json frames = 28" [ "$(jget $j "j['frames']")" = 28 ]
    check "stitch.json tool/version/task_id" [ "$(jget $j "j['tool'], bool(j['version']), len(j['task_id'])>0")" = "stitch True True" ]
    check "stitch.json output path relative" [ "$(jget $j "j['output'], j['frames_out']")" = "final.mp4 frames" ]
    check "stitch.json input dirs relative to it" [ "$(jget $j "[i['dir'] for i in j['inputs']]")" = "['../s0', '../s1', '../s2']" ]
    check "stitch.json output ranges" [ "$(jget $j "[i['output_range'] for i in j['inputs']]")" = "[[0, 12], [8, 20], [16, 28]]" ]
    check "stitch.json blend ranges" [ "$(jget $j "j['inputs'][1]['blend_in'], j['inputs'][1]['blend_out']")" = "[8, 12] [16, 20]" ]
    check "stitch.json prompt from segment.json" [ "$(jget $j "j['inputs'][0]['prompt']")" = "a harbour at dawn" ]
    check "stitch.json encoder" [ "$(jget $j "*[j['encoder'][k] for k in ('codec', 'crf', 'preset', 'pix_fmt', 'fallback', 'threads')]")" = "libx264 18 medium yuv420p False 2" ]
    check "stitch.json memory mode cpu, peak RSS" [ "$(jget $j "j['memory']['mode'], j['memory']['peak_rss'] > 1<<20")" = "cpu True" ]
    check "stitch.json checkpoints" [ "$(jget $j "[c['label'] for c in j['memory']['checkpoints']]")" = "['start', 'before load', 'after load', 'before cleanup', 'end']" ]
    check "stitch.json timing" [ "$(jget $j "sorted(j['timing'])[:3]")" = "['blend_s', 'decode_s', 'encode_s']" ]
    check "at most K+1 = 5 frames alive" [ "$(jget $j "j['memory']['max_frames_alive'] <= 5")" = True ]
else
    skip "python3 with numpy and OpenCV not found: blend and PSNR checks"
fi
check "stderr has the checkpoint lines" [ "$(grep -c '\[RAM\] \(start\|before load\|after load\|before cleanup\|end\):' err.txt)" = 5 ]

# ---- a middle segment of exactly K frames is blended twice (the xfade chain)
$GEN m1 160 96 4 7
"$BIN/stitch" -q --overlap 4 --crf 0 --preset ultrafast --frames-out chain -o chain.mp4 s0 m1 s2
check "chain: exit 0 and 12+4+12-8 = 20 frames" [ $? -eq 0 -a "$(probe chain.mp4 nb_read_frames)" = 20 ]
if [ -n "$PY" ]; then
    later "chain: --frames-out equals the numpy fold" exact 4 chain s0 m1 s2
    decode chain.mp4 decc
    later "chain: decoded frames 2, 9, 15 >= 38 dB (crf 0)" psnr 4 decc 2,9,15 38 s0 m1 s2
fi

# ---- segment lengths between K and 2K anywhere, K = 1, all segments of K
# frames, 3..7 decoder threads: --frames-out must equal the numpy fold of the xfade chain
for cfg in "1:3,1,2" "3:3,5,3,4" "2:2,2,2" "5:7,5,9,6" "4:9,9"; do
    k=${cfg%%:*} lens=$(echo "${cfg#*:}" | tr , ' ')
    tag=$(echo "$cfg" | tr :, __) dirs= n=0 total=0
    for l in $lens; do
        $GEN "c${tag}_$n" 16 12 "$l" $((n + 20))
        dirs="$dirs c${tag}_$n" n=$((n + 1)) total=$((total + l))
    done
    want=$((total - (n - 1) * k))
    "$BIN/stitch" -q --decode-threads $((n * 2 - 1)) --overlap "$k" --crf 0 --preset ultrafast --frames-out "fo$tag" -o "v$tag.mp4" $dirs
    check "K=$k lengths ${cfg#*:}: exit 0, $want frames" [ $? -eq 0 -a "$(probe "v$tag.mp4" nb_read_frames)" = "$want" ]
    [ -n "$PY" ] && later "K=$k lengths ${cfg#*:}: --frames-out equals the numpy fold" exact "$k" "fo$tag" $dirs
done

# ---- RGBA and 16-bit grey frames are read as RGB (alpha dropped, grey replicated)
mkdir rgba g16
ffmpeg -v error -i s1/frame_%05d.png -pix_fmt rgba -start_number 0 rgba/frame_%05d.png
ffmpeg -v error -i s2/frame_%05d.png -pix_fmt gray16be -start_number 0 g16/frame_%05d.png
"$BIN/stitch" -q --overlap 4 --crf 0 --preset ultrafast --frames-out mixed -o mixed.mp4 s0 rgba g16
check "RGB + RGBA + 16-bit grey segments: exit 0, 28 frames" [ $? -eq 0 -a "$(probe mixed.mp4 nb_read_frames)" = 28 ]
[ -n "$PY" ] && later "RGBA/grey16 inputs: --frames-out equals the numpy fold (OpenCV reads them independently)" exact 4 mixed s0 rgba g16

# ---- --overlap 0 concatenates; --fps overrides segment.json
"$BIN/stitch" -q --fps 30 --crf 0 --preset ultrafast --frames-out cat -o cat.mp4 s0 s1 s2
check "overlap 0: 36 frames" [ "$(probe cat.mp4 nb_read_frames)" = 36 ]
check "--fps 30: rate 30/1, duration 1.2 s" [ "$(probe cat.mp4 r_frame_rate) $(probe cat.mp4 duration)" = "30/1 1.200000" ]
[ -n "$PY" ] && later "overlap 0: --frames-out equals the inputs" exact 0 cat s0 s1 s2
mkdir r
check "--report elsewhere" "$BIN/stitch" -q --preset ultrafast --report rep.json -o r/cat2.mp4 s0
check "--report file written, no stitch.json beside the video" [ -s rep.json -a ! -e r/stitch.json -a -s r/cat2.mp4 ]
[ -n "$PY" ] && check "--report: paths relative to the report" [ "$(jget rep.json "j['output'], j['inputs'][0]['dir']")" = "r/cat2.mp4 s0" ]

# ---- no segment.json: 24 fps; NTSC rate as a fraction
$GEN p0 64 48 6 4
"$BIN/stitch" -q --preset ultrafast -o p.mp4 p0
check "default 24 fps without segment.json" [ "$(probe p.mp4 r_frame_rate)" = 24/1 ]
"$BIN/stitch" -q --preset ultrafast --fps 29.97 -o ntsc.mp4 p0
check "--fps 29.97 is 30000/1001" [ "$(probe ntsc.mp4 r_frame_rate)" = 30000/1001 ]

# ---- odd width and height are padded to even, and the log says so
$GEN o0 81 49 8 5 && $GEN o1 81 49 8 6
"$BIN/stitch" --overlap 3 --crf 0 --preset ultrafast --frames-out odd -o odd.mp4 o0 o1 2>err.txt
check "odd: exit 0" [ $? -eq 0 ]
check "odd: encoded 82x50" [ "$(probe odd.mp4 width)x$(probe odd.mp4 height)" = 82x50 ]
check "odd: the log says it padded" grep -q 'padded to 82x50' err.txt
check "odd: --help documents the padding" sh -c "'$BIN/stitch' --help | grep -q 'padded'"
if [ -n "$PY" ]; then
    later "odd: --frames-out keeps 81x49 and equals the blend" exact 3 odd o0 o1
    decode odd.mp4 deco
    later "odd: decoded frames 1, 6, 11 >= 36 dB in the 81x49 area (crf 0)" psnr 3 deco 1,6,11 36 o0 o1
    check "odd: stitch.json padded, 82x50" [ "$(jget stitch.json "j['encoder']['padded'], j['encoder']['encoded_width'], j['encoder']['encoded_height']")" = "True 82 50" ]
fi

# ---- libx264 missing: mpeg4 and a warning (ISOPIPE_VIDEO_NO_X264 hides libx264)
mkdir fb
ISOPIPE_VIDEO_NO_X264=1 "$BIN/stitch" --overlap 2 -o fb/fb.mp4 s0 s1 2>err.txt
check "fallback: exit 0" [ $? -eq 0 ]
check "fallback: codec mpeg4" [ "$(probe fb/fb.mp4 codec_name)" = mpeg4 ]
check "fallback: 22 frames" [ "$(probe fb/fb.mp4 nb_read_frames)" = 22 ]
check "fallback: the log says so" grep -q 'libx264 is not in the linked libavcodec' err.txt
[ -n "$PY" ] && check "fallback: stitch.json says so" [ "$(jget fb/stitch.json "j['encoder']['codec'], j['encoder']['fallback']")" = "mpeg4 True" ]
if [ -n "$PY" ]; then
    decode fb/fb.mp4 decf
    later "fallback: decoded frame 5 >= 30 dB (mpeg4 at qscale 11)" psnr 2 decf 5 30 s0 s1
fi

# ---- --log-json carries the checkpoints
"$BIN/stitch" -q --preset ultrafast --log-json log.jsonl -o lj.mp4 p0
check "--log-json has 5 checkpoint events" [ "$(grep -c '"event": *"checkpoint"' log.jsonl)" = 5 ]
[ -n "$PY" ] && run_later
test_done
