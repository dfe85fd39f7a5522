/*
 * zlib loaded at run time (libz.so.1), like BLAS: building needs no zlib headers, and the library is
 * part of every Debian system. Only inflate/deflate with bounded buffers are exposed.
 */
#define _GNU_SOURCE
#include "CFaultline.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The zlib 1.x stream ABI (stable since 1.0). */
typedef struct {
    const uint8_t *next_in; unsigned avail_in; unsigned long total_in;
    uint8_t *next_out; unsigned avail_out; unsigned long total_out;
    const char *msg; void *state;
    void *zalloc; void *zfree; void *opaque;
    int data_type; unsigned long adler; unsigned long reserved;
} z_stream;

enum { Z_OK = 0, Z_STREAM_END = 1, Z_NO_FLUSH = 0, Z_FINISH = 4, Z_BUF_ERROR = -5, Z_DEFLATED = 8 };

typedef int (*inflate_init2_fn)(z_stream *, int, const char *, int);
typedef int (*deflate_init2_fn)(z_stream *, int, int, int, int, int, const char *, int);
typedef int (*stream_fn)(z_stream *, int);
typedef int (*end_fn)(z_stream *);

static struct {
    inflate_init2_fn inflate_init2; stream_fn inflate; end_fn inflate_end;
    deflate_init2_fn deflate_init2; stream_fn deflate; end_fn deflate_end;
    int loaded; char error[256];
} z;
static pthread_once_t z_once = PTHREAD_ONCE_INIT;

static void z_load(void) {
    void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) { snprintf(z.error, sizeof z.error, "libz.so.1: %s", dlerror()); return; }
    *(void **)&z.inflate_init2 = dlsym(h, "inflateInit2_");
    *(void **)&z.inflate = dlsym(h, "inflate");
    *(void **)&z.inflate_end = dlsym(h, "inflateEnd");
    *(void **)&z.deflate_init2 = dlsym(h, "deflateInit2_");
    *(void **)&z.deflate = dlsym(h, "deflate");
    *(void **)&z.deflate_end = dlsym(h, "deflateEnd");
    if (!z.inflate_init2 || !z.inflate || !z.inflate_end || !z.deflate_init2 || !z.deflate || !z.deflate_end) {
        snprintf(z.error, sizeof z.error, "libz.so.1 lacks inflate/deflate symbols");
        return;
    }
    z.loaded = 1;
}

int fl_zlib_available(void) { pthread_once(&z_once, z_load); return z.loaded; }
const char *fl_zlib_error(void) { pthread_once(&z_once, z_load); return z.error; }

/* zlib counts in unsigned int: feed and drain in chunks of at most 1 GiB. */
#define CHUNK ((uint64_t)1 << 30)

#define REFILL(s, in_left, out_left)                                                  \
    do {                                                                              \
        if ((s).avail_in == 0 && (in_left) > 0) {                                     \
            (s).avail_in = (unsigned)((in_left) < CHUNK ? (in_left) : CHUNK);          \
            (in_left) -= (s).avail_in;                                                \
        }                                                                             \
        if ((s).avail_out == 0 && (out_left) > 0) {                                   \
            (s).avail_out = (unsigned)((out_left) < CHUNK ? (out_left) : CHUNK);       \
            (out_left) -= (s).avail_out;                                              \
        }                                                                             \
    } while (0)
#define CAN_REFILL(s, in_left, out_left) \
    (((s).avail_in == 0 && (in_left) > 0) || ((s).avail_out == 0 && (out_left) > 0))

int fl_inflate(int format, const uint8_t *in, uint64_t in_size, uint8_t *out, uint64_t out_size) {
    if (!fl_zlib_available()) return -2;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (z.inflate_init2(&s, format == 0 ? -15 : 15 + 32, "1.2.13", (int)sizeof s) != Z_OK) return -1;
    uint64_t in_left = in_size, out_left = out_size;
    s.next_in = in;
    s.next_out = out;
    int rc;
    for (;;) {
        REFILL(s, in_left, out_left);
        rc = z.inflate(&s, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) break;
        if (rc == Z_OK || (rc == Z_BUF_ERROR && CAN_REFILL(s, in_left, out_left))) continue;
        break; /* corrupt, truncated, or more output than `out` holds */
    }
    int complete = rc == Z_STREAM_END && s.avail_out == 0 && out_left == 0 && s.avail_in == 0 && in_left == 0;
    z.inflate_end(&s);
    return complete ? 0 : -1;
}

int fl_gunzip_stream(const uint8_t *in, uint64_t in_size, void *context,
                     int (*sink)(void *, const uint8_t *, uint64_t)) {
    if (!fl_zlib_available()) return -2;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (z.inflate_init2(&s, 15 + 32, "1.2.13", (int)sizeof s) != Z_OK) return -1;
    uint8_t buffer[1 << 15];
    uint64_t in_left = in_size, out_left = 0;
    s.next_in = in;
    int rc, status = 0;
    for (;;) {
        REFILL(s, in_left, out_left);
        s.next_out = buffer;
        s.avail_out = sizeof buffer;
        rc = z.inflate(&s, Z_NO_FLUSH);
        uint64_t produced = sizeof buffer - s.avail_out;
        if (produced && sink(context, buffer, produced)) { status = -3; break; }
        if (rc == Z_STREAM_END) break;
        if (rc == Z_OK || (rc == Z_BUF_ERROR && s.avail_in == 0 && in_left > 0)) continue;
        break;
    }
    int trailing = rc == Z_STREAM_END && (s.avail_in > 0 || in_left > 0);
    z.inflate_end(&s);
    if (status) return status;
    return rc == Z_STREAM_END && !trailing ? 0 : -1;
}

int64_t fl_deflate_raw(int level, const uint8_t *in, uint64_t in_size, uint8_t *out, uint64_t out_capacity) {
    if (!fl_zlib_available()) return -2;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (z.deflate_init2(&s, level, Z_DEFLATED, -15, 8, 0, "1.2.13", (int)sizeof s) != Z_OK) return -1;
    uint64_t in_left = in_size, out_left = out_capacity;
    s.next_in = in;
    s.next_out = out;
    int rc;
    for (;;) {
        REFILL(s, in_left, out_left);
        rc = z.deflate(&s, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_END) break;
        if (rc == Z_OK || (rc == Z_BUF_ERROR && CAN_REFILL(s, in_left, out_left))) continue;
        break; /* output buffer too small */
    }
    int64_t produced = (int64_t)(out_capacity - out_left - s.avail_out);
    z.deflate_end(&s);
    return rc == Z_STREAM_END ? produced : -1;
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

uint32_t fl_crc32(uint32_t crc, const uint8_t *data, uint64_t n) {
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    for (uint64_t i = 0; i < n; i++) crc = crc_table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}
