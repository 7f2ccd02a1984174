/* test_changeset.c - Check suite for protocol/changeset: known-answer vectors
 * (tests/vectors/changeset-kat.txt), sign/decode/verify round trips, and one
 * malformed input per rejection rule with the exact bs_status it must give.
 * Not for the body's contents (SQLite session bytes are opaque here). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "changeset.h"
#include "kat.h"
#include "mem.h"
#include "sign.h"
#include "wire.h"

/* Offsets of the fixed-position fields (FORMAT.md, "Change sets"). */
#define OFF_VERSION 4
#define OFF_AUTHOR 5
#define OFF_SEQ 37

static uint8_t pk_a[SIGN_PUBLIC_BYTES], sk_a[SIGN_SECRET_BYTES];
static uint8_t pk_b[SIGN_PUBLIC_BYTES], sk_b[SIGN_SECRET_BYTES];

/* Key A from seed 01..20, key B from seed 21..40 (as in the vectors). */
static void keys_init(void)
{
	ck_assert_int_eq(sign_init(), BS_OK);
	kat_keypair(1, pk_a, sk_a);
	kat_keypair(0x21, pk_b, sk_b);
}

/* The known-answer file (read-only; see its header). */
#define VECTORS "changeset-kat.txt"

struct kat_cs {
	uint8_t seed[32], author[32], prev[32], body_hash[32], id[32];
	uint8_t sig[SIGN_BYTES];
	uint64_t seq, hlc, schema;
	char scope[CHANGESET_SCOPE_MAX + 1];
	uint8_t body[4096];
	size_t body_len;
	uint8_t envelope[CHANGESET_ENVELOPE_MAX];
	size_t env_len;
	uint8_t message[64 + CHANGESET_ENVELOPE_MAX];
	size_t msg_len;
	uint8_t encoded[4096 + 512];
	size_t enc_len;
};

static void kat_cs_load(const char *name, struct kat_cs *k)
{
	size_t len = 0;
	const char *scope;

	memset(k, 0, sizeof *k);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "seed", k->seed, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "author", k->author, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "prev", k->prev, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "body_hash", k->body_hash, 32),
			  32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "id", k->id, 32), 32);
	ck_assert_uint_eq(
	    kat_hex(VECTORS, name, "signature", k->sig, SIGN_BYTES),
	    SIGN_BYTES);
	k->seq = kat_u64(VECTORS, name, "seq");
	k->hlc = kat_u64(VECTORS, name, "hlc");
	k->schema = kat_u64(VECTORS, name, "schema_version");
	scope = kat_find(VECTORS, name, "scope", &len);
	ck_assert_ptr_nonnull(scope);
	ck_assert_uint_le(len, CHANGESET_SCOPE_MAX);
	memcpy(k->scope, scope, len);
	k->body_len = kat_hex(VECTORS, name, "body", k->body, sizeof k->body);
	k->env_len =
	    kat_hex(VECTORS, name, "envelope", k->envelope, sizeof k->envelope);
	k->msg_len =
	    kat_hex(VECTORS, name, "message", k->message, sizeof k->message);
	k->enc_len =
	    kat_hex(VECTORS, name, "encoded", k->encoded, sizeof k->encoded);
}

/* ---- an encoder of our own, written from FORMAT.md, with no checks, so
 * tests can build the bytes the real encoder refuses to make ---- */

struct raw_env {
	uint8_t magic[4];
	uint8_t version;
	uint8_t author[32];
	uint64_t seq;
	uint8_t prev[32];
	uint64_t hlc;
	const char *scope;
	size_t scope_len;
	uint64_t schema;
	uint64_t body_len;
	uint8_t body_hash[32];
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

static size_t raw_envelope(const struct raw_env *e, uint8_t *out)
{
	size_t n = 0;
	int i;

	memcpy(out + n, e->magic, 4);
	n += 4;
	out[n++] = e->version;
	memcpy(out + n, e->author, 32);
	n += 32;
	n += t_varint(out + n, e->seq);
	memcpy(out + n, e->prev, 32);
	n += 32;
	for (i = 7; i >= 0; i--)
		out[n++] = (uint8_t)(e->hlc >> (8 * i));
	n += t_varint(out + n, e->scope_len);
	memcpy(out + n, e->scope, e->scope_len);
	n += e->scope_len;
	n += t_varint(out + n, e->schema);
	n += t_varint(out + n, e->body_len);
	memcpy(out + n, e->body_hash, 32);
	return n + 32;
}

/* A valid envelope description for `body` by key A at seq 5. */
static void raw_env_default(struct raw_env *e, const uint8_t *body,
			    size_t body_len)
{
	memset(e, 0, sizeof *e);
	memcpy(e->magic, "BSCS", 4);
	e->version = 1;
	memcpy(e->author, pk_a, 32);
	e->seq = 5;
	memset(e->prev, 0x5a, 32);
	e->hlc = 0x0102030405060708ull;
	e->scope = "branch:b-17";
	e->scope_len = strlen(e->scope);
	e->schema = 1;
	e->body_len = body_len;
	crypto_hash_sha256(e->body_hash, body, body_len);
}

/* envelope || sign(kind, envelope) || body into out; returns the length. */
static size_t raw_signed(const struct raw_env *e, const uint8_t *body,
			 size_t body_len, enum sign_kind kind,
			 const uint8_t *sk, uint8_t *out, size_t *env_len)
{
	size_t n = raw_envelope(e, out);

	if (env_len)
		*env_len = n;
	ck_assert_int_eq(sign_detached(kind, out, n, sk, out + n), BS_OK);
	memcpy(out + n + SIGN_BYTES, body, body_len);
	return n + SIGN_BYTES + body_len;
}

/* Decodes an exact-size heap copy, so that ASan sees any over-read. */
static enum bs_status decode_copy(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct changeset cs;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = changeset_decode(copy, len, &cs);
	free(copy);
	return rc;
}

/* Decode then verify; the first failure. */
static enum bs_status decode_verify(const uint8_t *p, size_t len)
{
	struct changeset cs;
	enum bs_status rc = changeset_decode(p, len, &cs);

	return rc ? rc : changeset_verify(&cs);
}

static const uint8_t kat_body[10] = {0x54, 1, 2, 3, 4, 5, 6, 7, 8, 9};

/* ---- known answers ---- */

START_TEST(kat_encode_matches_file)
{
	char names[8][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	ck_assert_uint_ge(count, 3);
	for (v = 0; v < count; v++) {
		struct kat_cs k;
		struct changeset_envelope env;
		struct raw_env re;
		struct buf out;
		uint8_t pk[32], sk[64], id[32], hash[32], raw[CHANGESET_ENVELOPE_MAX];
		const char *label = "branchsync/changeset/v1";

		kat_cs_load(names[v], &k);
		crypto_sign_seed_keypair(pk, sk, k.seed);
		ck_assert_mem_eq(pk, k.author, 32);

		memset(&env, 0, sizeof env);
		memcpy(env.author, pk, 32);
		env.seq = k.seq;
		memcpy(env.prev, k.prev, 32);
		env.hlc = k.hlc;
		memcpy(env.scope, k.scope, sizeof env.scope);
		env.schema_version = k.schema;
		buf_init(&out, CHANGESET_MAX_ENCODED);
		ck_assert_int_eq(changeset_sign(&env, k.body, k.body_len, sk,
						&out, id),
				 BS_OK);
		ck_assert_uint_eq(out.len, k.enc_len);
		ck_assert_mem_eq(out.data, k.encoded, k.enc_len);
		ck_assert_mem_eq(id, k.id, 32);
		ck_assert_uint_eq(env.body_len, k.body_len);
		ck_assert_mem_eq(env.body_hash, k.body_hash, 32);
		buf_release(&out);

		/* The file agrees with itself and with FORMAT.md. */
		crypto_hash_sha256(hash, k.body, k.body_len);
		ck_assert_mem_eq(hash, k.body_hash, 32);
		memcpy(re.magic, "BSCS", 4);
		re.version = 1;
		memcpy(re.author, k.author, 32);
		re.seq = k.seq;
		memcpy(re.prev, k.prev, 32);
		re.hlc = k.hlc;
		re.scope = k.scope;
		re.scope_len = strlen(k.scope);
		re.schema = k.schema;
		re.body_len = k.body_len;
		memcpy(re.body_hash, k.body_hash, 32);
		ck_assert_uint_eq(raw_envelope(&re, raw), k.env_len);
		ck_assert_mem_eq(raw, k.envelope, k.env_len);
		ck_assert_uint_eq(k.msg_len, strlen(label) + 1 + k.env_len);
		ck_assert_mem_eq(k.message, label, strlen(label) + 1);
		ck_assert_mem_eq(k.message + strlen(label) + 1, k.envelope,
				 k.env_len);
		ck_assert_int_eq(crypto_sign_verify_detached(k.sig, k.message,
							     k.msg_len, pk),
				 0);
		ck_assert_uint_eq(k.enc_len, k.env_len + SIGN_BYTES + k.body_len);
		ck_assert_mem_eq(k.encoded, k.envelope, k.env_len);
		ck_assert_mem_eq(k.encoded + k.env_len, k.sig, SIGN_BYTES);
		ck_assert_mem_eq(k.encoded + k.env_len + SIGN_BYTES, k.body,
				 k.body_len);
		crypto_hash_sha256(hash, k.encoded, k.env_len + SIGN_BYTES);
		ck_assert_mem_eq(hash, k.id, 32);
	}
}
END_TEST

START_TEST(kat_decode_gives_fields)
{
	char names[8][32];
	size_t count, v;
	struct kat_cs first;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_cs k;
		struct changeset cs;

		kat_cs_load(names[v], &k);
		ck_assert_int_eq(changeset_decode(k.encoded, k.enc_len, &cs),
				 BS_OK);
		ck_assert_int_eq(changeset_verify(&cs), BS_OK);
		ck_assert_mem_eq(cs.env.author, k.author, 32);
		ck_assert_uint_eq(cs.env.seq, k.seq);
		ck_assert_mem_eq(cs.env.prev, k.prev, 32);
		ck_assert_uint_eq(cs.env.hlc, k.hlc);
		ck_assert_str_eq(cs.env.scope, k.scope);
		ck_assert_uint_eq(cs.env.schema_version, k.schema);
		ck_assert_uint_eq(cs.env.body_len, k.body_len);
		ck_assert_mem_eq(cs.env.body_hash, k.body_hash, 32);
		ck_assert_ptr_eq(cs.env_bytes, k.encoded);
		ck_assert_uint_eq(cs.env_len, k.env_len);
		ck_assert_ptr_eq(cs.sig, k.encoded + k.env_len);
		ck_assert_mem_eq(cs.sig, k.sig, SIGN_BYTES);
		ck_assert_ptr_eq(cs.body, k.encoded + k.env_len + SIGN_BYTES);
		ck_assert_uint_eq(cs.body_len, k.body_len);
		ck_assert_uint_eq(cs.encoded_len, k.enc_len);
		ck_assert_mem_eq(cs.id, k.id, 32);
	}
	/* The chain: "second" names "first" as its predecessor. */
	{
		struct kat_cs second;

		kat_cs_load("first", &first);
		kat_cs_load("second", &second);
		ck_assert_uint_eq(second.seq, first.seq + 1);
		ck_assert_mem_eq(second.prev, first.id, 32);
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

START_TEST(roundtrip_random)
{
	static const size_t sizes[] = {1, 2, 127, 128, 16383, 16384,
				       100 * 1024};
	unsigned seed = 4242;
	uint8_t *body = malloc(100 * 1024);
	int i;

	keys_init();
	ck_assert_ptr_nonnull(body);
	for (i = 0; i < 300; i++) {
		struct changeset_envelope env;
		struct changeset cs;
		struct raw_env re;
		struct buf out;
		uint8_t id[32], hash[32], raw[CHANGESET_ENVELOPE_MAX];
		size_t body_len, scope_len, j, env_len;
		int use_b = rand_r(&seed) & 1;

		memset(&env, 0, sizeof env);
		memcpy(env.author, use_b ? pk_b : pk_a, 32);
		env.seq = rand64(&seed);
		if (env.seq == 0 || i % 7 == 0)
			env.seq = 1 + (uint64_t)(i % 3);
		if (i % 11 == 0)
			env.seq = UINT64_MAX;
		if (env.seq != 1) {
			for (j = 0; j < 32; j++)
				env.prev[j] = (uint8_t)rand_r(&seed);
			env.prev[rand_r(&seed) % 32] |= 1;
		}
		env.hlc = rand64(&seed);
		scope_len = 1 + (size_t)rand_r(&seed) % CHANGESET_SCOPE_MAX;
		for (j = 0; j < scope_len; j++)
			env.scope[j] = scope_alphabet[rand_r(&seed) %
						      (sizeof scope_alphabet - 1)];
		env.schema_version = 1 + rand64(&seed) % UINT64_MAX;
		if (i % 13 == 0)
			env.schema_version = UINT64_MAX;
		body_len = i < 7 ? sizes[i] : 1 + (size_t)rand_r(&seed) % 4096;
		for (j = 0; j < body_len; j++)
			body[j] = (uint8_t)rand_r(&seed);

		buf_init(&out, CHANGESET_MAX_ENCODED);
		ck_assert_int_eq(changeset_sign(&env, body, body_len,
						use_b ? sk_b : sk_a, &out, id),
				 BS_OK);
		ck_assert_int_eq(changeset_decode(out.data, out.len, &cs), BS_OK);
		ck_assert_int_eq(changeset_verify(&cs), BS_OK);
		ck_assert_mem_eq(cs.env.author, env.author, 32);
		ck_assert_uint_eq(cs.env.seq, env.seq);
		ck_assert_mem_eq(cs.env.prev, env.prev, 32);
		ck_assert_uint_eq(cs.env.hlc, env.hlc);
		ck_assert_str_eq(cs.env.scope, env.scope);
		ck_assert_uint_eq(cs.env.schema_version, env.schema_version);
		ck_assert_uint_eq(cs.body_len, body_len);
		ck_assert_mem_eq(cs.body, body, body_len);
		ck_assert_uint_eq(cs.encoded_len, out.len);

		/* Envelope length and bytes as FORMAT.md says. */
		env_len = 4 + 1 + 32 + wire_varint_size(env.seq) + 32 + 8 + 1 +
			  scope_len + wire_varint_size(env.schema_version) +
			  wire_varint_size(body_len) + 32;
		ck_assert_uint_eq(cs.env_len, env_len);
		ck_assert_uint_eq(out.len, env_len + SIGN_BYTES + body_len);
		memcpy(re.magic, "BSCS", 4);
		re.version = 1;
		memcpy(re.author, env.author, 32);
		re.seq = env.seq;
		memcpy(re.prev, env.prev, 32);
		re.hlc = env.hlc;
		re.scope = env.scope;
		re.scope_len = scope_len;
		re.schema = env.schema_version;
		re.body_len = body_len;
		crypto_hash_sha256(re.body_hash, body, body_len);
		ck_assert_uint_eq(raw_envelope(&re, raw), env_len);
		ck_assert_mem_eq(out.data, raw, env_len);

		/* id = SHA-256(envelope || signature), computed here. */
		crypto_hash_sha256(hash, out.data, env_len + SIGN_BYTES);
		ck_assert_mem_eq(id, hash, 32);
		ck_assert_mem_eq(cs.id, hash, 32);

		/* The signature is the author's, under the change set label. */
		{
			uint8_t msg[64 + CHANGESET_ENVELOPE_MAX];
			static const char label[] = "branchsync/changeset/v1";

			memcpy(msg, label, sizeof label);
			memcpy(msg + sizeof label, out.data, env_len);
			ck_assert_int_eq(crypto_sign_verify_detached(
						 out.data + env_len, msg,
						 sizeof label + env_len,
						 use_b ? pk_b : pk_a),
					 0);
		}
		buf_release(&out);
	}
	free(body);
}
END_TEST

START_TEST(roundtrip_limits)
{
	struct changeset_envelope env;
	struct changeset cs;
	struct buf out;
	uint8_t id[32];
	uint8_t *body = calloc(1, CHANGESET_MAX_BODY + 1);

	keys_init();
	ck_assert_ptr_nonnull(body);
	memset(&env, 0, sizeof env);
	memcpy(env.author, pk_a, 32);
	env.seq = UINT64_MAX;
	memset(env.prev, 0xff, 32);
	env.hlc = UINT64_MAX;
	memset(env.scope, 'z', CHANGESET_SCOPE_MAX); /* exactly the limit */
	env.schema_version = UINT64_MAX;
	body[0] = 1;
	body[CHANGESET_MAX_BODY - 1] = 2;

	buf_init(&out, CHANGESET_MAX_ENCODED);
	ck_assert_int_eq(changeset_sign(&env, body, CHANGESET_MAX_BODY, sk_a,
					&out, id),
			 BS_OK);
	ck_assert_uint_le(out.len, CHANGESET_MAX_ENCODED);
	ck_assert_int_eq(changeset_decode(out.data, out.len, &cs), BS_OK);
	ck_assert_int_eq(changeset_verify(&cs), BS_OK);
	ck_assert_uint_eq(cs.body_len, CHANGESET_MAX_BODY);
	ck_assert_uint_le(cs.env_len, CHANGESET_ENVELOPE_MAX);
	ck_assert_uint_eq(cs.env_len, 198); /* the largest envelope */

	/* One byte more is refused, and nothing is left in the buffer. */
	buf_reset(&out);
	buf_append(&out, "xy", 2);
	ck_assert_int_eq(changeset_sign(&env, body, CHANGESET_MAX_BODY + 1,
					sk_a, &out, id),
			 BS_ELIMIT);
	ck_assert_uint_eq(out.len, 2);
	buf_release(&out);
	free(body);
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
		struct kat_cs k;

		kat_cs_load(names[v], &k);
		ck_assert_int_eq(decode_copy(k.encoded, k.enc_len), BS_OK);
		for (cut = 0; cut < k.enc_len; cut++)
			ck_assert_msg(decode_copy(k.encoded, cut) == BS_ETRUNCATED,
				      "%s cut at %zu", names[v], cut);
	}
}
END_TEST

START_TEST(trailing_bytes)
{
	struct kat_cs k;
	uint8_t in[sizeof k.encoded + 2];

	keys_init();
	kat_cs_load("first", &k);
	memcpy(in, k.encoded, k.enc_len);
	in[k.enc_len] = 0x00;
	in[k.enc_len + 1] = 0xff;
	ck_assert_int_eq(decode_copy(in, k.enc_len + 1), BS_ETRAILING);
	ck_assert_int_eq(decode_copy(in, k.enc_len + 2), BS_ETRAILING);
	in[k.enc_len] = 0xff;
	ck_assert_int_eq(decode_copy(in, k.enc_len + 1), BS_ETRAILING);
}
END_TEST

START_TEST(wrong_magic_and_version)
{
	struct kat_cs k;
	uint8_t in[sizeof k.encoded];
	static const uint8_t versions[] = {0, 2, 0x81, 0xff};
	size_t i;

	keys_init();
	kat_cs_load("first", &k);
	for (i = 0; i < 4; i++) {
		memcpy(in, k.encoded, k.enc_len);
		in[i] ^= 0x20; /* "bSCS", "BsCS", ... */
		ck_assert_int_eq(decode_copy(in, k.enc_len), BS_EMAGIC);
	}
	memcpy(in, k.encoded, k.enc_len);
	memcpy(in, "BSCP", 4); /* a checkpoint's magic */
	ck_assert_int_eq(decode_copy(in, k.enc_len), BS_EMAGIC);
	for (i = 0; i < sizeof versions; i++) {
		memcpy(in, k.encoded, k.enc_len);
		in[OFF_VERSION] = versions[i];
		ck_assert_int_eq(decode_copy(in, k.enc_len), BS_EVERSION);
	}
	/* Magic is judged before the version, the version before the rest. */
	memcpy(in, "XXXX", 4);
	in[OFF_VERSION] = 9;
	ck_assert_int_eq(decode_copy(in, 5), BS_EMAGIC);
	memcpy(in, "BSCS", 4);
	ck_assert_int_eq(decode_copy(in, 5), BS_EVERSION);
}
END_TEST

/* Replaces the varint at `off` (of `old_len` bytes) with `rep`. */
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
	struct raw_env e;
	uint8_t in[1024], out[1024];
	size_t len, env_len, n, off;
	static const uint8_t seq5[] = {0x85, 0x00};
	static const uint8_t seq5_long[] = {0x85, 0x80, 0x80, 0x00};
	static const uint8_t eleven[] = {0x85, 0x80, 0x80, 0x80, 0x80, 0x80,
					 0x80, 0x80, 0x80, 0x80, 0x00};
	static const uint8_t tenth_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0x02};

	keys_init();
	raw_env_default(&e, kat_body, sizeof kat_body);
	len = raw_signed(&e, kat_body, sizeof kat_body, SIGN_CHANGESET, sk_a,
			 in, &env_len);
	ck_assert_int_eq(decode_verify(in, len), BS_OK);
	ck_assert_uint_eq(in[OFF_SEQ], 0x05);

	/* seq 5 as 85 00: the same number, not its one encoding. */
	n = splice(in, len, OFF_SEQ, 1, seq5, sizeof seq5, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	n = splice(in, len, OFF_SEQ, 1, seq5_long, sizeof seq5_long, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	n = splice(in, len, OFF_SEQ, 1, eleven, sizeof eleven, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	n = splice(in, len, OFF_SEQ, 1, tenth_big, sizeof tenth_big, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);

	/* The scope length, schema version and body length likewise. */
	off = OFF_SEQ + 1 + 32 + 8;
	ck_assert_uint_eq(in[off], e.scope_len);
	{
		uint8_t rep[2] = {(uint8_t)(0x80 | e.scope_len), 0x00};

		n = splice(in, len, off, 1, rep, 2, out);
		ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	}
	off += 1 + e.scope_len;
	ck_assert_uint_eq(in[off], 1); /* schema_version */
	{
		static const uint8_t rep[] = {0x81, 0x00};

		n = splice(in, len, off, 1, rep, 2, out);
		ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	}
	off += 1;
	ck_assert_uint_eq(in[off], sizeof kat_body);
	{
		uint8_t rep[2] = {0x80 | (uint8_t)sizeof kat_body, 0x00};

		n = splice(in, len, off, 1, rep, 2, out);
		ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	}
	ck_assert_uint_eq(off + 1 + 32, env_len);
}
END_TEST

START_TEST(body_len_over_limit_without_allocating)
{
	struct raw_env e;
	struct changeset cs;
	uint8_t in[1024];
	size_t len;

	keys_init();
	raw_env_default(&e, kat_body, sizeof kat_body);

	/* Only the envelope: the claimed 8 MiB + 1 body is not there, and
	 * the limit is reported, not the truncation. */
	e.body_len = CHANGESET_MAX_BODY + 1;
	len = raw_envelope(&e, in);
	mem_fail_after(0);
	ck_assert_int_eq(changeset_decode(in, len, &cs), BS_ELIMIT);
	mem_fail_reset();

	e.body_len = UINT64_MAX;
	len = raw_envelope(&e, in);
	mem_fail_after(0);
	ck_assert_int_eq(changeset_decode(in, len, &cs), BS_ELIMIT);
	mem_fail_reset();

	/* Even with a complete signature after it, still the limit. */
	e.body_len = CHANGESET_MAX_BODY + 1;
	len = raw_signed(&e, kat_body, sizeof kat_body, SIGN_CHANGESET, sk_a,
			 in, NULL);
	mem_fail_after(0);
	ck_assert_int_eq(changeset_decode(in, len, &cs), BS_ELIMIT);
	mem_fail_reset();

	/* Exactly the limit is allowed; then the missing body is truncation. */
	e.body_len = CHANGESET_MAX_BODY;
	len = raw_signed(&e, kat_body, sizeof kat_body, SIGN_CHANGESET, sk_a,
			 in, NULL);
	ck_assert_int_eq(decode_copy(in, len), BS_ETRUNCATED);

	/* A valid change set decodes with every allocation failing: decoding
	 * never allocates (verification may, for the signing input). */
	e.body_len = sizeof kat_body;
	len = raw_signed(&e, kat_body, sizeof kat_body, SIGN_CHANGESET, sk_a,
			 in, NULL);
	mem_fail_after(0);
	ck_assert_int_eq(changeset_decode(in, len, &cs), BS_OK);
	ck_assert_int_eq(changeset_verify(&cs), BS_ENOMEM);
	mem_fail_reset();
	ck_assert_int_eq(changeset_verify(&cs), BS_OK);
}
END_TEST

struct invalid_case {
	const char *what;
	uint64_t seq;
	int prev_zero;
	const char *scope;
	size_t scope_len;
	uint64_t schema;
	int empty_body;
	enum bs_status want;
};

START_TEST(invalid_fields)
{
	static const struct invalid_case cases[] = {
		{"seq 0, zero prev", 0, 1, "b", 1, 1, 0, BS_EINVALID},
		{"seq 0, non-zero prev", 0, 0, "b", 1, 1, 0, BS_EINVALID},
		{"seq 1, non-zero prev", 1, 0, "b", 1, 1, 0, BS_EINVALID},
		{"seq 2, zero prev", 2, 1, "b", 1, 1, 0, BS_EINVALID},
		{"seq max, zero prev", UINT64_MAX, 1, "b", 1, 1, 0, BS_EINVALID},
		{"empty scope", 2, 0, "", 0, 1, 0, BS_EINVALID},
		{"space in scope", 2, 0, "branch 1", 8, 1, 0, BS_EINVALID},
		{"slash in scope", 2, 0, "a/b", 3, 1, 0, BS_EINVALID},
		{"at in scope", 2, 0, "@", 1, 1, 0, BS_EINVALID},
		{"NUL in scope", 2, 0, "ab\0c", 4, 1, 0, BS_EINVALID},
		{"NUL ends scope", 2, 0, "abc\0", 4, 1, 0, BS_EINVALID},
		{"newline in scope", 2, 0, "a\n", 2, 1, 0, BS_EINVALID},
		{"DEL in scope", 2, 0, "a\x7f", 2, 1, 0, BS_EINVALID},
		{"high byte in scope", 2, 0, "\xc3\xa9", 2, 1, 0, BS_EINVALID},
		{"0xff in scope", 2, 0, "\xff", 1, 1, 0, BS_EINVALID},
		{"bracket in scope", 2, 0, "[x]", 3, 1, 0, BS_EINVALID},
		{"backquote in scope", 2, 0, "`", 1, 1, 0, BS_EINVALID},
		{"brace in scope", 2, 0, "{", 1, 1, 0, BS_EINVALID},
		{"tilde in scope", 2, 0, "~", 1, 1, 0, BS_EINVALID},
		{"comma in scope", 2, 0, "a,b", 3, 1, 0, BS_EINVALID},
		{"slash (0x2f) in scope", 2, 0, "/", 1, 1, 0, BS_EINVALID},
		{"semicolon (0x3b) in scope", 2, 0, ";", 1, 1, 0, BS_EINVALID},
		{"scope of 65", 2, 0,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 65, 1, 0, BS_ELIMIT},
		{"schema version 0", 2, 0, "b", 1, 0, 0, BS_EINVALID},
		{"empty body", 2, 0, "b", 1, 1, 1, BS_EINVALID},
		/* Controls: the edges that are allowed. */
		{"whole alphabet", 2, 0, scope_alphabet, 64, 1, 0, BS_OK},
		{"seq 1, zero prev", 1, 1, "Z", 1, 1, 0, BS_OK},
	};
	size_t i;

	keys_init();
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct invalid_case *c = &cases[i];
		struct raw_env e;
		uint8_t in[1024];
		size_t len, body_len = c->empty_body ? 0 : sizeof kat_body;
		enum bs_status got;

		raw_env_default(&e, kat_body, body_len);
		e.seq = c->seq;
		memset(e.prev, c->prev_zero ? 0 : 0x33, 32);
		e.scope = c->scope;
		e.scope_len = c->scope_len;
		e.schema = c->schema;
		len = raw_signed(&e, kat_body, body_len, SIGN_CHANGESET, sk_a,
				 in, NULL);
		got = decode_copy(in, len);
		ck_assert_msg(got == c->want, "%s: got %s, want %s", c->what,
			      bs_status_str(got), bs_status_str(c->want));
		if (c->want == BS_OK)
			ck_assert_int_eq(decode_verify(in, len), BS_OK);
	}
}
END_TEST

/* The encoder refuses what the decoder refuses, and leaves the buffer as
 * it was. */
START_TEST(encoder_refuses_invalid)
{
	struct changeset_envelope good, env;
	struct buf out;
	uint8_t id[32];

	keys_init();
	memset(&good, 0, sizeof good);
	memcpy(good.author, pk_a, 32);
	good.seq = 3;
	memset(good.prev, 7, 32);
	strcpy(good.scope, "district");
	good.schema_version = 2;
	buf_init(&out, 4096);
	buf_append(&out, "prefix", 6);

#define REFUSED(mutate, body_len, want)                                       \
	do {                                                                  \
		env = good;                                                   \
		mutate;                                                       \
		ck_assert_int_eq(changeset_sign(&env, kat_body, body_len,     \
						sk_a, &out, id),              \
				 want);                                       \
		ck_assert_uint_eq(out.len, 6);                                \
		ck_assert_int_eq(out.status, BS_OK);                          \
	} while (0)

	REFUSED(env.seq = 0, sizeof kat_body, BS_EINVALID);
	REFUSED(env.seq = 1, sizeof kat_body, BS_EINVALID);
	REFUSED(memset(env.prev, 0, 32), sizeof kat_body, BS_EINVALID);
	REFUSED(env.scope[0] = '\0', sizeof kat_body, BS_EINVALID);
	REFUSED(strcpy(env.scope, "a b"), sizeof kat_body, BS_EINVALID);
	REFUSED(strcpy(env.scope, "\xc3\xa9"), sizeof kat_body, BS_EINVALID);
	/* All 65 bytes used, no terminator: refused, not read past. */
	REFUSED(memset(env.scope, 'a', sizeof env.scope), sizeof kat_body,
		BS_EINVALID);
	REFUSED(env.schema_version = 0, sizeof kat_body, BS_EINVALID);
	REFUSED((void)0, 0, BS_EINVALID);
#undef REFUSED

	/* The control: the unchanged envelope signs, after the prefix. */
	env = good;
	ck_assert_int_eq(changeset_sign(&env, kat_body, sizeof kat_body, sk_a,
					&out, id),
			 BS_OK);
	ck_assert_int_eq(decode_verify(out.data + 6, out.len - 6), BS_OK);

	/* changeset_encode_envelope alone applies the same rules. */
	buf_reset(&out);
	env = good;
	env.seq = 0;
	env.body_len = 1;
	ck_assert_int_eq(changeset_encode_envelope(&env, &out), BS_EINVALID);
	env.seq = 3;
	env.body_len = CHANGESET_MAX_BODY + 1;
	ck_assert_int_eq(changeset_encode_envelope(&env, &out), BS_ELIMIT);
	env.body_len = 0;
	ck_assert_int_eq(changeset_encode_envelope(&env, &out), BS_EINVALID);
	ck_assert_uint_eq(out.len, 0);
	buf_release(&out);
}
END_TEST

START_TEST(encoder_resource_failures)
{
	struct changeset_envelope env;
	struct buf out;
	uint8_t id[32];

	keys_init();
	memset(&env, 0, sizeof env);
	memcpy(env.author, pk_a, 32);
	env.seq = 1;
	strcpy(env.scope, "x");
	env.schema_version = 1;

	/* A buffer whose cap is too small: BS_ELIMIT, sticky. */
	buf_init(&out, 100);
	ck_assert_int_eq(changeset_sign(&env, kat_body, sizeof kat_body, sk_a,
					&out, id),
			 BS_ELIMIT);
	ck_assert_int_eq(out.status, BS_ELIMIT);
	buf_release(&out);

	/* No memory for the buffer. */
	buf_init(&out, 4096);
	mem_fail_after(0);
	ck_assert_int_eq(changeset_sign(&env, kat_body, sizeof kat_body, sk_a,
					&out, id),
			 BS_ENOMEM);
	mem_fail_reset();
	buf_release(&out);

	/* Memory for the buffer but not for the signing input: the encoded
	 * envelope is taken back out of the buffer. */
	buf_init(&out, 4096);
	{
		uint8_t pad[1024] = {0};

		buf_append(&out, pad, sizeof pad);
		buf_reset(&out); /* keeps the grown memory */
	}
	buf_append(&out, "ab", 2);
	mem_fail_after(0);
	ck_assert_int_eq(changeset_sign(&env, kat_body, sizeof kat_body, sk_a,
					&out, id),
			 BS_ENOMEM);
	mem_fail_reset();
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq(out.status, BS_OK);
	buf_release(&out);
}
END_TEST

START_TEST(body_and_hash_flips)
{
	struct kat_cs k;
	uint8_t in[sizeof k.encoded];
	size_t i, body_off, hash_off;

	keys_init();
	kat_cs_load("first", &k);
	body_off = k.env_len + SIGN_BYTES;
	hash_off = k.env_len - 32;
	for (i = 0; i < k.body_len; i++) {
		memcpy(in, k.encoded, k.enc_len);
		in[body_off + i] ^= 0x01;
		ck_assert_int_eq(decode_copy(in, k.enc_len), BS_EHASH);
		in[body_off + i] ^= 0x81;
		ck_assert_int_eq(decode_copy(in, k.enc_len), BS_EHASH);
	}
	for (i = 0; i < 32; i++) {
		memcpy(in, k.encoded, k.enc_len);
		in[hash_off + i] ^= 0x40;
		ck_assert_int_eq(decode_copy(in, k.enc_len), BS_EHASH);
	}
}
END_TEST

START_TEST(signature_flips)
{
	struct kat_cs k;
	uint8_t in[sizeof k.encoded];
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	size_t i, m;

	keys_init();
	kat_cs_load("first", &k);
	for (i = 0; i < SIGN_BYTES; i++) {
		for (m = 0; m < sizeof masks; m++) {
			struct changeset cs;

			memcpy(in, k.encoded, k.enc_len);
			in[k.env_len + i] ^= masks[m];
			ck_assert_int_eq(changeset_decode(in, k.enc_len, &cs),
					 BS_OK);
			ck_assert_int_eq(changeset_verify(&cs), BS_ESIGNATURE);
			/* The id covers the signature too. */
			ck_assert_mem_ne(cs.id, k.id, 32);
		}
	}
}
END_TEST

/* S + L encodes the same scalar as S; accepting it would give one change set
 * two ids. */
START_TEST(malleated_signature_refused)
{
	static const uint8_t order[32] = {
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
		0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0x10,
	};
	struct kat_cs k;
	struct changeset cs;
	uint8_t in[sizeof k.encoded];
	unsigned carry = 0;
	size_t i;

	keys_init();
	kat_cs_load("first", &k);
	memcpy(in, k.encoded, k.enc_len);
	for (i = 0; i < 32; i++) {
		carry += in[k.env_len + 32 + i] + order[i];
		in[k.env_len + 32 + i] = (uint8_t)carry;
		carry >>= 8;
	}
	ck_assert_uint_eq(carry, 0);
	ck_assert_int_eq(changeset_decode(in, k.enc_len, &cs), BS_OK);
	ck_assert_int_eq(changeset_verify(&cs), BS_ESIGNATURE);
}
END_TEST

START_TEST(signature_under_other_labels)
{
	struct raw_env e;
	uint8_t in[1024], msg[1024];
	size_t len, env_len;
	int kind;

	keys_init();
	raw_env_default(&e, kat_body, sizeof kat_body);
	len = raw_signed(&e, kat_body, sizeof kat_body, SIGN_CHANGESET, sk_a,
			 in, &env_len);
	ck_assert_int_eq(decode_verify(in, len), BS_OK);

	/* The same envelope signed with every other kind's label. */
	for (kind = SIGN_CHECKPOINT; kind <= SIGN_DIGEST; kind++) {
		len = raw_signed(&e, kat_body, sizeof kat_body,
				 (enum sign_kind)kind, sk_a, in, NULL);
		ck_assert_int_eq(decode_verify(in, len), BS_ESIGNATURE);
	}
	/* No label at all: the bare envelope. */
	ck_assert_int_eq(crypto_sign_detached(in + env_len, NULL, in, env_len,
					      sk_a),
			 0);
	ck_assert_int_eq(decode_verify(in, len), BS_ESIGNATURE);
	/* The label without its 0x00 separator. */
	memcpy(msg, "branchsync/changeset/v1", 23);
	memcpy(msg + 23, in, env_len);
	ck_assert_int_eq(crypto_sign_detached(in + env_len, NULL, msg,
					      23 + env_len, sk_a),
			 0);
	ck_assert_int_eq(decode_verify(in, len), BS_ESIGNATURE);
	/* With it, made by hand: accepted (the label is what FORMAT.md says). */
	msg[23] = 0x00;
	memcpy(msg + 24, in, env_len);
	ck_assert_int_eq(crypto_sign_detached(in + env_len, NULL, msg,
					      24 + env_len, sk_a),
			 0);
	ck_assert_int_eq(decode_verify(in, len), BS_OK);
}
END_TEST

START_TEST(other_author_key)
{
	struct raw_env e;
	uint8_t in[1024];
	size_t len;

	keys_init();
	raw_env_default(&e, kat_body, sizeof kat_body);

	/* Names B as the author, signed by A. */
	memcpy(e.author, pk_b, 32);
	len = raw_signed(&e, kat_body, sizeof kat_body, SIGN_CHANGESET, sk_a,
			 in, NULL);
	ck_assert_int_eq(decode_verify(in, len), BS_ESIGNATURE);
	/* Names A, signed by B. */
	memcpy(e.author, pk_a, 32);
	len = raw_signed(&e, kat_body, sizeof kat_body, SIGN_CHANGESET, sk_b,
			 in, NULL);
	ck_assert_int_eq(decode_verify(in, len), BS_ESIGNATURE);
	/* A's signed bytes with the author field rewritten to B. */
	len = raw_signed(&e, kat_body, sizeof kat_body, SIGN_CHANGESET, sk_a,
			 in, NULL);
	ck_assert_int_eq(decode_verify(in, len), BS_OK);
	memcpy(in + OFF_AUTHOR, pk_b, 32);
	ck_assert_int_eq(decode_verify(in, len), BS_ESIGNATURE);
	/* An author field that is no public key at all. */
	memset(in + OFF_AUTHOR, 0, 32);
	ck_assert_int_eq(decode_verify(in, len), BS_ESIGNATURE);
}
END_TEST

/* Whatever byte of a valid change set changes, decode or verify fails. */
START_TEST(any_flip_is_caught)
{
	char names[8][32];
	static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
	size_t count, v, i, m;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_cs k;
		uint8_t in[sizeof k.encoded];

		kat_cs_load(names[v], &k);
		for (i = 0; i < k.enc_len; i++) {
			for (m = 0; m < sizeof masks; m++) {
				memcpy(in, k.encoded, k.enc_len);
				in[i] ^= masks[m];
				ck_assert_msg(decode_verify(in, k.enc_len) != BS_OK,
					      "%s: flip %02x at %zu accepted",
					      names[v], masks[m], i);
			}
		}
	}
}
END_TEST

START_TEST(scope_valid_table)
{
	static const struct {
		const char *s;
		size_t len;
		int ok;
	} cases[] = {
		{"a", 1, 1},
		{"branch:xh-042", 13, 1},
		{"A.Z_0-9:z", 9, 1},
		{"", 0, 0},
		{"a b", 3, 0},
		{"a\0", 2, 0},
		{"\x80", 1, 0},
		{"a/b", 3, 0},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 64, 1},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 65, 0},
	};
	size_t i;
	int c;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(changeset_scope_valid(cases[i].s, cases[i].len) ==
				      cases[i].ok,
			      "case %zu", i);
	/* Every single byte: exactly the 66 of the alphabet pass. */
	for (c = 0; c < 256; c++) {
		char s = (char)c;
		int want = c != 0 && strchr(scope_alphabet, c) != NULL;

		ck_assert_msg(changeset_scope_valid(&s, 1) == want, "byte %02x",
			      c);
	}
}
END_TEST

static Suite *changeset_suite(void)
{
	Suite *s = suite_create("changeset");
	TCase *kat = tcase_create("kat");
	TCase *rt = tcase_create("roundtrip");
	TCase *bad = tcase_create("malformed");
	TCase *sig = tcase_create("signature");

	tcase_add_test(kat, kat_encode_matches_file);
	tcase_add_test(kat, kat_decode_gives_fields);
	tcase_add_test(rt, roundtrip_random);
	tcase_add_test(rt, roundtrip_limits);
	tcase_add_test(bad, truncated_at_every_offset);
	tcase_add_test(bad, trailing_bytes);
	tcase_add_test(bad, wrong_magic_and_version);
	tcase_add_test(bad, overlong_varints);
	tcase_add_test(bad, body_len_over_limit_without_allocating);
	tcase_add_test(bad, invalid_fields);
	tcase_add_test(bad, encoder_refuses_invalid);
	tcase_add_test(bad, encoder_resource_failures);
	tcase_add_test(bad, body_and_hash_flips);
	tcase_add_test(bad, scope_valid_table);
	tcase_add_test(sig, signature_flips);
	tcase_add_test(sig, malleated_signature_refused);
	tcase_add_test(sig, signature_under_other_labels);
	tcase_add_test(sig, other_author_key);
	tcase_add_test(sig, any_flip_is_caught);
	suite_add_tcase(s, kat);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, sig);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(changeset_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
