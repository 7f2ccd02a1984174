/* test_request.c - Check suite for protocol/request: the signature of an
 * authenticated HTTP request against known-answer vectors (tests/vectors/
 * request-kat.txt); a signature stops verifying when any signed part
 * changes. Not for challenge bookkeeping or HTTP headers (server/). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "kat.h"
#include "mem.h"
#include "request.h"
#include "sign.h"
#include "wire.h"

#define MSG_MAX 4096

static const char request_label[] = "branchsync/request/v1";

/* B: seed 21..40; C: seed 41..60 (the vectors' devices). */
static uint8_t pk_b[SIGN_PUBLIC_BYTES], sk_b[SIGN_SECRET_BYTES];
static uint8_t pk_c[SIGN_PUBLIC_BYTES], sk_c[SIGN_SECRET_BYTES];

static void keys_init(void)
{
	ck_assert_int_eq(sign_init(), BS_OK);
	kat_keypair(0x21, pk_b, sk_b);
	kat_keypair(0x41, pk_c, sk_c);
}

/* The known-answer file (read-only; see its header). */
#define VECTORS "request-kat.txt"

struct kat_req {
	uint8_t seed[32], device[32], body_hash[32];
	uint8_t challenge[REQUEST_CHALLENGE_BYTES];
	uint8_t sig[SIGN_BYTES];
	char method[REQUEST_METHOD_MAX + 1], path[REQUEST_PATH_MAX + 1];
	uint8_t body[256], signed_[MSG_MAX], message[MSG_MAX];
	size_t body_len, signed_len, msg_len;
};

static void kat_req_load(const char *name, struct kat_req *k)
{
	memset(k, 0, sizeof *k);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "seed", k->seed, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "device", k->device, 32), 32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "body_hash", k->body_hash, 32),
			  32);
	ck_assert_uint_eq(kat_hex(VECTORS, name, "challenge", k->challenge,
				  REQUEST_CHALLENGE_BYTES),
			  REQUEST_CHALLENGE_BYTES);
	ck_assert_uint_eq(
	    kat_hex(VECTORS, name, "signature", k->sig, SIGN_BYTES),
	    SIGN_BYTES);
	kat_str(VECTORS, name, "method", k->method, REQUEST_METHOD_MAX);
	kat_str(VECTORS, name, "path", k->path, REQUEST_PATH_MAX);
	k->body_len = kat_hex(VECTORS, name, "body", k->body, sizeof k->body);
	k->signed_len = kat_hex(VECTORS, name, "signed", k->signed_, MSG_MAX);
	k->msg_len = kat_hex(VECTORS, name, "message", k->message, MSG_MAX);
}

static void kat_req_auth(const struct kat_req *k, struct request_auth *ra)
{
	ra->method = k->method;
	ra->path = k->path;
	memcpy(ra->body_hash, k->body_hash, 32);
	memcpy(ra->challenge, k->challenge, REQUEST_CHALLENGE_BYTES);
	memcpy(ra->device, k->device, 32);
}

/* The signed bytes as FORMAT.md defines them, built here. */
static size_t signed_bytes(const struct request_auth *ra, uint8_t *out)
{
	size_t n = 0, mlen = strlen(ra->method), plen = strlen(ra->path);

	n += wire_varint_encode(mlen, out + n);
	memcpy(out + n, ra->method, mlen);
	n += mlen;
	n += wire_varint_encode(plen, out + n);
	memcpy(out + n, ra->path, plen);
	n += plen;
	memcpy(out + n, ra->body_hash, 32);
	memcpy(out + n + 32, ra->challenge, 16);
	memcpy(out + n + 48, ra->device, 32);
	return n + 80;
}

/* Verifies with libsodium alone over label 0x00 signed bytes. */
static int independent_verify(const struct request_auth *ra,
			      const uint8_t sig[SIGN_BYTES])
{
	uint8_t msg[sizeof request_label + MSG_MAX];
	size_t n;

	memcpy(msg, request_label, sizeof request_label);
	n = signed_bytes(ra, msg + sizeof request_label);
	return crypto_sign_verify_detached(sig, msg, sizeof request_label + n,
					   ra->device);
}

/* ---- known answers ---- */

START_TEST(kat_requests)
{
	char names[8][32];
	size_t count, v;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	ck_assert_uint_ge(count, 3);
	for (v = 0; v < count; v++) {
		struct kat_req k;
		struct request_auth ra;
		uint8_t pk[32], sk[64], hash[32], sig[SIGN_BYTES], built[MSG_MAX];

		kat_req_load(names[v], &k);
		crypto_sign_seed_keypair(pk, sk, k.seed);
		ck_assert_mem_eq(pk, k.device, 32);
		crypto_hash_sha256(hash, k.body, k.body_len);
		ck_assert_mem_eq(hash, k.body_hash, 32);
		kat_req_auth(&k, &ra);

		/* The file agrees with itself and with FORMAT.md. */
		ck_assert_uint_eq(signed_bytes(&ra, built), k.signed_len);
		ck_assert_mem_eq(built, k.signed_, k.signed_len);
		ck_assert_uint_eq(k.msg_len, sizeof request_label + k.signed_len);
		ck_assert_mem_eq(k.message, request_label, sizeof request_label);
		ck_assert_mem_eq(k.message + sizeof request_label, k.signed_,
				 k.signed_len);
		ck_assert_int_eq(crypto_sign_verify_detached(k.sig, k.message,
							     k.msg_len, pk),
				 0);

		/* The module makes the file's signature and accepts it. */
		ck_assert_int_eq(request_sign(&ra, sk, sig), BS_OK);
		ck_assert_mem_eq(sig, k.sig, SIGN_BYTES);
		ck_assert_int_eq(request_verify(&ra, k.sig), BS_OK);
	}
}
END_TEST

/* ---- every signed part matters ---- */

START_TEST(any_part_changed_fails)
{
	struct kat_req k;
	struct request_auth ra;
	char path[REQUEST_PATH_MAX + 2];
	size_t i, plen;
	uint8_t zero[32] = {0};

	keys_init();
	kat_req_load("post-push", &k);
	kat_req_auth(&k, &ra);
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_OK);

	/* Method. */
	{
		static const char *const methods[] = {"GET", "PUT", "post",
						      "POST ", "POS", "POSTS"};

		for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
			kat_req_auth(&k, &ra);
			ra.method = methods[i];
			ck_assert_msg(request_verify(&ra, k.sig) == BS_ESIGNATURE,
				      "method %s", methods[i]);
		}
	}
	/* Path: every byte, a byte more, a byte less, a query added. */
	plen = strlen(k.path);
	for (i = 0; i < plen; i++) {
		kat_req_auth(&k, &ra);
		strcpy(path, k.path);
		path[i] ^= 0x01;
		ra.path = path;
		ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	}
	kat_req_auth(&k, &ra);
	strcpy(path, k.path);
	strcat(path, "/");
	ra.path = path;
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	path[plen - 1] = '\0';
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	strcpy(path, k.path);
	strcat(path, "?after=0");
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	/* Body hash, challenge: every bit of every byte. */
	for (i = 0; i < 32 * 8; i++) {
		kat_req_auth(&k, &ra);
		ra.body_hash[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	}
	for (i = 0; i < REQUEST_CHALLENGE_BYTES * 8; i++) {
		kat_req_auth(&k, &ra);
		ra.challenge[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	}
	/* The hash of another body (the empty one). */
	kat_req_auth(&k, &ra);
	crypto_hash_sha256(ra.body_hash, NULL, 0);
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	/* Device: another real key, a changed byte, no key at all. */
	kat_req_auth(&k, &ra);
	memcpy(ra.device, pk_c, 32);
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	for (i = 0; i < 32; i++) {
		kat_req_auth(&k, &ra);
		ra.device[i] ^= 0x01;
		ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	}
	kat_req_auth(&k, &ra);
	memcpy(ra.device, zero, 32);
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_ESIGNATURE);
	/* And unchanged, still fine. */
	kat_req_auth(&k, &ra);
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_OK);
}
END_TEST

/* The length prefixes keep method and path apart: "GET" "/x" and "GE"
 * "T/x" are different requests. */
START_TEST(method_path_boundary)
{
	struct request_auth a, b;
	uint8_t sig[SIGN_BYTES];

	keys_init();
	memset(&a, 0x11, sizeof a);
	a.method = "GET";
	a.path = "/x";
	memcpy(a.device, pk_b, 32);
	b = a;
	b.method = "GE";
	b.path = "T/x";
	ck_assert_int_eq(request_sign(&a, sk_b, sig), BS_OK);
	ck_assert_int_eq(request_verify(&a, sig), BS_OK);
	ck_assert_int_eq(request_verify(&b, sig), BS_ESIGNATURE);
}
END_TEST

/* A signature made with another key than the device's named one. */
START_TEST(signed_by_other_key)
{
	struct kat_req k;
	struct request_auth ra;
	uint8_t sig[SIGN_BYTES];

	keys_init();
	kat_req_load("get-pull", &k);
	kat_req_auth(&k, &ra);
	ck_assert_int_eq(request_sign(&ra, sk_c, sig), BS_OK);
	ck_assert_int_eq(request_verify(&ra, sig), BS_ESIGNATURE);
	memcpy(ra.device, pk_c, 32);
	ck_assert_int_eq(request_verify(&ra, sig), BS_ESIGNATURE);
	/* Signed by C for C: fine. */
	ck_assert_int_eq(request_sign(&ra, sk_c, sig), BS_OK);
	ck_assert_int_eq(request_verify(&ra, sig), BS_OK);
}
END_TEST

START_TEST(length_limits)
{
	static char method[REQUEST_METHOD_MAX + 2];
	static char path[REQUEST_PATH_MAX + 2];
	struct request_auth ra;
	uint8_t sig[SIGN_BYTES], untouched[SIGN_BYTES];

	keys_init();
	memset(&ra, 0x22, sizeof ra);
	memcpy(ra.device, pk_b, 32);
	memset(method, 'M', REQUEST_METHOD_MAX);
	memset(path, '/', REQUEST_PATH_MAX);
	ra.method = method;
	ra.path = path;
	ck_assert_int_eq(request_sign(&ra, sk_b, sig), BS_OK);
	ck_assert_int_eq(request_verify(&ra, sig), BS_OK);
	ck_assert_int_eq(independent_verify(&ra, sig), 0);

#define REFUSED(mutate)                                                       \
	do {                                                                  \
		ra.method = method;                                           \
		ra.path = path;                                               \
		mutate;                                                       \
		memset(sig, 0xee, sizeof sig);                                \
		memcpy(untouched, sig, sizeof sig);                           \
		ck_assert_int_eq(request_sign(&ra, sk_b, sig), BS_EINVALID);  \
		ck_assert_mem_eq(sig, untouched, SIGN_BYTES);                 \
		ck_assert_int_eq(request_verify(&ra, sig), BS_EINVALID);      \
	} while (0)

	REFUSED(method[REQUEST_METHOD_MAX] = 'M');
	method[REQUEST_METHOD_MAX] = '\0';
	REFUSED(path[REQUEST_PATH_MAX] = '/');
	path[REQUEST_PATH_MAX] = '\0';
	REFUSED(ra.method = "");
	REFUSED(ra.path = "");
#undef REFUSED
	/* Length 1 each is fine. */
	ra.method = "G";
	ra.path = "/";
	ck_assert_int_eq(request_sign(&ra, sk_b, sig), BS_OK);
	ck_assert_int_eq(request_verify(&ra, sig), BS_OK);
}
END_TEST

/* ---- signatures ---- */

START_TEST(signature_flips)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	char names[8][32];
	size_t count, v, i, m;

	keys_init();
	count = kat_names(VECTORS, NULL, names, 8);
	for (v = 0; v < count; v++) {
		struct kat_req k;
		struct request_auth ra;
		uint8_t sig[SIGN_BYTES];

		kat_req_load(names[v], &k);
		kat_req_auth(&k, &ra);
		for (i = 0; i < SIGN_BYTES; i++) {
			for (m = 0; m < sizeof masks; m++) {
				memcpy(sig, k.sig, SIGN_BYTES);
				sig[i] ^= masks[m];
				ck_assert_int_eq(request_verify(&ra, sig),
						 BS_ESIGNATURE);
			}
		}
	}
}
END_TEST

START_TEST(malleated_signature_refused)
{
	static const uint8_t order[32] = {
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
		0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0x10,
	};
	struct kat_req k;
	struct request_auth ra;
	uint8_t sig[SIGN_BYTES];
	unsigned carry = 0;
	size_t i;

	keys_init();
	kat_req_load("get-pull", &k);
	kat_req_auth(&k, &ra);
	memcpy(sig, k.sig, SIGN_BYTES);
	for (i = 0; i < 32; i++) {
		carry += sig[32 + i] + order[i];
		sig[32 + i] = (uint8_t)carry;
		carry >>= 8;
	}
	ck_assert_uint_eq(carry, 0);
	ck_assert_int_eq(request_verify(&ra, sig), BS_ESIGNATURE);
}
END_TEST

START_TEST(signature_under_other_labels)
{
	struct kat_req k;
	struct request_auth ra;
	uint8_t sig[SIGN_BYTES], msg[64 + MSG_MAX];
	size_t llen = strlen(request_label);
	int kind;

	keys_init();
	ck_assert_str_eq(sign_label(SIGN_REQUEST), request_label);
	kat_req_load("post-push", &k);
	kat_req_auth(&k, &ra);
	for (kind = SIGN_CHANGESET; kind <= SIGN_DIGEST; kind++) {
		ck_assert_int_eq(sign_detached((enum sign_kind)kind, k.signed_,
					       k.signed_len, sk_b, sig),
				 BS_OK);
		ck_assert_int_eq(request_verify(&ra, sig),
				 kind == SIGN_REQUEST ? BS_OK : BS_ESIGNATURE);
	}
	/* The bare signed bytes, and the label without its 0x00. */
	ck_assert_int_eq(crypto_sign_detached(sig, NULL, k.signed_,
					      k.signed_len, sk_b),
			 0);
	ck_assert_int_eq(request_verify(&ra, sig), BS_ESIGNATURE);
	memcpy(msg, request_label, llen);
	memcpy(msg + llen, k.signed_, k.signed_len);
	ck_assert_int_eq(crypto_sign_detached(sig, NULL, msg,
					      llen + k.signed_len, sk_b),
			 0);
	ck_assert_int_eq(request_verify(&ra, sig), BS_ESIGNATURE);
}
END_TEST

/* A signature in the layout before challenges were 16 bytes (a 32-byte
 * challenge) does not verify for the challenge's first 16 bytes: an old
 * client's request is refused, not misread. */
START_TEST(old_32_byte_challenge_refused)
{
	struct kat_req k;
	struct request_auth ra;
	uint8_t msg[sizeof request_label + MSG_MAX], sig[SIGN_BYTES];
	size_t n;

	keys_init();
	kat_req_load("post-push", &k);
	kat_req_auth(&k, &ra);
	memcpy(msg, request_label, sizeof request_label);
	n = sizeof request_label + signed_bytes(&ra, msg + sizeof request_label);
	/* the 16 bytes more of the challenge go before the device key */
	memmove(msg + n - 32 + 16, msg + n - 32, 32);
	memset(msg + n - 32, 0x5a, 16);
	n += 16;
	ck_assert_int_eq(crypto_sign_detached(sig, NULL, msg, n, sk_b), 0);
	ck_assert_int_eq(crypto_sign_verify_detached(sig, msg, n, pk_b), 0);
	ck_assert_int_eq(request_verify(&ra, sig), BS_ESIGNATURE);
}
END_TEST

START_TEST(roundtrip_random)
{
	unsigned seed = 2718;
	static char method[REQUEST_METHOD_MAX + 1], path[REQUEST_PATH_MAX + 1];
	int i;

	keys_init();
	for (i = 0; i < 300; i++) {
		struct request_auth ra;
		uint8_t sig[SIGN_BYTES];
		size_t mlen = 1 + (size_t)rand_r(&seed) % REQUEST_METHOD_MAX;
		size_t plen = 1 + (size_t)rand_r(&seed) % REQUEST_PATH_MAX;
		size_t j;
		int use_c = rand_r(&seed) & 1;

		if (i % 10 == 0)
			plen = 127 + (size_t)(i % 3); /* varint boundary */
		for (j = 0; j < mlen; j++)
			method[j] = (char)(1 + rand_r(&seed) % 255);
		method[mlen] = '\0';
		for (j = 0; j < plen; j++)
			path[j] = (char)(1 + rand_r(&seed) % 255);
		path[plen] = '\0';
		ra.method = method;
		ra.path = path;
		for (j = 0; j < 32; j++)
			ra.body_hash[j] = (uint8_t)rand_r(&seed);
		for (j = 0; j < REQUEST_CHALLENGE_BYTES; j++)
			ra.challenge[j] = (uint8_t)rand_r(&seed);
		memcpy(ra.device, use_c ? pk_c : pk_b, 32);
		ck_assert_int_eq(request_sign(&ra, use_c ? sk_c : sk_b, sig),
				 BS_OK);
		ck_assert_int_eq(request_verify(&ra, sig), BS_OK);
		ck_assert_int_eq(independent_verify(&ra, sig), 0);
		ra.challenge[rand_r(&seed) % REQUEST_CHALLENGE_BYTES] ^= 0x40;
		ck_assert_int_eq(request_verify(&ra, sig), BS_ESIGNATURE);
	}
}
END_TEST

START_TEST(resource_failures)
{
	struct kat_req k;
	struct request_auth ra;
	uint8_t sig[SIGN_BYTES];
	long n;

	keys_init();
	kat_req_load("limits", &k);
	kat_req_auth(&k, &ra);
	/* The first allocation (the signed bytes) and the second (the
	 * signing input) each fail cleanly. */
	for (n = 0; n < 2; n++) {
		mem_fail_after(n);
		ck_assert_int_eq(request_sign(&ra, sk_c, sig), BS_ENOMEM);
		mem_fail_after(n);
		ck_assert_int_eq(request_verify(&ra, k.sig), BS_ENOMEM);
		mem_fail_reset();
	}
	ck_assert_int_eq(request_sign(&ra, sk_c, sig), BS_OK);
	ck_assert_mem_eq(sig, k.sig, SIGN_BYTES);
	ck_assert_int_eq(request_verify(&ra, k.sig), BS_OK);
}
END_TEST

static Suite *request_suite(void)
{
	Suite *s = suite_create("request");
	TCase *kat = tcase_create("kat");
	TCase *parts = tcase_create("parts");
	TCase *sig = tcase_create("signature");

	tcase_add_test(kat, kat_requests);
	tcase_add_test(kat, roundtrip_random);
	tcase_add_test(parts, any_part_changed_fails);
	tcase_add_test(parts, method_path_boundary);
	tcase_add_test(parts, signed_by_other_key);
	tcase_add_test(parts, length_limits);
	tcase_add_test(parts, resource_failures);
	tcase_add_test(parts, old_32_byte_challenge_refused);
	tcase_add_test(sig, signature_flips);
	tcase_add_test(sig, malleated_signature_refused);
	tcase_add_test(sig, signature_under_other_labels);
	suite_add_tcase(s, kat);
	suite_add_tcase(s, parts);
	suite_add_tcase(s, sig);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(request_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
