/* test_csbody.c - Check suite for shared/csbody: real changeset bodies from
 * capture pass; truncations, unknown tables, wrong column counts, bad
 * types and oversized values fail with a message; and the body that made
 * SQLite's own iterator hang (found by fuzz/fuzz_push.c) is refused; the
 * iterator reads what SQLite's iterator reads. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "capture.h"
#include "changeset.h"
#include "csbody.h"
#include "fsutil.h"
#include "mem.h"
#include "replica.h"

/* A real body: one captured transaction of `sql` on a fresh replica. */
static uint8_t *captured_body(const char *sql, size_t *len)
{
	struct replica *r = NULL;
	struct capture *c = NULL;
	struct capture_signer s;
	uint8_t pk[32], sk[64], *out;
	struct changeset cs;
	sqlite3_stmt *st;
	struct err e;
	int count;

	err_init(&e);
	crypto_sign_keypair(pk, sk);
	s = (struct capture_signer){pk, sk, NULL, 1700000000000ull};
	ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &r, &e), 0);
	ck_assert_int_eq(capture_begin(r, &s, &c, &e), 0);
	ck_assert_int_eq(sqlite3_exec(r->db, sql, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(capture_commit(c, &count, &e), 0);
	capture_free(c);
	sqlite3_prepare_v2(r->db, "SELECT bytes FROM bs_outbox ORDER BY seq DESC",
			   -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(changeset_decode(sqlite3_column_blob(st, 0),
					  (size_t)sqlite3_column_bytes(st, 0),
					  &cs), BS_OK);
	out = mem_alloc(cs.body_len);
	memcpy(out, cs.body, cs.body_len);
	*len = cs.body_len;
	sqlite3_finalize(st);
	replica_close(r);
	return out;
}

static int check(const uint8_t *p, size_t n)
{
	struct err e;

	err_init(&e);
	return csbody_check(p, n, &e);
}

START_TEST(real_bodies_pass)
{
	size_t n;
	uint8_t *b = captured_body(
		"INSERT INTO members(id, branch_id, name, status, away_city)"
		" VALUES('a', 'b1', '张三', 'away', '深圳'), ('b', 'b1', 'x', NULL, NULL);"
		"INSERT INTO needs(id, branch_id, member_id, category)"
		" VALUES('n', 'b1', 'a', 'job')", &n);

	struct err e;

	err_init(&e);
	ck_assert_msg(csbody_check(b, n, &e) == 0, "%s", e.msg);
	mem_free(b);
}
END_TEST

START_TEST(every_truncation_fails)
{
	size_t n, i;
	uint8_t *b = captured_body("INSERT INTO members(id, branch_id, name)"
				   " VALUES('a', 'b1', 'N')", &n);

	for (i = 0; i < n; i++)
		ck_assert_msg(check(b, i) != 0, "prefix of %zu bytes passed", i);
	mem_free(b);
}
END_TEST

START_TEST(mutations_refused_with_message)
{
	size_t n;
	uint8_t *b = captured_body("INSERT INTO members(id, branch_id, name)"
				   " VALUES('a', 'b1', 'N')", &n);
	uint8_t *m = mem_alloc(n + 1);
	struct err e;

	/* table name changed to an unknown one */
	memcpy(m, b, n);
	m[1 + 1 + 11] = 'X';
	err_init(&e);
	ck_assert_int_ne(csbody_check(m, n, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown table"));
	/* column count off by one */
	memcpy(m, b, n);
	m[1] = 10;
	ck_assert_int_ne(check(m, n), 0);
	/* an unknown operation byte right after the header */
	memcpy(m, b, n);
	m[1 + 1 + 11 + 8] = 0x42;
	ck_assert_int_ne(check(m, n), 0);
	/* one trailing byte is a truncated change */
	memcpy(m, b, n);
	m[n] = 0x12;
	ck_assert_int_ne(check(m, n + 1), 0);
	mem_free(m);
	mem_free(b);
}
END_TEST

START_TEST(sqlite_hang_body_refused)
{
	char path[512];
	uint8_t *data = NULL;
	size_t len = 0;
	const char *dir = getenv("BRANCHSYNC_VECTORS");

	snprintf(path, sizeof path, "%s/body-sqlite-hang.bin", dir ? dir : ".");
	ck_assert_int_eq(fsutil_read_all(path, 1 << 20, &data, &len), 0);
	/* the fuzzer's input starts with its mode byte */
	ck_assert_int_ne(check(data + 1, len - 1), 0);
	mem_free(data);
}
END_TEST

START_TEST(oversized_value_refused)
{
	/* 'T', 3 columns... a hand-built awards-like header is not needed:
	 * take a real body and grow a text length past the limit */
	size_t n;
	uint8_t *b = captured_body("INSERT INTO members(id, branch_id, name)"
				   " VALUES('a', 'b1', 'N')", &n);
	uint8_t *m = mem_alloc(n);
	size_t i;

	memcpy(m, b, n);
	/* find the first TEXT field (type 3, length 1, 'a') and claim 2^20 */
	for (i = 0; i + 2 < n; i++)
		if (m[i] == 3 && m[i + 1] == 1 && m[i + 2] == 'a')
			break;
	ck_assert_uint_lt(i + 2, n);
	m[i + 1] = 0xc0; /* varint 0xc0 0x80 0x00: 2^20 */
	ck_assert_int_ne(check(m, n), 0);
	mem_free(m);
	mem_free(b);
}
END_TEST

/* The iterator hands out what SQLite's own iterator reads: every
 * operation, table, kind and field, with UPDATE's undefined fields. */
START_TEST(iterator_matches_sqlite)
{
	struct replica *r = NULL;
	sqlite3_session *ses = NULL;
	sqlite3_changeset_iter *it = NULL;
	struct csbody_iter w;
	struct csbody_op op;
	void *body = NULL;
	int len = 0, ops = 0, kinds = 0;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &r, &e), 0);
	ck_assert_int_eq(sqlite3_exec(r->db,
		"INSERT INTO members(id, branch_id, name, status) VALUES"
		"('u', 'b1', 'U', 'away'), ('d', 'b1', 'D', NULL)",
		NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3session_create(r->db, "main", &ses), SQLITE_OK);
	ck_assert_int_eq(sqlite3session_attach(ses, "members"), SQLITE_OK);
	ck_assert_int_eq(sqlite3session_attach(ses, "needs"), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(r->db,
		"UPDATE members SET name='U2', status=NULL WHERE id='u';"
		"DELETE FROM members WHERE id='d';"
		"INSERT INTO members(id, branch_id, name, occupation) VALUES"
		"('i', 'b1', '张三', '')",
		NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(r->db,
		"INSERT INTO needs(id, branch_id, member_id, category) VALUES"
		"('n', 'b1', 'i', 'job')", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3session_changeset(ses, &len, &body), SQLITE_OK);
	ck_assert_int_eq(sqlite3changeset_start(&it, len, body), SQLITE_OK);
	csbody_start(&w, body, (size_t)len, &e);
	while (sqlite3changeset_next(it) == SQLITE_ROW) {
		const char *tab;
		int ncol, kind, ind, i;

		ck_assert_int_eq(csbody_next(&w, &op), 1);
		sqlite3changeset_op(it, &tab, &ncol, &kind, &ind);
		ck_assert_str_eq(op.t->name, tab);
		ck_assert_int_eq((int)op.kind, kind);
		ck_assert_int_eq(op.indirect, ind);
		ck_assert_uint_eq(op.ncol, (size_t)ncol);
		kinds |= 1 << (kind & 0x1f);
		for (i = 0; i < ncol; i++) {
			const struct csbody_value *mine[2] = {&op.oldv[i],
							      &op.newv[i]};
			sqlite3_value *theirs[2] = {NULL, NULL};
			int j;

			if (kind != SQLITE_INSERT)
				sqlite3changeset_old(it, i, &theirs[0]);
			if (kind != SQLITE_DELETE)
				sqlite3changeset_new(it, i, &theirs[1]);
			for (j = 0; j < 2; j++) {
				const struct csbody_value *v = mine[j];

				if (!theirs[j]) {
					ck_assert_int_eq(v->type,
							 CSBODY_UNDEFINED);
					continue;
				}
				ck_assert_int_eq((int)v->type,
						 sqlite3_value_type(theirs[j]));
				if (v->type == CSBODY_INTEGER)
					ck_assert_int_eq(v->i,
						sqlite3_value_int64(theirs[j]));
				if (v->type == CSBODY_TEXT) {
					ck_assert_uint_eq(v->n, (size_t)
						sqlite3_value_bytes(theirs[j]));
					ck_assert_mem_eq(v->p,
						sqlite3_value_text(theirs[j]),
						v->n);
				}
			}
		}
		ops++;
	}
	ck_assert_int_eq(csbody_next(&w, &op), 0);
	ck_assert_int_eq(ops, 4);
	ck_assert_int_eq(kinds, (1 << (SQLITE_INSERT & 0x1f)) |
			 (1 << (SQLITE_UPDATE & 0x1f)) |
			 (1 << (SQLITE_DELETE & 0x1f)));
	sqlite3changeset_finalize(it);
	sqlite3_free(body);
	sqlite3session_delete(ses);
	replica_close(r);
}
END_TEST

static Suite *csbody_suite(void)
{
	Suite *s = suite_create("csbody");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, real_bodies_pass);
	tcase_add_test(tc, every_truncation_fails);
	tcase_add_test(tc, mutations_refused_with_message);
	tcase_add_test(tc, sqlite_hang_body_refused);
	tcase_add_test(tc, oversized_value_refused);
	tcase_add_test(tc, iterator_matches_sqlite);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(csbody_suite());
	int failed;

	if (sodium_init() < 0)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
