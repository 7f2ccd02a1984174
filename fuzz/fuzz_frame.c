/* fuzz_frame.c - libFuzzer target for the frame stream reader: hostile
 * bytes in hostile chunkings must never crash it, the verdict must not
 * depend on the chunking, and an accepted stream re-encodes to its exact
 * bytes. Not built by meson; see the build line below.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_DEFAULT_SOURCE \
 *     -Iprotocol fuzz/fuzz_frame.c protocol/bs_status.c protocol/buf.c \
 *     protocol/mem.c protocol/wire.c protocol/frame.c -lsodium -o fuzz_frame
 *
 * Input: byte 0 picks the payload limit (bits 3..7) and how many chunk
 * sizes follow (bits 0..2, plus one); the sizes (each plus one) are cycled
 * over the rest of the input, which is the stream. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"

struct outcome {
	enum bs_status rc;
	uint64_t consumed;
	struct buf out; /* the frames handed out, re-encoded as a stream */
};

/* Reads the stream in chunks given by sizes[] (or in one chunk when
 * nsizes is 0) and re-encodes every frame it hands out. */
static void run(const uint8_t *p, size_t n, size_t max_payload,
		const uint8_t *sizes, size_t nsizes, struct outcome *o)
{
	struct frame_reader r;
	struct frame f;
	size_t off = 0, k = 0;

	frame_reader_init(&r, max_payload);
	buf_init(&o->out, 1 << 24);
	frame_stream_begin(&o->out);
	o->rc = BS_OK;
	while (off < n) {
		size_t c = nsizes ? (size_t)sizes[k++ % nsizes] + 1 : n - off;
		size_t used;

		if (c > n - off)
			c = n - off;
		o->rc = frame_reader_feed(&r, p + off, c, &used);
		if (r.payload.cap > max_payload || used > c)
			abort(); /* the memory bound or the contract broke */
		if (o->rc == BS_ESTATE)
			abort(); /* we always take frames before feeding */
		if (o->rc)
			break;
		off += used;
		if (frame_reader_next(&r, &f))
			frame_put(&o->out, f.type, f.payload, f.len);
		else if (used != c)
			abort(); /* stopped early without a frame or an error */
	}
	if (o->rc == BS_OK)
		o->rc = frame_reader_finish(&r);
	if (o->rc == BS_OK)
		frame_stream_end(&o->out);
	o->consumed = r.consumed;
	frame_reader_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome chunked, whole;
	size_t nsizes, max_payload;
	const uint8_t *stream;
	size_t n;

	if (size < 1)
		return 0;
	nsizes = (size_t)(data[0] & 7) + 1;
	max_payload = (size_t)(data[0] >> 3) * 37;
	if (size < 1 + nsizes)
		return 0;
	stream = data + 1 + nsizes;
	n = size - 1 - nsizes;

	run(stream, n, max_payload, data + 1, nsizes, &chunked);
	run(stream, n, max_payload, NULL, 0, &whole);
	if (chunked.out.status || whole.out.status)
		abort();
	if (chunked.rc != whole.rc || chunked.consumed != whole.consumed)
		abort();
	if (chunked.out.len != whole.out.len ||
	    memcmp(chunked.out.data, whole.out.data, whole.out.len))
		abort();
	/* One encoding per stream: what was accepted is what we write. */
	if (whole.rc == BS_OK &&
	    (whole.out.len != n || memcmp(whole.out.data, stream, n)))
		abort();
	buf_release(&chunked.out);
	buf_release(&whole.out);
	return 0;
}
