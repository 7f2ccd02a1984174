/* test_merge.c - Check suite for shared/merge and shared/capture: the merge
 * rules on hand-made cases, and the convergence property: change sets made
 * by several simulated devices (concurrent edits of the same cells, deletes,
 * re-creates, edits after deletes), applied to fresh replicas in random
 * orders with duplicates, always give the same canonical digest.
 * BRANCHSYNC_SEED=<n> replays one seed; BRANCHSYNC_CASES=<n> sets how many. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "capture.h"
#include "changeset.h"
#include "digest.h"
#include "mem.h"
#include "merge.h"
#include "replica.h"

#define MAX_SETS 512
#define MAX_ROWS 64

struct device {
	struct replica *r;
	uint8_t pk[SIGN_PUBLIC_BYTES];
	uint8_t sk[SIGN_SECRET_BYTES];
	uint64_t wall;
	size_t seen;               /* sets of the pool merged so far */
};

struct pool {
	uint8_t *bytes[MAX_SETS];
	size_t len[MAX_SETS];
	size_t n;
};

static unsigned rnd(unsigned *seed, unsigned n) { return (unsigned)rand_r(seed) % n; }

static struct replica *open_memory(void)
{
	struct replica *r = NULL;
	struct err e;

	err_init(&e);
	ck_assert_msg(replica_open(":memory:", REPLICA_MEMORY, &r, &e) == 0,
		      "%s", e.msg);
	return r;
}

static void device_init(struct device *d, unsigned *seed)
{
	uint8_t s[32];
	size_t i;

	for (i = 0; i < sizeof s; i++)
		s[i] = (uint8_t)rand_r(seed);
	crypto_sign_seed_keypair(d->pk, d->sk, s);
	d->r = open_memory();
	d->wall = 1700000000000ull + rnd(seed, 5000);
	d->seen = 0;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
		      "%s: %s", sql, msg ? msg : "");
}

/* Runs `sql` on the device as one captured transaction; adds the change
 * set (if any) to the pool. */
static void device_write(struct device *d, struct pool *p, const char *sql)
{
	struct capture_signer signer = {d->pk, d->sk, NULL, d->wall};
	struct capture *c = NULL;
	struct err e;
	int count = 0;

	err_init(&e);
	ck_assert_msg(capture_begin(d->r, &signer, &c, &e) == 0, "%s", e.msg);
	exec_ok(d->r->db, sql);
	ck_assert_msg(capture_commit(c, &count, &e) == 0, "%s", e.msg);
	capture_free(c);
	if (count) {
		sqlite3_stmt *st;

		ck_assert_int_eq(sqlite3_prepare_v2(d->r->db,
			"SELECT bytes FROM bs_outbox ORDER BY seq DESC LIMIT 1",
			-1, &st, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		ck_assert_int_lt(p->n, MAX_SETS);
		p->len[p->n] = (size_t)sqlite3_column_bytes(st, 0);
		p->bytes[p->n] = mem_alloc(p->len[p->n]);
		memcpy(p->bytes[p->n], sqlite3_column_blob(st, 0), p->len[p->n]);
		p->n++;
		sqlite3_finalize(st);
	}
}

static void apply_bytes(struct replica *r, const uint8_t *bytes, size_t len)
{
	struct changeset cs;
	struct merge *m = NULL;
	struct merge_stats stats = {0};
	struct err e;
	int applied;

	err_init(&e);
	ck_assert_int_eq(changeset_decode(bytes, len, &cs), BS_OK);
	ck_assert_int_eq(changeset_verify(&cs), BS_OK);
	ck_assert_msg(merge_new(r->db, &m, &e) == 0, "%s", e.msg);
	exec_ok(r->db, "BEGIN");
	ck_assert_msg(merge_apply(m, &cs, &applied, &stats, &e) == 0, "%s",
		      e.msg);
	merge_free(m);
	exec_ok(r->db, "COMMIT");
}

/* A device pulls what it has not seen yet from the pool (its own sets
 * come back as duplicates and must be no-ops). */
static void device_sync(struct device *d, const struct pool *p)
{
	for (; d->seen < p->n; d->seen++)
		apply_bytes(d->r, p->bytes[d->seen], p->len[d->seen]);
}

static void digest_of(struct replica *r, uint8_t out[HASH_BYTES])
{
	struct err e;

	err_init(&e);
	ck_assert_msg(digest_compute(r->db, out, &e) == 0, "%s", e.msg);
}

/* Picks the id of a random live member on the device, or NULL. */
static int random_member(struct device *d, unsigned *seed, char *id, size_t n)
{
	sqlite3_stmt *st;
	int found = 0;

	sqlite3_prepare_v2(d->r->db,
		"SELECT id FROM members ORDER BY id LIMIT 1 OFFSET ?1", -1, &st,
		NULL);
	sqlite3_bind_int(st, 1, (int)rnd(seed, 8));
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, n, "%s", sqlite3_column_text(st, 0));
		found = 1;
	}
	sqlite3_finalize(st);
	return found;
}

static const char *const names[] = {"张三", "李四", "王五", "Zhao Liu",
				     "陈七", "刘八"};
static const char *const statuses[] = {"active", "away", "transferred", "left"};
static const char *const cities[] = {"'深圳'", "'杭州'", "NULL", "'Beijing'"};

static void random_write(struct device *d, struct pool *p, unsigned *seed,
			 int *next_row)
{
	char sql[1200], id[80];
	unsigned what = rnd(seed, 10);

	d->wall += rnd(seed, 3000); /* clocks drift apart a little */
	if (what < 3 || !random_member(d, seed, id, sizeof id)) {
		/* new rows get ids from a small space so that two devices
		 * sometimes create the same id concurrently */
		snprintf(sql, sizeof sql,
			 "INSERT INTO members(id, branch_id, name, status, "
			 "away_city) VALUES('m%d', 'b1', '%s', '%s', %s)",
			 (*next_row)++ % MAX_ROWS, names[rnd(seed, 6)],
			 statuses[rnd(seed, 4)], cities[rnd(seed, 4)]);
		/* the id may be a tombstone or exist here already */
		if (sqlite3_exec(d->r->db, "SAVEPOINT probe", NULL, NULL, NULL) ==
		    SQLITE_OK) {
			int ok;
			char probe[160];

			snprintf(probe, sizeof probe,
				 "SELECT 1 FROM members WHERE id='m%d' UNION ALL "
				 "SELECT 1 FROM bs_rows WHERE row_id='m%d'",
				 (*next_row - 1) % MAX_ROWS,
				 (*next_row - 1) % MAX_ROWS);
			{
				sqlite3_stmt *st;
				sqlite3_prepare_v2(d->r->db, probe, -1, &st, NULL);
				ok = sqlite3_step(st) != SQLITE_ROW;
				sqlite3_finalize(st);
			}
			sqlite3_exec(d->r->db, "RELEASE probe", NULL, NULL, NULL);
			if (!ok)
				return;
		}
	} else if (what < 8) {
		snprintf(sql, sizeof sql,
			 "UPDATE members SET %s WHERE id='%s'",
			 rnd(seed, 2) ? "status='away', away_city='广州'"
				      : (rnd(seed, 2) ? "name='改名'" : "status='left'"),
			 id);
		if (rnd(seed, 3) == 0) {
			size_t used = strlen(sql);
			snprintf(sql + used, sizeof sql - used,
				 "; UPDATE members SET occupation='farmer' "
				 "WHERE id='%.60s'", id);
		}
	} else {
		snprintf(sql, sizeof sql, "DELETE FROM members WHERE id='%s'", id);
	}
	device_write(d, p, sql);
}

static void pool_free(struct pool *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		mem_free(p->bytes[i]);
	p->n = 0;
}

/* One case: 3-4 devices, random writes interleaved with partial syncs. */
static void run_case(unsigned seed0)
{
	unsigned seed = seed0;
	struct device dev[4];
	struct pool pool = {{0}, {0}, 0};
	size_t ndev = 3 + rnd(&seed, 2), i, k, steps = 10 + rnd(&seed, 30);
	uint8_t want[HASH_BYTES], got[HASH_BYTES];
	int next_row = 0;

	for (i = 0; i < ndev; i++)
		device_init(&dev[i], &seed);
	for (k = 0; k < steps; k++) {
		struct device *d = &dev[rnd(&seed, (unsigned)ndev)];

		if (rnd(&seed, 4) == 0)
			device_sync(d, &pool);
		else
			random_write(d, &pool, &seed, &next_row);
	}
	for (i = 0; i < ndev; i++)
		device_sync(&dev[i], &pool);
	digest_of(dev[0].r, want);
	for (i = 1; i < ndev; i++) {
		digest_of(dev[i].r, got);
		ck_assert_msg(memcmp(want, got, HASH_BYTES) == 0,
			      "seed %u: device %zu diverged after full sync",
			      seed0, i);
	}
	/* fresh replicas, each in its own random order, with duplicates */
	for (k = 0; k < 3; k++) {
		struct replica *r = open_memory();
		size_t order[MAX_SETS * 2], n = 0, j;

		for (j = 0; j < pool.n; j++) {
			order[n++] = j;
			if (rnd(&seed, 4) == 0)
				order[n++] = j;
		}
		for (j = n; j > 1; j--) {
			size_t x = rnd(&seed, (unsigned)j), t = order[j - 1];
			order[j - 1] = order[x];
			order[x] = t;
		}
		for (j = 0; j < n; j++)
			apply_bytes(r, pool.bytes[order[j]], pool.len[order[j]]);
		digest_of(r, got);
		ck_assert_msg(memcmp(want, got, HASH_BYTES) == 0,
			      "seed %u: fresh replica %zu diverged (replay with "
			      "BRANCHSYNC_SEED=%u)", seed0, k, seed0);
		replica_close(r);
	}
	for (i = 0; i < ndev; i++)
		replica_close(dev[i].r);
	pool_free(&pool);
}

START_TEST(convergence_property)
{
	const char *fixed = getenv("BRANCHSYNC_SEED");
	const char *cases = getenv("BRANCHSYNC_CASES");
	unsigned base = fixed ? (unsigned)strtoul(fixed, NULL, 10)
			      : (unsigned)time(NULL);
	unsigned n = fixed ? 1 : (cases ? (unsigned)atoi(cases) : 1000), i;

	printf("merge property: %u cases from seed %u\n", n, base);
	fflush(stdout);
	for (i = 0; i < n; i++)
		run_case(base + i);
}
END_TEST

/* Hand-made: two devices edit the same cell concurrently; the later clock
 * wins everywhere and both replicas list the conflict. */
START_TEST(concurrent_edit_is_a_conflict)
{
	unsigned seed = 7;
	struct device a, b;
	struct pool p = {{0}, {0}, 0};
	uint8_t da[HASH_BYTES], db[HASH_BYTES];
	sqlite3_stmt *st;

	device_init(&a, &seed);
	device_init(&b, &seed);
	a.wall = 1000000;
	b.wall = 1000000;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) "
			     "VALUES('x', 'b1', 'Old')");
	device_sync(&b, &p);
	a.wall += 10;
	device_write(&a, &p, "UPDATE members SET name='From A' WHERE id='x'");
	b.wall += 20;
	device_write(&b, &p, "UPDATE members SET name='From B' WHERE id='x'");
	device_sync(&a, &p);
	device_sync(&b, &p);
	digest_of(a.r, da);
	digest_of(b.r, db);
	ck_assert_mem_eq(da, db, HASH_BYTES);
	sqlite3_prepare_v2(a.r->db, "SELECT name FROM members WHERE id='x'", -1,
			   &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "From B");
	sqlite3_finalize(st);
	sqlite3_prepare_v2(a.r->db,
		"SELECT kept_value, lost_value, kind FROM bs_conflicts", -1,
		&st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "From B");
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 1), "From A");
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 2), "concurrent");
	sqlite3_finalize(st);
	replica_close(a.r);
	replica_close(b.r);
	pool_free(&p);
}
END_TEST

/* A delete is permanent: a concurrent edit does not bring the row back. */
START_TEST(delete_wins_over_concurrent_edit)
{
	unsigned seed = 9;
	struct device a, b;
	struct pool p = {{0}, {0}, 0};
	sqlite3_stmt *st;

	device_init(&a, &seed);
	device_init(&b, &seed);
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) "
			     "VALUES('y', 'b1', 'Y')");
	device_sync(&b, &p);
	a.wall += 5;
	device_write(&a, &p, "DELETE FROM members WHERE id='y'");
	b.wall += 50000; /* later clock, still loses to the delete */
	device_write(&b, &p, "UPDATE members SET name='Y2' WHERE id='y'");
	device_sync(&a, &p);
	device_sync(&b, &p);
	sqlite3_prepare_v2(b.r->db, "SELECT count(*) FROM members", -1, &st,
			   NULL);
	sqlite3_step(st);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_prepare_v2(a.r->db,
		"SELECT count(*) FROM bs_conflicts WHERE kind="
		"'write-after-delete'", -1, &st, NULL);
	sqlite3_step(st);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	replica_close(a.r);
	replica_close(b.r);
	pool_free(&p);
}
END_TEST

/* Policy: an enrolled branch device cannot capture another branch's row,
 * and one transaction over two branches is refused whole. */
START_TEST(capture_refuses_out_of_scope)
{
	unsigned seed = 11;
	struct device d;
	struct capture_signer s;
	struct capture *c = NULL;
	struct err e;
	int count;
	sqlite3_stmt *st;

	device_init(&d, &seed);
	s = (struct capture_signer){d.pk, d.sk, "b1", d.wall};
	err_init(&e);
	ck_assert_int_eq(capture_begin(d.r, &s, &c, &e), 0);
	exec_ok(d.r->db, "INSERT INTO members(id, branch_id, name) "
			 "VALUES('z', 'b2', 'Z')");
	ck_assert_int_ne(capture_commit(c, &count, &e), 0);
	ck_assert_int_eq(e.kind, ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(e.msg, "may not write branch b2"));
	capture_free(c);

	err_init(&e);
	s.scope_only = NULL;
	ck_assert_int_eq(capture_begin(d.r, &s, &c, &e), 0);
	exec_ok(d.r->db, "INSERT INTO members(id, branch_id, name) VALUES"
			 "('z1', 'b1', 'Z'), ('z2', 'b2', 'Z')");
	ck_assert_int_ne(capture_commit(c, &count, &e), 0);
	capture_free(c);
	/* nothing of either attempt remains, and the chain did not move */
	sqlite3_prepare_v2(d.r->db, "SELECT (SELECT count(*) FROM members) + "
			   "(SELECT count(*) FROM bs_outbox)", -1, &st, NULL);
	sqlite3_step(st);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	replica_close(d.r);
}
END_TEST

/* The outbox chain: sequences 1, 2, 3 with each prev = the previous id. */
START_TEST(capture_builds_a_chain)
{
	unsigned seed = 13;
	struct device d;
	struct pool p = {{0}, {0}, 0};
	struct changeset cs[3];
	size_t i;

	device_init(&d, &seed);
	device_write(&d, &p, "INSERT INTO members(id, branch_id, name) "
			     "VALUES('c1', 'b1', 'C')");
	device_write(&d, &p, "UPDATE members SET name='D' WHERE id='c1'");
	device_write(&d, &p, "UPDATE members SET name='D' WHERE id='c1'"); /* no-op */
	device_write(&d, &p, "DELETE FROM members WHERE id='c1'");
	ck_assert_uint_eq(p.n, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(changeset_decode(p.bytes[i], p.len[i], &cs[i]),
				 BS_OK);
		ck_assert_int_eq(changeset_verify(&cs[i]), BS_OK);
		ck_assert_uint_eq(cs[i].env.seq, i + 1);
		if (i)
			ck_assert_mem_eq(cs[i].env.prev, cs[i - 1].id, HASH_BYTES);
		if (i)
			ck_assert_uint_gt(cs[i].env.hlc, cs[i - 1].env.hlc);
	}
	replica_close(d.r);
	pool_free(&p);
}
END_TEST

/* A forged body (a row of another scope) is refused by merge_check even
 * though it is validly signed. */
START_TEST(merge_refuses_body_outside_scope)
{
	unsigned seed = 17;
	struct device d;
	struct pool p = {{0}, {0}, 0};
	struct changeset cs;
	struct changeset_envelope env;
	struct buf out;
	uint8_t id[HASH_BYTES];
	struct err e;

	device_init(&d, &seed);
	device_write(&d, &p, "INSERT INTO members(id, branch_id, name) "
			     "VALUES('f', 'b2', 'F')");
	ck_assert_int_eq(changeset_decode(p.bytes[0], p.len[0], &cs), BS_OK);
	env = cs.env;
	strcpy(env.scope, "b1"); /* claim another scope for the same body */
	buf_init(&out, CHANGESET_MAX_ENCODED);
	ck_assert_int_eq(changeset_sign(&env, cs.body, cs.body_len, d.sk, &out,
					id), BS_OK);
	ck_assert_int_eq(changeset_decode(out.data, out.len, &cs), BS_OK);
	err_init(&e);
	ck_assert_int_ne(merge_check(&cs, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "outside"));
	buf_release(&out);
	replica_close(d.r);
	pool_free(&p);
}
END_TEST


/* A device whose clock is a year ahead does not win forever: whoever saw
 * its value can overwrite it, and that does not drag the overwriter's
 * clock into the future for its other writes. */
START_TEST(future_clock_does_not_win_forever)
{
	unsigned seed = 19;
	struct device a, b;
	struct pool p = {{0}, {0}, 0};
	struct changeset cs;
	sqlite3_stmt *st;
	uint64_t year = 365ull * 24 * 3600 * 1000;

	device_init(&a, &seed);
	device_init(&b, &seed);
	a.wall = b.wall + year;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) "
			     "VALUES('w', 'b1', 'Future')");
	device_sync(&b, &p);
	b.wall += 1000;
	device_write(&b, &p, "UPDATE members SET name='Now' WHERE id='w'");
	b.wall += 1000;
	device_write(&b, &p, "INSERT INTO members(id, branch_id, name) "
			     "VALUES('v', 'b1', 'Other')");
	device_sync(&a, &p);
	sqlite3_prepare_v2(a.r->db, "SELECT name FROM members WHERE id='w'", -1,
			   &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "Now");
	sqlite3_finalize(st);
	/* b's unrelated write carries b's own time, not the future one */
	ck_assert_int_eq(changeset_decode(p.bytes[2], p.len[2], &cs), BS_OK);
	ck_assert_uint_lt(cs.env.hlc >> 16, b.wall + 60000);
	ck_assert_uint_gt(cs.env.hlc >> 16, b.wall - 60000);
	replica_close(a.r);
	replica_close(b.r);
	pool_free(&p);
}
END_TEST

/* ---- implicit clocks (shared/implicit.h) ---- */

static void text_is(struct replica *r, const char *sql, const char *want)
{
	sqlite3_stmt *st;

	ck_assert_int_eq(sqlite3_prepare_v2(r->db, sql, -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), want);
	sqlite3_finalize(st);
}

static long long int_of(struct replica *r, const char *sql)
{
	sqlite3_stmt *st;
	long long v;

	ck_assert_int_eq(sqlite3_prepare_v2(r->db, sql, -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static uint64_t hlc_of(const struct pool *p, size_t i)
{
	struct changeset cs;

	ck_assert_int_eq(changeset_decode(p->bytes[i], p->len[i], &cs), BS_OK);
	return cs.env.hlc;
}

/* Rows an import inserts get no bs_rows entry; their clock is the
 * set's, kept by range. Two devices create the same id concurrently: the
 * later insert wins every cell on both, whichever arrives first, and a
 * fresh replica agrees in both orders. */
START_TEST(implicit_insert_clock_decides)
{
	unsigned seed = 23;
	struct device a, b;
	struct pool p = {{0}, {0}, 0};
	uint8_t da[HASH_BYTES], dbb[HASH_BYTES], df[HASH_BYTES];
	int k;

	device_init(&a, &seed);
	device_init(&b, &seed);
	a.wall = 2000000;
	b.wall = 1000000;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name, status)"
			     " VALUES('q1', 'b1', 'A1', 'away'), ('q2', 'b1',"
			     " 'A2', 'away'), ('dup', 'b1', 'From A', 'away')");
	device_write(&b, &p, "INSERT INTO members(id, branch_id, name)"
			     " VALUES('dup', 'b1', 'From B')");
	ck_assert_int_eq(int_of(a.r, "SELECT count(*) FROM bs_rows"), 0);
	ck_assert_int_eq(int_of(a.r, "SELECT sum(rows) FROM bs_implicit"), 3);
	device_sync(&a, &p);
	device_sync(&b, &p);
	text_is(a.r, "SELECT name FROM members WHERE id='dup'", "From A");
	text_is(b.r, "SELECT name||status FROM members WHERE id='dup'",
		"From Aaway");
	digest_of(a.r, da);
	digest_of(b.r, dbb);
	ck_assert_mem_eq(da, dbb, HASH_BYTES);
	for (k = 0; k < 2; k++) {
		struct replica *r = open_memory();

		apply_bytes(r, p.bytes[k], p.len[k]);
		apply_bytes(r, p.bytes[1 - k], p.len[1 - k]);
		digest_of(r, df);
		ck_assert_mem_eq(da, df, HASH_BYTES);
		replica_close(r);
	}
	replica_close(a.r);
	replica_close(b.r);
	pool_free(&p);
}
END_TEST

/* A delete of a row that only has implicit clocks (its rowid is gone by
 * the time the set is cut) is still stamped after the insert it removes,
 * found by the search over every range; so is an update of it. */
START_TEST(implicit_delete_stamped_after_insert)
{
	unsigned seed = 29;
	struct device a, b;
	struct pool p = {{0}, {0}, 0};
	uint64_t year = 365ull * 24 * 3600 * 1000;

	device_init(&a, &seed);
	device_init(&b, &seed);
	a.wall = b.wall + year;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('u', 'b1', 'U'), ('d', 'b1', 'D'), ('z', 'b1', 'Z')");
	device_sync(&b, &p);
	ck_assert_int_eq(int_of(b.r, "SELECT count(*) FROM bs_rows"), 0);
	b.wall += 1000;
	device_write(&b, &p, "DELETE FROM members WHERE id='d'");
	ck_assert_uint_gt(hlc_of(&p, 1), hlc_of(&p, 0));
	/* the tombstone keeps the clocks of the cells it removed */
	ck_assert_int_eq(int_of(b.r, "SELECT count(*) FROM bs_rows WHERE"
				"  row_id='d' AND del_hlc IS NOT NULL"), 1);
	b.wall += 1000;
	device_write(&b, &p, "UPDATE members SET name='U2' WHERE id='u'");
	ck_assert_uint_gt(hlc_of(&p, 2), hlc_of(&p, 0));
	device_sync(&a, &p);
	text_is(a.r, "SELECT group_concat(name, ',') FROM (SELECT name FROM"
		" members ORDER BY id)", "U2,Z");
	replica_close(a.r);
	replica_close(b.r);
	pool_free(&p);
}
END_TEST

/* Deleting the newest row frees its rowid for the next insert: the new
 * row's clock is its own set's, not the older range's. Device c writes
 * the same id with a clock between the two: it must lose to the newer
 * insert (it would win against the older clock). */
START_TEST(implicit_rowid_reused_after_delete)
{
	unsigned seed = 31;
	struct device a, c;
	struct pool p = {{0}, {0}, 0};
	uint8_t da[HASH_BYTES], dc[HASH_BYTES];

	device_init(&a, &seed);
	device_init(&c, &seed);
	a.wall = 1000000;
	c.wall = 1050000;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('r1', 'b1', 'R1'), ('r2', 'b1', 'R2'),"
			     " ('r3', 'b1', 'R3')");
	a.wall += 10;
	device_write(&a, &p, "DELETE FROM members WHERE id='r3'");
	a.wall = 1100000;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('r4', 'b1', 'From A')");
	ck_assert_int_eq(int_of(a.r, "SELECT rowid FROM members WHERE id='r4'"),
			 3);
	device_write(&c, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('r4', 'b1', 'From C'), ('r1', 'b1', 'C1')");
	device_sync(&a, &p);
	device_sync(&c, &p);
	text_is(a.r, "SELECT name FROM members WHERE id='r4'", "From A");
	text_is(a.r, "SELECT name FROM members WHERE id='r1'", "C1");
	digest_of(a.r, da);
	digest_of(c.r, dc);
	ck_assert_mem_eq(da, dc, HASH_BYTES);
	replica_close(a.r);
	replica_close(c.r);
	pool_free(&p);
}
END_TEST

/* Rows whose rowids changed behind branchsync's back (a table rebuilt by
 * hand), and a row deleted and written again unchanged within one
 * capture, keep their clocks: the lookup by rowid does not verify and the
 * search by key finds them. */
START_TEST(implicit_clocks_survive_moved_rows)
{
	unsigned seed = 37;
	struct device a, c;
	struct pool p = {{0}, {0}, 0};

	device_init(&a, &seed);
	device_init(&c, &seed);
	a.wall = 1000000;
	c.wall = 1050000;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('m1', 'b1', 'A1'), ('m2', 'b1', 'A2'),"
			     " ('m3', 'b1', 'A3')");
	a.wall = 1100000;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('m4', 'b1', 'A4')");
	/* one capture: m2 deleted and written again as it was (no change
	 * set at all), and a new row */
	device_write(&a, &p, "DELETE FROM members WHERE id='m2';"
			     "INSERT INTO members(id, branch_id, name)"
			     " VALUES('m2', 'b1', 'A2')");
	ck_assert_uint_eq(p.n, 2);
	ck_assert_int_gt(int_of(a.r, "SELECT rowid FROM members WHERE id='m2'"),
			 4);
	/* rebuilt by hand, rows in reverse order: every rowid changes */
	exec_ok(a.r->db, "CREATE TEMP TABLE keep AS SELECT * FROM members;"
			 "DELETE FROM members;"
			 "INSERT INTO members SELECT * FROM keep ORDER BY id DESC;"
			 "DROP TABLE keep");
	/* c writes all four between a's two clocks: it beats m1..m3 (and
	 * m2, which moved) and loses to m4 */
	device_write(&c, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('m1', 'b1', 'C'), ('m2', 'b1', 'C'),"
			     " ('m3', 'b1', 'C'), ('m4', 'b1', 'C')");
	device_sync(&a, &p);
	text_is(a.r, "SELECT group_concat(name, ',') FROM (SELECT name FROM"
		" members ORDER BY id)", "C,C,C,A4");
	replica_close(a.r);
	replica_close(c.r);
	pool_free(&p);
}
END_TEST

/* An upgraded replica's explicit clocks (every row had one before
 * migration 6) still decide, and win over any range. */
START_TEST(explicit_clocks_win)
{
	unsigned seed = 41;
	struct device a, c;
	struct pool p = {{0}, {0}, 0};

	device_init(&a, &seed);
	device_init(&c, &seed);
	a.wall = 1000000;
	c.wall = 1050000;
	device_write(&a, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('e1', 'b1', 'A1'), ('e2', 'b1', 'A2')");
	/* as an older branchsync would have kept it: e1's clock explicit, a
	 * later one than its range says */
	exec_ok(a.r->db, "INSERT INTO bs_rows(tbl, row_id, branch_id, clocks)"
			 " SELECT 'members', 'e1', 'b1', zeroblob(0)");
	{
		sqlite3_stmt *st;
		uint8_t clocks[9 * 12];
		size_t i;

		memset(clocks, 0, sizeof clocks);
		for (i = 0; i < 9; i++) {
			uint64_t h = 1100000ull << 16;
			int k;

			for (k = 7; k >= 0; k--, h >>= 8)
				clocks[i * 12 + k] = (uint8_t)h;
			clocks[i * 12 + 11] = 1;
		}
		sqlite3_prepare_v2(a.r->db, "UPDATE bs_rows SET clocks=?1"
				   " WHERE row_id='e1'", -1, &st, NULL);
		sqlite3_bind_blob(st, 1, clocks, sizeof clocks, SQLITE_STATIC);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
	}
	device_write(&c, &p, "INSERT INTO members(id, branch_id, name) VALUES"
			     "('e1', 'b1', 'C'), ('e2', 'b1', 'C')");
	device_sync(&a, &p);
	text_is(a.r, "SELECT group_concat(name, ',') FROM (SELECT name FROM"
		" members ORDER BY id)", "A1,C");
	replica_close(a.r);
	replica_close(c.r);
	pool_free(&p);
}
END_TEST

/* Capture refuses an id our own server would refuse. */
START_TEST(capture_refuses_invalid_id)
{
	unsigned seed = 43;
	struct device d;
	struct capture_signer s;
	struct capture *c = NULL;
	struct err e;
	int count;

	device_init(&d, &seed);
	s = (struct capture_signer){d.pk, d.sk, NULL, d.wall};
	err_init(&e);
	ck_assert_int_eq(capture_begin(d.r, &s, &c, &e), 0);
	exec_ok(d.r->db, "INSERT INTO members(id, branch_id, name) "
			 "VALUES('no spaces', 'b1', 'Z')");
	ck_assert_int_ne(capture_commit(c, &count, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "is not valid"));
	capture_free(c);
	ck_assert_int_eq(int_of(d.r, "SELECT count(*) FROM members"), 0);
	replica_close(d.r);
}
END_TEST

/* Capture raises the page cache while it runs and puts it back. */
START_TEST(capture_restores_the_cache)
{
	unsigned seed = 47;
	struct device d;
	struct capture_signer s;
	struct capture *c = NULL;
	struct err e;
	long long before;
	int count;

	device_init(&d, &seed);
	before = int_of(d.r, "PRAGMA cache_size");
	s = (struct capture_signer){d.pk, d.sk, NULL, d.wall};
	err_init(&e);
	ck_assert_int_eq(capture_begin(d.r, &s, &c, &e), 0);
	ck_assert_int_lt(int_of(d.r, "PRAGMA cache_size"), before);
	ck_assert_int_eq(capture_commit(c, &count, &e), 0);
	capture_free(c);
	ck_assert_int_eq(int_of(d.r, "PRAGMA cache_size"), before);
	exec_ok(d.r->db, "PRAGMA cache_size=-65536");
	ck_assert_int_eq(capture_begin(d.r, &s, &c, &e), 0);
	ck_assert_int_eq(int_of(d.r, "PRAGMA cache_size"), -65536);
	capture_free(c);
	replica_close(d.r);
}
END_TEST

static Suite *merge_suite(void)
{
	Suite *s = suite_create("merge");
	TCase *rules = tcase_create("rules");
	TCase *prop = tcase_create("property");

	tcase_add_test(rules, concurrent_edit_is_a_conflict);
	tcase_add_test(rules, delete_wins_over_concurrent_edit);
	tcase_add_test(rules, capture_refuses_out_of_scope);
	tcase_add_test(rules, capture_builds_a_chain);
	tcase_add_test(rules, merge_refuses_body_outside_scope);
	tcase_add_test(rules, future_clock_does_not_win_forever);
	tcase_add_test(rules, implicit_insert_clock_decides);
	tcase_add_test(rules, implicit_delete_stamped_after_insert);
	tcase_add_test(rules, implicit_rowid_reused_after_delete);
	tcase_add_test(rules, implicit_clocks_survive_moved_rows);
	tcase_add_test(rules, explicit_clocks_win);
	tcase_add_test(rules, capture_refuses_invalid_id);
	tcase_add_test(rules, capture_restores_the_cache);
	tcase_add_test(prop, convergence_property);
	tcase_set_timeout(prop, 600);
	suite_add_tcase(s, rules);
	suite_add_tcase(s, prop);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(merge_suite());
	int failed;

	if (sodium_init() < 0)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
