/* bench_sync_initial.c - the first sync of a fresh branch device: 20,000
 * members are imported on one device of the branch and pushed to a real
 * branchsyncd on loopback; then new devices of the same branch enroll and
 * run `branchsync sync`. Its wall time (straight to the server) beside
 * importing the same rows into an empty replica, and its bytes on the wire
 * (through the counting relay, tests/faultproxy, HTTP headers included)
 * beside the change sets' own bytes. One JSON object per figure on stdout
 * (scripts/bench.sh). Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchsync.h"

#define MEMBERS 20000
#define RUNS 5
#define WIRE_RUNS 3


/* Seconds of import-csv of the file into a new, unenrolled replica. */
static double import_time(const char *csv, int run)
{
	char db[BENCHSYNC_PATH], name[32];
	struct benchsync_run r;
	double t;

	snprintf(name, sizeof name, "plain%d.db", run);
	benchsync_path(db, sizeof db, name);
	r = benchsync_bs("init", "--db", db, "--no-passphrase", "--branch",
			 "b1", NULL);
	benchsync_expect_ok(&r, "branchsync init");
	benchsync_run_free(&r);
	r = benchsync_bs("import-csv", "--db", db, "members", csv, NULL);
	benchsync_expect_ok(&r, "branchsync import-csv");
	t = r.seconds;
	benchsync_run_free(&r);
	remove(db);
	return t;
}

static void expect_members(const char *db)
{
	long long n = benchsync_db_int(db, "SELECT count(*) FROM members");

	if (n != MEMBERS)
		benchsync_die("%s holds %lld members after its first sync,"
			      " not %d", db, n, MEMBERS);
}

int main(int argc, char **argv)
{
	struct benchsync_server s;
	struct benchsync_run r;
	struct benchsync_wire w;
	char src[BENCHSYNC_PATH], db[BENCHSYNC_PATH], csv[BENCHSYNC_PATH];
	char name[32];
	double t[RUNS], base[RUNS], bytes[WIRE_RUNS], own, v;
	int i;

	benchsync_start(argc > 1 ? argv[1] : "/tmp", "bench-sync-initial");
	benchsync_server_start(&s, "srv", 1);
	benchsync_device(&s, "source", "b1", src, sizeof src);
	benchsync_path(csv, sizeof csv, "members.csv");
	benchsync_members_csv(csv, 0, MEMBERS);
	r = benchsync_bs("import-csv", "--db", src, "members", csv, NULL);
	benchsync_expect_ok(&r, "branchsync import-csv");
	benchsync_run_free(&r);
	own = (double)benchsync_db_int(src, "SELECT sum(length(bytes)) FROM"
				       " bs_outbox");
	r = benchsync_sync(src);
	benchsync_run_free(&r);

	for (i = 0; i < RUNS; i++) {
		base[i] = import_time(csv, i);
		snprintf(name, sizeof name, "fresh%d", i);
		benchsync_device(&s, name, "b1", db, sizeof db);
		r = benchsync_sync(db);
		t[i] = r.seconds;
		benchsync_run_free(&r);
		expect_members(db);
		remove(db);
	}
	for (i = 0; i < WIRE_RUNS; i++) {
		snprintf(name, sizeof name, "counted%d", i);
		benchsync_device(&s, name, "b1", db, sizeof db);
		r = benchsync_sync_counted(&s, db, &w);
		benchsync_run_free(&r);
		bytes[i] = (double)(w.up + w.down);
		expect_members(db);
		remove(db);
	}
	v = benchsync_median(t, RUNS);
	benchsync_figure("initial sync, fresh device of a 20,000-member "
			 "branch: time", v, "s", benchsync_median(base, RUNS),
			 "import-csv of the same rows into an empty replica",
			 "<= 3 s on loopback", v <= 3.0);
	benchsync_figure("initial sync, fresh device of a 20,000-member "
			 "branch: wire bytes", benchsync_median(bytes, WIRE_RUNS),
			 "B", own, "the branch's change sets' own bytes",
			 "report", 1);
	benchsync_server_stop(&s);
	return 0;
}
