/* test_safetensors — the reader against a file written by the reference
 * implementation (huggingface safetensors 0.8.0, safetensors.numpy.save, the
 * bytes below), then hostile headers that must be refused with ISO_EDATA,
 * and a mapped file with st_drop (block grouping for plans: test_weights). */
#include <stdint.h>
#include <sys/stat.h>

#include "err.h"
#include "fs.h"
#include "safetensors.h"
#include "test.h"

/* save({'a.weight': np.arange(6, dtype=np.float32).reshape(2,3),
 *       'blocks.0.w': np.array([1,-2,3,-4], dtype=np.int16),
 *       'z': np.zeros((0,4), dtype=np.float64)},
 *      metadata={'format':'np','who':'ref'}) */
static const uint8_t ref_file[] = {
    0xe8,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x7b,0x22,0x5f,0x5f,0x6d,0x65,0x74,0x61,0x64,0x61,0x74,0x61,0x5f,0x5f,
    0x22,0x3a,0x7b,0x22,0x77,0x68,0x6f,0x22,0x3a,0x22,0x72,0x65,0x66,0x22,0x2c,0x22,0x66,0x6f,0x72,0x6d,0x61,0x74,
    0x22,0x3a,0x22,0x6e,0x70,0x22,0x7d,0x2c,0x22,0x7a,0x22,0x3a,0x7b,0x22,0x64,0x74,0x79,0x70,0x65,0x22,0x3a,0x22,
    0x46,0x36,0x34,0x22,0x2c,0x22,0x73,0x68,0x61,0x70,0x65,0x22,0x3a,0x5b,0x30,0x2c,0x34,0x5d,0x2c,0x22,0x64,0x61,
    0x74,0x61,0x5f,0x6f,0x66,0x66,0x73,0x65,0x74,0x73,0x22,0x3a,0x5b,0x30,0x2c,0x30,0x5d,0x7d,0x2c,0x22,0x61,0x2e,
    0x77,0x65,0x69,0x67,0x68,0x74,0x22,0x3a,0x7b,0x22,0x64,0x74,0x79,0x70,0x65,0x22,0x3a,0x22,0x46,0x33,0x32,0x22,
    0x2c,0x22,0x73,0x68,0x61,0x70,0x65,0x22,0x3a,0x5b,0x32,0x2c,0x33,0x5d,0x2c,0x22,0x64,0x61,0x74,0x61,0x5f,0x6f,
    0x66,0x66,0x73,0x65,0x74,0x73,0x22,0x3a,0x5b,0x30,0x2c,0x32,0x34,0x5d,0x7d,0x2c,0x22,0x62,0x6c,0x6f,0x63,0x6b,
    0x73,0x2e,0x30,0x2e,0x77,0x22,0x3a,0x7b,0x22,0x64,0x74,0x79,0x70,0x65,0x22,0x3a,0x22,0x49,0x31,0x36,0x22,0x2c,
    0x22,0x73,0x68,0x61,0x70,0x65,0x22,0x3a,0x5b,0x34,0x5d,0x2c,0x22,0x64,0x61,0x74,0x61,0x5f,0x6f,0x66,0x66,0x73,
    0x65,0x74,0x73,0x22,0x3a,0x5b,0x32,0x34,0x2c,0x33,0x32,0x5d,0x7d,0x7d,0x20,0x20,0x20,0x20,0x20,0x20,0x00,0x00,
    0x00,0x00,0x00,0x00,0x80,0x3f,0x00,0x00,0x00,0x40,0x00,0x00,0x40,0x40,0x00,0x00,0x80,0x40,0x00,0x00,0xa0,0x40,
    0x01,0x00,0xfe,0xff,0x03,0x00,0xfc,0xff,
};

static void test_reference(void)
{
    TEST("file written by the reference implementation");
    struct safetensors *st = NULL;
    CHECK(st_open_mem(ref_file, sizeof ref_file, &st) == 0);
    if (!st) return;
    CHECK(st->header_len == 0xe8 && st->data_start == 8 + 0xe8);
    CHECK(st->n_tensors == 3);
    CHECK_STR(st_meta(st, "format"), "np");
    CHECK_STR(st_meta(st, "who"), "ref");
    CHECK(st_meta(st, "nope") == NULL);
    const struct st_tensor *a = st_find(st, "a.weight"), *b = st_find(st, "blocks.0.w"), *z = st_find(st, "z");
    CHECK(a && b && z && !st_find(st, "__metadata__"));
    if (a && b && z) {
        CHECK(a->dtype == ST_F32 && a->n_dims == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->nbytes == 24);
        float fv[6];
        memcpy(fv, a->data, sizeof fv);
        for (int i = 0; i < 6; i++) CHECK(fv[i] == (float)i);
        CHECK(b->dtype == ST_I16 && b->n_dims == 1 && b->shape[0] == 4 && b->offset == st->data_start + 24);
        int16_t iv[4];
        memcpy(iv, b->data, sizeof iv);
        CHECK(iv[0] == 1 && iv[1] == -2 && iv[2] == 3 && iv[3] == -4);
        CHECK(z->dtype == ST_F64 && z->nbytes == 0 && z->n_dims == 2 && z->shape[0] == 0 && z->shape[1] == 4);
    }
    CHECK(st->largest == 24);
    st_close(&st);
    CHECK(st == NULL);
    CHECK(st_dtype_size(ST_BF16) == 2 && st_dtype_size(ST_F8_E4M3) == 1 && st_dtype_size(ST_I64) == 8);
    CHECK(st_dtype_parse("BF16") == ST_BF16 && st_dtype_parse("bf16") == -1);
}

/* a file from a header string and n data bytes (the data is 0..255 repeating) */
static uint8_t *mk(const char *header, size_t data, size_t *len)
{
    size_t hl = strlen(header);
    *len = 8 + hl + data;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data; i++) b[8 + hl + i] = (uint8_t)i;
    return b;
}

static int try_open(const char *header, size_t data)
{
    size_t len;
    uint8_t *b = mk(header, data, &len);
    struct safetensors *st = NULL;
    int rc = st_open_mem(b, len, &st);
    st_close(&st);
    free(b);
    return rc;
}

static void test_hostile(void)
{
    TEST("hostile headers are refused");
    CHECK(try_open("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8) == 0);
    CHECK(try_open("{}", 0) == 0);
    CHECK(try_open("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12) == ISO_EDATA);
    CHECK(strstr(iso_errmsg(), "give 12 bytes") != NULL);
    CHECK(try_open("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7) == ISO_EDATA);
    CHECK(try_open("{\"t\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8) == ISO_EDATA);
    CHECK(try_open("{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8) == ISO_EDATA);
    CHECK(try_open("{\"t\":{\"dtype\":\"U8\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8) == ISO_EDATA);
    CHECK(try_open("{\"t\":{\"dtype\":\"U8\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8) == ISO_EDATA);
    CHECK(try_open("{\"t\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[8,0]}}", 8) == ISO_EDATA);
    CHECK(try_open("{\"t\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0]}}", 8) == ISO_EDATA);
    CHECK(try_open("{\"t\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8,9]}}", 8) == ISO_EDATA);
    CHECK(try_open("{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,8],\"data_offsets\":[0,8]}}", 8) == ISO_EDATA);
    /* 2^32 * 2^32 elements: the product overflows 64 bits */
    CHECK(try_open("{\"t\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0) == ISO_EDATA);
    CHECK(strstr(iso_errmsg(), "overflow") != NULL);
    /* 2^62 elements of 8 bytes: the byte count overflows */
    CHECK(try_open("{\"t\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0) == ISO_EDATA);
    CHECK(try_open("{\"a\":{\"dtype\":\"U8\",\"shape\":[6],\"data_offsets\":[0,6]},"
                   "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", 8) == ISO_EDATA);
    CHECK(strstr(iso_errmsg(), "overlap") != NULL);
    CHECK(try_open("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                   "\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2) == ISO_EDATA);
    CHECK(try_open("{\"__metadata__\":{\"k\":1}}", 0) == ISO_EDATA);
    CHECK(try_open("{\"__metadata__\":[]}", 0) == ISO_EDATA);
    CHECK(try_open("[1,2]", 0) == ISO_EDATA);
    CHECK(try_open("{\"t\":", 0) == ISO_EDATA);
    CHECK(try_open("{\"t\":5}", 0) == ISO_EDATA);
    /* header length field lies */
    uint8_t b[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}' };
    struct safetensors *st = NULL;
    CHECK(st_open_mem(b, sizeof b, &st) == ISO_EDATA && st == NULL);
    b[0] = 20; memset(b + 1, 0, 7);
    CHECK(st_open_mem(b, sizeof b, &st) == ISO_EDATA);
    CHECK(st_open_mem(b, 5, &st) == ISO_EDATA);
    /* 100 MB + 1 is over the format's limit even when the file were that long */
    uint64_t big = 100000001;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(big >> (8 * i));
    CHECK(st_open_mem(b, sizeof b, &st) == ISO_EDATA && strstr(iso_errmsg(), "100 MB") != NULL);
}

static void test_file(void)
{
    TEST("mapped file and st_drop");
    char *dir = test_tmpdir();
    char *path = fs_join(dir, "m.safetensors");
    size_t len;
    /* 3 MiB tensor: several pages, page-unaligned start */
    uint8_t *buf = mk("{\"w\":{\"dtype\":\"U8\",\"shape\":[3145728],\"data_offsets\":[0,3145728]}}", 3145728, &len);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, len, f) == len);
    if (f) fclose(f);
    struct safetensors *st = NULL;
    CHECK(st_open(path, &st) == 0);
    if (st) {
        const struct st_tensor *t = st_find(st, "w");
        CHECK(t && t->nbytes == 3145728);
        uint64_t sum = 0, want = 0;
        for (size_t i = 0; i < 3145728; i++) { sum += ((const uint8_t *)t->data)[i]; want += (uint8_t)i; }
        CHECK(sum == want);
        st_drop(st, t);
        /* dropped pages come back from the file */
        sum = 0;
        for (size_t i = 0; i < 3145728; i++) sum += ((const uint8_t *)t->data)[i];
        CHECK(sum == want);
        st_close(&st);
    }
    char *missing = fs_join(dir, "nope.safetensors");
    CHECK(st_open(missing, &st) == ISO_ENOINPUT && strstr(iso_errmsg(), "nope.safetensors"));
    CHECK(st_open(dir, &st) == ISO_EDATA);
    /* a truncated copy: the header promises data the file lacks */
    f = fopen(path, "wb");
    if (f) { fwrite(buf, 1, len - 1, f); fclose(f); }
    CHECK(st_open(path, &st) == ISO_EDATA && strstr(iso_errmsg(), "m.safetensors"));
    free(missing);
    free(buf);
    free(path);
    fs_rm_rf(dir);
}

int main(void)
{
    test_reference();
    test_hostile();
    test_file();
    return test_report();
}
