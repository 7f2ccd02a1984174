/* test_logentry.c - Check suite for protocol/logentry: log entries and their
 * Merkle leaf hashes against known-answer vectors (tests/vectors/
 * logentry-kat.txt, whose payloads are the vectors of changeset-kat.txt and
 * enrollment-kat.txt), round trips, and malformed input with the exact
 * bs_status each must give. Not for the tree (tests/test_merkle.c). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "changeset.h"
#include "enrollment.h"
#include "kat.h"
#include "logentry.h"
#include "mem.h"
#include "sign.h"
#include "wire.h"

/* Offsets of the fixed-position fields (FORMAT.md, "Log entries"). */
#define OFF_VERSION 4
#define OFF_KIND 5
#define OFF_VERDICT 6
#define OFF_REASON 7 /* reason length varint */
#define ENC_MAX 4096

static uint8_t pk_s[SIGN_PUBLIC_BYTES], sk_s[SIGN_SECRET_BYTES];

/* The vectors' server key: seed 01..20. */
static void keys_init(void)
{
	ck_assert_int_eq(sign_init(), BS_OK);
	kat_keypair(1, pk_s, sk_s);
}

/* The known-answer file (read-only; see its header). */
#define VECTORS "logentry-kat.txt"

struct kat_le {
	uint64_t kind, verdict;
	char src_file[64], src_vector[32];
	uint8_t reason[512], payload[ENC_MAX], encoded[ENC_MAX], leaf[32];
	size_t reason_len, payload_len, enc_len;
};

static void kat_le_load(const char *name, struct kat_le *k)
{
	size_t len = 0;
	const char *src, *sp;

	memset(k, 0, sizeof *k);
	k->kind = kat_u64(VECTORS, name, "kind");
	k->verdict = kat_u64(VECTORS, name, "verdict");
	k->reason_len =
	    kat_hex(VECTORS, name, "reason", k->reason, sizeof k->reason);
	k->payload_len = kat_hex(VECTORS, name, "payload", k->payload, ENC_MAX);
	k->enc_len = kat_hex(VECTORS, name, "encoded", k->encoded, ENC_MAX);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "leaf_hash", k->leaf, 32), 32);
	src = kat_find(VECTORS, name, "payload_of", &len);
	ck_assert_ptr_nonnull(src);
	sp = memchr(src, ' ', len);
	ck_assert_ptr_nonnull(sp);
	ck_assert_uint_lt((size_t)(sp - src), sizeof k->src_file);
	ck_assert_uint_lt(len - (size_t)(sp - src) - 1, sizeof k->src_vector);
	memcpy(k->src_file, src, (size_t)(sp - src));
	memcpy(k->src_vector, sp + 1, len - (size_t)(sp - src) - 1);
}

/* ---- an encoder of our own, written from FORMAT.md, with no checks ---- */

struct raw_le {
	char magic[4];
	uint8_t version, kind, verdict;
	const void *reason;
	size_t reason_len;
	const void *payload;
	size_t payload_len;
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

static size_t raw_entry(const struct raw_le *e, uint8_t *out)
{
	size_t n = 0;

	memcpy(out, e->magic, 4);
	n += 4;
	out[n++] = e->version;
	out[n++] = e->kind;
	out[n++] = e->verdict;
	n += t_varint(out + n, e->reason_len);
	if (e->reason_len)
		memcpy(out + n, e->reason, e->reason_len);
	n += e->reason_len;
	n += t_varint(out + n, e->payload_len);
	if (e->payload_len)
		memcpy(out + n, e->payload, e->payload_len);
	return n + e->payload_len;
}

static const uint8_t small_payload[5] = {0x42, 0x53, 0x43, 0x53, 0x01};

/* A valid refused change set entry. */
static void raw_le_default(struct raw_le *e)
{
	memset(e, 0, sizeof *e);
	memcpy(e->magic, "BSLE", 4);
	e->version = 1;
	e->kind = LOGENTRY_CHANGESET;
	e->verdict = LOGENTRY_REFUSED;
	e->reason = "out of scope";
	e->reason_len = 12;
	e->payload = small_payload;
	e->payload_len = sizeof small_payload;
}

/* Decodes an exact-size heap copy, so that ASan sees any over-read. */
static enum bs_status decode_copy(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct logentry le;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = logentry_decode(copy, len, &le);
	free(copy);
	return rc;
}

/* ---- known answers ---- */

START_TEST(kat_entries)
{
	char names[16][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 16);
	ck_assert_uint_ge(count, 5);
	for (v = 0; v < count; v++) {
		struct kat_le k;
		struct logentry le, dec;
		struct raw_le re;
		struct buf out;
		uint8_t src[ENC_MAX], raw[ENC_MAX], leaf[32], in[1 + ENC_MAX];
		size_t src_len;

		kat_le_load(names[v], &k);
		/* The payload is the named vector's signed object. */
		src_len = kat_hex(k.src_file, k.src_vector, "encoded", src,
				     sizeof src);
		ck_assert_uint_eq(src_len, k.payload_len);
		ck_assert_mem_eq(src, k.payload, src_len);

		memset(&le, 0, sizeof le);
		le.kind = (enum logentry_kind)k.kind;
		le.verdict = (enum logentry_verdict)k.verdict;
		le.reason = (const char *)k.reason;
		le.reason_len = k.reason_len;
		le.payload = k.payload;
		le.payload_len = k.payload_len;
		buf_init(&out, LOGENTRY_MAX);
		ck_assert_int_eq(logentry_encode(&le, &out), BS_OK);
		ck_assert_uint_eq(out.len, k.enc_len);
		ck_assert_mem_eq(out.data, k.encoded, k.enc_len);
		buf_release(&out);

		raw_le_default(&re);
		re.kind = (uint8_t)k.kind;
		re.verdict = (uint8_t)k.verdict;
		re.reason = k.reason;
		re.reason_len = k.reason_len;
		re.payload = k.payload;
		re.payload_len = k.payload_len;
		ck_assert_uint_eq(raw_entry(&re, raw), k.enc_len);
		ck_assert_mem_eq(raw, k.encoded, k.enc_len);

		/* Decoding points into the input. */
		ck_assert_int_eq(logentry_decode(k.encoded, k.enc_len, &dec),
				 BS_OK);
		ck_assert_int_eq(dec.kind, le.kind);
		ck_assert_int_eq(dec.verdict, le.verdict);
		ck_assert_uint_eq(dec.reason_len, k.reason_len);
		ck_assert_ptr_eq(dec.reason, (const char *)k.encoded + OFF_REASON +
					     wire_varint_size(k.reason_len));
		ck_assert_mem_eq(dec.reason, k.reason, k.reason_len);
		ck_assert_uint_eq(dec.payload_len, k.payload_len);
		ck_assert_ptr_eq(dec.payload,
				 k.encoded + k.enc_len - k.payload_len);
		ck_assert_mem_eq(dec.payload, k.payload, k.payload_len);

		/* Leaf hash: the file's, the function's and SHA-256 of
		 * 0x00 || entry computed here agree. */
		logentry_leaf_hash(k.encoded, k.enc_len, leaf);
		ck_assert_mem_eq(leaf, k.leaf, 32);
		in[0] = 0x00;
		memcpy(in + 1, k.encoded, k.enc_len);
		crypto_hash_sha256(leaf, in, 1 + k.enc_len);
		ck_assert_mem_eq(leaf, k.leaf, 32);

		/* The payloads are what their kind says. */
		if (k.kind == LOGENTRY_CHANGESET) {
			struct changeset cs;

			ck_assert_int_eq(changeset_decode(dec.payload,
							  dec.payload_len, &cs),
					 BS_OK);
			ck_assert_int_eq(changeset_verify(&cs), BS_OK);
		} else if (k.kind == LOGENTRY_ENROLLMENT) {
			struct enrollment en;

			ck_assert_int_eq(enrollment_open(dec.payload,
							 dec.payload_len, pk_s,
							 &en),
					 BS_OK);
		} else {
			struct revocation rv;

			ck_assert_int_eq(revocation_open(dec.payload,
							 dec.payload_len, pk_s,
							 &rv),
					 BS_OK);
		}
	}
}
END_TEST

/* RFC 6962's hash of an empty leaf, and of a one-byte one. */
START_TEST(leaf_hash_known)
{
	static const uint8_t empty[32] = {
		0x6e, 0x34, 0x0b, 0x9c, 0xff, 0xb3, 0x7a, 0x98, 0x9c, 0xa5, 0x44,
		0xe6, 0xbb, 0x78, 0x0a, 0x2c, 0x78, 0x90, 0x1d, 0x3f, 0xb3, 0x37,
		0x38, 0x76, 0x85, 0x11, 0xa3, 0x06, 0x17, 0xaf, 0xa0, 0x1d,
	};
	uint8_t out[32], want[32], in[2] = {0x00, 0x42};

	logentry_leaf_hash(NULL, 0, out);
	ck_assert_mem_eq(out, empty, 32);
	logentry_leaf_hash(in + 1, 1, out);
	crypto_hash_sha256(want, in, 2);
	ck_assert_mem_eq(out, want, 32);
}
END_TEST

/* ---- round trips ---- */

static void random_text(unsigned *seed, char *dst, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned c = 0x20 + (unsigned)rand_r(seed) % 0xe0;

		dst[i] = (char)(c == 0x7f ? 0x7e : c);
	}
}

START_TEST(roundtrip_random)
{
	static const size_t sizes[] = {1, 2, 127, 128, 16383, 16384, 20000};
	unsigned seed = 31337;
	uint8_t *payload = malloc(20000);
	int i;

	ck_assert_ptr_nonnull(payload);
	for (i = 0; i < 400; i++) {
		struct logentry le, dec;
		struct raw_le re;
		struct buf out;
		char reason[LOGENTRY_REASON_MAX];
		uint8_t *raw;
		size_t plen, j, want;

		memset(&le, 0, sizeof le);
		le.kind = (enum logentry_kind)(1 + rand_r(&seed) % 3);
		le.verdict = le.kind == LOGENTRY_CHANGESET && rand_r(&seed) % 2
				     ? LOGENTRY_REFUSED
				     : LOGENTRY_ACCEPTED;
		if (le.verdict == LOGENTRY_REFUSED) {
			le.reason_len = 1 + (size_t)rand_r(&seed) %
						    LOGENTRY_REASON_MAX;
			if (i % 9 == 1)
				le.reason_len = LOGENTRY_REASON_MAX;
			random_text(&seed, reason, le.reason_len);
			le.reason = reason;
		}
		plen = i < 7 ? sizes[i] : 1 + (size_t)rand_r(&seed) % 600;
		for (j = 0; j < plen; j++)
			payload[j] = (uint8_t)rand_r(&seed);
		le.payload = payload;
		le.payload_len = plen;

		buf_init(&out, LOGENTRY_MAX);
		ck_assert_int_eq(logentry_encode(&le, &out), BS_OK);
		want = 4 + 1 + 1 + 1 + wire_varint_size(le.reason_len) +
		       le.reason_len + wire_varint_size(plen) + plen;
		ck_assert_uint_eq(out.len, want);
		raw = malloc(want);
		ck_assert_ptr_nonnull(raw);
		raw_le_default(&re);
		re.kind = (uint8_t)le.kind;
		re.verdict = (uint8_t)le.verdict;
		re.reason = le.reason;
		re.reason_len = le.reason_len;
		re.payload = payload;
		re.payload_len = plen;
		ck_assert_uint_eq(raw_entry(&re, raw), want);
		ck_assert_mem_eq(out.data, raw, want);
		free(raw);

		ck_assert_int_eq(logentry_decode(out.data, out.len, &dec), BS_OK);
		ck_assert_int_eq(dec.kind, le.kind);
		ck_assert_int_eq(dec.verdict, le.verdict);
		ck_assert_uint_eq(dec.reason_len, le.reason_len);
		if (le.reason_len)
			ck_assert_mem_eq(dec.reason, le.reason, le.reason_len);
		ck_assert_uint_eq(dec.payload_len, plen);
		ck_assert_mem_eq(dec.payload, payload, plen);
		buf_release(&out);
	}
	free(payload);
}
END_TEST

/* The payload limit, on both sides, without allocating for a length that
 * is not there. */
START_TEST(payload_limit)
{
	uint8_t *payload = calloc(1, CHANGESET_MAX_ENCODED + 1);
	struct logentry le, dec;
	struct raw_le re;
	struct buf out;
	uint8_t in[64];
	size_t n;

	ck_assert_ptr_nonnull(payload);
	memset(&le, 0, sizeof le);
	le.kind = LOGENTRY_CHANGESET;
	le.payload = payload;
	le.payload_len = CHANGESET_MAX_ENCODED;
	payload[CHANGESET_MAX_ENCODED - 1] = 7;
	buf_init(&out, LOGENTRY_MAX);
	ck_assert_int_eq(logentry_encode(&le, &out), BS_OK);
	ck_assert_uint_le(out.len, LOGENTRY_MAX);
	ck_assert_int_eq(logentry_decode(out.data, out.len, &dec), BS_OK);
	ck_assert_uint_eq(dec.payload_len, CHANGESET_MAX_ENCODED);
	ck_assert_int_eq(decode_copy(out.data, out.len - 1), BS_ETRUNCATED);

	/* One more byte: the encoder refuses to write what the decoder would
	 * refuse, and leaves the buffer alone. */
	buf_reset(&out);
	buf_append(&out, "ab", 2);
	le.payload_len = CHANGESET_MAX_ENCODED + 1;
	ck_assert_int_eq(logentry_encode(&le, &out), BS_ELIMIT);
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq(out.status, BS_OK);
	buf_release(&out);
	free(payload);

	/* A declared length over the limit, and nothing after it. */
	raw_le_default(&re);
	re.payload_len = 0;
	n = raw_entry(&re, in) - 1;
	n += t_varint(in + n, (uint64_t)CHANGESET_MAX_ENCODED + 1);
	mem_fail_after(0);
	ck_assert_int_eq(logentry_decode(in, n, &dec), BS_ELIMIT);
	mem_fail_reset();
	n -= wire_varint_size((uint64_t)CHANGESET_MAX_ENCODED + 1);
	n += t_varint(in + n, UINT64_MAX);
	ck_assert_int_eq(decode_copy(in, n), BS_ELIMIT);
	/* Exactly the limit: the missing bytes are truncation. */
	n -= wire_varint_size(UINT64_MAX);
	n += t_varint(in + n, CHANGESET_MAX_ENCODED);
	ck_assert_int_eq(decode_copy(in, n), BS_ETRUNCATED);
}
END_TEST

/* ---- malformed input, one rule at a time ---- */

START_TEST(truncated_at_every_offset)
{
	char names[16][32];
	size_t count, v, cut;

	count = kat_names(VECTORS, NULL, names, 16);
	for (v = 0; v < count; v++) {
		struct kat_le k;

		kat_le_load(names[v], &k);
		ck_assert_int_eq(decode_copy(k.encoded, k.enc_len), BS_OK);
		for (cut = 0; cut < k.enc_len; cut++)
			ck_assert_msg(decode_copy(k.encoded, cut) == BS_ETRUNCATED,
				      "%s cut at %zu", names[v], cut);
	}
}
END_TEST

START_TEST(trailing_bytes)
{
	char names[16][32];
	size_t count, v;

	count = kat_names(VECTORS, NULL, names, 16);
	for (v = 0; v < count; v++) {
		struct kat_le k;
		uint8_t in[ENC_MAX + 2];

		kat_le_load(names[v], &k);
		memcpy(in, k.encoded, k.enc_len);
		in[k.enc_len] = 0x00;
		in[k.enc_len + 1] = 0xff;
		ck_assert_int_eq(decode_copy(in, k.enc_len + 1), BS_ETRAILING);
		ck_assert_int_eq(decode_copy(in, k.enc_len + 2), BS_ETRAILING);
	}
}
END_TEST

START_TEST(wrong_magic_and_version)
{
	static const uint8_t versions[] = {0, 2, 0x81, 0xff};
	struct kat_le k;
	uint8_t in[ENC_MAX];
	size_t i;

	kat_le_load("le-refused", &k);
	for (i = 0; i < 4; i++) {
		memcpy(in, k.encoded, k.enc_len);
		in[i] ^= 0x20;
		ck_assert_int_eq(decode_copy(in, k.enc_len), BS_EMAGIC);
	}
	/* The payload is not an entry. */
	ck_assert_int_eq(decode_copy(k.payload, k.payload_len), BS_EMAGIC);
	for (i = 0; i < sizeof versions; i++) {
		memcpy(in, k.encoded, k.enc_len);
		in[OFF_VERSION] = versions[i];
		ck_assert_int_eq(decode_copy(in, k.enc_len), BS_EVERSION);
	}
	memcpy(in, "XXXX", 4);
	in[OFF_VERSION] = 9;
	ck_assert_int_eq(decode_copy(in, 5), BS_EMAGIC);
	ck_assert_int_eq(decode_copy(in, 3), BS_ETRUNCATED);
	memcpy(in, "BSLE", 4);
	ck_assert_int_eq(decode_copy(in, 5), BS_EVERSION);
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
	static const uint8_t zero2[] = {0x80, 0x00};
	static const uint8_t twelve2[] = {0x8c, 0x00};
	static const uint8_t five3[] = {0x85, 0x80, 0x00};
	static const uint8_t tenth_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0x02};
	struct raw_le e;
	uint8_t in[256], out[256];
	size_t len, n, poff;

	raw_le_default(&e);
	len = raw_entry(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_OK);
	ck_assert_uint_eq(in[OFF_REASON], 12);
	n = splice(in, len, OFF_REASON, 1, twelve2, sizeof twelve2, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	n = splice(in, len, OFF_REASON, 1, tenth_big, sizeof tenth_big, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	poff = OFF_REASON + 1 + 12;
	ck_assert_uint_eq(in[poff], 5);
	n = splice(in, len, poff, 1, five3, sizeof five3, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);

	/* An accepted entry's empty reason as 80 00. */
	e.verdict = LOGENTRY_ACCEPTED;
	e.reason_len = 0;
	len = raw_entry(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_OK);
	n = splice(in, len, OFF_REASON, 1, zero2, sizeof zero2, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
}
END_TEST

START_TEST(oversize_reason)
{
	char text[600];
	struct raw_le e;
	uint8_t in[1024];
	size_t len;

	memset(text, 'r', sizeof text);
	raw_le_default(&e);
	e.reason = text;
	e.reason_len = LOGENTRY_REASON_MAX + 1;
	len = raw_entry(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_ELIMIT);
	ck_assert_int_eq(decode_copy(in, OFF_REASON + 2), BS_ELIMIT);
	e.reason_len = sizeof text;
	len = raw_entry(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_ELIMIT);
	e.reason_len = LOGENTRY_REASON_MAX;
	len = raw_entry(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_OK);
}
END_TEST

struct le_case {
	const char *what;
	uint8_t kind, verdict;
	const char *reason;
	size_t reason_len;
	size_t payload_len;
	enum bs_status want;
};

#define S(s) s, sizeof s - 1

START_TEST(invalid_fields)
{
	static const struct le_case cases[] = {
		{"kind 0", 0, 0, S(""), 5, BS_EINVALID},
		{"kind 4", 4, 0, S(""), 5, BS_EINVALID},
		{"kind 255", 255, 0, S(""), 5, BS_EINVALID},
		{"verdict 2", 1, 2, S("x"), 5, BS_EINVALID},
		{"verdict 255", 1, 255, S(""), 5, BS_EINVALID},
		{"refused without reason", 1, 1, S(""), 5, BS_EINVALID},
		{"refused enrollment", 2, 1, S("no"), 5, BS_EINVALID},
		{"refused revocation", 3, 1, S("no"), 5, BS_EINVALID},
		{"accepted with reason", 1, 0, S("ok"), 5, BS_EINVALID},
		{"accepted enrollment with reason", 2, 0, S("ok"), 5,
		 BS_EINVALID},
		{"empty payload", 1, 0, S(""), 0, BS_EINVALID},
		{"refused, empty payload", 1, 1, S("no"), 0, BS_EINVALID},
		{"NUL in reason", 1, 1, S("a\0b"), 5, BS_EINVALID},
		{"newline in reason", 1, 1, S("a\n"), 5, BS_EINVALID},
		{"0x1f in reason", 1, 1, S("\x1f"), 5, BS_EINVALID},
		{"DEL in reason", 1, 1, S("\x7f"), 5, BS_EINVALID},
		/* Controls. */
		{"accepted change set", 1, 0, S(""), 5, BS_OK},
		{"accepted enrollment", 2, 0, S(""), 5, BS_OK},
		{"accepted revocation", 3, 0, S(""), 1, BS_OK},
		{"refused, UTF-8 reason", 1, 1, S("\xe8\xb6\x8a\xe6\x9d\x83 ~"),
		 5, BS_OK},
		{"refused, reason of a space", 1, 1, S(" "), 1, BS_OK},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct le_case *c = &cases[i];
		struct raw_le e;
		uint8_t in[256];
		size_t len;
		enum bs_status got;

		raw_le_default(&e);
		e.kind = c->kind;
		e.verdict = c->verdict;
		e.reason = c->reason;
		e.reason_len = c->reason_len;
		e.payload_len = c->payload_len;
		len = raw_entry(&e, in);
		got = decode_copy(in, len);
		ck_assert_msg(got == c->want, "%s: got %s, want %s", c->what,
			      bs_status_str(got), bs_status_str(c->want));

		/* The encoder agrees. */
		{
			struct logentry le;
			struct buf out;

			memset(&le, 0, sizeof le);
			le.kind = (enum logentry_kind)c->kind;
			le.verdict = (enum logentry_verdict)c->verdict;
			le.reason = c->reason;
			le.reason_len = c->reason_len;
			le.payload = small_payload;
			le.payload_len = c->payload_len;
			buf_init(&out, 256);
			buf_append(&out, "pre", 3);
			ck_assert_msg(logentry_encode(&le, &out) == c->want,
				      "encode %s", c->what);
			if (c->want == BS_OK) {
				ck_assert_uint_eq(out.len, 3 + len);
				ck_assert_mem_eq(out.data + 3, in, len);
			} else {
				ck_assert_uint_eq(out.len, 3);
				ck_assert_int_eq(out.status, BS_OK);
			}
			buf_release(&out);
		}
	}
}
END_TEST

/* Field rules are judged on a whole entry: the framing errors come first. */
START_TEST(framing_before_rules)
{
	struct raw_le e;
	uint8_t in[256];
	size_t len;

	raw_le_default(&e);
	e.kind = 9;
	len = raw_entry(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_EINVALID);
	ck_assert_int_eq(decode_copy(in, len - 1), BS_ETRUNCATED);
	in[len] = 0;
	ck_assert_int_eq(decode_copy(in, len + 1), BS_ETRAILING);
	ck_assert_int_eq(decode_copy(in, OFF_KIND + 1), BS_ETRUNCATED);
	ck_assert_int_eq(decode_copy(in, OFF_VERDICT + 1), BS_ETRUNCATED);
}
END_TEST

START_TEST(encoder_resources)
{
	struct logentry le;
	struct buf out;
	uint8_t pad[512] = {0};

	memset(&le, 0, sizeof le);
	le.kind = LOGENTRY_REVOCATION;
	le.payload = small_payload;
	le.payload_len = sizeof small_payload;
	/* reason NULL with length 0 is an empty reason. */
	buf_init(&out, 14);
	ck_assert_int_eq(logentry_encode(&le, &out), BS_OK);
	ck_assert_uint_eq(out.len, 4 + 3 + 1 + 1 + 5);
	buf_release(&out);
	/* Too small a buffer: the buffer's error, sticky. */
	buf_init(&out, 10);
	ck_assert_int_eq(logentry_encode(&le, &out), BS_ELIMIT);
	ck_assert_int_eq(out.status, BS_ELIMIT);
	buf_release(&out);
	/* No memory. */
	buf_init(&out, 1024);
	mem_fail_after(0);
	ck_assert_int_eq(logentry_encode(&le, &out), BS_ENOMEM);
	mem_fail_reset();
	buf_release(&out);
	/* With memory already there, encoding allocates nothing. */
	buf_init(&out, 1024);
	buf_append(&out, pad, sizeof pad);
	buf_reset(&out);
	mem_fail_after(0);
	ck_assert_int_eq(logentry_encode(&le, &out), BS_OK);
	mem_fail_reset();
	buf_release(&out);
}
END_TEST

START_TEST(decode_never_allocates)
{
	char names[16][32];
	size_t count, v;

	count = kat_names(VECTORS, NULL, names, 16);
	for (v = 0; v < count; v++) {
		struct kat_le k;
		struct logentry le;
		uint8_t leaf[32];

		kat_le_load(names[v], &k);
		mem_fail_after(0);
		ck_assert_int_eq(logentry_decode(k.encoded, k.enc_len, &le),
				 BS_OK);
		logentry_leaf_hash(k.encoded, k.enc_len, leaf);
		mem_fail_reset();
		ck_assert_mem_eq(leaf, k.leaf, 32);
	}
}
END_TEST

/* A changed byte anywhere changes the leaf, and a changed byte in the
 * framing is refused or decodes to other values. */
START_TEST(flips_change_entry)
{
	struct kat_le k;
	uint8_t in[ENC_MAX], leaf[32];
	size_t i;

	kat_le_load("le-refused", &k);
	for (i = 0; i < k.enc_len; i++) {
		struct logentry le;
		enum bs_status rc;

		memcpy(in, k.encoded, k.enc_len);
		in[i] ^= 0x01;
		logentry_leaf_hash(in, k.enc_len, leaf);
		ck_assert_mem_ne(leaf, k.leaf, 32);
		rc = decode_copy(in, k.enc_len);
		if (i < k.enc_len - k.payload_len) {
			if (rc == BS_OK) {
				ck_assert_int_eq(logentry_decode(in, k.enc_len,
								 &le),
						 BS_OK);
				ck_assert(le.reason_len != k.reason_len ||
					  memcmp(le.reason, k.reason,
						 k.reason_len) != 0);
			}
		} else {
			/* The payload is opaque here: its signature is
			 * checked by its own module. */
			ck_assert_int_eq(rc, BS_OK);
		}
	}
}
END_TEST

static Suite *logentry_suite(void)
{
	Suite *s = suite_create("logentry");
	TCase *kat = tcase_create("kat");
	TCase *rt = tcase_create("roundtrip");
	TCase *bad = tcase_create("malformed");

	tcase_add_test(kat, kat_entries);
	tcase_add_test(kat, leaf_hash_known);
	tcase_add_test(rt, roundtrip_random);
	tcase_add_test(rt, payload_limit);
	tcase_add_test(bad, truncated_at_every_offset);
	tcase_add_test(bad, trailing_bytes);
	tcase_add_test(bad, wrong_magic_and_version);
	tcase_add_test(bad, overlong_varints);
	tcase_add_test(bad, oversize_reason);
	tcase_add_test(bad, invalid_fields);
	tcase_add_test(bad, framing_before_rules);
	tcase_add_test(bad, encoder_resources);
	tcase_add_test(bad, decode_never_allocates);
	tcase_add_test(bad, flips_change_entry);
	suite_add_tcase(s, kat);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(logentry_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
