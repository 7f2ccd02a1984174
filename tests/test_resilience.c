/* test_resilience.c - Check suite 'resilience': sync over bad links and
 * through crashes, with a real branchsyncd and real branchsync processes.
 * Links are emulated by tests/faultproxy ($FAULTPROXY_BIN): latency, a
 * bandwidth cap, connections reset in the middle of a push body, a push
 * answer or a pull answer, stalls, a link that drops every few hundred ms,
 * a target that is down. Crashes are SIGKILL of clients and of the server
 * at random moments of a sync. Whatever happens, once syncs end with exit
 * 0 the server holds every change set exactly once, every outbox row is
 * acknowledged with a receipt, the replicas' canonical digests are what a
 * fault-free run gives, and no SQLite file is damaged. A failed sync may
 * only say "unreachable" (exit 3). Random choices print their seed;
 * BRANCHSYNC_SEED=N replays them. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define A_IMPORTS 5        /* CSV imports of A_IMPORT_ROWS members each */
#define A_IMPORT_ROWS 40
#define A_SETS 300         /* a's change sets in the template, imports too */
#define D_SETS 20          /* d's: district trainings and b1 members */
/* change sets per push: fewer than the client's 1000 (docs/SYNC.md),
 * through its test hook, so that a's sets take two pushes */
#define PUSH_BATCH 200
#define PHASES 3
#define SYNC_TRIES 10
#define KILL_RUNS 20

/* The syncs of a scenario, in order: d pushes its sets, a pushes its 300
 * and pulls d's, d pulls a's. */
static const char *const phase_db[PHASES] = { "d", "a", "d" };

/* What the fault-free reference run of the template gave. */
struct reference {
	char a_id[HARNESS_HEX_KEY + 1], d_id[HARNESS_HEX_KEY + 1];
	long long changesets;                /* rows in srv_log */
	uint8_t a[HASH_BYTES], d[HASH_BYTES]; /* digests of a and d */
	unsigned long long up[PHASES], down[PHASES]; /* bytes on the wire */
};

struct proxy {
	pid_t pid;
	int port;
	char count_file[HARNESS_PATH], log[HARNESS_PATH];
	unsigned long long up, down, connections;
};

/* ---- random choices, replayable ---- */

static uint64_t rng_state;

static void rng_seed(const char *test)
{
	const char *s = getenv("BRANCHSYNC_SEED");
	uint64_t seed = s && *s ? strtoull(s, NULL, 10)
				: (uint64_t)time(NULL) ^
				      ((uint64_t)getpid() << 20);

	rng_state = seed;
	fprintf(stderr, "resilience: %s: seed %" PRIu64
		" (BRANCHSYNC_SEED=%" PRIu64 " replays it)\n", test, seed,
		seed);
}

/* splitmix64 */
static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned rng_below(unsigned n)
{
	return (unsigned)(rng_next() % n);
}

/* ---- the relay ---- */

/* Starts faultproxy in front of target_port with the given fault options
 * (NULL-terminated); its log is tmp/NAME.log. */
static void proxy_start(struct proxy *p, const char *name, int target_port,
			const char *const *faults)
{
	const char *bin = getenv("FAULTPROXY_BIN");
	const char *argv[HARNESS_MAX_ARGS + 2];
	char target[64], pf[HARNESS_PATH], file[96];
	size_t n = 0;

	ck_assert_msg(bin != NULL, "FAULTPROXY_BIN is not set");
	memset(p, 0, sizeof *p);
	snprintf(target, sizeof target, "127.0.0.1:%d", target_port);
	snprintf(file, sizeof file, "%s.port", name);
	harness_path(pf, sizeof pf, file);
	snprintf(file, sizeof file, "%s.count", name);
	harness_path(p->count_file, sizeof p->count_file, file);
	snprintf(file, sizeof file, "%s.log", name);
	harness_path(p->log, sizeof p->log, file);
	unlink(pf);
	argv[n++] = "faultproxy";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--port-file";
	argv[n++] = pf;
	argv[n++] = "--target";
	argv[n++] = target;
	argv[n++] = "--count-file";
	argv[n++] = p->count_file;
	argv[n++] = "--verbose";
	while (faults && *faults && n < HARNESS_MAX_ARGS)
		argv[n++] = *faults++;
	argv[n] = NULL;
	p->pid = harness_spawn(bin, argv, p->log);
	p->port = harness_port_wait(pf, p->pid, 10);
	ck_assert_msg(p->port > 0, "faultproxy did not start (see %s)",
		      p->log);
}

/* SIGTERM: it must end with 0 and leave its counts. */
static void proxy_stop(struct proxy *p)
{
	int code = harness_kill(p->pid, SIGTERM);
	FILE *f;

	p->pid = -1;
	ck_assert_msg(code == 0, "faultproxy ended with %d (see %s)", code,
		      p->log);
	f = fopen(p->count_file, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "up %llu down %llu connections %llu",
				&p->up, &p->down, &p->connections), 3);
	fclose(f);
}

/* Whether the relay's log mentions `what`. */
static int proxy_logged(const struct proxy *p, const char *what)
{
	char line[512];
	FILE *f = fopen(p->log, "r");
	int found = 0;

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

/* ---- the relay itself ---- */

/* Sends len bytes of req to 127.0.0.1:port and reads until the other side
 * ends; returns the bytes read, and in *err the errno that ended the
 * reading (0: a clean end). */
static size_t exchange(int port, const char *req, size_t len, int *err)
{
	struct sockaddr_in a;
	char buf[4096];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(write(fd, req, len), (ssize_t)len);
	*err = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = n < 0 ? errno : 0;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	return got;
}

static void relay_refuses(const char *listen, const char *target,
			  const char *why)
{
	const char *argv[] = { "faultproxy", "--listen", listen, "--target",
			       target, NULL };
	struct harness_run r = harness_run_argv(getenv("FAULTPROXY_BIN"),
						argv);

	harness_expect_code(&r, 1);
	ck_assert_msg(strstr(r.err, why) != NULL, "message: %s", r.err);
	harness_run_free(&r);
}

START_TEST(relay_itself)
{
	static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n";
	static const char *const delay[] = { "--delay-ms", "100", NULL };
	static const char *const cut[] = { "--cut-once", "--cut-down", "10",
					   NULL };
	static const char *const rate[] = { "--rate", "20000", NULL };
	static char post[20480 + 256];
	struct harness_server s;
	struct proxy px;
	char dir[HARNESS_PATH];
	size_t got, got2, len;
	double t0;
	int err;

	relay_refuses("127.0.0.1:0", "10.1.2.3:80", "not a loopback");
	relay_refuses("127.0.0.1:0", "[::2]:80", "not a loopback");
	relay_refuses("0.0.0.0:0", "127.0.0.1:80", "not a loopback");
	relay_refuses("127.0.0.1:0", "localhost:80", "must be 127");
	relay_refuses("127.0.0.1:0", "127.0.0.1:99999", "must be 127");

	harness_path(dir, sizeof dir, "srv");
	harness_server_init(&s, dir);
	harness_server_start(&s, 0);

	/* every byte counted, each way delayed */
	proxy_start(&px, "delay", s.port, delay);
	t0 = harness_now();
	got = exchange(px.port, get, strlen(get), &err);
	ck_assert_int_eq(err, 0);
	ck_assert_double_ge(harness_now() - t0, 0.2);
	ck_assert_uint_gt(got, 0);
	proxy_stop(&px);
	ck_assert_uint_eq(px.up, strlen(get));
	ck_assert_uint_eq(px.down, got);
	ck_assert_uint_eq(px.connections, 1);

	/* a reset after exactly 10 bytes down, once */
	proxy_start(&px, "cut", s.port, cut);
	ck_assert_uint_eq(exchange(px.port, get, strlen(get), &err), 10);
	ck_assert_int_eq(err, ECONNRESET);
	got2 = exchange(px.port, get, strlen(get), &err);
	ck_assert_int_eq(err, 0);
	ck_assert_uint_eq(got2, got);
	proxy_stop(&px);
	ck_assert_uint_eq(px.down, 10 + got);
	ck_assert_uint_eq(px.connections, 2);

	/* 20 KB up at 20000 bytes/s: about a second */
	len = (size_t)snprintf(post, sizeof post, "POST /v1/push HTTP/1.1\r\n"
			       "Host: x\r\nConnection: close\r\n"
			       "Content-Type: application/x-branchsync\r\n"
			       "Content-Length: 20480\r\n\r\n");
	memset(post + len, 'x', 20480);
	len += 20480;
	proxy_start(&px, "rate", s.port, rate);
	t0 = harness_now();
	got = exchange(px.port, post, len, &err);
	t0 = harness_now() - t0;
	ck_assert_int_eq(err, 0);
	ck_assert_msg(t0 > 0.9 && t0 < 3, "took %.2f s", t0);
	proxy_stop(&px);
	ck_assert_uint_eq(px.up, len);
	ck_assert_uint_eq(px.down, got);
	harness_server_stop(&s);
}
END_TEST

/* ---- syncing ---- */

struct tally {
	int tries, failures;
	long long duplicates, pushed, pulled;
};

/* Syncs db until a sync ends with exit 0, at most SYNC_TRIES times. A try
 * that fails must fail as "unreachable" (exit 3): anything else (a refusal,
 * a verification failure, a crash) is a bug. */
static void sync_until_ok(const char *db, struct tally *t)
{
	int i;

	for (i = 0; i < SYNC_TRIES; i++) {
		struct harness_run r =
		    harness_bs("sync", "--db", db, "--json", NULL);

		t->tries++;
		if (r.code == 0) {
			t->duplicates += harness_json_int(r.out, "duplicates");
			t->pushed += harness_json_int(r.out, "pushed");
			t->pulled += harness_json_int(r.out, "pulled");
			harness_run_free(&r);
			return;
		}
		ck_assert_msg(r.code == 3, "sync of %s ended with exit %d: %s",
			      db, r.code, r.err);
		ck_assert_msg(strstr(r.err, "nothing is lost") != NULL,
			      "exit 3 without the promise: %s", r.err);
		t->failures++;
		harness_run_free(&r);
	}
	ck_abort_msg("no sync of %s ended well in %d tries", db, SYNC_TRIES);
}

/* ---- checks ---- */

static long long q(const char *db, const char *fmt, const char *arg)
{
	char sql[512];

	snprintf(sql, sizeof sql, fmt, arg);
	return harness_db_int(db, sql);
}

/* The server's log holds each change set once, all accepted, and the
 * author's chain 1..n whole. */
static void server_log_ok(const char *srv_db, const char *author, long long n)
{
	ck_assert_int_eq(harness_db_int(srv_db, "SELECT count(*) FROM (SELECT"
					" cs_id FROM srv_log WHERE cs_id IS NOT"
					" NULL GROUP BY cs_id HAVING"
					" count(*) > 1)"), 0);
	ck_assert_int_eq(harness_db_int(srv_db, "SELECT count(*) FROM srv_log"
					" WHERE verdict != 0"), 0);
	ck_assert_int_eq(q(srv_db, "SELECT count(*) FROM srv_log WHERE"
			   " lower(hex(author))='%s' AND kind=1", author), n);
	ck_assert_int_eq(q(srv_db, "SELECT count(DISTINCT seq) FROM srv_log"
			   " WHERE lower(hex(author))='%s' AND kind=1",
			   author), n);
	ck_assert_int_eq(q(srv_db, "SELECT coalesce(max(seq), 0) FROM srv_log"
			   " WHERE lower(hex(author))='%s' AND kind=1",
			   author), n);
}

/* Every one of the n change sets in db's outbox is acknowledged with a
 * receipt. */
static void outbox_acked(const char *db, long long n)
{
	ck_assert_int_eq(harness_db_int(db, "SELECT count(*) FROM bs_outbox"),
			 n);
	ck_assert_int_eq(harness_db_int(db, "SELECT count(*) FROM bs_outbox"
					" WHERE acked=1 AND push_receipt IS NOT"
					" NULL"), n);
}

static void hex_put(char *out, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void hex_get(uint8_t *out, const char *hex, size_t n)
{
	size_t i;

	ck_assert_uint_eq(strlen(hex), 2 * n);
	for (i = 0; i < n; i++) {
		unsigned v;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* ---- the template: a device with 300 pending change sets ---- */

static void tpl_path(char *out, size_t n, const char *dir, const char *name)
{
	harness_fmt(out, n, "%s/%s", dir, name);
}

/* a (branch b1): CSV imports, then single puts until it holds A_SETS
 * change sets: new members, edits of recent ones, and deletes. */
static void fill_a(const char *dir, const char *a)
{
	static char ids[A_SETS][65];
	char csv[HARNESS_PATH], phone[32], occ[64], name[64];
	int i, k, n = 0;

	for (k = 0; k < A_IMPORTS; k++) {
		FILE *f;

		tpl_path(csv, sizeof csv, dir, "import.csv");
		f = fopen(csv, "w");
		ck_assert_ptr_nonnull(f);
		fputs("name,phone,occupation,status\n", f);
		for (i = 0; i < A_IMPORT_ROWS; i++)
			fprintf(f, "Imported %d-%02d,1390000%04d,worker %d,"
				"active\n", k, i, k * 100 + i, i);
		ck_assert_int_eq(fclose(f), 0);
		harness_import(a, "members", csv);
	}
	for (i = 0; i < A_SETS - A_IMPORTS; i++) {
		switch (i % 5) {
		case 3:
			snprintf(occ, sizeof occ, "occupation=trade %d", i);
			harness_put(a, NULL, "members", "--id", ids[n - 1],
				    occ, NULL);
			break;
		case 4:
			if (i % 20 == 4) {
				struct harness_run r = harness_bs(
				    "delete", "--db", a, "members",
				    ids[n - 3], NULL);

				harness_expect_code(&r, 0);
				harness_run_free(&r);
			} else {
				snprintf(phone, sizeof phone,
					 "phone=1370000%04d", i);
				harness_put(a, NULL, "members", "--id",
					    ids[n - 2], phone, NULL);
			}
			break;
		default:
			snprintf(name, sizeof name, "name=Member %03d", i);
			snprintf(phone, sizeof phone, "phone=1380000%04d", i);
			harness_put(a, ids[n++], "members", name, phone,
				    NULL);
		}
	}
	ck_assert_int_eq(harness_db_int(a, "SELECT count(*) FROM bs_outbox"
					" WHERE acked=0"), A_SETS);
}

/* d (district): trainings for the district and members of b1. */
static void fill_d(const char *d)
{
	char title[64], name[64];
	int i;

	for (i = 0; i < D_SETS / 2; i++) {
		snprintf(title, sizeof title, "title=Evening school %d", i);
		snprintf(name, sizeof name, "name=Sent by district %d", i);
		harness_put(d, NULL, "trainings", "branch_id=district", title,
			    "held_on=2026-03-01", NULL);
		harness_put(d, NULL, "members", "branch_id=b1", name, NULL);
	}
}

static void ref_write(const char *path, const struct reference *ref)
{
	char a[2 * HASH_BYTES + 1], d[2 * HASH_BYTES + 1];
	FILE *f = fopen(path, "w");
	int p;

	ck_assert_ptr_nonnull(f);
	hex_put(a, ref->a, HASH_BYTES);
	hex_put(d, ref->d, HASH_BYTES);
	fprintf(f, "%s %s %lld %s %s\n", ref->a_id, ref->d_id,
		ref->changesets, a, d);
	for (p = 0; p < PHASES; p++)
		fprintf(f, "%llu %llu\n", ref->up[p], ref->down[p]);
	ck_assert_int_eq(fclose(f), 0);
}

static void ref_read(const char *path, struct reference *ref)
{
	char a[2 * HASH_BYTES + 1], d[2 * HASH_BYTES + 1];
	FILE *f = fopen(path, "r");
	int p;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%64s %64s %lld %64s %64s", ref->a_id,
				ref->d_id, &ref->changesets, a, d), 5);
	hex_get(ref->a, a, HASH_BYTES);
	hex_get(ref->d, d, HASH_BYTES);
	for (p = 0; p < PHASES; p++)
		ck_assert_int_eq(fscanf(f, "%llu %llu", &ref->up[p],
					&ref->down[p]), 2);
	fclose(f);
}

/* Copies template dir `from` (srv/, a.db, d.db) to `to`. */
static void tpl_copy(const char *from, const char *to)
{
	char a[HARNESS_PATH], b[HARNESS_PATH];
	static const char *const dbs[] = { "a.db", "d.db" };
	size_t i;

	mkdir(to, 0700);
	tpl_path(a, sizeof a, from, "srv");
	tpl_path(b, sizeof b, to, "srv");
	harness_copy_dir(a, b);
	for (i = 0; i < 2; i++) {
		tpl_path(a, sizeof a, from, dbs[i]);
		tpl_path(b, sizeof b, to, dbs[i]);
		harness_copy_file(a, b);
	}
}

/* The three phases without faults, each through a plain relay that counts
 * its bytes. */
static void ref_run(const char *dir, struct reference *ref)
{
	struct harness_server s;
	char srv[HARNESS_PATH], db[HARNESS_PATH], srv_db[HARNESS_PATH];
	int p;

	tpl_path(srv, sizeof srv, dir, "srv");
	memset(&s, 0, sizeof s);
	strcpy(s.dir, srv);
	s.pid = -1;
	harness_server_start(&s, 0);
	for (p = 0; p < PHASES; p++) {
		struct proxy px;
		struct tally t;
		char name[16];

		memset(&t, 0, sizeof t);
		snprintf(name, sizeof name, "ref-%d", p);
		harness_fmt(db, sizeof db, "%s/%s.db", dir, phase_db[p]);
		proxy_start(&px, name, s.port, NULL);
		harness_point_at(db, px.port);
		sync_until_ok(db, &t);
		ck_assert_int_eq(t.failures, 0);
		proxy_stop(&px);
		ref->up[p] = px.up;
		ref->down[p] = px.down;
	}
	harness_server_stop(&s);
	tpl_path(srv_db, sizeof srv_db, srv, "server.db");
	ref->changesets = harness_db_int(srv_db, "SELECT count(*) FROM"
					 " srv_log WHERE kind=1");
	tpl_path(db, sizeof db, dir, "a.db");
	harness_digest(db, ref->a);
	tpl_path(db, sizeof db, dir, "d.db");
	harness_digest(db, ref->d);
}

/* Builds root/template once for the whole suite (tests run one after
 * another, each in its own process): an enrolled branch device a with
 * A_SETS pending change sets, a district device d with D_SETS, and the
 * server they enrolled with, stopped; plus the reference. */
static void template_ensure(char *dir, size_t n, struct reference *ref)
{
	char build[HARNESS_PATH], path[HARNESS_PATH], refdir[HARNESS_PATH];
	struct harness_server s;
	struct stat st;

	harness_fmt(dir, n, "%s/template", harness_root());
	tpl_path(path, sizeof path, dir, "reference");
	if (stat(path, &st) == 0) {
		ref_read(path, ref);
		return;
	}
	memset(ref, 0, sizeof *ref);
	harness_fmt(build, sizeof build, "%s.build", dir);
	harness_rm_tree(build);
	ck_assert_int_eq(mkdir(build, 0700), 0);
	tpl_path(path, sizeof path, build, "srv");
	harness_server_init(&s, path);
	harness_server_start(&s, 0);
	tpl_path(path, sizeof path, build, "a.db");
	harness_device(&s, path, "branch", "b1", ref->a_id);
	fill_a(build, path);
	tpl_path(path, sizeof path, build, "d.db");
	harness_device(&s, path, "district", NULL, ref->d_id);
	fill_d(path);
	harness_server_stop(&s);

	tpl_path(refdir, sizeof refdir, build, "ref");
	tpl_copy(build, refdir);
	ref_run(refdir, ref);
	harness_rm_tree(refdir);
	ck_assert_int_eq(ref->changesets, A_SETS + D_SETS + 2);
	tpl_path(path, sizeof path, build, "reference");
	ref_write(path, ref);
	ck_assert_int_eq(rename(build, dir), 0);
}

/* ---- faulty links ---- */

struct scenario {
	const char *name;
	int phase;                /* the sync through the faults; -1: all */
	const char *faults[8];    /* faultproxy options */
	/* cuts and a stall placed at a fraction of the reference bytes of
	 * the phase (0: none) */
	double cut_up, cut_down, stall_at;
	int cut_once;
	const char *logged;       /* the relay's log must show the fault */
	int duplicates;           /* an answer was lost after the commit */
	int down_first;           /* the server is down behind the relay */
	int outage;               /* it dies after a's first push batch */
};

static const struct scenario scenarios[] = {
	{ .name = "100 ms each way", .phase = -1,
	  .faults = { "--delay-ms", "100" } },
	{ .name = "8 KB/s", .phase = 1, .faults = { "--rate", "8192" } },
	{ .name = "cut in a push body", .phase = 1, .cut_up = 0.5,
	  .cut_once = 1, .logged = "reset (--cut-up)" },
	/* phase 1's answers: a challenge, two push receipts (about 1 KB
	 * each), then the pull of d's sets (most of the bytes); 0.1 lands in
	 * the first push answer, and .duplicates proves it did */
	{ .name = "cut in a push answer", .phase = 1, .cut_down = 0.1,
	  .cut_once = 1, .logged = "reset (--cut-down)", .duplicates = 1 },
	{ .name = "cut in a pull answer", .phase = 2, .cut_down = 0.5,
	  .cut_once = 1, .logged = "reset (--cut-down)" },
	{ .name = "every connection cut after 3/4 of the bytes", .phase = 1,
	  .cut_up = 0.75, .cut_down = 0.75, .logged = "reset (--cut-" },
	{ .name = "a 3 s stall", .phase = 1, .stall_at = 0.5,
	  .faults = { "--stall-ms", "3000" }, .logged = "stall for" },
	{ .name = "a link that drops every 200 ms", .phase = -1,
	  .faults = { "--cut-every-ms", "200", "--delay-ms", "20" },
	  .logged = "reset (--cut-every-ms)" },
	{ .name = "server down behind the relay", .phase = 1,
	  .down_first = 1 },
	{ .name = "server gone for good after the first push batch",
	  .phase = 1, .faults = { "--rate", "16384" }, .outage = 1 },
};

#define N_SCENARIOS ((int)(sizeof scenarios / sizeof scenarios[0]))

/* The fault options of scenario sc for phase p: its fixed ones, then the
 * cuts and stall placed by the reference bytes. */
static void scenario_args(const struct scenario *sc, int p,
			  const struct reference *ref, const char **argv,
			  char num[3][32])
{
	unsigned long long up = ref->up[p], down = ref->down[p];
	size_t n = 0, i;

	for (i = 0; i < 8 && sc->faults[i]; i++)
		argv[n++] = sc->faults[i];
	if (sc->cut_once)
		argv[n++] = "--cut-once";
	if (sc->cut_up > 0) {
		snprintf(num[0], 32, "%llu", (unsigned long long)(up *
								 sc->cut_up));
		argv[n++] = "--cut-up";
		argv[n++] = num[0];
	}
	if (sc->cut_down > 0) {
		snprintf(num[1], 32, "%llu",
			 (unsigned long long)(down * sc->cut_down));
		argv[n++] = "--cut-down";
		argv[n++] = num[1];
	}
	if (sc->stall_at > 0) {
		snprintf(num[2], 32, "%llu",
			 (unsigned long long)((up + down) * sc->stall_at));
		argv[n++] = "--stall-after";
		argv[n++] = num[2];
	}
	argv[n] = NULL;
}

/* The server is down behind the relay: the relay takes the connection and
 * resets it. The sync gives up soon as unreachable, and keeps everything. */
static void down_behind_relay(struct harness_server *s, const char *db)
{
	struct harness_run r;
	char msg[128];
	int port = s->port;

	harness_server_stop(s);
	r = harness_bs("sync", "--db", db, NULL);
	harness_expect_code(&r, 3);
	ck_assert_msg(r.seconds < 20, "took %.1f s", r.seconds);
	snprintf(msg, sizeof msg, "server unreachable: %d change sets wait in"
		 " the outbox; nothing is lost", A_SETS);
	ck_assert_msg(strstr(r.err, msg) != NULL, "message: %s", r.err);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(db, "SELECT count(*) FROM bs_outbox"
					" WHERE acked=0"), A_SETS);
	harness_server_start(s, port);
	ck_assert_int_eq(s->port, port);
}

/* The server dies once a's first push batch (PUSH_BATCH sets, docs/SYNC.md)
 * is acknowledged, and stays down longer than the client's retries: the
 * sync ends as unreachable, keeping that batch; the next one goes on from
 * there. */
static void outage_after_batch(struct harness_server *s, const char *db)
{
	const char *argv[] = { "branchsync", "sync", "--db", db, NULL };
	char log[HARNESS_PATH];
	double t0 = harness_now();
	int port = s->port;
	pid_t pid;

	harness_path(log, sizeof log, "syncs.log");
	pid = harness_spawn(getenv("BRANCHSYNC_BIN"), argv, log);
	while (harness_db_int(db, "SELECT count(*) FROM bs_outbox WHERE"
			      " acked=1") < PUSH_BATCH) {
		ck_assert_msg(harness_running(pid), "the sync ended before its"
			      " first batch was acknowledged");
		ck_assert_msg(harness_now() - t0 < 60, "no batch in 60 s");
		usleep(20000);
	}
	harness_server_kill(s);
	ck_assert_int_eq(harness_wait_for(pid, 60), 3);
	ck_assert_int_eq(harness_db_int(db, "SELECT count(*) FROM bs_outbox"
					" WHERE acked=0"), A_SETS - PUSH_BATCH);
	harness_server_start(s, port);
}

START_TEST(faulty_link)
{
	const struct scenario *sc = &scenarios[_i];
	char tpl[HARNESS_PATH], dir[HARNESS_PATH], srv_db[HARNESS_PATH];
	char db[HARNESS_PATH], scratch[HARNESS_PATH];
	uint8_t dig[HASH_BYTES];
	struct reference ref;
	struct harness_server s;
	struct tally t;
	int p, logged = 0;

	fprintf(stderr, "resilience: %s\n", sc->name);
	template_ensure(tpl, sizeof tpl, &ref);
	for (p = 0; p < PHASES; p++)
		fprintf(stderr, "resilience: phase %d without faults: %llu bytes"
			" up, %llu down\n", p, ref.up[p], ref.down[p]);
	harness_path(dir, sizeof dir, "run");
	tpl_copy(tpl, dir);
	memset(&s, 0, sizeof s);
	tpl_path(s.dir, sizeof s.dir, dir, "srv");
	s.pid = -1;
	harness_server_start(&s, 0);
	memset(&t, 0, sizeof t);

	for (p = 0; p < PHASES; p++) {
		const char *argv[24];
		char num[3][32], name[16];
		struct proxy px;
		int faulty = sc->phase < 0 || sc->phase == p;

		harness_fmt(db, sizeof db, "%s/%s.db", dir, phase_db[p]);
		if (!faulty) {
			harness_point_at(db, s.port);
			sync_until_ok(db, &t);
			continue;
		}
		scenario_args(sc, p, &ref, argv, num);
		snprintf(name, sizeof name, "proxy-%d", p);
		proxy_start(&px, name, s.port, argv);
		harness_point_at(db, px.port);
		if (sc->down_first)
			down_behind_relay(&s, db);
		if (sc->outage)
			outage_after_batch(&s, db);
		sync_until_ok(db, &t);
		proxy_stop(&px);
		if (sc->logged && proxy_logged(&px, sc->logged))
			logged = 1;
	}
	fprintf(stderr, "resilience: %s: %d syncs, %d failed, %lld"
		" duplicates\n", sc->name, t.tries, t.failures, t.duplicates);
	ck_assert_msg(!sc->logged || logged, "the fault never happened");
	if (sc->duplicates)
		ck_assert_int_gt(t.duplicates, 0);
	harness_server_stop(&s);

	/* each change set once, every one acknowledged */
	tpl_path(srv_db, sizeof srv_db, s.dir, "server.db");
	harness_integrity_ok(srv_db);
	ck_assert_int_eq(harness_db_int(srv_db, "SELECT count(*) FROM srv_log"
					" WHERE kind=1"), ref.changesets);
	server_log_ok(srv_db, ref.a_id, A_SETS);
	server_log_ok(srv_db, ref.d_id, D_SETS);
	tpl_path(db, sizeof db, dir, "a.db");
	harness_integrity_ok(db);
	outbox_acked(db, A_SETS);
	harness_digest(db, dig);
	harness_digest_eq(dig, ref.a, "a and the fault-free a");
	tpl_path(db, sizeof db, dir, "d.db");
	harness_integrity_ok(db);
	outbox_acked(db, D_SETS);
	harness_digest(db, dig);
	harness_digest_eq(dig, ref.d, "d and the fault-free d");
	harness_digest(srv_db, dig);
	harness_digest_eq(dig, ref.d, "the server and the fault-free d");
	harness_path(scratch, sizeof scratch, "scope.db");
	harness_digest_scope(srv_db, "b1", scratch, dig);
	harness_digest_eq(dig, ref.a, "the server's b1 and the fault-free a");
}
END_TEST

/* ---- crashes ---- */

/* Two devices working through a slow relay; what each made so far. */
struct world {
	struct harness_server s;
	struct proxy px;
	char a[HARNESS_PATH], d[HARNESS_PATH];
	char a_id[HARNESS_HEX_KEY + 1], d_id[HARNESS_HEX_KEY + 1];
	char (*ids)[65];        /* a's members still there */
	int nids, cap;
	long long a_made, d_made, members, trainings;
	int run;
};

static void world_start(struct world *w)
{
	static const char *const slow[] = { "--delay-ms", "30", "--rate",
					    "16384", NULL };
	char dir[HARNESS_PATH];

	memset(w, 0, sizeof *w);
	harness_path(dir, sizeof dir, "srv");
	harness_server_init(&w->s, dir);
	harness_server_start(&w->s, 0);
	harness_path(w->a, sizeof w->a, "a.db");
	harness_path(w->d, sizeof w->d, "d.db");
	harness_device(&w->s, w->a, "branch", "b1", w->a_id);
	harness_device(&w->s, w->d, "district", NULL, w->d_id);
	proxy_start(&w->px, "proxy", w->s.port, slow);
	harness_point_at(w->a, w->px.port);
	harness_point_at(w->d, w->px.port);
	w->cap = 8 * (KILL_RUNS + 2);
	w->ids = calloc((size_t)w->cap, sizeof *w->ids);
	ck_assert_ptr_nonnull(w->ids);
}

/* One round of offline work: a adds two members, edits one, now and then
 * imports a few or deletes one; d adds a b1 member and a training. */
static void world_work(struct world *w)
{
	char name[64], occ[64], csv[HARNESS_PATH];
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof name, "name=Run %d member %d", w->run,
			 i);
		ck_assert_int_lt(w->nids, w->cap);
		harness_put(w->a, w->ids[w->nids++], "members", name, NULL);
		w->a_made++;
		w->members++;
	}
	snprintf(occ, sizeof occ, "occupation=edited in run %d", w->run);
	harness_put(w->a, NULL, "members", "--id",
		    w->ids[rng_below((unsigned)w->nids)], occ, NULL);
	w->a_made++;
	if (w->run % 4 == 3) {
		FILE *f;

		harness_path(csv, sizeof csv, "few.csv");
		f = fopen(csv, "w");
		ck_assert_ptr_nonnull(f);
		fputs("name,occupation\n", f);
		for (i = 0; i < 10; i++)
			fprintf(f, "Imported %d-%d,farmer\n", w->run, i);
		ck_assert_int_eq(fclose(f), 0);
		harness_import(w->a, "members", csv);
		w->a_made++;
		w->members += 10;
	}
	if (w->run % 5 == 4) {
		unsigned k = rng_below((unsigned)w->nids);
		struct harness_run r = harness_bs("delete", "--db", w->a,
						  "members", w->ids[k], NULL);

		harness_expect_code(&r, 0);
		harness_run_free(&r);
		memcpy(w->ids[k], w->ids[--w->nids], sizeof w->ids[k]);
		w->a_made++;
		w->members--;
	}
	snprintf(name, sizeof name, "name=District's run %d", w->run);
	harness_put(w->d, NULL, "members", "branch_id=b1", name, NULL);
	snprintf(name, sizeof name, "title=Course %d", w->run);
	harness_put(w->d, NULL, "trainings", "branch_id=district", name,
		    "held_on=2026-04-01", NULL);
	w->d_made += 2;
	w->members++;
	w->trainings++;
	w->run++;
}

static pid_t sync_spawn(const char *db)
{
	const char *argv[] = { "branchsync", "sync", "--db", db, NULL };
	char log[HARNESS_PATH];

	harness_path(log, sizeof log, "syncs.log");
	return harness_spawn(getenv("BRANCHSYNC_BIN"), argv, log);
}

/* Everything converged, nothing lost or doubled. */
static long long world_check(struct world *w)
{
	char srv_db[HARNESS_PATH], scratch[HARNESS_PATH];
	uint8_t da[HASH_BYTES], dd[HASH_BYTES];
	struct tally t;
	long long a_duplicates;

	memset(&t, 0, sizeof t);
	sync_until_ok(w->a, &t);
	a_duplicates = t.duplicates;
	sync_until_ok(w->d, &t);
	sync_until_ok(w->a, &t);
	tpl_path(srv_db, sizeof srv_db, w->s.dir, "server.db");
	server_log_ok(srv_db, w->a_id, w->a_made);
	server_log_ok(srv_db, w->d_id, w->d_made);
	outbox_acked(w->a, w->a_made);
	outbox_acked(w->d, w->d_made);
	ck_assert_int_eq(harness_db_int(w->a, "SELECT count(*) FROM members"),
			 w->members);
	ck_assert_int_eq(harness_db_int(w->d, "SELECT count(*) FROM members"),
			 w->members);
	ck_assert_int_eq(harness_db_int(w->a, "SELECT count(*) FROM"
					" trainings"), w->trainings);
	harness_digest(w->a, da);
	harness_path(scratch, sizeof scratch, "scope.db");
	harness_digest_scope(w->d, "b1", scratch, dd);
	harness_digest_eq(da, dd, "a and d's view of b1");
	return a_duplicates;
}

/* After the last run: the server's records are d's, and a's its b1. */
static void world_end(struct world *w)
{
	char srv_db[HARNESS_PATH], scratch[HARNESS_PATH];
	uint8_t x[HASH_BYTES], y[HASH_BYTES];

	proxy_stop(&w->px);
	harness_server_stop(&w->s);
	tpl_path(srv_db, sizeof srv_db, w->s.dir, "server.db");
	harness_integrity_ok(srv_db);
	harness_digest(srv_db, x);
	harness_digest(w->d, y);
	harness_digest_eq(x, y, "the server and d");
	harness_path(scratch, sizeof scratch, "scope.db");
	harness_digest_scope(srv_db, "b1", scratch, x);
	harness_digest(w->a, y);
	harness_digest_eq(x, y, "the server's b1 and a");
	free(w->ids);
}

/* How long a round's two concurrent syncs take, unharmed. */
static double world_calibrate(struct world *w)
{
	double t0;
	pid_t pa, pd;

	world_work(w);
	t0 = harness_now();
	pa = sync_spawn(w->a);
	pd = sync_spawn(w->d);
	ck_assert_int_eq(harness_wait(pa), 0);
	ck_assert_int_eq(harness_wait(pd), 0);
	t0 = harness_now() - t0;
	world_check(w);
	return t0;
}

/* A sync that was not killed may end only well (clients killed) or also
 * as unreachable (server killed); 60 s is a hang. */
/* A sync that was killed may still have ended well (SIGKILL can come too
 * late to stop it); one that was not may end only well, or also as
 * unreachable when the server was killed; 60 s is a hang. Returns whether
 * the kill stopped it. */
static int sync_end(pid_t pid, int killed, int may_be_unreachable)
{
	int code = harness_wait_for(pid, 60);

	ck_assert_msg(code >= 0, "a sync hangs after the kill");
	ck_assert_msg(code == 0 || (killed && code == 128 + SIGKILL) ||
		      (may_be_unreachable && code == 3),
		      "a sync ended with %d (see syncs.log)", code);
	return code == 128 + SIGKILL;
}

/* Sleeps until `us` microseconds after t0, then kills pid if it is still
 * running; returns whether it did. */
static int kill_at(double t0, unsigned us, pid_t pid)
{
	double wait = us / 1e6 - (harness_now() - t0);

	if (wait > 0)
		usleep((useconds_t)(wait * 1e6));
	if (!harness_running(pid))
		return 0;
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	return 1;
}

/* Kills pid as soon as the server has logged change set `seq` of
 * `author` (hex): the push is committed and its answer on its way through
 * the relay, not yet committed by the client. Returns whether it did. */
static int kill_when_logged(const char *srv_db, const char *author,
			    long long seq, pid_t pid)
{
	char sql[256];

	harness_fmt(sql, sizeof sql, "SELECT coalesce(max(seq), 0) FROM"
		    " srv_log WHERE lower(hex(author))='%s'", author);
	while (harness_running(pid)) {
		if (harness_db_int(srv_db, sql) >= seq) {
			ck_assert_int_eq(kill(pid, SIGKILL), 0);
			return 1;
		}
		usleep(2000);
	}
	return 0;
}

/* Half of the runs kill both clients at random moments; the other half
 * kill a the moment the server has logged its push (so its next sync must
 * meet its own change sets as duplicates) and d at a random moment. */
START_TEST(clients_killed)
{
	struct world w;
	char srv_db[HARNESS_PATH];
	double span;
	int i, kills = 0, aimed = 0;
	long long aimed_duplicates = 0;

	rng_seed("clients killed");
	world_start(&w);
	tpl_path(srv_db, sizeof srv_db, w.s.dir, "server.db");
	span = world_calibrate(&w);
	for (i = 0; i < KILL_RUNS; i++) {
		unsigned ta, td;
		int a_killed, d_killed, a_stopped;
		long long duplicates;
		double t0;
		pid_t pa, pd;

		world_work(&w);
		ta = rng_below((unsigned)(span * 1.2e6) + 1);
		td = rng_below((unsigned)(span * 1.2e6) + 1);
		t0 = harness_now();
		pa = sync_spawn(w.a);
		pd = sync_spawn(w.d);
		if (i % 2) {
			a_killed = kill_when_logged(srv_db, w.a_id, w.a_made,
						    pa);
			d_killed = kill_at(t0, td, pd);
		} else if (ta <= td) {
			a_killed = kill_at(t0, ta, pa);
			d_killed = kill_at(t0, td, pd);
		} else {
			d_killed = kill_at(t0, td, pd);
			a_killed = kill_at(t0, ta, pa);
		}
		a_stopped = sync_end(pa, a_killed, 0);
		kills += a_stopped + sync_end(pd, d_killed, 0);
		harness_integrity_ok(w.a);
		harness_integrity_ok(w.d);
		duplicates = world_check(&w);
		if (i % 2 && a_stopped) {
			aimed++;
			aimed_duplicates += duplicates;
		}
	}
	fprintf(stderr, "resilience: clients killed: %d runs, %d kills"
		" (%d aimed, %lld duplicates then), syncs of %.2f s\n",
		KILL_RUNS, kills, aimed, aimed_duplicates, span);
	ck_assert_int_gt(kills, KILL_RUNS / 2);
	ck_assert_int_gt(aimed_duplicates, 0);
	world_end(&w);
}
END_TEST

START_TEST(server_killed)
{
	struct world w;
	char srv_db[HARNESS_PATH];
	double span;
	int i;

	rng_seed("server killed");
	world_start(&w);
	tpl_path(srv_db, sizeof srv_db, w.s.dir, "server.db");
	span = world_calibrate(&w);
	for (i = 0; i < KILL_RUNS; i++) {
		unsigned at;
		pid_t pa, pd;
		int port = w.s.port;

		world_work(&w);
		at = rng_below((unsigned)(span * 1.2e6) + 1);
		pa = sync_spawn(w.a);
		pd = sync_spawn(w.d);
		usleep(at);
		harness_server_kill(&w.s);
		harness_integrity_ok(srv_db);
		harness_server_start(&w.s, port);
		sync_end(pa, 0, 1);
		sync_end(pd, 0, 1);
		harness_integrity_ok(w.a);
		harness_integrity_ok(w.d);
		world_check(&w);
	}
	fprintf(stderr, "resilience: server killed: %d runs, syncs of"
		" %.2f s\n", KILL_RUNS, span);
	world_end(&w);
}
END_TEST

static Suite *resilience_suite(void)
{
	Suite *s = suite_create("resilience");
	TCase *tc = tcase_create("resilience");

	tcase_add_unchecked_fixture(tc, harness_root_setup,
				    harness_root_teardown);
	tcase_add_checked_fixture(tc, harness_tmp_setup,
				  harness_tmp_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, relay_itself);
	tcase_add_loop_test(tc, faulty_link, 0, N_SCENARIOS);
	tcase_add_test(tc, clients_killed);
	tcase_add_test(tc, server_killed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(resilience_suite());
	char batch[16];
	int failed;

	snprintf(batch, sizeof batch, "%d", PUSH_BATCH);
	setenv("BRANCHSYNC_TEST_PUSH_COUNT", batch, 1);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
