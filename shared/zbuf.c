/* zbuf.c - capped zlib compression and decompression (see zbuf.h). */
#include "zbuf.h"

#include <string.h>

#include <zlib.h>

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
