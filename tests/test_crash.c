/* test_crash.c - Check suite 'crash': kill -9 of `branchsync import-csv` at
 * random moments during a large import, 20 times; after each kill the
 * replica passes PRAGMA integrity_check and holds either all of the import
 * with all of its change sets, or none of either. BRANCHSYNC_SEED replays. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define ROWS 20000
#define RUNS 20

static char dir[256], seed_db[300], csv[300];

static pid_t spawn(const char *const *argv)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int run_wait(const char *const *argv)
{
	int status;
	pid_t pid = spawn(argv);

	ck_assert_int_gt(pid, 0);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void copy_file(const char *from, const char *to)
{
	char cmd[1024];

	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_csv(void)
{
	FILE *f = fopen(csv, "w");
	int i;

	ck_assert_ptr_nonnull(f);
	fprintf(f, "branch_id,name,gender,birth_date,phone,status,away_city\n");
	for (i = 0; i < ROWS; i++)
		fprintf(f, "b%d,成员%d,%s,199%d-0%d-1%d,1380000%04d,%s,%s\n",
			i % 2, i, i % 2 ? "女" : "男", i % 10, 1 + i % 9, i % 10,
			i % 10000, i % 3 ? "active" : "away",
			i % 3 ? "" : "\"深圳, 南山\"");
	ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
	const char *bin = getenv("BRANCHSYNC_BIN");
	const char *init[] = {bin, "init", "--db", seed_db, "--no-passphrase",
			      "--name", "crash-test", NULL};

	ck_assert_ptr_nonnull(bin);
	snprintf(dir, sizeof dir, "/tmp/bs-crash-%ld", (long)getpid());
	mkdir(dir, 0700);
	snprintf(seed_db, sizeof seed_db, "%s/seed.db", dir);
	snprintf(csv, sizeof csv, "%s/roster.csv", dir);
	ck_assert_int_eq(run_wait(init), 0);
	/* one checkpointed file to copy: no -wal beside it */
	{
		sqlite3 *db;
		ck_assert_int_eq(sqlite3_open(seed_db, &db), SQLITE_OK);
		sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
			     NULL);
		sqlite3_close(db);
	}
	write_csv();
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static long long query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The replica after a kill: sound, and all or nothing. */
static int check_replica(const char *path, long long full_sets)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long members, sets, rows_meta;

	/* opening read-write lets SQLite recover the WAL as a restart would */
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	members = query_int(db, "SELECT count(*) FROM members");
	sets = query_int(db, "SELECT count(*) FROM bs_outbox");
	/* every row has its clocks: explicit (bs_rows) or implicit (a
	 * non-empty slot of a bs_implicit range) */
	rows_meta = query_int(db, "SELECT (SELECT count(*) FROM bs_rows) +"
			      " (SELECT coalesce(sum(rows), 0) FROM bs_implicit)");
	sqlite3_close(db);
	if (members == 0) {
		ck_assert_int_eq(sets, 0);
		ck_assert_int_eq(rows_meta, 0);
		return 0;
	}
	ck_assert_int_eq(members, ROWS);
	ck_assert_int_eq(sets, full_sets);
	ck_assert_int_eq(rows_meta, ROWS);
	return 1;
}

START_TEST(kill_during_import)
{
	const char *bin = getenv("BRANCHSYNC_BIN");
	const char *seed_env = getenv("BRANCHSYNC_SEED");
	unsigned seed = seed_env ? (unsigned)atoi(seed_env) : (unsigned)time(NULL);
	char db[300];
	const char *import[] = {bin, "import-csv", "--db", db, "members", csv,
				NULL};
	double t0, full;
	long long full_sets;
	int i, complete = 0, none = 0;

	printf("crash: seed %u\n", seed);
	/* a complete import, to know its duration and its change sets */
	snprintf(db, sizeof db, "%s/full.db", dir);
	copy_file(seed_db, db);
	t0 = now_s();
	ck_assert_int_eq(run_wait(import), 0);
	full = now_s() - t0;
	{
		sqlite3 *h;
		sqlite3_open(db, &h);
		full_sets = query_int(h, "SELECT count(*) FROM bs_outbox");
		sqlite3_close(h);
	}
	ck_assert_int_ge(full_sets, 2); /* two branches: one set each at least */

	for (i = 0; i < RUNS; i++) {
		double delay = full * 1.2 * (rand_r(&seed) % 1000) / 1000.0;
		pid_t pid;
		int status;

		snprintf(db, sizeof db, "%s/run%d.db", dir, i);
		copy_file(seed_db, db);
		pid = spawn(import);
		ck_assert_int_gt(pid, 0);
		usleep((useconds_t)(delay * 1e6));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (check_replica(db, full_sets))
			complete++;
		else
			none++;
	}
	printf("crash: %d kills, %d left the whole import, %d left none "
	       "(import takes %.2f s)\n", RUNS, complete, none, full);
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("import");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, kill_during_import);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crash_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
