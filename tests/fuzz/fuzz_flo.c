/* fuzz_flo.c — libFuzzer target for the Middlebury .flo reader, both the
 * in-memory parser (flo_read_mem) and the file reader (flo_read, through a
 * memfd so nothing touches the disk). The two must agree on every input:
 * same status, same size, same bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "flo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct flow a, b;
    int ra = flo_read_mem(data, size, &a, "fuzz.flo");
    if (ra == 0) {
        if (!a.uv || (uint64_t)a.w * a.h * 8 + 12 != size) abort();
        if (memcmp(a.uv, data + 12, size - 12) != 0) abort();
    } else if (ra != ISO_EDATA || a.uv) {
        abort();
    }

    int fd = memfd_create("fuzz.flo", MFD_CLOEXEC);
    if (fd < 0) { flow_free(&a); return 0; }
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int rb = flo_read(path, &b);
        if ((ra == 0) != (rb == 0)) abort();
        if (rb == 0) {
            if (b.w != a.w || b.h != a.h || memcmp(a.uv, b.uv, (size_t)a.w * a.h * 8) != 0) abort();
        } else if (rb != ISO_EDATA) {
            abort();
        }
        flow_free(&b);
    }
    close(fd);
    flow_free(&a);
    return 0;
}
