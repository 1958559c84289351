#!/bin/sh
# t2004: stitch's output name and stream (issue 10): `-o -` writes a
# fragmented MP4 to standard output that ffprobe decodes whole, a name that
# promises another container is refused with 64 and nothing written, and
# without --overlap segments that share their boundary frame (segment-gen's
# do) show it once while unrelated segments are concatenated.
. "$(dirname "$0")/lib.sh"
GEN=$TESTBIN/helpers/stitch_gen
ST=$BIN/stitch
if ! command -v ffprobe >/dev/null; then skip "ffprobe not installed"; test_done; exit 0; fi
frames() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }

"$GEN" a 48 32 5 1 12 >/dev/null 2>&1 && "$GEN" b 48 32 4 2 12 >/dev/null 2>&1 || fail "stitch_gen"
# c starts with a's last frame, as segment-gen's next segment starts with the shared keyframe
mkdir c && cp a/frame_00004.png c/frame_00000.png
for i in 1 2 3; do cp "b/frame_0000$i.png" "c/frame_0000$i.png"; done

expect_exit "-o x.gif is refused" 64 "$ST" -o x.gif a b
check "  saying stitch writes MP4" stderr_has "stitch writes MP4"
check "  nothing written" test ! -e x.gif -a ! -e stitch.json
expect_exit "-o x.webm is refused" 64 "$ST" -o x.webm a b

"$ST" -q -o - a b > s.mp4 2>err.txt
rc=$?
check "-o - to a file: exit 0" [ "$rc" -eq 0 ]
check "  a decodable MP4 with 5 + 4 frames" [ "$(frames s.mp4)" = 9 ]
check "  no file named '-'" test ! -e ./-
check "  no report beside it (none asked for)" test ! -e stitch.json
"$ST" -q -o - --report r.json a b | cat > p.mp4
check "-o - into a pipe decodes whole" [ "$(frames p.mp4)" = 9 ]
check "  --report still written" test -s r.json

expect_exit "unrelated segments, no --overlap" 0 "$ST" -q -o u.mp4 a b
check "  concatenated: 9 frames" [ "$(frames u.mp4)" = 9 ]
check "  stitch.json says overlap 0, chosen automatically" \
    python3 -c 'import json,sys; j=json.load(open("stitch.json")); sys.exit(0 if j["overlap"] == 0 and j["overlap_auto"] else 1)'
expect_exit "segments sharing their boundary frame, no --overlap" 0 "$ST" -q -o v.mp4 a c
check "  the shared frame shown once: 5 + 4 - 1 frames" [ "$(frames v.mp4)" = 8 ]
check "  stitch.json says overlap 1, chosen automatically" \
    python3 -c 'import json,sys; j=json.load(open("stitch.json")); sys.exit(0 if j["overlap"] == 1 and j["overlap_auto"] else 1)'
expect_exit "an explicit --overlap 0 is obeyed" 0 "$ST" -q --overlap 0 -o w.mp4 a c
check "  9 frames" [ "$(frames w.mp4)" = 9 ]
test_done
