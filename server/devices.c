/* devices.c - listing the device registry (see devices.h). */
#include "devices.h"

#include <inttypes.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "enrollment.h"

static const char devices_sql[] =
	"SELECT key, name, role, scope, enroll_idx, revoke_idx, last_seq,"
	" last_seen_ms FROM srv_devices ORDER BY enroll_idx";

static void json_string(struct buf *b, const char *s)
{
	cli_json_append(b, s, strlen(s));
}

static void key_hex(sqlite3_stmt *st, char hex[65])
{
	hex[0] = '\0';
	if (sqlite3_column_bytes(st, 0) == 32)
		sodium_bin2hex(hex, 65, sqlite3_column_blob(st, 0), 32);
}

static const char *role_of(sqlite3_stmt *st)
{
	const char *r = enrollment_role_name(
		(enum enrollment_role)sqlite3_column_int(st, 2));
	return r ? r : "unknown";
}

int devices_json(struct store *s, struct buf *out, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char hex[65], num[96];
	int first = 1, step;

	if (sqlite3_prepare_v2(s->r->db, devices_sql, -1, &st, NULL)) {
		err_set(e, ERR_INVALID, "cannot list devices: %s",
			sqlite3_errmsg(s->r->db));
		return -1;
	}
	buf_append_u8(out, '[');
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		key_hex(st, hex);
		buf_append(out, first ? "\n  {\"device\": " : ",\n  {\"device\": ",
			   first ? 14 : 15);
		first = 0;
		json_string(out, hex);
		buf_append(out, ", \"name\": ", 10);
		json_string(out, (const char *)sqlite3_column_text(st, 1));
		buf_append(out, ", \"role\": ", 10);
		json_string(out, role_of(st));
		buf_append(out, ", \"scope\": ", 11);
		json_string(out, (const char *)sqlite3_column_text(st, 3));
		snprintf(num, sizeof num, ", \"enrolled_at\": %lld",
			 (long long)sqlite3_column_int64(st, 4));
		buf_append(out, num, strlen(num));
		if (sqlite3_column_int64(st, 5) >= 0)
			snprintf(num, sizeof num, ", \"revoked_at\": %lld",
				 (long long)sqlite3_column_int64(st, 5));
		else
			snprintf(num, sizeof num, ", \"revoked_at\": null");
		buf_append(out, num, strlen(num));
		snprintf(num, sizeof num, ", \"last_seq\": %lld, \"last_seen_ms\": %lld}",
			 (long long)sqlite3_column_int64(st, 6),
			 (long long)sqlite3_column_int64(st, 7));
		buf_append(out, num, strlen(num));
	}
	buf_append(out, first ? "]\n" : "\n]\n", first ? 2 : 3);
	sqlite3_finalize(st);
	if (step != SQLITE_DONE || out->status) {
		err_set(e, ERR_INVALID, "cannot list devices");
		return -1;
	}
	return 0;
}

int devices_text(struct store *s, FILE *out, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char hex[65];
	int step;

	if (sqlite3_prepare_v2(s->r->db, devices_sql, -1, &st, NULL)) {
		err_set(e, ERR_INVALID, "cannot list devices: %s",
			sqlite3_errmsg(s->r->db));
		return -1;
	}
	fprintf(out, "%-64s  %-8s  %-16s  %-7s  %s\n", "DEVICE", "ROLE",
		"SCOPE", "STATE", "NAME");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		key_hex(st, hex);
		fprintf(out, "%-64s  %-8s  %-16s  %-7s  %s\n", hex, role_of(st),
			(const char *)sqlite3_column_text(st, 3),
			sqlite3_column_int64(st, 5) >= 0 ? "revoked" : "active",
			(const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		err_set(e, ERR_INVALID, "cannot list devices");
		return -1;
	}
	return 0;
}
