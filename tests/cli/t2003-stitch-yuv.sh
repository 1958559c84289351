#!/bin/sh
# stitch's colour conversion (video_rgb_to_yuv420 in common/video_enc.c)
# against a float64 BT.601 limited-range computation: see
# tests/helpers/stitch_yuvcheck.c for the tolerances.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
exec "$TESTBIN/helpers/stitch_yuvcheck"
