#!/bin/sh
# What Slurm adds per job on a one-node Slurm started here (tests/cli/
# slurm-cluster.sh, as root): sbatch latency per job and per 100-task array,
# the time a dependency adds per level of a chain (with sched_interval=1 and
# with Slurm's default scheduler parameters), the submitter's walk and plans
# for one topic, and one topic through Slurm against `make pipeline` with
# the same threads. Prints markdown (docs/slurm.md).
#   sh tests/bench/slurm/run.sh [TOPIC]      (default sample_inputs/harbor.topic)
set -u
cd "$(dirname "$0")/../../.."
ROOT=$(pwd)
TOPIC=${1:-sample_inputs/harbor.topic}
make -s CUDA=0 pipeline-tools >/dev/null || exit 70
. tests/cli/slurm-cluster.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/isopipe-slurmbench-XXXXXX")
trap 'slurm_down "$work/c"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
ms() { awk -v a="$1" -v b="$2" -v n="${3:-1}" 'BEGIN { printf "%.0f", (b - a) * 1000 / n }'; }
idle() { while [ -n "$(squeue -h 2>/dev/null)" ]; do sleep 0.05; done; }
chain() { # N: N trivial jobs each afterok the previous; ms from the first sbatch to the last end, per job
    t0=$(now); prev=
    for i in $(seq 1 "$1"); do
        prev=$(sbatch --parsable --mem=16M -o /dev/null ${prev:+--dependency=afterok:$prev} --wrap true)
    done
    idle; ms "$t0" "$(now)" "$1"
}
# the walks must build nothing: the same configuration as the tools above
export MAKE="make CUDA=0"
t0=$(now)
slurm_up "$work/c" || { echo "slurm: $SLURM_UP_WHY" >&2; exit 69; }
t1=$(now)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg), $(sbatch --version)"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| munged + slurmctld + slurmd up, node idle | $(ms "$t0" "$t1") ms |"
t0=$(now)
for i in $(seq 1 20); do sbatch --parsable --hold --mem=16M -o /dev/null --wrap true >/dev/null; done
echo "| sbatch, one held job (mean of 20) | $(ms "$t0" "$(now)" 20) ms |"
t0=$(now)
sbatch --parsable --hold --array=0-99 --mem=16M -o /dev/null --wrap true >/dev/null
echo "| sbatch, one held 100-task array | $(ms "$t0" "$(now)") ms |"
scancel --user root; idle
t0=$(now); sbatch --parsable --mem=16M -o /dev/null --wrap true >/dev/null; idle
echo "| an empty job, sbatch to gone from squeue | $(ms "$t0" "$(now)") ms |"
echo "| a chain of 5 afterok jobs, per job (sched_interval=1) | $(chain 5) ms |"
slurm_down "$work/c"; rm -rf "$work/c"
slurm_up "$work/c" "" || { echo "slurm: $SLURM_UP_WHY" >&2; exit 69; }
echo "| a chain of 3 afterok jobs, per job (default scheduler parameters) | $(chain 3) ms |"
t0=$(now)
a=$(sbatch --parsable --array=0,1 --mem=16M -o /dev/null --wrap true)
sbatch --parsable --array=0,1 --mem=16M -o /dev/null --dependency=aftercorr:$a --wrap true >/dev/null
idle
echo "| a 2-task array, then a 2-task array aftercorr on it (default scheduler parameters) | $(ms "$t0" "$(now)") ms |"
slurm_down "$work/c"; rm -rf "$work/c"
slurm_up "$work/c" || { echo "slurm: $SLURM_UP_WHY" >&2; exit 69; }
t0=$(now)
a=$(sbatch --parsable --array=0,1 --mem=16M -o /dev/null --wrap true)
sbatch --parsable --array=0,1 --mem=16M -o /dev/null --dependency=aftercorr:$a --wrap true >/dev/null
idle
echo "| the same two arrays with sched_interval=1 | $(ms "$t0" "$(now)") ms |"
export TRAVEL_THREADS=1 TRAVEL_SLURM_CPUS=1
t0=$(now); SBATCH=/bin/false sh pipelines/slurm.sh --dry-run "$TOPIC" "$work/dry" >/dev/null || exit 1
echo "| slurm.sh --dry-run of $(basename "$TOPIC") (walk of travel.mk, 7 stages, 5 plans) | $(ms "$t0" "$(now)") ms |"
t0=$(now); make -s -j2 CUDA=0 pipeline TOPIC="$TOPIC" OUT="$work/m" >/dev/null 2>&1 || exit 1
tm=$(ms "$t0" "$(now)")
t0=$(now); sh pipelines/slurm.sh --wait "$TOPIC" "$work/s" >/dev/null || exit 1
ts=$(ms "$t0" "$(now)")
same=no; cmp -s "$work/m/final.mp4" "$work/s/final.mp4" && same=yes
stages=$(awk '/ end / { sub(/.*wall=/, ""); sub(/s$/, ""); t += $0 } END { printf "%.0f", t * 1000 }' "$work/s/.travel/run.log")
echo "| $(basename "$TOPIC"), make -j2 pipeline, 1 thread a stage | $tm ms |"
echo "| $(basename "$TOPIC") through Slurm (5 jobs, 7 stages), submit to last job gone | $ts ms (stages' own wall time $stages ms; final.mp4 identical: $same) |"
