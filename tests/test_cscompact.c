/* test_cscompact.c - Check suite for protocol/cscompact: every known-answer
 * change set of tests/vectors/changeset-kat.txt survives compact form and
 * expansion byte for byte; the compact layout is what FORMAT.md says
 * (checked by slicing the full encoding, not with the encoder); every
 * malformed compact form gets its bs_status; a wrong author, predecessor,
 * cut or flipped body expands to bytes whose signature fails. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "changeset.h"
#include "cscompact.h"
#include "kat.h"
#include "mem.h"
#include "sign.h"
#include "wire.h"

#define VECTORS "changeset-kat.txt"
#define MAX_ENC 8192

struct vec {
	uint8_t enc[MAX_ENC];
	size_t len;
	struct changeset cs;
};

static size_t vectors_load(struct vec *v, size_t max)
{
	char names[8][KAT_NAME_MAX];
	size_t n = kat_names(VECTORS, NULL, names, 8), i;

	ck_assert_uint_ge(n, 3);
	ck_assert_uint_le(n, max);
	for (i = 0; i < n; i++) {
		v[i].len = kat_hex(VECTORS, names[i], "encoded", v[i].enc,
				   MAX_ENC);
		ck_assert_int_eq(changeset_decode(v[i].enc, v[i].len,
						  &v[i].cs), BS_OK);
	}
	return n;
}

static void compact(const struct vec *v, struct buf *out)
{
	buf_init(out, MAX_ENC);
	ck_assert_int_eq(cscompact_encode(&v->cs, out), BS_OK);
}

/* FORMAT.md: "BSCC", version, then the full envelope's seq (after the
 * 32-byte author), hlc, scope and schema_version (after the 32-byte prev,
 * up to body_len), the signature and the body. */
static void sliced(const struct vec *v, struct buf *out)
{
	const uint8_t *p = v->enc;
	size_t seq_len = wire_varint_size(v->cs.env.seq);
	size_t after_prev = 5 + 32 + seq_len + 32;
	size_t body_len_len = wire_varint_size(v->cs.env.body_len);
	size_t tail = v->cs.env_len - 32 - body_len_len; /* schema's end */

	buf_init(out, MAX_ENC);
	buf_append(out, "BSCC", 4);
	buf_append_u8(out, p[4]);
	buf_append(out, p + 37, seq_len);
	buf_append(out, p + after_prev, tail - after_prev);
	buf_append(out, v->cs.sig, SIGN_BYTES);
	buf_append(out, v->cs.body, v->cs.body_len);
	ck_assert_int_eq(out->status, BS_OK);
}

START_TEST(kat_round_trip)
{
	struct vec *v = calloc(8, sizeof *v);
	size_t n, i;

	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(sign_init(), BS_OK);
	n = vectors_load(v, 8);
	for (i = 0; i < n; i++) {
		struct buf c, want, full;
		uint64_t seq = 0;

		compact(&v[i], &c);
		sliced(&v[i], &want);
		ck_assert_uint_eq(c.len, want.len);
		ck_assert_mem_eq(c.data, want.data, c.len);
		/* 96 bytes fewer: author, prev, body_hash; and body_len */
		ck_assert_uint_eq(c.len + 96 + wire_varint_size(v[i].cs.body_len),
				  v[i].len);
		ck_assert_int_eq(cscompact_seq(c.data, c.len, &seq), BS_OK);
		ck_assert_uint_eq(seq, v[i].cs.env.seq);
		buf_init(&full, MAX_ENC);
		buf_append(&full, "x", 1); /* appends after what is there */
		ck_assert_int_eq(cscompact_expand(c.data, c.len,
						  v[i].cs.env.author,
						  v[i].cs.env.prev, &full),
				 BS_OK);
		ck_assert_uint_eq(full.len, v[i].len + 1);
		ck_assert_mem_eq(full.data + 1, v[i].enc, v[i].len);
		buf_release(&c);
		buf_release(&want);
		buf_release(&full);
	}
	free(v);
}
END_TEST

/* Expands c with the right author and prev, expecting status want; on
 * failure out must be untouched. */
static void expect_expand(const struct vec *v, const uint8_t *c, size_t len,
			  enum bs_status want)
{
	struct buf out;

	buf_init(&out, MAX_ENC);
	buf_append(&out, "keep", 4);
	ck_assert_int_eq(cscompact_expand(c, len, v->cs.env.author,
					  v->cs.env.prev, &out),
			 want);
	if (want != BS_OK)
		ck_assert_uint_eq(out.len, 4);
	buf_release(&out);
}

START_TEST(malformed)
{
	struct vec *v = calloc(8, sizeof *v);
	struct buf c, m;
	size_t cut, scope_at, i;
	uint64_t seq;

	ck_assert_ptr_nonnull(v);
	vectors_load(v, 8);
	compact(&v[0], &c); /* "first": seq 1, a one-byte varint */
	/* every cut inside the head or the signature */
	scope_at = 4 + 1 + 1 + 8;
	for (cut = 0; cut < c.len - v[0].cs.body_len; cut++)
		expect_expand(&v[0], c.data, cut, BS_ETRUNCATED);
	/* no body at all */
	expect_expand(&v[0], c.data, c.len - v[0].cs.body_len, BS_ETRUNCATED);
	ck_assert_int_eq(cscompact_seq(c.data, 5, &seq), BS_ETRUNCATED);
	/* magic, version */
	buf_init(&m, MAX_ENC);
	buf_append(&m, c.data, c.len);
	m.data[3] = 'S'; /* the full form's magic is not this one */
	expect_expand(&v[0], m.data, m.len, BS_EMAGIC);
	ck_assert_int_eq(cscompact_seq(m.data, m.len, &seq), BS_EMAGIC);
	m.data[3] = 'C';
	m.data[4] = 2;
	expect_expand(&v[0], m.data, m.len, BS_EVERSION);
	m.data[4] = 1;
	/* seq 0, and seq 1 written in two bytes */
	m.data[5] = 0;
	expect_expand(&v[0], m.data, m.len, BS_EINVALID);
	ck_assert_int_eq(cscompact_seq(m.data, m.len, &seq), BS_EINVALID);
	buf_reset(&m);
	buf_append(&m, c.data, 5);
	buf_append_u8(&m, 0x81);
	buf_append_u8(&m, 0x00);
	buf_append(&m, c.data + 6, c.len - 6);
	expect_expand(&v[0], m.data, m.len, BS_EOVERLONG);
	/* scopes: a NUL inside, a character outside the set, empty */
	for (i = 0; i < 3; i++) {
		buf_reset(&m);
		buf_append(&m, c.data, c.len);
		if (i == 0)
			m.data[scope_at + 2] = 0;
		else if (i == 1)
			m.data[scope_at + 2] = '/';
		else
			m.data[scope_at] = 0; /* length 0: rest misparsed */
		expect_expand(&v[0], m.data, m.len, BS_EINVALID);
	}
	/* seq 1 needs a zero prev, and seq 2 a non-zero one */
	{
		struct buf out;
		uint8_t prev[32];

		memset(prev, 7, sizeof prev);
		buf_init(&out, MAX_ENC);
		ck_assert_int_eq(cscompact_expand(c.data, c.len,
						  v[0].cs.env.author, prev,
						  &out),
				 BS_EINVALID);
		buf_release(&out);
	}
	buf_release(&m);
	buf_release(&c);
	free(v);
}
END_TEST

/* What the compact form leaves out is not vouched for by it: with another
 * author or predecessor, or a body cut or changed, the expansion decodes
 * but its signature fails. */
START_TEST(wrong_context_fails_signature)
{
	struct vec *v = calloc(8, sizeof *v);
	struct buf c, out;
	struct changeset cs;
	uint8_t other[32];
	size_t n, i;

	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(sign_init(), BS_OK);
	n = vectors_load(v, 8);
	for (i = 0; i < n; i++) {
		compact(&v[i], &c);
		buf_init(&out, MAX_ENC);
		ck_assert_int_eq(cscompact_expand(c.data, c.len,
						  v[i].cs.env.author,
						  v[i].cs.env.prev, &out),
				 BS_OK);
		ck_assert_int_eq(changeset_decode(out.data, out.len, &cs),
				 BS_OK);
		ck_assert_int_eq(changeset_verify(&cs), BS_OK);
		/* another author */
		memcpy(other, v[i].cs.env.author, 32);
		other[0] ^= 1;
		buf_reset(&out);
		ck_assert_int_eq(cscompact_expand(c.data, c.len, other,
						  v[i].cs.env.prev, &out),
				 BS_OK);
		ck_assert_int_eq(changeset_decode(out.data, out.len, &cs),
				 BS_OK);
		ck_assert_int_ne(changeset_verify(&cs), BS_OK);
		/* another predecessor (when there is one) */
		if (v[i].cs.env.seq > 1) {
			memcpy(other, v[i].cs.env.prev, 32);
			other[31] ^= 0x80;
			buf_reset(&out);
			ck_assert_int_eq(cscompact_expand(c.data, c.len,
							  v[i].cs.env.author,
							  other, &out),
					 BS_OK);
			ck_assert_int_eq(changeset_decode(out.data, out.len,
							  &cs),
					 BS_OK);
			ck_assert_int_ne(changeset_verify(&cs), BS_OK);
		}
		/* the body's last byte cut off (nothing left of a one-byte
		 * body), or flipped */
		buf_reset(&out);
		if (v[i].cs.body_len == 1) {
			ck_assert_int_eq(cscompact_expand(c.data, c.len - 1,
							  v[i].cs.env.author,
							  v[i].cs.env.prev,
							  &out),
					 BS_ETRUNCATED);
		} else {
			ck_assert_int_eq(cscompact_expand(c.data, c.len - 1,
							  v[i].cs.env.author,
							  v[i].cs.env.prev,
							  &out),
					 BS_OK);
			ck_assert_int_eq(changeset_decode(out.data, out.len,
							  &cs),
					 BS_OK);
			ck_assert_int_ne(changeset_verify(&cs), BS_OK);
		}
		c.data[c.len - 1] ^= 1;
		buf_reset(&out);
		ck_assert_int_eq(cscompact_expand(c.data, c.len,
						  v[i].cs.env.author,
						  v[i].cs.env.prev, &out),
				 BS_OK);
		ck_assert_int_eq(changeset_decode(out.data, out.len, &cs),
				 BS_OK);
		ck_assert_int_ne(changeset_verify(&cs), BS_OK);
		buf_release(&out);
		buf_release(&c);
	}
	free(v);
}
END_TEST

/* A body over the limit is refused before anything is appended; and the
 * expansion stops at the output's cap with the out of memory status. */
START_TEST(limits)
{
	struct vec *v = calloc(8, sizeof *v);
	struct buf big, out;
	size_t head;

	ck_assert_ptr_nonnull(v);
	vectors_load(v, 8);
	compact(&v[0], &big);
	head = big.len - v[0].cs.body_len;
	big.len = head;
	big.max = head + CHANGESET_MAX_BODY + 1;
	{
		uint8_t *zeros = calloc(1, CHANGESET_MAX_BODY + 1);

		ck_assert_ptr_nonnull(zeros);
		buf_append(&big, zeros, CHANGESET_MAX_BODY + 1);
		free(zeros);
	}
	ck_assert_int_eq(big.status, BS_OK);
	expect_expand(&v[0], big.data, big.len, BS_ELIMIT);
	/* at the limit it expands, into a buffer big enough */
	buf_init(&out, 2 * CHANGESET_MAX_BODY);
	ck_assert_int_eq(cscompact_expand(big.data, big.len - 1,
					  v[0].cs.env.author, v[0].cs.env.prev,
					  &out),
			 BS_OK);
	buf_release(&out);
	/* into a buffer too small: its status, not a partial success */
	buf_init(&out, 100);
	ck_assert_int_ne(cscompact_expand(big.data, big.len - 1,
					  v[0].cs.env.author, v[0].cs.env.prev,
					  &out),
			 BS_OK);
	buf_release(&out);
	buf_release(&big);
	free(v);
}
END_TEST

static Suite *cscompact_suite(void)
{
	Suite *s = suite_create("cscompact");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, kat_round_trip);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, wrong_context_fails_signature);
	tcase_add_test(tc, limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cscompact_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
