/* test_cli.c - Check suite 'cli': runs the real branchsync binary
 * ($BRANCHSYNC_BIN) on replicas in a fresh temporary directory and checks
 * its stdout, stderr and exit codes against docs/CLI.md: every refusal with
 * its code and message, put/get/delete, query's read-only guard, CSV import
 * (GB18030, all-or-nothing, one change set per branch, 20,000 rows), the
 * outbox, passphrases, status and conflicts. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "replica.h"

#define MAX_ARGS 32
#define PASS "correct horse battery staple"

/* What one run of the binary produced. */
struct run {
	int code;            /* exit code, or 128 + signal */
	char *out, *err;     /* NUL-terminated, malloc'd */
	size_t outlen, errlen;
};

static char dir[256];
static char db[300];

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

static void append(char **buf, size_t *len, const char *p, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	ck_assert_ptr_nonnull(*buf);
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* Runs branchsync with the NULL-terminated arguments; the child gets no
 * stdin and no controlling terminal, so a passphrase prompt fails instead
 * of waiting. */
static struct run run_argv(const char *const *argv)
{
	const char *bin = getenv("BRANCHSYNC_BIN");
	int outp[2], errp[2], status = 0;
	struct run r;
	pid_t pid;

	memset(&r, 0, sizeof r);
	append(&r.out, &r.outlen, "", 0);
	append(&r.err, &r.errlen, "", 0);
	ck_assert_msg(bin != NULL, "BRANCHSYNC_BIN is not set");
	ck_assert_int_eq(pipe(outp), 0);
	ck_assert_int_eq(pipe(errp), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		setsid();
		dup2(devnull, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		close(outp[0]);
		close(errp[0]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(outp[1]);
	close(errp[1]);
	for (;;) {
		struct pollfd fds[2] = {
			{ outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 },
		};
		char buf[65536];
		int open_fds = 0, i;

		for (i = 0; i < 2; i++)
			if (fds[i].fd >= 0)
				open_fds++;
		if (!open_fds)
			break;
		if (poll(fds, 2, -1) < 0) {
			ck_assert_int_eq(errno, EINTR);
			continue;
		}
		for (i = 0; i < 2; i++) {
			ssize_t n;

			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			n = read(fds[i].fd, buf, sizeof buf);
			if (n <= 0) {
				close(fds[i].fd);
				if (i == 0)
					outp[0] = -1;
				else
					errp[0] = -1;
				continue;
			}
			if (i == 0)
				append(&r.out, &r.outlen, buf, (size_t)n);
			else
				append(&r.err, &r.errlen, buf, (size_t)n);
		}
		fds[0].fd = outp[0];
		fds[1].fd = errp[0];
		if (outp[0] < 0 && errp[0] < 0)
			break;
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	r.code = WIFEXITED(status) ? WEXITSTATUS(status)
				   : 128 + WTERMSIG(status);
	return r;
}

/* run("init", "--db", db, NULL) */
static struct run run(const char *first, ...)
{
	const char *argv[MAX_ARGS + 2];
	va_list ap;
	size_t n = 0;

	argv[n++] = "branchsync";
	argv[n++] = first;
	va_start(ap, first);
	while (n < MAX_ARGS && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return run_argv(argv);
}

/* Errors are one line on stderr: "branchsync: " and a lowercase word. */
static void check_error(const struct run *r, int code, const char *needle)
{
	ck_assert_msg(r->code == code, "exit %d, wanted %d; stderr: %s",
		      r->code, code, r->err);
	ck_assert_msg(strncmp(r->err, "branchsync: ", 12) == 0,
		      "stderr does not start with 'branchsync: ': %s", r->err);
	ck_assert_msg(!(r->err[12] >= 'A' && r->err[12] <= 'Z'),
		      "error does not start lowercase: %s", r->err);
	ck_assert_msg(strchr(r->err, '\n') == r->err + r->errlen - 1,
		      "error is not one line: %s", r->err);
	ck_assert_msg(strstr(r->err, needle) != NULL,
		      "stderr lacks '%s': %s", needle, r->err);
}

static void expect_error(int code, const char *needle, const char *first,
			 ...)
{
	const char *argv[MAX_ARGS + 2];
	struct run r;
	va_list ap;
	size_t n = 0;

	argv[n++] = "branchsync";
	argv[n++] = first;
	va_start(ap, first);
	while (n < MAX_ARGS && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	r = run_argv(argv);
	check_error(&r, code, needle);
	ck_assert_msg(r.outlen == 0, "stdout not empty on error: %s", r.out);
	run_free(&r);
}

static void expect_ok(struct run *r)
{
	ck_assert_msg(r->code == 0, "exit %d; stderr: %s", r->code, r->err);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof dir, "%s/bs-cli-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/replica.db", dir);
	unsetenv("BRANCHSYNC_DB");
	unsetenv("BRANCHSYNC_PASSPHRASE");
}

static void teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* A replica without passphrase; default branch b1 unless branch is NULL. */
static void init_plain(const char *branch)
{
	struct run r = branch ? run("init", "--db", db, "--no-passphrase",
				    "--branch", branch, NULL)
			      : run("init", "--db", db, "--no-passphrase",
				    NULL);

	expect_ok(&r);
	run_free(&r);
}

/* The single value a query prints (text mode: header line, value line). */
static long long query_int(const char *sql)
{
	struct run r = run("query", "--db", db, sql, NULL);
	const char *nl;
	long long v;

	expect_ok(&r);
	nl = strchr(r.out, '\n');
	ck_assert_ptr_nonnull(nl);
	v = strtoll(nl + 1, NULL, 10);
	run_free(&r);
	return v;
}

static long long outbox(void)
{
	return query_int("SELECT count(*) FROM bs_outbox");
}

/* put ... and return the printed id (static buffer). */
static const char *put_ok(const char *first, ...)
{
	static char id[128];
	const char *argv[MAX_ARGS + 2];
	struct run r;
	va_list ap;
	size_t n = 0;

	argv[n++] = "branchsync";
	argv[n++] = "put";
	argv[n++] = "--db";
	argv[n++] = db;
	argv[n++] = first;
	va_start(ap, first);
	while (n < MAX_ARGS && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	r = run_argv(argv);
	expect_ok(&r);
	ck_assert_msg(r.outlen > 1 && r.out[r.outlen - 1] == '\n', "%s", r.out);
	snprintf(id, sizeof id, "%.*s", (int)r.outlen - 1, r.out);
	run_free(&r);
	return id;
}

/* ---- program-wide ---- */

START_TEST(version_help_and_unknown_commands)
{
	static const char *const cmds[] = {
		"init", "put", "get", "delete", "query", "import-csv", "status",
		"conflicts", NULL,
	};
	struct run r;
	size_t i;

	r = run("--version", NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "branchsync 0.1.0\n");
	run_free(&r);
	r = run("--help", NULL);
	expect_ok(&r);
	for (i = 0; cmds[i]; i++)
		ck_assert_msg(strstr(r.out, cmds[i]) != NULL, "%s", cmds[i]);
	ck_assert_ptr_nonnull(strstr(r.out, "  sync "));
	ck_assert_ptr_nonnull(strstr(r.out, "  enroll "));
	ck_assert_ptr_nonnull(strstr(r.out, "  bundle "));
	ck_assert_ptr_nonnull(strstr(r.out, "  audit "));
	run_free(&r);
	for (i = 0; cmds[i]; i++) {
		char want[64];

		r = run(cmds[i], "--help", NULL);
		expect_ok(&r);
		snprintf(want, sizeof want, "usage: branchsync %s", cmds[i]);
		ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "%s",
			      r.out);
		ck_assert_uint_eq(r.errlen, 0);
		run_free(&r);
		/* --help wins wherever it is, even after bad options. */
		r = run(cmds[i], "--bogus", "x", "--help", NULL);
		expect_ok(&r);
		run_free(&r);
	}
	expect_error(1, "unknown command 'bogus'", "bogus", "--db", db, NULL);
	r = run_argv((const char *const[]){ "branchsync", NULL });
	ck_assert_int_eq(r.code, 1);
	ck_assert_uint_eq(r.outlen, 0);
	run_free(&r);
}
END_TEST

START_TEST(usage_errors)
{
	init_plain("b1");
	expect_error(1, "no replica given", "get", "members", "x", NULL);
	expect_error(1, "unknown option '--bogus'", "get", "--db", db,
		     "--bogus", "members", "x", NULL);
	expect_error(1, "needs a value", "get", "members", "x", "--db", NULL);
	expect_error(1, "given twice", "get", "--db", db, "--db", db,
		     "members", "x", NULL);
	expect_error(1, "needs a TABLE and an ID", "get", "--db", db,
		     "members", NULL);
	expect_error(1, "is not COLUMN=VALUE", "put", "--db", db, "members",
		     "name", NULL);
	expect_error(1, "use --id", "put", "--db", db, "members", "id=x",
		     "name=y", NULL);
	expect_error(1, "one of --json and --csv", "query", "--db", db,
		     "SELECT 1", "--json", "--csv", NULL);
	expect_error(1, "unknown encoding", "import-csv", "--db", db,
		     "members", "x.csv", "--encoding", "latin1", NULL);
	expect_error(1, "init takes no arguments", "init", "--db", "y.db",
		     "extra", NULL);
	/* BRANCHSYNC_DB stands in for --db. */
	setenv("BRANCHSYNC_DB", db, 1);
	{
		struct run r = run("status", NULL);

		expect_ok(&r);
		run_free(&r);
	}
	unsetenv("BRANCHSYNC_DB");
}
END_TEST

/* ---- init ---- */

START_TEST(init_prints_device_id_and_refuses_existing)
{
	struct run r, s;
	size_t i;

	r = run("init", "--db", db, "--no-passphrase", "--name", "office pc",
		NULL);
	expect_ok(&r);
	ck_assert_uint_eq(r.outlen, 65);
	for (i = 0; i < 64; i++)
		ck_assert(strchr("0123456789abcdef", r.out[i]) != NULL);
	ck_assert_ptr_nonnull(strstr(r.err, "warning"));
	ck_assert_ptr_nonnull(strstr(r.err, "unencrypted"));
	s = run("status", "--db", db, "--json", NULL);
	expect_ok(&s);
	ck_assert(strstr(s.out, "\"key_encrypted\":false") != NULL);
	ck_assert(strstr(s.out, "\"device_name\":\"office pc\"") != NULL);
	ck_assert(strncmp(strstr(s.out, "\"device_id\":\"") + 13, r.out, 64)
		  == 0);
	run_free(&s);
	run_free(&r);
	expect_error(2, "already exists", "init", "--db", db,
		     "--no-passphrase", NULL);
	expect_error(2, "--branch must be a branch id", "init", "--db",
		     "other.db", "--no-passphrase", "--branch", "bad id", NULL);
	/* Without a passphrase source and without a terminal: refused, and
	 * no half-made replica is left behind. */
	{
		char other[320];
		struct stat st;

		snprintf(other, sizeof other, "%s/other.db", dir);
		expect_error(2, "BRANCHSYNC_PASSPHRASE", "init", "--db", other,
			     NULL);
		ck_assert_int_ne(stat(other, &st), 0);
	}
}
END_TEST

/* ---- put, get, delete ---- */

START_TEST(put_get_delete_round_trip)
{
	const char *id;
	char saved[128];
	struct run r;

	init_plain("b1");
	ck_assert_int_eq(outbox(), 0);
	id = put_ok("members", "name=\xe5\xbc\xa0\xe4\xb8\x89",
		    "gender=\xe7\x94\xb7", "phone=138-0000-0001",
		    "birth_date=1990-01-15", NULL);
	ck_assert_uint_eq(strlen(id), 32);
	snprintf(saved, sizeof saved, "%s", id);
	ck_assert_int_eq(outbox(), 1);

	r = run("get", "--db", db, "members", saved, NULL);
	expect_ok(&r);
	ck_assert(strstr(r.out, "name: \xe5\xbc\xa0\xe4\xb8\x89\n") != NULL);
	ck_assert(strstr(r.out, "gender: male\n") != NULL);
	ck_assert(strstr(r.out, "phone: 13800000001\n") != NULL);
	ck_assert(strstr(r.out, "branch_id: b1\n") != NULL);
	ck_assert(strstr(r.out, "status: active\n") != NULL);
	run_free(&r);
	r = run("get", "--db", db, "members", saved, "--json", NULL);
	expect_ok(&r);
	ck_assert_msg(strstr(r.out, "\"name\":\"\xe5\xbc\xa0\xe4\xb8\x89\"")
		      != NULL, "%s", r.out);
	ck_assert(strstr(r.out, "\"occupation\":null") != NULL);
	ck_assert(strncmp(r.out, "{\"id\":\"", 7) == 0);
	run_free(&r);
	/* INTEGER columns are JSON numbers. */
	id = put_ok("activities", "title=festival", "participants=42", NULL);
	r = run("get", "--db", db, "activities", id, "--json", NULL);
	expect_ok(&r);
	ck_assert_msg(strstr(r.out, "\"participants\":42,") != NULL, "%s",
		      r.out);
	run_free(&r);
	ck_assert_int_eq(outbox(), 2);

	r = run("delete", "--db", db, "members", saved, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(r.outlen, 0);
	run_free(&r);
	ck_assert_int_eq(outbox(), 3);
	expect_error(2, "was deleted", "get", "--db", db, "members", saved,
		     NULL);
	expect_error(2, "was deleted", "put", "--db", db, "members", "--id",
		     saved, "name=again", NULL);
	expect_error(2, "was deleted", "delete", "--db", db, "members", saved,
		     NULL);
	ck_assert_int_eq(outbox(), 3);
	expect_error(2, "no row nosuch in table 'members'", "get", "--db", db,
		     "members", "nosuch", NULL);
	expect_error(2, "no row nosuch in table 'members'", "delete", "--db",
		     db, "members", "nosuch", NULL);
	ck_assert_int_eq(outbox(), 3);
}
END_TEST

START_TEST(update_changes_only_named_columns)
{
	char id[128];
	struct run r;

	init_plain("b1");
	snprintf(id, sizeof id, "%s",
		 put_ok("members", "name=Li", "phone=13900000000",
			"occupation=farmer", NULL));
	r = run("put", "--db", db, "members", "--id", id,
		"occupation=driver", "away_city=Hangzhou", NULL);
	expect_ok(&r);
	ck_assert_uint_eq(r.outlen, strlen(id) + 1);
	ck_assert(strncmp(r.out, id, strlen(id)) == 0);
	run_free(&r);
	ck_assert_int_eq(outbox(), 2);
	r = run("get", "--db", db, "members", id, NULL);
	expect_ok(&r);
	ck_assert(strstr(r.out, "occupation: driver\n") != NULL);
	ck_assert(strstr(r.out, "away_city: Hangzhou\n") != NULL);
	ck_assert(strstr(r.out, "phone: 13900000000\n") != NULL);
	ck_assert(strstr(r.out, "name: Li\n") != NULL);
	run_free(&r);
	/* The change set of the update carries only what changed. */
	ck_assert_int_eq(query_int("SELECT count(*) FROM members WHERE "
				   "phone='13900000000' AND name='Li'"), 1);
	/* An empty value clears an optional column. */
	r = run("put", "--db", db, "members", "--id", id, "phone=", NULL);
	expect_ok(&r);
	run_free(&r);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members WHERE "
				   "phone IS NULL"), 1);
	expect_error(2, "cannot move", "put", "--db", db, "members", "--id",
		     id, "branch_id=b2", NULL);
	expect_error(2, "is required", "put", "--db", db, "members", "--id",
		     id, "name=", NULL);
	ck_assert_int_eq(outbox(), 3);
}
END_TEST

START_TEST(put_refusals)
{
	init_plain(NULL);
	expect_error(2, "branch_id is required", "put", "--db", db, "members",
		     "name=x", NULL);
	expect_error(2, "unknown table 'nope'", "put", "--db", db, "nope",
		     "name=x", NULL);
	expect_error(2, "unknown column 'nope' in table 'members'", "put",
		     "--db", db, "members", "nope=1", "branch_id=b1", NULL);
	expect_error(2, "column 'birth_date' of table 'members'", "put",
		     "--db", db, "members", "name=x", "birth_date=2020-13-01",
		     "branch_id=b1", NULL);
	expect_error(2, "column 'gender' of table 'members' must be one of",
		     "put", "--db", db, "members", "name=x", "gender=x",
		     "branch_id=b1", NULL);
	expect_error(2, "column 'name' of table 'members' is required", "put",
		     "--db", db, "members", "gender=f", "branch_id=b1", NULL);
	expect_error(2, "no row nosuch in table 'members'", "put", "--db", db,
		     "members", "--id", "nosuch", "name=x", NULL);
	expect_error(2, "not a valid record id", "put", "--db", db, "members",
		     "--id", "bad id", "name=x", NULL);
	expect_error(2, "no replica at", "put", "--db", "/nonexistent/x.db",
		     "members", "name=x", NULL);
	ck_assert_int_eq(outbox(), 0);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 0);
	/* With branch_id given it works; a branch takes branch_id as its id. */
	put_ok("members", "name=x", "branch_id=b1", NULL);
	ck_assert_str_eq(put_ok("branches", "name=Village One",
				"kind=village", "branch_id=v1", NULL), "v1");
	expect_error(2, "already exists", "put", "--db", db, "branches",
		     "name=Again", "kind=village", "branch_id=v1", NULL);
	ck_assert_int_eq(outbox(), 2);
}
END_TEST

/* ---- query ---- */

START_TEST(query_is_read_only)
{
	static const char *const writes[] = {
		"INSERT INTO members(id, branch_id, name) VALUES('a','b1','c')",
		"UPDATE members SET name='x'",
		"DELETE FROM members",
		"DROP TABLE members",
		"CREATE TABLE t(x)",
		"ATTACH 'other.db' AS o",
		"PRAGMA user_version=5",
		"PRAGMA journal_mode=DELETE",
		"PRAGMA query_only=0",
		"VACUUM",
		"REPLACE INTO bs_settings(key, value) VALUES('role','district')",
		NULL,
	};
	size_t i;

	init_plain("b1");
	put_ok("members", "name=x", NULL);
	for (i = 0; writes[i]; i++)
		expect_error(2, "query is read-only; use put, delete or "
			     "import-csv to change records", "query", "--db",
			     db, writes[i], NULL);
	expect_error(2, "one sql statement only", "query", "--db", db,
		     "SELECT 1; DELETE FROM members", NULL);
	expect_error(2, "one sql statement only", "query", "--db", db,
		     "SELECT 1; SELECT 2", NULL);
	expect_error(2, "the query is empty", "query", "--db", db, " ; ",
		     NULL);
	expect_error(2, "not valid sql", "query", "--db", db, "SELEKT 1",
		     NULL);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 1);
	ck_assert_int_eq(query_int("PRAGMA user_version"), REPLICA_VERSION);
	ck_assert_int_eq(query_int("SELECT 7;  ;-- trailing comment"), 7);
	ck_assert_int_eq(query_int("SELECT count(*) FROM bs_settings WHERE "
				   "key='role'"), 0);
}
END_TEST

START_TEST(query_formats)
{
	struct run r;

	init_plain("b1");
	put_ok("members", "name=a \"b\", c", "occupation=x\ty", NULL);
	r = run("query", "--db", db, "SELECT name, occupation, phone, 5 AS n,"
		" x'00ff' AS b FROM members", NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "name\toccupation\tphone\tn\tb\n"
				"a \"b\", c\tx\\ty\t\t5\t00ff\n");
	run_free(&r);
	r = run("query", "--db", db, "SELECT name, occupation, phone, 5 AS n,"
		" x'00ff' AS b FROM members", "--csv", NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "name,occupation,phone,n,b\r\n"
				"\"a \"\"b\"\", c\",x\ty,,5,00ff\r\n");
	run_free(&r);
	r = run("query", "--db", db, "SELECT name, occupation, phone, 5 AS n,"
		" x'00ff' AS b FROM members", "--json", NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "[{\"name\":\"a \\\"b\\\", c\","
				"\"occupation\":\"x\\ty\",\"phone\":null,"
				"\"n\":5,\"b\":\"00ff\"}]\n");
	run_free(&r);
	r = run("query", "--db", db, "SELECT 1 WHERE 0", "--json", NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "[]\n");
	run_free(&r);
}
END_TEST

/* ---- import ---- */

/* 张三 in GB18030 (2-byte forms), 男, 㛃 (a 4-byte form), 女. */
static const char gb_csv[] =
	"Name,gender,birth_date,branch_id\r\n"
	"\xd5\xc5\xc8\xfd,\xc4\xd0,1980-05-01,\r\n"
	"\x82\x30\xb7\x31,\xc5\xae,,b2\r\n";

START_TEST(import_gb18030)
{
	char path[320];
	struct run r;

	init_plain("b1");
	snprintf(path, sizeof path, "%s/gb.csv", dir);
	write_file(path, gb_csv, sizeof gb_csv - 1);
	r = run("import-csv", "--db", db, "members", path, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(r.outlen, 0);
	ck_assert_msg(strstr(r.err, "imported 2 rows into members (2 change "
			     "sets)") != NULL, "%s", r.err);
	run_free(&r);
	/* One change set per branch: b1 (default) and b2. */
	ck_assert_int_eq(outbox(), 2);
	ck_assert_int_eq(query_int("SELECT count(*) FROM bs_outbox WHERE "
				   "scope IN ('b1', 'b2')"), 2);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members WHERE name="
				   "'\xe5\xbc\xa0\xe4\xb8\x89' AND gender="
				   "'male' AND branch_id='b1'"), 1);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members WHERE name="
				   "'\xe3\x9b\x83' AND gender='female' AND "
				   "branch_id='b2' AND birth_date IS NULL"),
			 1);
	/* Explicit encodings: right one works, wrong one is refused. */
	r = run("import-csv", "--db", db, "members", path, "--encoding",
		"gb18030", NULL);
	expect_ok(&r);
	run_free(&r);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 4);
	expect_error(2, "", "import-csv", "--db", db, "members", path,
		     "--encoding", "utf-8", NULL);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 4);
}
END_TEST

START_TEST(import_vector_header_is_decoded)
{
	char path[400];
	const char *vec = getenv("BRANCHSYNC_VECTORS");

	ck_assert_ptr_nonnull(vec);
	init_plain("b1");
	/* The roster's 'notes' column is not in members: the header was
	 * decoded from GB18030 and checked against the table. */
	snprintf(path, sizeof path, "%s/csv/roster-gb18030-crlf.csv", vec);
	expect_error(2, "unknown column 'notes' in table 'members'",
		     "import-csv", "--db", db, "members", path, NULL);
	ck_assert_int_eq(outbox(), 0);
}
END_TEST

START_TEST(import_bad_row_applies_nothing)
{
	static const char csv[] =
		"name,birth_date\n"
		"a,2000-01-01\n"
		"b,2000-01-02\n"
		"c,2000-01-03\n"
		"d,2000-13-01\n"
		"e,2000-01-05\n";
	char path[320];

	init_plain("b1");
	put_ok("members", "name=before", NULL);
	snprintf(path, sizeof path, "%s/bad.csv", dir);
	write_file(path, csv, sizeof csv - 1);
	expect_error(2, "line 5: column 'birth_date' of table 'members'",
		     "import-csv", "--db", db, "members", path, NULL);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 1);
	ck_assert_int_eq(outbox(), 1);
	expect_error(2, "cannot read", "import-csv", "--db", db, "members",
		     "/nonexistent.csv", NULL);
	expect_error(2, "unknown table 'nope'", "import-csv", "--db", db,
		     "nope", path, NULL);
}
END_TEST

START_TEST(import_updates_by_id_and_refuses_deleted)
{
	char path[320], csv[512], id[128], gone[128];
	struct run r;

	init_plain("b1");
	snprintf(id, sizeof id, "%s",
		 put_ok("members", "name=old", "phone=13900000000", NULL));
	snprintf(gone, sizeof gone, "%s", put_ok("members", "name=gone", NULL));
	r = run("delete", "--db", db, "members", gone, NULL);
	expect_ok(&r);
	run_free(&r);
	snprintf(path, sizeof path, "%s/upd.csv", dir);
	snprintf(csv, sizeof csv, "id,name\n%s,new\n,fresh\nchosen-1,chosen\n",
		 id);
	write_file(path, csv, strlen(csv));
	r = run("import-csv", "--db", db, "members", path, NULL);
	expect_ok(&r);
	ck_assert_msg(strstr(r.err, "imported 3 rows into members (1 change "
			     "set)") != NULL, "%s", r.err);
	run_free(&r);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members WHERE "
				   "name='new' AND phone='13900000000'"), 1);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members WHERE "
				   "id='chosen-1'"), 1);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 3);
	ck_assert_int_eq(outbox(), 4);
	snprintf(csv, sizeof csv, "id,name\nok-2,fine\n%s,back\n", gone);
	write_file(path, csv, strlen(csv));
	expect_error(2, "line 3: record", "import-csv", "--db", db, "members",
		     path, NULL);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 3);
	ck_assert_int_eq(outbox(), 4);
}
END_TEST

START_TEST(import_branches_one_set_each)
{
	static const char ok[] = "id,branch_id,name,kind\n"
				 "v1,,Village One,village\n"
				 ",v2,Village Two,VILLAGE\n"
				 "v3,v3,Town,township\n";
	static const char bad[] = "id,branch_id,name,kind\n"
				  "v4,v5,Mismatch,village\n";
	char path[320];
	struct run r;

	init_plain(NULL);
	snprintf(path, sizeof path, "%s/branches.csv", dir);
	write_file(path, ok, sizeof ok - 1);
	r = run("import-csv", "--db", db, "branches", path, NULL);
	expect_ok(&r);
	ck_assert_msg(strstr(r.err, "imported 3 rows into branches (3 change "
			     "sets)") != NULL, "%s", r.err);
	run_free(&r);
	ck_assert_int_eq(query_int("SELECT count(*) FROM branches WHERE "
				   "id=branch_id AND id IN ('v1','v2','v3')"),
			 3);
	ck_assert_int_eq(query_int("SELECT count(*) FROM branches WHERE "
				   "kind='village'"), 2);
	ck_assert_int_eq(query_int("SELECT count(DISTINCT scope) FROM "
				   "bs_outbox"), 3);
	write_file(path, bad, sizeof bad - 1);
	expect_error(2, "line 2: the branch_id of a row of table 'branches' "
		     "must equal its id", "import-csv", "--db", db, "branches",
		     path, NULL);
	ck_assert_int_eq(outbox(), 3);
}
END_TEST

START_TEST(import_twenty_thousand_rows)
{
	char path[320];
	FILE *f;
	struct run r;
	struct timespec t0, t1;
	double secs;
	int i;

	init_plain("b1");
	snprintf(path, sizeof path, "%s/big.csv", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("name,gender,birth_date,phone,occupation,branch_id\n", f);
	for (i = 0; i < 20000; i++)
		fprintf(f, "member %d,%s,19%02d-%02d-%02d,138%08d,worker,%s\n",
			i, i % 2 ? "\xe7\x94\xb7" : "f", 50 + i % 50,
			1 + i % 12, 1 + i % 28, i, i % 3 ? "b1" : "b2");
	ck_assert_int_eq(fclose(f), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = run("import-csv", "--db", db, "members", path, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	expect_ok(&r);
	/* two branches, each cut into sets of about 512 KiB of values */
	ck_assert_msg(strstr(r.err, "imported 20000 rows into members (") !=
		      NULL, "%s", r.err);
	run_free(&r);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "import of 20000 rows: %.2f s\n", secs);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 20000);
	/* split by branch, and big branches cut further */
	ck_assert_int_ge(outbox(), 3);
	ck_assert_int_eq(query_int("SELECT count(DISTINCT scope) FROM bs_outbox"),
			 2);
}
END_TEST

/* ---- passphrase ---- */

START_TEST(passphrase_protects_the_key)
{
	struct run r;

	setenv("BRANCHSYNC_PASSPHRASE", PASS, 1);
	r = run("init", "--db", db, "--branch", "b1", NULL);
	expect_ok(&r);
	ck_assert_ptr_null(strstr(r.err, "warning"));
	run_free(&r);
	put_ok("members", "name=ok", NULL);
	ck_assert_int_eq(outbox(), 1);
	setenv("BRANCHSYNC_PASSPHRASE", "wrong", 1);
	expect_error(2, "wrong passphrase", "put", "--db", db, "members",
		     "name=no", NULL);
	expect_error(2, "wrong passphrase", "delete", "--db", db, "members",
		     "x", NULL);
	unsetenv("BRANCHSYNC_PASSPHRASE");
	expect_error(2, "BRANCHSYNC_PASSPHRASE", "put", "--db", db, "members",
		     "name=no", NULL);
	/* Reading needs no passphrase. */
	r = run("status", "--db", db, "--json", NULL);
	expect_ok(&r);
	ck_assert(strstr(r.out, "\"key_encrypted\":true") != NULL);
	run_free(&r);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 1);
	ck_assert_int_eq(outbox(), 1);
}
END_TEST

/* ---- status, conflicts ---- */

START_TEST(status_reports_pending_and_counts)
{
	struct run r;
	char want[128];
	long long bytes;

	init_plain("b1");
	put_ok("members", "name=a", NULL);
	put_ok("members", "name=b", NULL);
	put_ok("activities", "title=t", NULL);
	bytes = query_int("SELECT sum(length(bytes)) FROM bs_outbox");
	r = run("status", "--db", db, "--json", NULL);
	expect_ok(&r);
	snprintf(want, sizeof want, "\"pending_changesets\":3,"
		 "\"pending_bytes\":%lld,", bytes);
	ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
	ck_assert(strstr(r.out, "\"members\":2,") != NULL);
	ck_assert(strstr(r.out, "\"activities\":1,") != NULL);
	ck_assert(strstr(r.out, "\"enrolled\":false") != NULL);
	ck_assert(strstr(r.out, "\"last_sync\":null") != NULL);
	ck_assert(strstr(r.out, "\"default_branch\":\"b1\"") != NULL);
	{
		char want_v[64];
		snprintf(want_v, sizeof want_v, "\"replica_version\":%d", REPLICA_VERSION);
		ck_assert(strstr(r.out, want_v) != NULL);
	}
	ck_assert(strstr(r.out, "\"clock\":\"20") != NULL);
	run_free(&r);
	r = run("status", "--db", db, NULL);
	expect_ok(&r);
	ck_assert(strstr(r.out, "not enrolled") != NULL);
	ck_assert(strstr(r.out, "3 change sets") != NULL);
	ck_assert(strstr(r.out, "never") != NULL);
	run_free(&r);
}
END_TEST

/* Sets a setting the way enrollment will, straight into the replica. */
static void set_setting(const char *key, const char *value)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	ck_assert_int_eq(sqlite3_prepare_v2(h, "INSERT OR REPLACE INTO "
					    "bs_settings(key, value) "
					    "VALUES(?1, ?2)", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

START_TEST(enrollment_limits_writes)
{
	char path[320];
	static const char csv[] = "name,branch_id\na,b1\nb,b2\n";
	struct run r;

	init_plain("b9");
	set_setting("role", "branch");
	set_setting("scope", "b1");
	/* The enrolled branch, not the default branch, is where rows go. */
	put_ok("members", "name=mine", NULL);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members WHERE "
				   "branch_id='b1'"), 1);
	expect_error(2, "enrolled for branch b1", "put", "--db", db,
		     "members", "name=theirs", "branch_id=b2", NULL);
	snprintf(path, sizeof path, "%s/two.csv", dir);
	write_file(path, csv, sizeof csv - 1);
	expect_error(2, "line 3: this device is enrolled for branch b1",
		     "import-csv", "--db", db, "members", path, NULL);
	ck_assert_int_eq(query_int("SELECT count(*) FROM members"), 1);
	ck_assert_int_eq(outbox(), 1);
	r = run("status", "--db", db, NULL);
	expect_ok(&r);
	ck_assert_msg(strstr(r.out, "enrollment:     branch, scope b1") != NULL,
		      "%s", r.out);
	run_free(&r);
	set_setting("role", "auditor");
	expect_error(2, "enrolled as an auditor", "put", "--db", db, "members",
		     "name=x", "branch_id=b1", NULL);
	ck_assert_int_eq(outbox(), 1);
}
END_TEST

/* Writes one conflict row as merge would, straight into the replica. */
static void add_conflict(void)
{
	sqlite3 *h = NULL;
	char *msg = NULL;

	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	ck_assert_msg(sqlite3_exec(h,
		"INSERT INTO bs_conflicts(tbl, row_id, branch_id, col, kind,"
		" kept_value, kept_hlc, kept_device, lost_value, lost_hlc,"
		" lost_device, changeset) VALUES('members', 'm1', 'b1', 'phone',"
		" 'concurrent', '13800000001', 7, zeroblob(32), 'x\ty', NULL,"
		" x'1122334455667788990011223344556677889900112233445566778899001122',"
		" x'abcd')", NULL, NULL, &msg) == SQLITE_OK, "%s", msg);
	sqlite3_close(h);
}

START_TEST(conflicts_lists_rows)
{
	struct run r;

	init_plain("b1");
	r = run("conflicts", "--db", db, NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "no conflicts\n");
	run_free(&r);
	r = run("conflicts", "--db", db, "--json", NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "[]\n");
	run_free(&r);
	add_conflict();
	r = run("conflicts", "--db", db, NULL);
	expect_ok(&r);
	ck_assert_msg(strstr(r.out, "table members, record m1, branch b1, "
			     "column phone, concurrent") != NULL, "%s", r.out);
	ck_assert_msg(strstr(r.out, "kept: \"13800000001\" at "
			     "1970-01-01T00:00:00.000Z+0007 by "
			     "0000000000000000\n") != NULL, "%s", r.out);
	ck_assert_msg(strstr(r.out, "lost: \"x\\ty\" at (unknown) by "
			     "1122334455667788\n") != NULL, "%s", r.out);
	run_free(&r);
	r = run("conflicts", "--db", db, "--json", NULL);
	expect_ok(&r);
	ck_assert_msg(strstr(r.out, "\"lost_device\":\"11223344556677889900"
			     "11223344556677889900112233445566778899001122\"")
		      != NULL, "%s", r.out);
	ck_assert(strstr(r.out, "\"kept_hlc\":7,") != NULL);
	ck_assert(strstr(r.out, "\"lost_hlc\":null,") != NULL);
	ck_assert(strstr(r.out, "\"lost_value\":\"x\\ty\"") != NULL);
	ck_assert(strstr(r.out, "\"resolved\":false}") != NULL);
	ck_assert(strstr(r.out, "\"changeset\":\"abcd\"") != NULL);
	run_free(&r);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("cli");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, version_help_and_unknown_commands);
	tcase_add_test(tc, usage_errors);
	tcase_add_test(tc, init_prints_device_id_and_refuses_existing);
	tcase_add_test(tc, put_get_delete_round_trip);
	tcase_add_test(tc, update_changes_only_named_columns);
	tcase_add_test(tc, put_refusals);
	tcase_add_test(tc, query_is_read_only);
	tcase_add_test(tc, query_formats);
	tcase_add_test(tc, import_gb18030);
	tcase_add_test(tc, import_vector_header_is_decoded);
	tcase_add_test(tc, import_bad_row_applies_nothing);
	tcase_add_test(tc, import_updates_by_id_and_refuses_deleted);
	tcase_add_test(tc, import_branches_one_set_each);
	tcase_add_test(tc, import_twenty_thousand_rows);
	tcase_add_test(tc, passphrase_protects_the_key);
	tcase_add_test(tc, enrollment_limits_writes);
	tcase_add_test(tc, status_reports_pending_and_counts);
	tcase_add_test(tc, conflicts_lists_rows);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	int failed;

	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
