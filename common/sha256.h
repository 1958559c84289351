/* sha256.h — SHA-256 (FIPS 180-4) of memory and of files, for recording
 * which exact model file a result came from. Streaming: sha256_init,
 * sha256_update any number of times, sha256_final. */
#ifndef ISOPIPE_SHA256_H
#define ISOPIPE_SHA256_H
#include <stddef.h>
#include <stdint.h>

struct sha256 { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t nbuf; };

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* lower-case hex of the digest of a file into hex[65]; ISO_ENOINPUT / ISO_EIO */
int sha256_file(const char *path, char hex[65]);
/* the same through a cache of digests in $XDG_CACHE_HOME/isopipe/sha256
 * (default ~/.cache/isopipe/sha256), keyed by the file's absolute path,
 * device, inode, size, mtime and ctime: a model file is hashed once, and any
 * change to it (a rewrite in place keeps the inode but moves ctime) hashes it
 * again. *hit (may be NULL) says whether the cache answered. A missing or
 * unwritable cache only costs the hashing. */
int sha256_file_cached(const char *path, char hex[65], int *hit);
void sha256_hex(const uint8_t d[32], char hex[65]);
#endif
