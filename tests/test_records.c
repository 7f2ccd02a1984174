/* test_records.c - Check suite for shared/records: validated inserts with
 * defaults, updates that touch only the named columns, deletes, reads, the
 * refusals, and that values are bound rather than spliced into SQL. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "records.h"
#include "replica.h"
#include "sign.h"

static struct replica *rep;
static struct records *rs;

static void setup(void)
{
	struct err e;

	err_init(&e);
	ck_assert_int_eq(sign_init(), BS_OK);
	ck_assert_msg(replica_open(":memory:", REPLICA_MEMORY, &rep, &e) == 0,
		      "%s", e.msg);
	ck_assert_int_eq(records_new(rep->db, &rs, &e), 0);
}

static void teardown(void)
{
	records_free(rs);
	replica_close(rep);
	rs = NULL;
	rep = NULL;
}

/* Builds a row of table `tname` from "col=value" strings (NULL-ended). */
static int make_row(struct records_row *row, const char *tname,
		    const char *const *pairs, struct err *e)
{
	const struct schema_table *t = schema_table_find(tname);
	size_t i;

	ck_assert_ptr_nonnull(t);
	records_row_init(row, t);
	for (i = 0; pairs[i]; i++) {
		char col[64];
		const char *eq = strchr(pairs[i], '=');

		ck_assert_ptr_nonnull(eq);
		snprintf(col, sizeof col, "%.*s", (int)(eq - pairs[i]),
			 pairs[i]);
		if (records_row_set(row, col, eq + 1, strlen(eq + 1), e))
			return -1;
	}
	return 0;
}

static int insert(const char *tname, const char *id,
		  const char *const *pairs, struct err *e)
{
	struct records_row row;
	int rc;

	rc = make_row(&row, tname, pairs, e);
	if (rc == 0)
		rc = records_insert(rs, id, &row, e);
	records_row_clear(&row);
	return rc;
}

/* The value of one column of one row, as text ("NULL" for NULL). */
static void cell(const char *sql, char *out, size_t n)
{
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(rep->db, sql, -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		snprintf(out, n, "NULL");
	else
		snprintf(out, n, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static long count(const char *sql)
{
	char buf[64];

	cell(sql, buf, sizeof buf);
	return strtol(buf, NULL, 10);
}

START_TEST(insert_fills_defaults_and_canonical_values)
{
	static const char *const pairs[] = {
		"name=Zhang San", "gender=\xe7\x94\xb7", "phone=138 0000 0001",
		"branch_id=b1", NULL,
	};
	char v[256];
	struct err e;

	err_init(&e);
	ck_assert_msg(insert("members", "m1", pairs, &e) == 0, "%s", e.msg);
	cell("SELECT status FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "active");      /* the schema default */
	cell("SELECT gender FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "male");        /* alias made canonical */
	cell("SELECT phone FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "13800000001");
	cell("SELECT branch_id FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "b1");
	cell("SELECT occupation FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "NULL");
}
END_TEST

START_TEST(insert_refuses_missing_required)
{
	static const char *const no_name[] = { "branch_id=b1", NULL };
	static const char *const no_branch[] = { "name=Li", NULL };
	struct err e;

	err_init(&e);
	ck_assert_int_ne(insert("members", "m1", no_name, &e), 0);
	ck_assert_int_eq(e.kind, ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(e.msg, "'name'"));
	ck_assert_ptr_nonnull(strstr(e.msg, "is required"));
	err_init(&e);
	ck_assert_int_ne(insert("members", "m1", no_branch, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "'branch_id'"));
	ck_assert_ptr_nonnull(strstr(e.msg, "is required"));
	ck_assert_int_eq(count("SELECT count(*) FROM members"), 0);
}
END_TEST

START_TEST(row_set_refusals)
{
	struct records_row row;
	struct err e;

	records_row_init(&row, schema_table_find("members"));
	err_init(&e);
	ck_assert_int_ne(records_row_set(&row, "nope", "x", 1, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown column 'nope'"));
	ck_assert_uint_eq(row.n, 0);
	err_init(&e);
	ck_assert_int_ne(records_row_set(&row, "gender", "x", 1, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "must be one of"));
	ck_assert_uint_eq(row.n, 0);
	err_init(&e);
	ck_assert_int_eq(records_row_set(&row, "name", "A", 1, &e), 0);
	ck_assert_int_ne(records_row_set(&row, "name", "B", 1, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "given twice"));
	ck_assert_uint_eq(row.n, 1);
	ck_assert_str_eq(records_row_get(&row, "name")->text, "A");
	ck_assert_ptr_null(records_row_get(&row, "phone"));
	records_row_clear(&row);
	ck_assert_uint_eq(row.n, 0);
}
END_TEST

/* Columns are found by name in any order: schema order (tried first),
 * reversed, after id or branch_id, and the last column of the table. */
START_TEST(row_set_any_order)
{
	const struct schema_table *t = schema_table_find("members");
	static const char *const order[][4] = {
		{"branch_id", "name", "gender", "birth_date"},
		{"away_city", "occupation", "status", "name"},
		{"name", "away_city", "branch_id", "gender"},
		{"gender", "birth_date", "phone", "away_city"},
	};
	struct records_row row;
	struct err e;
	size_t k, i;

	for (k = 0; k < sizeof order / sizeof order[0]; k++) {
		records_row_init(&row, t);
		for (i = 0; i < 4; i++) {
			const char *v = strcmp(order[k][i], "branch_id") == 0 ? "b1"
				: strcmp(order[k][i], "name") == 0 ? "N"
				: strcmp(order[k][i], "gender") == 0 ? "male"
				: strcmp(order[k][i], "birth_date") == 0 ? "1990-01-02"
				: strcmp(order[k][i], "phone") == 0 ? "13800000000"
				: strcmp(order[k][i], "status") == 0 ? "active"
				: "v";

			err_init(&e);
			ck_assert_msg(records_row_set(&row, order[k][i], v,
						      strlen(v), &e) == 0,
				      "%s", e.msg);
			ck_assert_str_eq(row.cols[row.n - 1]->name, order[k][i]);
			ck_assert_str_eq(records_row_get(&row, order[k][i])->text,
					 v);
		}
		/* the guessed next column given twice is still refused */
		err_init(&e);
		ck_assert_int_ne(records_row_set(&row, order[k][0], "b1", 2, &e),
				 0);
		ck_assert_ptr_nonnull(strstr(e.msg, "given twice"));
		records_row_clear(&row);
	}
}
END_TEST

START_TEST(insert_refuses_bad_ids_and_duplicates)
{
	static const char *const pairs[] = { "name=A", "branch_id=b1", NULL };
	static const char *const with_id[] = {
		"id=m9", "name=A", "branch_id=b1", NULL,
	};
	struct err e;

	err_init(&e);
	ck_assert_int_eq(insert("members", "m1", pairs, &e), 0);
	ck_assert_int_ne(insert("members", "m1", pairs, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "already exists"));
	err_init(&e);
	ck_assert_int_ne(insert("members", "bad id", pairs, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a valid record id"));
	err_init(&e);
	ck_assert_int_ne(insert("members", "m2", with_id, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "'id' cannot be set"));
	ck_assert_int_eq(count("SELECT count(*) FROM members"), 1);
}
END_TEST

START_TEST(branches_scope_is_their_id)
{
	static const char *const plain[] = {
		"name=Village 1", "kind=village", NULL,
	};
	static const char *const same[] = {
		"name=Village 2", "kind=village", "branch_id=v2", NULL,
	};
	static const char *const other[] = {
		"name=Village 3", "kind=village", "branch_id=v9", NULL,
	};
	char v[64];
	struct err e;

	err_init(&e);
	ck_assert_msg(insert("branches", "v1", plain, &e) == 0, "%s", e.msg);
	cell("SELECT branch_id FROM branches WHERE id='v1'", v, sizeof v);
	ck_assert_str_eq(v, "v1");
	ck_assert_int_eq(insert("branches", "v2", same, &e), 0);
	ck_assert_int_ne(insert("branches", "v3", other, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "must equal its id"));
}
END_TEST

START_TEST(update_touches_only_named_columns)
{
	static const char *const pairs[] = {
		"name=Wang", "phone=13900000000", "occupation=farmer",
		"branch_id=b1", NULL,
	};
	static const char *const change[] = { "occupation=driver", NULL };
	struct records_row row;
	char v[64];
	int found = 0;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(insert("members", "m1", pairs, &e), 0);
	/* Someone else's write to another column must survive our update. */
	ck_assert_int_eq(replica_exec(rep->db, "UPDATE members SET "
				      "away_city='Hangzhou' WHERE id='m1'",
				      &e), 0);
	ck_assert_int_eq(make_row(&row, "members", change, &e), 0);
	ck_assert_msg(records_update(rs, "m1", "b1", &row, &found, &e) == 0,
		      "%s", e.msg);
	records_row_clear(&row);
	ck_assert_int_eq(found, 1);
	ck_assert_int_eq(sqlite3_changes(rep->db), 1);
	cell("SELECT occupation FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "driver");
	cell("SELECT phone FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "13900000000");
	cell("SELECT away_city FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "Hangzhou");
	cell("SELECT name FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "Wang");
}
END_TEST

START_TEST(update_empty_value_clears)
{
	static const char *const pairs[] = {
		"name=Wang", "phone=13900000000", "branch_id=b1", NULL,
	};
	static const char *const clear[] = { "phone=", NULL };
	struct records_row row;
	char v[64];
	int found = 0;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(insert("members", "m1", pairs, &e), 0);
	ck_assert_int_eq(make_row(&row, "members", clear, &e), 0);
	ck_assert_int_eq(records_update(rs, "m1", "b1", &row, &found, &e), 0);
	records_row_clear(&row);
	ck_assert_int_eq(found, 1);
	cell("SELECT phone FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "NULL");
}
END_TEST

START_TEST(update_refusals_and_missing_rows)
{
	static const char *const pairs[] = { "name=Wang", "branch_id=b1",
					     NULL };
	static const char *const move[] = { "branch_id=b2", NULL };
	static const char *const stay[] = { "branch_id=b1", "name=Li", NULL };
	static const char *const set_id[] = { "id=x", NULL };
	static const char *const name[] = { "name=Zhao", NULL };
	struct records_row row;
	char v[64];
	int found = -1;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(insert("members", "m1", pairs, &e), 0);
	ck_assert_int_eq(make_row(&row, "members", move, &e), 0);
	ck_assert_int_ne(records_update(rs, "m1", "b1", &row, &found, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "cannot move"));
	records_row_clear(&row);
	err_init(&e);
	ck_assert_int_eq(make_row(&row, "members", stay, &e), 0);
	ck_assert_int_eq(records_update(rs, "m1", "b1", &row, &found, &e), 0);
	ck_assert_int_eq(found, 1);
	records_row_clear(&row);
	cell("SELECT name FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "Li");
	ck_assert_int_eq(make_row(&row, "members", set_id, &e), 0);
	ck_assert_int_ne(records_update(rs, "m1", "b1", &row, &found, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "'id' cannot be changed"));
	records_row_clear(&row);
	/* Unknown id, and a known id in the wrong branch: nothing written. */
	err_init(&e);
	ck_assert_int_eq(make_row(&row, "members", name, &e), 0);
	ck_assert_int_eq(records_update(rs, "m2", "b1", &row, &found, &e), 0);
	ck_assert_int_eq(found, 0);
	ck_assert_int_eq(records_update(rs, "m1", "b2", &row, &found, &e), 0);
	ck_assert_int_eq(found, 0);
	records_row_clear(&row);
	cell("SELECT name FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "Li");
}
END_TEST

START_TEST(find_get_delete)
{
	static const char *const pairs[] = {
		"title=Festival", "participants=42", "branch_id=b7", NULL,
	};
	const struct schema_table *t = schema_table_find("activities");
	struct schema_value vals[RECORDS_MAX_COLUMNS];
	char *branch = NULL;
	int found = -1;
	size_t i;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(insert("activities", "a1", pairs, &e), 0);
	ck_assert_int_eq(records_find(rs, t, "a1", &branch, &e), 0);
	ck_assert_str_eq(branch, "b7");
	mem_free(branch);
	ck_assert_int_eq(records_find(rs, t, "zz", &branch, &e), 0);
	ck_assert_ptr_null(branch);

	ck_assert_int_eq(records_get(rs, t, "a1", vals, &found, &e), 0);
	ck_assert_int_eq(found, 1);
	ck_assert_int_eq(vals[0].kind, SCHEMA_VALUE_TEXT);
	ck_assert_str_eq(vals[0].text, "a1");
	ck_assert_str_eq(vals[1].text, "b7");
	ck_assert_str_eq(vals[2].text, "Festival");
	/* participants is column index 4 in the schema: an INTEGER */
	ck_assert_int_eq(vals[2 + 4].kind, SCHEMA_VALUE_INT);
	ck_assert_int_eq(vals[2 + 4].i, 42);
	ck_assert_int_eq(vals[2 + 1].kind, SCHEMA_VALUE_NULL);
	for (i = 0; i < t->ncolumns + 2; i++)
		schema_value_clear(&vals[i]);

	ck_assert_int_eq(records_delete(rs, t, "a1", "b9", &found, &e), 0);
	ck_assert_int_eq(found, 0);
	ck_assert_int_eq(records_delete(rs, t, "a1", "b7", &found, &e), 0);
	ck_assert_int_eq(found, 1);
	ck_assert_int_eq(records_get(rs, t, "a1", vals, &found, &e), 0);
	ck_assert_int_eq(found, 0);
	ck_assert_int_eq(records_delete(rs, t, "a1", "b7", &found, &e), 0);
	ck_assert_int_eq(found, 0);
}
END_TEST

START_TEST(same_id_in_two_branches_is_ambiguous)
{
	static const char *const b1[] = { "name=A", "branch_id=b1", NULL };
	static const char *const b2[] = { "name=B", "branch_id=b2", NULL };
	const struct schema_table *t = schema_table_find("members");
	struct schema_value vals[RECORDS_MAX_COLUMNS];
	char *branch = NULL;
	int found;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(insert("members", "m1", b1, &e), 0);
	/* Possible only if the key is (id, branch_id), as merge needs. */
	if (insert("members", "m1", b2, &e) != 0)
		return;
	ck_assert_int_ne(records_find(rs, t, "m1", &branch, &e), 0);
	ck_assert_ptr_null(branch);
	ck_assert_ptr_nonnull(strstr(e.msg, "used by two branches"));
	err_init(&e);
	ck_assert_int_ne(records_get(rs, t, "m1", vals, &found, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "used by two branches"));
}
END_TEST

START_TEST(values_are_bound_not_spliced)
{
	static const char *const pairs[] = {
		"name=x'); DROP TABLE members; --", "occupation=\"; DELETE",
		"branch_id=b1", NULL,
	};
	char v[128];
	struct err e;

	err_init(&e);
	ck_assert_int_eq(insert("members", "m1", pairs, &e), 0);
	cell("SELECT name FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "x'); DROP TABLE members; --");
	cell("SELECT occupation FROM members WHERE id='m1'", v, sizeof v);
	ck_assert_str_eq(v, "\"; DELETE");
	ck_assert_int_eq(count("SELECT count(*) FROM members"), 1);
}
END_TEST

START_TEST(new_ids_are_random_hex)
{
	char a[RECORDS_ID_HEX + 1], b[RECORDS_ID_HEX + 1];
	size_t i;

	records_new_id(a);
	records_new_id(b);
	ck_assert_uint_eq(strlen(a), RECORDS_ID_HEX);
	for (i = 0; i < RECORDS_ID_HEX; i++)
		ck_assert(strchr("0123456789abcdef", a[i]) != NULL);
	ck_assert_str_ne(a, b);
	ck_assert(schema_id_valid(a));
}
END_TEST

START_TEST(many_inserts_reuse_statements)
{
	static const char *const pairs[] = { "name=N", "branch_id=b1", NULL };
	struct records_row row;
	char id[RECORDS_ID_HEX + 1];
	struct err e;
	int i;

	err_init(&e);
	ck_assert_int_eq(make_row(&row, "members", pairs, &e), 0);
	ck_assert_int_eq(replica_exec(rep->db, "BEGIN", &e), 0);
	for (i = 0; i < 5000; i++) {
		records_new_id(id);
		ck_assert_msg(records_insert(rs, id, &row, &e) == 0, "%s",
			      e.msg);
	}
	ck_assert_int_eq(replica_exec(rep->db, "COMMIT", &e), 0);
	records_row_clear(&row);
	ck_assert_int_eq(count("SELECT count(*) FROM members"), 5000);
}
END_TEST

/* Every allocation failure is reported, never a crash or a leak. */
START_TEST(out_of_memory_fails_cleanly)
{
	static const char *const pairs[] = { "name=N", "branch_id=b1", NULL };
	const struct schema_table *t = schema_table_find("members");
	struct schema_value vals[RECORDS_MAX_COLUMNS];
	struct records_row row;
	struct records *fresh = NULL;
	char id[16];
	long n;
	int ok = 0, found = 0;
	size_t i;
	struct err e;

	for (n = 0; n < 200 && !ok; n++) {
		err_init(&e);
		snprintf(id, sizeof id, "m%ld", n);
		records_row_init(&row, t);
		mem_fail_after(n);
		if (records_new(rep->db, &fresh, &e) == 0 &&
		    make_row(&row, "members", pairs, &e) == 0 &&
		    records_insert(fresh, id, &row, &e) == 0 &&
		    records_get(fresh, t, id, vals, &found, &e) == 0) {
			ok = 1;
			for (i = 0; i < t->ncolumns + 2; i++)
				schema_value_clear(&vals[i]);
		} else {
			ck_assert_int_eq(e.kind, ERR_INVALID);
		}
		mem_fail_reset();
		records_row_clear(&row);
		records_free(fresh);
		fresh = NULL;
	}
	ck_assert(ok);
	ck_assert_int_eq(found, 1);
}
END_TEST

static Suite *records_suite(void)
{
	Suite *s = suite_create("records");
	TCase *tc = tcase_create("records");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, insert_fills_defaults_and_canonical_values);
	tcase_add_test(tc, insert_refuses_missing_required);
	tcase_add_test(tc, row_set_refusals);
	tcase_add_test(tc, row_set_any_order);
	tcase_add_test(tc, insert_refuses_bad_ids_and_duplicates);
	tcase_add_test(tc, branches_scope_is_their_id);
	tcase_add_test(tc, update_touches_only_named_columns);
	tcase_add_test(tc, update_empty_value_clears);
	tcase_add_test(tc, update_refusals_and_missing_rows);
	tcase_add_test(tc, find_get_delete);
	tcase_add_test(tc, same_id_in_two_branches_is_ambiguous);
	tcase_add_test(tc, values_are_bound_not_spliced);
	tcase_add_test(tc, new_ids_are_random_hex);
	tcase_add_test(tc, many_inserts_reuse_statements);
	tcase_add_test(tc, out_of_memory_fails_cleanly);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(records_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
