/* wan_vae.h — the Wan2.1 video autoencoder (causal 3-D convolutions, 8x
 * spatial and 4x temporal compression, 16 latent channels), encode and
 * decode, streamed: the decoder takes one latent frame at a time and the
 * encoder a first frame then chunks of four, as Wan does, so activations
 * never hold more than one chunk plus the two-frame caches of the causal
 * convolutions, whatever the number of frames.
 *
 * A struct wan_vae holds views into a struct weights (the caller keeps the
 * weights open while the model lives) and only the half it was opened for.
 * Weights may use the diffusers names (AutoencoderKLWan) or the original
 * Wan2.1 / ComfyUI names; the configuration comes from config.json beside
 * the weights when there is one, else from the tensor shapes. */
#ifndef ISOPIPE_WAN_VAE_H
#define ISOPIPE_WAN_VAE_H
#include <stddef.h>
#include <stdint.h>

struct weights;
struct nn;

#define WAN_VAE_MAX_LEVELS 6
#define WAN_VAE_MAX_Z 64

enum { WAN_VAE_ENCODER = 1, WAN_VAE_DECODER = 2 };

struct wan_vae_config {
    int z_dim;               /* latent channels (config.json z_dim, or decoder conv_in's input channels) */
    int n_levels;            /* len(dim_mult) */
    int enc_ch[WAN_VAE_MAX_LEVELS]; /* encoder output channels per level: base_dim * dim_mult[i] */
    int dec_ch[WAN_VAE_MAX_LEVELS]; /* decoder channels per level, coarse first: decoder_base_dim * dim_mult[L-1-i] */
    int num_res_blocks;      /* encoder blocks per level (the decoder has one more) */
    int temporal_down[WAN_VAE_MAX_LEVELS]; /* per downsample, encoder order (decoder: reversed) */
    int spatial;             /* 2^(n_levels-1) */
    int temporal;            /* 2^(number of temporal downsamples); the tool needs 4 */
    float latents_mean[WAN_VAE_MAX_Z], latents_std[WAN_VAE_MAX_Z];
    const char *source;      /* "config.json" or "tensor shapes" */
    const char *stats_source; /* "config.json" or "Wan2.1 published" */
    const char *layout;      /* "diffusers" or "original" */
};

struct wan_vae;

/* Bind the weights of `halves` (WAN_VAE_ENCODER | WAN_VAE_DECODER) from w,
 * reading config.json from weights_dir(w) when present. ISO_EDATA naming
 * the tensor (or config field) when something is missing or misshapen,
 * ISO_EUNAVAIL for a VAE of another kind (Wan2.2's residual VAE, attention
 * outside the middle block). */
int wan_vae_open(struct wan_vae **out, const struct weights *w, int halves);
void wan_vae_free(struct wan_vae **v);
const struct wan_vae_config *wan_vae_config(const struct wan_vae *v);
/* bytes of the weights one half binds (for the plan) */
uint64_t wan_vae_weight_bytes(const struct wan_vae *v, int half);

/* Decode normalised latents [z, T, h, w] (z-scored as the DiT sees them):
 * emit(ctx, index, rgb, H, W) receives each output frame in order, rgb
 * [3, H, W] in [-1, 1] (clamped), H = spatial*h; 1 + temporal*(T-1) frames.
 * emit returns 0 or a status that stops the decode. */
typedef int (*wan_vae_emit_fn)(void *ctx, int index, const float *rgb, int H, int W);
/* Spatial tiling of the decode: tiles of `tile` x `tile` latent pixels
 * (0: none), neighbours overlapping by `overlap`, each with its own causal
 * caches, blended with linear ramps across each overlap. NULL: none.
 * Frame-major (tile_major 0): every latent frame goes through every tile and
 * frames are emitted as they come, so memory does not grow with the frame
 * count, but every tile's caches stay alive. Tile-major (1): one tile goes
 * through all frames, its caches are freed, then the next; only one tile's
 * caches live on nn's backend (the VRAM saving). Each tile's decoded frames
 * go to an unlinked spill file in spill_dir (NULL: $TMPDIR, else /tmp;
 * wan_vae_decode_spill_bytes of disk), and once every tile is done the
 * frames are read back one at a time, blended and emitted: host memory
 * holds one tile's chunk and one frame of every tile, whatever the frame
 * count. The same numbers either way. */
struct wan_vae_tiling { int tile, overlap, tile_major; const char *spill_dir; };
int wan_vae_decode(struct wan_vae *v, struct nn *nn, const float *latents, int T, int h, int w,
                   const struct wan_vae_tiling *tiling, wan_vae_emit_fn emit, void *ctx);
/* tiles of h x w latents under tl (ny * nx); more than WAN_VAE_MAX_TILES
 * is refused by the decode */
#define WAN_VAE_MAX_TILES 64
int wan_vae_tile_count(int h, int w, const struct wan_vae_tiling *tl);

/* Encode F frames (F = 1 + temporal*k) of H x W: get(ctx, index, dst)
 * fills dst [3, H, W] with frame index in [-1, 1]. out receives the
 * normalised posterior mean [z, 1 + (F-1)/temporal, H/spatial, W/spatial]. */
typedef int (*wan_vae_get_fn)(void *ctx, int index, float *dst, int H, int W);
int wan_vae_encode(struct wan_vae *v, struct nn *nn, int F, int H, int W, wan_vae_get_fn get, void *ctx,
                   float *out);

/* Peak activation bytes (chunk tensors + causal caches + scratch) of a
 * decode of latents h x w (with tiling tl, or NULL), or of an encode of
 * frames H x W: a bound from the layer shapes, independent of the frame
 * count. */
uint64_t wan_vae_decode_act_bytes(const struct wan_vae_config *c, int h, int w, const struct wan_vae_tiling *tl);
uint64_t wan_vae_encode_act_bytes(const struct wan_vae_config *c, int H, int W);
/* The part of wan_vae_decode_act_bytes on nn's backend (device memory on
 * NN_CUDA): every tile's caches (tile-major: one tile's) and one tile's
 * working set; the tiles' decoded output, the blend and the assembled frames
 * are host memory (wan_vae_decode_host_bytes, independent of the frame
 * count). The encoder's activations are all on the backend
 * (wan_vae_encode_act_bytes). wan_vae_decode_spill_bytes: the disk a
 * tile-major decode of F frames spills to (0 otherwise). */
uint64_t wan_vae_decode_host_bytes(const struct wan_vae_config *c, int h, int w, const struct wan_vae_tiling *tl);
uint64_t wan_vae_decode_spill_bytes(const struct wan_vae_config *c, int h, int w, const struct wan_vae_tiling *tl, int F);
uint64_t wan_vae_decode_dev_bytes(const struct wan_vae_config *c, int h, int w, const struct wan_vae_tiling *tl);


/* ---- where the weights live (common/nn_wres.h) ----
 * The stride-1 convolutions (every causal 3x3x3 and (3,1,1) convolution, the
 * upsamplers' 3x3) run as one GEMM per kernel tap, whose operand is the
 * weight re-laid out as float32 [taps, O, C]. In cpu mode that copy is made
 * per call from the mapping (nothing more is held); for a GPU backend
 * wan_vae_relay makes it once on the host and the re-laid copy is what is
 * registered (and uploaded) in place of the stored weight, so no op reads a
 * stored weight on the host. Numbers are identical either way.
 *
 * wan_vae_relay: make the re-laid copies of `half` (reads the weights).
 * wan_vae_register: register every weight `half`'s forward reads into r, all
 *   resident (block -1: the VAE is small); relaid 1 registers the re-laid
 *   copies (wan_vae_relay first), 0 the stored weights.
 * wan_vae_plan_blocks: the weight fields of a plan for that registration
 *   (nn_wres_plan_blocks: what nn_wres_load takes on a device) and the host
 *   bytes of the re-laid copies, from the shapes alone (before anything is
 *   read).
 * wan_vae_drop_relaid_host: free the host copies once a RESIDENT load on an
 *   NN_CUDA context uploaded them (never on NN_CPU: they are read in place). */
struct nn_wres;
int wan_vae_relay(struct wan_vae *v, int half);
int wan_vae_register(struct wan_vae *v, int half, struct nn_wres *r, int relaid);
struct plan_blocks;
int wan_vae_plan_blocks(struct wan_vae *v, int half, int relaid, struct plan_blocks *b, uint64_t *relaid_host);
void wan_vae_drop_relaid_host(struct wan_vae *v);
#endif
