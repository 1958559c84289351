#!/bin/sh
# pipelines/slurm.sh (make slurm-pipeline) on a tiny topic (3 keyframes 64x48).
# Without Slurm: the dry run's sbatch scripts (one job per stage, job arrays
# for flow and segments, aftercorr/afterok edges as in travel.mk, --mem from
# each tool's --plan, --gres only where the plan has a GPU mode), and hostile
# names (OUT, topic file, keyframe with $(...), backticks, blanks) refused
# before any shell or Make sees them; the quoting of every word round-trips.
# With a real one-node Slurm (Debian's slurm-wlm + munge, started here as
# root without systemd, stopped by pid at the end): a segment made to fail
# cancels stitch and report; the re-submission after the fix runs only the
# failed segment, stitch and report, and final.mp4 is byte-identical to
# `make pipeline`'s; after a frames edit, scancel of the running segments
# leaves no partial output and cancels their dependants; the re-submission
# completes with the new frame count.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MK=$TESTBIN/helpers/mkkeyframes
need=
for t in pipeline-report prompt-expand flow-extract segment-gen stitch; do [ -x "$BIN/$t" ] || need="$need $t"; done
[ -x "$MK" ] || need="$need mkkeyframes(helper)"
command -v ffprobe >/dev/null 2>&1 || need="$need ffprobe"
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$MODEL" ] || need="$need $MODEL(make models)"
if [ -n "$need" ]; then skip "slurm tests (not built or missing:$need)"; test_done; exit; fi
PY=; for p in /usr/bin/python3 python3; do command -v $p >/dev/null 2>&1 && { PY=$p; break; }; done

# a private copy of the tools, as in t7003 (a rebuild must not look like a change)
mkdir tb && for t in pipeline-report prompt-expand flow-extract segment-gen stitch vram-probe; do
    [ -x "$BIN/$t" ] && cp -p "$BIN/$t" tb/
done
BIN=$T/tb
unset MAKEFLAGS MFLAGS MAKELEVEL
# one thread everywhere: x264's output depends on its thread count, and the
# Slurm jobs get --cpus-per-task=1 and --threads 1
export TRAVEL_BIN="$BIN" TRAVEL_X264_PRESET=veryfast TRAVEL_SLURM_CPUS=1 TRAVEL_THREADS=1
SL="sh $ROOT/pipelines/slurm.sh"

"$MK" --scene harbor --width 64 --height 48 --count 3 --step 4 -o kf || fail "mkkeyframes"
cat > tiny.topic <<'X'
topic: a small boat drifting past a harbour at dusk
keyframes: kf/harbor_00.png kf/harbor_01.png kf/harbor_02.png
frames: 6
overlap: 1
fps: 12
seed: 3
X

# ---- dry run: nothing submitted (sbatch is /bin/false), scripts printed
expect_exit "dry run" 0 env SBATCH=/bin/false $SL --dry-run "$T/tiny.topic" "$T/dry"
cp "$T/.out" dry.txt
S=dry/.travel/slurm
check "dry run: five jobs (prompt, flow array, segment array, stitch, report)" \
    test "$(ls $S/*.sbatch | xargs -n 1 basename | tr '\n' ' ')" = "flow.sbatch prompt.sbatch report.sbatch seg.sbatch stitch.sbatch "
check "dry run: nothing ran, nothing was submitted" test ! -e dry/scenes.json -a ! -e $S/jobs -a ! -e dry/.travel/run.log
check "dry run: flow and segments are arrays over the two pairs" \
    sh -c "grep -qx '#SBATCH --array=0,1' $S/flow.sbatch && grep -qx '#SBATCH --array=0,1' $S/seg.sbatch"
check "dry run: the dependency edges are travel.mk's" sh -c '
    grep "^# submit:.*seg.sbatch" dry.txt | grep -q "dependency=afterok:\$JOB_prompt,aftercorr:\$JOB_flow\"" &&
    grep "^# submit:.*stitch.sbatch" dry.txt | grep -q "dependency=afterok:\$JOB_seg\"" &&
    grep "^# submit:.*report.sbatch" dry.txt | grep -q "dependency=afterok:\$JOB_stitch\"" &&
    ! grep "^# submit:.*prompt.sbatch" dry.txt | grep -q dependency &&
    ! grep "^# submit:.*flow.sbatch" dry.txt | grep -q dependency'
check "dry run: every job asks --kill-on-invalid-dep=yes and --cpus-per-task=1" \
    test "$(grep -l -x '#SBATCH --kill-on-invalid-dep=yes' $S/*.sbatch | wc -l)$(grep -l -x '#SBATCH --cpus-per-task=1' $S/*.sbatch | wc -l)" = 55
check "dry run: task 1 of the segment array runs seg_001 through the stage runner" \
    sh -c "grep '^1) exec ' $S/seg.sbatch | grep -q -- ' run .* --name seg_001 .* -- .*/segment-gen .* --index 1 '"
# --mem is the tool's own plan: host_rss of the mode it will run in, +25 %, +64 MiB for the runner
if [ -n "$PY" ]; then
    mem_of() { sed -n 's/^#SBATCH --mem=\([0-9]*\)M$/\1/p' "$S/$1.sbatch"; }
    want=$("$BIN/segment-gen" --plan -q --threads 1 --start kf/harbor_00.png --end kf/harbor_01.png \
        --flow x.flo --flow-back y.flo --frames 6 -o x | $PY -c '
import json, sys, math
p = json.load(sys.stdin)
print(math.ceil(p["modes"]["cpu"]["host_rss"] * 1.25 / 1048576) + 64)')
    check "dry run: the segments' --mem is segment-gen's plan (want $want MiB, got $(mem_of seg))" test "$(mem_of seg)" = "$want"
    pw=$("$BIN/prompt-expand" --plan -q --threads 1 -m "$MODEL" dry/.travel/prompt.topic | $PY -c '
import json, sys
p = json.load(sys.stdin)["modes"]
print(1 if p["beefy"]["possible"] or p["lightweight"]["possible"] else 0)')
    if [ "$pw" = 1 ]; then
        check "dry run: the prompt (a GPU mode in its plan) asks --gres=gpu:1" grep -qx '#SBATCH --gres=gpu:1' $S/prompt.sbatch
    else
        check "dry run: no GPU mode in the prompt's plan (CPU build): no --gres" sh -c "! grep -q -- --gres $S/prompt.sbatch"
        [ "${ISOPIPE_CUDA_BUILD:-0}" = 1 ] && fail "a CUDA build whose prompt-expand plan has no GPU mode"
    fi
else
    skip "--mem against the plan (python3 not found)"
fi
check "dry run: segments, stitch and report (no GPU path) never ask a GPU" \
    sh -c "! grep -q -- --gres $S/seg.sbatch $S/stitch.sbatch $S/report.sbatch"
expect_exit "dry run with TRAVEL_SLURM_GRES= and a partition" 0 env SBATCH=/bin/false TRAVEL_SLURM_GRES= \
    TRAVEL_SLURM_PARTITION=cpu TRAVEL_SLURM_GPU_PARTITION=gpu TRAVEL_SLURM_TIME=0:10:00 $SL --dry-run "$T/tiny.topic" "$T/dry"
check "GRES empty: no job asks a GPU; partition and time on every job" sh -c "
    ! grep -q -- --gres $S/*.sbatch && test \$(grep -l -x '#SBATCH --time=0:10:00' $S/*.sbatch | wc -l) = 5 &&
    grep -qx '#SBATCH --partition=cpu' $S/seg.sbatch"
expect_exit "make slurm-pipeline DRY_RUN=1 (pipelines/slurm.mk)" 0 env SBATCH=/bin/false make -s --no-print-directory -C "$ROOT" \
    slurm-pipeline SANITIZE="${ISOPIPE_SANITIZE:-}" CUDA=0 TOPIC="$T/tiny.topic" OUT="$T/dry2" DRY_RUN=1
check "make slurm-pipeline DRY_RUN=1: the same five jobs, nothing submitted" sh -c "
    grep -q \"dry run: 5 jobs for 7 stages of '$T/dry2'\" '$T/.out' && test -s dry2/.travel/slurm/seg.sbatch -a ! -e dry2/.travel/slurm/jobs"
expect_exit "a knob an #SBATCH line cannot carry is a usage error" 64 env TRAVEL_SLURM_ACCOUNT='a b' SBATCH=/bin/false \
    $SL --dry-run "$T/tiny.topic" "$T/dry"

# ---- the grouping on a made-up walk: flow_000 re-runs, flow_001 is done, the
# prompt re-runs (both segments), seg_002's flow was done too; a stage that
# needs one task of an array waits for that task only
T2=$(printf '\t')
{
    printf 'prompt%sprompt%so/scenes.json %s k/a.png\n' "$T2" "$T2" "$T2"
    printf 'flow_000%sflow%so/f0/flow.json %s k/a.png\n' "$T2" "$T2" "$T2"
    printf 'seg_000%ssegment%so/s0/segment.json %s o/scenes.json o/f0/flow.json\n' "$T2" "$T2" "$T2"
    printf 'seg_001%ssegment%so/s1/segment.json %s o/scenes.json o/f1/flow.json\n' "$T2" "$T2" "$T2"
    printf 'seg_002%ssegment%so/s2/segment.json %s o/scenes.json\n' "$T2" "$T2" "$T2"
    printf 'check%scheck%so/check.json %s o/s1/segment.json\n' "$T2" "$T2" "$T2"
    printf 'stitch%sstitch%so/final.mp4 o/stitch.json%s o/s0/segment.json o/s1/segment.json o/s2/segment.json\n' "$T2" "$T2" "$T2"
} > walk.tsv
$SL --plan-jobs walk.tsv | tr '\t' '|' > jobs.txt
cat > jobs.want <<'X'
prompt|0|prompt|-|
flow|1|flow_000|0|
seg|1|seg_000|0|afterok:prompt aftercorr:flow
seg-2|1|seg_001 seg_002|1,2|afterok:prompt
check|0|check|-|afterok:seg-2_1
stitch|0|stitch|-|afterok:seg afterok:seg-2
X
check "grouping: arrays by like prerequisites, aftercorr / afterok / one task" cmp -s jobs.want jobs.txt ||
    sed 's/^/    got: /' jobs.txt

# ---- hostile names: refused before Make or a shell sees them; nothing runs
for out in 'h/$(touch pwned1)' 'h/`touch pwned2`' 'h/a b' "h/it's" 'h/$(shell touch pwned3)' 'h/50%'; do
    expect_exit "hostile OUT '$out' refused" 65 env SBATCH=/bin/false $SL --dry-run "$T/tiny.topic" "$out"
done
check "hostile OUT: nothing executed, nothing created" sh -c "! ls pwned* >/dev/null 2>&1 && test ! -e h"
mkdir evil && cp -r kf evil/ && cp tiny.topic 'evil/$(touch pwned4).topic' && cp tiny.topic 'evil/ok.topic'
sed 's|^keyframes: .*|keyframes: kf/harbor_00.png kf/`touch pwned5`.png|' tiny.topic > evil/kf.topic
expect_exit "batch dry run: one good topic, two hostile ones" 1 env SBATCH=/bin/false $SL --dry-run --batch -o "$T/eb" evil
check "batch: the hostile topic file name is refused by name" stderr_has "/evil/\$(touch pwned4).topic' has a character"
check "batch: the hostile keyframe is refused by the topic check" stderr_has "keyframe path '.*/kf/\`touch' has a character"
check "batch: the good topic got its scripts" test -s eb/ok/.travel/slurm/seg.sbatch
check "batch: nothing executed" sh -c "! ls pwned* evil/pwned* >/dev/null 2>&1"
ok_q=1
for s in "it's" '$(touch pwned6)' '`touch pwned7`' 'a b	c' '--x' '' "'" '"$HOME"' '\'; do
    got=$($SL --quote "$s")
    eval "set -- $got"
    [ $# -eq 1 ] && [ "$1" = "$s" ] || { ok_q=0; echo "    quote: '$s' -> $got"; }
done
check "every word of a generated script is quoted: hostile strings round-trip through sh" test $ok_q = 1 -a ! -e pwned6 -a ! -e pwned7

# ---- a real Slurm
if [ -n "${ISOPIPE_SANITIZE:-}" ]; then
    # the jobs run the same tools t7003 runs under the sanitizers; the Slurm
    # part tests the driver and Slurm, and runs once, in the plain pass
    skip "real Slurm (a sanitizer build: the plain 'make test' runs it)"; test_done; exit
fi
. "$ROOT/tests/cli/slurm-cluster.sh"
D=$T/slurm
trap 'slurm_down "$D"; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
if ! slurm_up "$D"; then skip "real Slurm ($SLURM_UP_WHY)"; test_done; exit; fi
ok "one-node Slurm up ($(sinfo -h -o '%n, %c CPUs, %m MiB, %G'))"

travel_make() { make -s --no-print-directory -C "$ROOT" pipeline SANITIZE="${ISOPIPE_SANITIZE:-}" CUDA=0 "$@"; }
starts() { grep -c " start $2\$" "$1/.travel/run.log" 2>/dev/null || true; }
state_of() { awk -v s="$2" '$1 == s { print $3 }' "$1"; }

# the reference: make pipeline
expect_exit "make pipeline (the reference)" 0 travel_make TOPIC="$T/tiny.topic" OUT="$T/ref"

# ---- a segment made to fail: its dependants are cancelled, not left pending
mv tb/segment-gen tb/segment-gen.real
cat > tb/segment-gen <<X
#!/bin/sh
case " \$* " in *" --plan "*) ;; *" --index 1 "*) echo "segment-gen: made to fail by the test" >&2; exit 65 ;; esac
exec "$BIN/segment-gen.real" "\$@"
X
chmod +x tb/segment-gen
expect_exit "submission with seg_001 made to fail, --wait" 1 $SL --wait "$T/tiny.topic" "$T/a"
cp "$T/.out" st1.txt
check "failure: prompt, flows and seg_000 COMPLETED" \
    test "$(state_of st1.txt prompt)$(state_of st1.txt flow_000)$(state_of st1.txt flow_001)$(state_of st1.txt seg_000)" = COMPLETEDCOMPLETEDCOMPLETEDCOMPLETED
check "failure: seg_001 FAILED with the tool's exit 65" grep -Eq '^seg_001 +[0-9]+ +FAILED +65:0' st1.txt
check "failure: stitch and report CANCELLED (dependency never satisfied), not pending" \
    sh -c "grep -Eq '^stitch +[0-9]+ +CANCELLED .*DependencyNeverSatisfied' st1.txt && grep -Eq '^report +[0-9]+ +CANCELLED' st1.txt"
check "failure: no video, the failed stage's record has exit 65" \
    sh -c "test ! -e a/final.mp4 && grep -q '\"exit_code\": *65' a/.travel/records/seg_001.json"
if [ "${pw:-0}" = 1 ]; then
    check "the prompt's job was given the GPU it asked for (scontrol show job -o)" \
        sh -c "scontrol show job -o \$(awk '\$1 == \"prompt\" { print \$2 }' a/.travel/slurm/jobs) | grep -q 'TresPerNode=gres:gpu:1'"
fi

# ---- the fix, then the same command again: only what is missing runs
mv tb/segment-gen.real tb/segment-gen
expect_exit "re-submission after the fix, --wait" 0 $SL --wait "$T/tiny.topic" "$T/a"
check "re-submission: only seg_001, stitch and report were submitted" \
    test "$(awk '{ $1 = $2 = ""; print }' a/.travel/slurm/jobs | tr -s ' ' | sed 's/^ //' | tr '\n' ' ')" = "seg_001 stitch report "
check "re-submission: finished stages did not run again" \
    test "$(starts a prompt)$(starts a flow_000)$(starts a flow_001)$(starts a seg_000)$(starts a seg_001)$(starts a stitch)" = 111121
check "final.mp4 through Slurm is byte-identical to make pipeline's" cmp -s ref/final.mp4 a/final.mp4
check "report.json and memory.png assembled by the last job" test -s a/report.json -a -s a/memory.png
if [ -n "$PY" ]; then
    check "report.json: every stage, exit 0" $PY -c "
import json
r = json.load(open('a/report.json'))
assert [s['name'] for s in r['stages']] == 'prompt flow_000 flow_001 seg_000 seg_001 stitch'.split(), r['stages']
assert all(s['exit_code'] == 0 for s in r['stages'])"
fi
expect_exit "nothing left to submit" 0 $SL "$T/tiny.topic" "$T/a"
check "nothing left: says so" grep -q "is complete: nothing to submit" "$T/.out"

# ---- scancel of running segments: no partial output, dependants cancelled
sed 's/^frames: 6/frames: 1500/' tiny.topic > t2 && mv t2 tiny.topic
expect_exit "submission after a frames edit" 0 $SL "$T/tiny.topic" "$T/a"
check "frames edit: segments, stitch and report re-submitted (stitch through the stale segments)" \
    test "$(awk '{ $1 = $2 = ""; print }' a/.travel/slurm/jobs | tr -s ' ' | sed 's/^ //' | tr '\n' ' ')" = "seg_000 seg_001 stitch report "
seg=$(awk '$1 == "seg" { print $2 }' a/.travel/slurm/jobs)
i=0
while [ $i -lt 300 ] && [ -z "$(find a/segments -maxdepth 1 -name '.seg_*.tmp-*' 2>/dev/null)" ]; do sleep 0.05; i=$((i + 1)); done
partial=$(find a/segments -maxdepth 1 -name '.seg_*.tmp-*' | head -n 1)
check "scancel: caught a segment while it wrote frames ($(ls "$partial" 2>/dev/null | wc -l) in $(basename "${partial:-none}"))" test -n "$partial"
scancel "$seg"
i=0; while [ $i -lt 200 ] && [ -n "$(squeue -h -j "$seg" 2>/dev/null)" ]; do sleep 0.1; i=$((i + 1)); done
ids=$(awk '{ print $2 }' a/.travel/slurm/jobs | paste -sd, -)
i=0; while [ $i -lt 200 ] && [ -n "$(squeue -h -j "$ids" 2>/dev/null)" ]; do sleep 0.1; i=$((i + 1)); done
$SL --status "$T/a" > st2.txt
check "scancel: stitch and report cancelled" sh -c "grep -Eq '^stitch +[0-9]+ +CANCELLED' st2.txt && grep -Eq '^report +[0-9]+ +CANCELLED' st2.txt"
check "scancel: no temporary left, no segment published half-made" \
    sh -c "test -z \"\$(find a/segments -name '.*tmp*')\" && grep -q '\"frames\": *6,' a/segments/seg_000/segment.json"
check "scancel: the old video untouched" cmp -s ref/final.mp4 a/final.mp4
expect_exit "re-submission after scancel, --wait" 0 $SL --wait "$T/tiny.topic" "$T/a"
n=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 a/final.mp4)
check "after scancel: the run completes with 2*1500 - 1 = 2999 frames (got $n)" test "$n" = 2999
check "after scancel: prompt and flows still ran once" test "$(starts a prompt)$(starts a flow_000)$(starts a flow_001)" = 111
test_done
