/* bench_sync_wire.c - bytes on the wire of small syncs, counted by a relay
 * (tests/faultproxy) between a real branchsync and a real branchsyncd on
 * loopback, both directions, HTTP headers included: one one-cell edit
 * (its sync, and another device of the branch pulling it), the change
 * set's own size, and 1,000 one-cell edits made by 1,000 put commands or
 * by one import. Each beside the change sets' own bytes. One JSON object
 * per figure on stdout (scripts/bench.sh). Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchsync.h"
#include "changeset.h"

#include <sqlite3.h>

#define MEMBERS 1000 /* members of the branch; also the edits of figure 2 */
#define RUNS 5       /* one-edit runs */
#define BULK_RUNS 3  /* runs of 1,000 edits */

static char ids[MEMBERS][33]; /* the members' ids: what the edits change */

/* Total bytes of the pending change sets; with `body`, also of their
 * SQLite session bodies alone. */
static long long pending_bytes(const char *db_path, long long *body)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long total = 0;
	struct changeset cs;

	if (body)
		*body = 0;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT bytes FROM bs_outbox WHERE acked=0",
			       -1, &st, NULL) != SQLITE_OK)
		benchsync_die("cannot read the outbox of %s", db_path);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 0);
		int n = sqlite3_column_bytes(st, 0);

		total += n;
		if (body) {
			if (changeset_decode(p, (size_t)n, &cs) != BS_OK)
				benchsync_die("undecodable change set in %s",
					      db_path);
			*body += (long long)cs.body_len;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return total;
}

static long long pending_count(const char *db)
{
	return benchsync_db_int(db, "SELECT count(*) FROM bs_outbox WHERE"
				" acked=0");
}

static void put_phone(const char *db, int member, long long phone)
{
	char value[32];
	struct benchsync_run r;

	snprintf(value, sizeof value, "phone=%lld", phone);
	r = benchsync_bs("put", "--db", db, "members", "--id", ids[member],
			 value, NULL);
	benchsync_expect_ok(&r, "branchsync put");
	benchsync_run_free(&r);
}

/* A sync through the relay that must push `pushed` change sets and merge
 * `applied`; returns its bytes both ways. */
static double counted(const struct benchsync_server *s, const char *db,
		      long long pushed, long long applied)
{
	struct benchsync_wire w;
	struct benchsync_run r = benchsync_sync_counted(s, db, &w);

	if (benchsync_json_int(r.out, "pushed") != pushed ||
	    benchsync_json_int(r.out, "applied") != applied)
		benchsync_die("unexpected sync: %s (wanted %lld pushed, %lld"
			      " applied)", r.out, pushed, applied);
	benchsync_run_free(&r);
	return (double)(w.up + w.down);
}

int main(int argc, char **argv)
{
	struct benchsync_server s;
	struct benchsync_run r;
	char a[BENCHSYNC_PATH], b[BENCHSYNC_PATH], csv[BENCHSYNC_PATH];
	double one[RUNS], pulled[RUNS], cs_len[RUNS], body_len[RUNS];
	double puts[BULK_RUNS], puts_cs[BULK_RUNS];
	double imp[BULK_RUNS], imp_cs[BULK_RUNS], v, base;
	long long body;
	int i, k;

	benchsync_start(argc > 1 ? argv[1] : "/tmp", "bench-sync-wire");
	benchsync_server_start(&s, "srv", 1);
	benchsync_device(&s, "a", "b1", a, sizeof a);
	benchsync_device(&s, "b", "b1", b, sizeof b);
	benchsync_path(csv, sizeof csv, "members.csv");
	benchsync_members_csv(csv, 0, MEMBERS);
	r = benchsync_bs("import-csv", "--db", a, "members", csv, NULL);
	benchsync_expect_ok(&r, "branchsync import-csv");
	benchsync_run_free(&r);
	benchsync_member_ids(a, ids, MEMBERS);
	r = benchsync_sync(a);
	benchsync_run_free(&r);
	r = benchsync_sync(b);
	benchsync_run_free(&r);

	/* 1: one cell of an existing member, synced; b then pulls it */
	for (i = 0; i < RUNS; i++) {
		put_phone(a, 0, 13900000000LL + i);
		if (pending_count(a) != 1)
			benchsync_die("the edit did not make one change set");
		cs_len[i] = (double)pending_bytes(a, &body);
		body_len[i] = (double)body;
		one[i] = counted(&s, a, 1, 0);
		pulled[i] = counted(&s, b, 0, 1);
	}
	v = benchsync_median(one, RUNS);
	base = benchsync_median(cs_len, RUNS);
	benchsync_figure("wire bytes, 1 one-cell edit synced (push+pull, "
			 "HTTP incl.)", v, "B", base,
			 "the change set's own bytes", "report", 1);
	benchsync_figure("wire bytes, that edit pulled by another device",
			 benchsync_median(pulled, RUNS), "B", base,
			 "the change set's own bytes", "report", 1);
	benchsync_figure("change set of 1 one-cell edit (signature incl.)",
			 base, "B", benchsync_median(body_len, RUNS),
			 "its SQLite session changeset body alone",
			 "<= 300 B", base <= 300);

	/* 2: 1,000 one-cell edits, by 1,000 put commands or by one import */
	for (k = 0; k < BULK_RUNS; k++) {
		FILE *f;

		for (i = 0; i < MEMBERS; i++)
			put_phone(a, i, 13700000000LL + k * 100000LL + i);
		if (pending_count(a) != MEMBERS)
			benchsync_die("the puts did not make %d change sets",
				      MEMBERS);
		puts_cs[k] = (double)pending_bytes(a, NULL);
		puts[k] = counted(&s, a, MEMBERS, 0);

		f = fopen(csv, "w");
		if (!f)
			benchsync_die("cannot write %s", csv);
		fputs("id,phone\n", f);
		for (i = 0; i < MEMBERS; i++)
			fprintf(f, "%s,1360%07d\n", ids[i], k * 100000 + i);
		if (fclose(f) != 0)
			benchsync_die("cannot write %s", csv);
		r = benchsync_bs("import-csv", "--db", a, "members", csv, NULL);
		benchsync_expect_ok(&r, "branchsync import-csv");
		benchsync_run_free(&r);
		if (pending_count(a) != 1)
			benchsync_die("the import did not make one change set");
		imp_cs[k] = (double)pending_bytes(a, NULL);
		imp[k] = counted(&s, a, 1, 0);
	}
	benchsync_figure("wire bytes, 1,000 one-cell edits by 1,000 puts, "
			 "1 sync", benchsync_median(puts, BULK_RUNS), "B",
			 benchsync_median(puts_cs, BULK_RUNS),
			 "the change sets' own bytes", "report", 1);
	benchsync_figure("wire bytes, 1,000 one-cell edits by 1 import, "
			 "1 sync", benchsync_median(imp, BULK_RUNS), "B",
			 benchsync_median(imp_cs, BULK_RUNS),
			 "the change set's own bytes", "report", 1);
	benchsync_server_stop(&s);
	return 0;
}
