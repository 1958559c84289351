#!/bin/sh
# slurm.sh — the travel pipeline's stage graph submitted to Slurm: one job
# per stage, a job array per kind of per-pair stage (flow, segments),
# --dependency edges exactly where Make has prerequisites (docs/slurm.md).
#
#   pipelines/slurm.sh [--dry-run] [--wait] TOPIC OUT
#   pipelines/slurm.sh [--dry-run] [--wait] --batch [-o OUTROOT] TOPIC_OR_DIR...
#   pipelines/slurm.sh --status OUT
#
# What to run comes from Make itself: pipelines/travel.mk is walked as
# `make pipeline` would walk it, with each stage's recipe recorded instead of
# run (pipelines/slurm.mk), so only stages whose outputs are missing or out
# of date are submitted, and a re-submission after a failure or scancel
# runs only what is left. Each job runs the same stage runner
# (`pipeline-report run`), which writes the stage's record; the report job
# depends on the stitch job. --dry-run writes and prints the sbatch scripts
# and the sbatch commands without submitting; --wait waits for the jobs and
# prints their states as `scontrol show job -o` gives them.
# Exit status: 0 submitted (with --wait: every job COMPLETED), 1 a job
# failed or was cancelled, 64 bad usage or knob, 65 a path or topic the
# driver cannot carry, 69 sbatch missing, 70 internal, 73 cannot write
# OUT, 75 jobs of an earlier submission still queued or running.
# Environment: the TRAVEL_SLURM_* knobs (docs/slurm.md), any TRAVEL_* of
# travel.mk, MAKE, SBATCH/SQUEUE/SCONTROL (the Slurm commands).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
MAKE=${MAKE:-make}
SBATCH=${SBATCH:-sbatch}
SQUEUE=${SQUEUE:-squeue}
SCONTROL=${SCONTROL:-scontrol}
NL='
'
TAB=$(printf '\t')

die() { code=$1; shift; echo "slurm: $*" >&2; exit "$code"; }

# q WORD: WORD as one shell word (single quotes unless it is plainly safe)
q() {
    case $1 in
    '' | *[!A-Za-z0-9._/:=+@%,-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
    esac
}

# path_ok P: the characters the Make driver can carry (pipeline-report's
# travel_path_ok: letters, digits, ._-/+@ and UTF-8)
path_ok() {
    [ -n "$1" ] || return 1
    rest=$(printf '%s' "$1" | LC_ALL=C tr -d 'A-Za-z0-9._/+@\200-\377-')
    [ -z "$rest" ]
}

# knob NAME VALUE: a value that goes on an #SBATCH line must be one plain word
knob_ok() {
    case $2 in *[!A-Za-z0-9._:,=/+@%-]*) die 64 "$1='$2': an #SBATCH option cannot carry this value (letters, digits and ._:,=/+@%- only)" ;; esac
}

# ---------------------------------------------------------------- recorder
# Called by Make during the walk in place of the stage runner:
#   --record WALKDIR TARGET PREREQ... -- COMMAND...
# Writes WALKDIR/NAME.argv (the command, one word a line) and a line of
# WALKDIR/stages.tsv: NAME KIND OUTPUTS PREREQS.
record() {
    walk=$1 target=$2
    shift 2
    deps=
    while [ $# -gt 0 ] && [ "$1" != -- ]; do deps="$deps $1"; shift; done
    [ $# -gt 1 ] || die 70 "--record: no command after '--'"
    shift
    name= kind= json= prev=
    for a in "$@"; do
        case $a in *"$NL"* | *"$TAB"*) die 65 "stage of '$target': an argument has a tab or a newline: '$a'" ;; esac
        [ "$a" = -- ] && break
        case $prev in --name) name=$a ;; --kind) kind=$a ;; --json) json=$a ;; esac
        prev=$a
    done
    if [ -z "$name" ]; then   # the report: named after its target
        name=$(basename "$target"); name=${name%.*}; kind=${kind:-$name}
    fi
    case $name in '' | *[!A-Za-z0-9_]*) die 65 "stage name '$name' (of '$target') is not a plain word" ;; esac
    printf '%s\n' "$@" > "$walk/$name.argv" || die 73 "cannot write '$walk/$name.argv'"
    printf '%s\t%s\t%s\t%s\n' "$name" "${kind:-stage}" "$target $json" "$deps" >> "$walk/stages.tsv" ||
        die 73 "cannot write '$walk/stages.tsv'"
}

# ---------------------------------------------------------------- the graph
# stages.tsv -> jobs.tsv: KEY ARRAY(0|1) MEMBERS INDICES DEPS, in submission
# order. A stage named PREFIX_NNN may share an array job with the other
# PREFIX_* stages whose prerequisites look the same; a prerequisite made by
# the stage of the same index in another array becomes aftercorr (task i
# waits for task i), any other one afterok on that job (or on one task).
plan_jobs() {
    awk -F '\t' '
    function grp_of(s) { return group[s] }
    !seen[$1]++ {
        n++; name[n] = $1; idx_of[$1] = n
        no = split($3, outs, " "); for (i = 1; i <= no; i++) if (outs[i] != "") producer[outs[i]] = $1
        deplist[$1] = $4
    }
    END {
        ng = 0
        for (k = 1; k <= n; k++) {
            s = name[k]
            cand = match(s, /_[0-9]+$/) > 0
            pre = cand ? substr(s, 1, RSTART - 1) : s
            ix = cand ? substr(s, RSTART + 1) + 0 : -1
            # the stages this one depends on, once each
            nd = split(deplist[s], d, " "); delete ds; sig = ""; ndeps = 0
            for (i = 1; i <= nd; i++) {
                p = producer[d[i]]
                if (p == "" || p == s || (p in ds)) continue
                ds[p] = 1
                ndeps++; dep[ndeps] = p
            }
            # signature: how each dependency would be written for this stage
            sig = ""
            for (i = 1; i <= ndeps; i++) {
                p = dep[i]; g = grp_of(p)
                if (cand && garray[g] && match(p, /_[0-9]+$/) && substr(p, RSTART + 1) + 0 == ix) ent = "corr:" g
                else if (garray[g]) ent = "task:" g ":" tindex[p]
                else ent = "job:" g
                sig = sig " " ent
            }
            key = cand ? pre "|" sig : "single|" s
            if (cand && (key in gkey) && !((gkey[key], ix) in gmember)) g = gkey[key]
            else {
                ng++; g = ng; gkey[key] = g; garray[g] = cand; gname[g] = pre
                gsig[g] = sig; nm[g] = 0
                used[pre]++; if (used[pre] > 1) gname[g] = pre "-" used[pre]
            }
            group[s] = g; tindex[s] = ix; gmember[g, ix] = 1
            nm[g]++; mem[g, nm[g]] = s
        }
        for (g = 1; g <= ng; g++) {
            members = ""; idx = ""
            for (i = 1; i <= nm[g]; i++) {
                members = members (i > 1 ? " " : "") mem[g, i]
                if (garray[g]) idx = idx (i > 1 ? "," : "") tindex[mem[g, i]]
            }
            # the dependencies: aftercorr on an array; afterok on a whole
            # job, or on one task, or on a whole array when every task is named
            nsig = split(gsig[g], e, " "); out = ""; delete taskdeps; delete tcount
            for (i = 1; i <= nsig; i++) {
                split(e[i], f, ":")
                if (f[1] == "corr") out = out " aftercorr:" gname[f[2]]
                else if (f[1] == "job") out = out " afterok:" gname[f[2]]
                else { tcount[f[2]]++; taskdeps[f[2]] = taskdeps[f[2]] " afterok:" gname[f[2]] "_" f[3] }
            }
            for (h in tcount) out = out (tcount[h] == nm[h] ? " afterok:" gname[h] : taskdeps[h])
            printf "%s\t%d\t%s\t%s\t%s\n", gname[g], garray[g], members, idx == "" ? "-" : idx, substr(out, 2)
        }
    }' "$1"
}

# ---------------------------------------------------------------- --mem and GPU
# plan_mem STAGE: sets MEM_MIB, GPU (1 when the plan wants a GPU) and
# MEM_NOTE from the stage tool's own --plan (docs/memory.md).
plan_mem() {
    st=$1
    MEM_MIB=$REPORT_MEM GPU=0 MEM_NOTE="no plan: the report (TRAVEL_SLURM_REPORT_MEM=$REPORT_MEM MiB)"
    # the stage runner's argv: RUNNER ... run ... --memory-mode M ... -- TOOL ARGS...
    set --
    mode=auto prev= seen=0
    while IFS= read -r a; do
        if [ $seen = 1 ]; then set -- "$@" "$a"; continue; fi
        [ "$a" = -- ] && { seen=1; continue; }
        [ "$prev" = --memory-mode ] && mode=$a
        prev=$a
    done < "$WALK/$st.argv"
    [ $# -gt 0 ] || return 0
    tool=$1; shift
    # inputs an earlier job will make do not exist yet; the plans that read
    # them (stitch: the segments' frame size) get stand-ins of the same size
    # made of the topic's first keyframe (the morph does not resize)
    n=0 args=
    for a in "$@"; do
        n=$((n + 1))
        if ! (cd "$ROOT" && [ -e "$a" ]) && awk -F '\t' -v d="$a/" -v me="$st" '$1 != me { n = split($3, o, " ")
                for (i = 1; i <= n; i++) if (index(o[i], d) == 1) f = 1 } END { exit !f }' "$WALK/stages.tsv"; then
            sd="$WALK/standin/$st-$n"
            if [ ! -d "$sd" ]; then
                mkdir -p "$sd" || die 73 "cannot create '$sd'"
                i=0
                while [ $i -le "$OVERLAP" ]; do   # stitch needs overlap frames; its plan, the size
                    ln -s "$KEY0" "$sd/$(printf 'frame_%05d.png' $i)"; i=$((i + 1))
                done
            fi
            a=$sd
        fi
        args="$args $(q "$a")"
    done
    eval "set -- $args"
    if ! (cd "$ROOT" && "$tool" --plan -q "$@") > "$WALK/$st.plan" 2> "$WALK/$st.plan.err"; then
        sed 's/^/    /' "$WALK/$st.plan.err" >&2
        die 70 "stage '$st': '$tool --plan' failed; no memory request without a plan"
    fi
    res=$(awk -v mode="$mode" -v gres="$GRES" -v margin="$MARGIN" -v runner="$RUNNER_MEM" '
        /^  "modes": \{/ { inm = 1; next }
        inm && /^  \}/ { inm = 0 }
        inm && match($0, /^    "[a-z]+": \{/) { m = substr($0, 6); sub(/".*/, "", m); next }
        inm && /^      "host_rss": / { v = $2; sub(/,/, "", v); rss[m] = v + 0 }
        inm && /^      "possible": / { poss[m] = ($2 ~ /true/) }
        END {
            gpu = mode != "cpu" && (poss["beefy"] || poss["lightweight"])
            # the modes this stage may run in: auto on a node Slurm gave a GPU
            # picks beefy or lightweight; beefy falls back to lightweight after
            # exit 75 (the stage runner); without a GPU request anything possible
            if (mode == "beefy") { want["beefy"]; want["lightweight"] }
            else if (mode == "lightweight") want["lightweight"]
            else if (mode == "cpu") want["cpu"]
            else if (gpu && gres != "") { want["beefy"]; want["lightweight"] }
            else { want["beefy"]; want["lightweight"]; want["cpu"] }
            best = 0; bm = ""
            for (k in want) if (poss[k] && rss[k] > best) { best = rss[k]; bm = k }
            if (bm == "") { print "x"; exit }
            mib = int((best * (100 + margin) / 100 + 1048575) / 1048576) + runner
            printf "%d %d %s %.1f\n", mib, gpu, bm, best / 1048576
        }' "$WALK/$st.plan")
    case $res in x | '') die 70 "stage '$st': its plan allows no mode for --memory-mode $mode" ;; esac
    set -- $res
    MEM_MIB=$1 GPU=$2
    MEM_NOTE="$(basename "$tool") --plan: $3 host_rss $4 MiB + ${MARGIN}% + ${RUNNER_MEM} MiB for the runner"
}

# ---------------------------------------------------------------- one topic
# submit_topic TOPIC OUT: walk, plan, write the scripts, submit (or print)
submit_topic() {
    topic=$1 out=${2%/}
    # Make runs in the checkout: paths relative to elsewhere become absolute
    if [ "$(pwd -P)" != "$ROOT" ]; then
        case $topic in /*) ;; *) topic=$(pwd -P)/$topic ;; esac
        case $out in /*) ;; *) out=$(pwd -P)/$out ;; esac
    fi
    path_ok "$topic" || die 65 "topic path '$topic' has a character the Make driver cannot carry (letters, digits, ._-/+@)"
    path_ok "$out" || die 65 "OUT '$out' has a character the Make driver cannot carry (letters, digits, ._-/+@)"
    [ -f "$topic" ] || die 66 "topic '$topic' does not exist"
    case $out in /*) aout=$out ;; *) aout=$ROOT/$out ;; esac
    S=$aout/.travel/slurm
    mkdir -p "$S/logs" || die 73 "cannot create '$S'"
    # an earlier submission still in the queue would race this one
    if [ -s "$S/jobs" ] && [ $DRY = 0 ]; then
        ids=$(awk '{ print $2 }' "$S/jobs" | paste -sd, -)
        busy=$($SQUEUE -h -j "$ids" -t PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED,REQUEUED -o %i 2>/dev/null | paste -sd' ' -)
        [ -z "$busy" ] || die 75 "'$out': jobs of an earlier submission are still queued or running ($busy); wait for them or scancel them"
    fi
    WALK=$S/walk
    rm -rf "$WALK" && mkdir -p "$WALK" || die 73 "cannot create '$WALK'"
    : > "$WALK/stages.tsv"
    # the walk: make pipeline with every stage recorded; a stage that
    # existed but was out of date left its dependants looking up to date,
    # so walk again with those outputs "just modified" (-W) until no stage
    # is added (a fresh OUT needs one walk)
    what_if=
    while :; do
        # shellcheck disable=SC2086
        (cd "$ROOT" && $MAKE -s --no-print-directory -j1 pipeline TOPIC="$topic" OUT="$out" \
            TRAVEL_SLURM_WALK="$WALK" TRAVEL_THREADS="$THREADS" $what_if) > "$WALK/make.out" 2> "$WALK/make.err"
        rc=$?
        if [ $rc -ne 0 ]; then
            grep -v '^make' "$WALK/make.err" | sed 's/^/    /' >&2
            die 65 "'$topic': the walk of travel.mk stopped (make exit $rc); nothing submitted"
        fi
        stale=$(cd "$ROOT" && awk -F '\t' '{ n = split($3, o, " "); for (i = 1; i <= n; i++) print o[i] }' "$WALK/stages.tsv" |
                sort -u | while IFS= read -r o; do [ -e "$o" ] && printf ' -W %s' "$o"; done)
        [ "$stale" = "$what_if" ] && break
        what_if=$stale
    done
    if ! awk -F '\t' '!s[$1]++' "$WALK/stages.tsv" > "$WALK/stages.u" || [ ! -s "$WALK/stages.u" ]; then
        echo "slurm: '$out' is complete: nothing to submit"
        rm -f "$S/jobs"
        return 0
    fi
    mv "$WALK/stages.u" "$WALK/stages.tsv"
    plan_jobs "$WALK/stages.tsv" > "$WALK/jobs.tsv" || die 70 "cannot plan the jobs"
    # the topic as travel.mk sees it (overlap, first keyframe) for stand-ins
    OVERLAP=$(sed -n 's/^TRAVEL_OVERLAP := //p' "$aout/.travel/vars.mk")
    KEY0=$(sed -n 's/^TRAVEL_KEY_000 := //p' "$aout/.travel/vars.mk")
    case $KEY0 in /*) ;; *) KEY0=$ROOT/$KEY0 ;; esac
    tname=$(printf "%s" "$(basename "$out")" | LC_ALL=C tr -c 'A-Za-z0-9._-' '_' | cut -c1-40)
    rm -f "$S"/*.sbatch
    [ $DRY = 1 ] || : > "$S/jobs.new"
    njobs=0 nstages=0
    while IFS="$TAB" read -r key arr members indices deps; do
        # the memory request: the largest plan of the job's stages
        mem=0 gpu=0 note=
        for st in $members; do
            plan_mem "$st"
            [ "$MEM_MIB" -gt "$mem" ] && { mem=$MEM_MIB; note=$MEM_NOTE; }
            [ "$GPU" = 1 ] && gpu=1
            nstages=$((nstages + 1))
        done
        f=$S/$key.sbatch
        {
            echo "#!/bin/sh"
            echo "# isopipe travel pipeline, '$tname': stage$( [ "$arr" = 1 ] && echo s) $members"
            echo "# generated by pipelines/slurm.sh from the walk of pipelines/travel.mk (docs/slurm.md)"
            echo "# --mem: $note"
            echo "#SBATCH --job-name=isopipe-$tname-$key"
            [ "$arr" = 1 ] && echo "#SBATCH --array=$indices"
            echo "#SBATCH --mem=${mem}M"
            echo "#SBATCH --cpus-per-task=$THREADS"
            echo "#SBATCH --kill-on-invalid-dep=yes"
            if [ "$gpu" = 1 ]; then
                [ -n "$GRES" ] && echo "#SBATCH --gres=$GRES"
                [ -n "$GPU_PARTITION" ] && echo "#SBATCH --partition=$GPU_PARTITION"
            else
                [ -n "$PARTITION" ] && echo "#SBATCH --partition=$PARTITION"
            fi
            [ -n "$ACCOUNT" ] && echo "#SBATCH --account=$ACCOUNT"
            [ -n "$QOS" ] && echo "#SBATCH --qos=$QOS"
            [ -n "$TIME" ] && echo "#SBATCH --time=$TIME"
            for w in $EXTRA; do echo "#SBATCH $w"; done
            echo "cd $(q "$ROOT") || exit 66"
            emit() { # the stage's command, every word quoted
                printf 'exec'
                while IFS= read -r a; do printf ' %s' "$(q "$a")"; done < "$WALK/$1.argv"
                printf '\n'
            }
            if [ "$arr" = 1 ]; then
                echo 'case ${SLURM_ARRAY_TASK_ID-} in'
                for st in $members; do
                    printf '%s) ' "$(echo "$st" | sed 's/.*_0*\([0-9]\)/\1/')"; emit "$st" | sed 's/$/ ;;/'
                done
                echo '*) echo "isopipe: no stage for array task ${SLURM_ARRAY_TASK_ID-none}" >&2; exit 70 ;;'
                echo 'esac'
            else
                emit "$members"
            fi
        } > "$f" || die 73 "cannot write '$f'"
        # the dependencies: job keys -> job ids (placeholders in a dry run)
        dep= ok=1
        for d in $deps; do
            type=${d%%:*} ref=${d#*:} task=
            case ${ref##*_} in "$ref" | '' | *[!0-9]*) ;; *) task=_${ref##*_}; ref=${ref%_*} ;; esac   # JOB_TASK
            if [ $DRY = 1 ]; then id="\$JOB_$(echo "$ref" | tr -- - _)"
            else id=$(awk -v k="$ref" '$1 == k { print $2 }' "$S/jobs.new"); [ -n "$id" ] || ok=0; fi
            dep="$dep${dep:+,}$type:$id$task"
        done
        [ $ok = 1 ] || die 70 "job '$key' depends on a job not submitted ($deps)"
        log=$S/logs/$key-%A_%a.out
        [ "$arr" = 1 ] || log=$S/logs/$key-%j.out
        set -- --parsable "--output=$log"
        [ -n "$dep" ] && set -- "$@" "--dependency=$dep"
        set -- "$@" "$f"
        njobs=$((njobs + 1))
        if [ $DRY = 1 ]; then
            echo "# ---- $f"
            cat "$f"
            printf '# submit:'
            printf ' %s' "$(q "$SBATCH")"
            for w in "$@"; do case $w in *'$JOB_'*) printf ' "%s"' "$w" ;; *) printf ' %s' "$(q "$w")" ;; esac; done
            printf '\n\n'
        else
            id=$(cd "$ROOT" && $SBATCH "$@") || {
                die 1 "sbatch refused job '$key' of '$out'; jobs submitted so far are in '$S/jobs.new'"
            }
            id=${id%%;*}
            printf '%s %s %s\n' "$key" "$id" "$members" >> "$S/jobs.new"
            echo "slurm: $tname: job $id $key: $members${dep:+ (after $dep)}"
        fi
    done < "$WALK/jobs.tsv"
    if [ $DRY = 1 ]; then
        echo "slurm: dry run: $njobs jobs for $nstages stages of '$out' (scripts in $S), nothing submitted"
    else
        mv "$S/jobs.new" "$S/jobs"
        SUBMITTED="$SUBMITTED $aout"
    fi
}

# ---------------------------------------------------------------- status
# status OUT: one line per stage from `scontrol show job -o` (sacct needs
# accounting, which many small clusters do not run); 1 when one is not COMPLETED
status() {
    s=$1/.travel/slurm
    [ -s "$s/jobs" ] || { echo "slurm: no submission recorded in '$s/jobs'" >&2; return 66; }
    bad=0
    printf '%-10s %-10s %-12s %-6s %-10s %s\n' STAGE JOB STATE EXIT RUNTIME REASON
    while read -r key id members; do
        why=
        $SCONTROL show job -o "$id" > "$s/.show" 2> "$s/.err" || { : > "$s/.show"; why=$(head -n 1 "$s/.err"); }
        for st in $members; do
            t=-
            case $st in *_[0-9]*) t=$(echo "$st" | sed 's/.*_0*\([0-9]\)/\1/') ;; esac
            # a task not started yet is still part of the array's pending
            # record, whose ArrayTaskId is a range or a list ("1-2", "0,2")
            line=$(awk -v t="$t" '{ at = "-"; for (i = 1; i <= NF; i++) if ($i ~ /^ArrayTaskId=/) at = substr($i, 13)
                                     if (t == "-" || at == t) { print; found = 1; exit }
                                     if (at ~ /[^0-9]/ && rest == "") rest = $0 }
                                   END { if (!found && rest != "") print rest }' "$s/.show")
            if [ -z "$line" ]; then
                printf '%-10s %-10s %-12s %-6s %-10s %s\n' "$st" "$id" "(unknown)" - - "${why:-not in scontrol show job}"
                bad=1; continue
            fi
            field() { printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
            state=$(field JobState)
            [ "$state" = COMPLETED ] || bad=1
            printf '%-10s %-10s %-12s %-6s %-10s %s\n' "$st" "$(field JobId)" "$state" "$(field ExitCode)" \
                "$(field RunTime)" "$(field Reason)"
        done
    done < "$s/jobs"
    rm -f "$s/.show" "$s/.err"
    return $bad
}

wait_jobs() { # OUTDIR...: until none of their jobs is queued or running
    ids=
    for o in "$@"; do ids="$ids${ids:+,}$(awk '{ print $2 }' "$o/.travel/slurm/jobs" | paste -sd, -)"; done
    [ -n "$ids" ] || return 0
    while [ -n "$($SQUEUE -h -j "$ids" -t PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED,REQUEUED -o %i 2>/dev/null)" ]; do
        sleep "${TRAVEL_SLURM_POLL:-1}"
    done
}

# ---------------------------------------------------------------- main
if [ "${1:-}" = --record ]; then shift; record "$@"; exit 0; fi
if [ "${1:-}" = --plan-jobs ]; then plan_jobs "$2"; exit; fi   # for the tests
if [ "${1:-}" = --quote ]; then shift; for a in "$@"; do q "$a"; echo; done; exit 0; fi

usage() {
    echo "usage: pipelines/slurm.sh [--dry-run] [--wait] TOPIC OUT" >&2
    echo "       pipelines/slurm.sh [--dry-run] [--wait] --batch [-o OUTROOT] TOPIC_OR_DIR..." >&2
    echo "       pipelines/slurm.sh --status OUT" >&2
    exit 64
}
DRY=0 WAIT=0 BATCH=0 OUTROOT=out/batch STATUS=0
while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) DRY=1; shift ;;
    --wait) WAIT=1; shift ;;
    --batch) BATCH=1; shift ;;
    --status) STATUS=1; shift ;;
    -o) [ $# -ge 2 ] || usage; OUTROOT=$2; shift 2 ;;
    # from pipelines/slurm.mk: the arguments are Make's exported variables
    --env) shift; set -- "$@" "${TOPIC:-}" "${OUT:-}"
           [ -n "${TOPIC:-}" ] || die 64 "say which topic: make slurm-pipeline TOPIC=sample_inputs/harbor.topic OUT=out/harbor"
           [ -n "${OUT:-}" ] || set -- "${TOPIC:-}" "out/$(basename "$TOPIC" .topic)"
           break ;;
    --env-batch) shift; BATCH=1; OUTROOT=${OUT:-out/batch}
           [ -n "${TOPICS:-}" ] || die 64 "say which topics: make slurm-batch TOPICS=sample_inputs OUT=out/batch"
           set -f; set -- $TOPICS; set +f; break ;;
    --env-status) shift; STATUS=1; set -- "${OUT:-}"; break ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
done

if [ $STATUS = 1 ]; then
    [ $# -eq 1 ] && [ -n "$1" ] || usage
    status "$1"; exit $?
fi

# the site knobs (docs/slurm.md)
GRES=${TRAVEL_SLURM_GRES-gpu:1}
PARTITION=${TRAVEL_SLURM_PARTITION:-}
GPU_PARTITION=${TRAVEL_SLURM_GPU_PARTITION:-$PARTITION}
ACCOUNT=${TRAVEL_SLURM_ACCOUNT:-}
QOS=${TRAVEL_SLURM_QOS:-}
TIME=${TRAVEL_SLURM_TIME:-}
THREADS=${TRAVEL_THREADS:-${TRAVEL_SLURM_CPUS:-4}}
MARGIN=${TRAVEL_SLURM_MEM_MARGIN:-25}
RUNNER_MEM=${TRAVEL_SLURM_RUNNER_MEM:-64}
REPORT_MEM=${TRAVEL_SLURM_REPORT_MEM:-256}
EXTRA=${TRAVEL_SLURM_SBATCH:-}
for k in GRES PARTITION GPU_PARTITION ACCOUNT QOS TIME THREADS MARGIN RUNNER_MEM REPORT_MEM; do
    eval "knob_ok TRAVEL_SLURM_$k \"\$$k\""
done
set -f
for w in $EXTRA; do knob_ok TRAVEL_SLURM_SBATCH "$w"; done
set +f
for k in THREADS MARGIN RUNNER_MEM REPORT_MEM; do
    eval "v=\$$k"
    case $v in '' | *[!0-9]*) die 64 "TRAVEL_SLURM_$k='$v' is not a whole number" ;; esac
done
[ "$THREADS" -ge 1 ] || die 64 "TRAVEL_SLURM_CPUS must be at least 1"
if [ $DRY = 0 ]; then
    command -v "$SBATCH" >/dev/null 2>&1 || die 69 "'$SBATCH' not found: is this a Slurm submit host? (--dry-run prints the scripts)"
fi

SUBMITTED=
if [ $BATCH = 0 ]; then
    [ $# -eq 2 ] || usage
    submit_topic "$1" "$2"
    [ $WAIT = 1 ] && [ -n "$SUBMITTED" ] || exit 0
    wait_jobs $SUBMITTED
    status $SUBMITTED
    exit $?
fi

# the batch: every topic its own graph under OUTROOT/<name>; a bad topic
# does not stop the others
[ $# -ge 1 ] || usage
list=
for a in "$@"; do
    if [ -d "$a" ]; then
        for t in "$a"/*.topic; do [ -f "$t" ] && list="$list$t$NL"; done
    elif [ -f "$a" ]; then list="$list$a$NL"
    else die 66 "'$a' is neither a topic file nor a directory"; fi
done
[ -n "$list" ] || die 66 "no *.topic files in $*"
failed=0
sub=$(mktemp "${TMPDIR:-/tmp}/isopipe-slurm-XXXXXX") || die 73 "cannot create a temporary file"
while IFS= read -r t; do
    [ -n "$t" ] || continue
    name=$(basename "$t" .topic)
    # a subshell, so that a bad topic's exit stops only its own submission
    ( SUBMITTED=; submit_topic "$t" "${OUTROOT%/}/$name"; echo "$SUBMITTED" > "$sub" ) ||
        { failed=$((failed + 1)); echo "slurm: '$t' not submitted" >&2; continue; }
    SUBMITTED="$SUBMITTED $(cat "$sub")"
done <<EOF
$list
EOF
rm -f "$sub"
echo "slurm: $(printf '%s' "$list" | grep -c .) topics, $failed not submitted"
rc=0
[ $failed -eq 0 ] || rc=1
if [ $WAIT = 1 ] && [ -n "$SUBMITTED" ]; then
    # shellcheck disable=SC2086
    wait_jobs $SUBMITTED
    for o in $SUBMITTED; do echo "== $o"; status "$o" || rc=1; done
fi
exit $rc
