/* test_verdict.c - Check suite for protocol/verdict: the server's answers to
 * a push against known-answer vectors (tests/vectors/verdict-kat.txt, whose
 * receipts are those of checkpoint-kat.txt), round trips, and malformed
 * input with the exact bs_status each must give. Not for the receipt's own
 * checks (tests/test_checkpoint.c). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "kat.h"
#include "mem.h"
#include "verdict.h"
#include "wire.h"

/* Offsets of the fixed-position fields (FORMAT.md, "Verdicts"). */
#define OFF_REASON 33 /* reason length varint */
#define ENC_MAX 2048

static uint8_t pk_s[SIGN_PUBLIC_BYTES], sk_s[SIGN_SECRET_BYTES];

/* The vectors' server key: seed 01..20. */
static void keys_init(void)
{
	ck_assert_int_eq(sign_init(), BS_OK);
	kat_keypair(1, pk_s, sk_s);
}

/* The known-answer file (read-only; see its header). */
#define VECTORS "verdict-kat.txt"

struct kat_vd {
	int status;
	char receipt_of[32];
	uint8_t id[32], reason[512], receipt[ENC_MAX], encoded[ENC_MAX];
	size_t reason_len, receipt_len, enc_len;
};

static void kat_vd_load(const char *name, struct kat_vd *k)
{
	size_t len = 0;
	const char *v;

	memset(k, 0, sizeof *k);
	v = kat_find(VECTORS, name, "status", &len);
	ck_assert_msg(v != NULL && len == 1, "no status in %s", name);
	k->status = v[0] - '0';
	ck_assert_uint_eq(kat_hex(VECTORS, name, "changeset_id", k->id, 32),
			  32);
	k->reason_len =
	    kat_hex(VECTORS, name, "reason", k->reason, sizeof k->reason);
	k->receipt_len = kat_hex(VECTORS, name, "receipt", k->receipt, ENC_MAX);
	k->enc_len = kat_hex(VECTORS, name, "encoded", k->encoded, ENC_MAX);
	v = kat_find(VECTORS, name, "receipt_of", &len);
	ck_assert_msg(v != NULL && len < sizeof k->receipt_of, "receipt_of");
	memcpy(k->receipt_of, v, len);
}

/* ---- an encoder of our own, written from FORMAT.md, with no checks ---- */

struct raw_vd {
	uint8_t status;
	uint8_t id[32];
	const void *reason;
	size_t reason_len;
	const void *receipt;
	size_t receipt_len;
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

static size_t raw_verdict(const struct raw_vd *e, uint8_t *out)
{
	size_t n = 0;

	out[n++] = e->status;
	memcpy(out + n, e->id, 32);
	n += 32;
	n += t_varint(out + n, e->reason_len);
	if (e->reason_len)
		memcpy(out + n, e->reason, e->reason_len);
	n += e->reason_len;
	n += t_varint(out + n, e->receipt_len);
	if (e->receipt_len)
		memcpy(out + n, e->receipt, e->receipt_len);
	return n + e->receipt_len;
}

static const uint8_t fake_receipt[3] = {0x42, 0x53, 0x52};

/* A valid accepted verdict with a (fake, opaque) receipt. */
static void raw_vd_default(struct raw_vd *e)
{
	memset(e, 0, sizeof *e);
	e->status = VERDICT_ACCEPTED;
	memset(e->id, 0xab, 32);
	e->reason = "";
	e->receipt = fake_receipt;
	e->receipt_len = sizeof fake_receipt;
}

static enum bs_status decode_copy(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct verdict v;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = verdict_decode(copy, len, &v);
	free(copy);
	return rc;
}

/* ---- known answers ---- */

START_TEST(kat_verdicts)
{
	char names[8][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	ck_assert_uint_ge(count, 4);
	for (v = 0; v < count; v++) {
		struct kat_vd k;
		struct verdict vd, dec;
		struct raw_vd re;
		struct buf out;
		uint8_t raw[ENC_MAX], rc_file[ENC_MAX];

		kat_vd_load(names[v], &k);
		/* The receipt is the named one of checkpoint-kat.txt. */
		if (strcmp(k.receipt_of, "-") == 0) {
			ck_assert_uint_eq(k.receipt_len, 0);
		} else {
			ck_assert_uint_eq(kat_hex("checkpoint-kat.txt",
						     k.receipt_of, "encoded",
						     rc_file, sizeof rc_file),
					  k.receipt_len);
			ck_assert_mem_eq(rc_file, k.receipt, k.receipt_len);
		}

		memset(&vd, 0, sizeof vd);
		vd.status = (enum verdict_status)k.status;
		memcpy(vd.changeset_id, k.id, 32);
		ck_assert_uint_le(k.reason_len, VERDICT_REASON_MAX);
		memcpy(vd.reason, k.reason, k.reason_len);
		vd.receipt = k.receipt_len ? k.receipt : NULL;
		vd.receipt_len = k.receipt_len;
		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(verdict_encode(&vd, &out), BS_OK);
		ck_assert_uint_eq(out.len, k.enc_len);
		ck_assert_mem_eq(out.data, k.encoded, k.enc_len);
		buf_release(&out);

		re.status = (uint8_t)k.status;
		memcpy(re.id, k.id, 32);
		re.reason = k.reason;
		re.reason_len = k.reason_len;
		re.receipt = k.receipt;
		re.receipt_len = k.receipt_len;
		ck_assert_uint_eq(raw_verdict(&re, raw), k.enc_len);
		ck_assert_mem_eq(raw, k.encoded, k.enc_len);

		ck_assert_int_eq(verdict_decode(k.encoded, k.enc_len, &dec),
				 BS_OK);
		ck_assert_int_eq(dec.status, k.status);
		ck_assert_mem_eq(dec.changeset_id, k.id, 32);
		ck_assert_uint_eq(strlen(dec.reason), k.reason_len);
		ck_assert_mem_eq(dec.reason, k.reason, k.reason_len);
		ck_assert_uint_eq(dec.receipt_len, k.receipt_len);
		if (k.receipt_len == 0) {
			ck_assert_ptr_null(dec.receipt);
		} else {
			struct receipt r;

			ck_assert_ptr_eq(dec.receipt,
					 k.encoded + k.enc_len - k.receipt_len);
			/* Opaque here; it is a real receipt for this id. */
			ck_assert_int_eq(receipt_decode(dec.receipt,
							dec.receipt_len, &r),
					 BS_OK);
			ck_assert_int_eq(receipt_verify(&r, pk_s), BS_OK);
			ck_assert_mem_eq(r.changeset_id, dec.changeset_id, 32);
		}
	}
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
	dst[n] = '\0';
}

START_TEST(roundtrip_random)
{
	unsigned seed = 1618;
	uint8_t receipt[RECEIPT_SIGNED_MAX];
	int i;

	for (i = 0; i < 500; i++) {
		struct verdict vd, dec;
		struct raw_vd re;
		struct buf out;
		uint8_t raw[ENC_MAX];
		size_t rlen, j, want;

		memset(&vd, 0, sizeof vd);
		vd.status = (enum verdict_status)(rand_r(&seed) % 3);
		for (j = 0; j < 32; j++)
			vd.changeset_id[j] = (uint8_t)rand_r(&seed);
		rlen = (size_t)rand_r(&seed) % (VERDICT_REASON_MAX + 1);
		if (vd.status != VERDICT_REFUSED && rand_r(&seed) % 2)
			rlen = 0;
		if (vd.status == VERDICT_REFUSED && rlen == 0)
			rlen = VERDICT_REASON_MAX;
		random_text(&seed, vd.reason, rlen);
		vd.receipt_len = 1 + (size_t)rand_r(&seed) % RECEIPT_SIGNED_MAX;
		if (i % 10 == 0)
			vd.receipt_len = RECEIPT_SIGNED_MAX;
		if (vd.status == VERDICT_REFUSED && rand_r(&seed) % 2)
			vd.receipt_len = 0;
		for (j = 0; j < vd.receipt_len; j++)
			receipt[j] = (uint8_t)rand_r(&seed);
		vd.receipt = vd.receipt_len ? receipt : NULL;

		buf_init(&out, ENC_MAX);
		ck_assert_int_eq(verdict_encode(&vd, &out), BS_OK);
		want = 1 + 32 + wire_varint_size(rlen) + rlen +
		       wire_varint_size(vd.receipt_len) + vd.receipt_len;
		ck_assert_uint_eq(out.len, want);
		re.status = (uint8_t)vd.status;
		memcpy(re.id, vd.changeset_id, 32);
		re.reason = vd.reason;
		re.reason_len = rlen;
		re.receipt = receipt;
		re.receipt_len = vd.receipt_len;
		ck_assert_uint_eq(raw_verdict(&re, raw), want);
		ck_assert_mem_eq(out.data, raw, want);

		ck_assert_int_eq(verdict_decode(out.data, out.len, &dec), BS_OK);
		ck_assert_int_eq(dec.status, vd.status);
		ck_assert_mem_eq(dec.changeset_id, vd.changeset_id, 32);
		ck_assert_str_eq(dec.reason, vd.reason);
		ck_assert_uint_eq(dec.receipt_len, vd.receipt_len);
		if (vd.receipt_len)
			ck_assert_mem_eq(dec.receipt, receipt, vd.receipt_len);
		else
			ck_assert_ptr_null(dec.receipt);
		buf_release(&out);
	}
}
END_TEST

/* ---- malformed input, one rule at a time ---- */

START_TEST(truncated_at_every_offset)
{
	char names[8][32];
	size_t count, v, cut;

	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_vd k;

		kat_vd_load(names[v], &k);
		ck_assert_int_eq(decode_copy(k.encoded, k.enc_len), BS_OK);
		for (cut = 0; cut < k.enc_len; cut++)
			ck_assert_msg(decode_copy(k.encoded, cut) == BS_ETRUNCATED,
				      "%s cut at %zu", names[v], cut);
	}
}
END_TEST

START_TEST(trailing_bytes)
{
	char names[8][32];
	size_t count, v;

	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_vd k;
		uint8_t in[ENC_MAX + 2];

		kat_vd_load(names[v], &k);
		memcpy(in, k.encoded, k.enc_len);
		in[k.enc_len] = 0x00;
		in[k.enc_len + 1] = 0xff;
		ck_assert_int_eq(decode_copy(in, k.enc_len + 1), BS_ETRAILING);
		ck_assert_int_eq(decode_copy(in, k.enc_len + 2), BS_ETRAILING);
	}
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
	static const uint8_t three3[] = {0x83, 0x80, 0x00};
	static const uint8_t four2[] = {0x84, 0x00};
	static const uint8_t tenth_big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0x02};
	struct raw_vd e;
	uint8_t in[256], out[256];
	size_t len, n;

	raw_vd_default(&e);
	len = raw_verdict(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_OK);
	ck_assert_uint_eq(in[OFF_REASON], 0);
	n = splice(in, len, OFF_REASON, 1, zero2, sizeof zero2, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	n = splice(in, len, OFF_REASON, 1, tenth_big, sizeof tenth_big, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
	ck_assert_uint_eq(in[OFF_REASON + 1], 3);
	n = splice(in, len, OFF_REASON + 1, 1, three3, sizeof three3, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);

	e.status = VERDICT_REFUSED;
	e.reason = "nope";
	e.reason_len = 4;
	len = raw_verdict(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_OK);
	n = splice(in, len, OFF_REASON, 1, four2, sizeof four2, out);
	ck_assert_int_eq(decode_copy(out, n), BS_EOVERLONG);
}
END_TEST

START_TEST(oversize_fields)
{
	static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff, 0x01};
	static uint8_t big[1024];
	struct raw_vd e;
	uint8_t in[ENC_MAX];
	size_t len;

	memset(big, 'x', sizeof big);
	raw_vd_default(&e);
	e.status = VERDICT_REFUSED;
	e.reason = big;
	e.reason_len = VERDICT_REASON_MAX + 1;
	len = raw_verdict(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_ELIMIT);
	ck_assert_int_eq(decode_copy(in, OFF_REASON + 2), BS_ELIMIT);
	e.reason_len = VERDICT_REASON_MAX;
	len = raw_verdict(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_OK);

	raw_vd_default(&e);
	e.receipt = big;
	e.receipt_len = RECEIPT_SIGNED_MAX + 1;
	len = raw_verdict(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_ELIMIT);
	ck_assert_int_eq(decode_copy(in, OFF_REASON + 3), BS_ELIMIT);
	e.receipt_len = RECEIPT_SIGNED_MAX;
	len = raw_verdict(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_OK);

	/* 2^64 - 1 as a length, with nothing after it. */
	raw_vd_default(&e);
	len = raw_verdict(&e, in);
	memcpy(in + OFF_REASON, huge, sizeof huge);
	ck_assert_int_eq(decode_copy(in, OFF_REASON + sizeof huge), BS_ELIMIT);
	in[OFF_REASON] = 0;
	memcpy(in + OFF_REASON + 1, huge, sizeof huge);
	ck_assert_int_eq(decode_copy(in, OFF_REASON + 1 + sizeof huge),
			 BS_ELIMIT);
	ck_assert_uint_eq(RECEIPT_SIGNED_MAX, 362);
}
END_TEST

struct vd_case {
	const char *what;
	uint8_t status;
	const char *reason;
	size_t reason_len;
	size_t receipt_len;
	enum bs_status want;
};

#define S(s) s, sizeof s - 1

START_TEST(invalid_fields)
{
	static const struct vd_case cases[] = {
		{"status 3", 3, S("x"), 3, BS_EINVALID},
		{"status 255", 255, S(""), 3, BS_EINVALID},
		{"status 0x80", 0x80, S(""), 3, BS_EINVALID},
		{"accepted without receipt", 0, S(""), 0, BS_EINVALID},
		{"duplicate without receipt", 1, S(""), 0, BS_EINVALID},
		{"accepted with reason, no receipt", 0, S("ok"), 0, BS_EINVALID},
		{"refused without reason", 2, S(""), 0, BS_EINVALID},
		{"refused without reason, with receipt", 2, S(""), 3,
		 BS_EINVALID},
		{"NUL in reason", 2, S("a\0b"), 0, BS_EINVALID},
		{"NUL ends reason", 2, S("ab\0"), 0, BS_EINVALID},
		{"newline in reason", 2, S("a\nb"), 0, BS_EINVALID},
		{"ESC in reason", 2, S("\x1b"), 0, BS_EINVALID},
		{"DEL in reason", 2, S("\x7f"), 3, BS_EINVALID},
		{"DEL in an accepted's reason", 0, S("\x7f"), 3, BS_EINVALID},
		/* Controls: what is allowed. */
		{"accepted", 0, S(""), 3, BS_OK},
		{"duplicate, 1-byte receipt", 1, S(""), 1, BS_OK},
		{"refused, no receipt", 2, S("no"), 0, BS_OK},
		{"refused and logged", 2, S("no"), 3, BS_OK},
		{"refused, UTF-8 reason", 2, S("\xe8\xb6\x8a ~"), 0, BS_OK},
		{"accepted with a note", 0, S("note"), 3, BS_OK},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct vd_case *c = &cases[i];
		struct raw_vd e;
		uint8_t in[256];
		size_t len;
		enum bs_status got;

		raw_vd_default(&e);
		e.status = c->status;
		e.reason = c->reason;
		e.reason_len = c->reason_len;
		e.receipt_len = c->receipt_len;
		len = raw_verdict(&e, in);
		got = decode_copy(in, len);
		ck_assert_msg(got == c->want, "%s: got %s, want %s", c->what,
			      bs_status_str(got), bs_status_str(c->want));

		/* The encoder agrees (a NUL ends its C string reason, so
		 * those cases say something else there). */
		if (!memchr(c->reason, '\0', c->reason_len)) {
			struct verdict vd;
			struct buf out;

			memset(&vd, 0, sizeof vd);
			vd.status = (enum verdict_status)c->status;
			memset(vd.changeset_id, 0xab, 32);
			memcpy(vd.reason, c->reason, c->reason_len);
			vd.receipt = c->receipt_len ? fake_receipt : NULL;
			vd.receipt_len = c->receipt_len;
			buf_init(&out, 256);
			buf_append(&out, "pre", 3);
			ck_assert_msg(verdict_encode(&vd, &out) == c->want,
				      "encode %s", c->what);
			if (c->want == BS_OK) {
				ck_assert_uint_eq(out.len, 3 + len);
				ck_assert_mem_eq(out.data + 3, in, len);
			} else {
				ck_assert_uint_eq(out.len, 3);
			}
			buf_release(&out);
		}
	}
}
END_TEST

/* Field rules are judged on a whole verdict: framing errors come first. */
START_TEST(framing_before_rules)
{
	struct raw_vd e;
	uint8_t in[256];
	size_t len;

	raw_vd_default(&e);
	e.status = 7;
	len = raw_verdict(&e, in);
	ck_assert_int_eq(decode_copy(in, len), BS_EINVALID);
	ck_assert_int_eq(decode_copy(in, len - 1), BS_ETRUNCATED);
	in[len] = 0;
	ck_assert_int_eq(decode_copy(in, len + 1), BS_ETRAILING);
	ck_assert_int_eq(decode_copy(in, 0), BS_ETRUNCATED);
	ck_assert_int_eq(decode_copy(in, 1), BS_ETRUNCATED);
}
END_TEST

START_TEST(encoder_limits_and_resources)
{
	static uint8_t big[RECEIPT_SIGNED_MAX + 1];
	struct verdict vd;
	struct buf out;
	uint8_t pad[512] = {0};

	memset(&vd, 0, sizeof vd);
	vd.status = VERDICT_DUPLICATE;
	vd.receipt = big;
	vd.receipt_len = RECEIPT_SIGNED_MAX + 1;
	buf_init(&out, ENC_MAX);
	buf_append(&out, "pre", 3);
	ck_assert_int_eq(verdict_encode(&vd, &out), BS_ELIMIT);
	ck_assert_uint_eq(out.len, 3);
	ck_assert_int_eq(out.status, BS_OK);
	/* A reason filling the array without a terminator: refused, not read
	 * past. */
	vd.receipt_len = RECEIPT_SIGNED_MAX;
	memset(vd.reason, 'r', sizeof vd.reason);
	ck_assert_int_eq(verdict_encode(&vd, &out), BS_EINVALID);
	ck_assert_uint_eq(out.len, 3);
	vd.reason[VERDICT_REASON_MAX] = '\0';
	ck_assert_int_eq(verdict_encode(&vd, &out), BS_OK);
	ck_assert_uint_eq(out.len, 3 + 1 + 32 + 2 + 256 + 2 + 362);
	buf_release(&out);

	/* Too small a buffer: the buffer's error, sticky. */
	buf_init(&out, 100);
	ck_assert_int_eq(verdict_encode(&vd, &out), BS_ELIMIT);
	ck_assert_int_eq(out.status, BS_ELIMIT);
	buf_release(&out);
	/* No memory; and with memory there, no allocation. */
	buf_init(&out, ENC_MAX);
	mem_fail_after(0);
	ck_assert_int_eq(verdict_encode(&vd, &out), BS_ENOMEM);
	mem_fail_reset();
	buf_release(&out);
	buf_init(&out, ENC_MAX);
	buf_append(&out, pad, sizeof pad);
	buf_append(&out, pad, sizeof pad);
	buf_reset(&out);
	mem_fail_after(0);
	ck_assert_int_eq(verdict_encode(&vd, &out), BS_OK);
	mem_fail_reset();
	buf_release(&out);
}
END_TEST

START_TEST(decode_never_allocates)
{
	char names[8][32];
	size_t count, v;

	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_vd k;
		struct verdict vd;

		kat_vd_load(names[v], &k);
		mem_fail_after(0);
		ck_assert_int_eq(verdict_decode(k.encoded, k.enc_len, &vd),
				 BS_OK);
		mem_fail_reset();
	}
}
END_TEST

static Suite *verdict_suite(void)
{
	Suite *s = suite_create("verdict");
	TCase *kat = tcase_create("kat");
	TCase *rt = tcase_create("roundtrip");
	TCase *bad = tcase_create("malformed");

	tcase_add_test(kat, kat_verdicts);
	tcase_add_test(rt, roundtrip_random);
	tcase_add_test(bad, truncated_at_every_offset);
	tcase_add_test(bad, trailing_bytes);
	tcase_add_test(bad, overlong_varints);
	tcase_add_test(bad, oversize_fields);
	tcase_add_test(bad, invalid_fields);
	tcase_add_test(bad, framing_before_rules);
	tcase_add_test(bad, encoder_limits_and_resources);
	tcase_add_test(bad, decode_never_allocates);
	suite_add_tcase(s, kat);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(verdict_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
