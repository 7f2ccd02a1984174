/* cmd_status.c - `branchsync status` and `branchsync conflicts`: what this
 * replica is and holds, for people (text) and scripts (--json, keys listed
 * in docs/CLI.md). Read-only; no passphrase needed. Not for resolving
 * conflicts, only listing them. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "commands.h"
#include "hlc.h"
#include "identity.h"
#include "mem.h"
#include "replica.h"
#include "schema.h"

#define STATUS_SHORT_HEX 8 /* bytes of a device key shown in text: 16 hex */

static const char status_usage[] =
	"usage: branchsync status --db FILE [--json]\n\n"
	"Shows this device (id, name, whether its key is encrypted), its "
	"enrollment,\nthe change sets waiting to be synced, the last sync, "
	"the clock, the replica\nversion and how many records each table "
	"holds.\n\n"
	"  --db FILE   the replica (or $BRANCHSYNC_DB)\n"
	"  --json      print one JSON object (keys in docs/CLI.md)\n";

static const char conflicts_usage[] =
	"usage: branchsync conflicts --db FILE [--json]\n\n"
	"Lists the concurrent edits that merging found: for each, the cell, "
	"the value\nkept and the value that lost, with their clocks and "
	"devices.\n\n"
	"  --db FILE   the replica (or $BRANCHSYNC_DB)\n"
	"  --json      print a JSON array (keys in docs/CLI.md)\n";

struct status_info {
	int64_t pending, pending_bytes;
	int has_sync;
	int64_t last_sync, hlc, version;
	int64_t counts[64];
};

/* Runs a query whose first row holds up to two integers. */
static int status_ints(struct replica *r, const char *sql, int64_t *a,
		       int64_t *b, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(r->db));
		goto cleanup;
	}
	*a = sqlite3_column_int64(st, 0);
	if (b)
		*b = sqlite3_column_int64(st, 1);
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static int status_gather(struct replica *r, struct status_info *si,
			 struct err *e)
{
	uint8_t *v = NULL;
	size_t n = 0, i;
	char sql[128];

	memset(si, 0, sizeof si[0]);
	if (status_ints(r, "SELECT count(*), coalesce(sum(length(bytes)), 0)"
			" FROM bs_outbox WHERE acked=0", &si->pending,
			&si->pending_bytes, e) ||
	    status_ints(r, "PRAGMA user_version", &si->version, NULL, e) ||
	    replica_setting_get(r, "last_sync", &v, &n, e))
		return -1;
	si->has_sync = v != NULL;
	mem_free(v);
	if ((si->has_sync &&
	     replica_setting_int(r, "last_sync", &si->last_sync, 0, e)) ||
	    replica_setting_int(r, "hlc", &si->hlc, 0, e))
		return -1;
	for (i = 0; i < schema_table_count() && i < 64; i++) {
		/* Table names come from the schema only. */
		snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"",
			 schema_table_at(i)->name);
		if (status_ints(r, sql, &si->counts[i], NULL, e))
			return -1;
	}
	return 0;
}

static void json_opt_string(const char *key, const char *s, int comma)
{
	printf("%s\"%s\":", comma ? "," : "", key);
	if (s)
		cli_json_string(stdout, s, strlen(s));
	else
		fputs("null", stdout);
}

static void status_json(const struct identity *idn,
			const struct status_info *si, const char *hex)
{
	char clock[HLC_STR_MAX], when[CLI_TIME_MAX];
	size_t i;

	hlc_format((uint64_t)si->hlc, clock);
	cli_time_ms(si->last_sync, when);
	printf("{\"device_id\":\"%s\"", hex);
	json_opt_string("device_name", idn->name, 1);
	printf(",\"key_encrypted\":%s", idn->encrypted ? "true" : "false");
	printf(",\"enrolled\":%s", idn->role ? "true" : "false");
	json_opt_string("role", idn->role, 1);
	json_opt_string("scope", idn->scope, 1);
	json_opt_string("server_url", idn->server_url, 1);
	json_opt_string("default_branch", idn->default_branch, 1);
	printf(",\"pending_changesets\":%lld,\"pending_bytes\":%lld",
	       (long long)si->pending, (long long)si->pending_bytes);
	if (si->has_sync)
		printf(",\"last_sync_ms\":%lld,\"last_sync\":\"%s\"",
		       (long long)si->last_sync, when);
	else
		fputs(",\"last_sync_ms\":null,\"last_sync\":null", stdout);
	printf(",\"hlc\":%llu", (unsigned long long)si->hlc);
	json_opt_string("clock", si->hlc ? clock : NULL, 1);
	printf(",\"replica_version\":%lld,\"schema_version\":%d",
	       (long long)si->version, SCHEMA_VERSION);
	fputs(",\"records\":{", stdout);
	for (i = 0; i < schema_table_count() && i < 64; i++)
		printf("%s\"%s\":%lld", i ? "," : "", schema_table_at(i)->name,
		       (long long)si->counts[i]);
	puts("}}");
}

static void text_opt(const char *label, const char *s, const char *none)
{
	printf("%-16s", label);
	if (s)
		cli_text_field(stdout, s, strlen(s));
	else
		fputs(none, stdout);
	putchar('\n');
}

static void status_text(const struct identity *idn,
			const struct status_info *si, const char *hex)
{
	char clock[HLC_STR_MAX], when[CLI_TIME_MAX];
	size_t i;

	hlc_format((uint64_t)si->hlc, clock);
	cli_time_ms(si->last_sync, when);
	printf("%-16s%s\n", "device id:", hex);
	text_opt("device name:", idn->name, "(none)");
	printf("%-16s%s\n", "device key:", idn->encrypted
	       ? "encrypted with a passphrase"
	       : "NOT encrypted (unattended key)");
	if (idn->role) {
		printf("%-16s", "enrollment:");
		cli_text_field(stdout, idn->role, strlen(idn->role));
		if (idn->scope) {
			fputs(", scope ", stdout);
			cli_text_field(stdout, idn->scope, strlen(idn->scope));
		}
		if (idn->server_url) {
			fputs(", server ", stdout);
			cli_text_field(stdout, idn->server_url,
				       strlen(idn->server_url));
		}
		putchar('\n');
	} else {
		printf("%-16s%s\n", "enrollment:", "not enrolled");
	}
	text_opt("default branch:", idn->default_branch, "(none)");
	printf("%-16s%lld change set%s, %lld bytes\n", "pending:",
	       (long long)si->pending, si->pending == 1 ? "" : "s",
	       (long long)si->pending_bytes);
	printf("%-16s%s\n", "last sync:", si->has_sync ? when : "never");
	printf("%-16s%s\n", "clock:", si->hlc ? clock : "not started");
	printf("%-16sversion %lld, schema %d\n", "replica:",
	       (long long)si->version, SCHEMA_VERSION);
	puts("records:");
	for (i = 0; i < schema_table_count() && i < 64; i++)
		printf("  %-14s%lld\n", schema_table_at(i)->name,
		       (long long)si->counts[i]);
}

static int status_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *db = NULL;
	int json = 0, npos = 0;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ "--json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct status_info si;
	struct identity idn;
	struct replica *r = NULL;
	char hex[2 * SIGN_PUBLIC_BYTES + 1];
	struct err e;

	err_init(&e);
	memset(&idn, 0, sizeof idn);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos > 0) {
		cli_usage(cmd, &e, "status takes no arguments");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, &e) ||
	    replica_open(db, REPLICA_OPEN, &r, &e) ||
	    identity_load(r, &idn, &e) || status_gather(r, &si, &e))
		goto cleanup;
	identity_hex(&idn, hex);
	if (json)
		status_json(&idn, &si, hex);
	else
		status_text(&idn, &si, hex);
cleanup:
	identity_release(&idn);
	replica_close(r);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

/* ---- conflicts ---- */

enum conflicts_col {
	CF_ID, CF_TBL, CF_ROW, CF_BRANCH, CF_COL, CF_KIND,
	CF_KEPT_VALUE, CF_KEPT_HLC, CF_KEPT_DEV,
	CF_LOST_VALUE, CF_LOST_HLC, CF_LOST_DEV, CF_CHANGESET, CF_RESOLVED,
};

static const char conflicts_sql[] =
	"SELECT id, tbl, row_id, branch_id, col, kind, kept_value, kept_hlc,"
	" kept_device, lost_value, lost_hlc, lost_device, changeset, resolved"
	" FROM bs_conflicts ORDER BY id";

/* A value of an ANY column: JSON, or text for people. */
static void conflicts_value(sqlite3_stmt *st, int i, int json)
{
	const char *s;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		fputs(json ? "null" : "(empty)", stdout);
		break;
	case SQLITE_INTEGER:
		printf("%lld", (long long)sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		printf("%.17g", sqlite3_column_double(st, i));
		break;
	case SQLITE_BLOB:
		putchar('"');
		cli_hex(stdout, sqlite3_column_blob(st, i),
			(size_t)sqlite3_column_bytes(st, i));
		putchar('"');
		break;
	default:
		s = (const char *)sqlite3_column_text(st, i);
		if (json) {
			cli_json_string(stdout, s ? s : "",
					(size_t)sqlite3_column_bytes(st, i));
		} else {
			putchar('"');
			cli_text_field(stdout, s ? s : "",
				       (size_t)sqlite3_column_bytes(st, i));
			putchar('"');
		}
		break;
	}
}

/* A blob as hex: whole, or its first `max` bytes (0: whole). */
static void conflicts_hex(sqlite3_stmt *st, int i, size_t max, int json)
{
	size_t n = (size_t)sqlite3_column_bytes(st, i);

	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		fputs(json ? "null" : "(unknown)", stdout);
		return;
	}
	if (json)
		putchar('"');
	cli_hex(stdout, sqlite3_column_blob(st, i), max && n > max ? max : n);
	if (json)
		putchar('"');
}

static void conflicts_clock(sqlite3_stmt *st, int i, int json)
{
	char clock[HLC_STR_MAX];

	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		fputs(json ? "null" : "(unknown)", stdout);
		return;
	}
	hlc_format((uint64_t)sqlite3_column_int64(st, i), clock);
	printf(json ? "\"%s\"" : "%s", clock);
}

/* A TEXT column for people, on one line. */
static void conflicts_text_col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	cli_text_field(stdout, s ? s : "", (size_t)sqlite3_column_bytes(st, i));
}

static void conflicts_text_one(sqlite3_stmt *st)
{
	static const char *const labels[] = { "kept", "lost" };
	int side;

	printf("conflict %lld (%s): table ",
	       (long long)sqlite3_column_int64(st, CF_ID),
	       sqlite3_column_int64(st, CF_RESOLVED) ? "resolved" : "open");
	conflicts_text_col(st, CF_TBL);
	fputs(", record ", stdout);
	conflicts_text_col(st, CF_ROW);
	fputs(", branch ", stdout);
	conflicts_text_col(st, CF_BRANCH);
	fputs(", column ", stdout);
	conflicts_text_col(st, CF_COL);
	fputs(", ", stdout);
	conflicts_text_col(st, CF_KIND);
	putchar('\n');
	for (side = 0; side < 2; side++) {
		int base = side ? CF_LOST_VALUE : CF_KEPT_VALUE;

		printf("  %s: ", labels[side]);
		conflicts_value(st, base, 0);
		fputs(" at ", stdout);
		conflicts_clock(st, base + 1, 0);
		fputs(" by ", stdout);
		conflicts_hex(st, base + 2, STATUS_SHORT_HEX, 0);
		putchar('\n');
	}
	fputs("  change set: ", stdout);
	conflicts_hex(st, CF_CHANGESET, 0, 0);
	putchar('\n');
}

static void conflicts_json_int(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		fputs("null", stdout);
	else
		printf("%lld", (long long)sqlite3_column_int64(st, i));
}

static void conflicts_json_one(sqlite3_stmt *st, int first)
{
	static const char *const keys[] = {
		[CF_TBL] = "tbl", [CF_ROW] = "row_id", [CF_BRANCH] = "branch_id",
		[CF_COL] = "col", [CF_KIND] = "kind",
	};
	int i;

	printf("%s{\"id\":%lld", first ? "" : ",\n",
	       (long long)sqlite3_column_int64(st, CF_ID));
	for (i = CF_TBL; i <= CF_KIND; i++) {
		const char *s = (const char *)sqlite3_column_text(st, i);

		printf(",\"%s\":", keys[i]);
		cli_json_string(stdout, s ? s : "",
				(size_t)sqlite3_column_bytes(st, i));
	}
	fputs(",\"kept_value\":", stdout);
	conflicts_value(st, CF_KEPT_VALUE, 1);
	fputs(",\"kept_hlc\":", stdout);
	conflicts_json_int(st, CF_KEPT_HLC);
	fputs(",\"kept_clock\":", stdout);
	conflicts_clock(st, CF_KEPT_HLC, 1);
	fputs(",\"kept_device\":", stdout);
	conflicts_hex(st, CF_KEPT_DEV, 0, 1);
	fputs(",\"lost_value\":", stdout);
	conflicts_value(st, CF_LOST_VALUE, 1);
	fputs(",\"lost_hlc\":", stdout);
	conflicts_json_int(st, CF_LOST_HLC);
	fputs(",\"lost_clock\":", stdout);
	conflicts_clock(st, CF_LOST_HLC, 1);
	fputs(",\"lost_device\":", stdout);
	conflicts_hex(st, CF_LOST_DEV, 0, 1);
	fputs(",\"changeset\":", stdout);
	conflicts_hex(st, CF_CHANGESET, 0, 1);
	printf(",\"resolved\":%s}",
	       sqlite3_column_int64(st, CF_RESOLVED) ? "true" : "false");
}

static int conflicts_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *db = NULL;
	int json = 0, npos = 0, step, n = 0;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ "--json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct replica *r = NULL;
	sqlite3_stmt *st = NULL;
	struct err e;

	err_init(&e);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos > 0) {
		cli_usage(cmd, &e, "conflicts takes no arguments");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, &e) ||
	    replica_open(db, REPLICA_OPEN, &r, &e))
		goto cleanup;
	if (sqlite3_prepare_v2(r->db, conflicts_sql, -1, &st, NULL) !=
	    SQLITE_OK) {
		err_set(&e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(r->db));
		goto cleanup;
	}
	if (json)
		putchar('[');
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (json)
			conflicts_json_one(st, n == 0);
		else
			conflicts_text_one(st);
		n++;
	}
	if (json)
		fputs("]\n", stdout);
	else if (n == 0)
		puts("no conflicts");
	if (step != SQLITE_DONE)
		err_set(&e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(r->db));
cleanup:
	sqlite3_finalize(st);
	replica_close(r);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

const struct cli_command cmd_status = {
	.name = "status",
	.summary = "show this device, its enrollment and pending changes",
	.usage = status_usage,
	.run = status_run,
};

const struct cli_command cmd_status_conflicts = {
	.name = "conflicts",
	.summary = "list concurrent edits found while merging",
	.usage = conflicts_usage,
	.run = conflicts_run,
};
