/* bench_sync_memory.c - the client's peak memory in big syncs: a branch
 * device imports 100,000 member rows in 4 imports (rows are the changes)
 * and pushes them with `branchsync sync` to a real branchsyncd on
 * loopback; then a fresh device of the branch pulls them; the same again
 * with the rows in one import (the largest change sets the importer
 * makes). Peak RSS of each sync process (wait4's ru_maxrss, the child's
 * own) beside that of a no-op sync of the same program. One JSON object
 * per figure on stdout (scripts/bench.sh). Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchsync.h"

#define CHANGES 100000
#define IMPORTS 4
#define RUNS 3
#define GOAL_MB 32.0

static double mb(long kb)
{
	return (double)kb * 1024.0 / 1e6;
}


static void expect_members(const char *db)
{
	long long n = benchsync_db_int(db, "SELECT count(*) FROM members");

	if (n != CHANGES)
		benchsync_die("%s holds %lld members, not %d", db, n, CHANGES);
}

/* Peak RSS of one case, median of RUNS: `imports` imports of the
 * 100,000 rows pushed by one device, pulled by a fresh one, and a no-op
 * sync after; each run on a branch of its own, so that each pull is
 * exactly those rows. *largest gets the largest change set's bytes. */
static void measure(const struct benchsync_server *s, int imports,
		    int *branch, double *push, double *pull, double *idle,
		    double *largest)
{
	char p[BENCHSYNC_PATH], q[BENCHSYNC_PATH], csv[BENCHSYNC_PATH];
	char name[32], scope[16];
	double vpush[RUNS], vpull[RUNS], vidle[RUNS], big[RUNS];
	struct benchsync_run r;
	long long sets;
	int i, k;

	benchsync_path(csv, sizeof csv, "members.csv");
	for (i = 0; i < RUNS; i++) {
		snprintf(scope, sizeof scope, "b%d", ++*branch);
		snprintf(name, sizeof name, "pusher%d", *branch);
		benchsync_device(s, name, scope, p, sizeof p);
		for (k = 0; k < imports; k++) {
			benchsync_members_csv(csv, k * (CHANGES / imports),
					      CHANGES / imports);
			r = benchsync_bs("import-csv", "--db", p, "members", csv,
					 NULL);
			benchsync_expect_ok(&r, "branchsync import-csv");
			benchsync_run_free(&r);
		}
		expect_members(p);
		sets = benchsync_db_int(p, "SELECT count(*) FROM bs_outbox"
					" WHERE acked=0");
		big[i] = (double)benchsync_db_int(p, "SELECT max(length(bytes))"
						  " FROM bs_outbox");
		r = benchsync_sync(p);
		if (benchsync_json_int(r.out, "pushed") != sets)
			benchsync_die("the push was not whole: %s", r.out);
		vpush[i] = mb(r.maxrss_kb);
		benchsync_run_free(&r);

		snprintf(name, sizeof name, "puller%d", *branch);
		benchsync_device(s, name, scope, q, sizeof q);
		r = benchsync_sync(q);
		vpull[i] = mb(r.maxrss_kb);
		benchsync_run_free(&r);
		expect_members(q);
		r = benchsync_sync(q);
		if (benchsync_json_int(r.out, "pulled") != 0)
			benchsync_die("the second sync was not a no-op: %s",
				      r.out);
		vidle[i] = mb(r.maxrss_kb);
		benchsync_run_free(&r);
		remove(p);
		remove(q);
	}
	*push = benchsync_median(vpush, RUNS);
	*pull = benchsync_median(vpull, RUNS);
	*idle = benchsync_median(vidle, RUNS);
	*largest = benchsync_median(big, RUNS) / 1e6;
}

static void figure(const char *what, const char *how, double largest,
		   double v, double idle)
{
	char name[160];

	snprintf(name, sizeof name, "client peak RSS, %s 100,000 changes "
		 "(%s, sets <= %.1f MB)", what, how, largest);
	benchsync_figure(name, v, "MB", idle,
			 "a no-op sync (the process's floor)",
			 "<= 32 MB (10^6 B)", v <= GOAL_MB);
}

int main(int argc, char **argv)
{
	struct benchsync_server s;
	double push[2], pull[2], idle[2], largest[2];
	int branch = 0;

	benchsync_start(argc > 1 ? argv[1] : "/tmp", "bench-sync-memory");
	benchsync_server_start(&s, "srv", 2 * RUNS);
	/* several imports, as the rows of a week might come; then one, which
	 * makes the largest change sets the importer makes (~4 MiB of
	 * values each): the client holds a whole set at a time */
	measure(&s, IMPORTS, &branch, &push[0], &pull[0], &idle[0],
		&largest[0]);
	measure(&s, 1, &branch, &push[1], &pull[1], &idle[1], &largest[1]);
	figure("push of", "4 imports", largest[0], push[0], idle[0]);
	figure("fresh device pull of", "4 imports", largest[0], pull[0],
	       idle[0]);
	figure("push of", "1 import", largest[1], push[1], idle[1]);
	figure("fresh device pull of", "1 import", largest[1], pull[1],
	       idle[1]);
	benchsync_server_stop(&s);
	return 0;
}
