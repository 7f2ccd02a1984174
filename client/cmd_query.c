/* cmd_query.c - `branchsync query`: one read-only SQL statement over the
 * replica, printed as text, JSON or CSV. Read-only three times over: the
 * connection is opened read-only with query_only set, every statement must
 * be read-only by sqlite3_stmt_readonly, and an authorizer refuses ATTACH,
 * DETACH and pragmas that set something. Not for changing records. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "commands.h"

enum query_format { QUERY_TEXT, QUERY_JSON, QUERY_CSV };

#define QUERY_READ_ONLY_MSG \
	"query is read-only; use put, delete or import-csv to change records"

static const char query_usage[] =
	"usage: branchsync query --db FILE SQL [--json | --csv]\n\n"
	"Runs one read-only SQL statement on the replica and prints its rows: "
	"by\ndefault tab-separated with a header line, with --json an array of "
	"objects,\nwith --csv RFC 4180 CSV with a header line. The record "
	"tables and the\nreplica's own bs_* tables can be read; nothing can be "
	"changed.\n\n"
	"  --db FILE   the replica (or $BRANCHSYNC_DB)\n"
	"  --json      print a JSON array of objects\n"
	"  --csv       print CSV\n";

/* Pragmas that take an argument only to say what to report on. */
static const char *const query_info_pragmas[] = {
	"table_info", "table_xinfo", "table_list", "index_list", "index_info",
	"index_xinfo", "foreign_key_list", "integrity_check", "quick_check",
	NULL,
};

static int query_authorize(void *unused, int action, const char *a,
			   const char *b, const char *dbname,
			   const char *trigger)
{
	size_t i;

	(void)unused;
	(void)dbname;
	(void)trigger;
	switch (action) {
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
		return SQLITE_DENY;
	case SQLITE_PRAGMA:
		if (!b)
			return SQLITE_OK;
		for (i = 0; query_info_pragmas[i]; i++)
			if (a && sqlite3_stricmp(a, query_info_pragmas[i]) == 0)
				return SQLITE_OK;
		return SQLITE_DENY;
	default:
		return SQLITE_OK;
	}
}

static int query_open(const char *path, sqlite3 **db, struct err *e)
{
	struct stat st;

	*db = NULL;
	if (stat(path, &st) != 0) {
		err_set(e, ERR_INVALID, "no replica at %s; create one with "
			"'branchsync init'", path);
		return -1;
	}
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "cannot open %s: %s", path,
			*db ? sqlite3_errmsg(*db) : "out of memory");
		return -1;
	}
	sqlite3_busy_timeout(*db, 10000);
	sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(*db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	if (sqlite3_exec(*db, "PRAGMA query_only=1", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		err_set(e, ERR_INVALID, "cannot open %s: %s", path,
			sqlite3_errmsg(*db));
		return -1;
	}
	sqlite3_set_authorizer(*db, query_authorize, NULL);
	return 0;
}

/* Prepares the one statement of sql; anything after it but whitespace,
 * comments and semicolons is refused. */
static int query_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
			 struct err *e)
{
	const char *tail = NULL;
	sqlite3_stmt *extra = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, st, &tail);
	if (rc == SQLITE_AUTH) {
		err_set(e, ERR_INVALID, QUERY_READ_ONLY_MSG);
		return -1;
	}
	if (rc != SQLITE_OK) {
		err_set(e, ERR_INVALID, "the query is not valid sql: %s",
			sqlite3_errmsg(db));
		return -1;
	}
	if (!*st) {
		err_set(e, ERR_INVALID, "the query is empty; give one sql "
			"statement");
		return -1;
	}
	if (!sqlite3_stmt_readonly(*st)) {
		err_set(e, ERR_INVALID, QUERY_READ_ONLY_MSG);
		return -1;
	}
	while (tail && *tail) {
		const char *next = NULL;

		rc = sqlite3_prepare_v2(db, tail, -1, &extra, &next);
		if (rc != SQLITE_OK || extra || next == tail) {
			sqlite3_finalize(extra);
			err_set(e, ERR_INVALID, "give one sql statement only; "
				"run query once for each");
			return -1;
		}
		tail = next;
	}
	return 0;
}

static void query_value(sqlite3_stmt *st, int i, enum query_format fmt)
{
	char num[40];
	int n;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		if (fmt == QUERY_JSON)
			fputs("null", stdout);
		break;
	case SQLITE_INTEGER:
		printf("%lld", (long long)sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT: {
		double d = sqlite3_column_double(st, i);

		if (fmt == QUERY_JSON && !isfinite(d)) {
			fputs("null", stdout);
			break;
		}
		snprintf(num, sizeof num, "%.17g", d);
		fputs(num, stdout);
		break;
	}
	case SQLITE_BLOB:
		n = sqlite3_column_bytes(st, i);
		if (fmt == QUERY_JSON)
			putchar('"');
		cli_hex(stdout, sqlite3_column_blob(st, i), (size_t)n);
		if (fmt == QUERY_JSON)
			putchar('"');
		break;
	default: {
		const char *s = (const char *)sqlite3_column_text(st, i);
		size_t len = (size_t)sqlite3_column_bytes(st, i);

		if (!s)
			s = "";
		if (fmt == QUERY_JSON)
			cli_json_string(stdout, s, len);
		else if (fmt == QUERY_CSV)
			cli_csv_field(stdout, s, len);
		else
			cli_text_field(stdout, s, len);
		break;
	}
	}
}

static void query_header(sqlite3_stmt *st, enum query_format fmt)
{
	int i, n = sqlite3_column_count(st);

	for (i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);

		if (!name)
			name = "";
		if (i)
			putchar(fmt == QUERY_CSV ? ',' : '\t');
		if (fmt == QUERY_CSV)
			cli_csv_field(stdout, name, strlen(name));
		else
			cli_text_field(stdout, name, strlen(name));
	}
	fputs(fmt == QUERY_CSV ? "\r\n" : "\n", stdout);
}

static void query_row(sqlite3_stmt *st, enum query_format fmt, int first)
{
	int i, n = sqlite3_column_count(st);

	if (fmt == QUERY_JSON)
		fputs(first ? "{" : ",\n{", stdout);
	for (i = 0; i < n; i++) {
		if (i)
			putchar(fmt == QUERY_TEXT ? '\t' : ',');
		if (fmt == QUERY_JSON) {
			const char *name = sqlite3_column_name(st, i);

			if (!name)
				name = "";
			cli_json_string(stdout, name, strlen(name));
			putchar(':');
		}
		query_value(st, i, fmt);
	}
	if (fmt == QUERY_JSON)
		putchar('}');
	else
		fputs(fmt == QUERY_CSV ? "\r\n" : "\n", stdout);
}

static int query_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *path = NULL;
	int json = 0, csv = 0, npos = 0, step, nrows = 0;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ "--json", NULL, &json },
		{ "--csv", NULL, &csv },
		{ NULL, NULL, NULL },
	};
	enum query_format fmt;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct err e;

	err_init(&e);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos != 1) {
		cli_usage(cmd, &e, "query needs exactly one SQL argument "
			  "(quote it)");
		goto cleanup;
	}
	if (json && csv) {
		cli_usage(cmd, &e, "choose one of --json and --csv");
		goto cleanup;
	}
	fmt = json ? QUERY_JSON : csv ? QUERY_CSV : QUERY_TEXT;
	if (cli_db_path(cmd, db_opt, &path, &e) || query_open(path, &db, &e) ||
	    query_prepare(db, argv[0], &st, &e))
		goto cleanup;
	if (fmt == QUERY_JSON)
		putchar('[');
	else
		query_header(st, fmt);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		query_row(st, fmt, nrows++ == 0);
	if (fmt == QUERY_JSON)
		fputs("]\n", stdout);
	if (step != SQLITE_DONE) {
		err_set(&e, ERR_INVALID, "the query failed: %s",
			sqlite3_errmsg(db));
		goto cleanup;
	}
cleanup:
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (e.kind != ERR_OK) {
		fflush(stdout);
		return cli_fail(&e);
	}
	return cli_finish(&e);
}

const struct cli_command cmd_query = {
	.name = "query",
	.summary = "run one read-only sql statement",
	.usage = query_usage,
	.run = query_run,
};
