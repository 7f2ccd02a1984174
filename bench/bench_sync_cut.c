/* bench_sync_cut.c - 1,000 changes synced through a bad rural link: the
 * relay (tests/faultproxy) caps each direction at 8,000 B/s (64 kbit/s)
 * and resets every connection every 20 s. One device pushes 1,000 one-cell
 * edits (1,000 put commands), another device of the branch pulls them;
 * each reruns `branchsync sync` after every exit 3 until it ends 0. The
 * wall time beside the ideal time: the bytes the same syncs take on a
 * clean link, at 8,000 B/s (measured first with a twin of each device:
 * a2 makes the same 1,000 edits and pushes them, c pulls them; a copy of
 * a's outbox would be answered `duplicate`, a different exchange). Then nothing may be doubled: one log entry per
 * change set on the server, 1,000 members changed once on the puller.
 * One JSON object per figure on stdout (scripts/bench.sh). Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchsync.h"

#define EDITS 1000
#define RATE 8000         /* bytes/s each way: 64 kbit/s */
#define RATE_ARG "8000"
#define CUT_ARG "20000"   /* ms */
#define TRIES 40          /* syncs of one device before giving up */

/* Syncs db through a relay with `faults` until it ends 0; returns the
 * wall time of all tries, their count in *tries and the relay's counts in
 * *w. */
static double sync_until_done(const struct benchsync_server *s,
			      const char *db, const char *const *faults,
			      int *tries, struct benchsync_wire *w)
{
	struct benchsync_run r;
	double t0 = benchsync_now();
	int port;
	pid_t relay = benchsync_relay_start(s, faults, &port);

	benchsync_point(db, port);
	for (*tries = 1;; ++*tries) {
		r = benchsync_bs("sync", "--db", db, "--json", NULL);
		if (r.code == 0)
			break;
		if (r.code != 3 || *tries == TRIES)
			benchsync_die("sync of %s: exit %d after %d tries: %s",
				      db, r.code, *tries, r.err);
		benchsync_run_free(&r);
	}
	benchsync_run_free(&r);
	t0 = benchsync_now() - t0;
	benchsync_relay_stop(relay, w);
	benchsync_point(db, s->port);
	return t0;
}

static char ids[EDITS][33];

/* 1,000 one-cell edits on db, one put command each: a phone number of
 * `prefix` and seven digits for each of the first 1,000 members. */
static void put_edits(const char *db, const char *prefix)
{
	struct benchsync_run r;
	char value[32];
	int i;

	for (i = 0; i < EDITS; i++) {
		snprintf(value, sizeof value, "phone=%s%07d", prefix, i);
		r = benchsync_bs("put", "--db", db, "members", "--id", ids[i],
				 value, NULL);
		benchsync_expect_ok(&r, "branchsync put");
		benchsync_run_free(&r);
	}
}

int main(int argc, char **argv)
{
	static const char *const bad[] = { "--rate", RATE_ARG,
					   "--cut-every-ms", CUT_ARG, NULL };
	struct benchsync_server s;
	struct benchsync_run r;
	struct benchsync_wire wa, wb, ca, cb;
	char a[BENCHSYNC_PATH], a2[BENCHSYNC_PATH], b[BENCHSYNC_PATH];
	char c[BENCHSYNC_PATH], csv[BENCHSYNC_PATH], srvdb[BENCHSYNC_PATH];
	double t, ideal;
	long long doubled, changed, before;
	int tries_a, tries_b, tries;

	benchsync_start(argc > 1 ? argv[1] : "/tmp", "bench-sync-cut");
	benchsync_server_start(&s, "srv", 1);
	benchsync_device(&s, "a", "b1", a, sizeof a);
	benchsync_device(&s, "b", "b1", b, sizeof b);
	benchsync_device(&s, "c", "b1", c, sizeof c);
	benchsync_device(&s, "a2", "b1", a2, sizeof a2);
	benchsync_path(csv, sizeof csv, "members.csv");
	benchsync_members_csv(csv, 0, EDITS);
	r = benchsync_bs("import-csv", "--db", a, "members", csv, NULL);
	benchsync_expect_ok(&r, "branchsync import-csv");
	benchsync_run_free(&r);
	benchsync_member_ids(a, ids, EDITS);
	r = benchsync_sync(a);
	benchsync_run_free(&r);
	r = benchsync_sync(b);
	benchsync_run_free(&r);
	r = benchsync_sync(c);
	benchsync_run_free(&r);
	r = benchsync_sync(a2);
	benchsync_run_free(&r);

	/* the clean link first: a's twin a2 makes the same 1,000 one-cell
	 * edits, one put command each, and pushes them; c pulls them. a and
	 * b take them too, off the clock, so that below a only pushes and b
	 * only pulls a's own. */
	put_edits(a2, "1390");
	sync_until_done(&s, a2, NULL, &tries, &ca);
	sync_until_done(&s, c, NULL, &tries, &cb);
	r = benchsync_sync(a);
	benchsync_run_free(&r);
	r = benchsync_sync(b);
	benchsync_run_free(&r);
	put_edits(a, "1380");
	before = benchsync_db_int(b, "SELECT count(*) FROM bs_applied");
	t = sync_until_done(&s, a, bad, &tries_a, &wa);
	t += sync_until_done(&s, b, bad, &tries_b, &wb);
	fprintf(stderr, "bench: cut link: push %d tries, %lld B; pull %d tries,"
		" %lld B; clean: %lld B and %lld B\n", tries_a,
		wa.up + wa.down, tries_b, wb.up + wb.down, ca.up + ca.down,
		cb.up + cb.down);
	ideal = (double)(ca.up + ca.down + cb.up + cb.down) / RATE;

	benchsync_path(srvdb, sizeof srvdb, "srv/server.db");
	doubled = benchsync_db_int(srvdb, "SELECT count(*) FROM (SELECT cs_id"
				   " FROM srv_log WHERE cs_id IS NOT NULL"
				   " GROUP BY cs_id HAVING count(*) > 1)");
	changed = benchsync_db_int(b, "SELECT count(*) FROM bs_applied") -
		  before;
	if (changed != EDITS)
		benchsync_die("the puller merged %lld change sets, not %d",
			      changed, EDITS);
	benchsync_figure("1,000 changes through 64 kbit/s cut every 20 s: "
			 "change sets doubled", (double)doubled, "", 0, NULL,
			 "0 (and completes)", doubled == 0);
	benchsync_figure("1,000 changes through 64 kbit/s cut every 20 s: "
			 "time (push + pull, retries incl.)", t, "s", ideal,
			 "ideal: clean-link bytes at 8,000 B/s",
			 "<= 1.5x ideal", t <= 1.5 * ideal);
	benchsync_server_stop(&s);
	return 0;
}
