/* bench_ingest.c - server ingest: pre-signed change sets of 10 member rows
 * each go through the server's whole ingest (decode, signature, device and
 * chain checks, policy with the body walk, log append with Merkle nodes,
 * merge into the consolidated tables, a signed checkpoint per batch of 100
 * sets, durable commits) beside raw SQLite inserts of the same rows in
 * batches of the same size, measured in the same run. The batches are
 * served as branchsyncd serves pushes that keep coming: a push's
 * signatures are checked while the one before it is ingested. One JSON
 * object per figure on stdout. Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "capture.h"
#include "clock.h"
#include "ingest.h"
#include "mem.h"
#include "srvlog.h"
#include "store.h"

#define SETS 3000
#define ROWS_PER_SET 10
#define BATCH 100
#define RUNS 3

struct sets {
	uint8_t *bytes[SETS];
	size_t len[SETS];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const struct err *e)
{
	fprintf(stderr, "bench: %s\n", e->msg);
	exit(1);
}

/* Signs SETS change sets of ROWS_PER_SET inserts on a scratch replica. */
static void make_sets(const uint8_t *pk, const uint8_t *sk, struct sets *out)
{
	struct replica *r = NULL;
	struct capture_signer signer = {pk, sk, NULL, 1790000000000ull};
	struct capture *c = NULL;
	sqlite3_stmt *st;
	struct err e;
	char sql[512];
	int i, j, n = 0, count;

	err_init(&e);
	if (replica_open(":memory:", REPLICA_MEMORY, &r, &e))
		die(&e);
	for (i = 0; i < SETS; i++) {
		if (capture_begin(r, &signer, &c, &e))
			die(&e);
		for (j = 0; j < ROWS_PER_SET; j++, n++) {
			snprintf(sql, sizeof sql,
				 "INSERT INTO members(id, branch_id, name, gender,"
				 " birth_date, status) VALUES('%032x', 'b%d',"
				 " 'member %d', 'female', '1999-03-1%d', 'active')",
				 n, i % 50, n, n % 10);
			sqlite3_exec(r->db, sql, NULL, NULL, NULL);
		}
		if (capture_commit(c, &count, &e))
			die(&e);
		capture_free(c);
		signer.wall_ms += 10;
	}
	sqlite3_prepare_v2(r->db, "SELECT bytes FROM bs_outbox ORDER BY seq", -1,
			   &st, NULL);
	for (i = 0; i < SETS && sqlite3_step(st) == SQLITE_ROW; i++) {
		out->len[i] = (size_t)sqlite3_column_bytes(st, 0);
		out->bytes[i] = mem_alloc(out->len[i]);
		memcpy(out->bytes[i], sqlite3_column_blob(st, 0), out->len[i]);
	}
	sqlite3_finalize(st);
	replica_close(r);
}

static double ingest_run(const char *dir, const uint8_t *dev_pk,
			 const struct sets *sets)
{
	static struct ingest_item items[SETS];
	static struct ingest_outcome outs[BATCH];
	struct store *s = NULL;
	struct srvlog *log = NULL;
	struct ingest *in = NULL;
	struct ingest_prep *prep = NULL;
	struct checkpoint cp;
	uint8_t *en = NULL;
	size_t en_len;
	uint64_t idx;
	struct err e;
	char cmd[600];
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned helpers = cores > 1 ? (unsigned)cores - 1 : 1;
	double t0;
	int i, j;

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		exit(1);
	err_init(&e);
	if (store_init(dir, "Bench", NULL, &s, &e) || store_unlock(s, NULL, &e) ||
	    srvlog_open(s, &log, &e) || ingest_new(s, log, &in, &e) ||
	    replica_begin(s->r, &e) ||
	    ingest_enroll(in, dev_pk, ROLE_DISTRICT, "district", "bench",
			  (int64_t)clock_wall_ms(), &en, &en_len, &idx, &e) ||
	    srvlog_checkpoint(log, (int64_t)clock_wall_ms(), &cp, &e) ||
	    replica_commit(s->r, &e))
		die(&e);
	mem_free(en);
	for (i = 0; i < SETS; i++)
		ingest_item_init(&items[i], sets->bytes[i], sets->len[i]);
	t0 = now_s();
	/* as the server serves pushes of BATCH sets that keep coming: each
	 * push's sets are decoded and their signatures verified in its own
	 * request's thread, on the cores the ingest of the push before it
	 * leaves free, then ingested in one durable transaction */
	ingest_prepare(items, BATCH, 0);
	for (i = 0; i < SETS; i += BATCH) {
		if (i + BATCH < SETS)
			ingest_prepare_start(items + i + BATCH, BATCH, helpers,
					     &prep);
		if (replica_begin(s->r, &e) ||
		    ingest_batch(in, items + i, BATCH, (int64_t)clock_wall_ms(),
				 outs, &e))
			die(&e);
		for (j = 0; j < BATCH; j++)
			if (outs[j].status != VERDICT_ACCEPTED) {
				fprintf(stderr, "bench: set %d refused: %s\n",
					i + j, outs[j].reason);
				exit(1);
			}
		if (srvlog_checkpoint(log, (int64_t)clock_wall_ms(), &cp, &e) ||
		    replica_commit(s->r, &e))
			die(&e);
		if (i + BATCH < SETS)
			ingest_prepare_finish(prep, items + i + BATCH, BATCH);
	}
	t0 = now_s() - t0;
	ingest_free(in);
	srvlog_free(log);
	store_close(s);
	return t0;
}

static double raw_run(const char *path)
{
	struct replica *r = NULL;
	sqlite3_stmt *st;
	struct err e;
	char side[600], id[40], name[40];
	double t0;
	int i, n = SETS * ROWS_PER_SET;

	unlink(path);
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	err_init(&e);
	if (replica_open(path, REPLICA_CREATE, &r, &e))
		die(&e);
	sqlite3_prepare_v2(r->db,
		"INSERT INTO members(id, branch_id, name, gender, birth_date,"
		" status) VALUES(?1, ?2, ?3, 'female', '1999-03-11', 'active')",
		-1, &st, NULL);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		if (i % (BATCH * ROWS_PER_SET) == 0)
			sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
		snprintf(id, sizeof id, "%032x", i);
		snprintf(name, sizeof name, "member %d", i);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, "b1", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
		sqlite3_step(st);
		sqlite3_reset(st);
		if ((i + 1) % (BATCH * ROWS_PER_SET) == 0)
			sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	}
	t0 = now_s() - t0;
	sqlite3_finalize(st);
	replica_close(r);
	unlink(path);
	return t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	static struct sets sets;
	uint8_t pk[32], sk[64];
	double ing[RUNS], raw[RUNS], rows = SETS * ROWS_PER_SET, a, b;
	char d1[512], d2[512];
	int i;

	store_global_init(); /* as branchsyncd does, before any SQLite use */
	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	make_sets(pk, sk, &sets);
	snprintf(d1, sizeof d1, "%s/bench-ingest", dir);
	snprintf(d2, sizeof d2, "%s/bench-raw.db", dir);
	for (i = 0; i < RUNS; i++) {
		ing[i] = ingest_run(d1, pk, &sets);
		raw[i] = raw_run(d2);
	}
	qsort(ing, RUNS, sizeof ing[0], cmp_double);
	qsort(raw, RUNS, sizeof raw[0], cmp_double);
	a = rows / ing[RUNS / 2];
	b = rows / raw[RUNS / 2];
	printf("{\"figure\": \"server ingest, row changes/s (sets of 10 rows)\", "
	       "\"value\": %.0f, \"unit\": \"rows/s\", \"baseline\": %.0f, "
	       "\"baseline_name\": \"raw SQLite inserts of the same rows\", "
	       "\"ratio\": %.3f, \"goal\": \">= 100000/s and >= 20%% of raw\", "
	       "\"ok\": %s}\n", a, b, a / b,
	       a >= 100000 && a >= 0.2 * b ? "true" : "false");
	for (i = 0; i < SETS; i++)
		mem_free(sets.bytes[i]);
	{
		char cmd[600];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", d1);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}
