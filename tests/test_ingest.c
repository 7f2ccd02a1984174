/* test_ingest.c - Check suite 'ingest' for server/ingest: a push made
 * ready off the lock (decode, signature and leaf on several threads) and
 * ingested as a batch gets the verdicts the one-by-one, body-checked-first
 * path gives, a body that breaks the schema included (the batch is done
 * again checking first); duplicates; a batch that fails leaves nothing
 * behind and the next one works (the merger does not remember a rolled
 * back author); prepare_start/finish. Real data directories. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "capture.h"
#include "changeset.h"
#include "hlc.h"
#include "ingest.h"
#include "mem.h"
#include "schema.h"
#include "srvlog.h"
#include "store.h"

#define NOW INT64_C(1790000000000)
#define NSETS 6

struct server {
	char dir[80];
	struct store *s;
	struct srvlog *log;
	struct ingest *in;
};

static char root[64];
static uint8_t pk_a[32], sk_a[64], pk_b[32], sk_b[64];
/* A's sets 0.. (captured), B's one set whose body is not a changeset */
static struct buf sets[NSETS], bad;

static void server_open(struct server *v, const char *name)
{
	struct err e;
	struct checkpoint cp;
	uint8_t *en;
	size_t len;
	uint64_t idx;

	snprintf(v->dir, sizeof v->dir, "%s/%s", root, name);
	err_init(&e);
	ck_assert_msg(store_init(v->dir, "Test", NULL, &v->s, &e) == 0, "%s",
		      e.msg);
	ck_assert_int_eq(store_unlock(v->s, NULL, &e), 0);
	ck_assert_int_eq(srvlog_open(v->s, &v->log, &e), 0);
	ck_assert_int_eq(ingest_new(v->s, v->log, &v->in, &e), 0);
	ck_assert_int_eq(replica_begin(v->s->r, &e), 0);
	ck_assert_int_eq(ingest_enroll(v->in, pk_a, ROLE_DISTRICT, "district",
				       "a", NOW, &en, &len, &idx, &e),
			 0);
	mem_free(en);
	ck_assert_int_eq(ingest_enroll(v->in, pk_b, ROLE_DISTRICT, "district",
				       "b", NOW, &en, &len, &idx, &e),
			 0);
	mem_free(en);
	ck_assert_int_eq(srvlog_checkpoint(v->log, NOW, &cp, &e), 0);
	ck_assert_int_eq(replica_commit(v->s->r, &e), 0);
}

static void server_close(struct server *v)
{
	ingest_free(v->in);
	srvlog_free(v->log);
	store_close(v->s);
}

static int64_t count(struct server *v, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n;

	ck_assert_int_eq(sqlite3_prepare_v2(v->s->r->db, sql, -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void suite_setup(void)
{
	struct capture_signer signer = {pk_a, sk_a, NULL, (uint64_t)NOW};
	struct changeset_envelope env;
	struct replica *r;
	struct capture *c;
	sqlite3_stmt *st;
	struct err e;
	uint8_t id[HASH_BYTES];
	char sql[256];
	int i, n;

	ck_assert_int_eq(sign_init(), BS_OK);
	snprintf(root, sizeof root, "/tmp/bs-ingest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	crypto_sign_keypair(pk_a, sk_a);
	crypto_sign_keypair(pk_b, sk_b);
	err_init(&e);
	ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &r, &e), 0);
	for (i = 0; i < NSETS; i++) {
		ck_assert_int_eq(capture_begin(r, &signer, &c, &e), 0);
		snprintf(sql, sizeof sql,
			 "INSERT INTO members(id, branch_id, name) VALUES"
			 "('m%d', 'b%d', 'member %d')", i, i % 2, i);
		ck_assert_int_eq(sqlite3_exec(r->db, sql, NULL, NULL, NULL),
				 SQLITE_OK);
		ck_assert_int_eq(capture_commit(c, &n, &e), 0);
		ck_assert_int_eq(n, 1);
		capture_free(c);
		signer.wall_ms += 10;
	}
	ck_assert_int_eq(sqlite3_prepare_v2(r->db, "SELECT bytes FROM bs_outbox"
					    " ORDER BY seq", -1, &st, NULL),
			 SQLITE_OK);
	for (i = 0; i < NSETS; i++) {
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		buf_init(&sets[i], CHANGESET_MAX_ENCODED);
		buf_append(&sets[i], sqlite3_column_blob(st, 0),
			   (size_t)sqlite3_column_bytes(st, 0));
	}
	sqlite3_finalize(st);
	replica_close(r);
	/* well signed, but its body is no SQLite changeset */
	memset(&env, 0, sizeof env);
	memcpy(env.author, pk_b, 32);
	env.seq = 1;
	env.hlc = hlc_pack((uint64_t)NOW, 0);
	snprintf(env.scope, sizeof env.scope, "b1");
	env.schema_version = SCHEMA_VERSION;
	buf_init(&bad, CHANGESET_MAX_ENCODED);
	ck_assert_int_eq(changeset_sign(&env, (const uint8_t *)"not a body", 10,
					sk_b, &bad, id),
			 BS_OK);
}

static void suite_teardown(void)
{
	char cmd[128];
	int i;

	for (i = 0; i < NSETS; i++)
		buf_release(&sets[i]);
	buf_release(&bad);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
}

/* items: A0, B's bad set, A1, A2 */
static size_t batch_items(struct ingest_item *items)
{
	ingest_item_init(&items[0], sets[0].data, sets[0].len);
	ingest_item_init(&items[1], bad.data, bad.len);
	ingest_item_init(&items[2], sets[1].data, sets[1].len);
	ingest_item_init(&items[3], sets[2].data, sets[2].len);
	return 4;
}

START_TEST(batch_equals_one_by_one)
{
	struct server x, y;
	struct ingest_item items[4];
	struct ingest_outcome a[4], b[4];
	struct checkpoint cp;
	struct err e;
	size_t n = batch_items(items), i;

	server_open(&x, "x");
	server_open(&y, "y");
	err_init(&e);
	ingest_prepare(items, n, 3);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(items[i].decoded, BS_OK);
		ck_assert_int_eq(items[i].sig_ok, 1);
		ck_assert_int_eq(items[i].has_leaf, 1);
	}
	ck_assert_int_eq(replica_begin(x.s->r, &e), 0);
	ck_assert_msg(ingest_batch(x.in, items, n, NOW, a, &e) == 0, "%s",
		      e.msg);
	ck_assert_int_eq(srvlog_checkpoint(x.log, NOW, &cp, &e), 0);
	ck_assert_int_eq(replica_commit(x.s->r, &e), 0);

	ck_assert_int_eq(replica_begin(y.s->r, &e), 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(ingest_changeset(y.in, items[i].bytes,
						  items[i].len, 0, NOW, &b[i],
						  &e),
				 0);
	ck_assert_int_eq(srvlog_checkpoint(y.log, NOW, &cp, &e), 0);
	ck_assert_int_eq(replica_commit(y.s->r, &e), 0);

	ck_assert_int_eq(a[0].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(a[1].status, VERDICT_REFUSED);
	ck_assert_int_eq(a[2].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(a[3].status, VERDICT_ACCEPTED);
	ck_assert_int_ne(a[1].reason[0], '\0');
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(a[i].status, b[i].status);
		ck_assert_str_eq(a[i].reason, b[i].reason);
		ck_assert_int_eq(a[i].logged, 1);
		ck_assert_uint_eq(a[i].index, b[i].index);
		ck_assert_mem_eq(a[i].id, b[i].id, HASH_BYTES);
	}
	/* the same log, entry for entry, and the same records */
	ck_assert_uint_eq(srvlog_size(x.log), srvlog_size(y.log));
	ck_assert_int_eq(count(&x, "SELECT count(*) FROM members"), 3);
	ck_assert_int_eq(count(&y, "SELECT count(*) FROM members"), 3);
	{
		sqlite3_stmt *sx, *sy;
		const char *q = "SELECT idx, leaf FROM srv_log ORDER BY idx";

		ck_assert_int_eq(sqlite3_prepare_v2(x.s->r->db, q, -1, &sx,
						    NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_prepare_v2(y.s->r->db, q, -1, &sy,
						    NULL), SQLITE_OK);
		while (sqlite3_step(sx) == SQLITE_ROW) {
			ck_assert_int_eq(sqlite3_step(sy), SQLITE_ROW);
			/* enrollments are signed with each server's key */
			if (sqlite3_column_int64(sx, 0) < 2)
				continue;
			ck_assert_mem_eq(sqlite3_column_blob(sx, 1),
					 sqlite3_column_blob(sy, 1), HASH_BYTES);
		}
		sqlite3_finalize(sx);
		sqlite3_finalize(sy);
	}
	/* the refusal took its place in B's chain */
	ck_assert_int_eq(count(&x, "SELECT last_seq FROM srv_devices WHERE"
			      " name='b'"), 1);
	/* again: duplicates, and the refusal stays one */
	ck_assert_int_eq(replica_begin(x.s->r, &e), 0);
	ck_assert_int_eq(ingest_batch(x.in, items, n, NOW, a, &e), 0);
	ck_assert_int_eq(replica_commit(x.s->r, &e), 0);
	ck_assert_int_eq(a[0].status, VERDICT_DUPLICATE);
	ck_assert_int_eq(a[1].status, VERDICT_REFUSED);
	ck_assert_str_eq(a[1].reason, "refused before; see the log entry");
	ck_assert_int_eq(a[3].status, VERDICT_DUPLICATE);
	ck_assert_uint_eq(srvlog_size(x.log), srvlog_size(y.log));
	server_close(&x);
	server_close(&y);
}
END_TEST

START_TEST(prepared_refusals)
{
	struct server x;
	struct ingest_item items[3];
	struct ingest_outcome o[3];
	struct buf forged, unsigned_;
	struct changeset cs;
	struct err e;

	server_open(&x, "p");
	buf_init(&forged, CHANGESET_MAX_ENCODED);
	buf_append(&forged, sets[3].data, sets[3].len);
	forged.data[forged.len - 1] ^= 1; /* the body: its hash fails */
	/* a signature that does not verify: one of its bytes flipped */
	buf_init(&unsigned_, CHANGESET_MAX_ENCODED);
	buf_append(&unsigned_, sets[0].data, sets[0].len);
	ck_assert_int_eq(changeset_decode(unsigned_.data, unsigned_.len, &cs),
			 BS_OK);
	unsigned_.data[cs.sig - unsigned_.data] ^= 1;
	ingest_item_init(&items[0], forged.data, forged.len);
	ingest_item_init(&items[1], unsigned_.data, unsigned_.len);
	ingest_item_init(&items[2], (const uint8_t *)"junk", 4);
	ingest_prepare(items, 3, 0);
	ck_assert_int_eq(items[0].decoded, BS_EHASH);
	ck_assert_int_eq(items[1].decoded, BS_OK);
	ck_assert_int_ne(items[2].decoded, BS_OK);
	ck_assert_int_eq(items[0].sig_ok, 0);
	ck_assert_int_eq(items[1].sig_ok, 0);
	ck_assert_int_eq(items[0].has_leaf, 0);
	ck_assert_int_eq(items[1].has_leaf, 0);
	err_init(&e);
	ck_assert_int_eq(replica_begin(x.s->r, &e), 0);
	ck_assert_int_eq(ingest_batch(x.in, items, 3, NOW, o, &e), 0);
	ck_assert_int_eq(replica_commit(x.s->r, &e), 0);
	ck_assert_int_eq(o[0].status, VERDICT_REFUSED);
	ck_assert_ptr_nonnull(strstr(o[0].reason, "malformed change set"));
	ck_assert_int_eq(o[1].status, VERDICT_REFUSED);
	ck_assert_str_eq(o[1].reason, "signature does not verify");
	ck_assert_int_eq(o[2].status, VERDICT_REFUSED);
	ck_assert_int_eq(o[0].logged + o[1].logged + o[2].logged, 0);
	ck_assert_uint_eq(srvlog_size(x.log), 2);
	buf_release(&forged);
	buf_release(&unsigned_);
	server_close(&x);
}
END_TEST

/* Every allocation of a batch fails in turn: each time nothing of it
 * stays and the transaction goes on; then it works, and A's local index
 * row, made by the merger in an attempt that was rolled back, is there. */
START_TEST(failed_batches_leave_nothing)
{
	struct server x;
	struct ingest_item items[4];
	struct ingest_outcome o[4];
	struct err e;
	size_t n = batch_items(items);
	int64_t log0;
	long k;
	int rc = -1, failures = 0;

	server_open(&x, "f");
	ingest_prepare(items, n, 0);
	log0 = count(&x, "SELECT count(*) FROM srv_log");
	err_init(&e);
	ck_assert_int_eq(replica_begin(x.s->r, &e), 0);
	for (k = 0; rc != 0 && k < 10000; k++) {
		err_init(&e);
		mem_fail_after(k);
		rc = ingest_batch(x.in, items, n, NOW, o, &e);
		mem_fail_reset();
		if (rc == 0)
			break;
		failures++;
		ck_assert_int_eq(sqlite3_get_autocommit(x.s->r->db), 0);
		ck_assert_int_eq(count(&x, "SELECT count(*) FROM srv_log"),
				 log0);
		ck_assert_int_eq(count(&x, "SELECT count(*) FROM members"), 0);
		ck_assert_int_eq(count(&x, "SELECT count(*) FROM bs_devices"),
				 0);
		ck_assert_int_eq(count(&x, "SELECT max(last_seq) FROM"
				       " srv_devices"), 0);
		ck_assert_uint_eq(srvlog_size(x.log), (uint64_t)log0);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_gt(failures, 3);
	ck_assert_int_eq(replica_commit(x.s->r, &e), 0);
	ck_assert_int_eq(o[0].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(o[1].status, VERDICT_REFUSED);
	ck_assert_int_eq(count(&x, "SELECT count(*) FROM members"), 3);
	ck_assert_int_eq(count(&x, "SELECT count(*) FROM bs_devices"), 1);
	ck_assert_int_eq(count(&x, "SELECT count(*) FROM srv_log"), log0 + 4);
	server_close(&x);
}
END_TEST

/* Preparing one batch while the caller does something else. */
START_TEST(prepare_in_the_background)
{
	struct ingest_item items[NSETS];
	struct ingest_prep *p;
	unsigned helpers;
	size_t i;

	for (helpers = 0; helpers <= 3; helpers++) {
		for (i = 0; i < NSETS; i++)
			ingest_item_init(&items[i], sets[i].data, sets[i].len);
		ingest_prepare_start(items, NSETS, helpers, &p);
		ingest_prepare_finish(p, items, NSETS);
		for (i = 0; i < NSETS; i++) {
			ck_assert_int_eq(items[i].decoded, BS_OK);
			ck_assert_int_eq(items[i].sig_ok, 1);
		}
	}
	/* without memory for the helpers' state: all done by the caller */
	for (i = 0; i < NSETS; i++)
		ingest_item_init(&items[i], sets[i].data, sets[i].len);
	mem_fail_after(0);
	ingest_prepare_start(items, NSETS, 2, &p);
	mem_fail_reset();
	ck_assert_ptr_null(p);
	ingest_prepare_finish(p, items, NSETS);
	for (i = 0; i < NSETS; i++)
		ck_assert_int_eq(items[i].sig_ok, 1);
}
END_TEST

static Suite *ingest_suite(void)
{
	Suite *s = suite_create("ingest");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_test(tc, batch_equals_one_by_one);
	tcase_add_test(tc, prepared_refusals);
	tcase_add_test(tc, failed_batches_leave_nothing);
	tcase_add_test(tc, prepare_in_the_background);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ingest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
