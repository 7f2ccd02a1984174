/* test_hlc.c - Check suite for protocol/hlc: packing, the send and receive
 * rules of the paper (checked against an unpacked reference), monotonicity
 * under a misbehaving wall clock, the drift bound, and formatting. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"

#define P(ms, c) hlc_pack((ms), (c))

/* The paper's rules on unpacked (l, c), with our 16-bit counter carry,
 * written independently of hlc.c's packed arithmetic. */
struct ref_clock {
	uint64_t l, c;
};

static void ref_carry(struct ref_clock *k)
{
	if (k->c > 0xffff) {
		k->l++;
		k->c = 0;
	}
}

static void ref_send(struct ref_clock *k, uint64_t pt)
{
	uint64_t old = k->l;

	k->l = old > pt ? old : pt;
	k->c = k->l == old ? k->c + 1 : 0;
	ref_carry(k);
}

static void ref_recv(struct ref_clock *k, uint64_t pt, uint64_t lm,
		     uint64_t cm)
{
	uint64_t old = k->l;
	uint64_t l = old;

	if (lm > l)
		l = lm;
	if (pt > l)
		l = pt;
	if (l == old && l == lm)
		k->c = (k->c > cm ? k->c : cm) + 1;
	else if (l == old)
		k->c = k->c + 1;
	else if (l == lm)
		k->c = cm + 1;
	else
		k->c = 0;
	k->l = l;
	ref_carry(k);
}

static uint64_t rnd64(unsigned *seed)
{
	return ((uint64_t)rand_r(seed) << 62) ^ ((uint64_t)rand_r(seed) << 31) ^
	       (uint64_t)rand_r(seed);
}

START_TEST(pack_roundtrip_and_order)
{
	unsigned seed = 7;
	int i;

	ck_assert_uint_eq(P(0, 0), 0);
	ck_assert_uint_eq(P(1, 0), 0x10000);
	ck_assert_uint_eq(P(HLC_PHYSICAL_MAX, 0xffff), UINT64_MAX);
	ck_assert_uint_eq(P(0x123456789abcull, 0xdef0), 0x123456789abcdef0ull);
	for (i = 0; i < 100000; i++) {
		uint64_t p1 = rnd64(&seed) & HLC_PHYSICAL_MAX;
		uint64_t p2 = i % 3 ? rnd64(&seed) & HLC_PHYSICAL_MAX : p1;
		uint16_t c1 = (uint16_t)rand_r(&seed), c2 = (uint16_t)rand_r(&seed);
		uint64_t s1 = P(p1, c1), s2 = P(p2, c2), bp;
		uint16_t bc;
		int lex = p1 != p2 ? (p1 < p2 ? -1 : 1) :
				     (c1 != c2 ? (c1 < c2 ? -1 : 1) : 0);
		int num = s1 != s2 ? (s1 < s2 ? -1 : 1) : 0;

		hlc_unpack(s1, &bp, &bc);
		ck_assert_uint_eq(bp, p1);
		ck_assert_uint_eq(bc, c1);
		ck_assert_uint_eq(hlc_physical(s2), p2);
		ck_assert_uint_eq(hlc_logical(s2), c2);
		ck_assert_int_eq(lex, num);
	}
}
END_TEST

START_TEST(now_send_rule)
{
	struct hlc h;
	uint64_t t;

	hlc_init(&h, 1000);
	ck_assert_int_eq(hlc_now(&h, 1000, &t), BS_OK);
	ck_assert_uint_eq(t, P(1000, 0));
	ck_assert_int_eq(hlc_now(&h, 1000, &t), BS_OK);
	ck_assert_uint_eq(t, P(1000, 1));
	ck_assert_int_eq(hlc_now(&h, 1001, &t), BS_OK);
	ck_assert_uint_eq(t, P(1001, 0));
	ck_assert_int_eq(hlc_now(&h, 999, &t), BS_OK);
	ck_assert_uint_eq(t, P(1001, 1));
	ck_assert_uint_eq(h.last, t);

	/* l' = max(l, pt) even when the counter sits just below its carry. */
	hlc_restore(&h, P(1001, 0xfffe));
	ck_assert_int_eq(hlc_now(&h, 1002, &t), BS_OK);
	ck_assert_uint_eq(t, P(1002, 0));
	hlc_restore(&h, P(1002, 0xffff));
	ck_assert_int_eq(hlc_now(&h, 1003, &t), BS_OK);
	ck_assert_uint_eq(t, P(1003, 0));
	ck_assert_int_eq(hlc_now(&h, 1003, &t), BS_OK);
	ck_assert_uint_eq(t, P(1003, 1));
}
END_TEST

START_TEST(monotonic_when_wall_jumps_back)
{
	static const int64_t steps[] = {
		1, 1, -5000, 0, 3, -3600000, 1, 1, 7200000, -86400000, 0, 10,
	};
	struct hlc h;
	uint64_t wall = 1795708274123ull, prev = 0, max_wall = 0, t;
	int round, i;

	hlc_init(&h, 60000);
	for (round = 0; round < 200; round++) {
		for (i = 0; i < (int)(sizeof steps / sizeof steps[0]); i++) {
			wall = (uint64_t)((int64_t)wall + steps[i]);
			if (wall > max_wall)
				max_wall = wall;
			ck_assert_int_eq(hlc_now(&h, wall, &t), BS_OK);
			ck_assert_uint_gt(t, prev);
			/* Never behind the wall clock's best reading. */
			ck_assert_uint_ge(hlc_physical(t), max_wall);
			prev = t;
		}
	}
	/* Once the wall passes the clock again, the counter resets. */
	ck_assert_int_eq(hlc_now(&h, hlc_physical(prev) + 1, &t), BS_OK);
	ck_assert_uint_eq(t, P(hlc_physical(prev) + 1, 0));
}
END_TEST

START_TEST(frozen_wall_overflows_counter)
{
	const uint64_t wall = 1795708274123ull;
	struct hlc h;
	uint64_t prev = 0, t = 0;
	long i;

	hlc_init(&h, 0);
	for (i = 0; i < 1000000; i++) {
		ck_assert_int_eq(hlc_now(&h, wall, &t), BS_OK);
		if (t <= prev)
			ck_abort_msg("not increasing at call %ld", i);
		prev = t;
		if (i == 0xffff)
			ck_assert_uint_eq(t, P(wall, 0xffff));
		if (i == 0x10000) /* the carry: one millisecond later */
			ck_assert_uint_eq(t, P(wall + 1, 0));
	}
	/* Consecutive stamps are consecutive integers throughout. */
	ck_assert_uint_eq(t, P(wall, 0) + 999999);
	ck_assert_uint_eq(hlc_physical(t), wall + 999999 / 65536);
}
END_TEST

START_TEST(receive_rule_cases)
{
	struct hlc h;
	enum hlc_verdict v;
	uint64_t t;

	/* Remote ahead within the drift bound: adopted, local passes it. */
	hlc_init(&h, 1000);
	hlc_restore(&h, P(1000, 5));
	ck_assert_int_eq(hlc_receive(&h, 1000, P(1500, 7), &t, &v), BS_OK);
	ck_assert_int_eq(v, HLC_ADOPTED);
	ck_assert_uint_eq(t, P(1500, 8));
	ck_assert_uint_gt(h.last, P(1500, 7));
	ck_assert_uint_eq(h.last, t);

	/* Remote behind: the local clock just ticks as for a send. */
	hlc_init(&h, 1000);
	hlc_restore(&h, P(2000, 3));
	ck_assert_int_eq(hlc_receive(&h, 1900, P(1500, 9), &t, &v), BS_OK);
	ck_assert_int_eq(v, HLC_ADOPTED);
	ck_assert_uint_eq(t, P(2000, 4));

	/* Equal physical parts: max of the counters plus one, both ways. */
	hlc_init(&h, 1000);
	hlc_restore(&h, P(2000, 3));
	ck_assert_int_eq(hlc_receive(&h, 1900, P(2000, 9), &t, &v), BS_OK);
	ck_assert_uint_eq(t, P(2000, 10));
	hlc_init(&h, 1000);
	hlc_restore(&h, P(2000, 9));
	ck_assert_int_eq(hlc_receive(&h, 1900, P(2000, 3), &t, &v), BS_OK);
	ck_assert_uint_eq(t, P(2000, 10));

	/* Remote's l equals the wall clock and leads local: c_m + 1. */
	hlc_init(&h, 1000);
	hlc_restore(&h, P(1000, 5));
	ck_assert_int_eq(hlc_receive(&h, 1500, P(1500, 7), &t, &v), BS_OK);
	ck_assert_uint_eq(t, P(1500, 8));

	/* Wall clock ahead of both: counter resets. */
	hlc_init(&h, 1000);
	hlc_restore(&h, P(2000, 3));
	ck_assert_int_eq(hlc_receive(&h, 3000, P(2500, 9), &t, &v), BS_OK);
	ck_assert_int_eq(v, HLC_ADOPTED);
	ck_assert_uint_eq(t, P(3000, 0));

	/* A remote counter at its maximum carries into the next ms. */
	hlc_init(&h, 1000);
	ck_assert_int_eq(hlc_receive(&h, 1000, P(1200, 0xffff), &t, &v), BS_OK);
	ck_assert_uint_eq(t, P(1201, 0));
}
END_TEST

START_TEST(receive_drift_bound)
{
	struct hlc h;
	enum hlc_verdict v = HLC_ADOPTED;
	uint64_t t;

	/* One millisecond past the bound: reported, not adopted. */
	hlc_init(&h, 1000);
	hlc_restore(&h, P(900, 2));
	ck_assert_int_eq(hlc_receive(&h, 1000, P(2001, 0), &t, &v), BS_OK);
	ck_assert_int_eq(v, HLC_SUSPECT);
	ck_assert_uint_eq(t, P(1000, 0)); /* the send rule with wall_ms */
	ck_assert_uint_lt(h.last, P(2001, 0));
	ck_assert_int_eq(hlc_now(&h, 1000, &t), BS_OK);
	ck_assert_uint_eq(t, P(1000, 1));

	/* Far ahead (a remote clock set years forward): still not adopted. */
	ck_assert_int_eq(hlc_receive(&h, 1000, P(HLC_PHYSICAL_MAX, 0), &t, &v),
			 BS_OK);
	ck_assert_int_eq(v, HLC_SUSPECT);
	ck_assert_uint_eq(t, P(1000, 2));

	/* Exactly at the bound: adopted. */
	hlc_init(&h, 1000);
	ck_assert_int_eq(hlc_receive(&h, 1000, P(2000, 5), &t, &v), BS_OK);
	ck_assert_int_eq(v, HLC_ADOPTED);
	ck_assert_uint_eq(t, P(2000, 6));

	/* Zero drift: equal physical adopted, one ms ahead suspect. */
	hlc_init(&h, 0);
	ck_assert_int_eq(hlc_receive(&h, 1000, P(1000, 9), &t, &v), BS_OK);
	ck_assert_int_eq(v, HLC_ADOPTED);
	ck_assert_uint_eq(t, P(1000, 10));
	ck_assert_int_eq(hlc_receive(&h, 1000, P(1001, 0), &t, &v), BS_OK);
	ck_assert_int_eq(v, HLC_SUSPECT);
	ck_assert_uint_eq(t, P(1000, 11));

	/* UINT64_MAX trusts all, without wall_ms + drift overflowing. */
	hlc_init(&h, UINT64_MAX);
	ck_assert_int_eq(hlc_receive(&h, HLC_PHYSICAL_MAX, P(HLC_PHYSICAL_MAX, 5),
				     &t, &v), BS_OK);
	ck_assert_int_eq(v, HLC_ADOPTED);
	ck_assert_uint_eq(t, P(HLC_PHYSICAL_MAX, 6));
	hlc_init(&h, UINT64_MAX);
	ck_assert_int_eq(hlc_receive(&h, 0, P(HLC_PHYSICAL_MAX, 5), &t, &v),
			 BS_OK);
	ck_assert_int_eq(v, HLC_ADOPTED);
}
END_TEST

START_TEST(restore_and_limits)
{
	struct hlc h;
	enum hlc_verdict v = HLC_SUSPECT;
	uint64_t t = 42, saved;

	/* A restored clock continues past the persisted stamp even when the
	 * wall clock now reads earlier (a reboot with a reset RTC). */
	hlc_init(&h, 1000);
	hlc_restore(&h, P(5000, 17));
	ck_assert_int_eq(hlc_now(&h, 10, &t), BS_OK);
	ck_assert_uint_eq(t, P(5000, 18));
	hlc_restore(&h, P(10, 0)); /* older state never moves it back */
	ck_assert_uint_eq(h.last, P(5000, 18));

	/* Wall clock outside 48 bits: refused, state untouched. */
	saved = h.last;
	t = 42;
	ck_assert_int_eq(hlc_now(&h, HLC_PHYSICAL_MAX + 1, &t), BS_EINVALID);
	ck_assert_uint_eq(t, 42);
	ck_assert_int_eq(hlc_receive(&h, UINT64_MAX, P(1, 0), &t, &v),
			 BS_EINVALID);
	ck_assert_int_eq(v, HLC_SUSPECT);
	ck_assert_uint_eq(h.last, saved);

	/* The last stamp has no successor: refused, not wrapped. */
	hlc_init(&h, UINT64_MAX);
	hlc_restore(&h, P(HLC_PHYSICAL_MAX, 0xfffe));
	ck_assert_int_eq(hlc_now(&h, 0, &t), BS_OK);
	ck_assert_uint_eq(t, UINT64_MAX);
	ck_assert_int_eq(hlc_now(&h, 0, &t), BS_ELIMIT);
	ck_assert_uint_eq(h.last, UINT64_MAX);
	hlc_init(&h, UINT64_MAX);
	ck_assert_int_eq(hlc_receive(&h, 0, UINT64_MAX, &t, &v), BS_ELIMIT);
	ck_assert_uint_eq(h.last, 0);
	ck_assert_int_eq(v, HLC_SUSPECT); /* untouched on failure */
}
END_TEST

START_TEST(matches_reference_rules)
{
	unsigned seed = 2014;
	struct hlc h;
	struct ref_clock k = {0, 0};
	uint64_t wall = 1795708274123ull, prev = 0;
	const uint64_t drift = 500;
	int i;

	hlc_init(&h, drift);
	for (i = 0; i < 500000; i++) {
		int op = rand_r(&seed) % 8;
		uint64_t t;

		/* Mostly small steps, some jumps back, some frozen runs. */
		switch (rand_r(&seed) % 10) {
		case 0: wall -= (uint64_t)(rand_r(&seed) % 100000); break;
		case 1: case 2: case 3: break;
		default: wall += (uint64_t)(rand_r(&seed) % 3); break;
		}
		if (op < 3) {
			ck_assert_int_eq(hlc_now(&h, wall, &t), BS_OK);
			ref_send(&k, wall);
		} else {
			uint64_t lm = k.l + (uint64_t)(rand_r(&seed) % 1200) - 600;
			uint64_t cm = (uint64_t)(rand_r(&seed) % 8 ? rand_r(&seed) % 4 :
							     0xfff0 + rand_r(&seed) % 16);
			enum hlc_verdict v;

			if (rand_r(&seed) % 4 == 0)
				lm = k.l; /* equal physical parts often */
			ck_assert_int_eq(hlc_receive(&h, wall, P(lm, (uint16_t)cm),
						     &t, &v), BS_OK);
			if (lm > wall && lm - wall > drift) {
				ck_assert_int_eq(v, HLC_SUSPECT);
				ref_send(&k, wall);
			} else {
				ck_assert_int_eq(v, HLC_ADOPTED);
				ref_recv(&k, wall, lm, cm);
				ck_assert_uint_gt(t, P(lm, (uint16_t)cm));
			}
		}
		ck_assert_uint_eq(hlc_physical(t), k.l);
		ck_assert_uint_eq(hlc_logical(t), k.c);
		ck_assert_uint_gt(t, prev);
		prev = t;
	}
}
END_TEST

START_TEST(format_known_answers)
{
	const struct {
		uint64_t stamp;
		const char *want;
	} cases[] = {
		{0, "1970-01-01T00:00:00.000Z+0000"},
		{P(1795708274123ull, 3), "2026-11-26T15:51:14.123Z+0003"},
		{P(951868799999ull, 0xffff), "2000-02-29T23:59:59.999Z+ffff"},
		{P(946684799999ull, 0x00a0), "1999-12-31T23:59:59.999Z+00a0"},
		{P(4107499200001ull, 1), "2100-02-28T12:00:00.001Z+0001"},
		{P(4107542400000ull, 0x1234), "2100-03-01T00:00:00.000Z+1234"},
		{UINT64_MAX, "10889-08-02T05:31:50.655Z+ffff"},
		/* The table of FORMAT.md, as raw integers. */
		{0x01a2188dc5cb0003ull, "2026-11-26T15:51:14.123Z+0003"},
		{0x00dd9fcd3bffffffull, "2000-02-29T23:59:59.999Z+ffff"},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[HLC_STR_MAX];

		memset(out, 'x', sizeof out);
		hlc_format(cases[i].stamp, out);
		ck_assert_str_eq(out, cases[i].want);
		ck_assert_uint_lt(strlen(out), HLC_STR_MAX);
	}
}
END_TEST

static Suite *hlc_suite(void)
{
	Suite *s = suite_create("hlc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, pack_roundtrip_and_order);
	tcase_add_test(tc, now_send_rule);
	tcase_add_test(tc, monotonic_when_wall_jumps_back);
	tcase_add_test(tc, frozen_wall_overflows_counter);
	tcase_add_test(tc, receive_rule_cases);
	tcase_add_test(tc, receive_drift_bound);
	tcase_add_test(tc, restore_and_limits);
	tcase_add_test(tc, matches_reference_rules);
	tcase_add_test(tc, format_known_answers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hlc_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
