/* test_frame.c - Check suite for protocol/frame: the known-answer stream,
 * random round trips through every chunking, truncation at every offset,
 * each rejection with its own status, and the memory bound of the reader. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "mem.h"
#include "wire.h"

#define MAX_FRAMES 64

struct want_frame {
	unsigned type;
	uint8_t *payload;
	size_t len;
};

/* What one read of a stream produced. */
struct got {
	enum bs_status rc;   /* first error of feed, else finish's verdict */
	size_t nframes;
	struct want_frame frames[MAX_FRAMES];
	size_t max_cap;      /* largest payload capacity seen */
	uint64_t consumed;
};

static void got_release(struct got *g)
{
	size_t i;

	for (i = 0; i < g->nframes; i++)
		free(g->frames[i].payload);
	g->nframes = 0;
}

/*
 * Reads p[0..n) with the reader, in chunks of `chunk` bytes, or of random
 * sizes 1..64 (sometimes larger) from *seed when chunk is 0. Copies the
 * frames out as they come, as a real caller would.
 */
static void read_stream(const uint8_t *p, size_t n, size_t max_payload,
			size_t chunk, unsigned *seed, struct got *g)
{
	struct frame_reader r;
	struct frame f;
	size_t off = 0;

	memset(g, 0, sizeof *g);
	frame_reader_init(&r, max_payload);
	g->rc = BS_OK;
	while (off < n) {
		size_t c = chunk, used;

		if (!c)
			c = rand_r(seed) % 8 ? 1 + (size_t)(rand_r(seed) % 64) :
					       1 + (size_t)(rand_r(seed) % 4096);
		if (c > n - off)
			c = n - off;
		g->rc = frame_reader_feed(&r, p + off, c, &used);
		if (r.payload.cap > g->max_cap)
			g->max_cap = r.payload.cap;
		if (g->rc)
			break;
		ck_assert_uint_le(used, c);
		off += used;
		if (frame_reader_next(&r, &f)) {
			struct want_frame *w = &g->frames[g->nframes++];

			ck_assert_uint_le(g->nframes, MAX_FRAMES);
			ck_assert_ptr_nonnull(f.payload);
			w->type = f.type;
			w->len = f.len;
			w->payload = malloc(f.len ? f.len : 1);
			memcpy(w->payload, f.payload, f.len);
		} else {
			/* No frame: the chunk must have been used up. */
			ck_assert_uint_eq(used, c);
		}
	}
	if (g->rc == BS_OK)
		g->rc = frame_reader_finish(&r);
	g->consumed = r.consumed;
	frame_reader_release(&r);
}

static size_t hex_decode(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex) / 2, i;

	ck_assert_uint_eq(strlen(hex) % 2, 0);
	ck_assert_uint_le(n, max);
	for (i = 0; i < n; i++) {
		unsigned x;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &x), 1);
		out[i] = (uint8_t)x;
	}
	return n;
}

static enum bs_status read_hex(const char *hex, size_t max_payload,
			       size_t chunk)
{
	uint8_t bytes[256];
	size_t n = hex_decode(hex, bytes, sizeof bytes);
	struct got g;

	read_stream(bytes, n, max_payload, chunk, NULL, &g);
	got_release(&g);
	return g.rc;
}

/* Both the one-byte and the one-chunk reading must agree on the verdict. */
static enum bs_status read_hex_both(const char *hex, size_t max_payload)
{
	enum bs_status a = read_hex(hex, max_payload, 1);
	enum bs_status b = read_hex(hex, max_payload, 4096);

	ck_assert_int_eq(a, b);
	return a;
}

START_TEST(known_answer_vector)
{
	static char line[4096];
	static uint8_t stream[4096], payload[2048];
	const char *dir = getenv("BRANCHSYNC_VECTORS");
	char path[1024];
	struct want_frame want[8];
	size_t nwant = 0, slen = 0, i, chunk;
	struct buf b;
	struct got g;
	FILE *fp;

	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof path, "%s/frame-kat.txt", dir);
	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	buf_init(&b, 1 << 16);
	frame_stream_begin(&b);
	while (fgets(line, sizeof line, fp)) {
		char hex[4096];
		unsigned type;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (sscanf(line, "frame %u %4095s", &type, hex) == 2) {
			size_t n = strcmp(hex, "-") ?
				hex_decode(hex, payload, sizeof payload) : 0;

			ck_assert_uint_lt(nwant, 8);
			want[nwant].type = type;
			want[nwant].len = n;
			want[nwant].payload = malloc(n ? n : 1);
			memcpy(want[nwant].payload, payload, n);
			nwant++;
			frame_put(&b, type, payload, n);
		} else if (sscanf(line, "stream %4095s", hex) == 1) {
			slen = hex_decode(hex, stream, sizeof stream);
		} else {
			ck_abort_msg("bad vector line: %s", line);
		}
	}
	fclose(fp);
	frame_stream_end(&b);
	ck_assert_int_eq(b.status, BS_OK);
	ck_assert_uint_eq(nwant, 3);
	ck_assert_uint_gt(slen, 0);

	/* The writer's bytes are the vector's, byte for byte. */
	ck_assert_uint_eq(b.len, slen);
	ck_assert_mem_eq(b.data, stream, slen);

	/* The reader gives back the listed frames, however it is fed. */
	for (chunk = 0; chunk <= 3; chunk++) {
		size_t sizes[] = {1, 2, 7, slen};

		read_stream(stream, slen, 130, sizes[chunk], NULL, &g);
		ck_assert_int_eq(g.rc, BS_OK);
		ck_assert_uint_eq(g.nframes, nwant);
		for (i = 0; i < nwant; i++) {
			ck_assert_uint_eq(g.frames[i].type, want[i].type);
			ck_assert_uint_eq(g.frames[i].len, want[i].len);
			ck_assert_mem_eq(g.frames[i].payload, want[i].payload,
					 want[i].len);
		}
		got_release(&g);
	}
	/* The 130-byte payload is over a 129-byte limit. */
	read_stream(stream, slen, 129, 1, NULL, &g);
	ck_assert_int_eq(g.rc, BS_ELIMIT);
	got_release(&g);

	for (i = 0; i < nwant; i++)
		free(want[i].payload);
	buf_release(&b);
}
END_TEST

/* Builds a random stream of `count` frames into b and want[]. */
static void random_stream(unsigned *seed, size_t max_payload, size_t count,
			  struct buf *b, struct want_frame *want)
{
	size_t i, j;

	frame_stream_begin(b);
	for (i = 0; i < count; i++) {
		size_t len;

		switch (rand_r(seed) % 4) {
		case 0: len = 0; break;
		case 1: len = (size_t)rand_r(seed) % 200 % (max_payload + 1); break;
		case 2: len = max_payload; break;
		default: len = (size_t)rand_r(seed) % (max_payload + 1); break;
		}
		want[i].type = 1 + (unsigned)rand_r(seed) % FRAME_TYPE_MAX;
		want[i].len = len;
		want[i].payload = malloc(len ? len : 1);
		for (j = 0; j < len; j++)
			want[i].payload[j] = (uint8_t)rand_r(seed);
		frame_put(b, want[i].type, want[i].payload, len);
	}
	frame_stream_end(b);
	ck_assert_int_eq(b->status, BS_OK);
}

START_TEST(random_roundtrip_any_chunking)
{
	unsigned seed = 99;
	int iter;

	for (iter = 0; iter < 300; iter++) {
		struct want_frame want[MAX_FRAMES];
		size_t max_payload = 1 + (size_t)rand_r(&seed) % 1500;
		size_t count = (size_t)rand_r(&seed) % 13, i, mode;
		struct buf b;

		buf_init(&b, 1 << 20);
		random_stream(&seed, max_payload, count, &b, want);
		for (mode = 0; mode < 4; mode++) {
			size_t chunk = mode == 0 ? 1 : mode == 1 ? b.len :
				       mode == 2 ? 3 : 0;
			struct got g;

			read_stream(b.data, b.len, max_payload, chunk, &seed, &g);
			ck_assert_int_eq(g.rc, BS_OK);
			ck_assert_uint_eq(g.consumed, b.len);
			ck_assert_uint_eq(g.nframes, count);
			ck_assert_uint_le(g.max_cap, max_payload);
			for (i = 0; i < count; i++) {
				ck_assert_uint_eq(g.frames[i].type, want[i].type);
				ck_assert_uint_eq(g.frames[i].len, want[i].len);
				ck_assert_mem_eq(g.frames[i].payload,
						 want[i].payload, want[i].len);
			}
			got_release(&g);
		}
		for (i = 0; i < count; i++)
			free(want[i].payload);
		buf_release(&b);
	}
}
END_TEST

START_TEST(long_stream_bounded_memory)
{
	/* 4000 frames of up to 512 bytes (about 1 MB), read in random
	 * chunks: the reader never holds more than one frame's payload. */
	const size_t max_payload = 512;
	unsigned seed = 4242;
	struct frame_reader r;
	struct frame f;
	struct buf b;
	size_t off = 0, frames = 0, i;

	buf_init(&b, 4 << 20);
	frame_stream_begin(&b);
	for (i = 0; i < 4000; i++) {
		uint8_t p[512];
		size_t len = (size_t)rand_r(&seed) % (max_payload + 1);

		memset(p, (int)i, len);
		frame_put(&b, FRAME_CHANGESET, p, len);
	}
	frame_stream_end(&b);
	ck_assert_int_eq(b.status, BS_OK);
	ck_assert_uint_gt(b.len, 900000);

	frame_reader_init(&r, max_payload);
	while (off < b.len) {
		size_t c = 1 + (size_t)rand_r(&seed) % 5000, used;

		if (c > b.len - off)
			c = b.len - off;
		ck_assert_int_eq(frame_reader_feed(&r, b.data + off, c, &used),
				 BS_OK);
		ck_assert_uint_le(r.payload.cap, max_payload);
		off += used;
		if (frame_reader_next(&r, &f)) {
			ck_assert_uint_eq(f.type, FRAME_CHANGESET);
			if (f.len)
				ck_assert_uint_eq(f.payload[f.len - 1],
						  (uint8_t)frames);
			frames++;
		}
	}
	ck_assert_int_eq(frame_reader_finish(&r), BS_OK);
	ck_assert_uint_eq(frames, 4000);
	frame_reader_release(&r);
	buf_release(&b);
}
END_TEST

START_TEST(truncated_at_every_offset)
{
	unsigned seed = 5;
	struct want_frame want[MAX_FRAMES];
	struct buf b;
	size_t cut, i;

	buf_init(&b, 1 << 16);
	random_stream(&seed, 300, 6, &b, want);
	for (cut = 0; cut < b.len; cut++) {
		struct got g;

		read_stream(b.data, cut, 300, 1, NULL, &g);
		ck_assert_int_eq(g.rc, BS_ETRUNCATED);
		got_release(&g);
		read_stream(b.data, cut, 300, cut ? cut : 1, NULL, &g);
		ck_assert_int_eq(g.rc, BS_ETRUNCATED);
		got_release(&g);
	}
	for (i = 0; i < 6; i++)
		free(want[i].payload);
	buf_release(&b);
}
END_TEST

START_TEST(rejects_header)
{
	ck_assert_int_eq(read_hex_both("", 100), BS_ETRUNCATED);
	ck_assert_int_eq(read_hex_both("425346", 100), BS_ETRUNCATED);
	ck_assert_int_eq(read_hex_both("4253465301", 100), BS_ETRUNCATED);
	ck_assert_int_eq(read_hex_both("4253465801" "0000", 100), BS_EMAGIC);
	ck_assert_int_eq(read_hex_both("5853465301" "0000", 100), BS_EMAGIC);
	ck_assert_int_eq(read_hex_both("62736673010000", 100), BS_EMAGIC);
	ck_assert_int_eq(read_hex_both("4253465302" "0000", 100), BS_EVERSION);
	ck_assert_int_eq(read_hex_both("4253465300" "0000", 100), BS_EVERSION);
	ck_assert_int_eq(read_hex_both("4253465301" "0000", 100), BS_OK);
}
END_TEST

START_TEST(rejects_frames)
{
	/* Unknown types 128..255; 127 belongs to callers and passes. */
	ck_assert_int_eq(read_hex_both("4253465301" "8000" "0000", 100),
			 BS_EINVALID);
	ck_assert_int_eq(read_hex_both("4253465301" "ff00" "0000", 100),
			 BS_EINVALID);
	ck_assert_int_eq(read_hex_both("4253465301" "7f0161" "0000", 100), BS_OK);
	ck_assert_int_eq(read_hex_both("4253465301" "0c00" "0000", 100), BS_OK);
	/* END must be empty. */
	ck_assert_int_eq(read_hex_both("4253465301" "000100", 100), BS_EINVALID);
	ck_assert_int_eq(read_hex_both("4253465301" "00810100" "00", 100),
			 BS_EINVALID);
	/* Overlong lengths, in frames and in END. */
	ck_assert_int_eq(read_hex_both("4253465301" "018000" "0000", 100),
			 BS_EOVERLONG);
	ck_assert_int_eq(read_hex_both("4253465301" "01858000" "0000", 100),
			 BS_EOVERLONG);
	ck_assert_int_eq(read_hex_both("4253465301" "008000", 100),
			 BS_EOVERLONG);
	ck_assert_int_eq(read_hex_both("4253465301" "01" "80808080808080808080"
				       "00", 100), BS_EOVERLONG);
	ck_assert_int_eq(read_hex_both("4253465301" "01" "ffffffffffffffffff02",
				       100), BS_EOVERLONG);
	/* Bytes after END, even a second stream or a zero. */
	ck_assert_int_eq(read_hex_both("4253465301" "0000" "00", 100),
			 BS_ETRAILING);
	ck_assert_int_eq(read_hex_both("4253465301" "0000" "4253465301" "0000",
				       100), BS_ETRAILING);
	/* A frame that stops inside its payload. */
	ck_assert_int_eq(read_hex_both("4253465301" "0103616263", 100),
			 BS_ETRUNCATED);
}
END_TEST

static enum bs_status feed_all(struct frame_reader *r, const char *hex)
{
	uint8_t bytes[64];
	size_t n = hex_decode(hex, bytes, sizeof bytes), used;

	return frame_reader_feed(r, bytes, n, &used);
}

START_TEST(length_limit_checked_before_buffering)
{
	struct frame_reader r;
	struct frame f;

	/* Length max + 1, with no payload bytes sent at all: refused on the
	 * length alone, and no allocation is even attempted (one would fail
	 * with BS_ENOMEM here). */
	frame_reader_init(&r, 1000);
	mem_fail_after(0);
	ck_assert_int_eq(feed_all(&r, "4253465301" "01e907"), BS_ELIMIT);
	mem_fail_reset();
	ck_assert_uint_eq(r.payload.cap, 0);
	ck_assert_ptr_null(r.payload.data);
	ck_assert_int_eq(frame_reader_finish(&r), BS_ELIMIT);
	frame_reader_release(&r);

	/* Huge declared lengths: 2^63 and 2^64 - 1. */
	frame_reader_init(&r, 1000);
	mem_fail_after(0);
	ck_assert_int_eq(feed_all(&r, "4253465301" "01" "80808080808080808001"),
			 BS_ELIMIT);
	mem_fail_reset();
	ck_assert_ptr_null(r.payload.data);
	frame_reader_release(&r);
	frame_reader_init(&r, SIZE_MAX - 1);
	mem_fail_after(0);
	ck_assert_int_eq(feed_all(&r, "4253465301" "01" "ffffffffffffffffff01"),
			 BS_ELIMIT);
	mem_fail_reset();
	ck_assert_ptr_null(r.payload.data);
	frame_reader_release(&r);

	/* Exactly the limit is fine; a zero limit allows empty frames. */
	ck_assert_int_eq(read_hex_both("4253465301" "0103616263" "0000", 3), BS_OK);
	ck_assert_int_eq(read_hex_both("4253465301" "0103616263" "0000", 2),
			 BS_ELIMIT);
	frame_reader_init(&r, 0);
	ck_assert_int_eq(feed_all(&r, "4253465301" "0200"), BS_OK);
	ck_assert(frame_reader_next(&r, &f));
	ck_assert_uint_eq(f.type, FRAME_RECEIPT);
	ck_assert_uint_eq(f.len, 0);
	ck_assert_ptr_nonnull(f.payload);
	ck_assert_int_eq(feed_all(&r, "0000"), BS_OK);
	ck_assert_int_eq(frame_reader_finish(&r), BS_OK);
	frame_reader_release(&r);
}
END_TEST

START_TEST(errors_sticky_and_state)
{
	struct frame_reader r;
	struct frame f;
	const uint8_t two[] = {0x01, 0x01, 'a', 0x02, 0x01, 'b', 0x00, 0x00};
	size_t used = 99;

	/* The error names its offset and sticks. */
	frame_reader_init(&r, 10);
	ck_assert_int_eq(feed_all(&r, "42535853"), BS_EMAGIC);
	ck_assert_uint_eq(r.consumed, 2);
	ck_assert_int_eq(frame_reader_feed(&r, "BSFS\x01", 5, &used), BS_EMAGIC);
	ck_assert_uint_eq(used, 0);
	ck_assert(!frame_reader_next(&r, &f));
	ck_assert_int_eq(frame_reader_finish(&r), BS_EMAGIC);
	frame_reader_release(&r);

	/* Feed stops at each frame boundary and waits for next(). */
	frame_reader_init(&r, 10);
	ck_assert_int_eq(feed_all(&r, "4253465301"), BS_OK);
	ck_assert_int_eq(frame_reader_feed(&r, two, sizeof two, &used), BS_OK);
	ck_assert_uint_eq(used, 3);
	ck_assert_int_eq(frame_reader_feed(&r, two + 3, 5, &used), BS_ESTATE);
	ck_assert_uint_eq(used, 0);
	ck_assert(frame_reader_next(&r, &f));
	ck_assert_uint_eq(f.type, 1);
	ck_assert_uint_eq(f.len, 1);
	ck_assert_uint_eq(f.payload[0], 'a');
	ck_assert(!frame_reader_next(&r, &f)); /* handed out once */
	ck_assert_int_eq(frame_reader_finish(&r), BS_ETRUNCATED);
	ck_assert_int_eq(frame_reader_feed(&r, two + 3, 5, &used), BS_OK);
	ck_assert_uint_eq(used, 3);
	ck_assert(frame_reader_next(&r, &f));
	ck_assert_uint_eq(f.type, 2);
	ck_assert_uint_eq(f.payload[0], 'b');
	ck_assert_int_eq(frame_reader_feed(&r, two + 6, 2, &used), BS_OK);
	ck_assert_uint_eq(used, 2);
	ck_assert(!frame_reader_next(&r, &f)); /* END is not a frame */
	ck_assert_int_eq(frame_reader_finish(&r), BS_OK);
	ck_assert_int_eq(frame_reader_feed(&r, two, 0, &used), BS_OK);
	ck_assert_int_eq(frame_reader_feed(&r, two, 1, &used), BS_ETRAILING);
	ck_assert_int_eq(frame_reader_finish(&r), BS_ETRAILING);

	/* Release forgets everything, the error included. */
	frame_reader_release(&r);
	ck_assert_ptr_null(r.payload.data);
	ck_assert_int_eq(frame_reader_finish(&r), BS_ETRUNCATED);
	ck_assert_int_eq(feed_all(&r, "42534653010000"), BS_OK);
	ck_assert_int_eq(frame_reader_finish(&r), BS_OK);
	frame_reader_release(&r);
}
END_TEST

START_TEST(out_of_memory_is_reported)
{
	struct frame_reader r;

	frame_reader_init(&r, 100);
	mem_fail_after(0);
	ck_assert_int_eq(feed_all(&r, "4253465301" "0103616263" "0000"),
			 BS_ENOMEM);
	mem_fail_reset();
	ck_assert_int_eq(feed_all(&r, "00"), BS_ENOMEM);
	ck_assert_int_eq(frame_reader_finish(&r), BS_ENOMEM);
	frame_reader_release(&r);
}
END_TEST

START_TEST(writer_checks)
{
	struct buf b;

	buf_init(&b, 100);
	frame_stream_begin(&b);
	frame_put(&b, FRAME_END, "x", 1);
	ck_assert_int_eq(b.status, BS_EINVALID);
	ck_assert_uint_eq(b.len, FRAME_HEADER_LEN);
	buf_reset(&b);
	frame_put(&b, 128, "x", 1);
	ck_assert_int_eq(b.status, BS_EINVALID);
	ck_assert_uint_eq(b.len, 0);
	buf_reset(&b);
	frame_put(&b, 256 + FRAME_CHANGESET, "x", 1); /* no silent truncation */
	ck_assert_int_eq(b.status, BS_EINVALID);
	buf_reset(&b);
	frame_put(&b, FRAME_META, NULL, 0);
	frame_put(&b, FRAME_TYPE_MAX, "ab", 2);
	ck_assert_int_eq(b.status, BS_OK);
	ck_assert_uint_eq(b.len, 6);
	ck_assert_mem_eq(b.data, "\x0b\x00\x7f\x02" "ab", 6);
	/* The buffer's cap bounds what a writer can produce. */
	{
		uint8_t big[200] = {0};

		frame_put(&b, FRAME_CHANGESET, big, sizeof big);
		ck_assert_int_eq(b.status, BS_ELIMIT);
	}
	buf_release(&b);
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, known_answer_vector);
	tcase_add_test(tc, random_roundtrip_any_chunking);
	tcase_add_test(tc, long_stream_bounded_memory);
	tcase_add_test(tc, truncated_at_every_offset);
	tcase_add_test(tc, rejects_header);
	tcase_add_test(tc, rejects_frames);
	tcase_add_test(tc, length_limit_checked_before_buffering);
	tcase_add_test(tc, errors_sticky_and_state);
	tcase_add_test(tc, out_of_memory_is_reported);
	tcase_add_test(tc, writer_checks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
