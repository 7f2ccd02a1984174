/* fuzz_zbuf.c - libFuzzer target for the decompression of untrusted HTTP
 * bodies (shared/zbuf.c): the first byte picks zstd or deflate, the rest
 * is the body. Nothing may crash or leak, and nothing may come out beyond
 * the cap, whatever the bytes; what decodes must compress and decode back
 * to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CAP (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out, z, back;
	int zstd;
	enum bs_status st;

	if (size == 0)
		return 0;
	zstd = data[0] & 1;
	buf_init(&out, FUZZ_CAP);
	st = zstd ? zbuf_unzstd(data + 1, size - 1, &out)
		  : zbuf_inflate(data + 1, size - 1, &out);
	if (out.len > FUZZ_CAP)
		abort();
	if (st == BS_OK) {
		buf_init(&z, 2 * out.len + 1024);
		buf_init(&back, FUZZ_CAP);
		if ((zstd ? zbuf_zstd(out.data, out.len, &z)
			  : zbuf_deflate(out.data, out.len, &z)) != BS_OK ||
		    (zstd ? zbuf_unzstd(z.data, z.len, &back)
			  : zbuf_inflate(z.data, z.len, &back)) != BS_OK ||
		    back.len != out.len ||
		    (out.len && memcmp(back.data, out.data, out.len) != 0))
			abort();
		buf_release(&z);
		buf_release(&back);
	}
	buf_release(&out);
	return 0;
}
