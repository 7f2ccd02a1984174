/* test_wire.c - Check suite for protocol/wire and protocol/buf: canonical
 * varints, fixed integers, blobs and the buffer cap. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mem.h"
#include "wire.h"

static enum bs_status decode_varint(const uint8_t *p, size_t n, uint64_t *v)
{
	struct wire_reader r;
	enum bs_status rc;

	wire_reader_init(&r, p, n);
	rc = wire_get_varint(&r, v);
	if (rc == BS_OK)
		rc = wire_expect_end(&r);
	return rc;
}

START_TEST(varint_known_encodings)
{
	static const struct {
		uint64_t v;
		const char *hex;
	} cases[] = {
		{0, "00"}, {1, "01"}, {127, "7f"}, {128, "8001"}, {300, "ac02"},
		{16383, "ff7f"}, {16384, "808001"},
		{UINT64_MAX, "ffffffffffffffffff01"},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t enc[WIRE_VARINT_MAX], want[WIRE_VARINT_MAX];
		size_t n = wire_varint_encode(cases[i].v, enc), j;
		uint64_t back = 0;

		ck_assert_uint_eq(n * 2, strlen(cases[i].hex));
		for (j = 0; j < n; j++) {
			unsigned x;
			sscanf(cases[i].hex + 2 * j, "%2x", &x);
			want[j] = (uint8_t)x;
		}
		ck_assert_mem_eq(enc, want, n);
		ck_assert_uint_eq(wire_varint_size(cases[i].v), n);
		ck_assert_int_eq(decode_varint(enc, n, &back), BS_OK);
		ck_assert_uint_eq(back, cases[i].v);
	}
}
END_TEST

START_TEST(varint_rejects_noncanonical)
{
	static const uint8_t overlong_zero[] = {0x80, 0x00};
	static const uint8_t overlong_one[] = {0x81, 0x80, 0x00};
	static const uint8_t too_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
					  0xff, 0xff, 0xff, 0xff, 0x02};
	static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					 0x80, 0x80, 0x80, 0x81, 0x00};
	static const uint8_t truncated[] = {0x80, 0x80};
	uint64_t v;

	ck_assert_int_eq(decode_varint(overlong_zero, 2, &v), BS_EOVERLONG);
	ck_assert_int_eq(decode_varint(overlong_one, 3, &v), BS_EOVERLONG);
	ck_assert_int_eq(decode_varint(too_big, 10, &v), BS_EOVERLONG);
	ck_assert_int_eq(decode_varint(eleven, 11, &v), BS_EOVERLONG);
	ck_assert_int_eq(decode_varint(truncated, 2, &v), BS_ETRUNCATED);
	ck_assert_int_eq(decode_varint(truncated, 0, &v), BS_ETRUNCATED);
}
END_TEST

START_TEST(varint_roundtrip_random)
{
	unsigned seed = 12345;
	int i;

	for (i = 0; i < 100000; i++) {
		uint64_t v = ((uint64_t)rand_r(&seed) << 62) ^
			     ((uint64_t)rand_r(&seed) << 31) ^ (uint64_t)rand_r(&seed);
		uint8_t enc[WIRE_VARINT_MAX];
		uint64_t back;

		v >>= rand_r(&seed) % 64;
		ck_assert_int_eq(decode_varint(enc, wire_varint_encode(v, enc), &back),
				 BS_OK);
		ck_assert_uint_eq(v, back);
	}
}
END_TEST

START_TEST(blob_limits_checked_before_use)
{
	struct buf b;
	struct wire_reader r;
	const uint8_t *p;
	size_t n;

	buf_init(&b, 1024);
	wire_put_blob(&b, "hello", 5);
	wire_put_u64be(&b, 0x0102030405060708ull);
	ck_assert_int_eq(b.status, BS_OK);

	wire_reader_init(&r, b.data, b.len);
	ck_assert_int_eq(wire_get_blob(&r, 4, &p, &n), BS_ELIMIT);
	wire_reader_init(&r, b.data, b.len);
	ck_assert_int_eq(wire_get_blob(&r, 5, &p, &n), BS_OK);
	ck_assert_mem_eq(p, "hello", 5);
	{
		uint64_t v;
		ck_assert_int_eq(wire_get_u64be(&r, &v), BS_OK);
		ck_assert_uint_eq(v, 0x0102030405060708ull);
	}
	ck_assert_int_eq(wire_expect_end(&r), BS_OK);
	/* A length claiming more than remains is truncation, not a read. */
	wire_reader_init(&r, b.data, 3);
	ck_assert_int_eq(wire_get_blob(&r, 100, &p, &n), BS_ETRUNCATED);
	buf_release(&b);
}
END_TEST

START_TEST(buf_cap_and_sticky_error)
{
	struct buf b;
	uint8_t big[100] = {0};

	buf_init(&b, 150);
	buf_append(&b, big, 100);
	ck_assert_int_eq(b.status, BS_OK);
	buf_append(&b, big, 51);
	ck_assert_int_eq(b.status, BS_ELIMIT);
	buf_append(&b, big, 1); /* ignored once failed */
	ck_assert_uint_eq(b.len, 100);
	buf_release(&b);

	buf_init(&b, 1 << 20);
	mem_fail_after(0);
	buf_append(&b, big, 10);
	mem_fail_reset();
	ck_assert_int_eq(b.status, BS_ENOMEM);
	buf_release(&b);
}
END_TEST

static Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, varint_known_encodings);
	tcase_add_test(tc, varint_rejects_noncanonical);
	tcase_add_test(tc, varint_roundtrip_random);
	tcase_add_test(tc, blob_limits_checked_before_use);
	tcase_add_test(tc, buf_cap_and_sticky_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wire_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
