/* test_zbuf.c - Check suite for shared/zbuf: both codings round trip
 * (empty, small, large, incompressible), the output cap stops a bomb,
 * truncated, corrupted and trailing input is refused, and a zstd frame
 * asking for a window above the limit is refused before decoding. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zstd.h>

#include "buf.h"
#include "zbuf.h"

typedef enum bs_status (*codec_fn)(const uint8_t *, size_t, struct buf *);

struct coding {
	const char *name;
	codec_fn pack, unpack;
};

static const struct coding codings[] = {
	{"zstd", zbuf_zstd, zbuf_unzstd},
	{"deflate", zbuf_deflate, zbuf_inflate},
};

/* Text-like input: repeated records with a counter, as frames are. */
static uint8_t *sample(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)("member,b1,13800000000,active\n"[i % 29] +
				 (i / 29 % 7 == 0 && i % 29 == 12 ? i / 203 % 10
								    : 0));
	return p;
}

static void round_trip(const struct coding *c, const uint8_t *in, size_t n)
{
	struct buf z, back;

	buf_init(&z, n + 4096);
	buf_init(&back, n + 1);
	ck_assert_int_eq(c->pack(in, n, &z), BS_OK);
	ck_assert_int_eq(c->unpack(z.data, z.len, &back), BS_OK);
	ck_assert_uint_eq(back.len, n);
	ck_assert(n == 0 || memcmp(back.data, in, n) == 0);
	buf_release(&z);
	buf_release(&back);
}

START_TEST(round_trips)
{
	const struct coding *c = &codings[_i];
	static const size_t sizes[] = {0, 1, 100, 4096, 70000,
				       ZBUF_ZSTD_SMALL + 1, 3u << 20};
	size_t i;

	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint8_t *p = sample(sizes[i]);

		round_trip(c, p, sizes[i]);
		randombytes_buf(p, sizes[i]);
		round_trip(c, p, sizes[i]);
		free(p);
	}
}
END_TEST

/* Compressible text shrinks; zstd at least as well as deflate here. */
START_TEST(compresses)
{
	uint8_t *p = sample(100000);
	struct buf zs, zd;

	buf_init(&zs, 200000);
	buf_init(&zd, 200000);
	ck_assert_int_eq(zbuf_zstd(p, 100000, &zs), BS_OK);
	ck_assert_int_eq(zbuf_deflate(p, 100000, &zd), BS_OK);
	ck_assert_uint_lt(zs.len, 100000 / 20);
	ck_assert_uint_le(zs.len, zd.len);
	buf_release(&zs);
	buf_release(&zd);
	free(p);
}
END_TEST

/* 64 MiB of zeros compresses to a few KiB; a 1 MiB cap stops it. */
START_TEST(bomb_stops_at_cap)
{
	const struct coding *c = &codings[_i];
	size_t n = 64u << 20;
	uint8_t *zeros = calloc(1, n);
	struct buf z, back;

	ck_assert_ptr_nonnull(zeros);
	buf_init(&z, n);
	ck_assert_int_eq(c->pack(zeros, n, &z), BS_OK);
	ck_assert_uint_lt(z.len, 1u << 20);
	free(zeros);
	buf_init(&back, 1u << 20);
	ck_assert_int_eq(c->unpack(z.data, z.len, &back), BS_ELIMIT);
	ck_assert_uint_le(back.len, 1u << 20);
	buf_release(&z);
	buf_release(&back);
}
END_TEST

/* Every truncation and a byte after the end are refused. A flipped bit
 * anywhere never gets past the cap; deflate's Adler-32 catches every one
 * that still decodes, while zstd (sent without its optional checksum: the
 * frames inside are signed) may decode a flip in a field it ignores to
 * the same bytes. */
START_TEST(damaged_input)
{
	const struct coding *c = &codings[_i];
	uint8_t *p = sample(3000);
	struct buf z, back, longer;
	size_t cut, i;

	buf_init(&z, 8192);
	ck_assert_int_eq(c->pack(p, 3000, &z), BS_OK);
	for (cut = 0; cut < z.len; cut++) {
		buf_init(&back, 8192);
		ck_assert_int_eq(c->unpack(z.data, cut, &back), BS_EINVALID);
		buf_release(&back);
	}
	buf_init(&longer, 8192);
	buf_append(&longer, z.data, z.len);
	buf_append_u8(&longer, 0);
	buf_init(&back, 8192);
	ck_assert_int_eq(c->unpack(longer.data, longer.len, &back),
			 BS_EINVALID);
	buf_release(&back);
	for (i = 0; i < z.len; i++) {
		z.data[i] ^= 0x20;
		buf_init(&back, 4000);
		if (c->unpack(z.data, z.len, &back) == BS_OK &&
		    c->unpack == zbuf_inflate)
			ck_assert(back.len != 3000 ||
				  memcmp(back.data, p, 3000) != 0);
		ck_assert_uint_le(back.len, 4000);
		buf_release(&back);
		z.data[i] ^= 0x20;
	}
	buf_release(&longer);
	buf_release(&z);
	free(p);
}
END_TEST

/* A frame made with a 64 MiB window is refused by a reader that allows
 * 8 MiB, however small its content. */
START_TEST(zstd_window_limit)
{
	ZSTD_CCtx *cx = ZSTD_createCCtx();
	uint8_t *p = sample(100000), z[65536];
	struct buf back;
	size_t n;

	ck_assert_ptr_nonnull(cx);
	ZSTD_CCtx_setParameter(cx, ZSTD_c_windowLog, 26);
	/* streamed with no size given, so zstd keeps the window asked for */
	{
		ZSTD_inBuffer in = {p, 100000, 0};
		ZSTD_outBuffer out = {z, sizeof z, 0};

		ck_assert(!ZSTD_isError(ZSTD_compressStream2(
		    cx, &out, &in, ZSTD_e_continue)));
		in.src = NULL;
		in.size = in.pos = 0;
		ck_assert_uint_eq(ZSTD_compressStream2(cx, &out, &in,
						       ZSTD_e_end), 0);
		n = out.pos;
	}
	ck_assert_uint_eq(ZSTD_getFrameContentSize(z, n),
			  ZSTD_CONTENTSIZE_UNKNOWN);
	{
		/* a reader allowing that window decodes it: the frame is
		 * good, only its window is refused */
		ZSTD_DCtx *dx = ZSTD_createDCtx();
		static uint8_t plain[100000];

		ZSTD_DCtx_setParameter(dx, ZSTD_d_windowLogMax, 27);
		ck_assert_uint_eq(ZSTD_decompressDCtx(dx, plain, sizeof plain,
						      z, n), 100000);
		ZSTD_freeDCtx(dx);
	}
	buf_init(&back, 1u << 20);
	ck_assert_int_eq(zbuf_unzstd(z, n, &back), BS_EINVALID);
	buf_release(&back);
	ZSTD_freeCCtx(cx);
	free(p);
}
END_TEST

static Suite *zbuf_suite(void)
{
	Suite *s = suite_create("zbuf");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, round_trips, 0, 2);
	tcase_add_test(tc, compresses);
	tcase_add_loop_test(tc, bomb_stops_at_cap, 0, 2);
	tcase_add_loop_test(tc, damaged_input, 0, 2);
	tcase_add_test(tc, zstd_window_limit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(zbuf_suite());
	int failed;

	if (sodium_init() < 0)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
