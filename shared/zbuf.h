/* zbuf.h - compression of HTTP bodies into capped buffers: zstd (RFC 8878,
 * HTTP "zstd"), which branchsync sends, and zlib (RFC 1950, HTTP
 * "deflate"), still accepted. Decompressing untrusted bytes stops at the
 * output cap, so a small body cannot expand into unbounded memory (a "zip
 * bomb"). */
#ifndef BS_ZBUF_H
#define BS_ZBUF_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Appends the compressed form of in to out; returns out->status, or
 * BS_EINVALID if zlib fails. */
enum bs_status zbuf_deflate(const uint8_t *in, size_t len, struct buf *out);
/* Appends the decompressed form of in to out, whose max bounds the result
 * (BS_ELIMIT beyond it); BS_EINVALID for corrupt or truncated input or
 * bytes after the end of the zlib stream. */
enum bs_status zbuf_inflate(const uint8_t *in, size_t len, struct buf *out);

/* zstd, one frame; small bodies (what a slow link carries) at a high
 * level, large ones (an initial pull) at a fast one. Appends to out;
 * returns out->status, or BS_EINVALID/BS_ENOMEM if zstd fails. */
enum bs_status zbuf_zstd(const uint8_t *in, size_t len, struct buf *out);
/* Appends the content of exactly one zstd frame in `in` to out, whose max
 * bounds the result (BS_ELIMIT beyond it); BS_EINVALID for corrupt or
 * truncated input, bytes after the frame, or a frame asking for a window
 * larger than ZBUF_ZSTD_WINDOW_LOG_MAX. */
enum bs_status zbuf_unzstd(const uint8_t *in, size_t len, struct buf *out);

/* 8 MiB: decoding memory stays bounded whatever the sender asks for. */
#define ZBUF_ZSTD_WINDOW_LOG_MAX 23
/* Bodies up to ZBUF_ZSTD_SMALL are compressed at ZBUF_ZSTD_LEVEL_SMALL, up
 * to ZBUF_ZSTD_LARGE at ZBUF_ZSTD_LEVEL_LARGE, beyond at
 * ZBUF_ZSTD_LEVEL_HUGE: a page of an initial pull (1 MiB) at level 1 is
 * 6% larger than at level 3 but compressed in half the time, which the
 * device waits for. */
#define ZBUF_ZSTD_SMALL (256u << 10)
#define ZBUF_ZSTD_LARGE (512u << 10)
#define ZBUF_ZSTD_LEVEL_SMALL 15
#define ZBUF_ZSTD_LEVEL_LARGE 3
#define ZBUF_ZSTD_LEVEL_HUGE 1

#endif
