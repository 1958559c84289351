#!/bin/sh
# vae: decode and encode through the tool against diffusers' AutoencoderKLWan
# (tests/fixtures/wan_vae, written by tests/ref/wan_vae_ref.py): decoded PNGs
# PSNR >= 40 dB on every frame against the reference rounded to 8 bits the
# same way, encoded latents within 1e-3 * max |ref|; beefy and lightweight on
# a pretend device byte-identical to cpu mode; a segment directory
# decoded in place keeps segment.json; bad input exits with its documented
# code, one error line, and nothing written or replaced.
. "$ISOPIPE_ROOT/tests/cli/lib.sh"
VAE=$BIN/vae
CHK=$TESTBIN/helpers/vae_check
FX=$ROOT/tests/fixtures/wan_vae
A=$FX/a_diffusers/model                       # diffusers directory, config.json
B=$FX/b_original/model/wan_vae.safetensors    # original names, bf16, no config.json
C=$FX/c_original_f16/model/wan_vae.safetensors

# ---- decode: each layout, 1 to 9 frames
for case in "$A a_diffusers 1" "$A a_diffusers 3" "$B b_original 3" "$C c_original_f16 2"; do
    set -- $case
    expect_exit "decode $2 T=$3" 0 "$VAE" decode -q -m "$1" "$FX/$2/dec_$3.safetensors" -o "dec_$2_$3"
    check "decode $2 T=$3: PSNR >= 40 dB on every frame" "$CHK" frames "dec_$2_$3" "$FX/$2/dec_$3.safetensors" 40
done
# the decoder half as a PyTorch checkpoint (common/ptckpt.c through common/weights)
expect_exit "decode with a .pth holding the decoder" 0 "$VAE" decode -q -m "$FX/c_original_f16/decoder.pth" "$FX/c_original_f16/dec_2.safetensors" -o dec_pth
check "decode from the .pth: PSNR >= 40 dB on every frame" "$CHK" frames dec_pth "$FX/c_original_f16/dec_2.safetensors" 40
expect_exit "encode with a decoder-only .pth" 65 "$VAE" encode -q -m "$FX/c_original_f16/decoder.pth" "$FX/c_original_f16/enc_5" -o nope.safetensors
check "message: no encoder" stderr_has "holds no Wan VAE encoder"
check "vae.json reports frames, config source and memory" \
    grep -q '"source": "tensor shapes"' dec_b_original_3/vae.json
check "vae.json has the memory object" grep -q '"peak_rss"' dec_b_original_3/vae.json

# ---- tiled decode against diffusers' own tiled_decode (32-pixel tiles, 24-pixel stride)
expect_exit "decode --tile 4 --tile-overlap 1" 0 "$VAE" decode -q --tile 4 --tile-overlap 1 -m "$A" "$FX/tiled.safetensors" -o tiled
check "tiled decode PSNR >= 40 dB against diffusers' tiled decode" "$CHK" frames tiled "$FX/tiled.safetensors" 40
check "vae.json says which tile and why" grep -q '"why": "--tile 4"' tiled/vae.json
expect_exit "--plan with --tile" 0 "$VAE" decode --plan --tile 4 -m "$A" "$FX/tiled.safetensors"
check "--plan gives the tile in output pixels" grep -q '"tile_pixels": 32' "$T/.out"
expect_exit "--tile-overlap not below --tile" 64 "$VAE" decode -q --tile 4 --tile-overlap 4 -m "$A" "$FX/tiled.safetensors" -o bad10

# ---- encode: PNG directory and PNG list, 1, 5 and 9 frames
expect_exit "encode a_diffusers 5 frames (directory)" 0 "$VAE" encode -q -m "$A" "$FX/a_diffusers/enc_5" -o a5.safetensors
check "a_diffusers latents within 1e-3" "$CHK" latents a5.safetensors "$FX/a_diffusers/enc_5.safetensors" 1e-3
expect_exit "encode b_original 9 frames (directory)" 0 "$VAE" encode -q -m "$B" "$FX/b_original/enc_9" -o b9.safetensors
check "b_original latents within 1e-3" "$CHK" latents b9.safetensors "$FX/b_original/enc_9.safetensors" 1e-3
expect_exit "encode b_original 1 frame (file list)" 0 "$VAE" encode -q -m "$B" "$FX/b_original/enc_1/frame_00000.png" -o b1.safetensors
check "b_original 1-frame latents within 1e-3" "$CHK" latents b1.safetensors "$FX/b_original/enc_1.safetensors" 1e-3
set -- "$FX"/c_original_f16/enc_5/frame_0000[0-4].png
expect_exit "encode c_original_f16 5 frames (file list)" 0 "$VAE" encode -q -m "$C" "$@" -o c5.safetensors
check "c_original_f16 latents within 1e-3" "$CHK" latents c5.safetensors "$FX/c_original_f16/enc_5.safetensors" 1e-3

# ---- encode --vace against WanVACEPipeline's own context construction
V=$FX/vace
expect_exit "--vace --start --end" 0 "$VAE" encode -q --vace -m "$A" --start "$V/start.png" --end "$V/end.png" --frames 9 -o se.safetensors
check "start/end vace_context within 1e-3" "$CHK" tensor vace_context se.safetensors "$V/start_end.safetensors" 1e-3
expect_exit "--vace --keep --end" 0 "$VAE" encode -q --vace -m "$A" --keep "$V/prev" --keep-frames 2 --end "$V/end.png" --frames 9 -o keep.safetensors
check "keep vace_context within 1e-3" "$CHK" tensor vace_context keep.safetensors "$V/keep.safetensors" 1e-3
expect_exit "--vace --video --mask" 0 "$VAE" encode -q --vace -m "$A" --video "$V/video" --mask "$V/mask" -o ex.safetensors
check "explicit vace_context within 1e-3" "$CHK" tensor vace_context ex.safetensors "$V/explicit.safetensors" 1e-3
expect_exit "--vace with 8 frames" 65 "$VAE" encode -q --vace -m "$A" --start "$V/start.png" --end "$V/end.png" --frames 8 -o bad7.safetensors
check "message gives the nearest counts" stderr_has "nearest: 5 or 9"
expect_exit "--vace with both --start and --keep" 64 "$VAE" encode -q --vace -m "$A" --start "$V/start.png" --keep "$V/prev" --keep-frames 2 --end "$V/end.png" --frames 9 -o bad8.safetensors
expect_exit "--start without --vace" 64 "$VAE" encode -q -m "$A" --start "$V/start.png" "$V/end.png" -o bad9.safetensors
check "nothing written" test ! -e bad7.safetensors -a ! -e bad8.safetensors -a ! -e bad9.safetensors

# ---- a segment directory decoded in place keeps segment.json and the latents
mkdir seg
cp "$FX/a_diffusers/dec_3.safetensors" seg/latents.safetensors
printf '{"tool": "segment-gen", "version": "0.1.0", "frames": 9}\n' > seg/segment.json
cp seg/segment.json seg.json.orig
expect_exit "decode a segment directory in place" 0 "$VAE" decode -q -m "$A" seg -o seg
check "segment.json kept" cmp -s seg/segment.json seg.json.orig
check "latents kept" cmp -s seg/latents.safetensors "$FX/a_diffusers/dec_3.safetensors"
check "in-place frames PSNR >= 40 dB" "$CHK" frames seg "$FX/a_diffusers/dec_3.safetensors" 40

# ---- --plan reads no weights and says what it would do
expect_exit "--plan" 0 "$VAE" decode --plan -m "$A" "$FX/a_diffusers/dec_3.safetensors"
check "--plan prints the decode sizes" grep -q '"frames": 9' "$T/.out"
check "--plan says auto picks cpu" grep -q '"auto_pick": "cpu"' "$T/.out"
want=False; [ "${ISOPIPE_CUDA_BUILD:-0}" = 1 ] && want=True
check "--plan without a device: beefy possible only in a CUDA build ($want)" python3 -c '
import json, sys; j = json.load(open(sys.argv[1])); assert j["modes"]["beefy"]["possible"] is '$want "$T/.out"

# ---- GPU modes on a pretend device (ISOPIPE_FAKE_GPU): the GPU modes' code
# (re-laid conv weights registered with nn_wres, resident in the device
# arena, the lightweight tiling) computes on the CPU, so every output must be
# byte-identical to cpu mode's; a lightweight decode that tiles must equal
# the cpu decode with the same --tile (tiling itself changes the frames, by
# 17.8 dB PSNR on these models: docs/vae.md)
same_pngs() { # dir_a dir_b: the same frame files, byte for byte
    [ "$(ls "$1" | grep -c png)" -gt 0 ] && [ "$(ls "$1" | grep png)" = "$(ls "$2" | grep png)" ] || return 1
    for vae_png in "$1"/*.png; do cmp -s "$vae_png" "$2/$(basename "$vae_png")" || return 1; done
}
for m in cpu beefy lightweight; do
    ISOPIPE_FAKE_GPU=8192:8192 expect_exit "decode --memory-mode $m (pretend device)" 0 "$VAE" decode -q --memory-mode $m -m "$B" "$FX/b_original/dec_3.safetensors" -o gpu_d_$m
    ISOPIPE_FAKE_GPU=8192:8192 expect_exit "encode --memory-mode $m (pretend device)" 0 "$VAE" encode -q --memory-mode $m -m "$C" "$FX/c_original_f16/enc_5" -o gpu_e_$m.safetensors
    cp "$T/.out" gpu_e_$m.json
    ISOPIPE_FAKE_GPU=8192:8192 expect_exit "encode --vace --memory-mode $m (pretend device)" 0 "$VAE" encode -q --vace --memory-mode $m -m "$A" --keep "$V/prev" --keep-frames 2 --end "$V/end.png" --frames 9 -o gpu_v_$m.safetensors
    cp "$T/.out" gpu_v_$m.json
done
for m in beefy lightweight; do
    check "decode $m: frames byte-identical to cpu mode" same_pngs gpu_d_cpu gpu_d_$m
    check "encode $m: latents byte-identical to cpu mode" cmp -s gpu_e_cpu.safetensors gpu_e_$m.safetensors
    check "encode --vace $m: vace_context byte-identical to cpu mode" cmp -s gpu_v_cpu.safetensors gpu_v_$m.safetensors
done
nn_is() { # vae.json, mode, weights: memory.mode and memory.nn.weights
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))["memory"]
assert m["mode"] == sys.argv[2] and m["nn"]["weights"] == sys.argv[3] and m["nn"]["backend"] == "cpu"' "$@"
}
check "vae.json: beefy mode, weights resident (pretend device: nn on the cpu)" nn_is gpu_d_beefy/vae.json beefy resident
check "vae.json: lightweight mode, weights resident too" nn_is gpu_d_lightweight/vae.json lightweight resident
check "vae.json: cpu mode, weights mapped" nn_is gpu_d_cpu/vae.json cpu mapped
check "encode --vace report: beefy mode" grep -q '"mode": "beefy"' gpu_v_beefy.json
ISOPIPE_FAKE_GPU=8192:8192 expect_exit "--plan on a pretend device" 0 "$VAE" decode --plan -m "$A" "$FX/a_diffusers/dec_3.safetensors"
check "--plan: beefy and lightweight possible" python3 -c '
import json, sys; j = json.load(open(sys.argv[1]))
assert j["modes"]["beefy"]["possible"] and j["modes"]["lightweight"]["possible"]
assert j["modes"]["beefy"]["vram_peak"] > 0 and j["decode"]["gpu_tiling"]["beefy"]["tile"] == 0' "$T/.out"
check "--plan: gpu_auto false, auto still picks cpu" python3 -c '
import json, sys; j = json.load(open(sys.argv[1])); assert j["gpu_auto"] is False and j["auto_pick"] == "cpu"' "$T/.out"
ISOPIPE_FAKE_GPU=8192:8192 expect_exit "auto on a pretend device runs cpu mode" 0 "$VAE" decode -q -m "$A" "$FX/a_diffusers/dec_1.safetensors" -o gpu_auto
check "auto: mode cpu" grep -q '"mode": "cpu"' gpu_auto/vae.json
# lightweight under a small device room: a device 2 MiB short of what beefy
# needs for 2 latent frames of 40x40 on model a (its --plan; most of it is
# nn's fixed cuBLAS/scratch buffers) makes lightweight tile, beefy not fit
"$CHK" mklatents l40.safetensors latents 16 2 40 40
ISOPIPE_FAKE_GPU=8192:8192 expect_exit "--plan of 40x40 latents" 0 "$VAE" decode --plan -m "$A" l40.safetensors
room=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["modes"]["beefy"]["vram_peak"] // 1048576 - 2)' "$T/.out")
echo "# device room for the lightweight test: $room MiB"
ISOPIPE_FAKE_GPU=8192:$room expect_exit "lightweight under $room MiB of device room" 0 "$VAE" decode -q --memory-mode lightweight -m "$A" l40.safetensors -o gpu_lw
tile=$(python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["tiling"]; print(t["tile"], t["overlap"])' gpu_lw/vae.json)
echo "# lightweight chose tile/overlap: $tile"
check "lightweight tiled to fit the device room (tile $tile)" test "${tile%% *}" -gt 0
check "lightweight tiles go tile-major (one tile's caches at a time)" grep -q '"order": "tile-major"' gpu_lw/vae.json
set -- $tile
expect_exit "cpu decode with the same --tile $1 --tile-overlap $2" 0 "$VAE" decode -q --memory-mode cpu --tile "$1" --tile-overlap "$2" -m "$A" l40.safetensors -o gpu_lw_cpu
check "lightweight tile-major frames byte-identical to cpu mode's frame-major ones with that tile" same_pngs gpu_lw_cpu gpu_lw
check "the activation reservation held every GPU-mode run (the CPU's shadow of the device's heaps)" act_fits gpu_d_beefy/vae.json gpu_d_lightweight/vae.json gpu_lw/vae.json gpu_e_beefy.json gpu_e_lightweight.json gpu_v_beefy.json gpu_v_lightweight.json
ISOPIPE_FAKE_GPU=8192:$room expect_exit "beefy does not fit $room MiB" 75 "$VAE" decode -q --memory-mode beefy -m "$A" l40.safetensors -o gpu_bf
check "message gives need and room" stderr_has "beefy mode needs"
check "nothing written" test ! -e gpu_bf

# ---- bad input: exit code, one line, nothing written
"$CHK" mklatents c8.safetensors latents 8 2 2 3
expect_exit "latents with 8 channels for a z_dim 16 model" 65 "$VAE" decode -q -m "$A" c8.safetensors -o bad1
check "message names channels and z_dim" stderr_has "8 channels; the model's z_dim is 16"
check "nothing written" test ! -e bad1
"$CHK" mklatents noname.safetensors other 16 2 2 3
expect_exit "no 'latents' tensor" 65 "$VAE" decode -q -m "$A" noname.safetensors -o bad2
check "message names the tensor" stderr_has "no tensor 'latents'"
expect_exit "missing latents file" 66 "$VAE" decode -q -m "$A" nowhere.safetensors -o bad3
mkdir theirs && echo keep > theirs/notes.txt
expect_exit "non-empty output directory that is not ours" 73 "$VAE" decode -q -m "$A" "$FX/a_diffusers/dec_1.safetensors" -o theirs
check "their directory untouched" test "$(ls theirs)" = notes.txt
mkdir f4 && cp "$FX"/b_original/enc_9/frame_0000[0-3].png f4/
expect_exit "4 frames" 65 "$VAE" encode -q -m "$B" f4 -o bad4.safetensors
check "message gives the nearest counts" stderr_has "nearest: 1 or 5"
check "one error line" test "$(stderr_lines)" -eq 1
"$CHK" mkpng odd.png 20 12
expect_exit "20x12 frame" 65 "$VAE" encode -q -m "$B" odd.png -o bad5.safetensors
check "message gives the nearest size" stderr_has "nearest: 24x16"
check "nothing written" test ! -e bad4.safetensors -a ! -e bad5.safetensors
echo "not a safetensors file" > precious.safetensors
expect_exit "output file not written by vae" 73 "$VAE" encode -q -m "$B" "$FX/b_original/enc_1/frame_00000.png" -o precious.safetensors
check "their file untouched" grep -q "not a safetensors" precious.safetensors
expect_exit "unknown command" 64 "$VAE" transcode x
expect_exit "a model file that is not a Wan VAE" 65 "$VAE" decode -q -m "$FX/a_diffusers/dec_1.safetensors" "$FX/a_diffusers/dec_1.safetensors" -o bad6
check "message says what is missing" stderr_has "holds no Wan VAE decoder"

# ---- streaming: peak RSS does not grow with the number of frames
# (4 and 32 latent frames: 13 and 125 frames of 128x128; a decoder that kept
# every frame would hold 112 * 192 KiB = 21 MiB more for the long one; the
# allocator's own variation between runs measured up to about 3 MiB)
if [ -n "${ISOPIPE_SANITIZE:-}" ]; then
    skip "peak RSS under a sanitizer build (ASan quarantine holds freed memory)"
else
    "$CHK" mklatents l4.safetensors latents 16 4 16 16
    "$CHK" mklatents l32.safetensors latents 16 32 16 16
    expect_exit "decode 4 latent frames" 0 "$VAE" decode -q --threads 1 -m "$A" l4.safetensors -o r4
    expect_exit "decode 32 latent frames" 0 "$VAE" decode -q --threads 1 -m "$A" l32.safetensors -o r32
    check "125 frames written" test -e r32/frame_00124.png -a ! -e r32/frame_00125.png
    a=$(sed -n 's/.*"peak_rss": \([0-9]*\).*/\1/p' r4/vae.json | head -n 1)
    b=$(sed -n 's/.*"peak_rss": \([0-9]*\).*/\1/p' r32/vae.json | head -n 1)
    echo "# peak RSS: 4 latent frames $a B, 32 latent frames $b B"
    check "peak RSS of 32 latent frames within 8 MiB of 4 ($a, $b)" test $((b - a)) -lt 8388608
    # lightweight's tile-major order on a pretend device, 4-latent tiles
    # overlapping by 1 (rows and columns start at 0,3,...,15: five of 4
    # latent pixels and one of 1, 21 * 21 latent pixels in all): each tile's
    # frames are spilled to disk, so the long decode holds no more; keeping
    # them in memory would add 112 frames * 441 * 64 pixels * 12 B = 37 MiB
    for n in 4 32; do
        ISOPIPE_FAKE_GPU=8192:8192 expect_exit "lightweight, --tile 4, $n latent frames" 0 "$VAE" decode -q --threads 1 --memory-mode lightweight --tile 4 -m "$A" l$n.safetensors -o lw$n
    done
    check "tile-major order" grep -q '"order": "tile-major"' lw32/vae.json
    a=$(sed -n 's/.*"peak_rss": \([0-9]*\).*/\1/p' lw4/vae.json | head -n 1)
    b=$(sed -n 's/.*"peak_rss": \([0-9]*\).*/\1/p' lw32/vae.json | head -n 1)
    echo "# lightweight tile-major peak RSS: 4 latent frames $a B, 32 latent frames $b B"
    check "tile-major peak RSS of 32 latent frames within 8 MiB of 4 ($a, $b)" test $((b - a)) -lt 8388608
    check "vae.json gives the spill: 125 frames of the tiles' 441 * 64 RGB float pixels" python3 -c '
import json, sys; t = json.load(open(sys.argv[1]))["tiling"]; assert t["spill_bytes"] == 125 * 441 * 64 * 3 * 4, t' lw32/vae.json
    check "no spill file left in the output" test "$(ls -A lw32 | grep -vc '^frame_')" -eq 1
fi
test_done
