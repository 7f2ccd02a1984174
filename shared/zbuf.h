/* zbuf.h - zlib (RFC 1950, HTTP "deflate") compression into capped
 * buffers. Inflating untrusted bytes stops at the output cap, so a small
 * body cannot expand into unbounded memory (a "zip bomb"). */
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

#endif
