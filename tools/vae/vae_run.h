/* vae_run.h — the two commands of the vae tool (main.c parses, these run).
 * Each returns 0 or a status (err.h); main maps it to the exit code. */
#ifndef ISOPIPE_VAE_RUN_H
#define ISOPIPE_VAE_RUN_H
#include "cli.h"

#define VAE_DEFAULT_MODEL "wan_2.1_vae"

struct vae_args {
    char *const *inputs;     /* positional arguments */
    int n_inputs;
    int png_level;           /* decode: zlib level of the frames */
    long tile;               /* decode: tile size in latent pixels (0 = choose) */
    long tile_overlap;       /* decode: overlap in latent pixels (-1 = a quarter of the tile) */
    /* encode --vace: the conditioning of Wan's VACE models */
    int vace;
    const char *start, *end; /* keyframes at frame 0 and frame N-1 */
    long frames;             /* N */
    const char *keep;        /* previous segment's frame directory */
    long keep_frames;        /* its last K frames at 0..K-1 */
    const char *video, *mask;/* explicit frame directories */
};

int vae_decode_run(const struct vae_args *a, const struct cli_common *c);
int vae_encode_run(const struct vae_args *a, const struct cli_common *c);
int vae_vace_run(const struct vae_args *a, const struct cli_common *c);
#endif
