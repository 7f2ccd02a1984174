/* test_pushreceipt.c - Check suite for protocol/pushreceipt: signed push
 * receipts against known-answer vectors (tests/vectors/pushreceipt-kat.txt,
 * made from FORMAT.md by an independent implementation), round trips, every
 * decoding and encoding rule with its exact bs_status, signatures and
 * allocation. Not for the embedded checkpoint's own rules
 * (tests/test_checkpoint.c). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "kat.h"
#include "mem.h"
#include "pushreceipt.h"
#include "sign.h"
#include "wire.h"

#define VECTORS "pushreceipt-kat.txt"
#define CP_VECTORS "checkpoint-kat.txt"
#define KAT_MAX 8192
#define LABEL "branchsync/pushreceipt/v1"

static uint8_t pk_a[SIGN_PUBLIC_BYTES], sk_a[SIGN_SECRET_BYTES];
static uint8_t pk_b[SIGN_PUBLIC_BYTES], sk_b[SIGN_SECRET_BYTES];

/* Key A from seed 01..20, key B from seed 21..40 (the vectors' keys). */
static void keys_init(void)
{
	ck_assert_int_eq(sign_init(), BS_OK);
	kat_keypair(1, pk_a, sk_a);
	kat_keypair(0x21, pk_b, sk_b);
}

/* ---- a writer of our own, from FORMAT.md, with no checks at all ---- */

struct w {
	uint8_t *p;
	size_t n;
};

static void w_bytes(struct w *w, const void *p, size_t n)
{
	if (n)
		memcpy(w->p + w->n, p, n);
	w->n += n;
}

static void w_u8(struct w *w, uint8_t v) { w->p[w->n++] = v; }

static void w_varint(struct w *w, uint64_t v)
{
	do {
		w_u8(w, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
		v >>= 7;
	} while (v);
}

static void w_blob(struct w *w, const void *p, size_t n)
{
	w_varint(w, n);
	w_bytes(w, p, n);
}

/* An item as it goes on the wire: code, then an index for codes 0-2 and a
 * reason for codes 2-3; other codes are written alone. */
struct t_item {
	int code;
	uint64_t index;
	const char *reason; /* rlen bytes */
	size_t rlen;
};

static const uint8_t hash_x[HASH_BYTES] = {0xab, 0xcd, 1, 2, 3};

static void w_item(struct w *w, const struct t_item *it)
{
	w_u8(w, (uint8_t)it->code);
	if (it->code >= 0 && it->code <= 2)
		w_varint(w, it->index);
	if (it->code == 2 || it->code == 3)
		w_blob(w, it->reason, it->rlen);
}

/* magic, version, checkpoint blob, count: the fixed head. */
static void w_head(struct w *w, const uint8_t *cp, size_t cp_len,
		   uint64_t count)
{
	w_bytes(w, "BSPR\x01", 5);
	w_blob(w, cp, cp_len);
	w_varint(w, count);
}

/* A whole receipt of n items; signed with sk, or 64 zero bytes if NULL. */
static size_t t_build(uint8_t *out, const uint8_t *cp, size_t cp_len,
		      const struct t_item *items, size_t n, const uint8_t *sk)
{
	struct w w = {out, 0};
	size_t i;

	w_head(&w, cp, cp_len, n);
	w_bytes(&w, hash_x, HASH_BYTES);
	for (i = 0; i < n; i++)
		w_item(&w, &items[i]);
	if (sk)
		ck_assert_int_eq(sign_detached(SIGN_PUSHRECEIPT, out, w.n, sk,
					       out + w.n),
				 BS_OK);
	else
		memset(out + w.n, 0, SIGN_BYTES);
	return w.n + SIGN_BYTES;
}

/* The checkpoint most tests embed: tree of 1000 leaves, signed by sk. */
static size_t test_checkpoint(const uint8_t *sk, uint64_t size, uint8_t *out,
			      struct checkpoint *cp)
{
	struct buf b;
	size_t n;

	memset(cp, 0, sizeof *cp);
	strcpy(cp->origin, "district-7");
	cp->size = size;
	memset(cp->root, 0x5a, HASH_BYTES);
	cp->time_ms = 1767225600000ULL;
	buf_init(&b, CHECKPOINT_SIGNED_MAX);
	ck_assert_int_eq(checkpoint_sign(cp, sk, &b), BS_OK);
	n = b.len;
	memcpy(out, b.data, n);
	buf_release(&b);
	return n;
}

/* Decodes an exact heap copy (so ASan sees any overread), checks that a
 * failure leaves nothing allocated, and releases. */
static enum bs_status decode_copy(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct pushreceipt pr;
	enum bs_status rc;

	ck_assert_ptr_nonnull(copy);
	if (len)
		memcpy(copy, p, len);
	rc = pushreceipt_decode(copy, len, &pr);
	if (rc) {
		ck_assert_ptr_null(pr.items);
		ck_assert_uint_eq(pr.count, 0);
	}
	pushreceipt_release(&pr);
	free(copy);
	return rc;
}

static enum bs_status decode_verify(const uint8_t *p, size_t len,
				    const uint8_t *pk)
{
	struct pushreceipt pr;
	enum bs_status rc = pushreceipt_decode(p, len, &pr);

	if (rc == BS_OK)
		rc = pushreceipt_verify(&pr, pk);
	pushreceipt_release(&pr);
	return rc;
}

/* ---- known answers ---- */

struct kat_pr {
	uint8_t seed[32], public[32], sig[SIGN_BYTES], ids_hash[HASH_BYTES];
	uint8_t cp[CHECKPOINT_SIGNED_MAX];
	uint8_t ids[KAT_MAX], unsigned_[KAT_MAX], message[KAT_MAX],
	    encoded[KAT_MAX];
	char checkpoint_of[KAT_NAME_MAX];
	size_t cp_len, count, unsigned_len, msg_len, enc_len;
	struct pushreceipt_item *items;
};

/* One item.N line: code, index or `-`, reason hex or `-`. */
static void kat_item(const char *name, size_t i, struct pushreceipt_item *it)
{
	char key[32], line[700], *idx, *reason, *end;
	unsigned long code;

	snprintf(key, sizeof key, "item.%zu", i);
	kat_str(VECTORS, name, key, line, sizeof line - 1);
	code = strtoul(line, &end, 10);
	ck_assert(*end == ' ' && code <= 3);
	idx = end + 1;
	reason = strchr(idx, ' ');
	ck_assert_ptr_nonnull(reason);
	*reason++ = '\0';
	memset(it, 0, sizeof *it);
	it->status = code == 0 ? VERDICT_ACCEPTED
		     : code == 1 ? VERDICT_DUPLICATE
				 : VERDICT_REFUSED;
	it->logged = code != 3;
	ck_assert_int_eq(strcmp(idx, "-") == 0, !it->logged);
	if (it->logged)
		it->index = strtoull(idx, NULL, 10);
	if (strcmp(reason, "-") == 0) {
		ck_assert_uint_le(code, 1);
	} else {
		size_t n;

		ck_assert_uint_ge(code, 2);
		n = kat_unhex(reason, strlen(reason), (uint8_t *)it->reason,
			      VERDICT_REASON_MAX);
		it->reason[n] = '\0';
	}
}

static void kat_pr_load(const char *name, struct kat_pr *k)
{
	size_t i, len = 0;
	const char *v;

	memset(k, 0, sizeof *k);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "seed", k->seed, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "public", k->public, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "signature", k->sig, 64), 64);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "ids_hash", k->ids_hash, 32),
			  32);
	k->cp_len = kat_hex(VECTORS, name, "checkpoint", k->cp, sizeof k->cp);
	k->count = kat_u64(VECTORS, name, "count");
	ck_assert_uint_eq(kat_hex(VECTORS, name, "ids", k->ids, KAT_MAX),
			  k->count * HASH_BYTES);
	k->unsigned_len =
	    kat_hex(VECTORS, name, "unsigned", k->unsigned_, KAT_MAX);
	k->msg_len = kat_hex(VECTORS, name, "message", k->message, KAT_MAX);
	k->enc_len = kat_hex(VECTORS, name, "encoded", k->encoded, KAT_MAX);
	v = kat_find(VECTORS, name, "checkpoint_of", &len);
	ck_assert(v != NULL && len < KAT_NAME_MAX);
	memcpy(k->checkpoint_of, v, len);
	k->items = calloc(k->count, sizeof *k->items);
	ck_assert_ptr_nonnull(k->items);
	for (i = 0; i < k->count; i++)
		kat_item(name, i, &k->items[i]);
	{
		char key[32];

		snprintf(key, sizeof key, "item.%zu", k->count);
		ck_assert_ptr_null(kat_find(VECTORS, name, key, &len));
	}
}

static size_t kat_all(char names[][KAT_NAME_MAX])
{
	size_t n = kat_names(VECTORS, NULL, names, 8);

	ck_assert_uint_ge(n, 3);
	return n;
}

START_TEST(kat_vectors)
{
	char names[8][KAT_NAME_MAX];
	size_t count = kat_all(names), v, i;
	int codes_seen[4] = {0, 0, 0, 0};

	keys_init();
	for (v = 0; v < count; v++) {
		struct kat_pr *k = malloc(sizeof *k);
		struct pushreceipt pr, dec;
		struct buf out;
		uint8_t pk[32], sk[64], h[HASH_BYTES];
		size_t ll = strlen(LABEL) + 1;

		ck_assert_ptr_nonnull(k);
		kat_pr_load(names[v], k);
		crypto_sign_seed_keypair(pk, sk, k->seed);
		ck_assert_mem_eq(pk, k->public, 32);

		/* The file is consistent with itself. */
		pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])k->ids,
				     k->count, h);
		ck_assert_mem_eq(h, k->ids_hash, HASH_BYTES);
		ck_assert_uint_eq(k->msg_len, ll + k->unsigned_len);
		ck_assert_mem_eq(k->message, LABEL, ll);
		ck_assert_mem_eq(k->message + ll, k->unsigned_,
				 k->unsigned_len);
		ck_assert_int_eq(crypto_sign_verify_detached(
				     k->sig, k->message, k->msg_len, k->public),
				 0);
		ck_assert_uint_eq(k->enc_len, k->unsigned_len + SIGN_BYTES);
		ck_assert_mem_eq(k->encoded, k->unsigned_, k->unsigned_len);
		ck_assert_mem_eq(k->encoded + k->unsigned_len, k->sig,
				 SIGN_BYTES);
		if (strcmp(k->checkpoint_of, "-") != 0) {
			uint8_t cp[CHECKPOINT_SIGNED_MAX];

			ck_assert_uint_eq(kat_hex(CP_VECTORS, k->checkpoint_of,
						  "encoded", cp, sizeof cp),
					  k->cp_len);
			ck_assert_mem_eq(cp, k->cp, k->cp_len);
		}

		/* Signing the fields gives the file's bytes. */
		memset(&pr, 0, sizeof pr);
		ck_assert_int_eq(
		    checkpoint_decode(k->cp, k->cp_len, &pr.checkpoint), BS_OK);
		ck_assert_int_eq(checkpoint_verify(&pr.checkpoint, pk), BS_OK);
		memcpy(pr.ids_hash, h, HASH_BYTES);
		pr.count = k->count;
		pr.items = k->items;
		buf_init(&out, PUSHRECEIPT_SIGNED_MAX);
		ck_assert_int_eq(pushreceipt_sign(&pr, sk, &out), BS_OK);
		ck_assert_uint_eq(out.len, k->enc_len);
		ck_assert_mem_eq(out.data, k->encoded, k->enc_len);
		buf_release(&out);

		/* Decoding the file's bytes gives the fields. */
		ck_assert_int_eq(pushreceipt_decode(k->encoded, k->enc_len,
						    &dec),
				 BS_OK);
		ck_assert_int_eq(pushreceipt_verify(&dec, pk), BS_OK);
		ck_assert_int_eq(
		    pushreceipt_verify(&dec,
				       memcmp(pk, pk_a, 32) == 0 ? pk_b : pk_a),
		    BS_ESIGNATURE);
		ck_assert_ptr_eq(dec.signed_bytes, k->encoded);
		ck_assert_uint_eq(dec.signed_len, k->unsigned_len);
		ck_assert_mem_eq(dec.sig, k->sig, SIGN_BYTES);
		ck_assert_mem_eq(dec.ids_hash, k->ids_hash, HASH_BYTES);
		ck_assert_uint_eq(dec.checkpoint.raw_len, k->cp_len - SIGN_BYTES);
		ck_assert_mem_eq(dec.checkpoint.raw, k->cp, dec.checkpoint.raw_len);
		ck_assert_mem_eq(dec.checkpoint.sig, k->cp + k->cp_len - SIGN_BYTES,
				 SIGN_BYTES);
		ck_assert_uint_eq(dec.count, k->count);
		for (i = 0; i < k->count; i++) {
			const struct pushreceipt_item *a = &dec.items[i];
			const struct pushreceipt_item *b = &k->items[i];

			ck_assert_int_eq(a->status, b->status);
			ck_assert_int_eq(a->logged, b->logged);
			ck_assert_uint_eq(a->index, b->index);
			ck_assert_str_eq(a->reason, b->reason);
			codes_seen[a->status == VERDICT_REFUSED
				       ? (a->logged ? 2 : 3)
				       : (int)a->status] = 1;
		}
		pushreceipt_release(&dec);
		ck_assert_ptr_null(dec.items);
		free(k->items);
		free(k);
	}
	for (i = 0; i < 4; i++)
		ck_assert_msg(codes_seen[i], "no vector has code %zu", i);
}
END_TEST

START_TEST(ids_hash)
{
	static const uint8_t empty[HASH_BYTES] = {
	    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
	    0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
	    0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
	};
	uint8_t ids[5][HASH_BYTES], h[HASH_BYTES], want[HASH_BYTES];
	size_t n, i;

	keys_init();
	pushreceipt_ids_hash(NULL, 0, h);
	ck_assert_mem_eq(h, empty, HASH_BYTES);
	for (i = 0; i < 5; i++)
		memset(ids[i], (int)(0x10 + i), HASH_BYTES);
	for (n = 1; n <= 5; n++) {
		crypto_hash_sha256(want, &ids[0][0], n * HASH_BYTES);
		pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids, n, h);
		ck_assert_mem_eq(h, want, HASH_BYTES);
	}
	/* Order matters. */
	memcpy(ids[0], ids[1], HASH_BYTES);
	memset(ids[1], 0x10, HASH_BYTES);
	pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids, 5, h);
	ck_assert_mem_ne(h, want, HASH_BYTES);
}
END_TEST

/* ---- round trips ---- */

static uint64_t rand64(unsigned *seed)
{
	uint64_t v = ((uint64_t)rand_r(seed) << 62) ^
		     ((uint64_t)rand_r(seed) << 31) ^ (uint64_t)rand_r(seed);

	return v >> (rand_r(seed) % 64);
}

static void random_reason(unsigned *seed, char *r, size_t len)
{
	size_t j;

	for (j = 0; j < len; j++) {
		int c = rand_r(seed) % (95 + 128);

		r[j] = (char)(c < 95 ? 0x20 + c : 0x80 + c - 95);
	}
	r[len] = '\0';
}

/* Bytes the format says item `it` takes. */
static size_t item_size(const struct pushreceipt_item *it)
{
	size_t rlen = strlen(it->reason);
	size_t n = 1;

	if (it->logged)
		n += wire_varint_size(it->index);
	if (it->status == VERDICT_REFUSED)
		n += wire_varint_size(rlen) + rlen;
	return n;
}

START_TEST(roundtrip_random)
{
	unsigned seed = 4242;
	struct buf out, again;
	int i;

	keys_init();
	buf_init(&out, PUSHRECEIPT_SIGNED_MAX);
	buf_init(&again, PUSHRECEIPT_SIGNED_MAX);
	for (i = 0; i < 120; i++) {
		struct pushreceipt pr, dec;
		struct buf cpb;
		int use_b = rand_r(&seed) & 1;
		const uint8_t *sk = use_b ? sk_b : sk_a;
		const uint8_t *pk = use_b ? pk_b : pk_a;
		size_t j, want, olen;
		int biggest = i == 0;

		memset(&pr, 0, sizeof pr);
		/* i == 0: every field at its maximum, PUSHRECEIPT_SIGNED_MAX */
		olen = biggest ? CHECKPOINT_ORIGIN_MAX
			       : 1 + (size_t)rand_r(&seed) % CHECKPOINT_ORIGIN_MAX;
		random_reason(&seed, pr.checkpoint.origin, olen);
		pr.checkpoint.size = biggest ? UINT64_MAX : 1 + rand64(&seed);
		if (pr.checkpoint.size == 0)
			pr.checkpoint.size = 1;
		pr.checkpoint.time_ms = rand64(&seed);
		buf_init(&cpb, CHECKPOINT_SIGNED_MAX);
		ck_assert_int_eq(checkpoint_sign(&pr.checkpoint, sk, &cpb),
				 BS_OK);
		buf_release(&cpb);
		for (j = 0; j < HASH_BYTES; j++)
			pr.ids_hash[j] = (uint8_t)rand_r(&seed);
		pr.count = biggest ? PUSHRECEIPT_MAX_SETS
			   : i < 20 ? 1 + (size_t)rand_r(&seed) %
						PUSHRECEIPT_MAX_SETS
				    : 1 + (size_t)rand_r(&seed) % 40;
		pr.items = calloc(pr.count, sizeof *pr.items);
		ck_assert_ptr_nonnull(pr.items);
		want = 4 + 1 + wire_varint_size(pr.checkpoint.raw_len + 64) +
		       pr.checkpoint.raw_len + 64 + wire_varint_size(pr.count) +
		       HASH_BYTES + SIGN_BYTES;
		for (j = 0; j < pr.count; j++) {
			struct pushreceipt_item *it = &pr.items[j];

			it->status = biggest ? VERDICT_REFUSED
					     : (enum verdict_status)(rand_r(&seed) % 3);
			it->logged = biggest || it->status != VERDICT_REFUSED ||
				     (rand_r(&seed) & 1);
			if (it->logged)
				it->index = biggest ? UINT64_MAX - 1 - j
						    : rand64(&seed) %
							  pr.checkpoint.size;
			if (it->status == VERDICT_REFUSED)
				random_reason(&seed, it->reason,
					      biggest ? VERDICT_REASON_MAX
						      : 1 + (size_t)rand_r(&seed) %
								VERDICT_REASON_MAX);
			want += item_size(it);
		}

		buf_reset(&out);
		ck_assert_int_eq(pushreceipt_sign(&pr, sk, &out), BS_OK);
		ck_assert_uint_eq(out.len, want);
		ck_assert_uint_le(out.len, PUSHRECEIPT_SIGNED_MAX);
		if (biggest)
			ck_assert_uint_eq(out.len, PUSHRECEIPT_SIGNED_MAX);
		ck_assert_int_eq(pushreceipt_decode(out.data, out.len, &dec),
				 BS_OK);
		ck_assert_int_eq(pushreceipt_verify(&dec, pk), BS_OK);
		ck_assert_int_eq(pushreceipt_verify(&dec, use_b ? pk_a : pk_b),
				 BS_ESIGNATURE);
		ck_assert_ptr_eq(dec.signed_bytes, out.data);
		ck_assert_uint_eq(dec.signed_len, out.len - SIGN_BYTES);
		ck_assert_str_eq(dec.checkpoint.origin, pr.checkpoint.origin);
		ck_assert_uint_eq(dec.checkpoint.size, pr.checkpoint.size);
		ck_assert_uint_eq(dec.checkpoint.time_ms, pr.checkpoint.time_ms);
		ck_assert_mem_eq(dec.checkpoint.sig, pr.checkpoint.sig,
				 SIGN_BYTES);
		ck_assert_mem_eq(dec.ids_hash, pr.ids_hash, HASH_BYTES);
		ck_assert_uint_eq(dec.count, pr.count);
		for (j = 0; j < pr.count; j++) {
			ck_assert_int_eq(dec.items[j].status, pr.items[j].status);
			ck_assert_int_eq(dec.items[j].logged,
					 pr.items[j].logged ? 1 : 0);
			ck_assert_uint_eq(dec.items[j].index, pr.items[j].index);
			ck_assert_str_eq(dec.items[j].reason, pr.items[j].reason);
		}
		/* Canonical: signing the decoded value gives the same bytes. */
		buf_reset(&again);
		ck_assert_int_eq(pushreceipt_sign(&dec, sk, &again), BS_OK);
		ck_assert_uint_eq(again.len, out.len);
		ck_assert_mem_eq(again.data, out.data, out.len);
		ck_assert_mem_eq(dec.sig, out.data + out.len - SIGN_BYTES,
				 SIGN_BYTES);
		pushreceipt_release(&dec);
		free(pr.items);
	}
	buf_release(&out);
	buf_release(&again);
}
END_TEST

/* Appends after what the buffer held, and a refused set not logged does
 * not carry the index it was given. */
START_TEST(sign_appends)
{
	uint8_t cp[CHECKPOINT_SIGNED_MAX], want[1024];
	struct pushreceipt pr;
	struct pushreceipt_item items[2];
	struct t_item t[2] = {{0, 999, NULL, 0}, {3, 0, "no", 2}};
	struct buf out;
	size_t cp_len, n;

	keys_init();
	memset(&pr, 0, sizeof pr);
	cp_len = test_checkpoint(sk_a, 1000, cp, &pr.checkpoint);
	memset(items, 0, sizeof items);
	items[0].status = VERDICT_ACCEPTED;
	items[0].logged = 1;
	items[0].index = 999;
	items[1].status = VERDICT_REFUSED;
	items[1].index = 5000; /* not logged: ignored */
	strcpy(items[1].reason, "no");
	pr.items = items;
	pr.count = 2;
	memcpy(pr.ids_hash, hash_x, HASH_BYTES);
	n = t_build(want, cp, cp_len, t, 2, sk_a);
	buf_init(&out, 4096);
	buf_append(&out, "prefix", 6);
	ck_assert_int_eq(pushreceipt_sign(&pr, sk_a, &out), BS_OK);
	ck_assert_uint_eq(out.len, 6 + n);
	ck_assert_mem_eq(out.data, "prefix", 6);
	ck_assert_mem_eq(out.data + 6, want, n);
	/* pr->sig is not touched. */
	ck_assert_mem_eq(pr.sig, (uint8_t[SIGN_BYTES]){0}, SIGN_BYTES);
	buf_release(&out);
}
END_TEST

/* ---- malformed input ---- */

static size_t kat_encoded(const char *name, uint8_t *out)
{
	return kat_hex(VECTORS, name, "encoded", out, KAT_MAX);
}

/* The ids_hash of a vector (a static copy). */
static const uint8_t *kat_hex_ids_hash(const char *name)
{
	static uint8_t h[HASH_BYTES];

	ck_assert_uint_eq(kat_hex(VECTORS, name, "ids_hash", h, HASH_BYTES),
			  HASH_BYTES);
	return h;
}

START_TEST(truncated_at_every_offset)
{
	char names[8][KAT_NAME_MAX];
	size_t count = kat_all(names), v, cut;
	static uint8_t enc[KAT_MAX];

	keys_init();
	for (v = 0; v < count; v++) {
		size_t len = kat_encoded(names[v], enc);

		ck_assert_int_eq(decode_copy(enc, len), BS_OK);
		for (cut = 0; cut < len; cut++)
			ck_assert_msg(decode_copy(enc, cut) == BS_ETRUNCATED,
				      "%s cut at %zu: %s", names[v], cut,
				      bs_status_str(decode_copy(enc, cut)));
	}
}
END_TEST

START_TEST(trailing_bytes)
{
	char names[8][KAT_NAME_MAX];
	size_t count = kat_all(names), v;
	static uint8_t enc[KAT_MAX + 2];

	keys_init();
	for (v = 0; v < count; v++) {
		size_t len = kat_encoded(names[v], enc);

		enc[len] = 0;
		enc[len + 1] = 0xff;
		ck_assert_int_eq(decode_copy(enc, len + 1), BS_ETRAILING);
		ck_assert_int_eq(decode_copy(enc, len + 2), BS_ETRAILING);
	}
}
END_TEST

START_TEST(magic_and_version)
{
	static uint8_t enc[KAT_MAX];
	size_t len;
	int i;

	keys_init();
	len = kat_encoded("pr-single", enc);
	for (i = 0; i < 4; i++) {
		enc[i] ^= 0x20;
		ck_assert_int_eq(decode_copy(enc, len), BS_EMAGIC);
		enc[i] ^= 0x20;
	}
	/* a receipt or a checkpoint is not a push receipt */
	memcpy(enc, "BSRC", 4);
	ck_assert_int_eq(decode_copy(enc, len), BS_EMAGIC);
	memcpy(enc, "BSPR", 4);
	enc[4] = 0;
	ck_assert_int_eq(decode_copy(enc, len), BS_EVERSION);
	enc[4] = 2;
	ck_assert_int_eq(decode_copy(enc, len), BS_EVERSION);
	enc[4] = 1;
	ck_assert_int_eq(decode_copy(enc, len), BS_OK);
	/* magic before version, even when cut short after the magic */
	ck_assert_int_eq(decode_copy((const uint8_t *)"BSPX", 4), BS_EMAGIC);
	ck_assert_int_eq(decode_copy((const uint8_t *)"BSPR\x02", 5),
			 BS_EVERSION);
}
END_TEST

static const struct t_item one_ok = {0, 0, NULL, 0};

/* Head, ids hash, one accepted item, signature, around the blob bytes. */
static size_t with_blob(uint8_t *out, const uint8_t *blob, size_t blen,
			uint64_t declared)
{
	struct w w = {out, 0};

	w_bytes(&w, "BSPR\x01", 5);
	w_varint(&w, declared);
	w_bytes(&w, blob, blen);
	w_varint(&w, 1);
	w_bytes(&w, hash_x, HASH_BYTES);
	w_item(&w, &one_ok);
	memset(out + w.n, 0, SIGN_BYTES);
	return w.n + SIGN_BYTES;
}

START_TEST(checkpoint_blob)
{
	uint8_t cp[CHECKPOINT_SIGNED_MAX + 8], enc[1024];
	struct checkpoint c;
	size_t cp_len, n;
	struct w w;

	keys_init();
	cp_len = test_checkpoint(sk_a, 10, cp, &c);
	n = with_blob(enc, cp, cp_len, cp_len);
	ck_assert_int_eq(decode_copy(enc, n), BS_OK);

	/* longer blob than the checkpoint: the checkpoint has trailing bytes */
	cp[cp_len] = 0;
	n = with_blob(enc, cp, cp_len + 1, cp_len + 1);
	ck_assert_int_eq(decode_copy(enc, n), BS_ETRAILING);
	/* shorter: the checkpoint is cut */
	n = with_blob(enc, cp, cp_len - 1, cp_len - 1);
	ck_assert_int_eq(decode_copy(enc, n), BS_ETRUNCATED);
	n = with_blob(enc, cp, 0, 0);
	ck_assert_int_eq(decode_copy(enc, n), BS_ETRUNCATED);

	/* the blob's limit, even with no bytes following */
	memset(enc, 0, sizeof enc);
	w.p = enc;
	w.n = 0;
	w_bytes(&w, "BSPR\x01", 5);
	w_varint(&w, CHECKPOINT_SIGNED_MAX + 1);
	ck_assert_int_eq(decode_copy(enc, w.n), BS_ELIMIT);
	w_bytes(&w, cp, cp_len);
	ck_assert_int_eq(decode_copy(enc, w.n), BS_ELIMIT);
	/* at the limit it is the checkpoint that is judged */
	enc[5] = CHECKPOINT_SIGNED_MAX & 0x7f;
	enc[5] |= 0x80;
	enc[6] = CHECKPOINT_SIGNED_MAX >> 7;
	ck_assert_int_eq(decode_copy(enc, 7 + CHECKPOINT_SIGNED_MAX),
			 BS_ETRAILING);
	/* overlong length */
	memcpy(enc, "BSPR\x01\x81\x00", 7);
	ck_assert_int_eq(decode_copy(enc, 7), BS_EOVERLONG);
	/* the checkpoint's own failures come out as they are */
	memcpy(cp, "BSCX", 4);
	n = with_blob(enc, cp, cp_len, cp_len);
	ck_assert_int_eq(decode_copy(enc, n), BS_EMAGIC);
	memcpy(cp, "BSCP", 4);
	cp[4] = 9;
	n = with_blob(enc, cp, cp_len, cp_len);
	ck_assert_int_eq(decode_copy(enc, n), BS_EVERSION);
	cp[4] = 1;
	cp[6] = 0x7f; /* a control byte in the origin */
	n = with_blob(enc, cp, cp_len, cp_len);
	ck_assert_int_eq(decode_copy(enc, n), BS_EINVALID);
}
END_TEST

START_TEST(count_rules)
{
	uint8_t cp[CHECKPOINT_SIGNED_MAX], *enc;
	struct t_item items[3] = {{0, 1, NULL, 0}, {9, 0, NULL, 0},
				  {0, 2, NULL, 0}};
	struct checkpoint c;
	size_t cp_len, n, off;
	struct w w;
	uint64_t bad[] = {0, PUSHRECEIPT_MAX_SETS + 1, 100000, UINT64_MAX};
	size_t i;

	keys_init();
	enc = malloc(PUSHRECEIPT_SIGNED_MAX + 64);
	ck_assert_ptr_nonnull(enc);
	cp_len = test_checkpoint(sk_a, 10, cp, &c);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* checked at once: with or without bytes after it */
		w.p = enc;
		w.n = 0;
		w_head(&w, cp, cp_len, bad[i]);
		ck_assert_int_eq(decode_copy(enc, w.n), BS_EINVALID);
		memset(enc + w.n, 0, 4096);
		ck_assert_int_eq(decode_copy(enc, w.n + 4096), BS_EINVALID);
	}
	/* overlong count */
	w.p = enc;
	w.n = 0;
	w_head(&w, cp, cp_len, 0);
	w.n--;
	w_u8(&w, 0x81);
	w_u8(&w, 0x00);
	ck_assert_int_eq(decode_copy(enc, w.n), BS_EOVERLONG);

	/* count more than the bytes after it: BS_ETRUNCATED at once, before
	 * the bad code of item 1 would be reached */
	w.p = enc;
	w.n = 0;
	w_head(&w, cp, cp_len, 200);
	w_bytes(&w, hash_x, HASH_BYTES);
	w_item(&w, &items[0]);
	w_item(&w, &items[1]);
	memset(enc + w.n, 0, SIGN_BYTES);
	n = w.n + SIGN_BYTES; /* 32 + 2 + 1 + 64 = 99 bytes after the count */
	off = 5 + wire_varint_size(cp_len) + cp_len;
	ck_assert_uint_eq(enc[off], (200 & 0x7f) | 0x80);
	ck_assert_int_eq(decode_copy(enc, n), BS_ETRUNCATED);
	/* count 99 (one byte) fits the 99 bytes after it: item 1's code is
	 * judged; 100 does not */
	memmove(enc + off + 1, enc + off + 2, n - off - 2);
	n--;
	enc[off] = 99;
	ck_assert_int_eq(decode_copy(enc, n), BS_EINVALID);
	enc[off] = 100;
	ck_assert_int_eq(decode_copy(enc, n), BS_ETRUNCATED);
	/* the maximum itself is fine: 1000 accepted items */
	{
		struct t_item many[PUSHRECEIPT_MAX_SETS];

		for (i = 0; i < PUSHRECEIPT_MAX_SETS; i++) {
			many[i].code = (int)(i % 2);
			many[i].index = i % 10;
			many[i].reason = NULL;
			many[i].rlen = 0;
		}
		n = t_build(enc, cp, cp_len, many, PUSHRECEIPT_MAX_SETS, sk_a);
		ck_assert_int_eq(decode_copy(enc, n), BS_OK);
		ck_assert_int_eq(decode_verify(enc, n, pk_a), BS_OK);
	}
	free(enc);
}
END_TEST

START_TEST(item_rules)
{
	uint8_t cp[CHECKPOINT_SIGNED_MAX], enc[2048];
	char reason[VERDICT_REASON_MAX + 2];
	struct checkpoint c;
	size_t cp_len, n;
	int code;

	keys_init();
	cp_len = test_checkpoint(sk_a, 1000, cp, &c);
	memset(reason, 'r', sizeof reason);

	/* codes */
	for (code = 0; code < 256; code++) {
		struct t_item it[2] = {{code, 999, reason, 1}, {0, 0, NULL, 0}};

		n = t_build(enc, cp, cp_len, it, 2, sk_a);
		ck_assert_int_eq(decode_copy(enc, n),
				 code <= 3 ? BS_OK : BS_EINVALID);
		if (code <= 3)
			ck_assert_int_eq(decode_verify(enc, n, pk_a), BS_OK);
	}
	/* logged indices inside the tree, for each code that has one */
	for (code = 0; code <= 2; code++) {
		struct t_item it = {code, 999, reason, 5};

		n = t_build(enc, cp, cp_len, &it, 1, sk_a);
		ck_assert_int_eq(decode_copy(enc, n), BS_OK);
		it.index = 1000;
		n = t_build(enc, cp, cp_len, &it, 1, sk_a);
		ck_assert_int_eq(decode_copy(enc, n), BS_EINVALID);
		it.index = UINT64_MAX;
		n = t_build(enc, cp, cp_len, &it, 1, sk_a);
		ck_assert_int_eq(decode_copy(enc, n), BS_EINVALID);
		/* overlong index: 5 as 85 00 */
		{
			struct w w = {enc, 0};

			w_head(&w, cp, cp_len, 1);
			w_bytes(&w, hash_x, HASH_BYTES);
			w_u8(&w, (uint8_t)code);
			w_bytes(&w, "\x85\x00", 2);
			if (code == 2)
				w_blob(&w, reason, 5);
			memset(enc + w.n, 0, SIGN_BYTES);
			ck_assert_int_eq(decode_copy(enc, w.n + SIGN_BYTES),
					 BS_EOVERLONG);
		}
	}
	/* reasons, for both codes that carry one */
	for (code = 2; code <= 3; code++) {
		struct t_item it = {code, 7, reason, 0};
		static const uint8_t badc[] = {0x00, 0x01, 0x0a, 0x1f, 0x7f};
		static const uint8_t okc[] = {0x20, 0x7e, 0x80, 0xc3, 0xff};
		size_t i;

		n = t_build(enc, cp, cp_len, &it, 1, sk_a);
		ck_assert_int_eq(decode_copy(enc, n), BS_EINVALID);
		it.rlen = VERDICT_REASON_MAX;
		n = t_build(enc, cp, cp_len, &it, 1, sk_a);
		ck_assert_int_eq(decode_copy(enc, n), BS_OK);
		it.rlen = VERDICT_REASON_MAX + 1;
		n = t_build(enc, cp, cp_len, &it, 1, sk_a);
		ck_assert_int_eq(decode_copy(enc, n), BS_ELIMIT);
		it.rlen = 3;
		for (i = 0; i < sizeof badc; i++) {
			reason[1] = (char)badc[i];
			n = t_build(enc, cp, cp_len, &it, 1, sk_a);
			ck_assert_int_eq(decode_copy(enc, n), BS_EINVALID);
			reason[1] = (char)okc[i];
			n = t_build(enc, cp, cp_len, &it, 1, sk_a);
			ck_assert_int_eq(decode_copy(enc, n), BS_OK);
		}
		reason[1] = 'r';
	}
	/* the limit is checked before the bytes are there */
	{
		struct w w = {enc, 0};

		w_head(&w, cp, cp_len, 1);
		w_bytes(&w, hash_x, HASH_BYTES);
		w_u8(&w, 3);
		w_varint(&w, VERDICT_REASON_MAX + 1);
		ck_assert_int_eq(decode_copy(enc, w.n), BS_ELIMIT);
	}
	/* an index is checked before the reason that follows it */
	{
		struct t_item it = {2, 1000, reason, 0};

		n = t_build(enc, cp, cp_len, &it, 1, sk_a);
		ck_assert_int_eq(decode_copy(enc, n), BS_EINVALID);
	}
}
END_TEST

/* pushreceipt_sign gives `want`; a refusal leaves the buffer untouched, a
 * success appends a receipt that decodes to the same items. */
static void sign_refused(const struct pushreceipt *pr, enum bs_status want)
{
	struct pushreceipt dec;
	struct buf out;
	size_t i;

	buf_init(&out, PUSHRECEIPT_SIGNED_MAX);
	buf_append(&out, "keep", 4);
	ck_assert_int_eq(pushreceipt_sign(pr, sk_a, &out), want);
	ck_assert_int_eq(out.status, BS_OK);
	ck_assert_mem_eq(out.data, "keep", 4);
	if (want) {
		ck_assert_uint_eq(out.len, 4);
	} else {
		ck_assert_int_eq(pushreceipt_decode(out.data + 4, out.len - 4,
						    &dec),
				 BS_OK);
		ck_assert_int_eq(pushreceipt_verify(&dec, pk_a), BS_OK);
		ck_assert_uint_eq(dec.count, pr->count);
		for (i = 0; i < pr->count; i++) {
			ck_assert_int_eq(dec.items[i].status,
					 pr->items[i].status);
			ck_assert_int_eq(dec.items[i].logged,
					 pr->items[i].logged);
			if (pr->items[i].logged)
				ck_assert_uint_eq(dec.items[i].index,
						  pr->items[i].index);
			else
				ck_assert_uint_eq(dec.items[i].index, 0);
			ck_assert_str_eq(dec.items[i].reason,
					 pr->items[i].reason);
		}
		pushreceipt_release(&dec);
	}
	buf_release(&out);
}

START_TEST(encoder_rules)
{
	uint8_t cp[CHECKPOINT_SIGNED_MAX];
	struct pushreceipt pr;
	struct pushreceipt_item *items;
	struct buf out;
	size_t i;

	keys_init();
	items = calloc(PUSHRECEIPT_MAX_SETS + 1, sizeof *items);
	ck_assert_ptr_nonnull(items);
	memset(&pr, 0, sizeof pr);
	test_checkpoint(sk_a, 1000, cp, &pr.checkpoint);
	for (i = 0; i <= PUSHRECEIPT_MAX_SETS; i++) {
		items[i].status = VERDICT_ACCEPTED;
		items[i].logged = 1;
		items[i].index = i % 1000;
	}
	pr.items = items;

	pr.count = PUSHRECEIPT_MAX_SETS;
	sign_refused(&pr, BS_OK);
	pr.count = PUSHRECEIPT_MAX_SETS + 1;
	sign_refused(&pr, BS_EINVALID);
	pr.count = 0;
	sign_refused(&pr, BS_EINVALID);
	pr.count = 2;
	pr.items = NULL;
	sign_refused(&pr, BS_EINVALID);
	pr.items = items;

	/* an unsigned checkpoint */
	pr.checkpoint.raw_len = 0;
	sign_refused(&pr, BS_ESTATE);
	pr.checkpoint.raw_len = CHECKPOINT_SIGNED_MAX;
	sign_refused(&pr, BS_ESTATE);
	test_checkpoint(sk_a, 1000, cp, &pr.checkpoint);
	sign_refused(&pr, BS_OK);

	/* accepted and duplicate: logged, no reason */
	items[1].status = VERDICT_DUPLICATE;
	sign_refused(&pr, BS_OK);
	for (i = 0; i < 2; i++) {
		items[1].status = i ? VERDICT_DUPLICATE : VERDICT_ACCEPTED;
		items[1].logged = 0;
		sign_refused(&pr, BS_EINVALID);
		items[1].logged = 1;
		strcpy(items[1].reason, "x");
		sign_refused(&pr, BS_EINVALID);
		items[1].reason[0] = '\0';
		items[1].index = 1000;
		sign_refused(&pr, BS_EINVALID);
		items[1].index = 999;
		sign_refused(&pr, BS_OK);
	}
	/* refused: a printable reason of 1..256 bytes */
	items[1].status = VERDICT_REFUSED;
	sign_refused(&pr, BS_EINVALID);
	memset(items[1].reason, '~', VERDICT_REASON_MAX);
	items[1].reason[VERDICT_REASON_MAX] = '\0';
	sign_refused(&pr, BS_OK);
	items[1].reason[VERDICT_REASON_MAX] = '~'; /* 257 bytes, no NUL */
	sign_refused(&pr, BS_EINVALID);
	strcpy(items[1].reason, "bad\x01");
	sign_refused(&pr, BS_EINVALID);
	strcpy(items[1].reason, "bad\x7f");
	sign_refused(&pr, BS_EINVALID);
	strcpy(items[1].reason, "caf\xc3\xa9");
	sign_refused(&pr, BS_OK);
	items[1].index = 1000; /* logged refusal outside the tree */
	sign_refused(&pr, BS_EINVALID);
	items[1].logged = 0; /* not logged: the index is not written */
	sign_refused(&pr, BS_OK);
	items[1].status = (enum verdict_status)3;
	sign_refused(&pr, BS_EINVALID);
	items[1].status = VERDICT_ACCEPTED;
	items[1].logged = 1;
	items[1].index = 1;
	items[1].reason[0] = '\0';
	sign_refused(&pr, BS_OK);

	pr.count = PUSHRECEIPT_MAX_SETS;
	sign_refused(&pr, BS_OK);

	/* a buffer too small: BS_ELIMIT, and the buffer as it was */
	buf_init(&out, 300);
	buf_append(&out, "keep", 4);
	ck_assert_int_eq(pushreceipt_sign(&pr, sk_a, &out), BS_ELIMIT);
	ck_assert_uint_eq(out.len, 4);
	ck_assert_int_eq(out.status, BS_OK);
	ck_assert_mem_eq(out.data, "keep", 4);
	/* a buffer already in error is left alone */
	out.status = BS_ENOMEM;
	ck_assert_int_eq(pushreceipt_sign(&pr, sk_a, &out), BS_ENOMEM);
	ck_assert_uint_eq(out.len, 4);
	buf_release(&out);
	free(items);
}
END_TEST

/* ---- signatures ---- */

START_TEST(any_flip_is_caught)
{
	char names[8][KAT_NAME_MAX];
	size_t count = kat_all(names), v, bit;
	static uint8_t enc[KAT_MAX];

	keys_init();
	for (v = 0; v < count; v++) {
		size_t len = kat_encoded(names[v], enc);
		uint8_t pk[32];

		kat_hex(VECTORS, names[v], "public", pk, 32);
		ck_assert_int_eq(decode_verify(enc, len, pk), BS_OK);
		for (bit = 0; bit < len * 8; bit++) {
			enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			ck_assert_msg(decode_verify(enc, len, pk) != BS_OK,
				      "%s: bit %zu flipped still verifies",
				      names[v], bit);
			enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
	}
}
END_TEST

START_TEST(wrong_keys_and_labels)
{
	uint8_t cp_a[CHECKPOINT_SIGNED_MAX], cp_b[CHECKPOINT_SIGNED_MAX];
	uint8_t enc[1024];
	struct checkpoint c;
	struct t_item it = {0, 3, NULL, 0};
	struct pushreceipt pr;
	size_t la, lb, n;
	enum sign_kind kind;

	keys_init();
	ck_assert_str_eq(sign_label(SIGN_PUSHRECEIPT), LABEL);
	for (kind = SIGN_CHANGESET; kind < SIGN_PUSHRECEIPT; kind++)
		ck_assert_str_ne(sign_label(kind), LABEL);
	la = test_checkpoint(sk_a, 10, cp_a, &c);
	lb = test_checkpoint(sk_b, 10, cp_b, &c);

	n = t_build(enc, cp_a, la, &it, 1, sk_a);
	ck_assert_int_eq(decode_verify(enc, n, pk_a), BS_OK);
	ck_assert_int_eq(decode_verify(enc, n, pk_b), BS_ESIGNATURE);
	/* a checkpoint by another key: fails under either key */
	n = t_build(enc, cp_b, lb, &it, 1, sk_a);
	ck_assert_int_eq(decode_verify(enc, n, pk_a), BS_ESIGNATURE);
	ck_assert_int_eq(decode_verify(enc, n, pk_b), BS_ESIGNATURE);
	n = t_build(enc, cp_a, la, &it, 1, sk_b);
	ck_assert_int_eq(decode_verify(enc, n, pk_a), BS_ESIGNATURE);
	ck_assert_int_eq(decode_verify(enc, n, pk_b), BS_ESIGNATURE);
	/* the same bytes signed under every other label */
	for (kind = SIGN_CHANGESET; kind < SIGN_PUSHRECEIPT; kind++) {
		n = t_build(enc, cp_a, la, &it, 1, NULL) - SIGN_BYTES;
		ck_assert_int_eq(sign_detached(kind, enc, n, sk_a, enc + n),
				 BS_OK);
		ck_assert_int_eq(decode_verify(enc, n + SIGN_BYTES, pk_a),
				 BS_ESIGNATURE);
	}
	/* nothing decoded: nothing to verify */
	memset(&pr, 0, sizeof pr);
	ck_assert_int_eq(pushreceipt_verify(&pr, pk_a), BS_ESTATE);
	ck_assert_int_eq(checkpoint_decode(cp_a, la, &pr.checkpoint), BS_OK);
	ck_assert_int_eq(pushreceipt_verify(&pr, pk_a), BS_ESTATE);
}
END_TEST

/* ---- allocation ---- */

START_TEST(allocation)
{
	uint8_t cp[CHECKPOINT_SIGNED_MAX], enc[2048];
	struct t_item items[3] = {{0, 1, NULL, 0}, {2, 2, "why", 3},
				  {3, 0, "no", 2}};
	struct pushreceipt pr;
	struct checkpoint c;
	struct buf out;
	size_t cp_len, n;
	struct w w;
	long k;

	keys_init();
	cp_len = test_checkpoint(sk_a, 10, cp, &c);

	/* the bounds errors come before any allocation */
	w.p = enc;
	w.n = 0;
	w_head(&w, cp, cp_len, PUSHRECEIPT_MAX_SETS + 1);
	memset(enc + w.n, 0, 1200);
	mem_fail_after(0);
	ck_assert_int_eq(decode_copy(enc, w.n + 1200), BS_EINVALID);
	mem_fail_reset();
	w.n = 0;
	w_head(&w, cp, cp_len, 1000);
	memset(enc + w.n, 0, 999);
	mem_fail_after(0);
	ck_assert_int_eq(decode_copy(enc, w.n + 999), BS_ETRUNCATED);
	mem_fail_reset();

	/* a valid input: one allocation, which may fail cleanly */
	n = t_build(enc, cp, cp_len, items, 3, sk_a);
	mem_fail_after(0);
	ck_assert_int_eq(pushreceipt_decode(enc, n, &pr), BS_ENOMEM);
	mem_fail_reset();
	ck_assert_ptr_null(pr.items);
	ck_assert_uint_eq(pr.count, 0);
	pushreceipt_release(&pr);
	mem_fail_after(1);
	ck_assert_int_eq(pushreceipt_decode(enc, n, &pr), BS_OK);
	/* verification builds its signing input */
	mem_fail_after(0);
	ck_assert_int_eq(pushreceipt_verify(&pr, pk_a), BS_ENOMEM);
	mem_fail_reset();
	ck_assert_int_eq(pushreceipt_verify(&pr, pk_a), BS_OK);

	/* signing under every failing allocation leaves the buffer as it
	 * was, then succeeds with the same bytes */
	buf_init(&out, PUSHRECEIPT_SIGNED_MAX);
	for (k = 0;; k++) {
		enum bs_status rc;

		buf_release(&out);
		buf_append(&out, "keep", 4);
		mem_fail_after(k);
		rc = pushreceipt_sign(&pr, sk_a, &out);
		mem_fail_reset();
		if (rc == BS_OK)
			break;
		ck_assert_int_eq(rc, BS_ENOMEM);
		ck_assert_uint_eq(out.len, 4);
		ck_assert_int_eq(out.status, BS_OK);
		ck_assert_mem_eq(out.data, "keep", 4);
		ck_assert_int_lt(k, 20);
	}
	ck_assert_int_gt(k, 0);
	ck_assert_uint_eq(out.len, 4 + n);
	ck_assert_mem_eq(out.data + 4, enc, n);
	buf_release(&out);

	/* release is safe twice and on a zeroed struct */
	pushreceipt_release(&pr);
	ck_assert_ptr_null(pr.items);
	pushreceipt_release(&pr);
	memset(&pr, 0, sizeof pr);
	pushreceipt_release(&pr);
}
END_TEST

/* A failed decode over a previously decoded struct leaves it zeroed (the
 * caller's old items are its own to release first). */
START_TEST(decode_zeroes_out)
{
	uint8_t cp[CHECKPOINT_SIGNED_MAX], enc[1024];
	struct t_item it = {0, 1, NULL, 0};
	struct pushreceipt pr;
	struct checkpoint c;
	size_t cp_len, n;

	keys_init();
	cp_len = test_checkpoint(sk_a, 10, cp, &c);
	n = t_build(enc, cp, cp_len, &it, 1, sk_a);
	memset(&pr, 0xa5, sizeof pr);
	ck_assert_int_eq(pushreceipt_decode(enc, n - 1, &pr), BS_ETRUNCATED);
	ck_assert_ptr_null(pr.items);
	ck_assert_uint_eq(pr.count, 0);
	ck_assert_ptr_null(pr.signed_bytes);
	ck_assert_uint_eq(pr.checkpoint.raw_len, 0);
	memset(&pr, 0xa5, sizeof pr);
	ck_assert_int_eq(pushreceipt_decode(enc, n, &pr), BS_OK);
	ck_assert_uint_eq(pr.count, 1);
	ck_assert_int_eq(pr.items[0].logged, 1);
	ck_assert_str_eq(pr.items[0].reason, "");
	pushreceipt_release(&pr);
}
END_TEST

/* ---- the wire form ---- */

/* pack gives the file's wire form of each vector, unpack with the ids'
 * hash gives back its encoding, which decodes and verifies; with another
 * hash the rebuilt receipt does not verify. */
START_TEST(wire_form_kat)
{
	char names[8][KAT_NAME_MAX];
	size_t count = kat_all(names), v;
	static uint8_t enc[KAT_MAX], wire[KAT_MAX];

	keys_init();
	for (v = 0; v < count; v++) {
		struct kat_pr k;
		struct buf w, back;
		struct pushreceipt pr;
		size_t elen = kat_encoded(names[v], enc);
		size_t wlen = kat_hex(VECTORS, names[v], "wire", wire, KAT_MAX);
		uint8_t h[HASH_BYTES];

		kat_pr_load(names[v], &k);
		ck_assert_uint_eq(wlen + HASH_BYTES, elen);
		buf_init(&w, PUSHRECEIPT_WIRE_MAX);
		buf_init(&back, PUSHRECEIPT_SIGNED_MAX);
		ck_assert_int_eq(pushreceipt_wire_pack(enc, elen, &w), BS_OK);
		ck_assert_uint_eq(w.len, wlen);
		ck_assert_mem_eq(w.data, wire, wlen);
		pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])k.ids,
				     k.count, h);
		ck_assert_int_eq(pushreceipt_wire_unpack(wire, wlen, h, &back),
				 BS_OK);
		ck_assert_uint_eq(back.len, elen);
		ck_assert_mem_eq(back.data, enc, elen);
		ck_assert_int_eq(pushreceipt_decode(back.data, back.len, &pr),
				 BS_OK);
		ck_assert_int_eq(pushreceipt_verify(&pr, k.public), BS_OK);
		pushreceipt_release(&pr);
		/* the hash of other ids: decodes, does not verify */
		h[HASH_BYTES - 1] ^= 1;
		buf_reset(&back);
		ck_assert_int_eq(pushreceipt_wire_unpack(wire, wlen, h, &back),
				 BS_OK);
		ck_assert_int_eq(pushreceipt_decode(back.data, back.len, &pr),
				 BS_OK);
		ck_assert_int_eq(pushreceipt_verify(&pr, k.public),
				 BS_ESIGNATURE);
		pushreceipt_release(&pr);
		buf_release(&w);
		buf_release(&back);
		free(k.items);
	}
}
END_TEST

/* Both directions refuse what they cannot find the hash's place in, and
 * then leave the output as it was. */
START_TEST(wire_form_malformed)
{
	static uint8_t enc[KAT_MAX], wire[KAT_MAX];
	uint8_t h[HASH_BYTES] = {0};
	size_t elen = kat_encoded("pr-single", enc), wlen, cut, off;
	struct buf out;

	wlen = kat_hex(VECTORS, "pr-single", "wire", wire, KAT_MAX);
	/* the hash sits after magic, version, blob and a one-byte count */
	off = 4 + 1 + 2 + (size_t)(enc[5] & 0x7f) + ((size_t)enc[6] << 7) + 1;
	ck_assert_mem_eq(enc + off, kat_hex_ids_hash("pr-single"), HASH_BYTES);
	buf_init(&out, PUSHRECEIPT_SIGNED_MAX);
	buf_append(&out, "x", 1);
	for (cut = 0; cut < off; cut++) {
		ck_assert_int_eq(pushreceipt_wire_pack(enc, cut, &out),
				 BS_ETRUNCATED);
		ck_assert_int_eq(pushreceipt_wire_unpack(wire, cut, h, &out),
				 BS_ETRUNCATED);
	}
	for (; cut < off + HASH_BYTES; cut++)
		ck_assert_int_eq(pushreceipt_wire_pack(enc, cut, &out),
				 BS_ETRUNCATED);
	enc[0] = 'X';
	wire[4] = 2;
	ck_assert_int_eq(pushreceipt_wire_pack(enc, elen, &out), BS_EMAGIC);
	ck_assert_int_eq(pushreceipt_wire_unpack(wire, wlen, h, &out),
			 BS_EVERSION);
	ck_assert_int_eq(pushreceipt_wire_unpack(wire, PUSHRECEIPT_WIRE_MAX + 1,
						 h, &out),
			 BS_ELIMIT);
	ck_assert_uint_eq(out.len, 1);
	ck_assert_int_eq(out.status, BS_OK);
	buf_release(&out);
}
END_TEST

static Suite *pushreceipt_suite(void)
{
	Suite *s = suite_create("pushreceipt");
	TCase *kat = tcase_create("kat");
	TCase *rt = tcase_create("roundtrip");
	TCase *bad = tcase_create("malformed");
	TCase *sig = tcase_create("signature");
	TCase *mem = tcase_create("memory");

	tcase_add_test(kat, kat_vectors);
	tcase_add_test(kat, ids_hash);
	tcase_add_test(kat, wire_form_kat);
	tcase_add_test(bad, wire_form_malformed);
	tcase_add_test(rt, roundtrip_random);
	tcase_add_test(rt, sign_appends);
	tcase_add_test(bad, truncated_at_every_offset);
	tcase_add_test(bad, trailing_bytes);
	tcase_add_test(bad, magic_and_version);
	tcase_add_test(bad, checkpoint_blob);
	tcase_add_test(bad, count_rules);
	tcase_add_test(bad, item_rules);
	tcase_add_test(bad, encoder_rules);
	tcase_add_test(sig, any_flip_is_caught);
	tcase_add_test(sig, wrong_keys_and_labels);
	tcase_add_test(mem, allocation);
	tcase_add_test(mem, decode_zeroes_out);
	suite_add_tcase(s, kat);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, sig);
	suite_add_tcase(s, mem);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pushreceipt_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
