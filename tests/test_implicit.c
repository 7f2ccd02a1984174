/* test_implicit.c - Check suite for shared/implicit: ranges written from
 * noted rows (split at the slot limit and at gaps), lookups by rowid that
 * verify the key's fingerprint, live ranges cut off where a reused rowid
 * starts a new one, and the search by key that still finds rows whose
 * range was cut off or whose rowid is wrong. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "implicit.h"
#include "replica.h"
#include "schema.h"

static struct replica *r;
static struct implicit *im;
static const struct schema_table *members;
static size_t members_idx;

static void setup(void)
{
	struct err e;
	size_t i;

	err_init(&e);
	ck_assert_int_eq(replica_open(":memory:", REPLICA_MEMORY, &r, &e), 0);
	ck_assert_int_eq(implicit_new(r->db, &im, &e), 0);
	members = schema_table_find("members");
	for (i = 0; i < schema_table_count(); i++)
		if (schema_table_at(i) == members)
			members_idx = i;
}

static void teardown(void)
{
	implicit_free(im);
	replica_close(r);
}

static void hash_of(int n, uint8_t h[IMPLICIT_HASH_BYTES])
{
	char id[32];

	snprintf(id, sizeof id, "row%d", n);
	implicit_key_hash(id, strlen(id), "b1", 2, h);
}

static void add(int64_t rowid, int key)
{
	uint8_t h[IMPLICIT_HASH_BYTES];
	struct err e;

	err_init(&e);
	hash_of(key, h);
	ck_assert_int_eq(implicit_add(im, members_idx, rowid, h, &e), 0);
}

static void flush(uint64_t hlc, int64_t dev)
{
	struct err e;

	err_init(&e);
	ck_assert_msg(implicit_flush(im, hlc, dev, &e) == 0, "%s", e.msg);
}

/* The clock found by rowid for key `key` at rowid, or 0 if none. */
static uint64_t find(int64_t rowid, int key)
{
	uint8_t h[IMPLICIT_HASH_BYTES];
	uint64_t hlc = 0;
	int64_t dev = 0;
	int found = -1;
	struct err e;

	err_init(&e);
	hash_of(key, h);
	ck_assert_int_eq(implicit_find(im, members, rowid, h, &found, &hlc,
				       &dev, &e), 0);
	ck_assert_int_ne(found, -1);
	return found ? hlc : 0;
}

static uint64_t search(int key)
{
	uint8_t h[1][IMPLICIT_HASH_BYTES];
	uint64_t hlc = 0;
	int64_t dev = 0;
	int found = -1;
	struct err e;

	err_init(&e);
	hash_of(key, h[0]);
	ck_assert_int_eq(implicit_search(im, members,
					 (const uint8_t (*)[IMPLICIT_HASH_BYTES])h,
					 1, &found, &hlc, &dev, &e), 0);
	return found ? hlc : 0;
}

static long long int_of(const char *sql)
{
	sqlite3_stmt *st;
	long long v;

	ck_assert_int_eq(sqlite3_prepare_v2(r->db, sql, -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

START_TEST(fingerprints)
{
	uint8_t a[IMPLICIT_HASH_BYTES], b[IMPLICIT_HASH_BYTES],
		c[IMPLICIT_HASH_BYTES], zero[IMPLICIT_HASH_BYTES] = {0};

	implicit_key_hash("ab", 2, "c", 1, a);
	implicit_key_hash("a", 1, "bc", 2, b);
	implicit_key_hash("ab", 2, "c", 1, c);
	/* the separator keeps (ab, c) and (a, bc) apart */
	ck_assert_mem_ne(a, b, IMPLICIT_HASH_BYTES);
	ck_assert_mem_eq(a, c, IMPLICIT_HASH_BYTES);
	ck_assert_mem_ne(a, zero, IMPLICIT_HASH_BYTES);
}
END_TEST

START_TEST(find_verifies_the_key)
{
	int i;

	for (i = 1; i <= 10; i++)
		add(i, i);
	flush(500, 1);
	ck_assert_int_eq(int_of("SELECT count(*) FROM bs_implicit"), 1);
	ck_assert_int_eq(int_of("SELECT rows FROM bs_implicit"), 10);
	for (i = 1; i <= 10; i++)
		ck_assert_uint_eq(find(i, i), 500);
	/* another key at a rowid of the range, a rowid past it */
	ck_assert_uint_eq(find(3, 4), 0);
	ck_assert_uint_eq(find(11, 11), 0);
	ck_assert_uint_eq(find(0, 1), 0);
	ck_assert_uint_eq(search(7), 500);
	ck_assert_uint_eq(search(70), 0);
}
END_TEST

START_TEST(ranges_split_at_gaps_and_size)
{
	int i;

	/* 300 rows in a run, a gap of IMPLICIT_MAX_GAP + 1, then 5 */
	for (i = 1; i <= 300; i++)
		add(i, i);
	for (i = 0; i < 5; i++)
		add(300 + IMPLICIT_MAX_GAP + 1 + i, 1000 + i);
	/* a small gap stays inside its range */
	add(310 + 2 * IMPLICIT_MAX_GAP, 2000);
	add(310 + 2 * IMPLICIT_MAX_GAP + IMPLICIT_MAX_GAP, 2001);
	flush(7, 2);
	ck_assert_int_eq(int_of("SELECT count(*) FROM bs_implicit"), 4);
	ck_assert_int_eq(int_of("SELECT max(last - first + 1) FROM"
				" bs_implicit"), IMPLICIT_MAX_SLOTS);
	ck_assert_int_eq(int_of("SELECT sum(rows) FROM bs_implicit"), 307);
	for (i = 1; i <= 300; i++)
		ck_assert_uint_eq(find(i, i), 7);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(find(300 + IMPLICIT_MAX_GAP + 1 + i, 1000 + i),
				  7);
	ck_assert_uint_eq(find(310 + 3 * IMPLICIT_MAX_GAP, 2001), 7);
	/* an empty slot inside a range knows nothing */
	ck_assert_uint_eq(find(311 + 2 * IMPLICIT_MAX_GAP, 2001), 0);
}
END_TEST

START_TEST(reused_rowids_cut_older_ranges)
{
	int i;

	for (i = 1; i <= 100; i++)
		add(i, i);
	flush(100, 1);
	for (i = 101; i <= 120; i++)
		add(i, i);
	flush(200, 1);
	/* rows 60.. were deleted; rowid 60 is given again */
	for (i = 60; i <= 64; i++)
		add(i, 5000 + i);
	flush(300, 1);
	ck_assert_int_eq(int_of("SELECT last FROM bs_implicit WHERE hlc=100"),
			 59);
	ck_assert_int_eq(int_of("SELECT last < first FROM bs_implicit WHERE"
				" hlc=200"), 1);
	ck_assert_uint_eq(find(59, 59), 100);
	ck_assert_uint_eq(find(60, 5060), 300);
	ck_assert_uint_eq(find(64, 5064), 300);
	ck_assert_uint_eq(find(60, 60), 0);
	/* what was cut off is still found by key (a row that moved) */
	ck_assert_uint_eq(search(60), 100);
	ck_assert_uint_eq(search(110), 200);
	ck_assert_uint_eq(search(5062), 300);
}
END_TEST

START_TEST(search_many_and_discard)
{
	uint8_t hs[4][IMPLICIT_HASH_BYTES];
	uint64_t hlc[4];
	int64_t dev[4];
	int found[4], i;
	struct err e;

	for (i = 1; i <= 3; i++)
		add(i, i);
	flush(11, 3);
	add(4, 4);
	implicit_discard(im);
	flush(12, 3);
	ck_assert_int_eq(int_of("SELECT count(*) FROM bs_implicit"), 1);
	hash_of(3, hs[0]);
	hash_of(4, hs[1]);
	hash_of(1, hs[2]);
	hash_of(3, hs[3]);
	err_init(&e);
	ck_assert_int_eq(implicit_search(im, members,
		(const uint8_t (*)[IMPLICIT_HASH_BYTES])hs, 4, found, hlc, dev,
		&e), 0);
	ck_assert_int_eq(found[0], 1);
	ck_assert_int_eq(found[1], 0);
	ck_assert_int_eq(found[2], 1);
	ck_assert_int_eq(found[3], 1);
	ck_assert_uint_eq(hlc[2], 11);
	ck_assert_int_eq(dev[3], 3);
}
END_TEST

START_TEST(unsorted_notes_are_sorted)
{
	add(5, 5);
	add(3, 3);
	add(4, 4);
	flush(9, 1);
	ck_assert_int_eq(int_of("SELECT first FROM bs_implicit"), 3);
	ck_assert_uint_eq(find(3, 3), 9);
	ck_assert_uint_eq(find(5, 5), 9);
}
END_TEST

static Suite *implicit_suite(void)
{
	Suite *s = suite_create("implicit");
	TCase *tc = tcase_create("ranges");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, fingerprints);
	tcase_add_test(tc, find_verifies_the_key);
	tcase_add_test(tc, ranges_split_at_gaps_and_size);
	tcase_add_test(tc, reused_rowids_cut_older_ranges);
	tcase_add_test(tc, search_many_and_discard);
	tcase_add_test(tc, unsorted_notes_are_sorted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(implicit_suite());
	int failed;

	if (sodium_init() < 0)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
