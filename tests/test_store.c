/* test_store.c - Check suite 'store' for server/store: one-time challenges
 * kept in memory (used once, expired, unknown, bound to a device or not,
 * forgotten oldest first past STORE_CHALLENGES_MAX, shared with readers,
 * from many threads), contact
 * times noted in memory and written by store_touch_flush, devices written
 * and read back through a reader. A real data directory in a temporary
 * folder. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "store.h"

#define T0 INT64_C(1767312000000)
#define TTL_MS (10 * 60 * 1000) /* store.c's CHALLENGE_TTL_MS */

static char dir[64];
static struct store *w, *r;

static void setup(void)
{
	struct err e;
	char path[128];

	snprintf(dir, sizeof dir, "/tmp/bs-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/d", dir);
	err_init(&e);
	ck_assert_msg(store_init(path, "Test", NULL, &w, &e) == 0, "%s", e.msg);
	ck_assert_msg(store_reader_open(w, &r, &e) == 0, "%s", e.msg);
}

static void teardown(void)
{
	char cmd[128];

	store_close(r);
	store_close(w);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* store_challenge_use for a challenge made unbound: never reports one. */
static int unbound_use(struct store *s, const uint8_t *c, int64_t now_ms,
		       struct err *e)
{
	uint8_t dev[SIGN_PUBLIC_BYTES];
	int bound = -1, rc;

	rc = store_challenge_use(s, c, now_ms, dev, &bound, e);
	ck_assert_int_eq(bound, 0);
	return rc;
}

/* A challenge made for a device reports that device when used, once; one
 * made for none, none; an expired bound one fails like any other. */
START_TEST(challenge_bound)
{
	uint8_t c[REQUEST_CHALLENGE_BYTES], d[REQUEST_CHALLENGE_BYTES];
	uint8_t f[REQUEST_CHALLENGE_BYTES], key[SIGN_PUBLIC_BYTES];
	uint8_t key2[SIGN_PUBLIC_BYTES], got[SIGN_PUBLIC_BYTES];
	int bound = -1;
	struct err e;

	err_init(&e);
	memset(key, 0xa5, sizeof key);
	memset(key2, 0x3c, sizeof key2);
	ck_assert_int_eq(store_challenge_make(w, T0, key, c, &e), 0);
	ck_assert_int_eq(store_challenge_make(w, T0, NULL, d, &e), 0);
	ck_assert_int_eq(store_challenge_make(w, T0, key2, f, &e), 0);
	memset(got, 0, sizeof got);
	ck_assert_int_eq(store_challenge_use(r, c, T0 + 1, got, &bound, &e), 0);
	ck_assert_int_eq(bound, 1);
	ck_assert_mem_eq(got, key, SIGN_PUBLIC_BYTES);
	ck_assert_int_eq(store_challenge_use(w, c, T0 + 1, got, &bound, &e),
			 -1);
	ck_assert_int_eq(bound, 0);
	ck_assert_int_eq(unbound_use(w, d, T0 + 2, &e), 0);
	ck_assert_int_eq(store_challenge_use(w, f, T0 + TTL_MS + 1, got,
					     &bound, &e),
			 -1);
	ck_assert_int_eq(bound, 0);
	ck_assert_mem_eq(got, key, SIGN_PUBLIC_BYTES); /* untouched */
}
END_TEST

START_TEST(challenge_used_once)
{
	uint8_t c[REQUEST_CHALLENGE_BYTES], d[REQUEST_CHALLENGE_BYTES];
	struct err e;

	err_init(&e);
	ck_assert_int_eq(store_challenge_make(w, T0, NULL, c, &e), 0);
	ck_assert_int_eq(store_challenge_make(w, T0, NULL, d, &e), 0);
	ck_assert_mem_ne(c, d, REQUEST_CHALLENGE_BYTES);
	/* a reader shares them */
	ck_assert_int_eq(unbound_use(r, c, T0 + 1, &e), 0);
	ck_assert_int_eq(unbound_use(w, c, T0 + 1, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown, expired or already used"));
	ck_assert_int_eq(unbound_use(w, d, T0 + 2, &e), 0);
	ck_assert_int_eq(unbound_use(r, d, T0 + 2, &e), -1);
}
END_TEST

START_TEST(challenge_expiry_and_unknown)
{
	uint8_t c[REQUEST_CHALLENGE_BYTES], d[REQUEST_CHALLENGE_BYTES], never[REQUEST_CHALLENGE_BYTES];
	struct err e;

	err_init(&e);
	memset(never, 7, sizeof never);
	ck_assert_int_eq(unbound_use(w, never, T0, &e), -1);
	ck_assert_int_eq(store_challenge_make(w, T0, NULL, c, &e), 0);
	ck_assert_int_eq(store_challenge_make(w, T0, NULL, d, &e), 0);
	ck_assert_int_eq(unbound_use(w, never, T0, &e), -1);
	/* the last instant is still good; after it, used up all the same */
	ck_assert_int_eq(unbound_use(w, c, T0 + TTL_MS, &e), 0);
	ck_assert_int_eq(unbound_use(w, d, T0 + TTL_MS + 1, &e), -1);
	ck_assert_int_eq(unbound_use(w, d, T0, &e), -1);
}
END_TEST

/* Past STORE_CHALLENGES_MAX outstanding, the oldest go first; those in
 * between stay usable, and a used slot is reused without harm. */
START_TEST(challenge_ring)
{
	static uint8_t all[STORE_CHALLENGES_MAX + 3][REQUEST_CHALLENGE_BYTES];
	struct err e;
	size_t i;

	err_init(&e);
	for (i = 0; i < STORE_CHALLENGES_MAX + 3; i++)
		ck_assert_int_eq(store_challenge_make(w, T0, NULL, all[i], &e), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(unbound_use(w, all[i], T0, &e), -1);
	for (i = 3; i < STORE_CHALLENGES_MAX + 3; i += 997)
		ck_assert_int_eq(unbound_use(w, all[i], T0, &e), 0);
	ck_assert_int_eq(unbound_use(w, all[STORE_CHALLENGES_MAX + 2],
					     T0, &e),
			 0);
	ck_assert_int_eq(unbound_use(w, all[4], T0, &e), 0);
	ck_assert_int_eq(store_challenge_make(w, T0, NULL, all[0], &e), 0);
	ck_assert_int_eq(unbound_use(w, all[5], T0, &e), 0);
	ck_assert_int_eq(unbound_use(w, all[0], T0, &e), 0);
}
END_TEST

#define THREADS 4
#define PER_THREAD 5000

static void *challenge_worker(void *arg)
{
	struct store *s = arg;
	uint8_t c[REQUEST_CHALLENGE_BYTES], dev[SIGN_PUBLIC_BYTES];
	struct err e;
	int i, bad = 0, bound;

	err_init(&e);
	for (i = 0; i < PER_THREAD; i++) {
		if (store_challenge_make(s, T0, NULL, c, &e) != 0)
			bad++;
		if (store_challenge_use(s, c, T0, dev, &bound, &e) != 0 ||
		    bound)
			bad++;
		if (store_challenge_use(s, c, T0, dev, &bound, &e) == 0)
			bad++;
	}
	return (void *)(intptr_t)bad;
}

START_TEST(challenges_from_threads)
{
	pthread_t t[THREADS];
	struct store *readers[THREADS];
	struct err e;
	void *bad;
	int i;

	err_init(&e);
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(store_reader_open(w, &readers[i], &e), 0);
		ck_assert_int_eq(pthread_create(&t[i], NULL, challenge_worker,
						readers[i]),
				 0);
	}
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(t[i], &bad), 0);
		ck_assert_int_eq((int)(intptr_t)bad, 0);
		store_close(readers[i]);
	}
}
END_TEST

static void put_device(uint8_t tag, int64_t seen)
{
	struct store_device d;
	struct err e;

	memset(&d, 0, sizeof d);
	memset(d.key, tag, sizeof d.key);
	d.role = ROLE_BRANCH;
	snprintf(d.scope, sizeof d.scope, "b1");
	snprintf(d.name, sizeof d.name, "dev %d", tag);
	d.enroll_idx = tag;
	d.revoke_idx = -1;
	d.last_seen_ms = seen;
	err_init(&e);
	ck_assert_int_eq(store_device_put(w, &d, &e), 0);
}

static int64_t seen_by_reader(uint8_t tag)
{
	struct store_device d;
	uint8_t key[SIGN_PUBLIC_BYTES];
	struct err e;

	err_init(&e);
	memset(key, tag, sizeof key);
	ck_assert_int_eq(store_device_get(r, key, &d, &e), 1);
	return d.last_seen_ms;
}

START_TEST(devices_and_contacts)
{
	uint8_t key[SIGN_PUBLIC_BYTES];
	struct store_device d;
	struct err e;
	int i;

	err_init(&e);
	ck_assert_int_eq(replica_begin(w->r, &e), 0);
	for (i = 1; i <= 100; i++)
		put_device((uint8_t)i, 5);
	ck_assert_int_eq(replica_commit(w->r, &e), 0);
	ck_assert_int_eq(seen_by_reader(7), 5);
	/* put again: the upsert keeps one row, with the new values */
	ck_assert_int_eq(replica_begin(w->r, &e), 0);
	put_device(7, 6);
	ck_assert_int_eq(replica_commit(w->r, &e), 0);
	ck_assert_int_eq(seen_by_reader(7), 6);
	memset(key, 200, sizeof key);
	ck_assert_int_eq(store_device_get(r, key, &d, &e), 0);

	ck_assert_int_eq(store_touch_pending_since(w), 0);
	for (i = 1; i <= 100; i++) {
		memset(key, i, sizeof key);
		store_device_touch(i % 2 ? r : w, key, T0 + i, &e);
	}
	memset(key, 3, sizeof key);
	store_device_touch(r, key, T0 + 900, &e);
	store_device_touch(w, key, T0 + 400, &e); /* older: the later stays */
	memset(key, 200, sizeof key);
	store_device_touch(r, key, T0, &e);       /* unknown: nothing to do */
	ck_assert_int_eq(store_touch_pending_since(w), T0 + 1);
	ck_assert_int_eq(seen_by_reader(3), 5);   /* not written yet */
	ck_assert_int_eq(replica_begin(w->r, &e), 0);
	ck_assert_int_eq(store_touch_flush(w, &e), 0);
	ck_assert_int_eq(replica_commit(w->r, &e), 0);
	ck_assert_int_eq(store_touch_pending_since(w), 0);
	ck_assert_int_eq(seen_by_reader(3), T0 + 900);
	for (i = 1; i <= 100; i++)
		if (i != 3)
			ck_assert_int_eq(seen_by_reader((uint8_t)i), T0 + i);
	ck_assert_int_eq(store_device_get(r, key, &d, &e), 0);
	/* a contact never moves the time back */
	memset(key, 7, sizeof key);
	store_device_touch(r, key, T0, &e);
	ck_assert_int_eq(replica_begin(w->r, &e), 0);
	ck_assert_int_eq(store_touch_flush(w, &e), 0);
	ck_assert_int_eq(replica_commit(w->r, &e), 0);
	ck_assert_int_eq(seen_by_reader(7), T0 + 7);
	/* nothing pending: nothing written */
	ck_assert_int_eq(replica_begin(w->r, &e), 0);
	ck_assert_int_eq(store_touch_flush(w, &e), 0);
	ck_assert_int_eq(replica_commit(w->r, &e), 0);
	ck_assert_int_eq(seen_by_reader(7), T0 + 7);
}
END_TEST

/* A reader sees what the writer committed, not what it has not. */
START_TEST(reader_snapshot)
{
	struct err e;

	err_init(&e);
	ck_assert_int_eq(replica_begin(w->r, &e), 0);
	put_device(9, 1);
	{
		uint8_t key[SIGN_PUBLIC_BYTES];
		struct store_device d;

		memset(key, 9, sizeof key);
		ck_assert_int_eq(store_device_get(r, key, &d, &e), 0);
		ck_assert_int_eq(store_device_get(w, key, &d, &e), 1);
	}
	ck_assert_int_eq(replica_commit(w->r, &e), 0);
	ck_assert_int_eq(seen_by_reader(9), 1);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, challenge_used_once);
	tcase_add_test(tc, challenge_bound);
	tcase_add_test(tc, challenge_expiry_and_unknown);
	tcase_add_test(tc, challenge_ring);
	tcase_add_test(tc, challenges_from_threads);
	tcase_add_test(tc, devices_and_contacts);
	tcase_add_test(tc, reader_snapshot);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	if (sign_init() != BS_OK)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
