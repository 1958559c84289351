#!/bin/sh
# adversarial (issue 11, item 1): file names, topic values and keyframe names
# are data, never Make or shell code -- through `make pipeline`,
# pipelines/batch.sh and the xargs/parallel lines of docs/pipeline.md. A
# name that cannot be carried is refused in one line before anything is
# created; a keyframe named like an option reaches the tools as a path.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
PR=$BIN/pipeline-report
MK=$TESTBIN/helpers/mkkeyframes
if [ ! -x "$PR" ] || [ ! -x "$MK" ]; then
    skip "adversarial names (bin/pipeline-report or the mkkeyframes helper not built)"; test_done; exit
fi
unset MAKEFLAGS MFLAGS MAKELEVEL
tag=pw$$
travel_make() {
    make -s --no-print-directory -C "$ROOT" pipeline SANITIZE="${ISOPIPE_SANITIZE:-}" CUDA=0 TRAVEL_BIN="$BIN" "$@"
}
no_pwned() { # nothing named $tag* anywhere a recipe or a shell could have run
    [ -z "$(find "$T" "$ROOT" /tmp -maxdepth 3 -name "$tag*" 2>/dev/null | head -n 1)" ]
}
"$MK" --scene forest --width 48 --height 32 --count 2 -o kf || fail "mkkeyframes"
good='topic: x\nkeyframes: kf/forest_00.png kf/forest_01.png\nframes: 4\n'
mkdir names
for n in "x\$(shell touch $tag-1).topic" "w\`touch $tag-2\`.topic" "e\$\$(touch $tag-3).topic" "q'x\$(touch $tag-4).topic" \
         "s p.topic" "c:d.topic"; do
    printf "$good" > "names/$n"
done

# make pipeline: each hostile TOPIC refused at parse time, one line, nothing created
for f in names/*; do
    expect_exit "make pipeline TOPIC='$f' refused" 2 travel_make TOPIC="$T/$f" OUT="$T/o1"
    check "  ... in one line naming TOPIC" sh -c "[ \$(wc -l < '$T/.err') -eq 1 ] && grep -q \"TOPIC '\" '$T/.err'"
done
check "make: no command from a TOPIC name ran" no_pwned
check "make: nothing created for a refused TOPIC" test ! -e o1
printf "$good" > ok.topic
expect_exit "make pipeline OUT with a \$(shell) refused" 2 travel_make TOPIC="$T/ok.topic" OUT="$T/o\$(shell touch $tag-5)"
expect_exit "make pipeline OUT with a space refused" 2 travel_make TOPIC="$T/ok.topic" OUT="$T/o s"
check "  ... in one line naming OUT" sh -c "[ \$(wc -l < '$T/.err') -eq 1 ] && grep -q \"OUT '\" '$T/.err'"
check "make: nothing created for a refused OUT" test ! -e "$T/o s" -a ! -e "$T/o\$(shell touch $tag-5)"
expect_exit "make pipeline TOPIC=--plan refused" 2 travel_make TOPIC=--plan
check "make: no command from an OUT name ran" no_pwned
# the same names from the environment
expect_exit "TOPIC from the environment is literal too" 2 env TOPIC="$T/x\$(shell touch $tag-6).topic" \
    make -s --no-print-directory -C "$ROOT" pipeline TRAVEL_BIN="$BIN"
check "env: no command ran" no_pwned

# topic values: $(...), $$(...) and backquotes in the text are text; a
# keyframe named "--plan" is handed over as "./--plan"
cp kf/forest_00.png ./--plan
printf 'topic: a $$(touch %s-7) $(shell touch %s-8) `touch %s-9` walk\nkeyframes: --plan kf/forest_01.png\nframes: 4\n' \
    $tag $tag $tag > val.topic
expect_exit "topic-vars on a topic with shell/Make syntax in its text" 0 "$PR" -q topic-vars --prompt-topic p.topic -o vars.mk val.topic
check "vars: the option-like keyframe becomes ./--plan" grep -qx 'TRAVEL_A_000 := ./--plan' vars.mk
check "prompt topic: the text kept verbatim" grep -qF "\$\$(touch $tag-7) \$(shell touch $tag-8)" p.topic
travel_make -n TOPIC="$T/val.topic" OUT="$T/o2" >/dev/null 2>&1
check "make -n over that topic ran nothing from it" no_pwned
check "make -n: vars.mk written (keyframes resolved to the topic's folder)" grep -qx "TRAVEL_A_000 := $T/--plan" o2/.travel/vars.mk

# pipelines/batch.sh over a folder of hostile names: every run fails, nothing runs
expect_exit "batch over hostile names" 1 env TRAVEL_BIN="$BIN" sh "$ROOT/pipelines/batch.sh" -j 2 -o "$T/bo" names
check "batch: no command from a topic name ran" no_pwned
check "batch: the summary gives the refusal as the reason" grep -q "FAIL .*before any stage: TOPIC '.*cannot carry" "$T/.out"

# docs/pipeline.md's xargs and parallel lines with a stand-in make that
# records the arguments it gets: names arrive whole, nothing runs
mkdir -p docs_t/sample_inputs docs_t/out/batch docs_t/stub && cp names/* docs_t/sample_inputs/
cat > docs_t/stub/make <<'S'
#!/bin/sh
for a in "$@"; do printf '[%s]' "$a"; done; echo
S
chmod +x docs_t/stub/make
grep -E '^printf .*xargs' "$ROOT/docs/pipeline.md" > docs_t/xargs.sh
check "docs: the xargs line is there" test -s docs_t/xargs.sh
(cd docs_t && PATH=$T/docs_t/stub:$PATH sh xargs.sh >/dev/null 2>&1)
check "docs xargs: no command from a name ran" no_pwned
check "docs xargs: the name reached make whole" grep -qF "[TOPIC=sample_inputs/w\`touch $tag-2\`.topic][OUT=out/batch/w\`touch $tag-2\`]" "docs_t/out/batch/w\`touch $tag-2\`.log"
if command -v parallel >/dev/null 2>&1; then
    rm -f docs_t/out/batch/*.log
    grep -E '^parallel ' "$ROOT/docs/pipeline.md" > docs_t/parallel.sh
    (cd docs_t && PATH=$T/docs_t/stub:$PATH sh parallel.sh >/dev/null 2>&1)
    check "docs parallel: no command from a name ran" no_pwned
    check "docs parallel: the name reached make whole" grep -qF "[TOPIC=sample_inputs/x\$(shell touch $tag-1).topic]" "docs_t/out/batch/x\$(shell touch $tag-1).log"
else
    skip "docs parallel line (GNU parallel not installed)"
fi
find "$ROOT" /tmp -maxdepth 3 -name "$tag*" -exec rm -f {} + 2>/dev/null
test_done
