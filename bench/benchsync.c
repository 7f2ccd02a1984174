/* benchsync.c - helpers of the sync benchmarks: processes, a loopback
 * district server, enrolled devices, the counting relay, figure lines.
 * Not for tests: failures exit 1 after cleaning up (benchsync.h). */
#define _GNU_SOURCE /* nftw's FTW_DEPTH, FTW_PHYS; wait4 */
#include "benchsync.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define MAX_ARGS 40
#define MAX_BACKGROUND 8

static char work[BENCHSYNC_PATH];
static char bin_bs[BENCHSYNC_PATH], bin_bsd[BENCHSYNC_PATH];
static char bin_proxy[BENCHSYNC_PATH];
/* what the exit handler must stop: background processes and the command
 * running in the foreground */
static pid_t background[MAX_BACKGROUND];
static volatile pid_t foreground = -1;
static volatile sig_atomic_t stopping;
static unsigned long proxy_seq;

double benchsync_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void benchsync_die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* snprintf that exits rather than truncate */
static void format(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void format(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= n)
		benchsync_die("name too long: %s...", out);
}

void benchsync_path(char *out, size_t n, const char *name)
{
	format(out, n, "%s/%s", work, name);
}

/* ---- background processes and cleanup ---- */

static void background_add(pid_t pid)
{
	int i;

	for (i = 0; i < MAX_BACKGROUND; i++)
		if (background[i] <= 0) {
			background[i] = pid;
			return;
		}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	benchsync_die("too many background processes");
}

/* Forgets a background process that has been reaped already. */
static void background_forget(pid_t pid)
{
	int i;

	for (i = 0; i < MAX_BACKGROUND; i++)
		if (background[i] == pid)
			background[i] = -1;
}

/* SIGTERM, then SIGKILL if it has not ended within `seconds`. Returns its
 * wait status. */
static int background_stop(pid_t pid, double seconds)
{
	double t0 = benchsync_now();
	int status = 0;
	pid_t w;

	kill(pid, SIGTERM);
	while ((w = waitpid(pid, &status, WNOHANG)) != pid) {
		if (w < 0 && errno != EINTR)
			break; /* not our child any more */
		if (benchsync_now() - t0 > seconds) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(10000);
	}
	background_forget(pid);
	return status;
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void at_exit(void)
{
	int i;

	for (i = 0; i < MAX_BACKGROUND; i++)
		if (background[i] > 0)
			background_stop(background[i], 10);
	if (work[0])
		nftw(work, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Only what is async-signal-safe: the children die, the main flow sees
 * its command end and `stopping`, and exits through at_exit. */
static void on_signal(int sig)
{
	int i;

	(void)sig;
	stopping = 1;
	if (foreground > 0)
		kill(foreground, SIGKILL);
	for (i = 0; i < MAX_BACKGROUND; i++)
		if (background[i] > 0)
			kill(background[i], SIGTERM);
}

static void check_stopping(void)
{
	if (stopping)
		benchsync_die("interrupted");
}

/* $env, else DIR/rel where DIR is the build tree this executable is in. */
static void find_bin(char *out, const char *env, const char *rel)
{
	const char *v = getenv(env);
	char self[PATH_MAX], *slash;
	ssize_t n;
	int i;

	if (v && *v) {
		snprintf(out, BENCHSYNC_PATH, "%s", v);
	} else {
		n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n <= 0)
			benchsync_die("cannot read /proc/self/exe: %s",
				      strerror(errno));
		self[n] = '\0';
		for (i = 0; i < 2; i++) {
			slash = strrchr(self, '/');
			if (!slash)
				benchsync_die("cannot find the build tree");
			*slash = '\0';
		}
		if (snprintf(out, BENCHSYNC_PATH, "%s/%s", self, rel) >=
		    BENCHSYNC_PATH)
			benchsync_die("path too long: %s/%s", self, rel);
	}
	if (access(out, X_OK) != 0)
		benchsync_die("%s is not there (%s, or set $%s)", out,
			      strerror(errno), env);
}

void benchsync_start(const char *parent, const char *name)
{
	struct sigaction sa;
	int i;

	for (i = 0; i < MAX_BACKGROUND; i++)
		background[i] = -1;
	find_bin(bin_bs, "BRANCHSYNC_BIN", "client/branchsync");
	find_bin(bin_bsd, "BRANCHSYNCD_BIN", "server/branchsyncd");
	find_bin(bin_proxy, "FAULTPROXY_BIN", "tests/faultproxy");
	if (snprintf(work, sizeof work, "%s/%s.XXXXXX", parent, name) >=
	    (int)sizeof work || !mkdtemp(work)) {
		work[0] = '\0';
		benchsync_die("cannot make a directory in %s", parent);
	}
	atexit(at_exit);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- runs to the end ---- */

void benchsync_run_free(struct benchsync_run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

static void append(char **buf, size_t *len, const char *p, size_t n)
{
	char *b = realloc(*buf, *len + n + 1);

	if (!b)
		benchsync_die("out of memory");
	*buf = b;
	memcpy(b + *len, p, n);
	*len += n;
	b[*len] = '\0';
}

/* Reads both pipes to their end. */
static void collect(int outfd, int errfd, struct benchsync_run *r)
{
	int fd[2] = { outfd, errfd };

	while (fd[0] >= 0 || fd[1] >= 0) {
		struct pollfd p[2] = {
			{ fd[0], POLLIN, 0 }, { fd[1], POLLIN, 0 },
		};
		char buf[65536];
		int i;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			benchsync_die("poll: %s", strerror(errno));
		}
		for (i = 0; i < 2; i++) {
			ssize_t n;

			if (fd[i] < 0 || !p[i].revents)
				continue;
			n = read(fd[i], buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(fd[i]);
				fd[i] = -1;
			} else if (i == 0) {
				append(&r->out, &r->outlen, buf, (size_t)n);
			} else {
				append(&r->err, &r->errlen, buf, (size_t)n);
			}
		}
	}
}

struct benchsync_run benchsync_run_argv(const char *bin,
					const char *const *argv)
{
	struct benchsync_run r;
	struct rusage ru;
	int outp[2], errp[2], status = 0;
	double t0;
	pid_t pid;

	check_stopping();
	memset(&r, 0, sizeof r);
	append(&r.out, &r.outlen, "", 0);
	append(&r.err, &r.errlen, "", 0);
	if (pipe(outp) < 0 || pipe(errp) < 0)
		benchsync_die("pipe: %s", strerror(errno));
	t0 = benchsync_now();
	pid = fork();
	if (pid < 0)
		benchsync_die("fork: %s", strerror(errno));
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(devnull, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		close(outp[0]);
		close(errp[0]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	foreground = pid;
	close(outp[1]);
	close(errp[1]);
	collect(outp[0], errp[0], &r);
	while (wait4(pid, &status, 0, &ru) != pid)
		if (errno != EINTR)
			benchsync_die("wait4: %s", strerror(errno));
	r.seconds = benchsync_now() - t0;
	foreground = -1;
	r.code = WIFEXITED(status) ? WEXITSTATUS(status)
				   : 128 + WTERMSIG(status);
	r.maxrss_kb = ru.ru_maxrss;
	check_stopping();
	return r;
}

static struct benchsync_run run_va(const char *bin, const char *name,
				   const char *first, va_list ap)
{
	const char *argv[MAX_ARGS + 2];
	size_t n = 0;

	argv[n++] = name;
	argv[n++] = first;
	while ((argv[n] = va_arg(ap, const char *)) != NULL)
		if (++n == MAX_ARGS)
			benchsync_die("too many arguments for %s", name);
	return benchsync_run_argv(bin, argv);
}

struct benchsync_run benchsync_bs(const char *first, ...)
{
	struct benchsync_run r;
	va_list ap;

	va_start(ap, first);
	r = run_va(bin_bs, "branchsync", first, ap);
	va_end(ap);
	return r;
}

struct benchsync_run benchsync_bsd(const char *first, ...)
{
	struct benchsync_run r;
	va_list ap;

	va_start(ap, first);
	r = run_va(bin_bsd, "branchsyncd", first, ap);
	va_end(ap);
	return r;
}

void benchsync_expect_ok(const struct benchsync_run *r, const char *what)
{
	if (r->code != 0)
		benchsync_die("%s: exit %d: %s", what, r->code, r->err);
}

long long benchsync_json_int(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	p = strstr(json, pat);
	if (!p)
		benchsync_die("no %s in %s", key, json);
	return strtoll(p + strlen(pat), NULL, 10);
}

/* The first line of the run's stdout into out. */
static void first_line(const struct benchsync_run *r, char *out, size_t n)
{
	size_t len = strcspn(r->out, "\n");

	if (len >= n)
		benchsync_die("unexpected output: %s", r->out);
	memcpy(out, r->out, len);
	out[len] = '\0';
}

/* ---- background: server and relay ---- */

/* Starts bin in the background, output to log, and waits until it has
 * written a positive number into port_file. */
static pid_t spawn_listening(const char *bin, const char *const *argv,
			     const char *log, const char *port_file,
			     int *port)
{
	double t0 = benchsync_now();
	int status;
	pid_t pid;
	FILE *f;

	unlink(port_file);
	pid = fork();
	if (pid < 0)
		benchsync_die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int devnull = open("/dev/null", O_RDONLY);

		/* never outlive the benchmark, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(devnull, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	background_add(pid);
	while (benchsync_now() - t0 < 10) {
		check_stopping();
		if ((f = fopen(port_file, "r")) != NULL) {
			int ok = fscanf(f, "%d", port) == 1;

			fclose(f);
			if (ok && *port > 0)
				return pid;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			background_forget(pid);
			benchsync_die("%s ended at start (see %s)", argv[0],
				      log);
		}
		usleep(5000);
	}
	background_stop(pid, 5);
	benchsync_die("%s did not start (see %s)", argv[0], log);
}

void benchsync_server_start(struct benchsync_server *s, const char *name,
			    int branches)
{
	char log[BENCHSYNC_PATH], pf[BENCHSYNC_PATH], id[16], title[32];
	struct benchsync_run r;
	int i;

	benchsync_path(s->dir, sizeof s->dir, name);
	r = benchsync_bsd("init", "--data", s->dir, "--district", "Bench",
			  "--no-passphrase", NULL);
	benchsync_expect_ok(&r, "branchsyncd init");
	first_line(&r, s->key, sizeof s->key);
	benchsync_run_free(&r);
	for (i = 1; i <= branches; i++) {
		snprintf(id, sizeof id, "b%d", i);
		snprintf(title, sizeof title, "Village %d", i);
		r = benchsync_bsd("branch", "add", "--data", s->dir, "--id", id,
				  "--name", title, "--kind", "village", NULL);
		benchsync_expect_ok(&r, "branchsyncd branch add");
		benchsync_run_free(&r);
	}
	format(log, sizeof log, "%s.log", s->dir);
	format(pf, sizeof pf, "%s.port", s->dir);
	{
		const char *argv[] = { "branchsyncd", "serve", "--data", s->dir,
				       "--listen", "127.0.0.1:0", "--port-file",
				       pf, "--quiet", NULL };

		s->pid = spawn_listening(bin_bsd, argv, log, pf, &s->port);
	}
}

void benchsync_server_stop(struct benchsync_server *s)
{
	int status;

	if (s->pid <= 0)
		return;
	status = background_stop(s->pid, 30);
	s->pid = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		benchsync_die("branchsyncd ended with status %d", status);
}

/* ---- devices ---- */

void benchsync_device(const struct benchsync_server *s, const char *name,
		      const char *branch, char *db, size_t n)
{
	char tok[BENCHSYNC_HEX_KEY + 1], url[64], file[128];
	struct benchsync_run r;

	snprintf(file, sizeof file, "%s.db", name);
	benchsync_path(db, n, file);
	r = benchsync_bs("init", "--db", db, "--no-passphrase", NULL);
	benchsync_expect_ok(&r, "branchsync init");
	benchsync_run_free(&r);
	r = benchsync_bsd("token", "--data", s->dir, "--role", "branch",
			  "--branch", branch, NULL);
	benchsync_expect_ok(&r, "branchsyncd token");
	first_line(&r, tok, sizeof tok);
	benchsync_run_free(&r);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port);
	r = benchsync_bs("enroll", "--db", db, "--server", url, "--token", tok,
			 "--server-key", s->key, "--name", name, NULL);
	benchsync_expect_ok(&r, "branchsync enroll");
	benchsync_run_free(&r);
}

static sqlite3 *db_open(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		benchsync_die("cannot open %s", path);
	sqlite3_busy_timeout(db, 10000);
	return db;
}

void benchsync_point(const char *db_path, int port)
{
	sqlite3 *db = db_open(db_path);
	sqlite3_stmt *st = NULL;
	char url[64];

	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	if (sqlite3_prepare_v2(db, "UPDATE bs_settings SET value=?1 WHERE"
			       " key='server_url'", -1, &st, NULL) !=
		    SQLITE_OK ||
	    sqlite3_bind_text(st, 1, url, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(db) != 1)
		benchsync_die("cannot set server_url in %s: %s", db_path,
			      sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

void benchsync_member_ids(const char *db_path, char (*ids)[33], int n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int i = 0;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT id FROM members ORDER BY id", -1,
			       &st, NULL) != SQLITE_OK)
		benchsync_die("cannot read the members of %s", db_path);
	while (i < n && sqlite3_step(st) == SQLITE_ROW)
		snprintf(ids[i++], 33, "%s",
			 (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (i != n)
		benchsync_die("%s holds %d members, not %d", db_path, i, n);
}

long long benchsync_db_int(const char *db_path, const char *sql)
{
	sqlite3 *db = db_open(db_path);
	sqlite3_stmt *st = NULL;
	long long v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		benchsync_die("%s: %s", sql, sqlite3_errmsg(db));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

struct benchsync_run benchsync_sync(const char *db)
{
	struct benchsync_run r = benchsync_bs("sync", "--db", db, "--json",
					      NULL);

	benchsync_expect_ok(&r, "branchsync sync");
	return r;
}

/* ---- data ---- */

/* splitmix64: a fixed, well-mixed sequence */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#define PICK(list, x) list[(x) % (sizeof list / sizeof list[0])]

void benchsync_members_csv(const char *path, long first, long n)
{
	static const char *const surnames[] = {
		"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周",
		"徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗",
		"郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
	};
	static const char *const given[] = {
		"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋",
		"勇", "艳", "杰", "娟", "涛", "明", "超", "秀", "霞", "平",
		"刚", "桂", "英", "华", "玉", "兰", "飞", "鹏", "婷", "宇",
		"浩", "欣", "佳", "俊", "晨", "雪", "琳", "博", "文", "斌",
	};
	static const char *const jobs[] = {
		"", "farmer", "worker", "student", "teacher", "driver",
		"cook", "nurse", "welder", "shop owner", "electrician",
	};
	static const char *const cities[] = {
		"深圳", "广州", "东莞", "上海", "杭州", "苏州", "北京", "厦门",
	};
	FILE *f = fopen(path, "w");
	long i;

	if (!f)
		benchsync_die("cannot write %s", path);
	fputs("name,gender,birth_date,phone,status,occupation,away_city\n",
	      f);
	for (i = first; i < first + n; i++) {
		uint64_t a = mix((uint64_t)i), b = mix(a), c = mix(b);
		int away = (int)(b % 4) == 0;

		fprintf(f, "%s%s%s,%s,%d-%02d-%02d,1%d%09llu,%s,%s,%s\n",
			PICK(surnames, a), PICK(given, a >> 8),
			(a >> 16) % 3 ? PICK(given, a >> 24) : "",
			(a >> 32) % 2 ? "female" : "male",
			1985 + (int)((b >> 8) % 24), 1 + (int)((b >> 16) % 12),
			1 + (int)((b >> 24) % 28), 3 + (int)((b >> 32) % 7),
			(unsigned long long)(c % 1000000000ull),
			away ? "away" : "active", PICK(jobs, c >> 32),
			away ? PICK(cities, c >> 40) : "");
	}
	if (fclose(f) != 0)
		benchsync_die("cannot write %s", path);
}

/* ---- the counting relay ---- */

static void counts_read(const char *path, struct benchsync_wire *w)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		benchsync_die("no counts in %s", path);
	ok = fscanf(f, "up %lld down %lld connections %ld", &w->up, &w->down,
		    &w->connections) == 3;
	fclose(f);
	if (!ok)
		benchsync_die("cannot read the counts in %s", path);
}

struct benchsync_run benchsync_sync_counted(const struct benchsync_server *s,
					    const char *db,
					    struct benchsync_wire *w)
{
	char log[BENCHSYNC_PATH], pf[BENCHSYNC_PATH], cf[BENCHSYNC_PATH];
	char target[32], name[48];
	struct benchsync_run r;
	int port, status;
	pid_t pid;

	snprintf(name, sizeof name, "proxy%lu", proxy_seq++);
	benchsync_path(log, sizeof log, "proxy.log");
	format(pf, sizeof pf, "%s/%s.port", work, name);
	format(cf, sizeof cf, "%s/%s.count", work, name);
	snprintf(target, sizeof target, "127.0.0.1:%d", s->port);
	{
		const char *argv[] = { "faultproxy", "--listen", "127.0.0.1:0",
				       "--port-file", pf, "--target", target,
				       "--count-file", cf, NULL };

		pid = spawn_listening(bin_proxy, argv, log, pf, &port);
	}
	benchsync_point(db, port);
	r = benchsync_bs("sync", "--db", db, "--json", NULL);
	status = background_stop(pid, 10);
	benchsync_point(db, s->port);
	benchsync_expect_ok(&r, "branchsync sync (through the relay)");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		benchsync_die("faultproxy ended with status %d (see %s)",
			      status, log);
	counts_read(cf, w);
	unlink(cf);
	unlink(pf);
	return r;
}

/* the count file of each running relay, by pid */
static struct {
	pid_t pid;
	char count[BENCHSYNC_PATH];
} relays[MAX_BACKGROUND];

pid_t benchsync_relay_start(const struct benchsync_server *s,
			    const char *const *faults, int *port)
{
	char log[BENCHSYNC_PATH], pf[BENCHSYNC_PATH], cf[BENCHSYNC_PATH];
	char target[32], name[48];
	const char *argv[MAX_ARGS + 2];
	size_t n = 0;
	pid_t pid;
	int i;

	snprintf(name, sizeof name, "relay%lu", proxy_seq++);
	benchsync_path(log, sizeof log, "proxy.log");
	format(pf, sizeof pf, "%s/%s.port", work, name);
	format(cf, sizeof cf, "%s/%s.count", work, name);
	snprintf(target, sizeof target, "127.0.0.1:%d", s->port);
	argv[n++] = "faultproxy";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--port-file";
	argv[n++] = pf;
	argv[n++] = "--target";
	argv[n++] = target;
	argv[n++] = "--count-file";
	argv[n++] = cf;
	while (faults && *faults)
		if (n == MAX_ARGS)
			benchsync_die("too many relay options");
		else
			argv[n++] = *faults++;
	argv[n] = NULL;
	pid = spawn_listening(bin_proxy, argv, log, pf, port);
	unlink(pf);
	for (i = 0; i < MAX_BACKGROUND; i++)
		if (relays[i].pid <= 0) {
			relays[i].pid = pid;
			snprintf(relays[i].count, sizeof relays[i].count,
				 "%s", cf);
			return pid;
		}
	benchsync_die("too many relays");
}

void benchsync_relay_stop(pid_t pid, struct benchsync_wire *w)
{
	int i, status = background_stop(pid, 10);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		benchsync_die("faultproxy ended with status %d", status);
	for (i = 0; i < MAX_BACKGROUND; i++)
		if (relays[i].pid == pid) {
			counts_read(relays[i].count, w);
			unlink(relays[i].count);
			relays[i].pid = -1;
			return;
		}
	benchsync_die("no relay %d", (int)pid);
}

/* ---- figures ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double benchsync_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void benchsync_figure(const char *figure, double value, const char *unit,
		      double baseline, const char *baseline_name,
		      const char *goal, int ok)
{
	if (baseline_name && baseline != 0 && isfinite(baseline))
		printf("{\"figure\": \"%s\", \"value\": %.6f, \"unit\": \"%s\","
		       " \"baseline\": %.6f, \"baseline_name\": \"%s\","
		       " \"ratio\": %.4f, \"goal\": \"%s\", \"ok\": %s}\n",
		       figure, value, unit, baseline, baseline_name,
		       value / baseline, goal, ok ? "true" : "false");
	else
		printf("{\"figure\": \"%s\", \"value\": %.6f, \"unit\": \"%s\","
		       " \"baseline\": null, \"baseline_name\": \"\","
		       " \"ratio\": null, \"goal\": \"%s\", \"ok\": %s}\n",
		       figure, value, unit, goal, ok ? "true" : "false");
	fflush(stdout);
}
