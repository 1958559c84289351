#!/bin/sh
# adversarial (issue 11, items 2 and 9): an output directory replaces only
# what the same tool wrote there before (recognised by its JSON), never a
# user's folder, never a folder holding the run's own inputs (73, contents
# untouched); `-o ''` is a usage error (64) before any work.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
MK=$TESTBIN/helpers/mkkeyframes
GEN=$TESTBIN/helpers/stitch_gen
for t in flow-extract segment-gen stitch; do
    [ -x "$BIN/$t" ] || { skip "adversarial outputs ($t not built)"; test_done; exit; }
done
[ -x "$MK" ] && [ -x "$GEN" ] || { skip "adversarial outputs (helpers not built)"; test_done; exit; }
"$MK" --scene forest --width 48 --height 32 --count 2 -o kf || fail "mkkeyframes"
A=kf/forest_00.png B=kf/forest_01.png
user_dir() { rm -rf "$1"; mkdir -p "$1"; echo "years of work" > "$1/thesis.txt"; }
intact() { [ "$(cat "$1/thesis.txt" 2>/dev/null)" = "years of work" ]; }

# flow-extract
user_dir mine
expect_exit "flow-extract -o a user's folder" 73 "$BIN/flow-extract" -q --backward -o mine --pair $A $B
check "  ... says why" stderr_has "no flow.json"
check "  ... the folder is untouched" intact mine
expect_exit "flow-extract -o the folder of its own inputs" 73 "$BIN/flow-extract" -q -o kf --pair $A $B
check "  ... says it holds the input" stderr_has "holds the input"
check "  ... the keyframes are still there" test -s $A -a -s $B
expect_exit "flow-extract -o an input file" 73 "$BIN/flow-extract" -q -o $B --pair $A $B
expect_exit "flow-extract first run" 0 "$BIN/flow-extract" -q --backward -o fl --pair $A $B
expect_exit "flow-extract re-run over its own output" 0 "$BIN/flow-extract" -q --backward -o fl --pair $A $B
echo extra > fl/notes.txt
expect_exit "flow-extract over its output plus a user file" 73 "$BIN/flow-extract" -q --backward -o fl --pair $A $B
check "  ... the user file is kept" test -s fl/notes.txt
rm fl/notes.txt
expect_exit "flow-extract -o ''" 64 "$BIN/flow-extract" -q -o '' --pair $A $B

# segment-gen
SG="$BIN/segment-gen -q -m morph --start $A --end $B --flow fl/flow_00000.flo --flow-back fl/flow_bwd_00000.flo --frames 4"
user_dir mine
expect_exit "segment-gen -o a user's folder" 73 $SG -o mine
check "  ... the folder is untouched" intact mine
expect_exit "segment-gen -o the flow folder it reads" 73 $SG -o fl
check "  ... the flows are still there" test -s fl/flow_00000.flo
expect_exit "segment-gen -o a flow-extract output" 73 $SG -o fl/..
expect_exit "segment-gen first run" 0 $SG -o seg
expect_exit "segment-gen re-run over its own output" 0 $SG -o seg
check "  ... four frames" test "$(ls seg | grep -c '^frame_.*png$')" -eq 4
printf '{"tool": "flow-extract"}\n' > seg/segment.json
expect_exit "segment-gen over a folder whose JSON another tool wrote" 73 $SG -o seg
echo file > afile
expect_exit "segment-gen -o an existing file" 73 $SG -o afile
check "  ... the file is kept" test "$(cat afile)" = file
expect_exit "segment-gen -o ''" 64 $SG -o ''

# stitch --frames-out and -o
$GEN s0 48 32 6 1 && $GEN s1 48 32 6 2 || fail "stitch_gen"
ST="$BIN/stitch -q --overlap 2 --preset ultrafast"
user_dir mine
expect_exit "stitch --frames-out a user's folder" 73 $ST --frames-out mine -o v.mp4 s0 s1
check "  ... the folder is untouched" intact mine
check "  ... no video either" test ! -e v.mp4
expect_exit "stitch --frames-out an input segment" 73 $ST --frames-out s1 -o v.mp4 s0 s1
check "  ... the segment is untouched" test "$(ls s1 | grep -c '^frame_')" -eq 6
cp -r s0 s0.mp4
expect_exit "stitch -o equal to an input" 73 $ST -o s0.mp4 s0.mp4 s1
expect_exit "stitch first run with --frames-out" 0 $ST --frames-out fo -o v.mp4 s0 s1
check "  ... frames.json names stitch" grep -q '"tool": "stitch"' fo/frames.json
expect_exit "stitch re-run over its own --frames-out" 0 $ST --frames-out fo -o v.mp4 s0 s1
expect_exit "stitch -o ''" 64 $ST -o '' s0 s1
test_done
