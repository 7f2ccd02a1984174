/* bench_capture.c - capture cost: 20,000 member rows written through the
 * real write path (validation, capture, signing, outbox, per cell clocks,
 * one transaction) beside plain SQLite inserts of the same rows
 * into the same tables with the same durability, measured in the same run.
 * Prints one JSON object per figure on stdout (scripts/bench.sh reads it).
 * Not a test: it asserts nothing about time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "capture.h"
#include "records.h"
#include "replica.h"
#include "schema.h"

#define ROWS 20000
#define RUNS 5

struct member {
	char id[40], branch[8], name[32], gender[8], birth[16], phone[16],
		status[12], city[16];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void make_rows(struct member *m)
{
	int i;

	for (i = 0; i < ROWS; i++) {
		snprintf(m[i].id, sizeof m[i].id, "%032x", i);
		snprintf(m[i].branch, sizeof m[i].branch, "b1");
		snprintf(m[i].name, sizeof m[i].name, "成员%d", i);
		snprintf(m[i].gender, sizeof m[i].gender, i % 2 ? "female" : "male");
		snprintf(m[i].birth, sizeof m[i].birth, "199%d-0%d-1%d", i % 10,
			 1 + i % 9, i % 10);
		snprintf(m[i].phone, sizeof m[i].phone, "1380000%04d", i % 10000);
		snprintf(m[i].status, sizeof m[i].status, i % 3 ? "active" : "away");
		snprintf(m[i].city, sizeof m[i].city, i % 3 ? "" : "深圳");
	}
}

static struct replica *fresh(const char *path)
{
	struct replica *r = NULL;
	struct err e;
	char side[600];

	unlink(path);
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", path);
	unlink(side);
	err_init(&e);
	if (replica_open(path, REPLICA_CREATE, &r, &e)) {
		fprintf(stderr, "bench: %s\n", e.msg);
		exit(1);
	}
	return r;
}

/* The baseline: one prepared INSERT per row, one transaction. */
static double plain_inserts(const char *path, const struct member *m)
{
	struct replica *r = fresh(path);
	sqlite3_stmt *st;
	double t0 = now_s();
	int i;

	sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
	sqlite3_prepare_v2(r->db,
		"INSERT INTO members(id, branch_id, name, gender, birth_date,"
		" phone, status, away_city) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7,"
		" ?8)", -1, &st, NULL);
	for (i = 0; i < ROWS; i++) {
		sqlite3_bind_text(st, 1, m[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, m[i].branch, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, m[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, m[i].gender, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, m[i].birth, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, m[i].phone, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, m[i].status, -1, SQLITE_STATIC);
		if (m[i].city[0])
			sqlite3_bind_text(st, 8, m[i].city, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 8);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	t0 = now_s() - t0;
	replica_close(r);
	return t0;
}

/* The real path, as import-csv runs it: validate, write, capture, sign. */
static double captured_inserts(const char *path, const struct member *m,
			       long long *outbox_bytes)
{
	struct replica *r = fresh(path);
	const struct schema_table *t = schema_table_find("members");
	uint8_t pk[32], sk[64];
	struct capture_signer signer = {pk, sk, NULL, 1790000000000ull};
	struct capture *c = NULL;
	struct records *rs = NULL;
	struct records_row row;
	sqlite3_stmt *st;
	struct err e;
	double t0;
	int i, count;

	crypto_sign_keypair(pk, sk);
	err_init(&e);
	t0 = now_s();
	if (capture_begin(r, &signer, &c, &e) || records_new(r->db, &rs, &e))
		goto fail;
	records_set_capture(rs, c);
	for (i = 0; i < ROWS; i++) {
		records_row_init(&row, t);
		if (records_row_set(&row, "branch_id", m[i].branch, strlen(m[i].branch), &e) ||
		    records_row_set(&row, "name", m[i].name, strlen(m[i].name), &e) ||
		    records_row_set(&row, "gender", m[i].gender, strlen(m[i].gender), &e) ||
		    records_row_set(&row, "birth_date", m[i].birth, strlen(m[i].birth), &e) ||
		    records_row_set(&row, "phone", m[i].phone, strlen(m[i].phone), &e) ||
		    records_row_set(&row, "status", m[i].status, strlen(m[i].status), &e) ||
		    records_row_set(&row, "away_city", m[i].city, strlen(m[i].city), &e) ||
		    records_insert(rs, m[i].id, &row, &e))
			goto fail;
		records_row_clear(&row);
	}
	if (capture_commit(c, &count, &e))
		goto fail;
	t0 = now_s() - t0;
	records_free(rs);
	capture_free(c);
	sqlite3_prepare_v2(r->db, "SELECT sum(length(bytes)) FROM bs_outbox", -1,
			   &st, NULL);
	sqlite3_step(st);
	*outbox_bytes = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	replica_close(r);
	return t0;
fail:
	fprintf(stderr, "bench: %s\n", e.msg);
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	struct member *m = calloc(ROWS, sizeof *m);
	double plain[RUNS], cap[RUNS];
	char p1[512], p2[512];
	long long bytes = 0;
	int i;

	if (!m || sodium_init() < 0)
		return 1;
	make_rows(m);
	snprintf(p1, sizeof p1, "%s/bench-plain.db", dir);
	snprintf(p2, sizeof p2, "%s/bench-capture.db", dir);
	for (i = 0; i < RUNS; i++) {
		plain[i] = plain_inserts(p1, m);
		cap[i] = captured_inserts(p2, m, &bytes);
	}
	qsort(plain, RUNS, sizeof plain[0], cmp_double);
	qsort(cap, RUNS, sizeof cap[0], cmp_double);
	printf("{\"figure\": \"capture of 20,000 member writes\", "
	       "\"value\": %.3f, \"unit\": \"s\", \"baseline\": %.3f, "
	       "\"baseline_name\": \"plain SQLite inserts of the same rows\", "
	       "\"ratio\": %.2f, \"goal\": \"<= 3x\", \"ok\": %s}\n",
	       cap[RUNS / 2], plain[RUNS / 2], cap[RUNS / 2] / plain[RUNS / 2],
	       cap[RUNS / 2] <= 3 * plain[RUNS / 2] ? "true" : "false");
	printf("{\"figure\": \"outbox bytes per member\", \"value\": %.1f, "
	       "\"unit\": \"B\", \"baseline\": null, \"baseline_name\": \"\", "
	       "\"ratio\": null, \"goal\": \"report\", \"ok\": true}\n",
	       (double)bytes / ROWS);
	unlink(p1);
	unlink(p2);
	free(m);
	return 0;
}
