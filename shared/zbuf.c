/* zbuf.c - capped zstd and zlib compression and decompression (see
 * zbuf.h). */
#include "zbuf.h"

#include <string.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

enum bs_status zbuf_deflate(const uint8_t *in, size_t len, struct buf *out)
{
	z_stream zs;
	uint8_t chunk[16384];
	enum bs_status rc = BS_OK;
	int zrc;

	memset(&zs, 0, sizeof zs);
	if (deflateInit(&zs, 6) != Z_OK)
		return BS_ENOMEM;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	if ((size_t)zs.avail_in != len) {
		deflateEnd(&zs);
		return BS_ELIMIT;
	}
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof chunk;
		zrc = deflate(&zs, Z_FINISH);
		if (zrc == Z_STREAM_ERROR) {
			rc = BS_EINVALID;
			break;
		}
		buf_append(out, chunk, sizeof chunk - zs.avail_out);
		if (out->status) {
			rc = out->status;
			break;
		}
	} while (zrc != Z_STREAM_END);
	deflateEnd(&zs);
	return rc;
}

enum bs_status zbuf_inflate(const uint8_t *in, size_t len, struct buf *out)
{
	z_stream zs;
	uint8_t chunk[16384];
	enum bs_status rc = BS_OK;
	int zrc;

	memset(&zs, 0, sizeof zs);
	if (inflateInit(&zs) != Z_OK)
		return BS_ENOMEM;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	if ((size_t)zs.avail_in != len) {
		inflateEnd(&zs);
		return BS_ELIMIT;
	}
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof chunk;
		zrc = inflate(&zs, Z_NO_FLUSH);
		if (zrc != Z_OK && zrc != Z_STREAM_END) {
			rc = BS_EINVALID;
			break;
		}
		buf_append(out, chunk, sizeof chunk - zs.avail_out);
		if (out->status) {
			rc = out->status;
			break;
		}
		if (zrc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
			rc = BS_EINVALID; /* truncated stream */
			break;
		}
	} while (zrc != Z_STREAM_END);
	if (rc == BS_OK && zs.avail_in != 0)
		rc = BS_EINVALID; /* bytes after the stream */
	inflateEnd(&zs);
	return rc;
}

/* zstd's failure as ours: out of memory is not corrupt input. */
static enum bs_status zstd_status(size_t r)
{
	return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation
		       ? BS_ENOMEM
		       : BS_EINVALID;
}

enum bs_status zbuf_zstd(const uint8_t *in, size_t len, struct buf *out)
{
	ZSTD_CCtx *cx = ZSTD_createCCtx();
	ZSTD_inBuffer zin = {in, len, 0};
	uint8_t chunk[16384];
	ZSTD_outBuffer zout;
	enum bs_status rc = BS_OK;
	int level = len <= ZBUF_ZSTD_SMALL   ? ZBUF_ZSTD_LEVEL_SMALL
		    : len <= ZBUF_ZSTD_LARGE ? ZBUF_ZSTD_LEVEL_LARGE
					     : ZBUF_ZSTD_LEVEL_HUGE;
	size_t left;

	if (!cx)
		return BS_ENOMEM;
	/* the size in the frame header lets the reader refuse early */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel,
						level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cx, ZSTD_c_windowLog,
						ZBUF_ZSTD_WINDOW_LOG_MAX)) ||
	    ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cx, len))) {
		rc = BS_EINVALID;
		goto cleanup;
	}
	do {
		zout.dst = chunk;
		zout.size = sizeof chunk;
		zout.pos = 0;
		left = ZSTD_compressStream2(cx, &zout, &zin, ZSTD_e_end);
		if (ZSTD_isError(left)) {
			rc = zstd_status(left);
			goto cleanup;
		}
		buf_append(out, chunk, zout.pos);
		if (out->status) {
			rc = out->status;
			goto cleanup;
		}
	} while (left != 0);
cleanup:
	ZSTD_freeCCtx(cx);
	return rc;
}

enum bs_status zbuf_unzstd(const uint8_t *in, size_t len, struct buf *out)
{
	ZSTD_DCtx *dx = ZSTD_createDCtx();
	ZSTD_inBuffer zin = {in, len, 0};
	uint8_t chunk[16384];
	ZSTD_outBuffer zout;
	enum bs_status rc = BS_OK;
	size_t left = 1;

	if (!dx)
		return BS_ENOMEM;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(dx, ZSTD_d_windowLogMax,
						ZBUF_ZSTD_WINDOW_LOG_MAX))) {
		rc = BS_EINVALID;
		goto cleanup;
	}
	while (left != 0) {
		zout.dst = chunk;
		zout.size = sizeof chunk;
		zout.pos = 0;
		left = ZSTD_decompressStream(dx, &zout, &zin);
		if (ZSTD_isError(left)) {
			rc = zstd_status(left);
			goto cleanup;
		}
		buf_append(out, chunk, zout.pos);
		if (out->status) {
			rc = out->status;
			goto cleanup;
		}
		/* all input used, nothing more came out, frame not done */
		if (left != 0 && zin.pos == zin.size && zout.pos < zout.size) {
			rc = BS_EINVALID;
			goto cleanup;
		}
	}
	if (zin.pos != zin.size)
		rc = BS_EINVALID; /* bytes after the frame */
cleanup:
	ZSTD_freeDCtx(dx);
	return rc;
}
