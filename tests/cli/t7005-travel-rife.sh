#!/bin/sh
# travel pipeline with TRAVEL_SEG_MODEL=rife on a tiny topic (3 keyframes
# 64x48, 6 frames per segment): no flow stage runs (no OUT/flow, no flow rows
# in report.json), the segments say model rife, final.mp4 has 2*6 - 1 frames;
# switching back to the morph runs the flow stages and re-makes the segments.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MK=$TESTBIN/helpers/mkkeyframes
need=
for t in pipeline-report prompt-expand flow-extract segment-gen stitch; do [ -x "$BIN/$t" ] || need="$need $t"; done
[ -x "$MK" ] || need="$need mkkeyframes(helper)"
command -v ffprobe >/dev/null 2>&1 || need="$need ffprobe"
for m in SmolLM2-135M-Instruct.Q4_1.gguf rife.pkl; do [ -f "$ROOT/models/$m" ] || need="$need models/$m(make models)"; done
PY=; for p in /usr/bin/python3 python3; do command -v $p >/dev/null 2>&1 && { PY=$p; break; }; done
[ -n "$PY" ] || need="$need python3"
if [ -n "$need" ]; then
    skip "travel with rife segments (not built or missing:$need)"; test_done; exit
fi
mkdir tb && for t in pipeline-report prompt-expand flow-extract segment-gen stitch vram-probe; do
    [ -x "$BIN/$t" ] && cp -p "$BIN/$t" tb/
done
travel_make() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ISOPIPE_MODELS="$ROOT/models" make -s --no-print-directory -C "$ROOT" \
        pipeline SANITIZE="${ISOPIPE_SANITIZE:-}" CUDA=0 TRAVEL_BIN="$T/tb" TRAVEL_X264_PRESET=veryfast "$@"
}
starts() { grep -c " start $2\$" "$1/.travel/run.log" 2>/dev/null || true; }

"$MK" --scene harbor --width 64 --height 48 --count 3 --step 4 -o kf || fail "mkkeyframes"
cat > tiny.topic <<'X'
topic: a small boat drifting past a harbour at dusk
keyframes: kf/harbor_00.png kf/harbor_01.png kf/harbor_02.png
frames: 6
overlap: 1
fps: 12
seed: 3
X

expect_exit "make pipeline TRAVEL_SEG_MODEL=rife" 0 travel_make TOPIC="$T/tiny.topic" OUT="$T/r" TRAVEL_SEG_MODEL=rife
[ -s "$T/.err" ] && sed 's/^/    | /' "$T/.err" | grep -v '^\s*| \[' | head -n 5
check "no flow stage ran" test ! -e r/flow -a "$(starts r flow_000)$(starts r flow_001)" = 00
n=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 r/final.mp4)
check "final.mp4 has 2*6 - 1 = 11 frames (got $n)" test "$n" = 11
check "report.json: prompt, seg_000, seg_001, stitch; segments made by rife without flows" $PY -c "
import json
r = json.load(open('r/report.json'))
names = [s['name'] for s in r['stages']]
assert names == ['prompt', 'seg_000', 'seg_001', 'stitch'], names
for i in (0, 1):
    j = json.load(open('r/segments/seg_%03d/segment.json' % i))
    assert j['model']['name'] == 'rife' and 'flows' not in j and j['frames'] == 6, j['model']
"
expect_exit "the same topic with the morph" 0 travel_make TOPIC="$T/tiny.topic" OUT="$T/r"
check "morph: the flow stages ran and the segments were re-made" \
    test "$(starts r flow_000)$(starts r flow_001)$(starts r seg_000)$(starts r prompt)" = 1121
test_done
