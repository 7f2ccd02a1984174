/* test_schema.c - Check suite for shared/schema: the tables and columns in
 * canonical order, the DDL as SQLite sees it, and the validation of every
 * column type into canonical values with messages naming table and column. */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "mem.h"
#include "schema.h"

/* The canonical order, written out independently of schema.c. */
static const char *const expected[][12] = {
	{ "branches", "name", "kind", "parent_id", "town", "secretary",
	  "phone", NULL },
	{ "pairings", "partner_id", "model", "since", "goals", NULL },
	{ "members", "name", "gender", "birth_date", "phone", "id_number",
	  "joined_on", "status", "occupation", "away_city", NULL },
	{ "transfers", "member_id", "from_branch", "to_branch", "on_date",
	  "reason", NULL },
	{ "needs", "member_id", "category", "detail", "status", NULL },
	{ "activities", "title", "kind", "held_on", "place", "participants",
	  "partner_id", "notes", NULL },
	{ "trainings", "title", "held_on", "provider", "attendees", NULL },
	{ "positions", "employer", "title", "kind", "openings", "status",
	  NULL },
	{ "help_cases", "member_id", "kind", "amount", "status", "notes",
	  NULL },
	{ "awards", "member_id", "title", "year", "level", NULL },
};
#define NEXPECTED (sizeof expected / sizeof expected[0])

static const struct schema_column *col(const char *table, const char *column)
{
	const struct schema_table *t = schema_table_find(table);
	const struct schema_column *c;

	ck_assert_ptr_nonnull(t);
	c = schema_column_find(t, column);
	ck_assert_msg(c != NULL, "no column %s.%s", table, column);
	return c;
}

START_TEST(tables_in_canonical_order)
{
	size_t i, j;

	ck_assert_uint_eq(schema_table_count(), NEXPECTED);
	ck_assert_ptr_null(schema_table_at(NEXPECTED));
	for (i = 0; i < NEXPECTED; i++) {
		const struct schema_table *t = schema_table_at(i);

		ck_assert_ptr_nonnull(t);
		ck_assert_str_eq(t->name, expected[i][0]);
		ck_assert_ptr_eq(schema_table_find(expected[i][0]), t);
		for (j = 1; expected[i][j]; j++) {
			ck_assert_uint_ge(t->ncolumns, j);
			ck_assert_str_eq(t->columns[j - 1].name,
					 expected[i][j]);
			ck_assert_ptr_eq(schema_column_find(t, expected[i][j]),
					 &t->columns[j - 1]);
		}
		ck_assert_uint_eq(t->ncolumns, j - 1);
		ck_assert_int_eq(schema_column_find(t, "id")->type, SCHEMA_ID);
		ck_assert_int_eq(schema_column_find(t, "branch_id")->type,
				 SCHEMA_ID);
		ck_assert_int_eq(t->scope_is_id, i == 0);
	}
	ck_assert_ptr_null(schema_table_find("member"));
	ck_assert_ptr_null(schema_table_find(""));
	ck_assert_ptr_null(schema_column_find(schema_table_find("members"),
					      "nam"));
}
END_TEST

START_TEST(column_types_and_rules)
{
	static const struct {
		const char *t, *c;
		enum schema_type type;
		int required;
		const char *def;
	} cases[] = {
		{ "branches", "name", SCHEMA_TEXT, 1, NULL },
		{ "branches", "kind", SCHEMA_ENUM, 1, NULL },
		{ "branches", "parent_id", SCHEMA_REF, 0, NULL },
		{ "branches", "phone", SCHEMA_PHONE, 0, NULL },
		{ "pairings", "partner_id", SCHEMA_REF, 1, NULL },
		{ "pairings", "since", SCHEMA_DATE, 0, NULL },
		{ "members", "gender", SCHEMA_ENUM, 0, NULL },
		{ "members", "id_number", SCHEMA_IDNUM, 0, NULL },
		{ "members", "status", SCHEMA_ENUM, 0, "active" },
		{ "transfers", "member_id", SCHEMA_REF, 1, NULL },
		{ "needs", "category", SCHEMA_ENUM, 1, NULL },
		{ "needs", "status", SCHEMA_ENUM, 0, "open" },
		{ "activities", "participants", SCHEMA_INT, 0, NULL },
		{ "trainings", "attendees", SCHEMA_INT, 0, NULL },
		{ "positions", "employer", SCHEMA_TEXT, 1, NULL },
		{ "positions", "title", SCHEMA_TEXT, 1, NULL },
		{ "positions", "openings", SCHEMA_INT, 0, NULL },
		{ "positions", "status", SCHEMA_ENUM, 0, "open" },
		{ "help_cases", "amount", SCHEMA_MONEY, 0, NULL },
		{ "help_cases", "status", SCHEMA_ENUM, 0, "open" },
		{ "awards", "title", SCHEMA_TEXT, 1, NULL },
		{ "awards", "year", SCHEMA_INT, 0, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct schema_column *c = col(cases[i].t, cases[i].c);

		ck_assert_int_eq(c->type, cases[i].type);
		ck_assert_int_eq(c->required, cases[i].required);
		if (cases[i].def)
			ck_assert_str_eq(c->default_value, cases[i].def);
		else
			ck_assert_ptr_null(c->default_value);
	}
	ck_assert_int_eq(col("awards", "year")->min, 1900);
	ck_assert_int_eq(col("awards", "year")->max, 2100);
	ck_assert_int_eq(col("trainings", "attendees")->min, 0);
	ck_assert_str_eq(col("transfers", "to_branch")->ref_table, "branches");
	ck_assert_str_eq(col("needs", "member_id")->ref_table, "members");
}
END_TEST

static sqlite3 *db_with_ddl(void)
{
	sqlite3 *db = NULL;
	struct buf b;

	buf_init(&b, 1 << 20);
	ck_assert_int_eq(schema_ddl(&b), BS_OK);
	ck_assert_uint_gt(b.len, 0);
	ck_assert_int_eq(b.data[b.len - 1], 0);
	ck_assert_uint_eq(strlen((const char *)b.data), b.len - 1);
	ck_assert_int_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, (const char *)b.data, NULL, NULL,
				      NULL), SQLITE_OK);
	buf_release(&b);
	return db;
}

static int count_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int n;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

START_TEST(ddl_creates_exactly_the_columns)
{
	sqlite3 *db = db_with_ddl();
	char sql[256];
	size_t i;

	ck_assert_int_eq(count_rows(db, "SELECT count(*) FROM sqlite_schema "
					"WHERE type = 'table'"),
			 (int)NEXPECTED);
	for (i = 0; i < NEXPECTED; i++) {
		const struct schema_table *t = schema_table_at(i);
		sqlite3_stmt *st = NULL;
		int n = 0;

		snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", t->name);
		ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
				 SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *name =
				(const char *)sqlite3_column_text(st, 1);
			const char *type =
				(const char *)sqlite3_column_text(st, 2);
			int notnull = sqlite3_column_int(st, 3);
			int pk = sqlite3_column_int(st, 5);
			const char *want_type = "TEXT";

			ck_assert_int_eq(sqlite3_column_int(st, 0), n);
			if (n == 0) {
				ck_assert_str_eq(name, "id");
			} else if (n == 1) {
				ck_assert_str_eq(name, "branch_id");
			} else {
				ck_assert_uint_le((size_t)n - 1, t->ncolumns);
				ck_assert_str_eq(name, expected[i][n - 1]);
				if (t->columns[n - 2].type == SCHEMA_INT)
					want_type = "INTEGER";
			}
			ck_assert_str_eq(type, want_type);
			ck_assert_int_eq(notnull, n < 2);
			/* The key is (id, branch_id), in that order. */
			ck_assert_int_eq(pk, n < 2 ? n + 1 : 0);
			/* No DEFAULT: merge order must not matter. */
			ck_assert_int_eq(sqlite3_column_type(st, 4), SQLITE_NULL);
			n++;
		}
		sqlite3_finalize(st);
		ck_assert_int_eq(n, (int)t->ncolumns + 2);

		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM pragma_table_list "
			 "WHERE name = '%s' AND strict = 1", t->name);
		ck_assert_int_eq(count_rows(db, sql), 1);
		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM pragma_index_list('%s') il "
			 "JOIN pragma_index_info(il.name) ii "
			 "WHERE il.origin = 'c' AND ii.name = 'branch_id'",
			 t->name);
		ck_assert_int_eq(count_rows(db, sql), 1);
	}
	/* STRICT really holds: text in an INTEGER column is refused. */
	ck_assert_int_ne(sqlite3_exec(db, "INSERT INTO awards (id, branch_id, "
				      "year) VALUES ('a', 'b', 'x')",
				      NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_ne(sqlite3_exec(db, "INSERT INTO awards (id) VALUES "
				      "('a')", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO awards (id, branch_id) "
				      "VALUES ('a', 'b')", NULL, NULL, NULL),
			 SQLITE_OK);
	ck_assert_int_ne(sqlite3_exec(db, "INSERT INTO awards (id, branch_id) "
				      "VALUES ('a', 'b')", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
}
END_TEST

START_TEST(ddl_limits_and_oom)
{
	struct buf b;

	buf_init(&b, 100);
	ck_assert_int_eq(schema_ddl(&b), BS_ELIMIT);
	buf_release(&b);
	buf_init(&b, 1 << 20);
	mem_fail_after(0);
	ck_assert_int_eq(schema_ddl(&b), BS_ENOMEM);
	mem_fail_reset();
	buf_release(&b);
	buf_init(&b, 1 << 20);
	ck_assert_int_eq(schema_table_ddl(schema_table_find("awards"), &b),
			 BS_OK);
	buf_append_u8(&b, 0);
	ck_assert_ptr_nonnull(strstr((const char *)b.data,
				     "CREATE TABLE awards"));
	ck_assert_ptr_null(strstr((const char *)b.data, "members"));
	buf_release(&b);
}
END_TEST

/* Expected outcome of parsing `in` into t.c: rc, and for BS_OK the kind
 * and canonical text or integer. */
struct vcase {
	const char *t, *c, *in;
	enum bs_status rc;
	enum schema_value_kind kind;
	const char *text;
	int64_t i;
};

#define OK_T(t, c, in, out) { t, c, in, BS_OK, SCHEMA_VALUE_TEXT, out, 0 }
#define OK_I(t, c, in, v) { t, c, in, BS_OK, SCHEMA_VALUE_INT, NULL, v }
#define OK_NULL(t, c, in) { t, c, in, BS_OK, SCHEMA_VALUE_NULL, NULL, 0 }
#define BAD(t, c, in) { t, c, in, BS_EINVALID, SCHEMA_VALUE_NULL, NULL, 0 }

static const struct vcase vcases[] = {
	/* text */
	OK_T("members", "name", "王小明", "王小明"),
	OK_T("members", "occupation", "a\tb\nc", "a\tb\nc"),
	OK_T("members", "occupation", " padded ", " padded "),
	BAD("members", "occupation", "a\rb"),
	BAD("members", "occupation", "bell\x07"),
	BAD("members", "occupation", "esc\x1b[31m"),
	BAD("members", "occupation", "del\x7f"),
	BAD("members", "occupation", "\xff\xfe"),
	BAD("members", "occupation", "\xc0\xaf"),         /* overlong '/' */
	BAD("members", "occupation", "\xed\xa0\x80"),     /* surrogate */
	BAD("members", "occupation", "\xe7\x8e"),         /* truncated */
	OK_NULL("members", "occupation", ""),
	/* date */
	OK_T("members", "birth_date", "2024-02-29", "2024-02-29"),
	OK_T("members", "birth_date", "2000-02-29", "2000-02-29"),
	OK_T("members", "birth_date", "1900-01-01", "1900-01-01"),
	OK_T("members", "birth_date", "2100-12-31", "2100-12-31"),
	OK_T("pairings", "since", "2026-04-30", "2026-04-30"),
	BAD("members", "birth_date", "2023-02-29"),
	BAD("members", "birth_date", "1900-02-29"),
	BAD("members", "birth_date", "2026-13-01"),
	BAD("members", "birth_date", "2026-00-10"),
	BAD("members", "birth_date", "2026-04-31"),
	BAD("members", "birth_date", "2026-04-00"),
	BAD("members", "birth_date", "2026-1-1"),
	BAD("members", "birth_date", "1899-12-31"),
	BAD("members", "birth_date", "2101-01-01"),
	BAD("members", "birth_date", "2026/01/01"),
	BAD("members", "birth_date", "20260101"),
	BAD("members", "birth_date", "2026-01-01T00:00"),
	BAD("members", "birth_date", " 2026-01-01"),
	BAD("members", "birth_date", "+026-01-01"),
	/* enum */
	OK_T("members", "gender", "男", "male"),
	OK_T("members", "gender", "女", "female"),
	OK_T("members", "gender", "m", "male"),
	OK_T("members", "gender", "F", "female"),
	OK_T("members", "gender", "Male", "male"),
	OK_T("members", "gender", "FEMALE", "female"),
	BAD("members", "gender", "男性"),
	BAD("members", "gender", "x"),
	BAD("members", "gender", " male"),
	BAD("members", "gender", "mal"),
	OK_T("branches", "kind", "Village", "village"),
	OK_T("branches", "kind", "township", "township"),
	BAD("branches", "kind", "city"),
	BAD("branches", "kind", "m"), /* aliases belong to their column */
	OK_T("needs", "status", "in_progress", "in_progress"),
	BAD("needs", "status", "in progress"),
	OK_T("needs", "category", "hardship", "hardship"),
	BAD("positions", "status", "met"),
	OK_T("positions", "kind", "internship", "internship"),
	/* int */
	OK_I("activities", "participants", "0", 0),
	OK_I("activities", "participants", "42", 42),
	OK_I("activities", "participants", "007", 7),
	OK_I("activities", "participants", "9223372036854775807", INT64_MAX),
	BAD("activities", "participants", "9223372036854775808"),
	BAD("activities", "participants", "99999999999999999999999"),
	BAD("activities", "participants", "-1"),
	BAD("activities", "participants", "+5"),
	BAD("activities", "participants", " 5"),
	BAD("activities", "participants", "5 "),
	BAD("activities", "participants", "5.0"),
	BAD("activities", "participants", "1e3"),
	BAD("activities", "participants", "-"),
	BAD("activities", "participants", "0x10"),
	BAD("activities", "participants", "99999999999999999999x"),
	OK_I("awards", "year", "1900", 1900),
	OK_I("awards", "year", "2100", 2100),
	BAD("awards", "year", "1899"),
	BAD("awards", "year", "2101"),
	BAD("awards", "year", "-9223372036854775808"),
	BAD("awards", "year", "-9223372036854775809"),
	/* money */
	OK_T("help_cases", "amount", "1200", "1200.00"),
	OK_T("help_cases", "amount", "3.5", "3.50"),
	OK_T("help_cases", "amount", "3.05", "3.05"),
	OK_T("help_cases", "amount", "0", "0.00"),
	OK_T("help_cases", "amount", "0.01", "0.01"),
	OK_T("help_cases", "amount", "0012.30", "12.30"),
	OK_T("help_cases", "amount", "1000000000000", "1000000000000.00"),
	OK_T("help_cases", "amount", "1000000000000.00", "1000000000000.00"),
	BAD("help_cases", "amount", "1000000000000.01"),
	BAD("help_cases", "amount", "10000000000000"),
	BAD("help_cases", "amount", "99999999999999999999999999"),
	BAD("help_cases", "amount", "1.234"),
	BAD("help_cases", "amount", "-1"),
	BAD("help_cases", "amount", "+1"),
	BAD("help_cases", "amount", ".5"),
	BAD("help_cases", "amount", "5."),
	BAD("help_cases", "amount", "1,200"),
	BAD("help_cases", "amount", "1200元"),
	BAD("help_cases", "amount", " 1200"),
	BAD("help_cases", "amount", "1.2.3"),
	/* phone */
	OK_T("members", "phone", "13800138000", "13800138000"),
	OK_T("members", "phone", "+86 138-0013-8000", "+8613800138000"),
	OK_T("branches", "phone", "0571 8888 1234", "057188881234"),
	OK_T("members", "phone", "12345", "12345"),
	OK_T("members", "phone", "12345678901234567890",
	     "12345678901234567890"),
	BAD("members", "phone", "1234"),
	BAD("members", "phone", "123456789012345678901"),
	BAD("members", "phone", "+1234"),
	BAD("members", "phone", "+"),
	BAD("members", "phone", "++8613800138000"),
	BAD("members", "phone", "138+00138000"),
	BAD("members", "phone", "(010) 12345678"),
	BAD("members", "phone", " 13800138000"),
	BAD("members", "phone", "13800138000-"),
	BAD("members", "phone", "+ 8613800138000"),
	BAD("members", "phone", "138.0013.8000"),
	/* id number: GB 11643 examples with valid check characters */
	OK_T("members", "id_number", "11010519491231002X",
	     "11010519491231002X"),
	OK_T("members", "id_number", "11010519491231002x",
	     "11010519491231002X"),
	OK_T("members", "id_number", "440524188001010014",
	     "440524188001010014"),
	OK_T("members", "id_number", "110105491231002", "110105491231002"),
	BAD("members", "id_number", "440524188001010024"),
	BAD("members", "id_number", "440524188001010015"),
	BAD("members", "id_number", "110105194912310020"),
	BAD("members", "id_number", "44052418800101001"),
	BAD("members", "id_number", "4405241880010100144"),
	BAD("members", "id_number", "11010549123100X"),
	BAD("members", "id_number", "X40524188001010014"),
	BAD("members", "id_number", "440524 88001010014"),
	/* ref and id */
	OK_T("members", "id", "01J9ZQ-abc_def.1:2", "01J9ZQ-abc_def.1:2"),
	OK_T("members", "branch_id", "district", "district"),
	OK_T("transfers", "member_id", "m1", "m1"),
	BAD("transfers", "member_id", "m 1"),
	BAD("transfers", "member_id", "m/1"),
	BAD("transfers", "member_id", "成员"),
	BAD("members", "id", "'; DROP TABLE members; --"),
	OK_T("members", "id",
	     "0123456789012345678901234567890123456789012345678901234567890123",
	     "0123456789012345678901234567890123456789012345678901234567890123"),
	BAD("members", "id",
	    "01234567890123456789012345678901234567890123456789012345678901234"),
	/* required columns */
	BAD("members", "name", ""),
	BAD("branches", "kind", ""),
	BAD("pairings", "partner_id", ""),
	BAD("members", "id", ""),
	BAD("members", "branch_id", ""),
	OK_NULL("members", "status", ""),
	OK_NULL("help_cases", "amount", ""),
	OK_NULL("activities", "participants", ""),
};

START_TEST(values_by_type)
{
	const struct vcase *vc = &vcases[_i];
	const struct schema_table *t = schema_table_find(vc->t);
	const struct schema_column *c = col(vc->t, vc->c);
	struct schema_value v;
	char err[512];
	char want[128];
	enum bs_status rc;

	memset(err, 'z', sizeof err);
	rc = schema_parse_value(t, c, vc->in, &v, err, sizeof err);
	ck_assert_msg(rc == vc->rc, "%s.%s <%s>: rc %d, want %d (%s)", vc->t,
		      vc->c, vc->in, rc, vc->rc, err);
	ck_assert_int_eq(v.kind, vc->kind);
	if (rc != BS_OK) {
		ck_assert_ptr_null(v.text);
		/* One lowercase sentence naming the column and the table. */
		snprintf(want, sizeof want, "column '%s' of table '%s' ",
			 vc->c, vc->t);
		ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
			      "message <%s>", err);
		ck_assert_ptr_null(strchr(err, '\n'));
	} else if (vc->kind == SCHEMA_VALUE_TEXT) {
		ck_assert_str_eq(v.text, vc->text);
	} else if (vc->kind == SCHEMA_VALUE_INT) {
		ck_assert_ptr_null(v.text);
		ck_assert_int_eq(v.i, vc->i);
	} else {
		ck_assert_ptr_null(v.text);
	}
	schema_value_clear(&v);
	ck_assert_int_eq(v.kind, SCHEMA_VALUE_NULL);
	ck_assert_ptr_null(v.text);
}
END_TEST

static enum bs_status parse(const char *table, const char *column,
			    const char *in, char *err, size_t errlen)
{
	struct schema_value v;
	enum bs_status rc = schema_parse_value(schema_table_find(table),
					       col(table, column), in, &v, err,
					       errlen);
	schema_value_clear(&v);
	return rc;
}

START_TEST(messages)
{
	char err[512];

	ck_assert_int_eq(parse("members", "name", "", err, sizeof err),
			 BS_EINVALID);
	ck_assert_str_eq(err, "column 'name' of table 'members' is required");
	ck_assert_int_eq(parse("members", "name", NULL, err, sizeof err),
			 BS_EINVALID);
	ck_assert_str_eq(err, "column 'name' of table 'members' is required");
	ck_assert_int_eq(parse("members", "id_number", "440524188001010024",
			       err, sizeof err), BS_EINVALID);
	ck_assert_ptr_nonnull(strstr(err, "checksum does not match"));
	ck_assert_int_eq(parse("branches", "kind", "city", err, sizeof err),
			 BS_EINVALID);
	ck_assert_ptr_nonnull(strstr(err, "village, enterprise, community, "
					  "school, township"));
	ck_assert_int_eq(parse("members", "birth_date", "2023-02-29", err,
			       sizeof err), BS_EINVALID);
	ck_assert_ptr_nonnull(strstr(err, "not a real calendar date"));
	ck_assert_int_eq(parse("awards", "year", "1899", err, sizeof err),
			 BS_EINVALID);
	ck_assert_ptr_nonnull(strstr(err, "1900 to 2100"));
	/* A small or absent buffer truncates, never overflows. */
	memset(err, 'z', sizeof err);
	ck_assert_int_eq(parse("members", "name", "", err, 10), BS_EINVALID);
	ck_assert_str_eq(err, "column 'n");
	ck_assert_int_eq(parse("members", "name", "", NULL, 0), BS_EINVALID);
	ck_assert_int_eq(parse("members", "name", "ok", err, sizeof err),
			 BS_OK);
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(unknown_names)
{
	char err[512];
	char small[16];

	schema_unknown_table_msg("foo", err, sizeof err);
	ck_assert_str_eq(err, "unknown table 'foo'; known tables: branches, "
			      "pairings, members, transfers, needs, "
			      "activities, trainings, positions, help_cases, "
			      "awards");
	schema_unknown_column_msg(schema_table_find("members"), "x", err,
				  sizeof err);
	ck_assert_str_eq(err, "unknown column 'x' in table 'members'; known "
			      "columns: id, branch_id, name, gender, "
			      "birth_date, phone, id_number, joined_on, "
			      "status, occupation, away_city");
	/* Echoed names cannot carry terminal escapes or run on forever. */
	schema_unknown_table_msg("a\x1b[2Jb", err, sizeof err);
	ck_assert_ptr_null(strchr(err, '\x1b'));
	ck_assert_ptr_nonnull(strstr(err, "'a?[2Jb'"));
	schema_unknown_table_msg("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
				 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
				 err, sizeof err);
	ck_assert_ptr_nonnull(strstr(err, "x...'"));
	/* A cut never splits a UTF-8 character: 21 x 3 bytes + 2 bytes. */
	schema_unknown_table_msg("表表表表表表表表表表表表表表表表表表表表表表表", err,
				 sizeof err);
	ck_assert_ptr_nonnull(strstr(err, "'表表表表表表表表表表表表表表表表表表表表表...'"));
	schema_unknown_table_msg("foo", small, sizeof small);
	ck_assert_str_eq(small, "unknown table '");
	schema_unknown_table_msg(NULL, err, sizeof err);
	ck_assert_ptr_nonnull(strstr(err, "unknown table ''"));
}
END_TEST

START_TEST(insert_defaults)
{
	const struct schema_table *t = schema_table_find("members");
	struct schema_value v;
	char err[256];

	ck_assert_int_eq(schema_insert_default(t, col("members", "status"), &v,
					       err, sizeof err), BS_OK);
	ck_assert_int_eq(v.kind, SCHEMA_VALUE_TEXT);
	ck_assert_str_eq(v.text, "active");
	schema_value_clear(&v);
	ck_assert_int_eq(schema_insert_default(t, col("members", "occupation"),
					       &v, err, sizeof err), BS_OK);
	ck_assert_int_eq(v.kind, SCHEMA_VALUE_NULL);
	ck_assert_int_eq(schema_insert_default(t, col("members", "name"), &v,
					       err, sizeof err), BS_EINVALID);
	ck_assert_str_eq(err, "column 'name' of table 'members' is required");
	ck_assert_int_eq(schema_insert_default(schema_table_find("help_cases"),
					       col("help_cases", "status"), &v,
					       err, sizeof err), BS_OK);
	ck_assert_str_eq(v.text, "open");
	schema_value_clear(&v);
}
END_TEST

START_TEST(length_limits_and_nul)
{
	const struct schema_table *t = schema_table_find("activities");
	const struct schema_column *notes = col("activities", "notes");
	struct schema_value v;
	char err[256];
	char *big = malloc(SCHEMA_TEXT_MAX + 2);

	ck_assert_ptr_nonnull(big);
	memset(big, 'a', SCHEMA_TEXT_MAX + 1);
	big[SCHEMA_TEXT_MAX + 1] = '\0';
	ck_assert_int_eq(schema_parse_value(t, notes, big, &v, err, sizeof err),
			 BS_ELIMIT);
	ck_assert_ptr_nonnull(strstr(err, "'notes' of table 'activities'"));
	ck_assert_int_eq(schema_parse_value(t, col("activities", "title"), big,
					    &v, err, sizeof err), BS_ELIMIT);
	ck_assert_int_eq(schema_parse_value(t, col("activities", "held_on"),
					    big, &v, err, sizeof err),
			 BS_EINVALID);
	big[SCHEMA_TEXT_MAX] = '\0';
	ck_assert_int_eq(schema_parse_value(t, notes, big, &v, err, sizeof err),
			 BS_OK);
	ck_assert_uint_eq(strlen(v.text), SCHEMA_TEXT_MAX);
	schema_value_clear(&v);
	free(big);

	/* A CSV cell holding a NUL byte is refused, not cut short. */
	ck_assert_int_eq(schema_parse_value_n(t, notes, "ab\0cd", 5, &v, err,
					      sizeof err), BS_EINVALID);
	ck_assert_ptr_nonnull(strstr(err, "nul"));
	ck_assert_int_eq(schema_parse_value_n(t, col("activities", "held_on"),
					      "2024-01-01\0", 11, &v, err,
					      sizeof err), BS_EINVALID);
	/* Only len bytes are read. */
	ck_assert_int_eq(schema_parse_value_n(t, notes, "abcdef", 3, &v, err,
					      sizeof err), BS_OK);
	ck_assert_str_eq(v.text, "abc");
	schema_value_clear(&v);
	ck_assert_int_eq(schema_parse_value_n(t, col("activities",
						     "participants"),
					      "123456", 2, &v, err, sizeof err),
			 BS_OK);
	ck_assert_int_eq(v.i, 12);
	schema_value_clear(&v);
}
END_TEST

START_TEST(out_of_memory)
{
	const struct schema_table *t = schema_table_find("members");
	static const char *const cols[] = { "name", "gender", "birth_date",
					    "phone", "id_number", "id" };
	static const char *const ins[] = { "x", "男", "2024-01-01", "12345",
					   "110105491231002", "m1" };
	struct schema_value v;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof cols / sizeof cols[0]; i++) {
		mem_fail_after(0);
		ck_assert_int_eq(schema_parse_value(t, col("members", cols[i]),
						    ins[i], &v, err, sizeof err),
				 BS_ENOMEM);
		mem_fail_reset();
		ck_assert_int_eq(v.kind, SCHEMA_VALUE_NULL);
		ck_assert_ptr_null(v.text);
		ck_assert_str_eq(err, "out of memory");
	}
	/* Integers allocate nothing. */
	mem_fail_after(0);
	ck_assert_int_eq(schema_parse_value(schema_table_find("awards"),
					    col("awards", "year"), "2024", &v,
					    err, sizeof err), BS_OK);
	mem_fail_reset();
	ck_assert_int_eq(v.i, 2024);
}
END_TEST

START_TEST(id_validity)
{
	ck_assert_int_eq(schema_id_valid("district"), 1);
	ck_assert_int_eq(schema_id_valid("br-01.a_b:c"), 1);
	ck_assert_int_eq(schema_id_valid(""), 0);
	ck_assert_int_eq(schema_id_valid(NULL), 0);
	ck_assert_int_eq(schema_id_valid("a b"), 0);
	ck_assert_int_eq(schema_id_valid("a/b"), 0);
	ck_assert_int_eq(schema_id_valid("村"), 0);
	ck_assert_int_eq(schema_id_valid(
		"0123456789012345678901234567890123456789012345678901234567890123"),
		1);
	ck_assert_int_eq(schema_id_valid(
		"01234567890123456789012345678901234567890123456789012345678901234"),
		0);
}
END_TEST

/* Every canonical value the parser produces is accepted again unchanged,
 * so a value read back from the database validates to itself. */
START_TEST(canonical_values_are_fixed_points)
{
	size_t i;

	for (i = 0; i < sizeof vcases / sizeof vcases[0]; i++) {
		const struct vcase *vc = &vcases[i];
		struct schema_value v;
		char err[256];

		if (vc->rc != BS_OK || vc->kind != SCHEMA_VALUE_TEXT)
			continue;
		ck_assert_int_eq(schema_parse_value(schema_table_find(vc->t),
						    col(vc->t, vc->c),
						    vc->text, &v, err,
						    sizeof err), BS_OK);
		ck_assert_str_eq(v.text, vc->text);
		schema_value_clear(&v);
	}
}
END_TEST

static Suite *schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, tables_in_canonical_order);
	tcase_add_test(tc, column_types_and_rules);
	tcase_add_test(tc, ddl_creates_exactly_the_columns);
	tcase_add_test(tc, ddl_limits_and_oom);
	tcase_add_loop_test(tc, values_by_type, 0,
			    (int)(sizeof vcases / sizeof vcases[0]));
	tcase_add_test(tc, messages);
	tcase_add_test(tc, unknown_names);
	tcase_add_test(tc, insert_defaults);
	tcase_add_test(tc, length_limits_and_nul);
	tcase_add_test(tc, out_of_memory);
	tcase_add_test(tc, id_validity);
	tcase_add_test(tc, canonical_values_are_fixed_points);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(schema_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
