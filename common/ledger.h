/* ledger.h — VRAM admission across processes (docs/DESIGN.md, "Admission").
 * One small text file per GPU, $ISOPIPE_LEDGER_DIR/<gpu key>.ledger (default
 * dir $XDG_RUNTIME_DIR/isopipe, else /tmp/isopipe-$UID), one line per live
 * holder: "pid starttime reserved used mode task_id". Every access takes an
 * flock(LOCK_EX) on the file, so reading free VRAM, deciding and writing our
 * reservation is one atomic step: two processes can never both be admitted
 * into the same free bytes.
 * A holder is live while kill(pid, 0) succeeds AND its start time (field 22
 * of /proc/<pid>/stat) equals the one recorded, so a reused pid does not
 * keep a dead holder's bytes; dead entries are dropped by the next reader
 * (that is what reclaims a kill -9'ed holder's reservation).
 * "reserved" is the planned peak; "used" is what the holder has allocated so
 * far. Others' pending bytes = sum(max(reserved - used, 0)): what they will
 * still take that device free VRAM does not show yet (counting all of
 * "reserved" would count loaded bytes twice, once in free VRAM). */
#ifndef ISOPIPE_LEDGER_H
#define ISOPIPE_LEDGER_H
#include <stdint.h>
#include <sys/types.h>

struct ledger;

struct ledger_entry {
    pid_t pid;
    uint64_t start_time;     /* clock ticks since boot, /proc/<pid>/stat field 22 */
    uint64_t reserved, used; /* bytes */
    char mode[16];
    char task_id[40];
};

/* the ledger directory (malloc'd), created 0700 if missing */
int ledger_dir(char **out);
/* open (create) the ledger of the GPU named key ("fake", a PCI bus id) */
int ledger_open(const char *key, struct ledger **out);
void ledger_close(struct ledger **l);   /* releases our entry too */

/* the room callback: device free VRAM read under the lock; others_used is
 * the live other holders' "used" sum (the fake device subtracts it; a real
 * device already shows it). 0 or <0 status. gpu_ledger_free_fn fits. */
typedef int (*ledger_free_fn)(uint64_t others_used, uint64_t *free_bytes, void *ctx);

/* Admission step, under the lock: drop dead entries, read free VRAM through
 * free_fn, compute others' pending bytes, then call decide(ctx2, free,
 * others_pending, &reserve_bytes, &mode_name) — it returns 0 with the bytes
 * to reserve, or a negative status (not admitted). On 0 our entry (this pid)
 * is written (replacing an earlier one of ours). The free/pending seen are
 * returned in *free_seen / *pending_seen (may be NULL). */
typedef int (*ledger_decide_fn)(void *ctx, uint64_t free_bytes, uint64_t others_pending,
                                uint64_t *reserve, const char **mode);
int ledger_admit(struct ledger *l, ledger_free_fn free_fn, void *free_ctx, ledger_decide_fn decide,
                 void *decide_ctx, uint64_t *free_seen, uint64_t *pending_seen);

/* update the "used" field of our entry (no-op without one) */
int ledger_set_used(struct ledger *l, uint64_t used);
/* remove our entry */
int ledger_release(struct ledger *l);

/* Live entries (dead ones are dropped and the file rewritten). *out is
 * malloc'd (free it), *n its length. Opening by key without holding a
 * ledger handle: ledger_read_key. */
int ledger_read(struct ledger *l, struct ledger_entry **out, int *n);
int ledger_read_key(const char *key, struct ledger_entry **out, int *n);
/* sum of "used" of live entries other than this process (the fake device's
 * view of other holders); 0 when there is no ledger. Takes the lock: never
 * call it from inside a ledger_free_fn (flock is per open file, it would
 * wait for itself). */
uint64_t ledger_others_used(const char *key);

/* the start time of pid (0 if it does not exist), /proc/<pid>/stat field 22 */
uint64_t ledger_pid_start_time(pid_t pid);
#endif
