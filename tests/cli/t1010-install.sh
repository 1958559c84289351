#!/bin/sh
# t1010: `make install` like a real Unix tool (issue 10): into a DESTDIR
# staging tree, then used from a directory that is not the checkout with HOME
# and XDG_* pointed at a temporary directory: the tools find models from
# their own location (no prefix baked in), a missing model names every path
# tried and `isopipe-models`, man pages exist for every tool, the installed
# pipeline runs, and `make uninstall` removes exactly what install put there.
. "$(dirname "$0")/lib.sh"

command -v help2man >/dev/null 2>&1 || { skip "install: help2man is missing (make deps installs it)"; test_done; exit 0; }
D=$T/stage
# Make cannot include a makefile by a path with white space: refused in one line, nothing installed
if make -s -C "$ROOT" --no-print-directory install DESTDIR="$D" PREFIX="/opt/iso pipe" SANITIZE="${ISOPIPE_SANITIZE:-}" >install.log 2>&1; then
    fail "a PREFIX with a space is refused"
else
    check "a PREFIX with a space is refused, saying why" grep -q "contains white space" install.log
fi
check "... and nothing was installed" test ! -e "$D"
P=/opt/isopipe
if ! make -s -C "$ROOT" --no-print-directory install DESTDIR="$D" PREFIX="$P" SANITIZE="${ISOPIPE_SANITIZE:-}" >install.log 2>&1; then
    fail "make install"; sed 's/^/    | /' install.log | tail -n 10; test_done; exit 1
fi
ok "make install DESTDIR=... PREFIX='$P'"
I="$D$P"
for t in prompt-expand flow-extract segment-gen stitch vram-probe pipeline-report; do
    check "bin/$t installed" test -x "$I/bin/$t"
    check "man page of $t (from its --help)" grep -q "^\.SH" "$I/share/man/man1/$t.1"
done
check "isopipe-models and isopipe-pipeline installed" test -x "$I/bin/isopipe-models" -a -x "$I/bin/isopipe-pipeline"
check "the pipeline driver installed" test -f "$I/share/isopipe/Makefile" -a -f "$I/share/isopipe/pipelines/travel.mk"
check "docs installed" test -f "$I/share/doc/isopipe/docs/DESIGN.md"

# a user's environment: nothing of the checkout on the path, HOME and XDG temporary
mkdir -p elsewhere home
cd elsewhere || exit 1
export HOME="$T/home" XDG_DATA_HOME="$T/home/data"
unset ISOPIPE_MODELS
expect_exit "a missing model is 69" 69 "$I/bin/prompt-expand" -m no-such-model --plan --topic x
check "... naming the installed prefix's models directory" stderr_has "'$I/share/isopipe/models/no-such-model.gguf'"
check "... and the XDG data directory" stderr_has "'$T/home/data/isopipe/models/no-such-model.gguf'"
check "... and the command that fetches models from here" stderr_has '`isopipe-models` fetches the default models'
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$MODEL" ]; then
    ln -s "$MODEL" "$I/share/isopipe/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    expect_exit "a model under <prefix>/share/isopipe/models is found by name" 0 \
        "$I/bin/prompt-expand" -m SmolLM2-135M-Instruct.Q4_1 --plan --topic x
    # the installed tree can be moved: the prefix comes from the executable's location
    mv "$D/opt" "$D/moved"
    expect_exit "... also after moving the installed tree" 0 \
        "$D/moved/isopipe/bin/prompt-expand" -m SmolLM2-135M-Instruct.Q4_1 --plan --topic x
    mv "$D/moved" "$D/opt"
    # the installed pipeline, from a directory that is not the checkout
    "$TESTBIN/helpers/mkkeyframes" --scene harbor --width 64 --height 48 --count 2 --step 4 -o kf >/dev/null 2>&1 ||
        fail "mkkeyframes"
    printf 'topic: a small boat at dusk\nkeyframes: kf/harbor_00.png kf/harbor_01.png\nframes: 5\nfps: 12\n' > tiny.topic
    if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "$I/bin/isopipe-pipeline" TOPIC=tiny.topic OUT=out TRAVEL_X264_PRESET=veryfast \
        >pipe.log 2>&1 && [ -s out/final.mp4 ]; then
        ok "isopipe-pipeline runs a topic from an installed tree"
    else
        fail "isopipe-pipeline runs a topic from an installed tree"; tail -n 15 pipe.log | sed 's/^/    | /'
    fi
    rm -f "$I/share/isopipe/models/SmolLM2-135M-Instruct.Q4_1.gguf"
else
    skip "model runs from the installed tree: '$MODEL' is absent (make models fetches it)"
fi

cd "$T" || exit 1
if make -s -C "$ROOT" --no-print-directory uninstall DESTDIR="$D" PREFIX="$P" >uninstall.log 2>&1; then
    ok "make uninstall"
else
    fail "make uninstall"; sed 's/^/    | /' uninstall.log
fi
left=$(find "$D" -type f -o -type l | head -n 5)
if [ -z "$left" ]; then ok "uninstall removed every file install put there"; else fail "files left after uninstall: $left"; fi
test_done
