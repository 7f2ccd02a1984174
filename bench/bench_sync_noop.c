/* bench_sync_noop.c - a sync with nothing to do: nothing pending, nothing
 * new on the server. A replica of 1,000,000 member rows (imported from a
 * generated CSV and pushed once, as set-up) beside one of 1,000 rows, both
 * branch devices of the same real branchsyncd on loopback (different
 * branches, so neither sees the other's rows); the wall time of
 * `branchsync sync` on each, interleaved. One JSON object per figure on
 * stdout (scripts/bench.sh). Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchsync.h"

#define BIG 1000000
#define SMALL 1000
#define RUNS 9


/* A replica of n members of `branch`, pushed. */
static void replica(const struct benchsync_server *s, const char *name,
		    const char *branch, int n, char *db, size_t len)
{
	char csv[BENCHSYNC_PATH];
	struct benchsync_run r;

	benchsync_device(s, name, branch, db, len);
	benchsync_path(csv, sizeof csv, "members.csv");
	benchsync_members_csv(csv, 0, n);
	r = benchsync_bs("import-csv", "--db", db, "members", csv, NULL);
	benchsync_expect_ok(&r, "branchsync import-csv");
	fprintf(stderr, "bench: %s: %d rows imported in %.1f s", name, n,
		r.seconds);
	benchsync_run_free(&r);
	remove(csv);
	r = benchsync_sync(db);
	fprintf(stderr, ", pushed in %.1f s\n", r.seconds);
	benchsync_run_free(&r);
}

/* Seconds of one sync that must find nothing to do. */
static double noop(const char *db)
{
	struct benchsync_run r = benchsync_sync(db);
	double t = r.seconds;

	if (benchsync_json_int(r.out, "pushed") != 0 ||
	    benchsync_json_int(r.out, "pulled") != 0)
		benchsync_die("sync of %s was not a no-op: %s", db, r.out);
	benchsync_run_free(&r);
	return t;
}

int main(int argc, char **argv)
{
	struct benchsync_server s;
	struct benchsync_run r;
	char big[BENCHSYNC_PATH], small[BENCHSYNC_PATH];
	double tb[RUNS], ts[RUNS], vb, vs;
	int i;

	benchsync_start(argc > 1 ? argv[1] : "/tmp", "bench-sync-noop");
	benchsync_server_start(&s, "srv", 2);
	replica(&s, "big", "b1", BIG, big, sizeof big);
	replica(&s, "small", "b2", SMALL, small, sizeof small);
	/* the big one has not seen the small one's push: settle both */
	r = benchsync_sync(big);
	benchsync_run_free(&r);
	noop(small);
	for (i = 0; i < RUNS; i++) {
		tb[i] = noop(big);
		ts[i] = noop(small);
	}
	vb = benchsync_median(tb, RUNS);
	vs = benchsync_median(ts, RUNS);
	benchsync_figure("no-op sync, 1,000,000-row replica", vb, "s", vs,
			 "no-op sync, 1,000-row replica", "<= 2x",
			 vb <= 2 * vs);
	/* its bytes, both ways, HTTP headers included (the relay's count) */
	for (i = 0; i < RUNS; i++) {
		struct benchsync_wire w;

		r = benchsync_sync_counted(&s, small, &w);
		benchsync_run_free(&r);
		tb[i] = (double)(w.up + w.down);
	}
	vb = benchsync_median(tb, RUNS);
	benchsync_figure("no-op sync: wire bytes", vb, "B", 0, NULL,
			 "<= 1 KB", vb <= 1024);
	benchsync_server_stop(&s);
	return 0;
}
