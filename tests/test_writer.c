/* test_writer.c - Check suite 'writer' for server/writer: pushes from many
 * threads at once are all committed, each with its verdicts and a
 * checkpoint covering it; a transaction of the caller's own goes between
 * groups; contact times are written by the writer, at the latest when it
 * is freed. A real data directory in a temporary folder. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "capture.h"
#include "ingest.h"
#include "mem.h"
#include "srvlog.h"
#include "store.h"
#include "writer.h"

#define NOW INT64_C(1790000000000)
#define DEVICES 6
#define PUSHES 15 /* per device, one change set each */

struct device {
	uint8_t pk[32], sk[64];
	struct buf sets[PUSHES];
};

static char root[64];
static struct device devs[DEVICES];

static void suite_setup(void)
{
	struct replica *r;
	struct capture *c;
	sqlite3_stmt *st;
	struct err e;
	char sql[256];
	int d, i, n;

	ck_assert_int_eq(sign_init(), BS_OK);
	snprintf(root, sizeof root, "/tmp/bs-writer-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	err_init(&e);
	for (d = 0; d < DEVICES; d++) {
		struct capture_signer signer = {devs[d].pk, devs[d].sk, NULL,
						(uint64_t)NOW};

		crypto_sign_keypair(devs[d].pk, devs[d].sk);
		ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &r,
					      &e),
				 0);
		for (i = 0; i < PUSHES; i++) {
			ck_assert_int_eq(capture_begin(r, &signer, &c, &e), 0);
			snprintf(sql, sizeof sql,
				 "INSERT INTO members(id, branch_id, name) VALUES"
				 "('d%dm%d', 'b1', 'member %d')", d, i, i);
			ck_assert_int_eq(sqlite3_exec(r->db, sql, NULL, NULL,
						      NULL),
					 SQLITE_OK);
			ck_assert_int_eq(capture_commit(c, &n, &e), 0);
			capture_free(c);
			signer.wall_ms++;
		}
		ck_assert_int_eq(sqlite3_prepare_v2(r->db, "SELECT bytes FROM"
						    " bs_outbox ORDER BY seq",
						    -1, &st, NULL),
				 SQLITE_OK);
		for (i = 0; i < PUSHES; i++) {
			ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
			buf_init(&devs[d].sets[i], CHANGESET_MAX_ENCODED);
			buf_append(&devs[d].sets[i], sqlite3_column_blob(st, 0),
				   (size_t)sqlite3_column_bytes(st, 0));
		}
		sqlite3_finalize(st);
		replica_close(r);
	}
}

static void suite_teardown(void)
{
	char cmd[128];
	int d, i;

	for (d = 0; d < DEVICES; d++)
		for (i = 0; i < PUSHES; i++)
			buf_release(&devs[d].sets[i]);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
}

struct server {
	char dir[80];
	struct store *s;
	struct srvlog *log;
	struct ingest *in;
	struct writer *w;
};

static void server_open(struct server *v, const char *name)
{
	struct checkpoint cp;
	struct err e;
	uint8_t *en;
	size_t len;
	uint64_t idx;
	int d;

	snprintf(v->dir, sizeof v->dir, "%s/%s", root, name);
	err_init(&e);
	ck_assert_int_eq(store_init(v->dir, "Test", NULL, &v->s, &e), 0);
	ck_assert_int_eq(store_unlock(v->s, NULL, &e), 0);
	ck_assert_int_eq(srvlog_open(v->s, &v->log, &e), 0);
	ck_assert_int_eq(ingest_new(v->s, v->log, &v->in, &e), 0);
	ck_assert_int_eq(replica_begin(v->s->r, &e), 0);
	for (d = 0; d < DEVICES; d++) {
		ck_assert_int_eq(ingest_enroll(v->in, devs[d].pk, ROLE_DISTRICT,
					       "district", "d", NOW, &en, &len,
					       &idx, &e),
				 0);
		mem_free(en);
	}
	ck_assert_int_eq(srvlog_checkpoint(v->log, NOW, &cp, &e), 0);
	ck_assert_int_eq(replica_commit(v->s->r, &e), 0);
	ck_assert_int_eq(writer_new(v->s, v->log, v->in, &v->w, &e), 0);
}

static void server_close(struct server *v)
{
	writer_free(v->w);
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

struct pusher {
	struct server *v;
	int d;
	int bad; /* pushes not accepted or with a wrong checkpoint */
};

static void *pusher_run(void *arg)
{
	struct pusher *p = arg;
	struct ingest_item it;
	struct ingest_outcome o;
	struct checkpoint cp;
	struct err e;
	int i;

	for (i = 0; i < PUSHES; i++) {
		ingest_item_init(&it, devs[p->d].sets[i].data,
				 devs[p->d].sets[i].len);
		ingest_prepare(&it, 1, 1);
		err_init(&e);
		if (writer_push(p->v->w, &it, 1, &o, &cp, &e) != 0 ||
		    o.status != VERDICT_ACCEPTED || !o.logged ||
		    cp.size <= o.index)
			p->bad++;
	}
	return NULL;
}

START_TEST(pushes_from_threads)
{
	struct server v;
	struct pusher p[DEVICES];
	pthread_t t[DEVICES];
	int d;

	server_open(&v, "threads");
	for (d = 0; d < DEVICES; d++) {
		p[d] = (struct pusher){&v, d, 0};
		ck_assert_int_eq(pthread_create(&t[d], NULL, pusher_run, &p[d]),
				 0);
	}
	for (d = 0; d < DEVICES; d++) {
		ck_assert_int_eq(pthread_join(t[d], NULL), 0);
		ck_assert_int_eq(p[d].bad, 0);
	}
	server_close(&v);
	/* reopened: everything is in the database */
	{
		struct store *s;
		struct srvlog *l;
		struct checkpoint cp;
		struct err e;

		err_init(&e);
		ck_assert_int_eq(store_open(v.dir, &s, &e), 0);
		ck_assert_int_eq(srvlog_open(s, &l, &e), 0);
		ck_assert_uint_eq(srvlog_size(l), DEVICES + DEVICES * PUSHES);
		ck_assert_int_eq(srvlog_checkpoint_get(l, -1, &cp, &e), 0);
		ck_assert_uint_eq(cp.size, srvlog_size(l));
		srvlog_free(l);
		store_close(s);
	}
}
END_TEST

/* A transaction of the caller's own (as an enrollment's) between pushes,
 * and contact times written at the latest when the writer is freed. */
START_TEST(own_transaction_and_contacts)
{
	struct server v;
	struct pusher p = {NULL, 0, 0};
	struct store_device d;
	pthread_t t;
	struct err e;
	char hex[65];
	int i;

	server_open(&v, "own");
	p.v = &v;
	ck_assert_int_eq(pthread_create(&t, NULL, pusher_run, &p), 0);
	err_init(&e);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(writer_begin(v.w, &e), 0);
		ck_assert_int_eq(store_token_make(v.s, ROLE_BRANCH, "b1",
						  NOW + 1000, hex, &e),
				 0);
		if (i % 2)
			writer_abort(v.w);
		else
			ck_assert_int_eq(writer_commit(v.w, &e), 0);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(p.bad, 0);
	ck_assert_int_eq(count(&v, "SELECT count(*) FROM srv_tokens"), 3);
	store_device_touch(v.s, devs[1].pk, NOW + 5, &e);
	writer_free(v.w);
	v.w = NULL;
	ck_assert_int_eq(store_device_get(v.s, devs[1].pk, &d, &e), 1);
	ck_assert_int_eq(d.last_seen_ms, NOW + 5);
	server_close(&v);
}
END_TEST

static Suite *writer_suite(void)
{
	Suite *s = suite_create("writer");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_test(tc, pushes_from_threads);
	tcase_add_test(tc, own_transaction_and_contacts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(writer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
