/* test_srvlog.c - Check suite 'srvlog' for server/srvlog: inclusion proofs
 * made by srvlog (its own RFC 9162 walk, with the reader's cache of
 * subtrees) equal merkle.c's over the same leaves and verify, from the
 * writer and from a reader, cold and warm; consistency proofs; a reader's
 * reload in one snapshot; precomputed leaves. Real data directories in a
 * temporary folder. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "merkle.h"
#include "srvlog.h"
#include "store.h"

static char dir[64];
static struct store *w, *r; /* the writer's store and a reader */
static struct srvlog *wl, *rl;
static uint8_t leaves[1100][HASH_BYTES];
static size_t nleaves;

static void setup(void)
{
	struct err e;
	char cmd[128];

	snprintf(dir, sizeof dir, "/tmp/bs-srvlog-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof cmd, "%s/d", dir);
	err_init(&e);
	ck_assert_msg(store_init(cmd, "Test", NULL, &w, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_unlock(w, NULL, &e), 0);
	ck_assert_int_eq(srvlog_open(w, &wl, &e), 0);
	ck_assert_msg(store_reader_open(w, &r, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(srvlog_open(r, &rl, &e), 0);
	nleaves = 0;
}

static void teardown(void)
{
	char cmd[128];

	srvlog_free(rl);
	store_close(r);
	srvlog_free(wl);
	store_close(w);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Appends n enrollment-like entries in one committed transaction and
 * keeps their leaves. */
static void append(size_t n)
{
	struct err e;
	struct checkpoint cp;
	uint8_t payload[40];
	uint64_t idx;
	size_t i;

	err_init(&e);
	ck_assert_int_eq(replica_begin(w->r, &e), 0);
	for (i = 0; i < n; i++) {
		struct logentry le = {LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED,
				      NULL, 0, payload, sizeof payload};
		struct srvlog_meta m = {payload, 0, NULL, NULL, 1, NULL};

		memset(payload, 0, sizeof payload);
		memcpy(payload, &nleaves, sizeof nleaves);
		ck_assert_int_eq(srvlog_leaf(&le, leaves[nleaves]), 0);
		ck_assert_msg(srvlog_append(wl, &le, &m, &idx, &e) == 0, "%s",
			      e.msg);
		ck_assert_uint_eq(idx, nleaves);
		nleaves++;
	}
	ck_assert_int_eq(srvlog_checkpoint(wl, 1, &cp, &e), 0);
	ck_assert_int_eq(replica_commit(w->r, &e), 0);
	ck_assert_int_eq(srvlog_reload(rl, &e), 0);
}

/* srvlog's proof of (index, size) is merkle.c's and verifies. */
static void check_inclusion(struct srvlog *l, uint64_t index, uint64_t size)
{
	struct merkle_array arr = {&leaves[0][0], size};
	struct merkle_source src;
	struct merkle_path got, want;
	uint8_t root[HASH_BYTES];
	struct err e;

	err_init(&e);
	merkle_source_from_array(&src, &arr);
	ck_assert_int_eq(merkle_inclusion_proof(&src, index, size, &want),
			 BS_OK);
	ck_assert_int_eq(merkle_root(&src, size, root), BS_OK);
	ck_assert_msg(srvlog_inclusion(l, index, size, &got, &e) == 0, "%s",
		      e.msg);
	ck_assert_uint_eq(got.count, want.count);
	ck_assert_mem_eq(got.hash, want.hash, want.count * HASH_BYTES);
	ck_assert_int_eq(merkle_verify_inclusion(leaves[index], index, size,
						 &got, root),
			 BS_OK);
}

START_TEST(inclusion_every_small_tree)
{
	uint64_t size, i;
	int round;

	append(70);
	/* twice from the reader: the second time from its cache */
	for (round = 0; round < 3; round++)
		for (size = 1; size <= 70; size++)
			for (i = 0; i < size; i++)
				check_inclusion(round == 2 ? wl : rl, i, size);
}
END_TEST

START_TEST(inclusion_large_trees)
{
	uint64_t sizes[] = {1000, 1024, 1025, 777, 1099}, size, i;
	size_t k;

	append(600);
	append(499);
	for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size = sizes[k];
		for (i = 0; i < size; i += 7)
			check_inclusion(rl, i, size);
		check_inclusion(rl, size - 1, size);
		check_inclusion(wl, size / 3, size);
	}
}
END_TEST

START_TEST(inclusion_refusals)
{
	struct merkle_path p;
	struct err e;

	append(10);
	err_init(&e);
	ck_assert_int_eq(srvlog_inclusion(rl, 10, 10, &p, &e), -1);
	ck_assert_uint_eq(p.count, 0);
	ck_assert_int_eq(srvlog_inclusion(rl, 0, 11, &p, &e), -1);
	ck_assert_int_eq(srvlog_inclusion(rl, 0, 0, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "no inclusion proof"));
}
END_TEST

/* A reader that has cached a tree's nodes keeps proving right as the log
 * grows past it (the right edges change, cached ranges do not). */
START_TEST(reader_cache_as_the_log_grows)
{
	uint64_t i;

	append(5);
	for (i = 0; i < 5; i++)
		check_inclusion(rl, i, 5);
	append(6);
	for (i = 0; i < 11; i++) {
		check_inclusion(rl, i, 11);
		check_inclusion(rl, i % 5, 5);
	}
}
END_TEST

START_TEST(consistency_from_reader)
{
	struct merkle_array arr;
	struct merkle_source src;
	struct merkle_path got, want;
	struct err e;
	uint64_t m, n;

	append(40);
	err_init(&e);
	for (n = 1; n <= 40; n++)
		for (m = 1; m <= n; m++) {
			arr = (struct merkle_array){&leaves[0][0], n};
			merkle_source_from_array(&src, &arr);
			ck_assert_int_eq(merkle_consistency_proof(&src, m, n,
								  &want),
					 BS_OK);
			ck_assert_int_eq(srvlog_consistency(rl, m, n, &got, &e),
					 0);
			ck_assert_uint_eq(got.count, want.count);
			ck_assert_mem_eq(got.hash, want.hash,
					 want.count * HASH_BYTES);
		}
}
END_TEST

/* A given leaf is used as is, and must be the entry's (srvlog_leaf). */
START_TEST(precomputed_leaf)
{
	struct err e;
	struct checkpoint cp;
	uint8_t payload[8] = "payload", leaf[HASH_BYTES], author[32] = {1};
	struct logentry le = {LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED, NULL, 0,
			      payload, sizeof payload};
	struct srvlog_meta m = {author, 0, NULL, NULL, 1, leaf};
	uint64_t idx;

	append(3);
	err_init(&e);
	ck_assert_int_eq(srvlog_leaf(&le, leaf), 0);
	ck_assert_int_eq(replica_begin(w->r, &e), 0);
	ck_assert_int_eq(srvlog_append(wl, &le, &m, &idx, &e), 0);
	ck_assert_int_eq(srvlog_checkpoint(wl, 2, &cp, &e), 0);
	ck_assert_int_eq(replica_commit(w->r, &e), 0);
	memcpy(leaves[nleaves++], leaf, HASH_BYTES);
	ck_assert_int_eq(srvlog_reload(rl, &e), 0);
	check_inclusion(rl, 3, 4);
	check_inclusion(rl, 0, 4);
}
END_TEST

/* Outside a transaction, reload reads the frontier and the entry count in
 * one snapshot, so a commit in between cannot make them disagree. */
START_TEST(reload_between_commits)
{
	struct err e;
	int i;

	append(2);
	err_init(&e);
	for (i = 0; i < 20; i++) {
		append(1);
		ck_assert_msg(srvlog_reload(rl, &e) == 0, "%s", e.msg);
		ck_assert_uint_eq(srvlog_size(rl), nleaves);
	}
}
END_TEST

static Suite *srvlog_suite(void)
{
	Suite *s = suite_create("srvlog");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, inclusion_every_small_tree);
	tcase_add_test(tc, inclusion_large_trees);
	tcase_add_test(tc, inclusion_refusals);
	tcase_add_test(tc, reader_cache_as_the_log_grows);
	tcase_add_test(tc, consistency_from_reader);
	tcase_add_test(tc, precomputed_leaf);
	tcase_add_test(tc, reload_between_commits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(srvlog_suite());
	int failed;

	if (sign_init() != BS_OK)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
