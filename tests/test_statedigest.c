/* test_statedigest.c - Check suite for protocol/statedigest: the server's
 * signed state digests against known-answer vectors (tests/vectors/
 * statedigest-kat.txt), round trips, and malformed or mis-signed input with
 * the exact bs_status each must give. Not for computing the digest of the
 * records (shared/digest.c and its tests). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "kat.h"
#include "mem.h"
#include "sign.h"
#include "statedigest.h"
#include "wire.h"

/* Offsets of the fixed-position fields (FORMAT.md, "State digests"). */
#define OFF_VERSION 4
#define OFF_ORIGIN 5 /* origin length varint */
#define ENC_MAX 1024

static const char digest_label[] = "branchsync/digest/v1";

/* S: the server (seed 01..20, the vectors' key); B: seed 21..40. */
static uint8_t pk_s[SIGN_PUBLIC_BYTES], sk_s[SIGN_SECRET_BYTES];
static uint8_t pk_b[SIGN_PUBLIC_BYTES], sk_b[SIGN_SECRET_BYTES];

static void keys_init(void)
{
	ck_assert_int_eq(sign_init(), BS_OK);
	kat_keypair(1, pk_s, sk_s);
	kat_keypair(0x21, pk_b, sk_b);
}

/* The known-answer file (read-only; see its header). */
#define VECTORS "statedigest-kat.txt"

struct kat_sd {
	uint8_t seed[32], public[32], digest[32], sig[SIGN_BYTES];
	uint8_t origin[256];
	size_t origin_len;
	uint64_t log_size, time_ms;
	uint8_t unsigned_[ENC_MAX], message[ENC_MAX], encoded[ENC_MAX];
	size_t unsigned_len, msg_len, enc_len;
};

static void kat_sd_load(const char *name, struct kat_sd *k)
{
	memset(k, 0, sizeof *k);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "seed", k->seed, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "public", k->public, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "digest", k->digest, 32), 32);
	ck_assert_uint_eq(
	    kat_hex(VECTORS, name, "signature", k->sig, SIGN_BYTES),
	    SIGN_BYTES);
	k->origin_len =
	    kat_hex(VECTORS, name, "origin", k->origin, sizeof k->origin);
	k->log_size = kat_u64(VECTORS, name, "log_size");
	k->time_ms = kat_u64(VECTORS, name, "time_ms");
	k->unsigned_len =
	    kat_hex(VECTORS, name, "unsigned", k->unsigned_, ENC_MAX);
	k->msg_len = kat_hex(VECTORS, name, "message", k->message, ENC_MAX);
	k->enc_len = kat_hex(VECTORS, name, "encoded", k->encoded, ENC_MAX);
}

/* ---- an encoder of our own, written from FORMAT.md, with no checks ---- */

struct raw_sd {
	char magic[4];
	uint8_t version;
	const void *origin;
	size_t origin_len;
	uint64_t log_size;
	uint8_t digest[32];
	uint64_t time_ms;
};

static size_t t_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static size_t raw_statedigest(const struct raw_sd *e, uint8_t *out)
{
	size_t n = 0;
	int i;

	memcpy(out, e->magic, 4);
	n += 4;
	out[n++] = e->version;
	n += t_varint(out + n, e->origin_len);
	memcpy(out + n, e->origin, e->origin_len);
	n += e->origin_len;
	n += t_varint(out + n, e->log_size);
	memcpy(out + n, e->digest, 32);
	n += 32;
	for (i = 0; i < 8; i++)
		out[n++] = (uint8_t)(e->time_ms >> (56 - 8 * i));
	return n;
}

static void raw_sd_default(struct raw_sd *e)
{
	memset(e, 0, sizeof *e);
	memcpy(e->magic, "BSSD", 4);
	e->version = 1;
	e->origin = "district-7";
	e->origin_len = 10;
	e->log_size = 5;
	memset(e->digest, 0x3c, 32);
	e->time_ms = 1767225600000ull;
}

static size_t signed_sd(const struct raw_sd *e, uint8_t *out)
{
	size_t n = raw_statedigest(e, out);

	ck_assert_int_eq(sign_detached(SIGN_DIGEST, out, n, sk_s, out + n),
			 BS_OK);
	return n + SIGN_BYTES;
}

/* Opens an exact-size heap copy under the server key. */
static enum bs_status sd_open(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct statedigest sd;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = statedigest_open(copy, len, pk_s, &sd);
	free(copy);
	return rc;
}

/* ---- known answers ---- */

START_TEST(kat_statedigests)
{
	char names[8][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	ck_assert_uint_ge(count, 3);
	for (v = 0; v < count; v++) {
		struct kat_sd k;
		struct statedigest sd, dec;
		struct raw_sd re;
		struct buf out;
		uint8_t pk[32], sk[64], raw[ENC_MAX];
		size_t llen = sizeof digest_label;

		kat_sd_load(names[v], &k);
		crypto_sign_seed_keypair(pk, sk, k.seed);
		ck_assert_mem_eq(pk, k.public, 32);
		ck_assert_uint_le(k.origin_len, CHECKPOINT_ORIGIN_MAX);

		/* The file agrees with itself. */
		ck_assert_uint_eq(k.msg_len, llen + k.unsigned_len);
		ck_assert_mem_eq(k.message, digest_label, llen);
		ck_assert_mem_eq(k.message + llen, k.unsigned_, k.unsigned_len);
		ck_assert_int_eq(crypto_sign_verify_detached(k.sig, k.message,
							     k.msg_len, pk),
				 0);
		ck_assert_uint_eq(k.enc_len, k.unsigned_len + SIGN_BYTES);
		ck_assert_mem_eq(k.encoded, k.unsigned_, k.unsigned_len);
		ck_assert_mem_eq(k.encoded + k.unsigned_len, k.sig, SIGN_BYTES);

		memset(&sd, 0, sizeof sd);
		memcpy(sd.origin, k.origin, k.origin_len);
		sd.log_size = k.log_size;
		memcpy(sd.digest, k.digest, 32);
		sd.time_ms = k.time_ms;
		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(statedigest_sign(&sd, sk, &out), BS_OK);
		ck_assert_uint_eq(out.len, k.enc_len);
		ck_assert_mem_eq(out.data, k.encoded, k.enc_len);
		ck_assert_mem_eq(sd.sig, k.sig, SIGN_BYTES);
		buf_release(&out);

		raw_sd_default(&re);
		re.origin = k.origin;
		re.origin_len = k.origin_len;
		re.log_size = k.log_size;
		memcpy(re.digest, k.digest, 32);
		re.time_ms = k.time_ms;
		ck_assert_uint_eq(raw_statedigest(&re, raw), k.unsigned_len);
		ck_assert_mem_eq(raw, k.unsigned_, k.unsigned_len);

		ck_assert_int_eq(statedigest_open(k.encoded, k.enc_len, k.public,
						  &dec),
				 BS_OK);
		ck_assert_uint_eq(strlen(dec.origin), k.origin_len);
		ck_assert_mem_eq(dec.origin, k.origin, k.origin_len);
		ck_assert_uint_eq(dec.log_size, k.log_size);
		ck_assert_mem_eq(dec.digest, k.digest, 32);
		ck_assert_uint_eq(dec.time_ms, k.time_ms);
		ck_assert_mem_eq(dec.sig, k.sig, SIGN_BYTES);
		ck_assert_int_eq(statedigest_open(k.encoded, k.enc_len, pk_b,
						  &dec),
				 BS_ESIGNATURE);
	}
}
END_TEST

/* ---- round trips ---- */

static uint64_t rand64(unsigned *seed)
{
	uint64_t v = ((uint64_t)rand_r(seed) << 62) ^
		     ((uint64_t)rand_r(seed) << 31) ^ (uint64_t)rand_r(seed);

	return v >> (rand_r(seed) % 64);
}

START_TEST(roundtrip_random)
{
	unsigned seed = 4711;
	int i;

	keys_init();
	for (i = 0; i < 400; i++) {
		struct statedigest sd, dec;
		struct raw_sd re;
		struct buf out;
		uint8_t raw[ENC_MAX];
		size_t olen = 1 + (size_t)rand_r(&seed) % CHECKPOINT_ORIGIN_MAX;
		size_t j, want;

		memset(&sd, 0, sizeof sd);
		for (j = 0; j < olen; j++) {
			unsigned c = 0x20 + (unsigned)rand_r(&seed) % 0xe0;

			sd.origin[j] = (char)(c == 0x7f ? 'x' : c);
		}
		sd.log_size = i % 9 == 0 ? UINT64_MAX : rand64(&seed);
		for (j = 0; j < 32; j++)
			sd.digest[j] = (uint8_t)rand_r(&seed);
		sd.time_ms = rand64(&seed);
		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_OK);
		want = 4 + 1 + wire_varint_size(olen) + olen +
		       wire_varint_size(sd.log_size) + 32 + 8;
		ck_assert_uint_eq(out.len, want + SIGN_BYTES);
		ck_assert_uint_le(out.len, STATEDIGEST_SIGNED_MAX);
		raw_sd_default(&re);
		re.origin = sd.origin;
		re.origin_len = olen;
		re.log_size = sd.log_size;
		memcpy(re.digest, sd.digest, 32);
		re.time_ms = sd.time_ms;
		ck_assert_uint_eq(raw_statedigest(&re, raw), want);
		ck_assert_mem_eq(out.data, raw, want);
		ck_assert_mem_eq(out.data + want, sd.sig, SIGN_BYTES);

		ck_assert_int_eq(statedigest_open(out.data, out.len, pk_s, &dec),
				 BS_OK);
		ck_assert_str_eq(dec.origin, sd.origin);
		ck_assert_uint_eq(dec.log_size, sd.log_size);
		ck_assert_mem_eq(dec.digest, sd.digest, 32);
		ck_assert_uint_eq(dec.time_ms, sd.time_ms);
		buf_release(&out);
	}
}
END_TEST

START_TEST(largest)
{
	struct statedigest sd;
	struct buf out;

	keys_init();
	memset(&sd, 0, sizeof sd);
	memset(sd.origin, 'o', CHECKPOINT_ORIGIN_MAX);
	sd.log_size = UINT64_MAX;
	sd.time_ms = UINT64_MAX;
	buf_init(&out, ENC_MAX);
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_OK);
	ck_assert_uint_eq(out.len, STATEDIGEST_SIGNED_MAX);
	ck_assert_uint_eq(out.len, 249);
	ck_assert_int_eq(sd_open(out.data, out.len), BS_OK);
	buf_release(&out);
}
END_TEST

/* ---- malformed input, one rule at a time ---- */

START_TEST(truncated_at_every_offset)
{
	char names[8][32];
	size_t count, v, cut;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_sd k;

		kat_sd_load(names[v], &k);
		ck_assert_int_eq(sd_open(k.encoded, k.enc_len), BS_OK);
		for (cut = 0; cut < k.enc_len; cut++)
			ck_assert_msg(sd_open(k.encoded, cut) == BS_ETRUNCATED,
				      "%s cut at %zu", names[v], cut);
	}
}
END_TEST

START_TEST(trailing_bytes)
{
	char names[8][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_sd k;
		uint8_t in[ENC_MAX + 2];

		kat_sd_load(names[v], &k);
		memcpy(in, k.encoded, k.enc_len);
		in[k.enc_len] = 0x00;
		in[k.enc_len + 1] = 0xff;
		ck_assert_int_eq(sd_open(in, k.enc_len + 1), BS_ETRAILING);
		ck_assert_int_eq(sd_open(in, k.enc_len + 2), BS_ETRAILING);
	}
}
END_TEST

START_TEST(wrong_magic_and_version)
{
	static const uint8_t versions[] = {0, 2, 0x81, 0xff};
	struct kat_sd k;
	uint8_t in[ENC_MAX];
	size_t i;

	keys_init();
	kat_sd_load("sd-small", &k);
	for (i = 0; i < 4; i++) {
		memcpy(in, k.encoded, k.enc_len);
		in[i] ^= 0x20;
		ck_assert_int_eq(sd_open(in, k.enc_len), BS_EMAGIC);
	}
	memcpy(in, k.encoded, k.enc_len);
	memcpy(in, "BSCP", 4);
	ck_assert_int_eq(sd_open(in, k.enc_len), BS_EMAGIC);
	for (i = 0; i < sizeof versions; i++) {
		memcpy(in, k.encoded, k.enc_len);
		in[OFF_VERSION] = versions[i];
		ck_assert_int_eq(sd_open(in, k.enc_len), BS_EVERSION);
	}
	memcpy(in, "XXXX", 4);
	in[OFF_VERSION] = 9;
	ck_assert_int_eq(sd_open(in, 5), BS_EMAGIC);
	memcpy(in, "BSSD", 4);
	ck_assert_int_eq(sd_open(in, 5), BS_EVERSION);
	ck_assert_int_eq(sd_open(in, 4), BS_ETRUNCATED);
}
END_TEST

#define S(s) s, sizeof s - 1

START_TEST(origin_rules)
{
	static const struct {
		const char *origin;
		size_t len;
		enum bs_status want;
	} cases[] = {
		{S(""), BS_EINVALID},       {S("\0"), BS_EINVALID},
		{S("a\0"), BS_EINVALID},    {S("\x01"), BS_EINVALID},
		{S("d\n7"), BS_EINVALID},   {S("\t"), BS_EINVALID},
		{S("\x1f"), BS_EINVALID},   {S("d\x7f"), BS_EINVALID},
		{S("d"), BS_OK},            {S(" "), BS_OK},
		{S("~"), BS_OK},            {S("\x80\xff"), BS_OK},
		{S("\xe9\xbb\x84 d/7"), BS_OK},
	};
	char text[300];
	struct raw_sd e;
	uint8_t in[ENC_MAX];
	size_t i, len;

	keys_init();
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		raw_sd_default(&e);
		e.origin = cases[i].origin;
		e.origin_len = cases[i].len;
		len = signed_sd(&e, in);
		ck_assert_msg(sd_open(in, len) == cases[i].want, "case %zu", i);
	}
	/* The origin is judged as soon as it is read. */
	raw_sd_default(&e);
	e.origin = "a\nb";
	e.origin_len = 3;
	len = raw_statedigest(&e, in);
	ck_assert_int_eq(sd_open(in, OFF_ORIGIN + 4), BS_EINVALID);

	/* Lengths: 128 fine, 129 and more over the limit. */
	memset(text, 'o', sizeof text);
	raw_sd_default(&e);
	e.origin = text;
	e.origin_len = CHECKPOINT_ORIGIN_MAX;
	len = signed_sd(&e, in);
	ck_assert_int_eq(sd_open(in, len), BS_OK);
	e.origin_len = CHECKPOINT_ORIGIN_MAX + 1;
	len = signed_sd(&e, in);
	ck_assert_int_eq(sd_open(in, len), BS_ELIMIT);
	ck_assert_int_eq(sd_open(in, OFF_ORIGIN + 2), BS_ELIMIT);
	e.origin_len = sizeof text;
	len = signed_sd(&e, in);
	ck_assert_int_eq(sd_open(in, len), BS_ELIMIT);
}
END_TEST

/* Replaces `old_len` bytes at `off` with `rep`. */
static size_t splice(const uint8_t *in, size_t len, size_t off, size_t old_len,
		     const uint8_t *rep, size_t rep_len, uint8_t *out)
{
	memcpy(out, in, off);
	memcpy(out + off, rep, rep_len);
	memcpy(out + off + rep_len, in + off + old_len, len - off - old_len);
	return len - old_len + rep_len;
}

START_TEST(overlong_varints)
{
	static const uint8_t five2[] = {0x85, 0x00};
	static const uint8_t five3[] = {0x85, 0x80, 0x00};
	static const uint8_t ten2[] = {0x8a, 0x00};
	static const uint8_t tenth_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0x02};
	static const uint8_t eleven[] = {0x85, 0x80, 0x80, 0x80, 0x80, 0x80,
					 0x80, 0x80, 0x80, 0x80, 0x00};
	static const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff,
				      0xff, 0xff, 0xff, 0xff, 0x01};
	struct raw_sd e;
	uint8_t in[ENC_MAX], out[ENC_MAX];
	size_t len, n, off;

	keys_init();
	raw_sd_default(&e);
	len = signed_sd(&e, in);
	ck_assert_int_eq(sd_open(in, len), BS_OK);
	ck_assert_uint_eq(in[OFF_ORIGIN], 10);
	n = splice(in, len, OFF_ORIGIN, 1, ten2, sizeof ten2, out);
	ck_assert_int_eq(sd_open(out, n), BS_EOVERLONG);
	off = OFF_ORIGIN + 1 + 10;
	ck_assert_uint_eq(in[off], 5); /* log_size */
	n = splice(in, len, off, 1, five2, sizeof five2, out);
	ck_assert_int_eq(sd_open(out, n), BS_EOVERLONG);
	n = splice(in, len, off, 1, five3, sizeof five3, out);
	ck_assert_int_eq(sd_open(out, n), BS_EOVERLONG);
	n = splice(in, len, off, 1, eleven, sizeof eleven, out);
	ck_assert_int_eq(sd_open(out, n), BS_EOVERLONG);
	n = splice(in, len, off, 1, tenth_big, sizeof tenth_big, out);
	ck_assert_int_eq(sd_open(out, n), BS_EOVERLONG);
	/* 2^64 - 1 in its one form is a valid size (signature aside). */
	n = splice(in, len, off, 1, max, sizeof max, out);
	ck_assert_int_eq(sd_open(out, n), BS_ESIGNATURE);
}
END_TEST

/* The signer refuses what the opener refuses, and leaves the buffer. */
START_TEST(signer_refuses_bad_origin)
{
	struct statedigest sd;
	struct buf out;

	keys_init();
	buf_init(&out, ENC_MAX);
	buf_append(&out, "pre", 3);
	memset(&sd, 0, sizeof sd);
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_EINVALID);
	strcpy(sd.origin, "a\tb");
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_EINVALID);
	strcpy(sd.origin, "\x7f");
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_EINVALID);
	/* All 129 bytes used, no terminator: refused, not read past. */
	memset(sd.origin, 'o', sizeof sd.origin);
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_EINVALID);
	ck_assert_uint_eq(out.len, 3);
	ck_assert_int_eq(out.status, BS_OK);
	sd.origin[CHECKPOINT_ORIGIN_MAX] = '\0';
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_OK);
	ck_assert_int_eq(sd_open(out.data + 3, out.len - 3), BS_OK);
	buf_release(&out);
}
END_TEST

START_TEST(resource_failures)
{
	struct statedigest sd;
	struct kat_sd k;
	struct buf out;
	uint8_t pad[512] = {0};

	keys_init();
	memset(&sd, 0, sizeof sd);
	strcpy(sd.origin, "district-7");
	buf_init(&out, ENC_MAX);
	buf_append(&out, pad, sizeof pad);
	buf_reset(&out); /* grown memory, so only the signer allocates */
	buf_append(&out, "zz", 2);
	mem_fail_after(0);
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_ENOMEM);
	mem_fail_reset();
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq(out.status, BS_OK);
	buf_release(&out);

	buf_init(&out, 100);
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_ELIMIT);
	ck_assert_int_eq(out.status, BS_ELIMIT);
	buf_release(&out);

	kat_sd_load("sd-small", &k);
	mem_fail_after(0);
	ck_assert_int_eq(sd_open(k.encoded, k.enc_len - 1), BS_ETRUNCATED);
	{
		struct statedigest dec;

		ck_assert_int_eq(statedigest_open(k.encoded, k.enc_len, pk_s,
						  &dec),
				 BS_ENOMEM);
	}
	mem_fail_reset();
	ck_assert_int_eq(sd_open(k.encoded, k.enc_len), BS_OK);
}
END_TEST

/* ---- signatures ---- */

START_TEST(signature_flips)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	struct kat_sd k;
	uint8_t in[ENC_MAX];
	size_t i, m;

	keys_init();
	kat_sd_load("sd-small", &k);
	for (i = 0; i < SIGN_BYTES; i++) {
		for (m = 0; m < sizeof masks; m++) {
			memcpy(in, k.encoded, k.enc_len);
			in[k.unsigned_len + i] ^= masks[m];
			ck_assert_int_eq(sd_open(in, k.enc_len), BS_ESIGNATURE);
		}
	}
}
END_TEST

START_TEST(malleated_signature_refused)
{
	static const uint8_t order[32] = {
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
		0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0x10,
	};
	struct kat_sd k;
	uint8_t in[ENC_MAX];
	unsigned carry = 0;
	size_t i;

	keys_init();
	kat_sd_load("sd-wide", &k);
	memcpy(in, k.encoded, k.enc_len);
	for (i = 0; i < 32; i++) {
		carry += in[k.unsigned_len + 32 + i] + order[i];
		in[k.unsigned_len + 32 + i] = (uint8_t)carry;
		carry >>= 8;
	}
	ck_assert_uint_eq(carry, 0);
	ck_assert_int_eq(sd_open(in, k.enc_len), BS_ESIGNATURE);
}
END_TEST

START_TEST(signature_under_other_labels)
{
	struct raw_sd e;
	uint8_t in[ENC_MAX + SIGN_BYTES], msg[ENC_MAX + 64], sig[SIGN_BYTES];
	size_t n, llen = strlen(digest_label);
	int kind;

	keys_init();
	ck_assert_str_eq(sign_label(SIGN_DIGEST), digest_label);
	raw_sd_default(&e);
	n = raw_statedigest(&e, in);
	for (kind = SIGN_CHANGESET; kind <= SIGN_DIGEST; kind++) {
		ck_assert_int_eq(sign_detached((enum sign_kind)kind, in, n, sk_s,
					       sig),
				 BS_OK);
		memcpy(in + n, sig, SIGN_BYTES);
		ck_assert_int_eq(sd_open(in, n + SIGN_BYTES),
				 kind == SIGN_DIGEST ? BS_OK : BS_ESIGNATURE);
	}
	ck_assert_int_eq(crypto_sign_detached(in + n, NULL, in, n, sk_s), 0);
	ck_assert_int_eq(sd_open(in, n + SIGN_BYTES), BS_ESIGNATURE);
	memcpy(msg, digest_label, llen);
	memcpy(msg + llen, in, n);
	ck_assert_int_eq(crypto_sign_detached(in + n, NULL, msg, llen + n, sk_s),
			 0);
	ck_assert_int_eq(sd_open(in, n + SIGN_BYTES), BS_ESIGNATURE);
	msg[llen] = 0x00;
	memcpy(msg + llen + 1, in, n);
	ck_assert_int_eq(crypto_sign_detached(in + n, NULL, msg, llen + 1 + n,
					      sk_s),
			 0);
	ck_assert_int_eq(sd_open(in, n + SIGN_BYTES), BS_OK);
}
END_TEST

/* A state digest and a checkpoint have the same layout after the magic,
 * and are signed by the same key: neither passes for the other. */
START_TEST(not_a_checkpoint)
{
	struct checkpoint cp, dec;
	struct statedigest sd;
	struct buf out;

	keys_init();
	memset(&cp, 0, sizeof cp);
	strcpy(cp.origin, "district-7");
	cp.size = 5;
	memset(cp.root, 0x3c, 32);
	cp.time_ms = 1767225600000ull;
	buf_init(&out, ENC_MAX);
	ck_assert_int_eq(checkpoint_sign(&cp, sk_s, &out), BS_OK);
	memcpy(out.data, "BSSD", 4);
	ck_assert_int_eq(sd_open(out.data, out.len), BS_ESIGNATURE);
	buf_reset(&out);

	memset(&sd, 0, sizeof sd);
	strcpy(sd.origin, "district-7");
	sd.log_size = 5;
	memset(sd.digest, 0x3c, 32);
	sd.time_ms = 1767225600000ull;
	ck_assert_int_eq(statedigest_sign(&sd, sk_s, &out), BS_OK);
	memcpy(out.data, "BSCP", 4);
	ck_assert_int_eq(checkpoint_decode(out.data, out.len, &dec), BS_OK);
	ck_assert_int_eq(checkpoint_verify(&dec, pk_s), BS_ESIGNATURE);
	buf_release(&out);
}
END_TEST

START_TEST(any_flip_is_caught)
{
	static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
	char names[8][32];
	size_t count, v, i, m;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_sd k;
		uint8_t in[ENC_MAX];

		kat_sd_load(names[v], &k);
		for (i = 0; i < k.enc_len; i++) {
			for (m = 0; m < sizeof masks; m++) {
				memcpy(in, k.encoded, k.enc_len);
				in[i] ^= masks[m];
				ck_assert_msg(sd_open(in, k.enc_len) != BS_OK,
					      "%s: flip %02x at %zu accepted",
					      names[v], masks[m], i);
			}
		}
	}
}
END_TEST

static Suite *statedigest_suite(void)
{
	Suite *s = suite_create("statedigest");
	TCase *kat = tcase_create("kat");
	TCase *rt = tcase_create("roundtrip");
	TCase *bad = tcase_create("malformed");
	TCase *sig = tcase_create("signature");

	tcase_add_test(kat, kat_statedigests);
	tcase_add_test(rt, roundtrip_random);
	tcase_add_test(rt, largest);
	tcase_add_test(bad, truncated_at_every_offset);
	tcase_add_test(bad, trailing_bytes);
	tcase_add_test(bad, wrong_magic_and_version);
	tcase_add_test(bad, origin_rules);
	tcase_add_test(bad, overlong_varints);
	tcase_add_test(bad, signer_refuses_bad_origin);
	tcase_add_test(bad, resource_failures);
	tcase_add_test(sig, signature_flips);
	tcase_add_test(sig, malleated_signature_refused);
	tcase_add_test(sig, signature_under_other_labels);
	tcase_add_test(sig, not_a_checkpoint);
	tcase_add_test(sig, any_flip_is_caught);
	suite_add_tcase(s, kat);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, sig);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(statedigest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
