/* test_enrollment.c - Check suite for protocol/enrollment: signed enrollments
 * and revocations against known-answer vectors (tests/vectors/
 * enrollment-kat.txt), round trips, and malformed or mis-signed input with
 * the exact bs_status each must give. Not for token handling (server/). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enrollment.h"
#include "kat.h"
#include "mem.h"
#include "sign.h"
#include "wire.h"

/* Offsets of the fixed-position fields (FORMAT.md, "Enrollments and
 * revocations"). */
#define OFF_VERSION 4
#define OFF_SCOPE 38 /* enrollment: scope length varint */
#define OFF_REASON 45 /* revocation: reason length varint */
#define ENC_MAX 1024

static const char enrollment_label[] = "branchsync/enrollment/v1";
static const char revocation_label[] = "branchsync/revocation/v1";

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
#define VECTORS "enrollment-kat.txt"

/* What every record has. */
struct kat_common {
	uint8_t seed[32], public[32], device[32], sig[SIGN_BYTES];
	uint64_t time_ms;
	uint8_t unsigned_[ENC_MAX], message[ENC_MAX], encoded[ENC_MAX];
	size_t unsigned_len, msg_len, enc_len;
};

static void kat_common_load(const char *name, struct kat_common *k)
{
	memset(k, 0, sizeof *k);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "seed", k->seed, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "public", k->public, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "device", k->device, 32), 32);
	ck_assert_uint_eq(
	    kat_hex(VECTORS, name, "signature", k->sig, SIGN_BYTES),
	    SIGN_BYTES);
	k->time_ms = kat_u64(VECTORS, name, "time_ms");
	k->unsigned_len =
	    kat_hex(VECTORS, name, "unsigned", k->unsigned_, ENC_MAX);
	k->msg_len = kat_hex(VECTORS, name, "message", k->message, ENC_MAX);
	k->enc_len = kat_hex(VECTORS, name, "encoded", k->encoded, ENC_MAX);
}

/* The file agrees with itself: message = label 0x00 unsigned, the
 * signature verifies, encoded = unsigned || signature. */
static void check_label_message(const struct kat_common *k, const char *label)
{
	size_t llen = strlen(label) + 1;

	ck_assert_uint_eq(k->msg_len, llen + k->unsigned_len);
	ck_assert_mem_eq(k->message, label, llen);
	ck_assert_mem_eq(k->message + llen, k->unsigned_, k->unsigned_len);
	ck_assert_int_eq(crypto_sign_verify_detached(k->sig, k->message,
						     k->msg_len, k->public),
			 0);
	ck_assert_uint_eq(k->enc_len, k->unsigned_len + SIGN_BYTES);
	ck_assert_mem_eq(k->encoded, k->unsigned_, k->unsigned_len);
	ck_assert_mem_eq(k->encoded + k->unsigned_len, k->sig, SIGN_BYTES);
}

/* ---- an encoder of our own, written from FORMAT.md, with no checks, so
 * tests can build the bytes the real encoder refuses to make ---- */

struct raw_en {
	char magic[4];
	uint8_t version;
	uint8_t device[32];
	uint8_t role;
	const char *scope;
	size_t scope_len;
	const char *name;
	size_t name_len;
	uint64_t time_ms;
};

struct raw_rv {
	char magic[4];
	uint8_t version;
	uint8_t device[32];
	uint64_t time_ms;
	const char *reason;
	size_t reason_len;
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

static size_t t_u64be(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
	return 8;
}

static size_t raw_enrollment(const struct raw_en *e, uint8_t *out)
{
	size_t n = 0;

	memcpy(out, e->magic, 4);
	n += 4;
	out[n++] = e->version;
	memcpy(out + n, e->device, 32);
	n += 32;
	out[n++] = e->role;
	n += t_varint(out + n, e->scope_len);
	memcpy(out + n, e->scope, e->scope_len);
	n += e->scope_len;
	n += t_varint(out + n, e->name_len);
	memcpy(out + n, e->name, e->name_len);
	n += e->name_len;
	return n + t_u64be(out + n, e->time_ms);
}

static size_t raw_revocation(const struct raw_rv *e, uint8_t *out)
{
	size_t n = 0;

	memcpy(out, e->magic, 4);
	n += 4;
	out[n++] = e->version;
	memcpy(out + n, e->device, 32);
	n += 32;
	n += t_u64be(out + n, e->time_ms);
	n += t_varint(out + n, e->reason_len);
	memcpy(out + n, e->reason, e->reason_len);
	return n + e->reason_len;
}

/* A valid branch enrollment of device B. */
static void raw_en_default(struct raw_en *e)
{
	memset(e, 0, sizeof *e);
	memcpy(e->magic, "BSEN", 4);
	e->version = 1;
	memcpy(e->device, pk_b, 32);
	e->role = ROLE_BRANCH;
	e->scope = "xh-042";
	e->scope_len = 6;
	e->name = "front desk";
	e->name_len = 10;
	e->time_ms = 1767225600000ull;
}

static void raw_rv_default(struct raw_rv *e)
{
	memset(e, 0, sizeof *e);
	memcpy(e->magic, "BSRV", 4);
	e->version = 1;
	memcpy(e->device, pk_b, 32);
	e->time_ms = 1769904000000ull;
	e->reason = "lost";
	e->reason_len = 4;
}

/* unsigned || sign(kind, unsigned) into out; returns the length. */
static size_t sign_raw(uint8_t *out, size_t n, enum sign_kind kind,
		       const uint8_t *sk)
{
	ck_assert_int_eq(sign_detached(kind, out, n, sk, out + n), BS_OK);
	return n + SIGN_BYTES;
}

static size_t signed_en(const struct raw_en *e, uint8_t *out)
{
	return sign_raw(out, raw_enrollment(e, out), SIGN_ENROLLMENT, sk_s);
}

static size_t signed_rv(const struct raw_rv *e, uint8_t *out)
{
	return sign_raw(out, raw_revocation(e, out), SIGN_REVOCATION, sk_s);
}

/* Opens an exact-size heap copy under the server key, so that ASan sees
 * any over-read. */
static enum bs_status en_open(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct enrollment en;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = enrollment_open(copy, len, pk_s, &en);
	free(copy);
	return rc;
}

static enum bs_status rv_open(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct revocation rv;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = revocation_open(copy, len, pk_s, &rv);
	free(copy);
	return rc;
}

/* Opens as the record's type says. */
static enum bs_status kat_open(const char *name, const uint8_t *p, size_t len)
{
	return kat_is(VECTORS, name, "type", "enrollment") ? en_open(p, len)
						  : rv_open(p, len);
}

/* ---- known answers ---- */

START_TEST(kat_enrollments)
{
	char names[16][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, "enrollment", names, 16);
	ck_assert_uint_ge(count, 4);
	for (v = 0; v < count; v++) {
		struct kat_common k;
		struct enrollment en, dec;
		struct raw_en re;
		struct buf out;
		uint8_t pk[32], sk[64], name[ENC_MAX], raw[ENC_MAX];
		char role_name[16];
		size_t name_len;

		kat_common_load(names[v], &k);
		check_label_message(&k, enrollment_label);
		crypto_sign_seed_keypair(pk, sk, k.seed);
		ck_assert_mem_eq(pk, k.public, 32);
		name_len =
		    kat_hex(VECTORS, names[v], "name", name, sizeof name);
		ck_assert_uint_le(name_len, ENROLLMENT_NAME_MAX);

		memset(&en, 0, sizeof en);
		memcpy(en.device, k.device, 32);
		en.role =
		    (enum enrollment_role)kat_u64(VECTORS, names[v], "role");
		kat_str(VECTORS, names[v], "scope", en.scope,
			ENROLLMENT_SCOPE_MAX);
		memcpy(en.name, name, name_len);
		en.time_ms = k.time_ms;
		kat_str(VECTORS, names[v], "role_name", role_name,
			sizeof role_name - 1);
		ck_assert_str_eq(enrollment_role_name(en.role), role_name);

		/* Signing the fields gives the file's bytes. */
		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(enrollment_sign(&en, sk, &out), BS_OK);
		ck_assert_uint_eq(out.len, k.enc_len);
		ck_assert_mem_eq(out.data, k.encoded, k.enc_len);
		ck_assert_mem_eq(en.sig, k.sig, SIGN_BYTES);
		buf_release(&out);

		/* And so does FORMAT.md, through the encoder written here. */
		raw_en_default(&re);
		memcpy(re.device, k.device, 32);
		re.role = (uint8_t)en.role;
		re.scope = en.scope;
		re.scope_len = strlen(en.scope);
		re.name = (const char *)name;
		re.name_len = name_len;
		re.time_ms = k.time_ms;
		ck_assert_uint_eq(raw_enrollment(&re, raw), k.unsigned_len);
		ck_assert_mem_eq(raw, k.unsigned_, k.unsigned_len);

		/* Opening the file's bytes gives the fields. */
		ck_assert_int_eq(enrollment_open(k.encoded, k.enc_len, k.public,
						 &dec),
				 BS_OK);
		ck_assert_mem_eq(dec.device, k.device, 32);
		ck_assert_int_eq(dec.role, en.role);
		ck_assert_str_eq(dec.scope, en.scope);
		ck_assert_uint_eq(strlen(dec.name), name_len);
		ck_assert_mem_eq(dec.name, name, name_len);
		ck_assert_uint_eq(dec.time_ms, k.time_ms);
		ck_assert_mem_eq(dec.sig, k.sig, SIGN_BYTES);
		ck_assert_int_eq(enrollment_open(k.encoded, k.enc_len, pk_b,
						 &dec),
				 BS_ESIGNATURE);
	}
}
END_TEST

START_TEST(kat_revocations)
{
	char names[16][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, "revocation", names, 16);
	ck_assert_uint_ge(count, 3);
	for (v = 0; v < count; v++) {
		struct kat_common k;
		struct revocation rv, dec;
		struct raw_rv re;
		struct buf out;
		uint8_t pk[32], sk[64], reason[ENC_MAX], raw[ENC_MAX];
		size_t reason_len;

		kat_common_load(names[v], &k);
		check_label_message(&k, revocation_label);
		crypto_sign_seed_keypair(pk, sk, k.seed);
		ck_assert_mem_eq(pk, k.public, 32);
		reason_len =
		    kat_hex(VECTORS, names[v], "reason", reason, sizeof reason);
		ck_assert_uint_le(reason_len, REVOCATION_REASON_MAX);

		memset(&rv, 0, sizeof rv);
		memcpy(rv.device, k.device, 32);
		rv.time_ms = k.time_ms;
		memcpy(rv.reason, reason, reason_len);
		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(revocation_sign(&rv, sk, &out), BS_OK);
		ck_assert_uint_eq(out.len, k.enc_len);
		ck_assert_mem_eq(out.data, k.encoded, k.enc_len);
		ck_assert_mem_eq(rv.sig, k.sig, SIGN_BYTES);
		buf_release(&out);

		raw_rv_default(&re);
		memcpy(re.device, k.device, 32);
		re.time_ms = k.time_ms;
		re.reason = (const char *)reason;
		re.reason_len = reason_len;
		ck_assert_uint_eq(raw_revocation(&re, raw), k.unsigned_len);
		ck_assert_mem_eq(raw, k.unsigned_, k.unsigned_len);

		ck_assert_int_eq(revocation_open(k.encoded, k.enc_len, k.public,
						 &dec),
				 BS_OK);
		ck_assert_mem_eq(dec.device, k.device, 32);
		ck_assert_uint_eq(dec.time_ms, k.time_ms);
		ck_assert_uint_eq(strlen(dec.reason), reason_len);
		ck_assert_mem_eq(dec.reason, reason, reason_len);
		ck_assert_mem_eq(dec.sig, k.sig, SIGN_BYTES);
		ck_assert_int_eq(revocation_open(k.encoded, k.enc_len, pk_b,
						 &dec),
				 BS_ESIGNATURE);
	}
}
END_TEST

START_TEST(role_names)
{
	static const char *const bad[] = {"", "Branch", "branch ", "admin",
					  "districts", "audit"};
	enum enrollment_role role;
	size_t i;
	int r;

	for (r = ROLE_BRANCH; r <= ROLE_AUDITOR; r++) {
		const char *name = enrollment_role_name((enum enrollment_role)r);

		ck_assert_ptr_nonnull(name);
		role = (enum enrollment_role)0;
		ck_assert_int_eq(enrollment_role_parse(name, &role), 0);
		ck_assert_int_eq(role, r);
	}
	ck_assert_str_eq(enrollment_role_name(ROLE_BRANCH), "branch");
	ck_assert_str_eq(enrollment_role_name(ROLE_DISTRICT), "district");
	ck_assert_str_eq(enrollment_role_name(ROLE_AUDITOR), "auditor");
	ck_assert_ptr_null(enrollment_role_name((enum enrollment_role)0));
	ck_assert_ptr_null(enrollment_role_name((enum enrollment_role)4));
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		role = ROLE_AUDITOR;
		ck_assert_int_eq(enrollment_role_parse(bad[i], &role), -1);
		ck_assert_int_eq(role, ROLE_AUDITOR); /* untouched */
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

static const char scope_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-";

/* Text of n bytes from 0x20..0xff without 0x7f (what names may hold). */
static void random_text(unsigned *seed, char *dst, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned c = 0x20 + (unsigned)rand_r(seed) % 0xe0;

		dst[i] = (char)(c == 0x7f ? 0x7e : c);
	}
	dst[n] = '\0';
}

START_TEST(roundtrip_random)
{
	unsigned seed = 9001;
	int i;

	keys_init();
	for (i = 0; i < 400; i++) {
		struct enrollment en, dec;
		struct revocation rv, rdec;
		struct raw_en re;
		struct raw_rv rr;
		struct buf out;
		uint8_t raw[ENC_MAX];
		size_t slen, nlen, rlen, j, want;

		memset(&en, 0, sizeof en);
		for (j = 0; j < 32; j++)
			en.device[j] = (uint8_t)rand_r(&seed);
		en.role = (enum enrollment_role)(1 + rand_r(&seed) % 3);
		if (en.role == ROLE_BRANCH) {
			slen = 1 + (size_t)rand_r(&seed) % ENROLLMENT_SCOPE_MAX;
			if (i % 17 == 0)
				slen = ENROLLMENT_SCOPE_MAX;
			for (j = 0; j < slen; j++)
				en.scope[j] = scope_alphabet
					[rand_r(&seed) % (sizeof scope_alphabet - 1)];
			if (strcmp(en.scope, "district") == 0)
				en.scope[0] = 'D';
		} else {
			strcpy(en.scope, "district");
			slen = 8;
		}
		nlen = (size_t)rand_r(&seed) % (ENROLLMENT_NAME_MAX + 1);
		if (i % 13 == 0)
			nlen = ENROLLMENT_NAME_MAX;
		random_text(&seed, en.name, nlen);
		en.time_ms = i % 11 == 0 ? UINT64_MAX : rand64(&seed);

		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(enrollment_sign(&en, sk_s, &out), BS_OK);
		want = 4 + 1 + 32 + 1 + wire_varint_size(slen) + slen +
		       wire_varint_size(nlen) + nlen + 8;
		ck_assert_uint_eq(out.len, want + SIGN_BYTES);
		ck_assert_uint_le(out.len, ENROLLMENT_SIGNED_MAX);
		raw_en_default(&re);
		memcpy(re.device, en.device, 32);
		re.role = (uint8_t)en.role;
		re.scope = en.scope;
		re.scope_len = slen;
		re.name = en.name;
		re.name_len = nlen;
		re.time_ms = en.time_ms;
		ck_assert_uint_eq(raw_enrollment(&re, raw), want);
		ck_assert_mem_eq(out.data, raw, want);
		ck_assert_mem_eq(out.data + want, en.sig, SIGN_BYTES);
		ck_assert_int_eq(enrollment_open(out.data, out.len, pk_s, &dec),
				 BS_OK);
		ck_assert_mem_eq(dec.device, en.device, 32);
		ck_assert_int_eq(dec.role, en.role);
		ck_assert_str_eq(dec.scope, en.scope);
		ck_assert_str_eq(dec.name, en.name);
		ck_assert_uint_eq(dec.time_ms, en.time_ms);
		ck_assert_mem_eq(dec.sig, en.sig, SIGN_BYTES);
		buf_release(&out);

		memset(&rv, 0, sizeof rv);
		memcpy(rv.device, en.device, 32);
		rv.time_ms = rand64(&seed);
		rlen = (size_t)rand_r(&seed) % (REVOCATION_REASON_MAX + 1);
		if (i % 7 == 0)
			rlen = REVOCATION_REASON_MAX;
		random_text(&seed, rv.reason, rlen);
		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(revocation_sign(&rv, sk_s, &out), BS_OK);
		want = 4 + 1 + 32 + 8 + wire_varint_size(rlen) + rlen;
		ck_assert_uint_eq(out.len, want + SIGN_BYTES);
		ck_assert_uint_le(out.len, REVOCATION_SIGNED_MAX);
		raw_rv_default(&rr);
		memcpy(rr.device, rv.device, 32);
		rr.time_ms = rv.time_ms;
		rr.reason = rv.reason;
		rr.reason_len = rlen;
		ck_assert_uint_eq(raw_revocation(&rr, raw), want);
		ck_assert_mem_eq(out.data, raw, want);
		ck_assert_int_eq(revocation_open(out.data, out.len, pk_s, &rdec),
				 BS_OK);
		ck_assert_mem_eq(rdec.device, rv.device, 32);
		ck_assert_uint_eq(rdec.time_ms, rv.time_ms);
		ck_assert_str_eq(rdec.reason, rv.reason);
		/* Neither opens as the other. */
		ck_assert_int_eq(enrollment_open(out.data, out.len, pk_s, &dec),
				 BS_EMAGIC);
		buf_release(&out);
	}
}
END_TEST

/* The largest objects are the limits the header declares. */
START_TEST(largest_objects)
{
	struct enrollment en;
	struct revocation rv;
	struct buf out;

	keys_init();
	memset(&en, 0, sizeof en);
	en.role = ROLE_BRANCH;
	memset(en.scope, 'b', ENROLLMENT_SCOPE_MAX);
	memset(en.name, 'n', ENROLLMENT_NAME_MAX);
	en.time_ms = UINT64_MAX;
	buf_init(&out, ENC_MAX);
	ck_assert_int_eq(enrollment_sign(&en, sk_s, &out), BS_OK);
	ck_assert_uint_eq(out.len, 305);
	ck_assert_uint_le(out.len, ENROLLMENT_SIGNED_MAX);
	ck_assert_int_eq(en_open(out.data, out.len), BS_OK);
	buf_reset(&out);
	memset(&rv, 0, sizeof rv);
	memset(rv.reason, 'r', REVOCATION_REASON_MAX);
	ck_assert_int_eq(revocation_sign(&rv, sk_s, &out), BS_OK);
	ck_assert_uint_eq(out.len, REVOCATION_SIGNED_MAX);
	ck_assert_int_eq(rv_open(out.data, out.len), BS_OK);
	buf_release(&out);
}
END_TEST

/* ---- malformed input, one rule at a time ---- */

START_TEST(truncated_at_every_offset)
{
	char names[16][32];
	size_t count, v, cut;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 16);
	ck_assert_uint_ge(count, 7);
	for (v = 0; v < count; v++) {
		struct kat_common k;

		kat_common_load(names[v], &k);
		ck_assert_int_eq(kat_open(names[v], k.encoded, k.enc_len), BS_OK);
		for (cut = 0; cut < k.enc_len; cut++)
			ck_assert_msg(kat_open(names[v], k.encoded, cut) ==
					      BS_ETRUNCATED,
				      "%s cut at %zu", names[v], cut);
	}
}
END_TEST

START_TEST(trailing_bytes)
{
	char names[16][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 16);
	for (v = 0; v < count; v++) {
		struct kat_common k;
		uint8_t in[ENC_MAX + 2];

		kat_common_load(names[v], &k);
		memcpy(in, k.encoded, k.enc_len);
		in[k.enc_len] = 0x00;
		in[k.enc_len + 1] = 0xff;
		ck_assert_int_eq(kat_open(names[v], in, k.enc_len + 1),
				 BS_ETRAILING);
		ck_assert_int_eq(kat_open(names[v], in, k.enc_len + 2),
				 BS_ETRAILING);
	}
}
END_TEST

START_TEST(wrong_magic_and_version)
{
	static const uint8_t versions[] = {0, 2, 0x81, 0xff};
	struct kat_common en, rv;
	uint8_t in[ENC_MAX];
	size_t i;

	keys_init();
	kat_common_load("en-branch", &en);
	kat_common_load("rv-lost", &rv);
	for (i = 0; i < 4; i++) {
		memcpy(in, en.encoded, en.enc_len);
		in[i] ^= 0x20;
		ck_assert_int_eq(en_open(in, en.enc_len), BS_EMAGIC);
		memcpy(in, rv.encoded, rv.enc_len);
		in[i] ^= 0x20;
		ck_assert_int_eq(rv_open(in, rv.enc_len), BS_EMAGIC);
	}
	/* Each is refused by the other's opener. */
	ck_assert_int_eq(en_open(rv.encoded, rv.enc_len), BS_EMAGIC);
	ck_assert_int_eq(rv_open(en.encoded, en.enc_len), BS_EMAGIC);
	/* A checkpoint's and a change set's magic. */
	memcpy(in, en.encoded, en.enc_len);
	memcpy(in, "BSCP", 4);
	ck_assert_int_eq(en_open(in, en.enc_len), BS_EMAGIC);
	memcpy(in, "BSCS", 4);
	ck_assert_int_eq(en_open(in, en.enc_len), BS_EMAGIC);
	for (i = 0; i < sizeof versions; i++) {
		memcpy(in, en.encoded, en.enc_len);
		in[OFF_VERSION] = versions[i];
		ck_assert_int_eq(en_open(in, en.enc_len), BS_EVERSION);
		memcpy(in, rv.encoded, rv.enc_len);
		in[OFF_VERSION] = versions[i];
		ck_assert_int_eq(rv_open(in, rv.enc_len), BS_EVERSION);
	}
	/* Magic is judged before the version, the version before the rest. */
	memcpy(in, "XXXX", 4);
	in[OFF_VERSION] = 9;
	ck_assert_int_eq(en_open(in, 5), BS_EMAGIC);
	ck_assert_int_eq(rv_open(in, 5), BS_EMAGIC);
	memcpy(in, "BSEN", 4);
	ck_assert_int_eq(en_open(in, 5), BS_EVERSION);
	memcpy(in, "BSRV", 4);
	ck_assert_int_eq(rv_open(in, 5), BS_EVERSION);
	ck_assert_int_eq(rv_open(in, 4), BS_ETRUNCATED);
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
	static const uint8_t eleven[] = {0x86, 0x80, 0x80, 0x80, 0x80, 0x80,
					 0x80, 0x80, 0x80, 0x80, 0x00};
	static const uint8_t tenth_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0x02};
	struct raw_en e;
	struct raw_rv r;
	uint8_t in[ENC_MAX], out[ENC_MAX];
	size_t len, n, off;

	keys_init();
	raw_en_default(&e);
	len = signed_en(&e, in);
	ck_assert_int_eq(en_open(in, len), BS_OK);
	ck_assert_uint_eq(in[OFF_SCOPE], 6);
	{
		static const uint8_t rep[] = {0x86, 0x00};
		static const uint8_t rep3[] = {0x86, 0x80, 0x00};

		n = splice(in, len, OFF_SCOPE, 1, rep, sizeof rep, out);
		ck_assert_int_eq(en_open(out, n), BS_EOVERLONG);
		n = splice(in, len, OFF_SCOPE, 1, rep3, sizeof rep3, out);
		ck_assert_int_eq(en_open(out, n), BS_EOVERLONG);
		n = splice(in, len, OFF_SCOPE, 1, eleven, sizeof eleven, out);
		ck_assert_int_eq(en_open(out, n), BS_EOVERLONG);
		n = splice(in, len, OFF_SCOPE, 1, tenth_big, sizeof tenth_big,
			   out);
		ck_assert_int_eq(en_open(out, n), BS_EOVERLONG);
	}
	off = OFF_SCOPE + 1 + 6;
	ck_assert_uint_eq(in[off], 10); /* name length */
	{
		static const uint8_t rep[] = {0x8a, 0x00};

		n = splice(in, len, off, 1, rep, sizeof rep, out);
		ck_assert_int_eq(en_open(out, n), BS_EOVERLONG);
	}

	raw_rv_default(&r);
	len = signed_rv(&r, in);
	ck_assert_int_eq(rv_open(in, len), BS_OK);
	ck_assert_uint_eq(in[OFF_REASON], 4);
	{
		static const uint8_t rep[] = {0x84, 0x00};

		n = splice(in, len, OFF_REASON, 1, rep, sizeof rep, out);
		ck_assert_int_eq(rv_open(out, n), BS_EOVERLONG);
		n = splice(in, len, OFF_REASON, 1, eleven, sizeof eleven, out);
		ck_assert_int_eq(rv_open(out, n), BS_EOVERLONG);
	}
	/* A zero-length text written as 80 00. */
	r.reason_len = 0;
	len = signed_rv(&r, in);
	ck_assert_int_eq(rv_open(in, len), BS_OK);
	{
		static const uint8_t rep[] = {0x80, 0x00};

		n = splice(in, len, OFF_REASON, 1, rep, sizeof rep, out);
		ck_assert_int_eq(rv_open(out, n), BS_EOVERLONG);
	}
}
END_TEST

/* Lengths over the limits are refused as such, before the bytes they
 * announce are looked at (or would have to be there). */
START_TEST(oversize_texts)
{
	static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff, 0x01};
	char text[600];
	struct raw_en e;
	struct raw_rv r;
	uint8_t in[ENC_MAX];
	size_t len;

	keys_init();
	memset(text, 'a', sizeof text);

	raw_en_default(&e);
	e.scope = text;
	e.scope_len = ENROLLMENT_SCOPE_MAX + 1;
	len = signed_en(&e, in);
	ck_assert_int_eq(en_open(in, len), BS_ELIMIT);
	ck_assert_int_eq(en_open(in, OFF_SCOPE + 1), BS_ELIMIT);
	e.scope_len = ENROLLMENT_SCOPE_MAX;
	len = signed_en(&e, in);
	ck_assert_int_eq(en_open(in, len), BS_OK);

	raw_en_default(&e);
	e.name = text;
	e.name_len = ENROLLMENT_NAME_MAX + 1;
	len = signed_en(&e, in);
	ck_assert_int_eq(en_open(in, len), BS_ELIMIT);
	e.name_len = ENROLLMENT_NAME_MAX;
	len = signed_en(&e, in);
	ck_assert_int_eq(en_open(in, len), BS_OK);

	raw_rv_default(&r);
	r.reason = text;
	r.reason_len = REVOCATION_REASON_MAX + 1;
	len = signed_rv(&r, in);
	ck_assert_int_eq(rv_open(in, len), BS_ELIMIT);
	ck_assert_int_eq(rv_open(in, OFF_REASON + 2), BS_ELIMIT);
	r.reason_len = 500;
	len = signed_rv(&r, in);
	ck_assert_int_eq(rv_open(in, len), BS_ELIMIT);
	r.reason_len = REVOCATION_REASON_MAX;
	len = signed_rv(&r, in);
	ck_assert_int_eq(rv_open(in, len), BS_OK);

	/* 2^64 - 1 as a length, with nothing after it. */
	raw_en_default(&e);
	len = raw_enrollment(&e, in);
	memcpy(in + OFF_SCOPE, huge, sizeof huge);
	ck_assert_int_eq(en_open(in, OFF_SCOPE + sizeof huge), BS_ELIMIT);
	raw_rv_default(&r);
	len = raw_revocation(&r, in);
	memcpy(in + OFF_REASON, huge, sizeof huge);
	ck_assert_int_eq(rv_open(in, OFF_REASON + sizeof huge), BS_ELIMIT);
	(void)len;
}
END_TEST

struct en_case {
	const char *what;
	uint8_t role;
	const char *scope;
	size_t scope_len;
	const char *name;
	size_t name_len;
	enum bs_status want;
};

#define S(s) s, sizeof s - 1

START_TEST(invalid_enrollment_fields)
{
	static const struct en_case cases[] = {
		{"role 0", 0, S("xh-042"), S("pc"), BS_EINVALID},
		{"role 4", 4, S("district"), S("pc"), BS_EINVALID},
		{"role 255", 255, S("district"), S("pc"), BS_EINVALID},
		{"branch role, scope district", ROLE_BRANCH, S("district"),
		 S("pc"), BS_EINVALID},
		{"district role, branch scope", ROLE_DISTRICT, S("xh-042"),
		 S("pc"), BS_EINVALID},
		{"auditor role, branch scope", ROLE_AUDITOR, S("xh-042"),
		 S("pc"), BS_EINVALID},
		{"district role, scope District", ROLE_DISTRICT, S("District"),
		 S("pc"), BS_EINVALID},
		{"auditor role, scope district:", ROLE_AUDITOR, S("district:"),
		 S("pc"), BS_EINVALID},
		{"empty scope", ROLE_BRANCH, S(""), S("pc"), BS_EINVALID},
		{"space in scope", ROLE_BRANCH, S("xh 042"), S("pc"),
		 BS_EINVALID},
		{"slash in scope", ROLE_BRANCH, S("a/b"), S("pc"), BS_EINVALID},
		{"high byte in scope", ROLE_BRANCH, S("\xc3\xa9"), S("pc"),
		 BS_EINVALID},
		{"NUL in scope", ROLE_BRANCH, S("ab\0c"), S("pc"), BS_EINVALID},
		{"NUL ends scope", ROLE_DISTRICT, S("district\0"), S("pc"),
		 BS_EINVALID},
		{"NUL in name", ROLE_BRANCH, S("xh-042"), S("p\0c"),
		 BS_EINVALID},
		{"NUL ends name", ROLE_BRANCH, S("xh-042"), S("pc\0"),
		 BS_EINVALID},
		{"0x01 in name", ROLE_BRANCH, S("xh-042"), S("p\x01"),
		 BS_EINVALID},
		{"tab in name", ROLE_BRANCH, S("xh-042"), S("p\tc"), BS_EINVALID},
		{"newline in name", ROLE_BRANCH, S("xh-042"), S("pc\n"),
		 BS_EINVALID},
		{"ESC in name", ROLE_BRANCH, S("xh-042"), S("\x1b[31m"),
		 BS_EINVALID},
		{"0x1f in name", ROLE_BRANCH, S("xh-042"), S("\x1f"),
		 BS_EINVALID},
		{"DEL in name", ROLE_BRANCH, S("xh-042"), S("pc\x7f"),
		 BS_EINVALID},
		/* Controls: the edges that are allowed. */
		{"branch role, scope districts", ROLE_BRANCH, S("districts"),
		 S("pc"), BS_OK},
		{"branch role, scope District", ROLE_BRANCH, S("District"),
		 S("pc"), BS_OK},
		{"auditor role, scope district", ROLE_AUDITOR, S("district"),
		 S(""), BS_OK},
		{"empty name", ROLE_BRANCH, S("b"), S(""), BS_OK},
		{"space and tilde", ROLE_BRANCH, S("b"), S(" ~"), BS_OK},
		{"bytes 0x80 and 0xff", ROLE_BRANCH, S("b"), S("\x80\xff"),
		 BS_OK},
		{"UTF-8 name", ROLE_DISTRICT, S("district"),
		 S("\xe5\x8c\xba\xe5\xa7\x94"), BS_OK},
	};
	size_t i;

	keys_init();
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct en_case *c = &cases[i];
		struct raw_en e;
		uint8_t in[ENC_MAX];
		size_t len;
		enum bs_status got;

		raw_en_default(&e);
		e.role = c->role;
		e.scope = c->scope;
		e.scope_len = c->scope_len;
		e.name = c->name;
		e.name_len = c->name_len;
		len = signed_en(&e, in);
		got = en_open(in, len);
		ck_assert_msg(got == c->want, "%s: got %s, want %s", c->what,
			      bs_status_str(got), bs_status_str(c->want));
	}
}
END_TEST

START_TEST(invalid_revocation_reasons)
{
	static const struct {
		const char *reason;
		size_t len;
		enum bs_status want;
	} cases[] = {
		{S("a\0b"), BS_EINVALID},   {S("\0"), BS_EINVALID},
		{S("\x01"), BS_EINVALID},   {S("lost\n"), BS_EINVALID},
		{S("\r"), BS_EINVALID},     {S("\x1f"), BS_EINVALID},
		{S("x\x7f"), BS_EINVALID},  {S(""), BS_OK},
		{S(" "), BS_OK},            {S("~\x80\xff"), BS_OK},
	};
	size_t i;

	keys_init();
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct raw_rv r;
		uint8_t in[ENC_MAX];
		size_t len;

		raw_rv_default(&r);
		r.reason = cases[i].reason;
		r.reason_len = cases[i].len;
		len = signed_rv(&r, in);
		ck_assert_msg(rv_open(in, len) == cases[i].want, "case %zu", i);
	}
}
END_TEST

/* Field rules are judged before the signature: an invalid object reports
 * what is wrong with it, whoever signed it. */
START_TEST(rules_before_signature)
{
	struct raw_en e;
	uint8_t in[ENC_MAX];
	size_t len;

	keys_init();
	raw_en_default(&e);
	e.role = 9;
	len = raw_enrollment(&e, in);
	memset(in + len, 0, SIGN_BYTES);
	ck_assert_int_eq(en_open(in, len + SIGN_BYTES), BS_EINVALID);
	/* ... but only once the object is whole. */
	ck_assert_int_eq(en_open(in, len + SIGN_BYTES - 1), BS_EINVALID);
	ck_assert_int_eq(en_open(in, len - 1), BS_ETRUNCATED);
	/* A NUL in the scope is refused as soon as the scope is read. */
	e.role = ROLE_BRANCH;
	e.scope = "a\0";
	e.scope_len = 2;
	len = raw_enrollment(&e, in);
	ck_assert_int_eq(en_open(in, OFF_SCOPE + 3), BS_EINVALID);
	/* A valid object with a zero signature: the signature. */
	raw_en_default(&e);
	len = raw_enrollment(&e, in);
	memset(in + len, 0, SIGN_BYTES);
	ck_assert_int_eq(en_open(in, len + SIGN_BYTES), BS_ESIGNATURE);
}
END_TEST

/* The signers refuse what the openers refuse, and leave the buffer as it
 * was. */
START_TEST(signers_refuse_invalid)
{
	struct enrollment good, en;
	struct revocation rv;
	struct buf out;

	keys_init();
	memset(&good, 0, sizeof good);
	memcpy(good.device, pk_b, 32);
	good.role = ROLE_BRANCH;
	strcpy(good.scope, "xh-042");
	strcpy(good.name, "front desk");
	buf_init(&out, ENC_MAX);
	buf_append(&out, "prefix", 6);

#define REFUSED(mutate)                                                       \
	do {                                                                  \
		en = good;                                                    \
		mutate;                                                       \
		ck_assert_int_eq(enrollment_sign(&en, sk_s, &out),            \
				 BS_EINVALID);                                \
		ck_assert_uint_eq(out.len, 6);                                \
		ck_assert_int_eq(out.status, BS_OK);                          \
	} while (0)

	REFUSED(en.role = (enum enrollment_role)0);
	REFUSED(en.role = (enum enrollment_role)4);
	REFUSED(strcpy(en.scope, "district"));
	REFUSED((en.role = ROLE_DISTRICT));
	REFUSED((en.role = ROLE_AUDITOR));
	REFUSED(en.scope[0] = '\0');
	REFUSED(strcpy(en.scope, "a b"));
	REFUSED(strcpy(en.scope, "\xc3\xa9"));
	/* Arrays filled to the end without a terminator: refused, not read
	 * past. */
	REFUSED(memset(en.scope, 'a', sizeof en.scope));
	REFUSED(memset(en.name, 'a', sizeof en.name));
	REFUSED(strcpy(en.name, "a\nb"));
	REFUSED(strcpy(en.name, "\x7f"));
#undef REFUSED

	memset(&rv, 0, sizeof rv);
	memset(rv.reason, 'r', sizeof rv.reason);
	ck_assert_int_eq(revocation_sign(&rv, sk_s, &out), BS_EINVALID);
	strcpy(rv.reason, "tab\there");
	ck_assert_int_eq(revocation_sign(&rv, sk_s, &out), BS_EINVALID);
	ck_assert_uint_eq(out.len, 6);
	ck_assert_int_eq(out.status, BS_OK);

	/* The controls: both sign, after the prefix. */
	en = good;
	ck_assert_int_eq(enrollment_sign(&en, sk_s, &out), BS_OK);
	ck_assert_int_eq(en_open(out.data + 6, out.len - 6), BS_OK);
	buf_reset(&out);
	strcpy(rv.reason, "");
	ck_assert_int_eq(revocation_sign(&rv, sk_s, &out), BS_OK);
	ck_assert_int_eq(rv_open(out.data, out.len), BS_OK);
	buf_release(&out);
}
END_TEST

/* A failed signing leaves the caller's buffer as it was; opening never
 * allocates except for the signature check. */
START_TEST(resource_failures)
{
	struct enrollment en;
	struct revocation rv;
	struct kat_common k;
	struct enrollment dec;
	struct revocation rdec;
	struct buf out;
	uint8_t pad[512] = {0};

	keys_init();
	memset(&en, 0, sizeof en);
	en.role = ROLE_DISTRICT;
	strcpy(en.scope, "district");
	memset(&rv, 0, sizeof rv);
	buf_init(&out, ENC_MAX);
	buf_append(&out, pad, sizeof pad);
	buf_reset(&out); /* grown memory, so only the signer allocates */
	buf_append(&out, "zz", 2);
	mem_fail_after(0);
	ck_assert_int_eq(enrollment_sign(&en, sk_s, &out), BS_ENOMEM);
	ck_assert_int_eq(revocation_sign(&rv, sk_s, &out), BS_ENOMEM);
	mem_fail_reset();
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq(out.status, BS_OK);
	buf_release(&out);

	/* A buffer too small: the buffer's own error, which sticks. */
	buf_init(&out, 60);
	ck_assert_int_eq(enrollment_sign(&en, sk_s, &out), BS_ELIMIT);
	ck_assert_int_eq(out.status, BS_ELIMIT);
	ck_assert_int_eq(revocation_sign(&rv, sk_s, &out), BS_ELIMIT);
	buf_release(&out);

	kat_common_load("en-branch", &k);
	mem_fail_after(0);
	ck_assert_int_eq(enrollment_open(k.encoded, k.enc_len, pk_s, &dec),
			 BS_ENOMEM);
	ck_assert_int_eq(enrollment_open(k.encoded, k.enc_len - 1, pk_s, &dec),
			 BS_ETRUNCATED);
	mem_fail_reset();
	ck_assert_int_eq(enrollment_open(k.encoded, k.enc_len, pk_s, &dec),
			 BS_OK);
	kat_common_load("rv-lost", &k);
	mem_fail_after(0);
	ck_assert_int_eq(revocation_open(k.encoded, k.enc_len, pk_s, &rdec),
			 BS_ENOMEM);
	mem_fail_reset();
	ck_assert_int_eq(revocation_open(k.encoded, k.enc_len, pk_s, &rdec),
			 BS_OK);
}
END_TEST

/* ---- signatures ---- */

START_TEST(signature_flips)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	char names[16][32];
	size_t count, v, i, m;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 16);
	for (v = 0; v < count; v++) {
		struct kat_common k;
		uint8_t in[ENC_MAX];

		kat_common_load(names[v], &k);
		for (i = 0; i < SIGN_BYTES; i++) {
			for (m = 0; m < sizeof masks; m++) {
				memcpy(in, k.encoded, k.enc_len);
				in[k.unsigned_len + i] ^= masks[m];
				ck_assert_int_eq(kat_open(names[v], in,
							  k.enc_len),
						 BS_ESIGNATURE);
			}
		}
	}
}
END_TEST

/* S + L encodes the same scalar as S: refused, so one statement has one
 * encoding. */
START_TEST(malleated_signature_refused)
{
	static const uint8_t order[32] = {
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
		0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0x10,
	};
	static const char *const which[] = {"en-branch", "rv-lost"};
	size_t w, i;

	keys_init();
	for (w = 0; w < 2; w++) {
		struct kat_common k;
		uint8_t in[ENC_MAX];
		unsigned carry = 0;

		kat_common_load(which[w], &k);
		memcpy(in, k.encoded, k.enc_len);
		for (i = 0; i < 32; i++) {
			carry += in[k.unsigned_len + 32 + i] + order[i];
			in[k.unsigned_len + 32 + i] = (uint8_t)carry;
			carry >>= 8;
		}
		ck_assert_uint_eq(carry, 0);
		ck_assert_int_eq(kat_open(which[w], in, k.enc_len),
				 BS_ESIGNATURE);
	}
}
END_TEST

/* The same bytes signed under every other label, under none, and with the
 * label but no 0x00: all refused. By hand with the right label: accepted. */
static void check_labels(uint8_t *in, size_t n, enum sign_kind right,
			 const char *label, enum bs_status (*open)(const uint8_t *,
								   size_t))
{
	uint8_t msg[ENC_MAX + 64];
	size_t llen = strlen(label);
	int kind;

	for (kind = SIGN_CHANGESET; kind <= SIGN_DIGEST; kind++) {
		ck_assert_int_eq(sign_detached((enum sign_kind)kind, in, n, sk_s,
					       in + n),
				 BS_OK);
		ck_assert_int_eq(open(in, n + SIGN_BYTES),
				 kind == (int)right ? BS_OK : BS_ESIGNATURE);
	}
	ck_assert_int_eq(crypto_sign_detached(in + n, NULL, in, n, sk_s), 0);
	ck_assert_int_eq(open(in, n + SIGN_BYTES), BS_ESIGNATURE);
	memcpy(msg, label, llen);
	memcpy(msg + llen, in, n);
	ck_assert_int_eq(crypto_sign_detached(in + n, NULL, msg, llen + n,
					      sk_s),
			 0);
	ck_assert_int_eq(open(in, n + SIGN_BYTES), BS_ESIGNATURE);
	msg[llen] = 0x00;
	memcpy(msg + llen + 1, in, n);
	ck_assert_int_eq(crypto_sign_detached(in + n, NULL, msg, llen + 1 + n,
					      sk_s),
			 0);
	ck_assert_int_eq(open(in, n + SIGN_BYTES), BS_OK);
}

START_TEST(signature_under_other_labels)
{
	struct raw_en e;
	struct raw_rv r;
	uint8_t in[ENC_MAX];

	keys_init();
	ck_assert_str_eq(sign_label(SIGN_ENROLLMENT), enrollment_label);
	ck_assert_str_eq(sign_label(SIGN_REVOCATION), revocation_label);
	raw_en_default(&e);
	check_labels(in, raw_enrollment(&e, in), SIGN_ENROLLMENT,
		     enrollment_label, en_open);
	raw_rv_default(&r);
	check_labels(in, raw_revocation(&r, in), SIGN_REVOCATION,
		     revocation_label, rv_open);
}
END_TEST

START_TEST(other_keys)
{
	struct raw_en e;
	struct raw_rv r;
	struct enrollment en;
	struct revocation rv;
	uint8_t in[ENC_MAX], zero[32] = {0};
	size_t n;

	keys_init();
	/* Signed by the device itself, not the server. */
	raw_en_default(&e);
	n = sign_raw(in, raw_enrollment(&e, in), SIGN_ENROLLMENT, sk_b);
	ck_assert_int_eq(en_open(in, n), BS_ESIGNATURE);
	ck_assert_int_eq(enrollment_open(in, n, pk_b, &en), BS_OK);
	raw_rv_default(&r);
	n = sign_raw(in, raw_revocation(&r, in), SIGN_REVOCATION, sk_b);
	ck_assert_int_eq(rv_open(in, n), BS_ESIGNATURE);
	ck_assert_int_eq(revocation_open(in, n, pk_b, &rv), BS_OK);
	/* A server key that is no key. */
	ck_assert_int_eq(revocation_open(in, n, zero, &rv), BS_ESIGNATURE);
}
END_TEST

/* Whatever byte of a valid statement changes, opening fails. */
START_TEST(any_flip_is_caught)
{
	static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
	char names[16][32];
	size_t count, v, i, m;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 16);
	for (v = 0; v < count; v++) {
		struct kat_common k;
		uint8_t in[ENC_MAX];

		kat_common_load(names[v], &k);
		for (i = 0; i < k.enc_len; i++) {
			for (m = 0; m < sizeof masks; m++) {
				memcpy(in, k.encoded, k.enc_len);
				in[i] ^= masks[m];
				ck_assert_msg(kat_open(names[v], in, k.enc_len) !=
						      BS_OK,
					      "%s: flip %02x at %zu accepted",
					      names[v], masks[m], i);
			}
		}
	}
}
END_TEST

static Suite *enrollment_suite(void)
{
	Suite *s = suite_create("enrollment");
	TCase *kat = tcase_create("kat");
	TCase *rt = tcase_create("roundtrip");
	TCase *bad = tcase_create("malformed");
	TCase *sig = tcase_create("signature");

	tcase_add_test(kat, kat_enrollments);
	tcase_add_test(kat, kat_revocations);
	tcase_add_test(kat, role_names);
	tcase_add_test(rt, roundtrip_random);
	tcase_add_test(rt, largest_objects);
	tcase_add_test(bad, truncated_at_every_offset);
	tcase_add_test(bad, trailing_bytes);
	tcase_add_test(bad, wrong_magic_and_version);
	tcase_add_test(bad, overlong_varints);
	tcase_add_test(bad, oversize_texts);
	tcase_add_test(bad, invalid_enrollment_fields);
	tcase_add_test(bad, invalid_revocation_reasons);
	tcase_add_test(bad, rules_before_signature);
	tcase_add_test(bad, signers_refuse_invalid);
	tcase_add_test(bad, resource_failures);
	tcase_add_test(sig, signature_flips);
	tcase_add_test(sig, malleated_signature_refused);
	tcase_add_test(sig, signature_under_other_labels);
	tcase_add_test(sig, other_keys);
	tcase_add_test(sig, any_flip_is_caught);
	suite_add_tcase(s, kat);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, sig);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(enrollment_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
