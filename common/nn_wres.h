/* nn_wres.h — where a model's weights live for the memory mode the plan
 * chose, one implementation for every model on the nn core (the Wan DiT,
 * umT5, the Wan VAE, RIFE).
 *
 * A model keeps its weights by role as struct nn_w fields (views into the
 * file's mapping, from nn_w_of). It registers each field here with the
 * number of elements and the block it belongs to (-1: resident, used by
 * every forward; 0..n_blocks-1: streamable blocks numbered in the ORDER THE
 * FORWARD USES THEM, e.g. a VACE model's VACE blocks before its main blocks).
 * nn_wres then rewrites those fields in place so that the forward, unchanged,
 * reads the weights from wherever they are:
 *
 *   NN_WRES_MAPPED   (cpu mode)   nothing moves: the fields keep pointing into
 *                                 the mapping.
 *   NN_WRES_RESIDENT (beefy)      every weight is copied once (nn_w_upload)
 *                                 into one arena; fields point there. On an
 *                                 NN_CPU context (a pretend device,
 *                                 ISOPIPE_FAKE_GPU) nn_w_upload is the view
 *                                 itself and nothing is copied.
 *   NN_WRES_STREAMED (lightweight) resident weights as in RESIDENT; each block
 *                                 is packed (nn_w_pack, as stored: fp8 stays
 *                                 fp8) into page-locked host memory and
 *                                 streamed through common/stream's two device
 *                                 buffers; nn_wres_enter(r, i) before block
 *                                 i's ops points that block's fields into the
 *                                 buffer holding it (and starts the copy of
 *                                 block i+1). On a pretend device the packed
 *                                 host blocks are read in place, so CI runs
 *                                 the packing, the offsets and the order of
 *                                 enters on the CPU.
 *
 * Sizes are known from the registration alone, before anything is loaded
 * or any device touched (nn_wres_sizes), so a plan can be made from them.
 * A weight whose data is NULL (an optional tensor absent from the file) is
 * accepted and stays NULL. */
#ifndef ISOPIPE_NN_WRES_H
#define ISOPIPE_NN_WRES_H
#include <stddef.h>
#include <stdint.h>

#include "nn.h"

enum nn_wres_mode { NN_WRES_MAPPED = 0, NN_WRES_RESIDENT, NN_WRES_STREAMED };

struct nn_wres;

/* n_blocks >= 0 streamable blocks (0: everything is resident; STREAMED then
 * behaves as RESIDENT). NULL + iso_fail on allocation failure. */
struct nn_wres *nn_wres_new(enum nn_wres_mode mode, int n_blocks);
/* register the model's field *w (n elements) in block (-1: resident). The
 * pointer must stay valid until nn_wres_free. 0 or ISO_EUSAGE (block out of
 * range, loaded already) / ISO_EINTERNAL (memory). */
int nn_wres_add(struct nn_wres *r, int block, struct nn_w *w, size_t n);

/* Bytes, from the registration (valid before nn_wres_load, any mode):
 * resident: device bytes of the resident weights (nn_w_upload_bytes + 256
 * alignment each); block_max: the largest packed block (nn_w_pack's size);
 * blocks_total: all blocks packed; upload_total: device bytes of every
 * weight uploaded (what RESIDENT holds, alignment included); largest: the
 * largest single weight in bytes as stored. Any pointer may be NULL. */
void nn_wres_sizes(const struct nn_wres *r, uint64_t *resident, uint64_t *block_max, uint64_t *blocks_total,
                   uint64_t *upload_total, uint64_t *largest);

/* Fill the weight fields of a plan (common/plan.h) so that its rules give
 * what nn_wres_load takes in each mode: n_blocks, block_bytes (the largest
 * packed block), resident_bytes (uploaded size), largest_tensor,
 * align_slack 0 (alignment is inside the sizes) and upload_extra (what
 * beefy's uploads take beyond resident + n * block, e.g. fp8 widened). The
 * caller sets activations, kv_cache, host_base and the mode flags. */
struct plan_blocks;
void nn_wres_plan_blocks(const struct nn_wres *r, struct plan_blocks *b);

/* Make the weights usable on nn's backend for the mode: RESIDENT uploads
 * everything into one arena of upload_total bytes; STREAMED uploads the
 * resident weights, packs the blocks into page-locked host memory (one
 * allocation of blocks_total bytes, released at nn_wres_free) and creates
 * the stream of two buffers of block_max bytes. MAPPED: nothing. After a
 * STREAMED load the block fields are NULL until nn_wres_enter. 0, or
 * ISO_ETEMPFAIL (device or pinned memory short), ISO_EINTERNAL. */
int nn_wres_load(struct nn_wres *r, struct nn *nn);

/* Before the ops of block i: STREAMED makes block i resident in the stream
 * window (waiting on the device, not the host), rewrites its fields and
 * sets nn's stream to the compute stream; the other modes do nothing.
 * 0, or the stream's error. */
int nn_wres_enter(struct nn_wres *r, int block);

/* STREAMED: blocks copied so far, how many were prefetched ahead of their
 * enter, bytes copied (for reports); zeros otherwise */
void nn_wres_stats(const struct nn_wres *r, uint64_t *copies, uint64_t *hits, uint64_t *bytes);
/* "mapped", "resident", "streamed" */
const char *nn_wres_mode_name(enum nn_wres_mode mode);

/* Frees arenas, the stream and the host blocks; the registered fields are
 * left pointing at freed memory: free the model's weights after, or never
 * use them again. */
void nn_wres_free(struct nn_wres **r);
#endif
