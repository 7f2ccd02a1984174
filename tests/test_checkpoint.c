/* test_checkpoint.c - Check suite for protocol/checkpoint: signed checkpoints
 * and receipts against known-answer vectors (tests/vectors/checkpoint-kat.txt),
 * round trips, and malformed or mis-signed input with the exact bs_status.
 * Not for Merkle roots or proofs (tests/test_merkle.c, tests/test_proof.c). */
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
#include "wire.h"

#define OFF_VERSION 4
#define ENC_MAX 1024

static uint8_t pk_a[SIGN_PUBLIC_BYTES], sk_a[SIGN_SECRET_BYTES];
static uint8_t pk_b[SIGN_PUBLIC_BYTES], sk_b[SIGN_SECRET_BYTES];

/* Key A from seed 01..20 (the vectors' key), key B from seed 21..40. */
static void keys_init(void)
{
	ck_assert_int_eq(sign_init(), BS_OK);
	kat_keypair(1, pk_a, sk_a);
	kat_keypair(0x21, pk_b, sk_b);
}

/* The known-answer file (read-only; see its header). */
#define VECTORS "checkpoint-kat.txt"

/* What every record has. */
struct kat_common {
	uint8_t seed[32], public[32], sig[SIGN_BYTES];
	uint8_t unsigned_[ENC_MAX], message[ENC_MAX], encoded[ENC_MAX];
	size_t unsigned_len, msg_len, enc_len;
};

static void kat_common_load(const char *name, struct kat_common *k)
{
	ck_assert_uint_eq(kat_hex(VECTORS, name, "seed", k->seed, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "public", k->public, 32), 32);
	ck_assert_uint_eq(
	    kat_hex(VECTORS, name, "signature", k->sig, SIGN_BYTES),
	    SIGN_BYTES);
	k->unsigned_len =
	    kat_hex(VECTORS, name, "unsigned", k->unsigned_, ENC_MAX);
	k->msg_len = kat_hex(VECTORS, name, "message", k->message, ENC_MAX);
	k->enc_len = kat_hex(VECTORS, name, "encoded", k->encoded, ENC_MAX);
}

/* ---- encoders of our own, written from FORMAT.md, with no checks ---- */

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

static size_t raw_checkpoint(const uint8_t *origin, size_t olen,
			     uint64_t size, const uint8_t root[32],
			     uint64_t time_ms, uint8_t *out)
{
	size_t n = 0;
	int i;

	memcpy(out, "BSCP\x01", 5);
	n = 5;
	n += t_varint(out + n, olen);
	memcpy(out + n, origin, olen);
	n += olen;
	n += t_varint(out + n, size);
	memcpy(out + n, root, 32);
	n += 32;
	for (i = 7; i >= 0; i--)
		out[n++] = (uint8_t)(time_ms >> (8 * i));
	return n;
}

static size_t raw_receipt(const uint8_t id[32], uint64_t index,
			  const uint8_t *cp, size_t cp_len, uint8_t *out)
{
	size_t n;

	memcpy(out, "BSRC\x01", 5);
	n = 5;
	memcpy(out + n, id, 32);
	n += 32;
	n += t_varint(out + n, index);
	n += t_varint(out + n, cp_len);
	memcpy(out + n, cp, cp_len);
	return n + cp_len;
}

/* Appends sign(kind, p[0..n)) after p; returns the new length. */
static size_t add_sig(uint8_t *p, size_t n, enum sign_kind kind,
		      const uint8_t *sk)
{
	ck_assert_int_eq(sign_detached(kind, p, n, sk, p + n), BS_OK);
	return n + SIGN_BYTES;
}

static const uint8_t root_x[32] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
	0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
	0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};
static const uint8_t csid_x[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

/* A signed receipt around a signed checkpoint, both made by hand. */
static size_t signed_receipt(uint64_t index, const uint8_t *cp, size_t cp_len,
			     const uint8_t *sk, uint8_t *out)
{
	return add_sig(out, raw_receipt(csid_x, index, cp, cp_len, out),
		       SIGN_RECEIPT, sk);
}

static enum bs_status cp_decode_copy(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct checkpoint cp;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = checkpoint_decode(copy, len, &cp);
	free(copy);
	return rc;
}

static enum bs_status rc_decode_copy(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct receipt r;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = receipt_decode(copy, len, &r);
	free(copy);
	return rc;
}

static enum bs_status cp_decode_verify(const uint8_t *p, size_t len,
				       const uint8_t *pk)
{
	struct checkpoint cp;
	enum bs_status rc = checkpoint_decode(p, len, &cp);

	return rc ? rc : checkpoint_verify(&cp, pk);
}

static enum bs_status rc_decode_verify(const uint8_t *p, size_t len,
				       const uint8_t *pk)
{
	struct receipt r;
	enum bs_status rc = receipt_decode(p, len, &r);

	return rc ? rc : receipt_verify(&r, pk);
}

/* ---- known answers ---- */

static void check_label_message(const struct kat_common *k, const char *label)
{
	size_t ll = strlen(label) + 1;

	ck_assert_uint_eq(k->msg_len, ll + k->unsigned_len);
	ck_assert_mem_eq(k->message, label, ll);
	ck_assert_mem_eq(k->message + ll, k->unsigned_, k->unsigned_len);
	ck_assert_int_eq(crypto_sign_verify_detached(k->sig, k->message,
						     k->msg_len, k->public),
			 0);
	ck_assert_uint_eq(k->enc_len, k->unsigned_len + SIGN_BYTES);
	ck_assert_mem_eq(k->encoded, k->unsigned_, k->unsigned_len);
	ck_assert_mem_eq(k->encoded + k->unsigned_len, k->sig, SIGN_BYTES);
}

START_TEST(kat_checkpoints)
{
	char names[8][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, "checkpoint", names, 8);
	ck_assert_uint_ge(count, 2);
	for (v = 0; v < count; v++) {
		struct kat_common k;
		struct checkpoint cp, dec;
		struct buf out;
		uint8_t pk[32], sk[64], origin[256], root[32], raw[ENC_MAX];
		size_t olen;

		kat_common_load(names[v], &k);
		check_label_message(&k, "branchsync/checkpoint/v1");
		crypto_sign_seed_keypair(pk, sk, k.seed);
		ck_assert_mem_eq(pk, k.public, 32);
		olen =
		    kat_hex(VECTORS, names[v], "origin", origin, sizeof origin);
		ck_assert_uint_eq(kat_hex(VECTORS, names[v], "root", root, 32),
				  32);

		/* Signing the fields gives the file's bytes. */
		memset(&cp, 0, sizeof cp);
		ck_assert_uint_le(olen, CHECKPOINT_ORIGIN_MAX);
		memcpy(cp.origin, origin, olen);
		cp.size = kat_u64(VECTORS, names[v], "size");
		memcpy(cp.root, root, 32);
		cp.time_ms = kat_u64(VECTORS, names[v], "time_ms");
		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(checkpoint_sign(&cp, sk, &out), BS_OK);
		ck_assert_uint_eq(out.len, k.enc_len);
		ck_assert_mem_eq(out.data, k.encoded, k.enc_len);
		ck_assert_uint_eq(cp.raw_len, k.unsigned_len);
		ck_assert_mem_eq(cp.raw, k.unsigned_, k.unsigned_len);
		ck_assert_mem_eq(cp.sig, k.sig, SIGN_BYTES);
		buf_reset(&out);
		ck_assert_int_eq(checkpoint_encode(&cp, &out), BS_OK);
		ck_assert_uint_eq(out.len, k.unsigned_len);
		ck_assert_mem_eq(out.data, k.unsigned_, k.unsigned_len);
		buf_release(&out);
		ck_assert_uint_eq(raw_checkpoint(origin, olen, cp.size, root,
						 cp.time_ms, raw),
				  k.unsigned_len);
		ck_assert_mem_eq(raw, k.unsigned_, k.unsigned_len);

		/* Decoding the file's bytes gives the fields. */
		ck_assert_int_eq(checkpoint_decode(k.encoded, k.enc_len, &dec),
				 BS_OK);
		ck_assert_int_eq(checkpoint_verify(&dec, k.public), BS_OK);
		ck_assert_int_eq(checkpoint_verify(&dec, pk_b), BS_ESIGNATURE);
		ck_assert_uint_eq(strlen(dec.origin), olen);
		ck_assert_mem_eq(dec.origin, origin, olen);
		ck_assert_uint_eq(dec.size, cp.size);
		ck_assert_mem_eq(dec.root, root, 32);
		ck_assert_uint_eq(dec.time_ms, cp.time_ms);
		ck_assert_mem_eq(dec.sig, k.sig, SIGN_BYTES);
		ck_assert_uint_eq(dec.raw_len, k.unsigned_len);
		ck_assert_mem_eq(dec.raw, k.unsigned_, k.unsigned_len);
	}
}
END_TEST

START_TEST(kat_receipts)
{
	char names[8][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, "receipt", names, 8);
	ck_assert_uint_ge(count, 2);
	for (v = 0; v < count; v++) {
		struct kat_common k;
		struct receipt r, dec;
		struct buf out;
		uint8_t pk[32], sk[64], id[32], cp_enc[ENC_MAX], raw[ENC_MAX];
		char cpname[32];
		size_t len = 0, cp_len;
		const char *cpref =
		    kat_find(VECTORS, names[v], "checkpoint", &len);

		kat_common_load(names[v], &k);
		check_label_message(&k, "branchsync/receipt/v1");
		crypto_sign_seed_keypair(pk, sk, k.seed);
		ck_assert_mem_eq(pk, k.public, 32);
		ck_assert_uint_eq(
		    kat_hex(VECTORS, names[v], "changeset_id", id, 32), 32);
		ck_assert_ptr_nonnull(cpref);
		ck_assert_uint_lt(len, sizeof cpname);
		memcpy(cpname, cpref, len);
		cpname[len] = '\0';
		ck_assert(kat_is(VECTORS, cpname, "type", "checkpoint"));
		cp_len =
		    kat_hex(VECTORS, cpname, "encoded", cp_enc, sizeof cp_enc);

		/* Signing the fields around the named checkpoint. */
		memset(&r, 0, sizeof r);
		memcpy(r.changeset_id, id, 32);
		r.index = kat_u64(VECTORS, names[v], "index");
		ck_assert_int_eq(checkpoint_decode(cp_enc, cp_len, &r.checkpoint),
				 BS_OK);
		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(receipt_sign(&r, sk, &out), BS_OK);
		ck_assert_uint_eq(out.len, k.enc_len);
		ck_assert_mem_eq(out.data, k.encoded, k.enc_len);
		ck_assert_uint_eq(r.raw_len, k.unsigned_len);
		ck_assert_mem_eq(r.raw, k.unsigned_, k.unsigned_len);
		ck_assert_mem_eq(r.sig, k.sig, SIGN_BYTES);
		buf_release(&out);
		ck_assert_uint_eq(raw_receipt(id, r.index, cp_enc, cp_len, raw),
				  k.unsigned_len);
		ck_assert_mem_eq(raw, k.unsigned_, k.unsigned_len);

		/* Decoding gives the fields, and the embedded checkpoint. */
		ck_assert_int_eq(receipt_decode(k.encoded, k.enc_len, &dec),
				 BS_OK);
		ck_assert_int_eq(receipt_verify(&dec, k.public), BS_OK);
		ck_assert_int_eq(receipt_verify(&dec, pk_b), BS_ESIGNATURE);
		ck_assert_mem_eq(dec.changeset_id, id, 32);
		ck_assert_uint_eq(dec.index, r.index);
		ck_assert_uint_lt(dec.index, dec.checkpoint.size);
		ck_assert_uint_eq(dec.checkpoint.size, r.checkpoint.size);
		ck_assert_str_eq(dec.checkpoint.origin, r.checkpoint.origin);
		ck_assert_mem_eq(dec.checkpoint.root, r.checkpoint.root, 32);
		ck_assert_uint_eq(dec.checkpoint.time_ms, r.checkpoint.time_ms);
		ck_assert_mem_eq(dec.checkpoint.sig, cp_enc + cp_len - SIGN_BYTES,
				 SIGN_BYTES);
		ck_assert_uint_eq(dec.checkpoint.raw_len, cp_len - SIGN_BYTES);
		ck_assert_mem_eq(dec.checkpoint.raw, cp_enc, cp_len - SIGN_BYTES);
		ck_assert_int_eq(checkpoint_verify(&dec.checkpoint, k.public),
				 BS_OK);
		ck_assert_mem_eq(dec.sig, k.sig, SIGN_BYTES);
		ck_assert_uint_eq(dec.raw_len, k.unsigned_len);
		ck_assert_mem_eq(dec.raw, k.unsigned_, k.unsigned_len);
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
	unsigned seed = 777;
	int i;

	keys_init();
	for (i = 0; i < 500; i++) {
		struct checkpoint cp, dec;
		struct receipt r, rdec;
		struct buf out;
		size_t olen = 1 + (size_t)rand_r(&seed) % CHECKPOINT_ORIGIN_MAX;
		size_t j, want_len, cp_len;
		int use_b = rand_r(&seed) & 1;
		const uint8_t *sk = use_b ? sk_b : sk_a;
		const uint8_t *pk = use_b ? pk_b : pk_a;
		uint8_t cp_bytes[CHECKPOINT_SIGNED_MAX];

		memset(&cp, 0, sizeof cp);
		for (j = 0; j < olen; j++) {
			/* printable ASCII, or any byte 0x80..0xff */
			int c = rand_r(&seed) % (95 + 128);

			cp.origin[j] = (char)(c < 95 ? 0x20 + c : 0x80 + c - 95);
		}
		if (i == 0) {
			olen = CHECKPOINT_ORIGIN_MAX;
			memset(cp.origin, '~', olen);
		}
		cp.size = i == 1 ? 0 : rand64(&seed);
		if (i == 2)
			cp.size = UINT64_MAX;
		for (j = 0; j < 32; j++)
			cp.root[j] = (uint8_t)rand_r(&seed);
		cp.time_ms = i == 3 ? UINT64_MAX : rand64(&seed);

		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(checkpoint_sign(&cp, sk, &out), BS_OK);
		want_len = 5 + wire_varint_size(olen) + olen +
			   wire_varint_size(cp.size) + 32 + 8 + SIGN_BYTES;
		ck_assert_uint_eq(out.len, want_len);
		ck_assert_uint_le(out.len, CHECKPOINT_SIGNED_MAX);
		ck_assert_int_eq(checkpoint_decode(out.data, out.len, &dec),
				 BS_OK);
		ck_assert_int_eq(checkpoint_verify(&dec, pk), BS_OK);
		ck_assert_int_eq(checkpoint_verify(&dec, use_b ? pk_a : pk_b),
				 BS_ESIGNATURE);
		ck_assert_str_eq(dec.origin, cp.origin);
		ck_assert_uint_eq(dec.size, cp.size);
		ck_assert_mem_eq(dec.root, cp.root, 32);
		ck_assert_uint_eq(dec.time_ms, cp.time_ms);
		ck_assert_uint_eq(dec.raw_len, cp.raw_len);
		ck_assert_mem_eq(dec.raw, cp.raw, cp.raw_len);
		ck_assert_mem_eq(dec.raw, out.data, dec.raw_len);
		/* Canonical: re-encoding the decoded value gives the bytes. */
		cp_len = out.len;
		memcpy(cp_bytes, out.data, cp_len);
		buf_reset(&out);
		ck_assert_int_eq(checkpoint_encode(&dec, &out), BS_OK);
		ck_assert_uint_eq(out.len, cp_len - SIGN_BYTES);
		ck_assert_mem_eq(out.data, cp_bytes, out.len);

		if (cp.size == 0) {
			buf_release(&out);
			continue;
		}
		memset(&r, 0, sizeof r);
		for (j = 0; j < 32; j++)
			r.changeset_id[j] = (uint8_t)rand_r(&seed);
		r.index = rand64(&seed) % cp.size;
		if (i == 2)
			r.index = UINT64_MAX - 1;
		r.checkpoint = dec;
		buf_reset(&out);
		ck_assert_int_eq(receipt_sign(&r, sk, &out), BS_OK);
		ck_assert_uint_eq(out.len, 5 + 32 + wire_varint_size(r.index) +
						   wire_varint_size(cp_len) +
						   cp_len + SIGN_BYTES);
		ck_assert_uint_le(out.len, RECEIPT_SIGNED_MAX);
		ck_assert_int_eq(receipt_decode(out.data, out.len, &rdec), BS_OK);
		ck_assert_int_eq(receipt_verify(&rdec, pk), BS_OK);
		ck_assert_int_eq(receipt_verify(&rdec, use_b ? pk_a : pk_b),
				 BS_ESIGNATURE);
		ck_assert_mem_eq(rdec.changeset_id, r.changeset_id, 32);
		ck_assert_uint_eq(rdec.index, r.index);
		ck_assert_str_eq(rdec.checkpoint.origin, cp.origin);
		ck_assert_uint_eq(rdec.checkpoint.size, cp.size);
		ck_assert_mem_eq(rdec.checkpoint.raw, cp_bytes,
				 cp_len - SIGN_BYTES);
		ck_assert_mem_eq(rdec.checkpoint.sig,
				 cp_bytes + cp_len - SIGN_BYTES, SIGN_BYTES);
		ck_assert_uint_eq(rdec.raw_len, out.len - SIGN_BYTES);
		ck_assert_mem_eq(rdec.raw, out.data, rdec.raw_len);
		buf_release(&out);
	}
}
END_TEST

/* ---- malformed input ---- */

START_TEST(truncated_at_every_offset)
{
	char names[8][32];
	size_t count, v, cut;

	keys_init();
	count = kat_names(VECTORS, "checkpoint", names, 8);
	for (v = 0; v < count; v++) {
		struct kat_common k;

		kat_common_load(names[v], &k);
		ck_assert_int_eq(cp_decode_copy(k.encoded, k.enc_len), BS_OK);
		for (cut = 0; cut < k.enc_len; cut++)
			ck_assert_msg(cp_decode_copy(k.encoded, cut) ==
					      BS_ETRUNCATED,
				      "%s cut at %zu", names[v], cut);
	}
	count = kat_names(VECTORS, "receipt", names, 8);
	for (v = 0; v < count; v++) {
		struct kat_common k;

		kat_common_load(names[v], &k);
		ck_assert_int_eq(rc_decode_copy(k.encoded, k.enc_len), BS_OK);
		for (cut = 0; cut < k.enc_len; cut++)
			ck_assert_msg(rc_decode_copy(k.encoded, cut) ==
					      BS_ETRUNCATED,
				      "%s cut at %zu", names[v], cut);
	}
}
END_TEST

START_TEST(trailing_bytes)
{
	struct kat_common k;
	uint8_t in[ENC_MAX], cp[ENC_MAX];
	size_t cp_len, n;

	keys_init();
	kat_common_load("cp-small", &k);
	memcpy(in, k.encoded, k.enc_len);
	in[k.enc_len] = 0;
	ck_assert_int_eq(cp_decode_copy(in, k.enc_len + 1), BS_ETRAILING);
	memcpy(cp, k.encoded, k.enc_len);
	cp_len = k.enc_len;

	kat_common_load("rc-small", &k);
	memcpy(in, k.encoded, k.enc_len);
	in[k.enc_len] = 0xff;
	ck_assert_int_eq(rc_decode_copy(in, k.enc_len + 1), BS_ETRAILING);

	/* A checkpoint blob one byte longer than its checkpoint. */
	cp[cp_len] = 0;
	n = signed_receipt(3, cp, cp_len + 1, sk_a, in);
	ck_assert_int_eq(rc_decode_copy(in, n), BS_ETRAILING);
	/* ... and one byte shorter. */
	n = signed_receipt(3, cp, cp_len - 1, sk_a, in);
	ck_assert_int_eq(rc_decode_copy(in, n), BS_ETRUNCATED);
	/* The control. */
	n = signed_receipt(3, cp, cp_len, sk_a, in);
	ck_assert_int_eq(rc_decode_verify(in, n, pk_a), BS_OK);
}
END_TEST

START_TEST(wrong_magic_and_version)
{
	struct kat_common kc, kr;
	uint8_t in[ENC_MAX], cp[ENC_MAX];
	static const uint8_t versions[] = {0, 2, 0x80, 0xff};
	size_t i, n;

	keys_init();
	kat_common_load("cp-small", &kc);
	kat_common_load("rc-small", &kr);
	for (i = 0; i < 4; i++) {
		memcpy(in, kc.encoded, kc.enc_len);
		in[i] ^= 0x20;
		ck_assert_int_eq(cp_decode_copy(in, kc.enc_len), BS_EMAGIC);
		memcpy(in, kr.encoded, kr.enc_len);
		in[i] ^= 0x20;
		ck_assert_int_eq(rc_decode_copy(in, kr.enc_len), BS_EMAGIC);
	}
	for (i = 0; i < sizeof versions; i++) {
		memcpy(in, kc.encoded, kc.enc_len);
		in[OFF_VERSION] = versions[i];
		ck_assert_int_eq(cp_decode_copy(in, kc.enc_len), BS_EVERSION);
		memcpy(in, kr.encoded, kr.enc_len);
		in[OFF_VERSION] = versions[i];
		ck_assert_int_eq(rc_decode_copy(in, kr.enc_len), BS_EVERSION);
	}
	/* Each decoder refuses the other's bytes by their magic. */
	ck_assert_int_eq(cp_decode_copy(kr.encoded, kr.enc_len), BS_EMAGIC);
	ck_assert_int_eq(rc_decode_copy(kc.encoded, kc.enc_len), BS_EMAGIC);

	/* The embedded checkpoint's own magic and version are checked. */
	memcpy(cp, kc.encoded, kc.enc_len);
	cp[0] = 'X';
	n = signed_receipt(1, cp, kc.enc_len, sk_a, in);
	ck_assert_int_eq(rc_decode_copy(in, n), BS_EMAGIC);
	memcpy(cp, kc.encoded, kc.enc_len);
	cp[OFF_VERSION] = 2;
	n = signed_receipt(1, cp, kc.enc_len, sk_a, in);
	ck_assert_int_eq(rc_decode_copy(in, n), BS_EVERSION);
}
END_TEST

START_TEST(origin_rules)
{
	uint8_t in[ENC_MAX], origin[CHECKPOINT_ORIGIN_MAX + 1];
	size_t n, pos;
	int c;

	keys_init();
	/* Every control byte, at the start, middle and end: refused. */
	for (c = 0; c < 0x80; c++) {
		int control = c < 0x20 || c == 0x7f;

		for (pos = 0; pos < 3; pos++) {
			memcpy(origin, "abc", 3);
			origin[pos] = (uint8_t)c;
			n = raw_checkpoint(origin, 3, 5, root_x, 9, in);
			n = add_sig(in, n, SIGN_CHECKPOINT, sk_a);
			ck_assert_msg(cp_decode_copy(in, n) ==
					      (control ? BS_EINVALID : BS_OK),
				      "byte %02x at %zu", c, pos);
		}
	}
	/* High bytes are allowed (UTF-8 text is). */
	memcpy(origin, "\x80\xff\xe9\xbb\x84", 5);
	n = add_sig(in, raw_checkpoint(origin, 5, 5, root_x, 9, in),
		    SIGN_CHECKPOINT, sk_a);
	ck_assert_int_eq(cp_decode_verify(in, n, pk_a), BS_OK);
	/* Empty. */
	n = add_sig(in, raw_checkpoint(origin, 0, 5, root_x, 9, in),
		    SIGN_CHECKPOINT, sk_a);
	ck_assert_int_eq(cp_decode_copy(in, n), BS_EINVALID);
	/* 128 bytes is the limit; 129 is over it. */
	memset(origin, 'o', sizeof origin);
	n = add_sig(in, raw_checkpoint(origin, 128, 5, root_x, 9, in),
		    SIGN_CHECKPOINT, sk_a);
	ck_assert_int_eq(cp_decode_verify(in, n, pk_a), BS_OK);
	n = add_sig(in, raw_checkpoint(origin, 129, 5, root_x, 9, in),
		    SIGN_CHECKPOINT, sk_a);
	ck_assert_int_eq(cp_decode_copy(in, n), BS_ELIMIT);
	/* The limit comes before the truncation: only the length is there. */
	ck_assert_int_eq(cp_decode_copy(in, 7), BS_ELIMIT);
	/* And inside a receipt. */
	{
		uint8_t r[ENC_MAX];
		size_t cpn;

		memcpy(origin, "a\tb", 3);
		cpn = add_sig(in, raw_checkpoint(origin, 3, 5, root_x, 9, in),
			      SIGN_CHECKPOINT, sk_a);
		n = signed_receipt(1, in, cpn, sk_a, r);
		ck_assert_int_eq(rc_decode_copy(r, n), BS_EINVALID);
	}
}
END_TEST

START_TEST(encoder_refuses_bad_origin)
{
	struct checkpoint cp;
	struct buf out;
	static const char *bad[] = {"", "a\tb", "line\n", "\x1b[31m", "x\x7f"};
	size_t i;

	keys_init();
	buf_init(&out, ENC_MAX);
	buf_append(&out, "p", 1);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&cp, 0, sizeof cp);
		strcpy(cp.origin, bad[i]);
		cp.size = 1;
		ck_assert_int_eq(checkpoint_encode(&cp, &out), BS_EINVALID);
		ck_assert_int_eq(checkpoint_sign(&cp, sk_a, &out), BS_EINVALID);
		ck_assert_uint_eq(out.len, 1);
		ck_assert_uint_eq(cp.raw_len, 0);
	}
	/* All 129 bytes used, no terminator: over the limit, refused. */
	memset(&cp, 0, sizeof cp);
	memset(cp.origin, 'a', sizeof cp.origin);
	ck_assert_int_eq(checkpoint_sign(&cp, sk_a, &out), BS_EINVALID);
	ck_assert_uint_eq(out.len, 1);
	/* 128 is fine. */
	cp.origin[CHECKPOINT_ORIGIN_MAX] = '\0';
	ck_assert_int_eq(checkpoint_sign(&cp, sk_a, &out), BS_OK);
	ck_assert_int_eq(cp_decode_verify(out.data + 1, out.len - 1, pk_a),
			 BS_OK);
	buf_release(&out);
}
END_TEST

START_TEST(overlong_and_limits)
{
	uint8_t in[ENC_MAX], cp[ENC_MAX], r[ENC_MAX];
	size_t n, cpn;
	static const uint8_t origin[] = "dist";

	keys_init();
	/* size 5 as 85 00, right after magic, version and the origin blob. */
	n = add_sig(in, raw_checkpoint(origin, 4, 5, root_x, 9, in),
		    SIGN_CHECKPOINT, sk_a);
	ck_assert_uint_eq(in[10], 5);
	memmove(in + 12, in + 11, n - 11);
	in[10] = 0x85;
	in[11] = 0x00;
	ck_assert_int_eq(cp_decode_copy(in, n + 1), BS_EOVERLONG);
	/* The origin's length 4 as 84 00. */
	n = add_sig(in, raw_checkpoint(origin, 4, 5, root_x, 9, in),
		    SIGN_CHECKPOINT, sk_a);
	ck_assert_uint_eq(in[5], 4);
	memmove(in + 7, in + 6, n - 6);
	in[5] = 0x84;
	in[6] = 0x00;
	ck_assert_int_eq(cp_decode_copy(in, n + 1), BS_EOVERLONG);

	/* The receipt's index 1 as 81 00, and its blob length overlong. */
	cpn = add_sig(cp, raw_checkpoint(origin, 4, 5, root_x, 9, cp),
		      SIGN_CHECKPOINT, sk_a);
	n = signed_receipt(1, cp, cpn, sk_a, r);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_a), BS_OK);
	ck_assert_uint_eq(r[37], 1);
	memmove(r + 39, r + 38, n - 38);
	r[37] = 0x81;
	r[38] = 0x00;
	ck_assert_int_eq(rc_decode_copy(r, n + 1), BS_EOVERLONG);
	n = signed_receipt(1, cp, cpn, sk_a, r);
	ck_assert_uint_eq(r[38], cpn);
	memmove(r + 40, r + 39, n - 39);
	r[38] = (uint8_t)(0x80 | cpn);
	r[39] = 0x00;
	ck_assert_int_eq(rc_decode_copy(r, n + 1), BS_EOVERLONG);

	/* A checkpoint blob longer than any checkpoint: the limit. */
	{
		uint8_t big[CHECKPOINT_SIGNED_MAX + 1] = {0};

		memcpy(big, cp, cpn);
		n = signed_receipt(1, big, CHECKPOINT_SIGNED_MAX + 1, sk_a, r);
		mem_fail_after(0);
		ck_assert_int_eq(rc_decode_copy(r, n), BS_ELIMIT);
		ck_assert_int_eq(rc_decode_copy(r, 5 + 32 + 1 + 2), BS_ELIMIT);
		mem_fail_reset();
		/* Exactly the limit passes the blob check (and then fails
		 * inside, as the checkpoint is shorter than its blob). */
		n = signed_receipt(1, big, CHECKPOINT_SIGNED_MAX, sk_a, r);
		ck_assert_int_eq(rc_decode_copy(r, n), BS_ETRAILING);
	}
}
END_TEST

/* ---- signatures ---- */

START_TEST(signature_under_other_labels)
{
	uint8_t cp[ENC_MAX], r[ENC_MAX], msg[ENC_MAX];
	size_t raw_len, cpn, n, rn;
	int kind;
	static const uint8_t origin[] = "district-7";

	keys_init();
	raw_len = raw_checkpoint(origin, 10, 9, root_x, 77, cp);
	for (kind = SIGN_CHANGESET; kind <= SIGN_DIGEST; kind++) {
		cpn = add_sig(cp, raw_len, (enum sign_kind)kind, sk_a);
		ck_assert_int_eq(cp_decode_verify(cp, cpn, pk_a),
				 kind == SIGN_CHECKPOINT ? BS_OK : BS_ESIGNATURE);
	}
	/* Without the 0x00 separator, and without any label. */
	memcpy(msg, "branchsync/checkpoint/v1", 24);
	memcpy(msg + 24, cp, raw_len);
	crypto_sign_detached(cp + raw_len, NULL, msg, 24 + raw_len, sk_a);
	ck_assert_int_eq(cp_decode_verify(cp, cpn, pk_a), BS_ESIGNATURE);
	crypto_sign_detached(cp + raw_len, NULL, cp, raw_len, sk_a);
	ck_assert_int_eq(cp_decode_verify(cp, cpn, pk_a), BS_ESIGNATURE);
	/* By hand, as FORMAT.md says: accepted. */
	msg[24] = 0x00;
	memcpy(msg + 25, cp, raw_len);
	crypto_sign_detached(cp + raw_len, NULL, msg, 25 + raw_len, sk_a);
	ck_assert_int_eq(cp_decode_verify(cp, cpn, pk_a), BS_OK);

	/* A receipt signed under every label but its own. */
	n = raw_receipt(csid_x, 3, cp, cpn, r);
	for (kind = SIGN_CHANGESET; kind <= SIGN_DIGEST; kind++) {
		rn = add_sig(r, n, (enum sign_kind)kind, sk_a);
		ck_assert_int_eq(rc_decode_verify(r, rn, pk_a),
				 kind == SIGN_RECEIPT ? BS_OK : BS_ESIGNATURE);
	}
	memcpy(msg, "branchsync/receipt/v1", 22); /* with its 0x00 */
	memcpy(msg + 22, r, n);
	crypto_sign_detached(r + n, NULL, msg, 22 + n, sk_a);
	ck_assert_int_eq(rc_decode_verify(r, rn, pk_a), BS_OK);
}
END_TEST

/* Whatever byte changes, decode or verify fails. */
START_TEST(any_flip_is_caught)
{
	static const char *types[] = {"checkpoint", "receipt"};
	static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
	char names[8][32];
	size_t t, count, v, i, m;

	keys_init();
	for (t = 0; t < 2; t++) {
		count = kat_names(VECTORS, types[t], names, 8);
		for (v = 0; v < count; v++) {
			struct kat_common k;
			uint8_t in[ENC_MAX];

			kat_common_load(names[v], &k);
			for (i = 0; i < k.enc_len; i++) {
				for (m = 0; m < sizeof masks; m++) {
					enum bs_status got;

					memcpy(in, k.encoded, k.enc_len);
					in[i] ^= masks[m];
					got = t == 0 ? cp_decode_verify(in, k.enc_len,
									k.public)
						     : rc_decode_verify(in, k.enc_len,
									k.public);
					ck_assert_msg(got != BS_OK,
						      "%s: flip %02x at %zu",
						      names[v], masks[m], i);
				}
			}
		}
	}
}
END_TEST

START_TEST(receipt_index_outside_tree)
{
	uint8_t cp[ENC_MAX], r[ENC_MAX];
	struct receipt rc;
	struct buf out;
	size_t cpn, n;
	static const uint8_t origin[] = "d";
	static const struct {
		uint64_t size, index;
		enum bs_status want;
	} cases[] = {
		{8, 7, BS_OK},
		{8, 8, BS_EINVALID},
		{8, 9, BS_EINVALID},
		{0, 0, BS_EINVALID},
		{1, 0, BS_OK},
		{1, UINT64_MAX, BS_EINVALID},
		{UINT64_MAX, UINT64_MAX - 1, BS_OK},
		{UINT64_MAX, UINT64_MAX, BS_EINVALID},
	};
	size_t i;

	keys_init();
	buf_init(&out, ENC_MAX);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* Made by hand: decodes, but does not verify. */
		cpn = add_sig(cp, raw_checkpoint(origin, 1, cases[i].size,
						 root_x, 1, cp),
			      SIGN_CHECKPOINT, sk_a);
		n = signed_receipt(cases[i].index, cp, cpn, sk_a, r);
		ck_assert_int_eq(receipt_decode(r, n, &rc), BS_OK);
		ck_assert_msg(receipt_verify(&rc, pk_a) == cases[i].want,
			      "case %zu", i);
		/* Our signer refuses to make it at all. */
		buf_reset(&out);
		buf_append(&out, "q", 1);
		ck_assert_int_eq(receipt_sign(&rc, sk_a, &out), cases[i].want);
		if (cases[i].want)
			ck_assert_uint_eq(out.len, 1);
	}
	/* The index is judged before the signatures. */
	cpn = add_sig(cp, raw_checkpoint(origin, 1, 4, root_x, 1, cp),
		      SIGN_CHECKPOINT, sk_b);
	n = signed_receipt(4, cp, cpn, sk_b, r);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_a), BS_EINVALID);
	buf_release(&out);
}
END_TEST

START_TEST(receipt_checkpoint_by_other_key)
{
	uint8_t cp[ENC_MAX], r[ENC_MAX];
	size_t raw_len, cpn, n;
	static const uint8_t origin[] = "d";

	keys_init();
	raw_len = raw_checkpoint(origin, 1, 10, root_x, 1, cp);

	/* Checkpoint by B inside a receipt by A. */
	cpn = add_sig(cp, raw_len, SIGN_CHECKPOINT, sk_b);
	n = signed_receipt(2, cp, cpn, sk_a, r);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_a), BS_ESIGNATURE);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_b), BS_ESIGNATURE);
	/* Both by B: valid for B only. */
	n = signed_receipt(2, cp, cpn, sk_b, r);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_b), BS_OK);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_a), BS_ESIGNATURE);
	/* Checkpoint by A inside a receipt by B. */
	cpn = add_sig(cp, raw_len, SIGN_CHECKPOINT, sk_a);
	n = signed_receipt(2, cp, cpn, sk_b, r);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_a), BS_ESIGNATURE);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_b), BS_ESIGNATURE);
	/* The control. */
	n = signed_receipt(2, cp, cpn, sk_a, r);
	ck_assert_int_eq(rc_decode_verify(r, n, pk_a), BS_OK);
}
END_TEST

START_TEST(state_errors)
{
	struct checkpoint cp;
	struct receipt rc;
	struct buf out;

	keys_init();
	memset(&cp, 0, sizeof cp);
	ck_assert_int_eq(checkpoint_verify(&cp, pk_a), BS_ESTATE);
	memset(&rc, 0, sizeof rc);
	rc.checkpoint.size = 2;
	rc.index = 1;
	ck_assert_int_eq(receipt_verify(&rc, pk_a), BS_ESTATE);
	buf_init(&out, ENC_MAX);
	ck_assert_int_eq(receipt_sign(&rc, sk_a, &out), BS_ESTATE);
	ck_assert_uint_eq(out.len, 0);
	/* A signed checkpoint but a receipt never signed. */
	strcpy(rc.checkpoint.origin, "d");
	ck_assert_int_eq(checkpoint_sign(&rc.checkpoint, sk_a, &out), BS_OK);
	ck_assert_int_eq(receipt_verify(&rc, pk_a), BS_ESTATE);
	buf_release(&out);
}
END_TEST

/* A failed signing leaves the caller's buffer as it was. */
START_TEST(sign_failures_leave_buffer)
{
	struct checkpoint cp;
	struct receipt rc;
	struct buf out;
	uint8_t pad[512] = {0};

	keys_init();
	memset(&cp, 0, sizeof cp);
	strcpy(cp.origin, "district");
	cp.size = 3;
	buf_init(&out, ENC_MAX);
	buf_append(&out, pad, sizeof pad);
	buf_reset(&out); /* grown memory, so only the signer allocates */
	buf_append(&out, "zz", 2);
	mem_fail_after(0);
	ck_assert_int_eq(checkpoint_sign(&cp, sk_a, &out), BS_ENOMEM);
	mem_fail_reset();
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq(out.status, BS_OK);

	ck_assert_int_eq(checkpoint_sign(&cp, sk_a, &out), BS_OK);
	memset(&rc, 0, sizeof rc);
	rc.index = 2;
	rc.checkpoint = cp;
	buf_reset(&out);
	buf_append(&out, "zz", 2);
	mem_fail_after(0);
	ck_assert_int_eq(receipt_sign(&rc, sk_a, &out), BS_ENOMEM);
	mem_fail_reset();
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq(out.status, BS_OK);
	ck_assert_int_eq(receipt_sign(&rc, sk_a, &out), BS_OK);
	ck_assert_int_eq(rc_decode_verify(out.data + 2, out.len - 2, pk_a),
			 BS_OK);
	buf_release(&out);

	/* A buffer too small for the result. */
	buf_init(&out, 50);
	ck_assert_int_eq(checkpoint_sign(&cp, sk_a, &out), BS_ELIMIT);
	buf_release(&out);
}
END_TEST

START_TEST(decode_never_allocates)
{
	struct kat_common kc, kr;
	struct checkpoint cp;
	struct receipt rc;

	keys_init();
	kat_common_load("cp-small", &kc);
	kat_common_load("rc-small", &kr);
	mem_fail_after(0);
	ck_assert_int_eq(checkpoint_decode(kc.encoded, kc.enc_len, &cp), BS_OK);
	ck_assert_int_eq(receipt_decode(kr.encoded, kr.enc_len, &rc), BS_OK);
	ck_assert_int_eq(checkpoint_verify(&cp, kc.public), BS_ENOMEM);
	mem_fail_reset();
	ck_assert_int_eq(checkpoint_verify(&cp, kc.public), BS_OK);
	ck_assert_int_eq(receipt_verify(&rc, kr.public), BS_OK);
}
END_TEST

static Suite *checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *kat = tcase_create("kat");
	TCase *rt = tcase_create("roundtrip");
	TCase *bad = tcase_create("malformed");
	TCase *sig = tcase_create("signature");

	tcase_add_test(kat, kat_checkpoints);
	tcase_add_test(kat, kat_receipts);
	tcase_add_test(rt, roundtrip_random);
	tcase_add_test(bad, truncated_at_every_offset);
	tcase_add_test(bad, trailing_bytes);
	tcase_add_test(bad, wrong_magic_and_version);
	tcase_add_test(bad, origin_rules);
	tcase_add_test(bad, encoder_refuses_bad_origin);
	tcase_add_test(bad, overlong_and_limits);
	tcase_add_test(bad, state_errors);
	tcase_add_test(bad, sign_failures_leave_buffer);
	tcase_add_test(bad, decode_never_allocates);
	tcase_add_test(sig, signature_under_other_labels);
	tcase_add_test(sig, any_flip_is_caught);
	tcase_add_test(sig, receipt_index_outside_tree);
	tcase_add_test(sig, receipt_checkpoint_by_other_key);
	suite_add_tcase(s, kat);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, sig);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(checkpoint_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
