/* test_utf8.c - Check suite for shared/utf8: a table of well-known valid
 * and invalid sequences, then every 1- to 3-byte input and random 4-byte
 * inputs compared against a reference built from the definition. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static size_t from_hex(const char *hex, uint8_t *out)
{
	size_t n = 0;
	unsigned x;

	while (*hex) {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		ck_assert_int_eq(sscanf(hex, "%2x", &x), 1);
		out[n++] = (uint8_t)x;
		hex += 2;
	}
	return n;
}

START_TEST(known_sequences)
{
	static const struct {
		const char *hex;
		int valid;
		size_t prefix; /* utf8_valid_prefix */
	} cases[] = {
		{"", 1, 0},
		{"41 42 43", 1, 3},
		{"00", 1, 1},                   /* U+0000 is well-formed */
		{"7f", 1, 1},
		{"c2 80", 1, 2},                /* U+0080 */
		{"df bf", 1, 2},                /* U+07FF */
		{"e0 a0 80", 1, 3},             /* U+0800 */
		{"e5 bc a0 e4 b8 89", 1, 6},    /* 张三 */
		{"ed 9f bf", 1, 3},             /* U+D7FF */
		{"ee 80 80", 1, 3},             /* U+E000 */
		{"ef bf bf", 1, 3},             /* U+FFFF */
		{"ef bb bf", 1, 3},             /* BOM is a character here */
		{"f0 90 80 80", 1, 4},          /* U+10000 */
		{"f0 9f 91 8d", 1, 4},          /* U+1F44D thumbs up */
		{"f4 8f bf bf", 1, 4},          /* U+10FFFF */
		{"c0 80", 0, 0},                /* overlong NUL */
		{"c1 bf", 0, 0},                /* overlong U+007F */
		{"e0 80 80", 0, 0},             /* overlong NUL */
		{"e0 9f bf", 0, 0},             /* overlong U+07FF */
		{"f0 80 80 80", 0, 0},          /* overlong NUL */
		{"f0 8f bf bf", 0, 0},          /* overlong U+FFFF */
		{"ed a0 80", 0, 0},             /* U+D800 high surrogate */
		{"ed bf bf", 0, 0},             /* U+DFFF low surrogate */
		{"ed a0 bd ed b1 8d", 0, 0},    /* CESU-8 pair */
		{"f4 90 80 80", 0, 0},          /* U+110000 */
		{"f5 80 80 80", 0, 0},
		{"ff", 0, 0},
		{"fe", 0, 0},
		{"80", 0, 0},                   /* stray continuation */
		{"41 bf", 0, 1},
		{"c2", 0, 0},                   /* truncated */
		{"41 e5 bc", 0, 1},             /* truncated 3-byte */
		{"f0 9f 91", 0, 0},             /* truncated 4-byte */
		{"e5 41 a0", 0, 0},             /* continuation missing */
		{"f0 9f 41 8d", 0, 0},
		{"f8 88 80 80 80", 0, 0},       /* old 5-byte form */
		{"fc 84 80 80 80 80", 0, 0},    /* old 6-byte form */
		{"e4 b8 89 c0 af", 0, 3},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t b[16];
		size_t n = from_hex(cases[i].hex, b);

		ck_assert_msg(utf8_valid(b, n) == (cases[i].valid != 0),
			      "case %zu (%s)", i, cases[i].hex);
		ck_assert_msg(utf8_valid_prefix(b, n) ==
				      (cases[i].valid ? n : cases[i].prefix),
			      "prefix of case %zu (%s)", i, cases[i].hex);
	}
}
END_TEST

START_TEST(decode_code_points)
{
	static const struct {
		const char *hex;
		uint32_t cp;
	} cases[] = {
		{"24", 0x24}, {"c2 a2", 0xA2}, {"e2 82 ac", 0x20AC},
		{"e5 bc a0", 0x5F20}, {"e3 9b 83", 0x36C3},
		{"f0 9f 91 8d", 0x1F44D}, {"f4 8f bf bf", 0x10FFFF},
	};
	size_t i;
	uint32_t cp = 12345;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t b[8];
		size_t n = from_hex(cases[i].hex, b);

		ck_assert_uint_eq(utf8_decode(b, n, &cp), n);
		ck_assert_uint_eq(cp, cases[i].cp);
		/* one byte short is never a character */
		cp = 12345;
		if (n > 1)
			ck_assert_uint_eq(utf8_decode(b, n - 1, &cp), 0);
		ck_assert_uint_eq(cp, 12345);
	}
	ck_assert_uint_eq(utf8_decode((const uint8_t *)"", 0, &cp), 0);
}
END_TEST

/* The reference: decode by bit pattern alone, then accept only if the
 * value is a scalar value that needs exactly this many bytes. */
static size_t ref_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
	size_t need, i;
	uint32_t v;

	if (n == 0)
		return 0;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	} else if ((p[0] & 0xE0) == 0xC0) {
		need = 2;
		v = p[0] & 0x1F;
	} else if ((p[0] & 0xF0) == 0xE0) {
		need = 3;
		v = p[0] & 0x0F;
	} else if ((p[0] & 0xF8) == 0xF0) {
		need = 4;
		v = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	if ((need == 2 && v < 0x80) || (need == 3 && v < 0x800) ||
	    (need == 4 && v < 0x10000))
		return 0;
	*cp = v;
	return need;
}

static int ref_valid(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t i = 0, k;

	while (i < n) {
		k = ref_decode(p + i, n - i, &cp);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

/* Plain ifs, not ck_assert, in the hot loops: Check records every passing
 * assertion, which would dominate millions of iterations. */
static void compare_with_reference(const uint8_t *b, size_t n)
{
	uint32_t got = 0, want = 0;
	size_t k = utf8_decode(b, n, &got), kr = ref_decode(b, n, &want);

	if (k != kr || (k && got != want) ||
	    utf8_valid(b, n) != ref_valid(b, n))
		ck_abort_msg("%02x %02x %02x %02x (n=%zu): decode %zu, "
			     "reference %zu", b[0], n > 1 ? b[1] : 0,
			     n > 2 ? b[2] : 0, n > 3 ? b[3] : 0, n, k, kr);
}

START_TEST(exhaustive_short_inputs)
{
	uint32_t x;
	uint8_t b[3];

	for (x = 0; x < 0x100; x++) {
		b[0] = (uint8_t)x;
		compare_with_reference(b, 1);
	}
	for (x = 0; x < 0x10000; x++) {
		b[0] = (uint8_t)(x >> 8);
		b[1] = (uint8_t)x;
		compare_with_reference(b, 2);
	}
	for (x = 0; x < 0x1000000; x++) {
		b[0] = (uint8_t)(x >> 16);
		b[1] = (uint8_t)(x >> 8);
		b[2] = (uint8_t)x;
		if (b[0] < 0xE0 && (x & 0xFF) != 0)
			continue; /* 1/2-byte leads: covered above */
		compare_with_reference(b, 3);
	}
}
END_TEST

START_TEST(four_byte_inputs)
{
	unsigned seed = 4242;
	uint32_t lead, x;
	uint8_t b[4];
	int i;

	/* Every lead F0..FF with every second byte and a few tails: the
	 * second byte is where the range limits bite. */
	for (lead = 0xF0; lead <= 0xFF; lead++)
		for (x = 0; x < 0x100; x++) {
			b[0] = (uint8_t)lead;
			b[1] = (uint8_t)x;
			b[2] = 0x80;
			b[3] = 0xBF;
			compare_with_reference(b, 4);
			b[3] = 0x7F;
			compare_with_reference(b, 4);
		}
	for (i = 0; i < 2000000; i++) {
		uint32_t v = (uint32_t)rand_r(&seed) ^
			     ((uint32_t)rand_r(&seed) << 16);

		b[0] = (uint8_t)(0xF0 | (v & 0x0F));
		b[1] = (uint8_t)(v >> 8);
		b[2] = (uint8_t)(v >> 16);
		b[3] = (uint8_t)(v >> 24);
		if (i & 1) { /* bias toward continuation bytes */
			b[2] = (uint8_t)(0x80 | (b[2] & 0x3F));
			b[3] = (uint8_t)(0x80 | (b[3] & 0x3F));
		}
		compare_with_reference(b, 4);
	}
}
END_TEST

START_TEST(every_scalar_value_roundtrips)
{
	uint32_t cp;

	for (cp = 0; cp <= 0x10FFFF; cp++) {
		uint8_t b[4];
		uint32_t back = 0xFFFFFFFF;
		size_t n;

		if (cp < 0x80) {
			b[0] = (uint8_t)cp;
			n = 1;
		} else if (cp < 0x800) {
			b[0] = (uint8_t)(0xC0 | (cp >> 6));
			b[1] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			b[0] = (uint8_t)(0xE0 | (cp >> 12));
			b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
			b[2] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			b[0] = (uint8_t)(0xF0 | (cp >> 18));
			b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
			b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
			b[3] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 4;
		}
		if (cp >= 0xD800 && cp <= 0xDFFF) {
			if (utf8_decode(b, n, &back) != 0 || utf8_valid(b, n))
				ck_abort_msg("surrogate U+%04X accepted",
					     (unsigned)cp);
			continue;
		}
		if (utf8_decode(b, n, &back) != n || back != cp ||
		    !utf8_valid(b, n))
			ck_abort_msg("U+%04X does not round-trip",
				     (unsigned)cp);
	}
}
END_TEST

static Suite *utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, known_sequences);
	tcase_add_test(tc, decode_code_points);
	tcase_add_test(tc, exhaustive_short_inputs);
	tcase_add_test(tc, four_byte_inputs);
	tcase_add_test(tc, every_scalar_value_roundtrips);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(utf8_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
