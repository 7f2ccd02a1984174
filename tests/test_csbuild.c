/* test_csbuild.c - Check suite for shared/csbuild and the capture path that
 * uses it: the bytes of one INSERT against known answers, then twin
 * replicas doing the same writes, one whose capture takes records_insert's
 * rows straight into changeset bytes and one whose session records all,
 * whose change sets must hold the same records (sorted: the session writes
 * hash order), the same table headers byte for byte, and leave the same
 * clocks and the same data on a third replica that applies them. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "capture.h"
#include "changeset.h"
#include "csbody.h"
#include "csbuild.h"
#include "digest.h"
#include "mem.h"
#include "merge.h"
#include "records.h"
#include "replica.h"
#include "sign.h"

#define MAX_SETS 64
#define MAX_RECS 4096

/* ---- csbuild alone ---- */

START_TEST(insert_known_bytes)
{
	/* awards: id, branch_id, member_id, title, year, level */
	static const uint8_t want[] = {
		'T', 6, 1, 2, 0, 0, 0, 0, 'a', 'w', 'a', 'r', 'd', 's', 0,
		0x12, 0, 3, 1, 'a', 3, 2, 'b', '1', 5, 3, 1, 't',
		1, 0, 0, 0, 0, 0, 0, 0x07, 0xd0, 5,
		0x12, 0, 3, 1, 'c', 3, 2, 'b', '1', 5, 3, 0,
		1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 5,
	};
	const struct schema_table *t = schema_table_find("awards");
	struct schema_value v[6];
	const struct schema_value *pv[6];
	struct csbuild b;
	const uint8_t *body;
	size_t len, i, tidx;

	for (tidx = 0; schema_table_at(tidx) != t; tidx++)
		;
	memset(v, 0, sizeof v);
	for (i = 0; i < 6; i++)
		pv[i] = &v[i];
	v[0] = (struct schema_value){SCHEMA_VALUE_TEXT, 0, "a"};
	v[1] = (struct schema_value){SCHEMA_VALUE_TEXT, 0, "b1"};
	v[3] = (struct schema_value){SCHEMA_VALUE_TEXT, 0, "t"};
	v[4] = (struct schema_value){SCHEMA_VALUE_INT, 2000, NULL};
	csbuild_init(&b, 1 << 20);
	ck_assert_int_eq(csbuild_body(&b, &body, &len), BS_OK);
	ck_assert_uint_eq(len, 0);
	ck_assert(csbuild_fits(t, pv));
	ck_assert_int_eq(csbuild_insert(&b, tidx, pv), BS_OK);
	v[0].text = "c";
	v[3].text = "";
	v[4].i = -1;
	ck_assert_int_eq(csbuild_insert(&b, tidx, pv), BS_OK);
	ck_assert_int_eq(csbuild_body(&b, &body, &len), BS_OK);
	ck_assert_uint_eq(len, sizeof want);
	ck_assert_mem_eq(body, want, sizeof want);
	/* a text in an INTEGER column is SQLite's to convert */
	v[4] = (struct schema_value){SCHEMA_VALUE_TEXT, 0, "2000"};
	ck_assert(!csbuild_fits(t, pv));
	v[4] = (struct schema_value){SCHEMA_VALUE_NULL, 0, NULL};
	v[3] = (struct schema_value){SCHEMA_VALUE_INT, 5, NULL};
	ck_assert(!csbuild_fits(t, pv));
	csbuild_reset(&b);
	ck_assert_int_eq(csbuild_body(&b, &body, &len), BS_OK);
	ck_assert_uint_eq(len, 0);
	csbuild_release(&b);
}
END_TEST

/* Text lengths take SQLite varints: 1, 2 and 3 bytes here. */
START_TEST(varint_lengths)
{
	static const size_t lens[] = {127, 128, 300, 16383, 16384, 70000};
	static const uint8_t want[][3] = {
		{0x7f}, {0x81, 0x00}, {0x82, 0x2c}, {0xff, 0x7f},
		{0x81, 0x80, 0x00}, {0x84, 0xa2, 0x70},
	};
	static const size_t wlen[] = {1, 2, 2, 2, 3, 3};
	const struct schema_table *t = schema_table_find("awards");
	struct schema_value v[6];
	const struct schema_value *pv[6];
	struct csbuild b;
	const uint8_t *body;
	size_t len, i, tidx, hdr = 1 + 1 + 6 + 7, at;
	char *big = mem_alloc(70001);

	for (tidx = 0; schema_table_at(tidx) != t; tidx++)
		;
	memset(v, 0, sizeof v);
	for (i = 0; i < 6; i++)
		pv[i] = &v[i];
	v[0] = (struct schema_value){SCHEMA_VALUE_TEXT, 0, "a"};
	v[1] = (struct schema_value){SCHEMA_VALUE_TEXT, 0, "b"};
	csbuild_init(&b, 1 << 20);
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		memset(big, 'x', lens[i]);
		big[lens[i]] = '\0';
		v[3] = (struct schema_value){SCHEMA_VALUE_TEXT, 0, big};
		csbuild_reset(&b);
		ck_assert_int_eq(csbuild_insert(&b, tidx, pv), BS_OK);
		ck_assert_int_eq(csbuild_body(&b, &body, &len), BS_OK);
		/* op, indirect, id (3 bytes), branch (3), member_id NULL */
		at = hdr + 2 + 3 + 3 + 1;
		ck_assert_int_eq(body[at], 3);
		ck_assert_mem_eq(body + at + 1, want[i], wlen[i]);
		ck_assert_uint_eq(len, at + 1 + wlen[i] + lens[i] + 2);
	}
	/* over the cap: refused, and the builder is as it was */
	csbuild_release(&b);
	csbuild_init(&b, 1000);
	v[3].text = "t";
	ck_assert_int_eq(csbuild_insert(&b, tidx, pv), BS_OK);
	ck_assert_int_eq(csbuild_body(&b, &body, &len), BS_OK);
	i = len;
	memset(big, 'x', 2000);
	big[2000] = '\0';
	v[3].text = big;
	ck_assert_int_eq(csbuild_insert(&b, tidx, pv), BS_ELIMIT);
	ck_assert_int_eq(csbuild_body(&b, &body, &len), BS_OK);
	ck_assert_uint_eq(len, i);
	csbuild_release(&b);
	mem_free(big);
}
END_TEST

/* ---- twins: builder and session, the same writes ---- */

struct side {
	struct replica *r;
	struct records *rs;
	struct capture *c;
};

/* s[0] hands inserts to its capture; s[1] leaves all to the session. */
struct twin {
	struct side s[2];
	uint8_t pk[32], sk[64];
	struct capture_signer signer;
	uint64_t rng;
};

static uint64_t rnd(struct twin *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static void twin_open(struct twin *w, uint64_t seed)
{
	struct err e;
	int i;

	memset(w, 0, sizeof *w);
	err_init(&e);
	ck_assert_int_eq(sign_init(), BS_OK);
	crypto_sign_keypair(w->pk, w->sk);
	w->signer = (struct capture_signer){w->pk, w->sk, NULL,
					    1790000000000ull};
	w->rng = seed * 2654435761u + 1;
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY,
					      &w->s[i].r, &e), 0);
		ck_assert_int_eq(records_new(w->s[i].r->db, &w->s[i].rs, &e),
				 0);
	}
}

static void twin_close(struct twin *w)
{
	int i;

	for (i = 0; i < 2; i++) {
		capture_free(w->s[i].c);
		records_free(w->s[i].rs);
		replica_close(w->s[i].r);
	}
}

static void twin_begin(struct twin *w)
{
	struct err e;
	int i;

	err_init(&e);
	for (i = 0; i < 2; i++)
		ck_assert_msg(capture_begin(w->s[i].r, &w->signer, &w->s[i].c,
					    &e) == 0, "%s", e.msg);
	records_set_capture(w->s[0].rs, w->s[0].c);
}

/* capture_cut (commit: capture_commit) on both; both make a set or not. */
static int twin_cut(struct twin *w, int commit)
{
	struct err e;
	int count[2], i;

	err_init(&e);
	for (i = 0; i < 2; i++) {
		ck_assert_msg((commit ? capture_commit : capture_cut)(
				      w->s[i].c, &count[i], &e) == 0,
			      "side %d: %s", i, e.msg);
		if (commit) {
			capture_free(w->s[i].c);
			w->s[i].c = NULL;
			records_set_capture(w->s[i].rs, NULL);
		}
	}
	ck_assert_int_eq(count[0], count[1]);
	return count[0];
}

/* Inserts the row on both; both must succeed, or both fail if `fails`. */
static void twin_insert(struct twin *w, const char *id,
			const struct records_row *row, int fails)
{
	struct err e;
	int i;

	for (i = 0; i < 2; i++) {
		err_init(&e);
		if (fails)
			ck_assert_int_ne(records_insert(w->s[i].rs, id, row,
							&e), 0);
		else
			ck_assert_msg(records_insert(w->s[i].rs, id, row,
						     &e) == 0, "side %d %s: %s",
				      i, id, e.msg);
	}
}

static void twin_update(struct twin *w, const char *id, const char *branch,
			const struct records_row *row)
{
	struct err e;
	int i, found;

	err_init(&e);
	for (i = 0; i < 2; i++) {
		ck_assert_msg(records_update(w->s[i].rs, id, branch, row,
					     &found, &e) == 0, "%s", e.msg);
		ck_assert_int_eq(found, 1);
	}
}

static void twin_delete(struct twin *w, const struct schema_table *t,
			const char *id, const char *branch)
{
	struct err e;
	int i, found;

	err_init(&e);
	for (i = 0; i < 2; i++) {
		ck_assert_msg(records_delete(w->s[i].rs, t, id, branch, &found,
					     &e) == 0, "%s", e.msg);
		ck_assert_int_eq(found, 1);
	}
}

/* ---- random valid rows ---- */

static const char *const pieces[] = {
	"a", "Zz", "成员", "深圳", "张三", "😀", "\t", "\n", " x ", "é",
	"0", "-", "'", "\"", ";", "%", "_", "ß", "🇨🇳", "北京市",
};

/* A random text of up to `max` bytes (at least one piece). */
static void random_text(struct twin *w, char *out, size_t max)
{
	size_t n = 0, want = 1 + rnd(w) % (rnd(w) % 8 ? 40 : max);

	out[0] = '\0';
	while (n < want) {
		const char *p = pieces[rnd(w) % (sizeof pieces /
						 sizeof pieces[0])];
		size_t k = strlen(p);

		if (n + k >= max)
			break;
		memcpy(out + n, p, k + 1);
		n += k;
	}
	if (n == 0)
		strcpy(out, "t");
}

static void random_id(struct twin *w, char *out, size_t len)
{
	static const char abc[] = "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = abc[rnd(w) % (sizeof abc - 1)];
	out[len] = '\0';
}

static int64_t random_int(struct twin *w, const struct schema_column *c)
{
	static const int64_t picks[] = {0, 1, 2, 127, 128, 255, 65536,
					INT64_C(2147483648),
					INT64_C(9007199254740993), INT64_MAX};
	uint64_t span;

	if (c->max == INT64_MAX && c->min == 0)
		return picks[rnd(w) % (sizeof picks / sizeof picks[0])];
	span = (uint64_t)(c->max - c->min) + 1;
	return c->min + (int64_t)(rnd(w) % span);
}

/* Input text for column c that the schema accepts. */
static void random_input(struct twin *w, const struct schema_column *c,
			 char *out, size_t max)
{
	size_t n, i;

	switch (c->type) {
	case SCHEMA_DATE:
		snprintf(out, max, "%04d-%02d-%02d", 1900 + (int)(rnd(w) % 201),
			 1 + (int)(rnd(w) % 12), 1 + (int)(rnd(w) % 28));
		break;
	case SCHEMA_ENUM:
		for (n = 0; c->values[n]; n++)
			;
		if (c->aliases && rnd(w) % 3 == 0)
			snprintf(out, max, "%s", c->aliases[0].from);
		else
			snprintf(out, max, "%s", c->values[rnd(w) % n]);
		break;
	case SCHEMA_INT:
		snprintf(out, max, "%lld", (long long)random_int(w, c));
		break;
	case SCHEMA_MONEY:
		snprintf(out, max, "%llu.%02u",
			 (unsigned long long)(rnd(w) % 1000000000),
			 (unsigned)(rnd(w) % 100));
		break;
	case SCHEMA_PHONE:
		n = 5 + rnd(w) % 16;
		i = rnd(w) % 2;
		if (i)
			out[0] = '+';
		for (; n > 0; n--)
			out[i++] = (char)('0' + rnd(w) % 10);
		out[i] = '\0';
		break;
	case SCHEMA_IDNUM:
		for (i = 0; i < 15; i++)
			out[i] = (char)('0' + rnd(w) % 10);
		out[15] = '\0';
		break;
	case SCHEMA_REF:
	case SCHEMA_ID:
		random_id(w, out, 1 + rnd(w) % SCHEMA_ID_MAX);
		break;
	default:
		random_text(w, out, rnd(w) % 16 ? 200 : SCHEMA_TEXT_MAX);
		break;
	}
}

/* A random valid row of t in branch `branch` (ignored where the scope is
 * the id): each optional column given a third of the time or less. */
static void random_row(struct twin *w, const struct schema_table *t,
		       const char *branch, struct records_row *row)
{
	char *in = mem_alloc(SCHEMA_TEXT_MAX + 1);
	struct err e;
	size_t i;

	err_init(&e);
	records_row_init(row, t);
	if (!t->scope_is_id)
		ck_assert_int_eq(records_row_set(row, "branch_id", branch,
						 strlen(branch), &e), 0);
	for (i = 0; i < t->ncolumns; i++) {
		const struct schema_column *c = &t->columns[i];

		if (!c->required && rnd(w) % 3 != 0)
			continue;
		random_input(w, c, in, SCHEMA_TEXT_MAX + 1);
		ck_assert_msg(records_row_set(row, c->name, in, strlen(in),
					      &e) == 0, "%s: %s", c->name,
			      e.msg);
	}
	mem_free(in);
}

/* ---- comparing the change sets ---- */

/* One record of a body: its table, key and exact bytes. */
struct rec {
	size_t tidx;
	char key[2 * SCHEMA_ID_MAX + 2];
	const uint8_t *p;
	size_t n;
	int kind;
};

/* The table headers (by schema index) and the records of body, in body
 * order; each table's records under one header. Returns the count. */
static size_t body_recs(const uint8_t *body, size_t len, struct rec *out,
			const uint8_t **hdr, size_t *hdr_len)
{
	struct csbody_iter it;
	struct csbody_op *op = mem_alloc(sizeof *op);
	struct err e;
	size_t n = 0, t;
	int step;

	err_init(&e);
	for (t = 0; t < schema_table_count(); t++)
		hdr[t] = NULL;
	csbody_start(&it, body, len, &e);
	for (;;) {
		size_t at = it.pos, start = at;
		const struct csbody_value *k;

		step = csbody_next(&it, op);
		ck_assert_msg(step >= 0, "%s", e.msg);
		if (step == 0)
			break;
		for (t = 0; schema_table_at(t) != op->t; t++)
			;
		if (body[at] == 'T') {
			start = at + 1 + 1 + op->ncol + strlen(op->t->name) + 1;
			ck_assert_msg(hdr[t] == NULL, "table %s twice",
				      op->t->name);
			hdr[t] = body + at;
			hdr_len[t] = start - at;
		}
		ck_assert_uint_lt(n, MAX_RECS);
		out[n].tidx = t;
		k = op->kind == CSBODY_INSERT ? op->newv : op->oldv;
		ck_assert_int_eq(k[0].type, CSBODY_TEXT);
		ck_assert_int_eq(k[1].type, CSBODY_TEXT);
		snprintf(out[n].key, sizeof out[n].key, "%.*s/%.*s",
			 (int)k[0].n, (const char *)k[0].p, (int)k[1].n,
			 (const char *)k[1].p);
		out[n].p = body + start;
		out[n].n = it.pos - start;
		out[n].kind = op->kind;
		n++;
	}
	mem_free(op);
	return n;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->tidx != y->tidx)
		return x->tidx < y->tidx ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The bodies of a side's outbox, oldest first; *n gets the count. */
static void outbox_bodies(struct side *s, uint8_t **bytes, size_t *lens,
			  struct changeset *cs, size_t *n)
{
	sqlite3_stmt *st;

	*n = 0;
	ck_assert_int_eq(sqlite3_prepare_v2(s->r->db,
		"SELECT bytes FROM bs_outbox ORDER BY seq", -1, &st, NULL),
		SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		ck_assert_uint_lt(*n, MAX_SETS);
		lens[*n] = (size_t)sqlite3_column_bytes(st, 0);
		bytes[*n] = mem_alloc(lens[*n]);
		memcpy(bytes[*n], sqlite3_column_blob(st, 0), lens[*n]);
		ck_assert_int_eq(changeset_decode(bytes[*n], lens[*n],
						  &cs[*n]), BS_OK);
		ck_assert_int_eq(changeset_verify(&cs[*n]), BS_OK);
		(*n)++;
	}
	sqlite3_finalize(st);
}

/* Every row of a bookkeeping table, as bytes, for equality. */
static void dump(sqlite3 *db, const char *sql, struct buf *out)
{
	sqlite3_stmt *st;
	int i;

	buf_init(out, 1 << 26);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (i = 0; i < sqlite3_column_count(st); i++) {
			int n = sqlite3_column_bytes(st, i);

			buf_append_u8(out, (uint8_t)sqlite3_column_type(st, i));
			buf_append(out, &n, sizeof n);
			buf_append(out, sqlite3_column_blob(st, i), (size_t)n);
		}
	}
	sqlite3_finalize(st);
	ck_assert_int_eq(out->status, BS_OK);
}

static void same_table(struct twin *w, const char *sql)
{
	struct buf a, b;

	dump(w->s[0].r->db, sql, &a);
	dump(w->s[1].r->db, sql, &b);
	ck_assert_msg(a.len == b.len && (a.len == 0 ||
					 memcmp(a.data, b.data, a.len) == 0),
		      "%s differs", sql);
	buf_release(&a);
	buf_release(&b);
}

static void digest_of(sqlite3 *db, uint8_t out[HASH_BYTES])
{
	struct err e;

	err_init(&e);
	ck_assert_msg(digest_compute(db, out, &e) == 0, "%s", e.msg);
}

/* A fresh replica applies the sets of side 0 as another replica would;
 * its data must equal side 0's. */
static void replay(struct twin *w, struct changeset *cs, size_t n)
{
	struct replica *r = NULL;
	struct merge *m = NULL;
	struct merge_stats stats;
	uint8_t d0[HASH_BYTES], d1[HASH_BYTES];
	struct err e;
	size_t i;
	int applied;

	err_init(&e);
	ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &r, &e), 0);
	ck_assert_int_eq(merge_new(r->db, &m, &e), 0);
	for (i = 0; i < n; i++) {
		ck_assert_msg(merge_check(&cs[i], &e) == 0, "%s", e.msg);
		memset(&stats, 0, sizeof stats);
		ck_assert_int_eq(sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL),
				 SQLITE_OK);
		ck_assert_msg(merge_apply(m, &cs[i], &applied, &stats, &e) == 0,
			      "%s", e.msg);
		ck_assert_int_eq(applied, 1);
		ck_assert_int_eq(sqlite3_exec(r->db, "COMMIT", NULL, NULL,
					      NULL), SQLITE_OK);
	}
	merge_free(m);
	digest_of(w->s[0].r->db, d0);
	digest_of(r->db, d1);
	ck_assert_mem_eq(d0, d1, HASH_BYTES);
	replica_close(r);
}

/* Compares the two sides' change sets record by record, their headers
 * byte for byte, their data and clocks, and (if `replay_ok`: the values
 * are valid ones, which merge_check demands) replays side 0's. Returns the
 * number of change sets; if `order` is given, side 0's set `order_set`
 * must hold exactly those keys ("id/branch"), in that order, all INSERTs:
 * the rows came from the builder, not the session. */
static size_t twin_compare(struct twin *w, const char *const *order,
			   size_t order_n, size_t order_set, int replay_ok)
{
	uint8_t *bytes[2][MAX_SETS];
	size_t lens[2][MAX_SETS], n[2], k, i, t, nr[2];
	struct changeset *cs[2];
	struct rec *recs[2];
	const uint8_t *hdr[2][CSBUILD_MAX_TABLES];
	size_t hdr_len[2][CSBUILD_MAX_TABLES];
	uint8_t d0[HASH_BYTES], d1[HASH_BYTES];
	int s;

	for (s = 0; s < 2; s++) {
		cs[s] = mem_calloc(MAX_SETS, sizeof *cs[s]);
		recs[s] = mem_calloc(MAX_RECS, sizeof *recs[s]);
		outbox_bodies(&w->s[s], bytes[s], lens[s], cs[s], &n[s]);
	}
	ck_assert_uint_eq(n[0], n[1]);
	for (k = 0; k < n[0]; k++) {
		for (s = 0; s < 2; s++) {
			struct err e;

			err_init(&e);
			ck_assert_msg(csbody_check(cs[s][k].body,
						   cs[s][k].body_len, &e) == 0,
				      "%s", e.msg);
			nr[s] = body_recs(cs[s][k].body, cs[s][k].body_len,
					  recs[s], hdr[s], hdr_len[s]);
		}
		ck_assert_uint_eq(cs[0][k].body_len, cs[1][k].body_len);
		ck_assert_uint_eq(nr[0], nr[1]);
		ck_assert_str_eq(cs[0][k].env.scope, cs[1][k].env.scope);
		ck_assert_uint_eq(cs[0][k].env.hlc, cs[1][k].env.hlc);
		if (order && k == order_set) {
			ck_assert_uint_eq(nr[0], order_n);
			for (i = 0; i < order_n; i++) {
				ck_assert_str_eq(recs[0][i].key, order[i]);
				ck_assert_int_eq(recs[0][i].kind,
						 CSBODY_INSERT);
			}
		}
		for (t = 0; t < schema_table_count(); t++) {
			ck_assert((hdr[0][t] == NULL) == (hdr[1][t] == NULL));
			if (!hdr[0][t])
				continue;
			ck_assert_uint_eq(hdr_len[0][t], hdr_len[1][t]);
			ck_assert_mem_eq(hdr[0][t], hdr[1][t], hdr_len[0][t]);
		}
		for (s = 0; s < 2; s++)
			qsort(recs[s], nr[s], sizeof *recs[s], rec_cmp);
		for (i = 0; i < nr[0]; i++) {
			ck_assert_uint_eq(recs[0][i].tidx, recs[1][i].tidx);
			ck_assert_str_eq(recs[0][i].key, recs[1][i].key);
			ck_assert_int_eq(recs[0][i].kind, recs[1][i].kind);
			ck_assert_uint_eq(recs[0][i].n, recs[1][i].n);
			ck_assert_mem_eq(recs[0][i].p, recs[1][i].p,
					 recs[0][i].n);
		}
	}
	digest_of(w->s[0].r->db, d0);
	digest_of(w->s[1].r->db, d1);
	ck_assert_mem_eq(d0, d1, HASH_BYTES);
	same_table(w, "SELECT tbl, first, last, hlc, dev, rows, slots FROM "
		   "bs_implicit ORDER BY tbl, first");
	same_table(w, "SELECT * FROM bs_rows ORDER BY tbl, row_id, branch_id");
	if (replay_ok)
		replay(w, cs[0], n[0]);
	for (s = 0; s < 2; s++) {
		for (k = 0; k < n[s]; k++)
			mem_free(bytes[s][k]);
		mem_free(cs[s]);
		mem_free(recs[s]);
	}
	return n[0];
}

/* A row of t with the given "column=value" pairs (NULL-ended). */
static void make_row(const struct schema_table *t, const char *const *pairs,
		     struct records_row *row)
{
	struct err e;
	size_t i;

	err_init(&e);
	records_row_init(row, t);
	for (i = 0; pairs[i]; i++) {
		char col[64];
		const char *eq = strchr(pairs[i], '=');

		snprintf(col, sizeof col, "%.*s", (int)(eq - pairs[i]),
			 pairs[i]);
		ck_assert_msg(records_row_set(row, col, eq + 1, strlen(eq + 1),
					      &e) == 0, "%s", e.msg);
	}
}

/* ---- the tests ---- */

/* Every table, random rows of every column type, a cut per table (a set
 * holds one scope; a branches row is its own). */
START_TEST(every_table_matches_session)
{
	struct twin w;
	char ids[64][2 * SCHEMA_ID_MAX + 2], branch[SCHEMA_ID_MAX + 1];
	const char *order[64];
	size_t t, i, sets = 0, rows;

	twin_open(&w, (uint64_t)_i + 1);
	for (t = 0; t < schema_table_count(); t++) {
		const struct schema_table *tab = schema_table_at(t);

		twin_begin(&w);
		random_id(&w, branch, 1 + rnd(&w) % 12);
		rows = tab->scope_is_id ? 1 : 40;
		for (i = 0; i < rows; i++) {
			struct records_row row;
			char id[SCHEMA_ID_MAX + 1];

			/* random, but unique: the suffix */
			random_id(&w, id, 1 + rnd(&w) % (SCHEMA_ID_MAX - 8));
			snprintf(id + strlen(id), 8, "-%zu", i);
			random_row(&w, tab, branch, &row);
			twin_insert(&w, id, &row, 0);
			records_row_clear(&row);
			snprintf(ids[i], sizeof ids[i], "%s/%s", id,
				 tab->scope_is_id ? id : branch);
			order[i] = ids[i];
		}
		ck_assert_int_eq(twin_cut(&w, 1), 1);
		ck_assert_uint_eq(twin_compare(&w, order, rows, sets, 1), ++sets);
	}
	twin_close(&w);
}
END_TEST

/* Values no validated input makes: empty and long texts, integers at the
 * ends of int64 (first cut: the builder's), then kinds SQLite converts or
 * refuses (second cut: the session's to record). */
START_TEST(edge_values_match_session)
{
	static const char *const order[] = {"empty-and-long/b1", "min/b1",
					    "max/b1", "minus-one/b1"};
	const struct schema_table *m = schema_table_find("members");
	const struct schema_table *tr = schema_table_find("trainings");
	struct twin w;
	struct records_row row, row2;
	char *big = mem_alloc(60001);

	memset(big, 'y', 60000);
	big[60000] = '\0';
	twin_open(&w, 7);
	twin_begin(&w);
	records_row_init(&row, m);
	row.cols[0] = schema_column_find(m, "branch_id");
	row.vals[0] = (struct schema_value){SCHEMA_VALUE_TEXT, 0,
					    mem_strdup("b1")};
	row.cols[1] = schema_column_find(m, "name");
	row.vals[1] = (struct schema_value){SCHEMA_VALUE_TEXT, 0,
					    mem_strdup("")};
	row.cols[2] = schema_column_find(m, "occupation");
	row.vals[2] = (struct schema_value){SCHEMA_VALUE_TEXT, 0,
					    mem_strdup(big)};
	row.n = 3;
	twin_insert(&w, "empty-and-long", &row, 0);

	records_row_init(&row2, tr);
	row2.cols[0] = schema_column_find(tr, "branch_id");
	row2.vals[0] = (struct schema_value){SCHEMA_VALUE_TEXT, 0,
					     mem_strdup("b1")};
	row2.cols[1] = schema_column_find(tr, "title");
	row2.vals[1] = (struct schema_value){SCHEMA_VALUE_TEXT, 0,
					     mem_strdup("😀")};
	row2.cols[2] = schema_column_find(tr, "attendees");
	row2.vals[2] = (struct schema_value){SCHEMA_VALUE_INT, INT64_MIN,
					     NULL};
	row2.n = 3;
	twin_insert(&w, "min", &row2, 0);
	row2.vals[2].i = INT64_MAX;
	twin_insert(&w, "max", &row2, 0);
	row2.vals[2].i = -1;
	twin_insert(&w, "minus-one", &row2, 0);
	/* a duplicate key fails and leaves nothing behind */
	twin_insert(&w, "min", &row2, 1);
	ck_assert_int_eq(twin_cut(&w, 0), 1);

	/* an integer in a TEXT column is stored as text */
	schema_value_clear(&row.vals[2]);
	row.vals[2] = (struct schema_value){SCHEMA_VALUE_INT, -42, NULL};
	twin_insert(&w, "int-in-text", &row, 0);
	records_row_clear(&row);
	/* a text SQLite turns into an integer, and one it refuses */
	row2.vals[2] = (struct schema_value){SCHEMA_VALUE_TEXT, 0,
					     mem_strdup("12")};
	twin_insert(&w, "text-int", &row2, 0);
	schema_value_clear(&row2.vals[2]);
	row2.vals[2] = (struct schema_value){SCHEMA_VALUE_TEXT, 0,
					     mem_strdup("12x")};
	twin_insert(&w, "text-bad", &row2, 1);
	records_row_clear(&row2);
	ck_assert_int_eq(twin_cut(&w, 1), 1);
	ck_assert_uint_eq(twin_compare(&w, order, 4, 0, 0), 2);
	twin_close(&w);
	mem_free(big);
}
END_TEST

/* Inserts later updated or deleted in the same cut, and inserts after the
 * session has recorded something: the result is the session's own. */
START_TEST(insert_then_update_or_delete)
{
	const struct schema_table *t = schema_table_find("members");
	static const char *const ins[] = {"branch_id=b1", "name=A",
					  "phone=13800000000", NULL};
	static const char *const upd[] = {"name=B", "phone=", "gender=女",
					  NULL};
	struct twin w;
	struct records_row row;
	char id[16];
	int i;

	twin_open(&w, 3);
	twin_begin(&w);
	make_row(t, ins, &row);
	for (i = 0; i < 6; i++) {
		snprintf(id, sizeof id, "m%d", i);
		twin_insert(&w, id, &row, 0);
	}
	records_row_clear(&row);
	make_row(t, upd, &row);
	twin_update(&w, "m1", "b1", &row);
	twin_update(&w, "m4", "b1", &row);
	records_row_clear(&row);
	twin_delete(&w, t, "m2", "b1");
	/* the session holds changes now: these go to it */
	make_row(t, ins, &row);
	twin_insert(&w, "m9", &row, 0);
	twin_insert(&w, "m10", &row, 0);
	records_row_clear(&row);
	twin_delete(&w, t, "m10", "b1");
	ck_assert_int_eq(twin_cut(&w, 1), 1);
	ck_assert_uint_eq(twin_compare(&w, NULL, 0, 0, 1), 1);
	twin_close(&w);
}
END_TEST

/* A row deleted and inserted again under the same key in one cut is an
 * UPDATE (or nothing, if the values are the same), never lost: the insert
 * comes after the session's DELETE, so the session must record it. */
START_TEST(delete_then_insert_again)
{
	const struct schema_table *t = schema_table_find("members");
	static const char *const ins[] = {"branch_id=b1", "name=A", NULL};
	static const char *const ins2[] = {"branch_id=b1", "name=B",
					   "status=left", NULL};
	struct twin w;
	struct records_row row;

	twin_open(&w, 10);
	twin_begin(&w);
	make_row(t, ins, &row);
	twin_insert(&w, "k1", &row, 0);
	twin_insert(&w, "k2", &row, 0);
	ck_assert_int_eq(twin_cut(&w, 1), 1);
	twin_begin(&w);
	twin_delete(&w, t, "k1", "b1");
	twin_delete(&w, t, "k2", "b1");
	twin_insert(&w, "k2", &row, 0);
	records_row_clear(&row);
	make_row(t, ins2, &row);
	twin_insert(&w, "k1", &row, 0);
	records_row_clear(&row);
	ck_assert_int_eq(twin_cut(&w, 1), 1);
	ck_assert_uint_eq(twin_compare(&w, NULL, 0, 0, 1), 2);
	twin_close(&w);
}
END_TEST

/* An insert then its delete, alone in a cut, is no change set at all. */
START_TEST(insert_then_delete_is_nothing)
{
	const struct schema_table *t = schema_table_find("needs");
	static const char *const ins[] = {"branch_id=b1", "category=job",
					  NULL};
	struct twin w;
	struct records_row row;

	twin_open(&w, 4);
	twin_begin(&w);
	make_row(t, ins, &row);
	twin_insert(&w, "n1", &row, 0);
	records_row_clear(&row);
	twin_delete(&w, t, "n1", "b1");
	ck_assert_int_eq(twin_cut(&w, 1), 0);
	ck_assert_uint_eq(twin_compare(&w, NULL, 0, 0, 1), 0);
	twin_close(&w);
}
END_TEST

/* Several tables in one cut, interleaved: one header each, in schema
 * order, each table's rows in insertion order. */
START_TEST(tables_mixed_in_one_cut)
{
	struct twin w;
	char ids[90][80];
	const char *order[90];
	size_t i, n = 0, t;
	static const char *const names[] = {"awards", "members", "needs"};

	twin_open(&w, 5);
	twin_begin(&w);
	for (i = 0; i < 90; i++) {
		const struct schema_table *tab =
			schema_table_find(names[i % 3]);
		struct records_row row;
		char id[16];

		snprintf(id, sizeof id, "r%zu", i);
		random_row(&w, tab, "b7", &row);
		twin_insert(&w, id, &row, 0);
		records_row_clear(&row);
	}
	/* expected order: by table in schema order, then insertion */
	for (t = 0; t < schema_table_count(); t++)
		for (i = 0; i < 90; i++)
			if (schema_table_find(names[i % 3]) ==
			    schema_table_at(t)) {
				snprintf(ids[n], sizeof ids[n], "r%zu/b7", i);
				order[n] = ids[n];
				n++;
			}
	ck_assert_int_eq(twin_cut(&w, 1), 1);
	ck_assert_uint_eq(twin_compare(&w, order, n, 0, 1), 1);
	twin_close(&w);
}
END_TEST

/* capture_cut, then more writes in the same transaction: each cut is its
 * own set, and the builder starts empty after a cut. */
START_TEST(cut_then_continue)
{
	const struct schema_table *t = schema_table_find("members");
	static const char *const ins[] = {"branch_id=b1", "name=A", NULL};
	static const char *const ins2[] = {"branch_id=b2", "name=C", NULL};
	static const char *const upd[] = {"status=away", NULL};
	static const char *const order2[] = {"x1/b2", "x2/b2"};
	struct twin w;
	struct records_row row;

	twin_open(&w, 6);
	twin_begin(&w);
	make_row(t, ins, &row);
	twin_insert(&w, "a1", &row, 0);
	twin_insert(&w, "a2", &row, 0);
	records_row_clear(&row);
	ck_assert_int_eq(twin_cut(&w, 0), 1);
	/* another scope: one set may not hold two */
	make_row(t, ins2, &row);
	twin_insert(&w, "x1", &row, 0);
	twin_insert(&w, "x2", &row, 0);
	records_row_clear(&row);
	ck_assert_int_eq(twin_cut(&w, 0), 1);
	/* an update of the first cut's row, then an insert: session */
	make_row(t, upd, &row);
	twin_update(&w, "a1", "b1", &row);
	records_row_clear(&row);
	make_row(t, ins, &row);
	twin_insert(&w, "a3", &row, 0);
	records_row_clear(&row);
	ck_assert_int_eq(twin_cut(&w, 0), 1);
	/* nothing written: no set */
	ck_assert_int_eq(twin_cut(&w, 0), 0);
	make_row(t, ins, &row);
	twin_insert(&w, "a4", &row, 0);
	records_row_clear(&row);
	make_row(t, upd, &row);
	twin_update(&w, "a4", "b1", &row);
	records_row_clear(&row);
	ck_assert_int_eq(twin_cut(&w, 1), 1);
	ck_assert_uint_eq(twin_compare(&w, order2, 2, 1, 1), 4);
	twin_close(&w);
}
END_TEST

/* A capture rolled back leaves neither rows nor change sets, and the
 * next capture's set holds only its own rows. */
START_TEST(rollback_discards_rows)
{
	const struct schema_table *t = schema_table_find("members");
	static const char *const ins[] = {"branch_id=b1", "name=A", NULL};
	static const char *const order[] = {"k2/b1"};
	struct twin w;
	struct records_row row;
	int i;

	twin_open(&w, 8);
	twin_begin(&w);
	make_row(t, ins, &row);
	twin_insert(&w, "k1", &row, 0);
	for (i = 0; i < 2; i++) {
		capture_free(w.s[i].c);
		w.s[i].c = NULL;
	}
	twin_begin(&w);
	twin_insert(&w, "k2", &row, 0);
	records_row_clear(&row);
	ck_assert_int_eq(twin_cut(&w, 1), 1);
	ck_assert_uint_eq(twin_compare(&w, order, 1, 0, 1), 1);
	twin_close(&w);
}
END_TEST

/* Rows past the body limit are refused when inserted, and the capture
 * can then only roll back. */
START_TEST(too_large_is_refused)
{
	const struct schema_table *t = schema_table_find("members");
	struct twin w;
	struct records_row row;
	char *big = mem_alloc(SCHEMA_TEXT_MAX + 1), id[16];
	struct err e;
	int i, rc = 0, count;
	sqlite3_stmt *st;

	memset(big, 'z', SCHEMA_TEXT_MAX);
	big[SCHEMA_TEXT_MAX] = '\0';
	twin_open(&w, 9);
	twin_begin(&w);
	records_row_init(&row, t);
	err_init(&e);
	ck_assert_int_eq(records_row_set(&row, "branch_id", "b1", 2, &e), 0);
	ck_assert_int_eq(records_row_set(&row, "name", big, SCHEMA_TEXT_MAX,
					 &e), 0);
	ck_assert_int_eq(records_row_set(&row, "occupation", big,
					 SCHEMA_TEXT_MAX, &e), 0);
	for (i = 0; i < 2000 && rc == 0; i++) {
		snprintf(id, sizeof id, "big%d", i);
		rc = records_insert(w.s[0].rs, id, &row, &e);
	}
	records_row_clear(&row);
	ck_assert_int_ne(rc, 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "too large"));
	ck_assert_int_gt(i, 900);
	err_init(&e);
	ck_assert_int_ne(capture_commit(w.s[0].c, &count, &e), 0);
	capture_free(w.s[0].c);
	w.s[0].c = NULL;
	ck_assert_int_eq(sqlite3_prepare_v2(w.s[0].r->db,
		"SELECT (SELECT count(*) FROM members) + "
		"(SELECT count(*) FROM bs_outbox)", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	twin_close(&w);
	mem_free(big);
}
END_TEST

static Suite *csbuild_suite(void)
{
	Suite *s = suite_create("csbuild");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, insert_known_bytes);
	tcase_add_test(tc, varint_lengths);
	tcase_add_loop_test(tc, every_table_matches_session, 0, 4);
	tcase_add_test(tc, edge_values_match_session);
	tcase_add_test(tc, insert_then_update_or_delete);
	tcase_add_test(tc, insert_then_delete_is_nothing);
	tcase_add_test(tc, delete_then_insert_again);
	tcase_add_test(tc, tables_mixed_in_one_cut);
	tcase_add_test(tc, cut_then_continue);
	tcase_add_test(tc, rollback_discards_rows);
	tcase_add_test(tc, too_large_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(csbuild_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
