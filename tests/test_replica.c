/* test_replica.c - Check suite for shared/replica and shared/digest: file
 * creation and reopening, the ordered migration path (a version-1 file
 * opens and upgrades; a version-5 file, whose every row has explicit
 * clocks, gains implicit ones and keeps using its own), refusal of files
 * from a newer branchsync, settings, and the canonical digest's
 * sensitivity and stability. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "capture.h"
#include "changeset.h"
#include "digest.h"
#include "mem.h"
#include "replica.h"

static char path[256];

static void setup(void)
{
	snprintf(path, sizeof path, "/tmp/bs-test-replica-%ld.db", (long)getpid());
	unlink(path);
}

static void teardown(void)
{
	char side[300];

	unlink(path);
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", path);
	unlink(side);
}

static int user_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v;

	sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	sqlite3_step(st);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int table_exists(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	int found;

	sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE name=?1", -1,
			   &st, NULL);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

START_TEST(create_then_open)
{
	struct replica *r = NULL;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(replica_open(path, REPLICA_OPEN, &r, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "branchsync init"));
	err_init(&e);
	ck_assert_int_eq(replica_open(path, REPLICA_CREATE, &r, &e), 0);
	ck_assert_int_eq(user_version(r->db), REPLICA_VERSION);
	ck_assert(table_exists(r->db, "members"));
	ck_assert(table_exists(r->db, "bs_outbox"));
	ck_assert_int_eq(replica_setting_set_text(r, "device_name", "村委会", &e), 0);
	ck_assert_int_eq(replica_setting_set_int(r, "seq", 42, &e), 0);
	replica_close(r);

	err_init(&e);
	ck_assert_int_eq(replica_open(path, REPLICA_CREATE, &r, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "already exists"));
	err_init(&e);
	ck_assert_int_eq(replica_open(path, REPLICA_OPEN, &r, &e), 0);
	{
		char *name = replica_setting_text(r, "device_name");
		int64_t seq;

		ck_assert_str_eq(name, "村委会");
		mem_free(name);
		ck_assert_int_eq(replica_setting_int(r, "seq", &seq, 0, &e), 0);
		ck_assert_int_eq(seq, 42);
		ck_assert_ptr_null(replica_setting_text(r, "absent"));
	}
	{
		sqlite3_stmt *st;
		sqlite3_prepare_v2(r->db, "PRAGMA journal_mode", -1, &st, NULL);
		sqlite3_step(st);
		ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
	}
	replica_close(r);
}
END_TEST

START_TEST(old_version_upgrades)
{
	struct replica *r = NULL;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(replica_open_at(path, REPLICA_CREATE, 1, &r, &e), 0);
	ck_assert_int_eq(user_version(r->db), 1);
	ck_assert(!table_exists(r->db, "bs_conflicts"));
	ck_assert_int_eq(sqlite3_exec(r->db,
		"INSERT INTO members(id, branch_id, name) VALUES('a', 'b', 'N')",
		NULL, NULL, NULL), SQLITE_OK);
	replica_close(r);

	ck_assert_int_eq(replica_open(path, REPLICA_OPEN, &r, &e), 0);
	ck_assert_int_eq(user_version(r->db), REPLICA_VERSION);
	ck_assert(table_exists(r->db, "bs_conflicts"));
	{
		sqlite3_stmt *st;
		sqlite3_prepare_v2(r->db, "SELECT name FROM members", -1, &st, NULL);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "N");
		sqlite3_finalize(st);
	}
	replica_close(r);
}
END_TEST

START_TEST(newer_version_refused)
{
	struct replica *r = NULL;
	struct err e;

	err_init(&e);
	ck_assert_int_eq(replica_open(path, REPLICA_CREATE, &r, &e), 0);
	ck_assert_int_eq(sqlite3_exec(r->db, "PRAGMA user_version=99", NULL,
				      NULL, NULL), SQLITE_OK);
	replica_close(r);
	ck_assert_int_eq(replica_open(path, REPLICA_OPEN, &r, &e), -1);
	ck_assert_int_eq(e.kind, ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(e.msg, "newer branchsync"));
}
END_TEST

START_TEST(digest_sensitive_and_stable)
{
	struct replica *a = NULL, *b = NULL;
	struct err e;
	uint8_t da[HASH_BYTES], db[HASH_BYTES], empty[HASH_BYTES];

	err_init(&e);
	ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &a, &e), 0);
	ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &b, &e), 0);
	ck_assert_int_eq(digest_compute(a->db, empty, &e), 0);
	/* insertion order must not matter */
	sqlite3_exec(a->db, "INSERT INTO members(id, branch_id, name, status) "
		     "VALUES('1', 'b', 'x', 'active'), ('2', 'b', 'y', NULL)",
		     NULL, NULL, NULL);
	sqlite3_exec(b->db, "INSERT INTO members(id, branch_id, name, status) "
		     "VALUES('2', 'b', 'y', NULL), ('1', 'b', 'x', 'active')",
		     NULL, NULL, NULL);
	digest_compute(a->db, da, &e);
	digest_compute(b->db, db, &e);
	ck_assert_mem_eq(da, db, HASH_BYTES);
	ck_assert_mem_ne(da, empty, HASH_BYTES);
	/* NULL and '' differ; one changed byte differs; bookkeeping doesn't */
	sqlite3_exec(b->db, "UPDATE members SET status='' WHERE id='2'", NULL,
		     NULL, NULL);
	digest_compute(b->db, db, &e);
	ck_assert_mem_ne(da, db, HASH_BYTES);
	sqlite3_exec(b->db, "UPDATE members SET status=NULL WHERE id='2'", NULL,
		     NULL, NULL);
	sqlite3_exec(b->db, "INSERT INTO bs_settings VALUES('x', 1)", NULL,
		     NULL, NULL);
	digest_compute(b->db, db, &e);
	ck_assert_mem_eq(da, db, HASH_BYTES);
	/* a row moved to another table is a different state */
	sqlite3_exec(b->db, "DELETE FROM members WHERE id='2';"
		     "INSERT INTO awards(id, branch_id, title) VALUES('2', 'b', 'y')",
		     NULL, NULL, NULL);
	digest_compute(b->db, db, &e);
	ck_assert_mem_ne(da, db, HASH_BYTES);
	replica_close(a);
	replica_close(b);
}
END_TEST

/* The digest of an empty replica is fixed by FORMAT.md: a known answer. */
START_TEST(digest_known_answer_empty)
{
	struct replica *a = NULL;
	struct err e;
	uint8_t d[HASH_BYTES];
	char hex[HASH_BYTES * 2 + 1];
	size_t i;

	err_init(&e);
	ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &a, &e), 0);
	ck_assert_int_eq(digest_compute(a->db, d, &e), 0);
	for (i = 0; i < HASH_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	/* SHA-256 of "BSDG" 01 01 then, per table in order, blob(name) 00 */
	/* computed independently from the spec (Python hashlib) */
	ck_assert_str_eq(hex, "f72bc9145cf538763753ddb5e435b3941ccdee235d17c97ca9bcf114fa9ed1e4");
	replica_close(a);
}
END_TEST

/* Migration 6 on a version-5 file: every row there has explicit clocks in
 * bs_rows, which go on deciding (an edit is stamped after them), while new
 * rows get implicit ones. */
START_TEST(version_5_upgrades_to_implicit_clocks)
{
	struct replica *r = NULL;
	struct capture *c = NULL;
	struct capture_signer signer;
	struct changeset cs;
	uint8_t pk[SIGN_PUBLIC_BYTES], sk[SIGN_SECRET_BYTES], clocks[9 * 12];
	uint64_t old_hlc = (1800000000000ull << 16) | 7;
	sqlite3_stmt *st;
	struct err e;
	int count, i, k;

	ck_assert_int_ge(sodium_init(), 0);
	crypto_sign_keypair(pk, sk);
	err_init(&e);
	ck_assert_int_eq(replica_open_at(path, REPLICA_CREATE, 5, &r, &e), 0);
	ck_assert(!table_exists(r->db, "bs_implicit"));
	/* a row as version 5 kept it, its cells written at old_hlc */
	for (i = 0; i < 9; i++) {
		uint64_t h = old_hlc;

		for (k = 7; k >= 0; k--, h >>= 8)
			clocks[i * 12 + k] = (uint8_t)h;
		memset(clocks + i * 12 + 8, 0, 3);
		clocks[i * 12 + 11] = 1;
	}
	ck_assert_int_eq(sqlite3_exec(r->db,
		"INSERT INTO members(id, branch_id, name) VALUES('old', 'b1', 'O');"
		"INSERT INTO bs_devices(idx, key) VALUES(1, zeroblob(32))",
		NULL, NULL, NULL), SQLITE_OK);
	sqlite3_prepare_v2(r->db, "INSERT INTO bs_rows(tbl, row_id, branch_id,"
			   " clocks) VALUES('members', 'old', 'b1', ?1)", -1,
			   &st, NULL);
	sqlite3_bind_blob(st, 1, clocks, sizeof clocks, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	replica_close(r);

	ck_assert_int_eq(replica_open(path, REPLICA_OPEN, &r, &e), 0);
	ck_assert_int_eq(user_version(r->db), REPLICA_VERSION);
	ck_assert(table_exists(r->db, "bs_implicit"));
	ck_assert(table_exists(r->db, "bs_implicit_live"));
	/* an edit made with a wall clock far behind old_hlc */
	signer = (struct capture_signer){pk, sk, NULL, 1700000000000ull};
	ck_assert_int_eq(capture_begin(r, &signer, &c, &e), 0);
	ck_assert_int_eq(sqlite3_exec(r->db,
		"UPDATE members SET name='N' WHERE id='old';"
		"INSERT INTO members(id, branch_id, name) VALUES('new', 'b1', 'W')",
		NULL, NULL, NULL), SQLITE_OK);
	ck_assert_msg(capture_commit(c, &count, &e) == 0, "%s", e.msg);
	capture_free(c);
	ck_assert_int_eq(count, 1);
	sqlite3_prepare_v2(r->db, "SELECT bytes FROM bs_outbox", -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(changeset_decode(sqlite3_column_blob(st, 0),
		(size_t)sqlite3_column_bytes(st, 0), &cs), BS_OK);
	ck_assert_uint_gt(cs.env.hlc, old_hlc);
	sqlite3_finalize(st);
	/* the edited row's clocks stay explicit, the new row's are a range */
	sqlite3_prepare_v2(r->db, "SELECT (SELECT count(*) FROM bs_rows),"
			   " (SELECT sum(rows) FROM bs_implicit)", -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
	ck_assert_int_eq(sqlite3_column_int(st, 1), 1);
	sqlite3_finalize(st);
	replica_close(r);
}
END_TEST

static Suite *replica_suite(void)
{
	Suite *s = suite_create("replica");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, create_then_open);
	tcase_add_test(tc, old_version_upgrades);
	tcase_add_test(tc, version_5_upgrades_to_implicit_clocks);
	tcase_add_test(tc, newer_version_refused);
	tcase_add_test(tc, digest_sensitive_and_stable);
	tcase_add_test(tc, digest_known_answer_empty);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(replica_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
