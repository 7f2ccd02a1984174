/* test_report.c - Check suite for server/report: exact figures of a small
 * server database in text, CSV and JSON, an empty database, format names,
 * transactions, and failing allocations. The database is a real replica
 * file with the server's device and log tables beside it. */
#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "logentry.h"
#include "mem.h"
#include "replica.h"
#include "report.h"
#include "utf8.h"

/* The test's own buffers use malloc, so that the allocation seam
 * (mem_fail_after) only ever hits the report. */

/* Copied from server/store.c's schema: the two server tables a report
 * reads. */
static const char srv_ddl[] =
	"CREATE TABLE srv_log(idx INTEGER PRIMARY KEY NOT NULL,"
	" kind INTEGER NOT NULL, verdict INTEGER NOT NULL, entry BLOB NOT NULL,"
	" leaf BLOB NOT NULL, author BLOB, seq INTEGER, cs_id BLOB,"
	" scope TEXT, time_ms INTEGER NOT NULL) STRICT;"
	"CREATE INDEX srv_log_cs ON srv_log(cs_id);"
	"CREATE INDEX srv_log_author ON srv_log(author, seq);"
	"CREATE TABLE srv_devices(key BLOB PRIMARY KEY NOT NULL,"
	" role INTEGER NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL,"
	" enroll_idx INTEGER NOT NULL, revoke_idx INTEGER NOT NULL DEFAULT -1,"
	" last_seq INTEGER NOT NULL DEFAULT 0, head BLOB,"
	" last_seen_ms INTEGER NOT NULL DEFAULT 0) STRICT;";

#define NOW_MS UINT64_C(1767312000000)      /* 2026-01-02T00:00:00Z */
#define SEEN_MS INT64_C(1767225600000)      /* 2026-01-01T00:00:00Z */
#define HEX_A "1111111111111111111111111111111111111111111111111111111111111111"
#define HEX_B "2222222222222222222222222222222222222222222222222222222222222222"
#define E1_CSV "\"Acme, \"\"Ltd\"\"\""

static char rootdir[64];   /* holds every test's files; see suite_cleanup */
static char tmpdir[96];
static char dbpath[128];
static struct replica *rep;

static void exec_sql(const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(rep->db, sql, NULL, NULL, &msg);

	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
}

/* Runs sql with n text parameters (NULL binds SQL NULL). */
static void put(const char *sql, int n, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int i;

	ck_assert_int_eq(sqlite3_prepare_v2(rep->db, sql, -1, &st, NULL),
			 SQLITE_OK);
	va_start(ap, n);
	for (i = 1; i <= n; i++) {
		const char *v = va_arg(ap, const char *);

		if (v)
			sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(st, i);
	}
	va_end(ap);
	ck_assert_msg(sqlite3_step(st) == SQLITE_DONE, "%s: %s", sql,
		      sqlite3_errmsg(rep->db));
	sqlite3_finalize(st);
}

static void db_open(int server_tables)
{
	struct err e;

	err_init(&e);
	ck_assert_msg(rootdir[0], "no temporary directory");
	snprintf(tmpdir, sizeof tmpdir, "%s/db.XXXXXX", rootdir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(dbpath, sizeof dbpath, "%s/server.db", tmpdir);
	ck_assert_msg(replica_open(dbpath, REPLICA_CREATE, &rep, &e) == 0,
		      "%s", e.msg);
	if (server_tables)
		exec_sql(srv_ddl);
}

static void db_close(void)
{
	char p[192];

	replica_close(rep);
	rep = NULL;
	unlink(dbpath);
	snprintf(p, sizeof p, "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", dbpath);
	unlink(p);
	rmdir(tmpdir);
}

/* Runs in the runner process, so the files of a failed test (whose
 * process stopped before db_close) are removed too. */
static void suite_setup(void)
{
	snprintf(rootdir, sizeof rootdir, "/tmp/test_report.XXXXXX");
	if (!mkdtemp(rootdir))
		rootdir[0] = '\0';
}

static void remove_tree(const char *dir, int depth)
{
	char p[512];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (unlink(p) != 0 && depth > 0)
			remove_tree(p, depth - 1);
	}
	closedir(d);
	rmdir(dir);
}

static void suite_cleanup(void)
{
	if (rootdir[0])
		remove_tree(rootdir, 2);
}

#define BRANCH "INSERT INTO branches(id, branch_id, name, kind, parent_id)" \
	" VALUES(?1, ?1, ?2, ?3, ?4)"
#define MEMBER "INSERT INTO members(id, branch_id, name, status, away_city)" \
	" VALUES(?1, ?2, 'x', ?3, ?4)"
#define NEED "INSERT INTO needs(id, branch_id, category, status)" \
	" VALUES(?1, ?2, ?3, ?4)"
#define ACTIVITY "INSERT INTO activities(id, branch_id, title, held_on)" \
	" VALUES(?1, ?2, 'a', ?3)"
#define TRAINING "INSERT INTO trainings(id, branch_id, title, attendees)" \
	" VALUES(?1, ?2, 't', ?3)"
#define POSITION "INSERT INTO positions(id, branch_id, employer, title," \
	" kind, openings, status) VALUES(?1, ?2, 'e', 't', ?3, ?4, ?5)"
#define HELP "INSERT INTO help_cases(id, branch_id, amount, status)" \
	" VALUES(?1, ?2, ?3, ?4)"
#define AWARD "INSERT INTO awards(id, branch_id, title, level)" \
	" VALUES(?1, ?2, 'w', ?3)"

static void put_log(int idx, const uint8_t author[32], int verdict,
		    const char *reason)
{
	static const uint8_t payload[] = { 1, 2, 3, 4 };
	struct logentry le = {
		.kind = LOGENTRY_CHANGESET,
		.verdict = (enum logentry_verdict)verdict,
		.reason = reason,
		.reason_len = reason ? strlen(reason) : 0,
		.payload = payload,
		.payload_len = sizeof payload,
	};
	uint8_t leaf[HASH_BYTES];
	sqlite3_stmt *st = NULL;
	struct buf b;

	buf_init(&b, LOGENTRY_MAX);
	ck_assert_int_eq(logentry_encode(&le, &b), BS_OK);
	logentry_leaf_hash(b.data, b.len, leaf);
	ck_assert_int_eq(sqlite3_prepare_v2(rep->db,
		"INSERT INTO srv_log(idx, kind, verdict, entry, leaf, author,"
		" seq, time_ms) VALUES(?1, 1, ?2, ?3, ?4, ?5, 7, 0)", -1, &st,
		NULL), SQLITE_OK);
	sqlite3_bind_int(st, 1, idx);
	sqlite3_bind_int(st, 2, verdict);
	sqlite3_bind_blob(st, 3, b.data, (int)b.len, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 4, leaf, HASH_BYTES, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 5, author, 32, SQLITE_TRANSIENT);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	buf_release(&b);
}

static void put_device(const uint8_t key[32], int role, const char *scope,
		       const char *name, int enroll, int revoke, int last_seq,
		       int64_t seen)
{
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(rep->db,
		"INSERT INTO srv_devices(key, role, scope, name, enroll_idx,"
		" revoke_idx, last_seq, last_seen_ms) VALUES(?1, ?2, ?3, ?4,"
		" ?5, ?6, ?7, ?8)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, role);
	sqlite3_bind_text(st, 3, scope, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, enroll);
	sqlite3_bind_int(st, 6, revoke);
	sqlite3_bind_int(st, 7, last_seq);
	sqlite3_bind_int64(st, 8, seen);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* A township t1 with villages v1 and v2, an enterprise e1 in no township,
 * and members under x9, which has no branches row. */
static void fill(void)
{
	static const char *const e1_cities[] = {
		"Wuhan", "Nanjing", "Hangzhou", "Guangzhou", "Chengdu",
		"Beijing",
	};
	uint8_t ka[32], kb[32];
	char id[16];
	struct err e;
	size_t i;

	err_init(&e);
	ck_assert_int_eq(replica_setting_set_text(rep, "district",
			 "\xe6\xb5\x8b\xe8\xaf\x95\xe5\x8c\xba", &e), 0);
	exec_sql("BEGIN");
	put(BRANCH, 4, "t1", "城关镇团委", "township", NULL);
	put(BRANCH, 4, "v1", "一村团支部", "village", "t1");
	put(BRANCH, 4, "v2", "二村团支部", "village", "t1");
	put(BRANCH, 4, "e1", "Acme, \"Ltd\"", "enterprise", NULL);

	put(MEMBER, 4, "m1", "v1", "active", NULL);
	put(MEMBER, 4, "m2", "v1", "away", "Shenzhen");
	put(MEMBER, 4, "m3", "v1", "away", "Shenzhen");
	put(MEMBER, 4, "m4", "v1", "away", "Dongguan");
	put(MEMBER, 4, "m5", "v1", "transferred", NULL);
	put(MEMBER, 4, "m6", "v1", "left", "Shenzhen"); /* not away */
	put(MEMBER, 4, "m7", "v2", "active", NULL);
	put(MEMBER, 4, "m8", "v2", "away", "Shenzhen");
	put(MEMBER, 4, "m9", "e1", "active", NULL);
	for (i = 0; i < 6; i++) {
		snprintf(id, sizeof id, "ma%zu", i);
		put(MEMBER, 4, id, "e1", "away", e1_cities[i]);
	}
	put(MEMBER, 4, "m10", "x9", "active", NULL);

	put(NEED, 4, "n1", "v1", "job", "open");
	put(NEED, 4, "n2", "v1", "job", "met");
	put(NEED, 4, "n3", "v1", "training", "in_progress");
	put(NEED, 4, "n4", "v2", "hardship", "closed");
	put(NEED, 4, "n5", "e1", "business", "open");

	put(ACTIVITY, 3, "a1", "v1", "2026-01-05");
	put(ACTIVITY, 3, "a2", "v1", "2026-01-20");
	put(ACTIVITY, 3, "a3", "v1", "2026-02-03");
	put(ACTIVITY, 3, "a4", "v1", NULL);
	put(ACTIVITY, 3, "a5", "v2", "2026-02-10");

	put(TRAINING, 3, "tr1", "v1", "20");
	put(TRAINING, 3, "tr2", "v2", "15");
	put(TRAINING, 3, "tr3", "e1", NULL);

	put(POSITION, 5, "p1", "e1", "internship", "3", "open");
	put(POSITION, 5, "p2", "e1", "job", "2", "open");
	put(POSITION, 5, "p3", "e1", "job", "5", "filled");

	put(HELP, 4, "h1", "v1", "1200.50", "open");
	put(HELP, 4, "h2", "v1", "99.50", "open");
	put(HELP, 4, "h3", "v2", "0.05", "closed");
	put(HELP, 4, "h4", "v2", "12.5", "closed"); /* not canonical */
	put(HELP, 4, "h5", "e1", NULL, "open");

	put("INSERT INTO pairings(id, branch_id, partner_id, model)"
	    " VALUES('pr1', 'e1', 'v1', 'enterprise-village')", 0);

	put(AWARD, 3, "w1", "v1", "county");
	put(AWARD, 3, "w2", "v1", "county");
	put(AWARD, 3, "w3", "e1", "district");

	memset(ka, 0x11, sizeof ka);
	memset(kb, 0x22, sizeof kb);
	put_device(ka, 1, "v1", "一村电脑", 0, -1, 7, SEEN_MS);
	put_device(kb, 2, "district", "office\xff", 1, 5, 0, 0);
	put_log(2, ka, 0, NULL);
	put_log(3, ka, 1, "out of scope");
	put_log(6, ka, 1, "equivocation at seq 7");
	exec_sql("COMMIT");
}

/* Runs the report into a malloc'd string; *rc gets report_write's. */
static char *render(enum report_format fmt, int *rc, struct err *e)
{
	char *doc = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&doc, &len);

	ck_assert_ptr_nonnull(f);
	err_init(e);
	*rc = report_write(rep->db, fmt, NOW_MS, f, e);
	ck_assert_int_eq(fclose(f), 0);
	return doc;
}

static char *render_ok(enum report_format fmt)
{
	struct err e;
	int rc;
	char *doc = render(fmt, &rc, &e);

	ck_assert_msg(rc == 0, "report failed: %s", e.msg);
	ck_assert_int_eq(sqlite3_get_autocommit(rep->db), 1);
	ck_assert(utf8_valid((const uint8_t *)doc, strlen(doc)));
	return doc;
}

/* ---- a minimal JSON syntax check ---- */

static const char *js_value(const char *p, int depth);

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == 'u') {
				int i;

				for (i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF",
						    p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
		p++;
	}
}

static const char *js_number(const char *p)
{
	const char *start;

	if (*p == '-')
		p++;
	start = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == start || (*start == '0' && p - start > 1))
		return NULL;
	return p;
}

static const char *js_members(const char *p, char close, int depth)
{
	p = js_ws(p);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			p = js_string(js_ws(p));
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = js_value(p, depth + 1);
		if (!p)
			return NULL;
		p = js_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = js_ws(p);
	if (*p == '{')
		return js_members(p + 1, '}', depth);
	if (*p == '[')
		return js_members(p + 1, ']', depth);
	if (*p == '"')
		return js_string(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	return js_number(p);
}

static int json_valid(const char *doc)
{
	const char *end = js_value(doc, 0);

	return end && *js_ws(end) == '\0';
}

/* The text between the first `from` and the next `to` after it. */
static char *cut(const char *doc, const char *from, const char *to)
{
	const char *a = strstr(doc, from), *b;

	ck_assert_msg(a != NULL, "missing %s", from);
	b = strstr(a + strlen(from), to);
	ck_assert_msg(b != NULL, "missing %s after %s", to, from);
	return strndup(a, (size_t)(b - a));
}

static void has(const char *doc, const char *needle)
{
	ck_assert_msg(strstr(doc, needle) != NULL, "missing: %s", needle);
}

/* ---- CSV ---- */

/* Checks RFC 4180 framing: CRLF line ends, quotes doubled inside quoted
 * fields, seven fields in every record. Returns the number of records. */
static size_t csv_records(const char *p)
{
	size_t records = 0;
	int fields = 1;

	while (*p) {
		if (*p == '"') {
			for (p++; !(p[0] == '"' && p[1] != '"'); p++) {
				ck_assert_msg(*p, "unterminated quoted field");
				if (p[0] == '"')
					p++;
			}
			p++;
			ck_assert_msg(*p == ',' || *p == '\r',
				      "text after a closing quote");
		} else {
			while (*p && *p != ',' && *p != '\r') {
				ck_assert_msg(*p != '\n' && *p != '"',
					      "bare LF or quote in a field");
				p++;
			}
		}
		if (*p == ',') {
			fields++;
			p++;
			continue;
		}
		ck_assert_msg(p[0] == '\r' && p[1] == '\n', "record not ended "
			      "by CRLF");
		ck_assert_int_eq(fields, 7);
		records++;
		fields = 1;
		p += 2;
	}
	return records;
}

static size_t count_of(const char *doc, const char *needle)
{
	size_t n = 0;
	const char *p = doc;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	return n;
}

static void csv_has(const char *doc, const char *line)
{
	char want[512];

	snprintf(want, sizeof want, "\n%s\r\n", line);
	ck_assert_msg(count_of(doc, want) == 1, "want once: %s", line);
}

/* ---- text ---- */

/* Whether some line of doc, with runs of spaces squeezed to one and
 * trailing spaces dropped, equals want. */
static int text_has_line(const char *doc, const char *want)
{
	const char *p = doc;
	char line[1024];

	while (*p) {
		size_t n = 0;

		for (; *p && *p != '\n'; p++) {
			if (*p == ' ' && n > 0 && line[n - 1] == ' ')
				continue;
			if (n + 1 < sizeof line)
				line[n++] = *p;
		}
		while (n > 0 && line[n - 1] == ' ')
			n--;
		line[n] = '\0';
		if (strcmp(line, want) == 0)
			return 1;
		if (*p)
			p++;
	}
	return 0;
}

static void text_has(const char *doc, const char *want)
{
	ck_assert_msg(text_has_line(doc, want), "missing line: %s", want);
}

/* Terminal columns of a line: CJK characters take two. */
static size_t display_width(const char *s, size_t len)
{
	size_t i = 0, w = 0, n;
	uint32_t cp;

	while (i < len) {
		n = utf8_decode((const uint8_t *)s + i, len - i, &cp);
		if (n == 0) {
			n = 1;
			cp = '?';
		}
		w += (cp >= 0x2e80 && cp <= 0xa4cf) ? 2 : 1;
		i += n;
	}
	return w;
}

/* The `nlines` lines after the heading all take the same width: the
 * columns line up, the last one right-aligned. */
static void text_aligned(const char *doc, const char *heading, int nlines)
{
	const char *p = strstr(doc, heading), *eol;
	size_t width = 0, w;
	int i;

	ck_assert_ptr_nonnull(p);
	p = strchr(p, '\n') + 1;
	for (i = 0; i < nlines; i++) {
		eol = strchr(p, '\n');
		ck_assert_ptr_nonnull(eol);
		w = display_width(p, (size_t)(eol - p));
		if (i == 0)
			width = w;
		ck_assert_msg(w == width, "line %d of '%s' is %zu wide, not "
			      "%zu", i, heading, w, width);
		p = eol + 1;
	}
	ck_assert_msg(*p == '\n', "table '%s' has more lines", heading);
}

/* ---- tests ---- */

START_TEST(format_names)
{
	enum report_format f = REPORT_JSON;

	ck_assert_int_eq(report_format_parse("text", &f), 0);
	ck_assert_int_eq(f, REPORT_TEXT);
	ck_assert_int_eq(report_format_parse("csv", &f), 0);
	ck_assert_int_eq(f, REPORT_CSV);
	ck_assert_int_eq(report_format_parse("json", &f), 0);
	ck_assert_int_eq(f, REPORT_JSON);
	ck_assert_int_eq(report_format_parse("JSON", &f), -1);
	ck_assert_int_eq(report_format_parse("", &f), -1);
	ck_assert_int_eq(report_format_parse("xml", &f), -1);
	ck_assert_int_eq(report_format_parse("text ", &f), -1);
	ck_assert_int_eq(report_format_parse(NULL, &f), -1);
	ck_assert_int_eq(f, REPORT_JSON);
}
END_TEST

START_TEST(json_figures)
{
	char *doc, *part;

	db_open(1);
	fill();
	doc = render_ok(REPORT_JSON);
	ck_assert_msg(json_valid(doc), "invalid JSON:\n%s", doc);
	has(doc, "\"generated_at\": \"2026-01-02T00:00:00.000Z\"");

	part = cut(doc, "\"district\": {", "\n  }");
	has(part, "\"name\": \"测试区\"");
	has(part, "\"branches\": 4");
	has(part, "\"townships\": 1");
	has(part, "\"devices\": 2");
	has(part, "\"members\": {\"by_status\": {\"active\": 4, \"away\": 10, "
	    "\"transferred\": 1, \"left\": 1, \"total\": 16}, "
	    "\"away_by_city\": {\"Shenzhen\": 3, \"Beijing\": 1, "
	    "\"Chengdu\": 1, \"Dongguan\": 1, \"Guangzhou\": 1, "
	    "\"Hangzhou\": 1, \"Nanjing\": 1, \"Wuhan\": 1}}");
	has(part, "\"needs\": {\"by_category\": {\"job\": 2, \"training\": 1, "
	    "\"business\": 1, \"hardship\": 1, \"culture\": 0, \"other\": 0, "
	    "\"total\": 5}, \"by_status\": {\"open\": 2, \"in_progress\": 1, "
	    "\"met\": 1, \"closed\": 1, \"total\": 5}}");
	has(part, "\"activities\": {\"totals\": {\"dated\": 4, \"undated\": 1, "
	    "\"total\": 5}, \"by_month\": {\"2026-01\": 2, \"2026-02\": 2}}");
	has(part, "\"trainings\": {\"totals\": {\"count\": 3, "
	    "\"attendees\": 35}}");
	has(part, "\"positions\": {\"by_kind\": {\"internship\": 1, "
	    "\"job\": 2, \"total\": 3}, \"by_status\": {\"open\": 2, "
	    "\"filled\": 1, \"closed\": 0, \"total\": 3}, \"totals\": "
	    "{\"open_openings\": 5}}");
	has(part, "\"help_cases\": {\"by_status\": {\"open\": 3, "
	    "\"in_progress\": 0, \"closed\": 2, \"total\": 5}, "
	    "\"amount_by_status\": {\"open\": \"1300.00\", \"in_progress\": "
	    "\"0.00\", \"closed\": \"0.05\", \"total\": \"1300.05\"}, "
	    "\"totals\": {\"unreadable_amounts\": 1}}");
	has(part, "\"pairings\": {\"by_model\": {\"enterprise-village\": 1}}");
	has(part, "\"awards\": {\"by_level\": {\"county\": 2, "
	    "\"district\": 1}}");
	free(part);

	/* township totals come before the township's branches */
	part = cut(doc, "{\n      \"id\": \"t1\"", "\"branches\": [");
	has(part, "\"name\": \"城关镇团委\"");
	has(part, "\"by_status\": {\"active\": 2, \"away\": 4, "
	    "\"transferred\": 1, \"left\": 1, \"total\": 8}, \"away_by_city\": "
	    "{\"Shenzhen\": 3, \"Dongguan\": 1}}");
	has(part, "\"amount_by_status\": {\"open\": \"1300.00\", "
	    "\"in_progress\": \"0.00\", \"closed\": \"0.05\", "
	    "\"total\": \"1300.05\"}");
	free(part);
	part = cut(doc, "{\n      \"id\": \"(none)\"", "\"branches\": [");
	has(part, "\"name\": \"(no township)\"");
	has(part, "\"total\": 8}");
	free(part);

	part = cut(doc, "{\n          \"id\": \"v1\"", "\n        }");
	has(part, "\"name\": \"一村团支部\"");
	has(part, "\"known\": true");
	has(part, "\"by_status\": {\"active\": 1, \"away\": 3, "
	    "\"transferred\": 1, \"left\": 1, \"total\": 6}, \"away_by_city\": "
	    "{\"Shenzhen\": 2, \"Dongguan\": 1}}");
	has(part, "\"by_month\": {\"2026-01\": 2, \"2026-02\": 1}");
	has(part, "\"totals\": {\"dated\": 3, \"undated\": 1, \"total\": 4}");
	has(part, "\"trainings\": {\"totals\": {\"count\": 1, "
	    "\"attendees\": 20}}");
	has(part, "\"amount_by_status\": {\"open\": \"1300.00\", "
	    "\"in_progress\": \"0.00\", \"closed\": \"0.00\", "
	    "\"total\": \"1300.00\"}");
	has(part, "\"partners\": []");
	free(part);

	part = cut(doc, "{\n          \"id\": \"e1\"", "\n        }");
	has(part, "\"name\": \"Acme, \\\"Ltd\\\"\"");
	has(part, "\"away_by_city\": {\"Beijing\": 1, \"Chengdu\": 1, "
	    "\"Guangzhou\": 1, \"Hangzhou\": 1, \"Nanjing\": 1, "
	    "\"(other cities)\": 1}");
	has(part, "\"totals\": {\"open_openings\": 5}");
	has(part, "\"partners\": [{\"id\": \"v1\", \"name\": \"一村团支部\", "
	    "\"model\": \"enterprise-village\"}]");
	free(part);

	part = cut(doc, "{\n          \"id\": \"x9\"", "\n        }");
	has(part, "\"name\": \"(unknown branch)\"");
	has(part, "\"known\": false");
	has(part, "\"by_status\": {\"active\": 1, \"away\": 0, "
	    "\"transferred\": 0, \"left\": 0, \"total\": 1}");
	free(part);

	has(doc, "{\"device\": \"" HEX_A "\", \"name\": \"一村电脑\", "
	    "\"role\": \"branch\", \"scope\": \"v1\", \"state\": \"active\", "
	    "\"last_sync\": \"2026-01-01T00:00:00.000Z\", \"last_seq\": 7, "
	    "\"pending_evidence\": 2, "
	    "\"latest_reason\": \"equivocation at seq 7\"}");
	/* the invalid byte of the name comes out as U+FFFD, in every format */
	has(doc, "{\"device\": \"" HEX_B "\", "
	    "\"name\": \"office\xef\xbf\xbd\", \"role\": \"district\", "
	    "\"scope\": \"district\", \"state\": \"revoked\", "
	    "\"last_sync\": \"never\", \"last_seq\": 0, "
	    "\"pending_evidence\": 0, "
	    "\"latest_reason\": null}");
	free(doc);
	db_close();
}
END_TEST

START_TEST(csv_figures)
{
	char *doc;

	db_open(1);
	fill();
	doc = render_ok(REPORT_CSV);
	ck_assert(csv_records(doc) > 100);
	ck_assert_msg(strncmp(doc, "section,township,branch_id,branch_name,"
			      "metric,key,value\r\n", 56) == 0, "header: %.60s",
		      doc);
	csv_has(doc, "report,,,,generated_at,,2026-01-02T00:00:00.000Z");
	csv_has(doc, "report,,,,district,,测试区");
	csv_has(doc, "report,,,,branches,,4");
	csv_has(doc, "report,,,,townships,,1");
	csv_has(doc, "report,,,,devices,,2");
	csv_has(doc, "members,,,,by_status,away,10");
	csv_has(doc, "members,,,,by_status,total,16");
	csv_has(doc, "members,,,,away_by_city,Shenzhen,3");
	csv_has(doc, "needs,,,,by_category,culture,0");
	csv_has(doc, "activities,,,,by_month,2026-02,2");
	csv_has(doc, "activities,,,,totals,undated,1");
	csv_has(doc, "trainings,,,,totals,attendees,35");
	csv_has(doc, "positions,,,,totals,open_openings,5");
	csv_has(doc, "help_cases,,,,amount_by_status,open,1300.00");
	csv_has(doc, "help_cases,,,,amount_by_status,total,1300.05");
	csv_has(doc, "help_cases,,,,totals,unreadable_amounts,1");
	csv_has(doc, "awards,,,,by_level,county,2");
	csv_has(doc, "members,t1,,,by_status,total,8");
	csv_has(doc, "members,t1,v1,一村团支部,by_status,away,3");
	csv_has(doc, "members,t1,v1,一村团支部,by_status,total,6");
	csv_has(doc, "activities,t1,v1,一村团支部,by_month,2026-01,2");
	csv_has(doc, "needs,t1,v2,二村团支部,by_status,closed,1");
	csv_has(doc, "members,(none),,,by_status,total,8");
	csv_has(doc, "members,(none),e1," E1_CSV ",away_by_city,"
		"(other cities),1");
	csv_has(doc, "pairings,(none),e1," E1_CSV ",partner,v1,"
		"enterprise-village");
	csv_has(doc, "pairings,(none),e1," E1_CSV ",by_model,"
		"enterprise-village,1");
	csv_has(doc, "members,(none),x9,(unknown branch),by_status,active,1");
	csv_has(doc, "devices,,v1,,name," HEX_A ",一村电脑");
	csv_has(doc, "devices,,v1,,role," HEX_A ",branch");
	csv_has(doc, "devices,,v1,,state," HEX_A ",active");
	csv_has(doc, "devices,,v1,,last_sync," HEX_A
		",2026-01-01T00:00:00.000Z");
	csv_has(doc, "devices,,v1,,last_seq," HEX_A ",7");
	csv_has(doc, "devices,,v1,,pending_evidence," HEX_A ",2");
	csv_has(doc, "devices,,v1,,latest_reason," HEX_A
		",equivocation at seq 7");
	csv_has(doc, "devices,,district,,name," HEX_B ",office\xef\xbf\xbd");
	csv_has(doc, "devices,,district,,state," HEX_B ",revoked");
	csv_has(doc, "devices,,district,,last_sync," HEX_B ",never");
	csv_has(doc, "devices,,district,,latest_reason," HEX_B ",");
	/* every branch row names its township: none is left out */
	ck_assert_uint_eq(count_of(doc, "\nmembers,t1,v1,"), 5 + 2);
	free(doc);
	db_close();
}
END_TEST

START_TEST(text_figures)
{
	char *doc;

	db_open(1);
	fill();
	doc = render_ok(REPORT_TEXT);
	text_has(doc, "District report: 测试区");
	text_has(doc, "Generated 2026-01-02T00:00:00.000Z");
	text_has(doc, "Branches: 4 Townships: 1 Devices: 2");
	text_has(doc, "Records under unregistered branch ids: 1");
	text_has(doc, "== Members by status ==");
	text_has(doc, "township branch name active away transferred left "
		 "total");
	text_has(doc, "t1 t1 城关镇团委 0 0 0 0 0");
	text_has(doc, "t1 v1 一村团支部 1 3 1 1 6");
	text_has(doc, "t1 v2 二村团支部 1 1 0 0 2");
	text_has(doc, "t1 (all) 城关镇团委 2 4 1 1 8");
	text_has(doc, "(none) e1 Acme, \"Ltd\" 1 6 0 0 7");
	text_has(doc, "(none) x9 (unknown branch) 1 0 0 0 1");
	text_has(doc, "(none) (all) (no township) 2 6 0 0 8");
	text_has(doc, "(district) (all) 测试区 4 10 1 1 16");
	text_aligned(doc, "== Members by status ==", 10);
	text_aligned(doc, "== Help case amounts by status ==", 10);
	text_has(doc, "t1 v1 一村团支部 Shenzhen 2");
	text_has(doc, "(none) e1 Acme, \"Ltd\" (other cities) 1");
	text_has(doc, "(district) (all) 测试区 Wuhan 1");
	text_has(doc, "t1 v1 一村团支部 2026-01 2");
	text_has(doc, "(district) (all) 测试区 2026-02 2");
	text_has(doc, "(district) (all) 测试区 3 35");
	text_has(doc, "(district) (all) 测试区 1300.00 0.00 0.05 1300.05");
	text_has(doc, "== Help cases whose amount is unreadable ==");
	text_has(doc, "(none) e1 Acme, \"Ltd\" v1 一村团支部 "
		 "enterprise-village");
	text_has(doc, "1111111111111111 一村电脑 branch v1 active "
		 "2026-01-01T00:00:00.000Z 7 2 equivocation at seq 7");
	text_has(doc, "2222222222222222 office\xef\xbf\xbd district "
		 "district revoked never 0 0");
	free(doc);
	db_close();
}
END_TEST

START_TEST(empty_database)
{
	char *doc;

	db_open(1);
	doc = render_ok(REPORT_JSON);
	ck_assert_msg(json_valid(doc), "invalid JSON:\n%s", doc);
	has(doc, "\"name\": null");
	has(doc, "\"branches\": 0");
	has(doc, "\"by_status\": {\"active\": 0, \"away\": 0, "
	    "\"transferred\": 0, \"left\": 0, \"total\": 0}, "
	    "\"away_by_city\": {}}");
	has(doc, "\"amount_by_status\": {\"open\": \"0.00\", "
	    "\"in_progress\": \"0.00\", \"closed\": \"0.00\", "
	    "\"total\": \"0.00\"}");
	has(doc, "\"townships\": []");
	has(doc, "\"devices\": []");
	free(doc);

	doc = render_ok(REPORT_CSV);
	csv_records(doc);
	csv_has(doc, "report,,,,district,,");
	csv_has(doc, "members,,,,by_status,total,0");
	csv_has(doc, "help_cases,,,,amount_by_status,total,0.00");
	ck_assert_uint_eq(count_of(doc, "\ndevices,"), 0);
	free(doc);

	doc = render_ok(REPORT_TEXT);
	text_has(doc, "District report");
	text_has(doc, "Branches: 0 Townships: 0 Devices: 0");
	text_has(doc, "(district) (all) 0 0 0 0 0");
	has(doc, "== Pairings ==\n(nothing recorded)\n");
	has(doc, "== Devices ==\n(nothing recorded)\n");
	ck_assert_ptr_null(strstr(doc, "unreadable"));
	free(doc);
	db_close();
}
END_TEST

START_TEST(transactions)
{
	struct err e;
	char *doc;
	int rc;

	/* inside the caller's transaction the report neither ends it nor
	 * begins another */
	db_open(1);
	fill();
	exec_sql("BEGIN");
	doc = render(REPORT_JSON, &rc, &e);
	ck_assert_msg(rc == 0, "%s", e.msg);
	ck_assert_int_eq(sqlite3_get_autocommit(rep->db), 0);
	exec_sql("COMMIT");
	free(doc);
	db_close();

	/* a database that is not a server's fails cleanly, and its read
	 * transaction is closed */
	db_open(0);
	doc = render(REPORT_TEXT, &rc, &e);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(e.kind, ERR_INVALID);
	ck_assert_msg(strstr(e.msg, "devices") != NULL, "%s", e.msg);
	ck_assert_int_eq(sqlite3_get_autocommit(rep->db), 1);
	free(doc);
	db_close();
}
END_TEST

START_TEST(allocation_failures)
{
	static const enum report_format fmts[] = {
		REPORT_TEXT, REPORT_CSV, REPORT_JSON,
	};
	struct err e;
	size_t f;
	long n;
	int rc;

	db_open(1);
	fill();
	for (f = 0; f < 3; f++) {
		for (n = 0; n < 100000; n++) {
			char *doc;

			mem_fail_after(n);
			doc = render(fmts[f], &rc, &e);
			mem_fail_reset();
			free(doc);
			ck_assert_int_eq(sqlite3_get_autocommit(rep->db), 1);
			if (rc == 0)
				break;
			ck_assert_int_eq(e.kind, ERR_INVALID);
			ck_assert_msg(strstr(e.msg, "out of memory") != NULL,
				      "%s", e.msg);
		}
		ck_assert_int_eq(rc, 0);
		ck_assert_int_gt(n, 10);
	}
	db_close();
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_cleanup);

	tcase_add_test(tc, format_names);
	tcase_add_test(tc, json_figures);
	tcase_add_test(tc, csv_figures);
	tcase_add_test(tc, text_figures);
	tcase_add_test(tc, empty_database);
	tcase_add_test(tc, transactions);
	tcase_add_test(tc, allocation_failures);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(report_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
