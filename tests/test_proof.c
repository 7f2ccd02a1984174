/* test_proof.c - Check suite for protocol/proof, the wire encoding of
 * Merkle proofs: known answers (tests/vectors/proof-kat.txt), random round
 * trips, and every rejection of the strict decoder. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mem.h"
#include "merkle.h"
#include "proof.h"
#include "wire.h"

#define H HASH_BYTES

static void hex_decode(uint8_t *out, size_t n, const char *hex)
{
	size_t i;

	ck_assert_msg(strlen(hex) == 2 * n, "bad hex length: %s", hex);
	for (i = 0; i < n; i++) {
		unsigned x;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &x), 1);
		out[i] = (uint8_t)x;
	}
}

static uint64_t rand64(unsigned *seed)
{
	return ((uint64_t)rand_r(seed) << 62) ^ ((uint64_t)rand_r(seed) << 31) ^
	       (uint64_t)rand_r(seed);
}

static void assert_proof_eq(const struct proof *a, const struct proof *b)
{
	ck_assert_int_eq(a->kind, b->kind);
	ck_assert_uint_eq(a->first, b->first);
	ck_assert_uint_eq(a->second, b->second);
	ck_assert_uint_eq(a->path.count, b->path.count);
	if (a->path.count)
		ck_assert_mem_eq(a->path.hash, b->path.hash, a->path.count * H);
}

static void assert_zeroed(const struct proof *p)
{
	static const struct proof zero;

	ck_assert_mem_eq(p, &zero, sizeof zero);
}

/* Encodes p into a fresh buffer the caller releases. */
static void encode(const struct proof *p, struct buf *b)
{
	buf_init(b, PROOF_MAX_ENCODED);
	ck_assert_int_eq(proof_encode(p, b), BS_OK);
}

/* A valid proof of random kind and sizes (of every magnitude up to the
 * limit), with the hash count its sizes imply and random hashes. */
static void random_proof(struct proof *p, unsigned *seed)
{
	unsigned bits = (unsigned)rand_r(seed) % 64 + 1;
	uint64_t second = rand64(seed) >> (64 - bits);
	size_t i, j;

	memset(p, 0, sizeof *p);
	if (rand_r(seed) % 8 == 0)
		second = MERKLE_MAX_SIZE - (uint64_t)rand_r(seed) % 3;
	if (second > MERKLE_MAX_SIZE)
		second = MERKLE_MAX_SIZE;
	if (rand_r(seed) % 2) {
		p->kind = PROOF_INCLUSION;
		if (second == 0)
			second = 1;
		p->first = rand64(seed) % second;
		p->path.count = merkle_inclusion_length(p->first, second);
	} else {
		p->kind = PROOF_CONSISTENCY;
		p->first = rand64(seed) % (second + 1);
		p->path.count = merkle_consistency_length(p->first, second);
	}
	p->second = second;
	for (i = 0; i < p->path.count; i++)
		for (j = 0; j < H; j++)
			p->path.hash[i][j] = (uint8_t)rand_r(seed);
}

/* ---- known answers ---------------------------------------------------- */

#define KAT_MAX 32

struct kat {
	struct proof p;
	uint8_t enc[PROOF_MAX_ENCODED];
	size_t len;
};

static struct kat kats[KAT_MAX];
static size_t nkats;

static void kats_load(void)
{
	const char *dir = getenv("BRANCHSYNC_VECTORS");
	char path[4096], *line = NULL, *save, *tok;
	size_t cap = 0;
	int want_encoding = 0;
	FILE *f;

	if (nkats)
		return;
	ck_assert_msg(dir != NULL, "BRANCHSYNC_VECTORS is not set");
	snprintf(path, sizeof path, "%s/proof-kat.txt", dir);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (getline(&line, &cap, f) != -1) {
		tok = strtok_r(line, " \t\r\n", &save);
		if (!tok || tok[0] == '#')
			continue;
		if (strcmp(tok, "proof") == 0) {
			struct proof *p;

			ck_assert(!want_encoding);
			ck_assert_uint_lt(nkats, KAT_MAX);
			p = &kats[nkats].p;
			memset(p, 0, sizeof *p);
			p->kind = (enum proof_kind)strtoul(
			    strtok_r(NULL, " \t\r\n", &save), NULL, 10);
			p->first = strtoull(strtok_r(NULL, " \t\r\n", &save),
					    NULL, 10);
			p->second = strtoull(strtok_r(NULL, " \t\r\n", &save),
					     NULL, 10);
			while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
				ck_assert_uint_lt(p->path.count,
						  MERKLE_MAX_PROOF);
				hex_decode(p->path.hash[p->path.count++], H,
					   tok);
			}
			want_encoding = 1;
		} else if (strcmp(tok, "encoding") == 0) {
			ck_assert(want_encoding);
			tok = strtok_r(NULL, " \t\r\n", &save);
			ck_assert_ptr_nonnull(tok);
			kats[nkats].len = strlen(tok) / 2;
			ck_assert_uint_le(kats[nkats].len, PROOF_MAX_ENCODED);
			hex_decode(kats[nkats].enc, kats[nkats].len, tok);
			nkats++;
			want_encoding = 0;
		} else {
			ck_abort_msg("unknown record %s in %s", tok, path);
		}
	}
	free(line);
	fclose(f);
	ck_assert(!want_encoding);
	ck_assert_uint_ge(nkats, 7);
}

START_TEST(known_answers)
{
	size_t i;

	kats_load();
	for (i = 0; i < nkats; i++) {
		struct proof back;
		struct buf b;

		encode(&kats[i].p, &b);
		ck_assert_uint_eq(b.len, kats[i].len);
		ck_assert_mem_eq(b.data, kats[i].enc, b.len);
		buf_release(&b);
		ck_assert_int_eq(proof_decode(kats[i].enc, kats[i].len, &back),
				 BS_OK);
		assert_proof_eq(&back, &kats[i].p);
	}
}
END_TEST

/* The first two answers are the published RFC 6962 proofs: once decoded
 * they verify against the published roots. */
START_TEST(known_answers_verify)
{
	static const uint8_t leaf5[] = {0x40, 0x41, 0x42, 0x43};
	uint8_t leaf[H], root6[H], root8[H];
	struct proof p;

	kats_load();
	hex_decode(
	    root6, H,
	    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef");
	hex_decode(
	    root8, H,
	    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
	merkle_leaf_hash(leaf, leaf5, sizeof leaf5);

	ck_assert_int_eq(proof_decode(kats[0].enc, kats[0].len, &p), BS_OK);
	ck_assert_int_eq(p.kind, PROOF_INCLUSION);
	ck_assert_int_eq(
	    merkle_verify_inclusion(leaf, p.first, p.second, &p.path, root8),
	    BS_OK);
	ck_assert_int_eq(proof_decode(kats[1].enc, kats[1].len, &p), BS_OK);
	ck_assert_int_eq(p.kind, PROOF_CONSISTENCY);
	ck_assert_int_eq(
	    merkle_verify_consistency(p.first, p.second, root6, root8, &p.path),
	    BS_OK);
}
END_TEST

/* ---- round trips ------------------------------------------------------ */

START_TEST(roundtrip_random)
{
	unsigned seed = 0x70726f66;
	int i;

	for (i = 0; i < 20000; i++) {
		struct proof p, back;
		struct buf b, b2;

		random_proof(&p, &seed);
		encode(&p, &b);
		ck_assert_uint_eq(b.len, 1 + wire_varint_size(p.first) +
					     wire_varint_size(p.second) + 1 +
					     p.path.count * H);
		ck_assert_int_eq(proof_decode(b.data, b.len, &back), BS_OK);
		assert_proof_eq(&back, &p);
		encode(&back, &b2);
		ck_assert_uint_eq(b2.len, b.len);
		ck_assert_mem_eq(b2.data, b.data, b.len);
		buf_release(&b);
		buf_release(&b2);
	}
}
END_TEST

/* The longest proof there is: consistency 2^63 - 1 -> 2^63, 64 hashes. */
START_TEST(longest_proof)
{
	struct proof p, back;
	struct buf b;
	size_t i;

	memset(&p, 0, sizeof p);
	p.kind = PROOF_CONSISTENCY;
	p.first = MERKLE_MAX_SIZE - 1;
	p.second = MERKLE_MAX_SIZE;
	p.path.count = MERKLE_MAX_PROOF;
	for (i = 0; i < MERKLE_MAX_PROOF; i++)
		memset(p.path.hash[i], (int)i, H);
	encode(&p, &b);
	ck_assert_uint_eq(b.len, 1 + 9 + 10 + 1 + MERKLE_MAX_PROOF * H);
	ck_assert_uint_le(b.len, PROOF_MAX_ENCODED);
	ck_assert_int_eq(proof_decode(b.data, b.len, &back), BS_OK);
	assert_proof_eq(&back, &p);
	buf_release(&b);
}
END_TEST

/* ---- rejections ------------------------------------------------------- */

START_TEST(truncated_at_every_byte)
{
	unsigned seed = 7;
	size_t i, n;
	int t;

	kats_load();
	for (i = 0; i < nkats; i++)
		for (n = 0; n < kats[i].len; n++) {
			struct proof p;

			memset(&p, 0xa5, sizeof p);
			ck_assert_int_eq(proof_decode(kats[i].enc, n, &p),
					 BS_ETRUNCATED);
			assert_zeroed(&p);
		}
	for (t = 0; t < 200; t++) {
		struct proof p, back;
		struct buf b;

		random_proof(&p, &seed);
		encode(&p, &b);
		for (n = 0; n < b.len; n++)
			ck_assert_int_eq(proof_decode(b.data, n, &back),
					 BS_ETRUNCATED);
		buf_release(&b);
	}
}
END_TEST

START_TEST(trailing_bytes)
{
	size_t i;
	int v;

	kats_load();
	for (i = 0; i < nkats; i++)
		for (v = 0; v < 256; v += 85) {
			uint8_t in[PROOF_MAX_ENCODED + 1];
			struct proof p;

			memcpy(in, kats[i].enc, kats[i].len);
			in[kats[i].len] = (uint8_t)v;
			ck_assert_int_eq(proof_decode(in, kats[i].len + 1, &p),
					 BS_ETRAILING);
			assert_zeroed(&p);
		}
}
END_TEST

/* Builds kind, the three varints (each possibly in an overlong form given
 * as raw bytes), then n hashes of zeros. */
static size_t build(uint8_t *out, uint8_t kind, const uint8_t *v1, size_t l1,
		    const uint8_t *v2, size_t l2, const uint8_t *v3, size_t l3,
		    size_t n)
{
	size_t len = 0;

	out[len++] = kind;
	memcpy(out + len, v1, l1);
	len += l1;
	memcpy(out + len, v2, l2);
	len += l2;
	memcpy(out + len, v3, l3);
	len += l3;
	memset(out + len, 0, n * H);
	return len + n * H;
}

START_TEST(overlong_varints)
{
	/* inclusion 1 in 3: 2 hashes. */
	static const uint8_t one[] = {0x01}, three[] = {0x03}, two[] = {0x02};
	static const uint8_t one_long[] = {0x81, 0x00};
	static const uint8_t three_long[] = {0x83, 0x80, 0x00};
	static const uint8_t two_long[] = {0x82, 0x00};
	static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					 0x80, 0x80, 0x80, 0x81, 0x00};
	static const uint8_t too_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
					  0xff, 0xff, 0xff, 0xff, 0x02};
	uint8_t in[64 + 66 * H];
	struct proof p;
	size_t n;

	n = build(in, 1, one, 1, three, 1, two, 1, 2);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_OK);
	n = build(in, 1, one_long, 2, three, 1, two, 1, 2);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_EOVERLONG);
	assert_zeroed(&p);
	n = build(in, 1, one, 1, three_long, 3, two, 1, 2);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_EOVERLONG);
	n = build(in, 1, one, 1, three, 1, two_long, 2, 2);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_EOVERLONG);
	n = build(in, 1, eleven, sizeof eleven, three, 1, two, 1, 2);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_EOVERLONG);
	n = build(in, 2, one, 1, too_big, sizeof too_big, two, 1, 2);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_EOVERLONG);
}
END_TEST

START_TEST(count_limit)
{
	static const uint8_t zero[] = {0x00},
			     big[] = {0x80, 0x80, 0x80, 0x80, 0x80,
				      0x80, 0x80, 0x80, 0x80, 0x01};
	uint8_t in[64 + 66 * H], c[WIRE_VARINT_MAX];
	size_t n, cl;
	struct proof p;

	/* 65 hashes, present or not: over the limit before anything is
	 * read into the fixed array. */
	cl = wire_varint_encode(65, c);
	n = build(in, 2, zero, 1, zero, 1, c, cl, 65);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_ELIMIT);
	assert_zeroed(&p);
	n = build(in, 2, zero, 1, zero, 1, c, cl, 0);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_ELIMIT);
	n = build(in, 2, zero, 1, zero, 1, big, sizeof big, 0);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_ELIMIT);
	/* 64 is within the limit (and then wrong for these sizes). */
	cl = wire_varint_encode(64, c);
	n = build(in, 2, zero, 1, zero, 1, c, cl, 64);
	ck_assert_int_eq(proof_decode(in, n, &p), BS_EINVALID);
}
END_TEST

START_TEST(unknown_kind)
{
	static const uint8_t kinds[] = {0, 3, 4, 0x81, 0xff};
	uint8_t in[4] = {0, 0x00, 0x05, 0x00};
	struct proof p;
	size_t i;

	for (i = 0; i < sizeof kinds; i++) {
		in[0] = kinds[i];
		ck_assert_int_eq(proof_decode(in, sizeof in, &p), BS_EINVALID);
		assert_zeroed(&p);
	}
	in[0] = PROOF_CONSISTENCY;
	ck_assert_int_eq(proof_decode(in, sizeof in, &p), BS_OK);
}
END_TEST

/* Well-formed bytes that cannot be a proof. */
START_TEST(impossible_proofs)
{
	uint8_t in[64 + 66 * H], a[WIRE_VARINT_MAX], b[WIRE_VARINT_MAX],
	    c[WIRE_VARINT_MAX];
	struct proof p;
	size_t n, la, lb, lc;

#define TRY(kind, x, y, cnt, hashes, want)                                     \
	do {                                                                   \
		la = wire_varint_encode((x), a);                               \
		lb = wire_varint_encode((y), b);                               \
		lc = wire_varint_encode((cnt), c);                             \
		n = build(in, (kind), a, la, b, lb, c, lc, (hashes));          \
		ck_assert_int_eq(proof_decode(in, n, &p), (want));             \
	} while (0)

	TRY(1, 3, 8, 3, 3, BS_OK);
	TRY(1, 8, 8, 3, 3, BS_EINVALID); /* index == size */
	TRY(1, 9, 8, 3, 3, BS_EINVALID); /* index > size */
	TRY(1, 0, 0, 0, 0, BS_EINVALID); /* empty tree has no leaf */
	TRY(1, 3, 8, 2, 2, BS_EINVALID); /* a hash short */
	TRY(1, 3, 8, 4, 4, BS_EINVALID); /* a hash extra */
	TRY(1, 0, 1, 0, 0, BS_OK);
	TRY(1, 0, 1, 1, 1, BS_EINVALID);
	TRY(2, 6, 8, 3, 3, BS_OK);
	TRY(2, 9, 8, 3, 3, BS_EINVALID); /* old > new */
	TRY(2, 9, 8, 0, 0, BS_EINVALID); /* old > new, no hashes either */
	TRY(1, 8, 8, 0, 0, BS_EINVALID); /* index == size, no hashes */
	TRY(2, 6, 8, 2, 2, BS_EINVALID);
	TRY(2, 4, 8, 1, 1, BS_OK); /* power-of-two old tree */
	TRY(2, 4, 8, 2, 2, BS_EINVALID);
	TRY(2, 0, 8, 1, 1, BS_EINVALID); /* from empty: no hashes */
	TRY(2, 8, 8, 1, 1, BS_EINVALID); /* equal sizes: no hashes */
	TRY(2, 0, MERKLE_MAX_SIZE, 0, 0, BS_OK);
	TRY(2, 0, MERKLE_MAX_SIZE + 1, 0, 0, BS_ELIMIT);
	TRY(1, 0, UINT64_MAX, 63, 63, BS_ELIMIT);
#undef TRY
}
END_TEST

START_TEST(encoder_refuses)
{
	struct proof p;
	struct buf b;

	memset(&p, 0, sizeof p);
	p.kind = PROOF_INCLUSION;
	p.first = 3;
	p.second = 8;
	p.path.count = 3;
	buf_init(&b, PROOF_MAX_ENCODED);
	ck_assert_int_eq(proof_encode(&p, &b), BS_OK);
	buf_reset(&b);

	p.kind = (enum proof_kind)0;
	ck_assert_int_eq(proof_encode(&p, &b), BS_EINVALID);
	p.kind = (enum proof_kind)3;
	ck_assert_int_eq(proof_encode(&p, &b), BS_EINVALID);
	p.kind = PROOF_INCLUSION;
	p.path.count = 2;
	ck_assert_int_eq(proof_encode(&p, &b), BS_EINVALID);
	p.path.count = MERKLE_MAX_PROOF + 1;
	ck_assert_int_eq(proof_encode(&p, &b), BS_ELIMIT);
	p.path.count = 3;
	p.first = 8;
	ck_assert_int_eq(proof_encode(&p, &b), BS_EINVALID);
	p.kind = PROOF_CONSISTENCY;
	p.first = 9;
	ck_assert_int_eq(proof_encode(&p, &b), BS_EINVALID);
	p.first = 0;
	p.second = MERKLE_MAX_SIZE + 1;
	p.path.count = 0;
	ck_assert_int_eq(proof_encode(&p, &b), BS_ELIMIT);
	/* Nothing was written by any refusal. */
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(b.status, BS_OK);
	buf_release(&b);

	/* The buffer's own failures come back. */
	p.kind = PROOF_INCLUSION;
	p.first = 3;
	p.second = 8;
	p.path.count = 3;
	buf_init(&b, 10);
	ck_assert_int_eq(proof_encode(&p, &b), BS_ELIMIT);
	buf_release(&b);
	buf_init(&b, PROOF_MAX_ENCODED);
	mem_fail_after(0);
	ck_assert_int_eq(proof_encode(&p, &b), BS_ENOMEM);
	mem_fail_reset();
	buf_release(&b);
}
END_TEST

static Suite *proof_suite(void)
{
	Suite *s = suite_create("proof");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, known_answers);
	tcase_add_test(tc, known_answers_verify);
	tcase_add_test(tc, roundtrip_random);
	tcase_add_test(tc, longest_proof);
	tcase_add_test(tc, truncated_at_every_byte);
	tcase_add_test(tc, trailing_bytes);
	tcase_add_test(tc, overlong_varints);
	tcase_add_test(tc, count_limit);
	tcase_add_test(tc, unknown_kind);
	tcase_add_test(tc, impossible_proofs);
	tcase_add_test(tc, encoder_refuses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proof_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
