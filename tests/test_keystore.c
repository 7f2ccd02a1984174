/* test_keystore.c - Check suite for shared/keystore and shared/passphrase:
 * sealing round trips, a known-answer vector built independently from the
 * spec, rejection of every damaged, truncated or hostile sealed key, and
 * passphrase input from the environment and from a real pseudo-terminal. */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "keystore.h"
#include "mem.h"
#include "passphrase.h"
#include "sign.h"

#define PASS "correct horse battery staple"

/* Offsets of the fields of an encrypted sealed key (protocol/FORMAT.md, "Sealed device key"). */
#define OFF_VERSION 4
#define OFF_MODE 5
#define OFF_OPS 6
#define OFF_MEM 14
#define OFF_SALT 22
#define OFF_NONCE 38
#define OFF_BOX 62
#define OFF_PK_ENC 110
#define OFF_PK_PLAIN 38

/* Built by an independent implementation of the spec (Python: Argon2id and
 * Ed25519 from `cryptography`, XSalsa20-Poly1305 written from the NaCl
 * paper): seed 00..1f, salt 40..4f, nonce 50..67, opslimit 1, memlimit
 * 8192, passphrase PASS. */
static const char kat_encrypted[] =
	"42534b59010100000000000000010000000000002000"
	"404142434445464748494a4b4c4d4e4f"
	"505152535455565758595a5b5c5d5e5f6061626364656667"
	"34b2b9fbdb2283d0633789bde4c83536"
	"19a91d85e991861c47a929aa8e62e967c0846aff250b35888723139ebd20ac07"
	"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
static const char kat_plain[] =
	"42534b590100"
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
static const char kat_pk[] =
	"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex) / 2, i;

	ck_assert_uint_le(n, max);
	for (i = 0; i < n; i++) {
		unsigned x;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &x), 1);
		out[i] = (uint8_t)x;
	}
	return n;
}

static void put_u64be(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_u64be(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int contains(const uint8_t *hay, size_t hlen, const uint8_t *needle,
		    size_t nlen)
{
	size_t i;

	for (i = 0; i + nlen <= hlen; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return 1;
	return 0;
}

/* Asserts that opening fails with `want` and hands back no key. */
static void expect_open(const uint8_t *p, size_t len, const char *pass,
			enum bs_status want)
{
	struct keystore_key *key = (struct keystore_key *)&key;

	ck_assert_int_eq(keystore_open(p, len, pass, &key), want);
	ck_assert_ptr_null(key);
}

static void make(const char *pass, uint8_t **sealed, size_t *len,
		 uint8_t pk[SIGN_PUBLIC_BYTES])
{
	ck_assert_int_eq(keystore_generate(pass, KEYSTORE_STRENGTH_MIN, sealed,
					   len, pk), BS_OK);
	ck_assert_ptr_nonnull(*sealed);
}

static void check_signs(const struct keystore_key *key,
			const uint8_t pk[SIGN_PUBLIC_BYTES])
{
	static const uint8_t msg[] = "change set bytes";
	uint8_t sig[SIGN_BYTES];

	ck_assert_int_eq(sign_detached(SIGN_CHANGESET, msg, sizeof msg,
				       key->sk, sig), BS_OK);
	ck_assert_int_eq(sign_verify(SIGN_CHANGESET, msg, sizeof msg, sig, pk),
			 BS_OK);
	ck_assert_int_eq(sign_verify(SIGN_CHANGESET, msg, sizeof msg - 1, sig,
				     pk), BS_ESIGNATURE);
}

START_TEST(roundtrip_encrypted)
{
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES], pk2[SIGN_PUBLIC_BYTES];
	struct keystore_key *a = NULL, *b = NULL;
	size_t len = 0;
	int enc = -1;

	make(PASS, &sealed, &len, pk);
	ck_assert_uint_eq(len, KEYSTORE_ENCRYPTED_LEN);
	ck_assert_mem_eq(sealed, "BSKY\x01\x01", 6);
	ck_assert_uint_eq(get_u64be(sealed + OFF_OPS), 1);
	ck_assert_uint_eq(get_u64be(sealed + OFF_MEM), 8192);
	ck_assert_int_eq(keystore_is_encrypted(sealed, len, &enc), BS_OK);
	ck_assert_int_eq(enc, 1);
	ck_assert_int_eq(keystore_public(sealed, len, pk2), BS_OK);
	ck_assert_mem_eq(pk, pk2, SIGN_PUBLIC_BYTES);
	ck_assert_mem_eq(sealed + OFF_PK_ENC, pk, SIGN_PUBLIC_BYTES);

	ck_assert_int_eq(keystore_open(sealed, len, PASS, &a), BS_OK);
	ck_assert_ptr_nonnull(a);
	ck_assert_mem_eq(a->pk, pk, SIGN_PUBLIC_BYTES);
	ck_assert_mem_eq(a->sk + 32, pk, SIGN_PUBLIC_BYTES);
	check_signs(a, pk);
	/* The seed is not in clear anywhere in the sealed bytes. */
	ck_assert(!contains(sealed, len, a->sk, 16));

	ck_assert_int_eq(keystore_open(sealed, len, PASS, &b), BS_OK);
	ck_assert_mem_eq(a->sk, b->sk, SIGN_SECRET_BYTES);
	keystore_key_free(a);
	keystore_key_free(b);
	keystore_sealed_free(sealed, len);
}
END_TEST

START_TEST(roundtrip_plain)
{
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES], pk2[SIGN_PUBLIC_BYTES];
	struct keystore_key *a = NULL, *b = NULL;
	size_t len = 0;
	int enc = -1;

	make(NULL, &sealed, &len, pk);
	ck_assert_uint_eq(len, KEYSTORE_PLAIN_LEN);
	ck_assert_mem_eq(sealed, "BSKY\x01\x00", 6);
	ck_assert_int_eq(keystore_is_encrypted(sealed, len, &enc), BS_OK);
	ck_assert_int_eq(enc, 0);
	ck_assert_int_eq(keystore_public(sealed, len, pk2), BS_OK);
	ck_assert_mem_eq(pk, pk2, SIGN_PUBLIC_BYTES);

	ck_assert_int_eq(keystore_open(sealed, len, NULL, &a), BS_OK);
	ck_assert_mem_eq(a->pk, pk, SIGN_PUBLIC_BYTES);
	ck_assert_mem_eq(sealed + 6, a->sk, KEYSTORE_SEED_BYTES);
	check_signs(a, pk);
	/* A passphrase given for a plain key is ignored, not an error. */
	ck_assert_int_eq(keystore_open(sealed, len, "whatever", &b), BS_OK);
	ck_assert_mem_eq(a->sk, b->sk, SIGN_SECRET_BYTES);
	keystore_key_free(a);
	keystore_key_free(b);
	keystore_sealed_free(sealed, len);
}
END_TEST

START_TEST(keys_are_fresh)
{
	uint8_t *s1 = NULL, *s2 = NULL;
	uint8_t pk1[SIGN_PUBLIC_BYTES], pk2[SIGN_PUBLIC_BYTES];
	size_t l1 = 0, l2 = 0;

	make(PASS, &s1, &l1, pk1);
	make(PASS, &s2, &l2, pk2);
	ck_assert_mem_ne(pk1, pk2, SIGN_PUBLIC_BYTES);
	ck_assert_mem_ne(s1 + OFF_SALT, s2 + OFF_SALT, KEYSTORE_SALT_BYTES);
	ck_assert_mem_ne(s1 + OFF_NONCE, s2 + OFF_NONCE, KEYSTORE_NONCE_BYTES);
	keystore_sealed_free(s1, l1);
	keystore_sealed_free(s2, l2);
}
END_TEST

START_TEST(default_strength_is_interactive)
{
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES];
	struct keystore_key *key = NULL;
	size_t len = 0;

	ck_assert_int_eq(KEYSTORE_STRENGTH_INTERACTIVE, 0);
	ck_assert_int_eq(keystore_generate(PASS, KEYSTORE_STRENGTH_INTERACTIVE,
					   &sealed, &len, pk), BS_OK);
	ck_assert_uint_eq(get_u64be(sealed + OFF_OPS), 2);
	ck_assert_uint_eq(get_u64be(sealed + OFF_MEM), 64u << 20);
	ck_assert_int_eq(keystore_open(sealed, len, PASS, &key), BS_OK);
	ck_assert_mem_eq(key->pk, pk, SIGN_PUBLIC_BYTES);
	keystore_key_free(key);
	keystore_sealed_free(sealed, len);

	ck_assert_int_eq(keystore_generate(PASS, KEYSTORE_STRENGTH_MODERATE,
					   &sealed, &len, pk), BS_OK);
	ck_assert_uint_eq(get_u64be(sealed + OFF_OPS), 3);
	ck_assert_uint_eq(get_u64be(sealed + OFF_MEM), 256u << 20);
	keystore_sealed_free(sealed, len);
}
END_TEST

START_TEST(wrong_passphrase)
{
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES];
	size_t len = 0;

	make(PASS, &sealed, &len, pk);
	expect_open(sealed, len, "correct horse battery stapl", BS_EHASH);
	expect_open(sealed, len, PASS " ", BS_EHASH);
	expect_open(sealed, len, "", BS_EHASH);
	expect_open(sealed, len, NULL, BS_ESTATE);
	keystore_sealed_free(sealed, len);
}
END_TEST

START_TEST(generate_refuses_bad_arguments)
{
	uint8_t *sealed = (uint8_t *)&sealed, pk[SIGN_PUBLIC_BYTES];
	size_t len = 99;

	ck_assert_int_eq(keystore_generate("", KEYSTORE_STRENGTH_MIN, &sealed,
					   &len, pk), BS_EINVALID);
	ck_assert_ptr_null(sealed);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(keystore_generate(PASS, (enum keystore_strength)99,
					   &sealed, &len, pk), BS_EINVALID);
	ck_assert_ptr_null(sealed);
}
END_TEST

START_TEST(known_answer_vectors)
{
	uint8_t enc[KEYSTORE_ENCRYPTED_LEN + 1], plain[KEYSTORE_PLAIN_LEN];
	uint8_t pk[SIGN_PUBLIC_BYTES], got[SIGN_PUBLIC_BYTES];
	uint8_t seed[KEYSTORE_SEED_BYTES];
	struct keystore_key *key = NULL;
	size_t n, i;

	ck_assert_uint_eq(unhex(kat_encrypted, enc, sizeof enc),
			  KEYSTORE_ENCRYPTED_LEN);
	ck_assert_uint_eq(unhex(kat_plain, plain, sizeof plain),
			  KEYSTORE_PLAIN_LEN);
	n = unhex(kat_pk, pk, sizeof pk);
	ck_assert_uint_eq(n, SIGN_PUBLIC_BYTES);
	for (i = 0; i < sizeof seed; i++)
		seed[i] = (uint8_t)i;

	ck_assert_int_eq(keystore_open(enc, KEYSTORE_ENCRYPTED_LEN, PASS, &key),
			 BS_OK);
	ck_assert_mem_eq(key->sk, seed, sizeof seed);
	ck_assert_mem_eq(key->pk, pk, SIGN_PUBLIC_BYTES);
	check_signs(key, pk);
	keystore_key_free(key);
	key = NULL;
	expect_open(enc, KEYSTORE_ENCRYPTED_LEN, "Correct horse battery staple",
		    BS_EHASH);

	ck_assert_int_eq(keystore_open(plain, KEYSTORE_PLAIN_LEN, NULL, &key),
			 BS_OK);
	ck_assert_mem_eq(key->sk, seed, sizeof seed);
	ck_assert_mem_eq(key->pk, pk, SIGN_PUBLIC_BYTES);
	keystore_key_free(key);

	ck_assert_int_eq(keystore_public(enc, KEYSTORE_ENCRYPTED_LEN, got),
			 BS_OK);
	ck_assert_mem_eq(got, pk, SIGN_PUBLIC_BYTES);
}
END_TEST

START_TEST(reseal_changes_protection_not_key)
{
	uint8_t plain[KEYSTORE_PLAIN_LEN], *sealed = NULL;
	struct keystore_key *a = NULL, *b = NULL;
	size_t len = 0;

	unhex(kat_plain, plain, sizeof plain);
	ck_assert_int_eq(keystore_open(plain, sizeof plain, NULL, &a), BS_OK);
	ck_assert_int_eq(keystore_seal(a, "new one", KEYSTORE_STRENGTH_MIN,
				       &sealed, &len), BS_OK);
	ck_assert_uint_eq(len, KEYSTORE_ENCRYPTED_LEN);
	expect_open(sealed, len, PASS, BS_EHASH);
	ck_assert_int_eq(keystore_open(sealed, len, "new one", &b), BS_OK);
	ck_assert_mem_eq(a->sk, b->sk, SIGN_SECRET_BYTES);
	keystore_key_free(a);
	keystore_key_free(b);
	keystore_sealed_free(sealed, len);
}
END_TEST

/* Every single-bit flip fails, and with the error its field calls for. */
START_TEST(bitflip_encrypted)
{
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES];
	size_t len = 0, i;
	int bit;

	make(PASS, &sealed, &len, pk);
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			struct keystore_key *key = (struct keystore_key *)&key;
			enum bs_status rc;

			sealed[i] ^= (uint8_t)(1u << bit);
			rc = keystore_open(sealed, len, PASS, &key);
			ck_assert_ptr_null(key);
			if (i < OFF_VERSION)
				ck_assert_int_eq(rc, BS_EMAGIC);
			else if (i == OFF_VERSION)
				ck_assert_int_eq(rc, BS_EVERSION);
			else if (i == OFF_MODE && bit == 0)
				ck_assert_int_eq(rc, BS_ETRAILING); /* plain */
			else if (i == OFF_MODE)
				ck_assert_int_eq(rc, BS_EINVALID);
			else if (i < OFF_SALT)
				/* A cost still in range derives a different
				 * key; the MAC then fails. */
				ck_assert(rc == BS_ELIMIT || rc == BS_EHASH);
			else if (i < OFF_PK_ENC)
				ck_assert_int_eq(rc, BS_EHASH);
			else
				ck_assert_int_eq(rc, BS_EINVALID);
			sealed[i] ^= (uint8_t)(1u << bit);
		}
	}
	keystore_sealed_free(sealed, len);
}
END_TEST

START_TEST(bitflip_plain)
{
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES];
	size_t len = 0, i;
	int bit;

	make(NULL, &sealed, &len, pk);
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			struct keystore_key *key = (struct keystore_key *)&key;
			enum bs_status rc;

			sealed[i] ^= (uint8_t)(1u << bit);
			rc = keystore_open(sealed, len, PASS, &key);
			ck_assert_ptr_null(key);
			if (i < OFF_VERSION)
				ck_assert_int_eq(rc, BS_EMAGIC);
			else if (i == OFF_VERSION)
				ck_assert_int_eq(rc, BS_EVERSION);
			else if (i == OFF_MODE && bit == 0)
				/* Read as encrypted: the "cost" is seed
				 * bytes, or the input is too short. */
				ck_assert(rc == BS_ELIMIT ||
					  rc == BS_ETRUNCATED);
			else
				ck_assert_int_eq(rc, BS_EINVALID);
			sealed[i] ^= (uint8_t)(1u << bit);
		}
	}
	keystore_sealed_free(sealed, len);
}
END_TEST

START_TEST(truncated_and_trailing)
{
	uint8_t *s[2] = {NULL, NULL}, pk[SIGN_PUBLIC_BYTES], got[32];
	uint8_t *longer;
	size_t len[2] = {0, 0}, n;
	int m, enc;

	make(PASS, &s[0], &len[0], pk);
	make(NULL, &s[1], &len[1], pk);
	for (m = 0; m < 2; m++) {
		for (n = 0; n < len[m]; n++) {
			expect_open(s[m], n, PASS, BS_ETRUNCATED);
			ck_assert_int_eq(keystore_public(s[m], n, got),
					 BS_ETRUNCATED);
			ck_assert_int_eq(keystore_is_encrypted(s[m], n, &enc),
					 BS_ETRUNCATED);
		}
		longer = mem_alloc(len[m] + 1);
		ck_assert_ptr_nonnull(longer);
		memcpy(longer, s[m], len[m]);
		longer[len[m]] = 0;
		expect_open(longer, len[m] + 1, PASS, BS_ETRAILING);
		ck_assert_int_eq(keystore_public(longer, len[m] + 1, got),
				 BS_ETRAILING);
		mem_free(longer);
		keystore_sealed_free(s[m], len[m]);
	}
}
END_TEST

/* The clear public key must be the one of the secret key, in both modes. */
START_TEST(public_key_mismatch)
{
	uint8_t *a = NULL, *b = NULL, pka[32], pkb[32], got[32];
	size_t la = 0, lb = 0;

	make(NULL, &a, &la, pka);
	make(PASS, &b, &lb, pkb);
	memcpy(a + OFF_PK_PLAIN, pkb, 32);
	expect_open(a, la, NULL, BS_EINVALID);
	memcpy(b + OFF_PK_ENC, pka, 32);
	expect_open(b, lb, PASS, BS_EINVALID);
	/* Without the secret, status can only show what is stored. */
	ck_assert_int_eq(keystore_public(a, la, got), BS_OK);
	ck_assert_mem_eq(got, pkb, 32);
	keystore_sealed_free(a, la);
	keystore_sealed_free(b, lb);
}
END_TEST

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(hostile_limits_refused_before_derivation)
{
	static const struct {
		uint64_t ops, mem;
	} bad[] = {
		{1, 64ull << 30},              /* 64 GiB */
		{1, (1ull << 30) + 1024},      /* just over 1 GiB */
		{1, 8192 - 1024},              /* under libsodium's minimum */
		{1, 8193},                     /* not whole KiB */
		{1, 8192 + 512},
		{0, 8192},
		{KEYSTORE_OPSLIMIT_MAX + 1, 8192},
		{1ull << 32, 8192},            /* over libsodium's maximum */
		{UINT64_MAX, UINT64_MAX},
	};
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES], got[32];
	size_t len = 0, i;
	double t0;

	make(PASS, &sealed, &len, pk);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		put_u64be(sealed + OFF_OPS, bad[i].ops);
		put_u64be(sealed + OFF_MEM, bad[i].mem);
		t0 = now_seconds();
		/* ELIMIT even with the right passphrase, and not EHASH with
		 * a wrong one: no derivation or decryption was attempted. */
		expect_open(sealed, len, PASS, BS_ELIMIT);
		expect_open(sealed, len, "wrong", BS_ELIMIT);
		ck_assert(now_seconds() - t0 < 0.5);
		ck_assert_int_eq(keystore_public(sealed, len, got), BS_ELIMIT);
	}
	/* The edges themselves are valid encodings. */
	put_u64be(sealed + OFF_OPS, KEYSTORE_OPSLIMIT_MAX);
	put_u64be(sealed + OFF_MEM, KEYSTORE_MEMLIMIT_MAX);
	ck_assert_int_eq(keystore_public(sealed, len, got), BS_OK);
	put_u64be(sealed + OFF_OPS, 1);
	put_u64be(sealed + OFF_MEM, 8192);
	ck_assert_int_eq(keystore_public(sealed, len, got), BS_OK);
	keystore_sealed_free(sealed, len);
}
END_TEST

START_TEST(out_of_memory_fails_cleanly)
{
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES];
	size_t len = 0;
	long n;
	enum bs_status rc = BS_ENOMEM;

	for (n = 0; rc == BS_ENOMEM && n < 20; n++) {
		mem_fail_after(n);
		rc = keystore_generate(PASS, KEYSTORE_STRENGTH_MIN, &sealed,
				       &len, pk);
		mem_fail_reset();
		if (rc == BS_ENOMEM)
			ck_assert_ptr_null(sealed);
	}
	ck_assert_int_eq(rc, BS_OK);
	ck_assert_int_gt(n, 1); /* at least one failure was injected */
	keystore_sealed_free(sealed, len);
}
END_TEST

/* The opened key is read-only memory: a stray write kills the process
 * (a plain SIGSEGV, or ASan's report and exit under sanitizers). */
START_TEST(opened_key_is_read_only)
{
	uint8_t plain[KEYSTORE_PLAIN_LEN];
	struct keystore_key *key = NULL;
	int status = 0;
	pid_t pid;

	unhex(kat_plain, plain, sizeof plain);
	ck_assert_int_eq(keystore_open(plain, sizeof plain, NULL, &key), BS_OK);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 2); /* keep ASan's expected report quiet */
		((volatile uint8_t *)key->sk)[0] ^= 1;
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
	keystore_key_free(key);
}
END_TEST

/* --- passphrase from the environment --- */

START_TEST(env_passphrase)
{
	char *p = NULL;
	const char *why = "unset";

	ck_assert_int_eq(setenv(PASSPHRASE_ENV, "s3cret words", 1), 0);
	ck_assert_int_eq(passphrase_read(NULL, 0, &p, &why), BS_OK);
	ck_assert_str_eq(p, "s3cret words");
	ck_assert_ptr_null(why);
	passphrase_free(p);
	/* No second prompt from a variable. */
	ck_assert_int_eq(passphrase_read(NULL, 1, &p, NULL), BS_OK);
	ck_assert_str_eq(p, "s3cret words");
	passphrase_free(p);
}
END_TEST

START_TEST(env_passphrase_empty)
{
	char *p = (char *)&p;
	const char *why = NULL;

	ck_assert_int_eq(setenv(PASSPHRASE_ENV, "", 1), 0);
	ck_assert_int_eq(passphrase_read(NULL, 0, &p, &why), BS_EINVALID);
	ck_assert_ptr_null(p);
	ck_assert_str_eq(why, "BRANCHSYNC_PASSPHRASE is empty");
}
END_TEST

START_TEST(env_passphrase_length)
{
	char big[PASSPHRASE_MAX + 2];
	char *p = NULL;
	const char *why = NULL;

	memset(big, 'x', sizeof big - 1);
	big[PASSPHRASE_MAX] = '\0';
	ck_assert_int_eq(setenv(PASSPHRASE_ENV, big, 1), 0);
	ck_assert_int_eq(passphrase_read(NULL, 0, &p, &why), BS_OK);
	ck_assert_uint_eq(strlen(p), PASSPHRASE_MAX);
	passphrase_free(p);
	p = NULL;
	big[PASSPHRASE_MAX] = 'x';
	big[PASSPHRASE_MAX + 1] = '\0';
	ck_assert_int_eq(setenv(PASSPHRASE_ENV, big, 1), 0);
	ck_assert_int_eq(passphrase_read(NULL, 0, &p, &why), BS_ELIMIT);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(why);
}
END_TEST

/* --- passphrase from a terminal: a child in its own session whose
 * controlling terminal is a pseudo-terminal we type into --- */

struct tty_report {
	int rc;
	int echo_after;         /* ECHO flag once passphrase_read returned */
	int handler_ran;
	char why[128];
	char pass[PASSPHRASE_MAX + 1];
};

struct tty_run {
	struct tty_report rep;
	int got_report;
	int status;             /* from waitpid */
	int echo_after_exit;    /* ECHO flag seen by the parent at the end */
	char transcript[8192];  /* everything the child showed */
	size_t tlen;
};

static volatile sig_atomic_t tty_handler_ran;

static void tty_handler(int sig)
{
	(void)sig;
	tty_handler_ran = 1;
}

static void tty_child(const char *slave, int out, int confirm, int own_handler)
{
	struct tty_report rep;
	struct termios t;
	char *p = NULL;
	const char *why = NULL;
	int fd;

	memset(&rep, 0, sizeof rep);
	if (setsid() < 0 || (fd = open(slave, O_RDWR)) < 0)
		_exit(90);
	unsetenv(PASSPHRASE_ENV);
	signal(SIGINT, own_handler ? tty_handler : SIG_DFL);
	rep.rc = passphrase_read("Passphrase: ", confirm, &p, &why);
	rep.handler_ran = tty_handler_ran;
	if (tcgetattr(fd, &t) == 0)
		rep.echo_after = (t.c_lflag & ECHO) != 0;
	if (why)
		snprintf(rep.why, sizeof rep.why, "%s", why);
	if (p) {
		snprintf(rep.pass, sizeof rep.pass, "%s", p);
		passphrase_free(p);
	}
	if (write(out, &rep, sizeof rep) != (ssize_t)sizeof rep)
		_exit(91);
	_exit(0);
}

/* Reads what the child writes until it ends with ": " (a prompt). */
static int tty_wait_prompt(int master, struct tty_run *run)
{
	double deadline = now_seconds() + 20;

	while (now_seconds() < deadline) {
		struct pollfd pfd = {.fd = master, .events = POLLIN};
		ssize_t n;

		if (run->tlen >= 2 &&
		    memcmp(run->transcript + run->tlen - 2, ": ", 2) == 0)
			return 0;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(master, run->transcript + run->tlen,
			 sizeof run->transcript - 1 - run->tlen);
		if (n <= 0)
			return -1;
		run->tlen += (size_t)n;
		run->transcript[run->tlen] = '\0';
	}
	return -1;
}

/* Runs passphrase_read in a child and feeds it `inputs` one per prompt; a
 * NULL input means "press Ctrl-C" (SIGINT to the child). */
static void tty_run(int confirm, int own_handler, const char *const *inputs,
		    size_t ninputs, struct tty_run *run)
{
	int master, slave_fd, pipefd[2];
	char slave[256];
	struct termios t;
	size_t i;
	pid_t pid;

	memset(run, 0, sizeof *run);
	master = posix_openpt(O_RDWR | O_NOCTTY);
	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	snprintf(slave, sizeof slave, "%s", ptsname(master));
	/* Our own handle on the terminal, to look at it after the child. */
	slave_fd = open(slave, O_RDWR | O_NOCTTY);
	ck_assert_int_ge(slave_fd, 0);
	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(master);
		close(slave_fd);
		close(pipefd[0]);
		tty_child(slave, pipefd[1], confirm, own_handler);
	}
	close(pipefd[1]);
	for (i = 0; i < ninputs; i++) {
		ck_assert_int_eq(tty_wait_prompt(master, run), 0);
		if (inputs[i])
			ck_assert_int_eq(write(master, inputs[i],
					       strlen(inputs[i])),
					 (ssize_t)strlen(inputs[i]));
		else
			ck_assert_int_eq(kill(pid, SIGINT), 0);
		/* The next prompt must be new output. */
		run->transcript[run->tlen++] = '|';
		run->transcript[run->tlen] = '\0';
	}
	run->got_report = read(pipefd[0], &run->rep, sizeof run->rep) ==
			  (ssize_t)sizeof run->rep;
	ck_assert_int_eq(waitpid(pid, &run->status, 0), pid);
	for (;;) {
		struct pollfd pfd = {.fd = master, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 0) <= 0)
			break;
		n = read(master, run->transcript + run->tlen,
			 sizeof run->transcript - 1 - run->tlen);
		if (n <= 0)
			break;
		run->tlen += (size_t)n;
		run->transcript[run->tlen] = '\0';
	}
	ck_assert_int_eq(tcgetattr(slave_fd, &t), 0);
	run->echo_after_exit = (t.c_lflag & ECHO) != 0;
	close(pipefd[0]);
	close(slave_fd);
	close(master);
}

START_TEST(tty_reads_without_echo)
{
	static const char *const in[] = {"tty secret\n"};
	struct tty_run run;

	tty_run(0, 0, in, 1, &run);
	ck_assert(run.got_report);
	ck_assert_int_eq(run.rep.rc, BS_OK);
	ck_assert_str_eq(run.rep.pass, "tty secret");
	ck_assert(strstr(run.transcript, "Passphrase: ") != NULL);
	ck_assert_ptr_null(strstr(run.transcript, "secret"));
	ck_assert_int_eq(run.rep.echo_after, 1);
	ck_assert_int_eq(run.echo_after_exit, 1);
}
END_TEST

START_TEST(tty_confirm)
{
	static const char *const same[] = {"two words\n", "two words\n"};
	static const char *const differ[] = {"two words\n", "two wordz\n"};
	struct tty_run run;

	tty_run(1, 0, same, 2, &run);
	ck_assert_int_eq(run.rep.rc, BS_OK);
	ck_assert_str_eq(run.rep.pass, "two words");
	ck_assert(strstr(run.transcript, "Repeat the passphrase: ") != NULL);
	ck_assert_ptr_null(strstr(run.transcript, "words"));

	tty_run(1, 0, differ, 2, &run);
	ck_assert_int_eq(run.rep.rc, BS_EINVALID);
	ck_assert_str_eq(run.rep.pass, "");
	ck_assert_str_eq(run.rep.why, "the passphrases do not match");
	ck_assert_int_eq(run.rep.echo_after, 1);
}
END_TEST

START_TEST(tty_empty_and_too_long)
{
	static char line[PASSPHRASE_MAX + 100];
	static const char *const empty[] = {"\n"};
	const char *in[1];
	struct tty_run run;

	tty_run(0, 0, empty, 1, &run);
	ck_assert_int_eq(run.rep.rc, BS_EINVALID);
	ck_assert_str_eq(run.rep.why, "the passphrase is empty");

	memset(line, 'a', PASSPHRASE_MAX);
	strcpy(line + PASSPHRASE_MAX, "\n");
	in[0] = line;
	tty_run(0, 0, in, 1, &run);
	ck_assert_int_eq(run.rep.rc, BS_OK);
	ck_assert_uint_eq(strlen(run.rep.pass), PASSPHRASE_MAX);

	strcpy(line + PASSPHRASE_MAX, "aaaa\n");
	tty_run(0, 0, in, 1, &run);
	ck_assert_int_eq(run.rep.rc, BS_ELIMIT);
	ck_assert_str_eq(run.rep.pass, "");
	ck_assert_int_eq(run.rep.echo_after, 1);
}
END_TEST

START_TEST(tty_ctrl_c_restores_terminal)
{
	static const char *const ctrl_c[] = {NULL};
	struct tty_run run;

	/* Default disposition: the child dies of SIGINT, echo back on. */
	tty_run(0, 0, ctrl_c, 1, &run);
	ck_assert(!run.got_report);
	ck_assert(WIFSIGNALED(run.status));
	ck_assert_int_eq(WTERMSIG(run.status), SIGINT);
	ck_assert_int_eq(run.echo_after_exit, 1);

	/* The caller's handler still gets the signal, after the restore. */
	tty_run(0, 1, ctrl_c, 1, &run);
	ck_assert(run.got_report);
	ck_assert_int_eq(run.rep.rc, BS_ESTATE);
	ck_assert_int_eq(run.rep.handler_ran, 1);
	ck_assert_int_eq(run.rep.echo_after, 1);
}
END_TEST

START_TEST(no_terminal_no_variable)
{
	int pipefd[2], status = 0;
	char msg[128] = "";
	pid_t pid;

	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *p = NULL;
		const char *why = "";
		enum bs_status rc;

		close(pipefd[0]);
		if (setsid() < 0) /* no controlling terminal any more */
			_exit(90);
		unsetenv(PASSPHRASE_ENV);
		rc = passphrase_read(NULL, 0, &p, &why);
		if (why && write(pipefd[1], why, strlen(why)) < 0)
			_exit(91);
		_exit(rc == BS_ESTATE && !p ? 0 : 1);
	}
	close(pipefd[1]);
	ck_assert_int_ge(read(pipefd[0], msg, sizeof msg - 1), 0);
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_str_eq(msg, "no terminal to read the passphrase from; "
			      "set BRANCHSYNC_PASSPHRASE");
}
END_TEST

static Suite *keystore_suite(void)
{
	Suite *s = suite_create("keystore");
	TCase *tc = tcase_create("keystore");
	TCase *tp = tcase_create("passphrase");

	tcase_add_test(tc, roundtrip_encrypted);
	tcase_add_test(tc, roundtrip_plain);
	tcase_add_test(tc, keys_are_fresh);
	tcase_add_test(tc, default_strength_is_interactive);
	tcase_add_test(tc, wrong_passphrase);
	tcase_add_test(tc, generate_refuses_bad_arguments);
	tcase_add_test(tc, known_answer_vectors);
	tcase_add_test(tc, reseal_changes_protection_not_key);
	tcase_add_test(tc, bitflip_encrypted);
	tcase_add_test(tc, bitflip_plain);
	tcase_add_test(tc, truncated_and_trailing);
	tcase_add_test(tc, public_key_mismatch);
	tcase_add_test(tc, hostile_limits_refused_before_derivation);
	tcase_add_test(tc, out_of_memory_fails_cleanly);
	tcase_add_test(tc, opened_key_is_read_only);
	suite_add_tcase(s, tc);

	tcase_add_test(tp, env_passphrase);
	tcase_add_test(tp, env_passphrase_empty);
	tcase_add_test(tp, env_passphrase_length);
	tcase_add_test(tp, tty_reads_without_echo);
	tcase_add_test(tp, tty_confirm);
	tcase_add_test(tp, tty_empty_and_too_long);
	tcase_add_test(tp, tty_ctrl_c_restores_terminal);
	tcase_add_test(tp, no_terminal_no_variable);
	suite_add_tcase(s, tp);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(keystore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
