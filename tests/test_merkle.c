/* test_merkle.c - Check suite for protocol/merkle: the published RFC 6962
 * vectors (roots, inclusion and consistency proofs, generated and
 * verified), a corruption table, the compact frontier and its encoding,
 * and property tests against a direct transcription of RFC 9162. */
#include <check.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mem.h"
#include "merkle.h"
#include "sign.h"
#include "wire.h"

#define H HASH_BYTES

/* ---- helpers ---------------------------------------------------------- */

static void hex_decode(uint8_t *out, size_t n, const char *hex)
{
	size_t i;

	ck_assert_msg(strlen(hex) == 2 * n, "bad hex length: %s", hex);
	for (i = 0; i < n; i++) {
		unsigned x;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &x), 1);
		out[i] = (uint8_t)x;
	}
}

static uint64_t rand64(unsigned *seed)
{
	return ((uint64_t)rand_r(seed) << 62) ^ ((uint64_t)rand_r(seed) << 31) ^
	       (uint64_t)rand_r(seed);
}

static int path_eq(const struct merkle_path *a, const struct merkle_path *b)
{
	return a->count == b->count &&
	       memcmp(a->hash, b->hash, a->count * H) == 0;
}

/* ---- a direct transcription of RFC 9162 2.1.1, 2.1.3.1, 2.1.4.1 -------
 * Recursive and slow on purpose: it shares no code with merkle.c, so a
 * bug there cannot hide behind the same bug here. */

static uint64_t ref_k(uint64_t n)
{
	uint64_t k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

static void ref_mth(const uint8_t *d, uint64_t n, uint8_t out[H])
{
	uint8_t l[H], r[H], in[1 + 2 * H];
	uint64_t k;

	if (n == 0) {
		hash_sha256(out, NULL, 0, NULL, 0);
		return;
	}
	if (n == 1) {
		memcpy(out, d, H);
		return;
	}
	k = ref_k(n);
	ref_mth(d, k, l);
	ref_mth(d + k * H, n - k, r);
	in[0] = 1;
	memcpy(in + 1, l, H);
	memcpy(in + 1 + H, r, H);
	hash_sha256(out, in, sizeof in, NULL, 0);
}

static void ref_push(struct merkle_path *p, const uint8_t *d, uint64_t n)
{
	ck_assert_uint_lt(p->count, MERKLE_MAX_PROOF);
	ref_mth(d, n, p->hash[p->count++]);
}

static void ref_path(uint64_t m, const uint8_t *d, uint64_t n,
		     struct merkle_path *p)
{
	uint64_t k;

	if (n <= 1)
		return;
	k = ref_k(n);
	if (m < k) {
		ref_path(m, d, k, p);
		ref_push(p, d + k * H, n - k);
	} else {
		ref_path(m - k, d + k * H, n - k, p);
		ref_push(p, d, k);
	}
}

static void ref_subproof(uint64_t m, const uint8_t *d, uint64_t n, int b,
			 struct merkle_path *p)
{
	uint64_t k;

	if (m == n) {
		if (!b)
			ref_push(p, d, n);
		return;
	}
	k = ref_k(n);
	if (m <= k) {
		ref_subproof(m, d, k, b, p);
		ref_push(p, d + k * H, n - k);
	} else {
		ref_subproof(m - k, d + k * H, n - k, 0, p);
		ref_push(p, d, k);
	}
}

static void ref_proof(uint64_t m, const uint8_t *d, uint64_t n,
		      struct merkle_path *p)
{
	p->count = 0;
	if (m != 0 && m != n)
		ref_subproof(m, d, n, 1, p);
}

/* ---- the published vectors (tests/vectors/rfc6962.txt) ---------------- */

#define VEC_MAX 64

struct vec_proof {
	uint64_t a, b;
	struct merkle_path path;
};

static struct {
	int loaded;
	uint8_t leaf[VEC_MAX * H]; /* leaf hashes */
	uint64_t nleaves;
	uint8_t root[VEC_MAX][H];
	int have_root[VEC_MAX];
	struct vec_proof inc[VEC_MAX];
	size_t ninc;
	struct vec_proof con[VEC_MAX];
	size_t ncon;
} vec;

static void vec_proof_parse(struct vec_proof *v, char **save)
{
	char *tok;

	tok = strtok_r(NULL, " \t\r\n", save);
	ck_assert_ptr_nonnull(tok);
	v->a = strtoull(tok, NULL, 10);
	tok = strtok_r(NULL, " \t\r\n", save);
	ck_assert_ptr_nonnull(tok);
	v->b = strtoull(tok, NULL, 10);
	v->path.count = 0;
	while ((tok = strtok_r(NULL, " \t\r\n", save)) != NULL) {
		ck_assert_uint_lt(v->path.count, MERKLE_MAX_PROOF);
		hex_decode(v->path.hash[v->path.count++], H, tok);
	}
}

static void vectors_load(void)
{
	const char *dir = getenv("BRANCHSYNC_VECTORS");
	char path[4096], *line = NULL, *save, *tok;
	size_t cap = 0;
	FILE *f;

	if (vec.loaded)
		return;
	ck_assert_msg(dir != NULL, "BRANCHSYNC_VECTORS is not set");
	snprintf(path, sizeof path, "%s/rfc6962.txt", dir);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (getline(&line, &cap, f) != -1) {
		tok = strtok_r(line, " \t\r\n", &save);
		if (!tok || tok[0] == '#')
			continue;
		if (strcmp(tok, "leaf") == 0) {
			uint8_t data[256];
			size_t n = 0;

			tok = strtok_r(NULL, " \t\r\n", &save);
			ck_assert_uint_eq(strtoull(tok, NULL, 10), vec.nleaves);
			tok = strtok_r(NULL, " \t\r\n", &save);
			ck_assert_ptr_nonnull(tok);
			if (strcmp(tok, "-") != 0) {
				n = strlen(tok) / 2;
				ck_assert_uint_le(n, sizeof data);
				hex_decode(data, n, tok);
			}
			ck_assert_uint_lt(vec.nleaves, VEC_MAX);
			merkle_leaf_hash(vec.leaf + vec.nleaves * H, data, n);
			vec.nleaves++;
		} else if (strcmp(tok, "root") == 0) {
			uint64_t n;

			tok = strtok_r(NULL, " \t\r\n", &save);
			n = strtoull(tok, NULL, 10);
			ck_assert_uint_lt(n, VEC_MAX);
			tok = strtok_r(NULL, " \t\r\n", &save);
			hex_decode(vec.root[n], H, tok);
			vec.have_root[n] = 1;
		} else if (strcmp(tok, "inclusion") == 0) {
			ck_assert_uint_lt(vec.ninc, VEC_MAX);
			vec_proof_parse(&vec.inc[vec.ninc++], &save);
		} else if (strcmp(tok, "consistency") == 0) {
			ck_assert_uint_lt(vec.ncon, VEC_MAX);
			vec_proof_parse(&vec.con[vec.ncon++], &save);
		} else {
			ck_abort_msg("unknown record %s in %s", tok, path);
		}
	}
	free(line);
	fclose(f);
	/* Every root of every prefix is known; the tables below rely on it. */
	ck_assert_uint_eq(vec.nleaves, 8);
	for (size_t n = 0; n <= vec.nleaves; n++)
		ck_assert_msg(vec.have_root[n], "no root for size %zu", n);
	ck_assert_uint_ge(vec.ninc, 5);
	ck_assert_uint_ge(vec.ncon, 5);
	vec.loaded = 1;
}

static void vec_source(struct merkle_source *src, struct merkle_array *arr)
{
	arr->hashes = vec.leaf;
	arr->count = vec.nleaves;
	merkle_source_from_array(src, arr);
}

/* Whether p is what the reference gives for these parameters over the
 * vector leaves: then a claim made with it and true roots is true. */
static int honest_inclusion(uint64_t index, uint64_t size,
			    const struct merkle_path *p)
{
	struct merkle_path ref = {0};

	ref_path(index, vec.leaf, size, &ref);
	return path_eq(&ref, p);
}

static int honest_consistency(uint64_t old_size, uint64_t new_size,
			      const struct merkle_path *p)
{
	struct merkle_path ref;

	ref_proof(old_size, vec.leaf, new_size, &ref);
	return path_eq(&ref, p);
}

/* ---- a source with a complete interior-node cache --------------------- */

#define CACHE_LEAVES 512
#define CACHE_LEVELS 10 /* 2^9 = 512 */

struct cache {
	const uint8_t *leaves;
	uint64_t count;
	uint8_t node[CACHE_LEVELS][CACHE_LEAVES][H];
	long leaf_calls, subtree_calls, hits;
};

static enum bs_status cache_leaf(void *ctx, uint64_t index, uint8_t out[H])
{
	struct cache *c = ctx;

	c->leaf_calls++;
	ck_assert_uint_lt(index, c->count);
	memcpy(out, c->leaves + index * H, H);
	return BS_OK;
}

static enum bs_status cache_subtree(void *ctx, uint64_t start, unsigned level,
				    uint8_t out[H], bool *found)
{
	struct cache *c = ctx;
	uint64_t len = (uint64_t)1 << level;

	c->subtree_calls++;
	/* The contract merkle.h promises to cache implementers. */
	ck_assert_uint_ge(level, 1);
	ck_assert_uint_eq(start % len, 0);
	ck_assert_uint_le(start + len, c->count);
	if (level < CACHE_LEVELS) {
		memcpy(out, c->node[level][start >> level], H);
		*found = true;
		c->hits++;
	}
	return BS_OK;
}

static void cache_fill(struct cache *c, struct merkle_source *src,
		       const uint8_t *leaves, uint64_t count)
{
	unsigned l;
	uint64_t j;

	ck_assert_uint_le(count, CACHE_LEAVES);
	memset(c, 0, sizeof *c);
	c->leaves = leaves;
	c->count = count;
	for (j = 0; j < count; j++)
		memcpy(c->node[0][j], leaves + j * H, H);
	for (l = 1; l < CACHE_LEVELS; l++)
		for (j = 0; (j + 1) << l <= count; j++)
			merkle_node_hash(c->node[l][j], c->node[l - 1][2 * j],
					 c->node[l - 1][2 * j + 1]);
	src->leaf = cache_leaf;
	src->subtree = cache_subtree;
	src->ctx = c;
}

/* Random leaves whose data all differ (the index is part of it), so that
 * "wrong leaf" can never be right by accident. */
static void random_leaves(uint8_t *out, uint64_t n, unsigned *seed)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		uint8_t data[48];
		size_t len = 8 + (size_t)(rand_r(seed) % 40), j;

		for (j = 0; j < 8; j++)
			data[j] = (uint8_t)(i >> (8 * j));
		for (; j < len; j++)
			data[j] = (uint8_t)rand_r(seed);
		merkle_leaf_hash(out + i * H, data, len);
	}
}

/* ---- hashing ---------------------------------------------------------- */

START_TEST(hash_rules)
{
	uint8_t out[H], want[H], l[H], r[H], a[H];

	merkle_empty_root(out);
	hex_decode(
	    want, H,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_mem_eq(out, want, H);
	/* RFC 6962's root of the one-leaf tree over empty data. */
	merkle_leaf_hash(out, NULL, 0);
	hex_decode(
	    want, H,
	    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	ck_assert_mem_eq(out, want, H);

	/* Domain separation: a node is not the leaf of its own bytes. */
	merkle_leaf_hash(l, (const uint8_t *)"a", 1);
	merkle_leaf_hash(r, (const uint8_t *)"b", 1);
	merkle_node_hash(out, l, r);
	{
		uint8_t cat[2 * H];

		memcpy(cat, l, H);
		memcpy(cat + H, r, H);
		merkle_leaf_hash(a, cat, sizeof cat);
		ck_assert_mem_ne(out, a, H);
	}
	/* Output may alias either input. */
	memcpy(a, l, H);
	merkle_node_hash(a, a, r);
	ck_assert_mem_eq(a, out, H);
	memcpy(a, r, H);
	merkle_node_hash(a, l, a);
	ck_assert_mem_eq(a, out, H);
	/* Order matters. */
	merkle_node_hash(a, r, l);
	ck_assert_mem_ne(a, out, H);
}
END_TEST

/* Inputs of 4 KiB and more take another SHA-256 (protocol/sign.c): the
 * FIPS 180-2 vector of a million 'a's, split in two, and libsodium's
 * answer around the switch and for a leaf of a 1 MiB entry. */
START_TEST(hash_large_inputs)
{
	static const size_t sizes[] = { 4094, 4095, 4096, 4097, 65549,
					1u << 20 };
	uint8_t out[H], want[H], *p = mem_alloc(1000001);
	size_t i, k;

	ck_assert_ptr_nonnull(p);
	memset(p, 'a', 1000000);
	hash_sha256(out, p, 300001, p + 300001, 699999);
	hex_decode(
	    want, H,
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	ck_assert_mem_eq(out, want, H);
	for (i = 0; i < 1000001; i++)
		p[i] = (uint8_t)(i * 131 + (i >> 9));
	for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		crypto_hash_sha256(want, p, sizes[k]);
		hash_sha256(out, p, sizes[k], NULL, 0);
		ck_assert_mem_eq(out, want, H);
		hash_sha256(out, p, 1, p + 1, sizes[k] - 1);
		ck_assert_mem_eq(out, want, H);
		merkle_leaf_hash(out, p + 1, sizes[k] - 1);
		if (p[0] == 0)
			ck_assert_mem_eq(out, want, H);
	}
	p[0] = 0;
	crypto_hash_sha256(want, p, 1000001);
	merkle_leaf_hash(out, p + 1, 1000000);
	ck_assert_mem_eq(out, want, H);
	mem_free(p);
}
END_TEST

/* ---- the published vectors -------------------------------------------- */

START_TEST(vector_roots)
{
	struct merkle_source src;
	struct merkle_array arr;
	struct merkle_compact c, built;
	uint8_t out[H];
	uint64_t n;

	vectors_load();
	vec_source(&src, &arr);
	merkle_compact_init(&c);
	for (n = 0; n <= vec.nleaves; n++) {
		ck_assert_int_eq(merkle_root(&src, n, out), BS_OK);
		ck_assert_mem_eq(out, vec.root[n], H);
		ref_mth(vec.leaf, n, out);
		ck_assert_mem_eq(out, vec.root[n], H);
		ck_assert_uint_eq(merkle_compact_size(&c), n);
		merkle_compact_root(&c, out);
		ck_assert_mem_eq(out, vec.root[n], H);
		ck_assert_int_eq(merkle_compact_build(&built, &src, n), BS_OK);
		ck_assert_mem_eq(&built, &c, sizeof c);
		if (n < vec.nleaves)
			ck_assert_int_eq(
			    merkle_compact_append(&c, vec.leaf + n * H), BS_OK);
	}
}
END_TEST

START_TEST(vector_inclusion)
{
	struct merkle_source src;
	struct merkle_array arr;
	struct merkle_path got, ref;
	size_t i;

	vectors_load();
	vec_source(&src, &arr);
	for (i = 0; i < vec.ninc; i++) {
		const struct vec_proof *v = &vec.inc[i];

		ck_assert_int_eq(merkle_inclusion_proof(&src, v->a, v->b, &got),
				 BS_OK);
		ck_assert_msg(path_eq(&got, &v->path),
			      "inclusion %llu %llu differs from the vector",
			      (unsigned long long)v->a,
			      (unsigned long long)v->b);
		ck_assert_uint_eq(merkle_inclusion_length(v->a, v->b),
				  v->path.count);
		ref.count = 0;
		ref_path(v->a, vec.leaf, v->b, &ref);
		ck_assert(path_eq(&ref, &v->path));
		ck_assert_int_eq(merkle_verify_inclusion(vec.leaf + v->a * H,
							 v->a, v->b, &v->path,
							 vec.root[v->b]),
				 BS_OK);
	}
}
END_TEST

START_TEST(vector_consistency)
{
	struct merkle_source src;
	struct merkle_array arr;
	struct merkle_path got, ref;
	size_t i;

	vectors_load();
	vec_source(&src, &arr);
	for (i = 0; i < vec.ncon; i++) {
		const struct vec_proof *v = &vec.con[i];

		ck_assert_int_eq(
		    merkle_consistency_proof(&src, v->a, v->b, &got), BS_OK);
		ck_assert_msg(path_eq(&got, &v->path),
			      "consistency %llu %llu differs from the vector",
			      (unsigned long long)v->a,
			      (unsigned long long)v->b);
		ck_assert_uint_eq(merkle_consistency_length(v->a, v->b),
				  v->path.count);
		ref_proof(v->a, vec.leaf, v->b, &ref);
		ck_assert(path_eq(&ref, &v->path));
		ck_assert_int_eq(
		    merkle_verify_consistency(v->a, v->b, vec.root[v->a],
					      vec.root[v->b], &v->path),
		    BS_OK);
	}
}
END_TEST

/* ---- corruption tables ------------------------------------------------ */

static void path_remove(struct merkle_path *p, const struct merkle_path *from,
			size_t at)
{
	*p = *from;
	memmove(p->hash[at], p->hash[at + 1], (p->count - at - 1) * H);
	p->count--;
}

static void path_insert(struct merkle_path *p, const struct merkle_path *from,
			size_t at, const uint8_t h[H])
{
	*p = *from;
	memmove(p->hash[at + 1], p->hash[at], (p->count - at) * H);
	memcpy(p->hash[at], h, H);
	p->count++;
}

/* Every way of damaging a path that must be caught: each bit flipped, each
 * hash removed, a hash added at every position (a zero hash, a copy of
 * a neighbour, and the root or leaf itself). check() returns the status
 * of verifying the damaged path. */
static void corrupt_paths(const struct merkle_path *good, const uint8_t *extra,
			  enum bs_status (*check)(const struct merkle_path *,
						  const void *),
			  const void *arg)
{
	static const uint8_t zero[H];
	struct merkle_path p;
	size_t i, bit;

	for (i = 0; i < good->count; i++)
		for (bit = 0; bit < 8 * H; bit++) {
			p = *good;
			p.hash[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			ck_assert_int_eq(check(&p, arg), BS_EPROOF);
		}
	for (i = 0; i < good->count; i++) {
		path_remove(&p, good, i);
		ck_assert_int_eq(check(&p, arg), BS_EPROOF);
	}
	for (i = 0; i <= good->count; i++) {
		path_insert(&p, good, i, zero);
		ck_assert_int_eq(check(&p, arg), BS_EPROOF);
		path_insert(&p, good, i, extra);
		ck_assert_int_eq(check(&p, arg), BS_EPROOF);
		if (good->count) {
			path_insert(&p, good, i,
				    good->hash[i < good->count ? i : i - 1]);
			ck_assert_int_eq(check(&p, arg), BS_EPROOF);
		}
	}
	/* Too long to be any proof at all. */
	p = *good;
	p.count = MERKLE_MAX_PROOF + 1;
	ck_assert_int_eq(check(&p, arg), BS_EINVALID);
}

struct inc_case {
	const uint8_t *leaf;
	uint64_t index, size;
	const uint8_t *root;
};

static enum bs_status inc_check(const struct merkle_path *p, const void *arg)
{
	const struct inc_case *c = arg;

	return merkle_verify_inclusion(c->leaf, c->index, c->size, p, c->root);
}

START_TEST(vector_inclusion_corrupt)
{
	size_t i;

	vectors_load();
	for (i = 0; i < vec.ninc; i++) {
		const struct vec_proof *v = &vec.inc[i];
		const uint8_t *leaf = vec.leaf + v->a * H;
		struct inc_case c = {leaf, v->a, v->b, vec.root[v->b]};
		uint8_t bad[H];
		uint64_t j, s;
		size_t bit;

		ck_assert_int_eq(inc_check(&v->path, &c), BS_OK);
		corrupt_paths(&v->path, vec.root[v->b], inc_check, &c);
		corrupt_paths(&v->path, leaf, inc_check, &c);

		/* Wrong index: every other position of the tree, then
		 * positions outside it. */
		for (j = 0; j < v->b; j++)
			if (j != v->a)
				ck_assert_int_eq(merkle_verify_inclusion(
						     leaf, j, v->b, &v->path,
						     vec.root[v->b]),
						 BS_EPROOF);
		ck_assert_int_eq(merkle_verify_inclusion(leaf, v->b, v->b,
							 &v->path,
							 vec.root[v->b]),
				 BS_EINVALID);
		ck_assert_int_eq(merkle_verify_inclusion(leaf, UINT64_MAX, v->b,
							 &v->path,
							 vec.root[v->b]),
				 BS_EINVALID);
		/* Wrong size, with the true root of that size: fails unless
		 * the path is also the honest one for that size. */
		for (s = v->a + 1; s <= vec.nleaves; s++)
			if (s != v->b)
				ck_assert_int_eq(
				    merkle_verify_inclusion(
					leaf, v->a, s, &v->path, vec.root[s]),
				    honest_inclusion(v->a, s, &v->path)
					? BS_OK
					: BS_EPROOF);
		/* Wrong size with the claimed root: a height the path does
		 * not have. (Sizes of the same shape would pass: the size is
		 * bound by the signed checkpoint, not by the proof.) */
		ck_assert_int_eq(merkle_verify_inclusion(leaf, v->a, v->b * 2,
							 &v->path,
							 vec.root[v->b]),
				 BS_EPROOF);
		if (v->b / 2 > v->a)
			ck_assert_int_eq(
			    merkle_verify_inclusion(leaf, v->a, v->b / 2,
						    &v->path, vec.root[v->b]),
			    BS_EPROOF);
		ck_assert_int_eq(merkle_verify_inclusion(
				     leaf, v->a, 0, &v->path, vec.root[v->b]),
				 BS_EINVALID);
		ck_assert_int_eq(
		    merkle_verify_inclusion(leaf, v->a, MERKLE_MAX_SIZE + 1,
					    &v->path, vec.root[v->b]),
		    BS_EINVALID);
		/* Wrong leaf: every other leaf, and every bit flipped. */
		for (j = 0; j < vec.nleaves; j++)
			if (j != v->a)
				ck_assert_int_eq(merkle_verify_inclusion(
						     vec.leaf + j * H, v->a,
						     v->b, &v->path,
						     vec.root[v->b]),
						 BS_EPROOF);
		for (bit = 0; bit < 8 * H; bit++) {
			memcpy(bad, leaf, H);
			bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			ck_assert_int_eq(
			    merkle_verify_inclusion(bad, v->a, v->b, &v->path,
						    vec.root[v->b]),
			    BS_EPROOF);
			memcpy(bad, vec.root[v->b], H);
			bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			ck_assert_int_eq(merkle_verify_inclusion(
					     leaf, v->a, v->b, &v->path, bad),
					 BS_EPROOF);
		}
		/* The root of another size. */
		for (s = 0; s <= vec.nleaves; s++)
			if (s != v->b)
				ck_assert_int_eq(merkle_verify_inclusion(
						     leaf, v->a, v->b, &v->path,
						     vec.root[s]),
						 BS_EPROOF);
	}
}
END_TEST

struct con_case {
	uint64_t old_size, new_size;
	const uint8_t *old_root, *new_root;
};

static enum bs_status con_check(const struct merkle_path *p, const void *arg)
{
	const struct con_case *c = arg;

	return merkle_verify_consistency(c->old_size, c->new_size, c->old_root,
					 c->new_root, p);
}

START_TEST(vector_consistency_corrupt)
{
	size_t i;

	vectors_load();
	for (i = 0; i < vec.ncon; i++) {
		const struct vec_proof *v = &vec.con[i];
		struct con_case c = {v->a, v->b, vec.root[v->a],
				     vec.root[v->b]};
		uint8_t bad[H];
		uint64_t s;
		size_t bit;

		ck_assert_int_eq(con_check(&v->path, &c), BS_OK);
		corrupt_paths(&v->path, vec.root[v->a], con_check, &c);
		corrupt_paths(&v->path, vec.root[v->b], con_check, &c);

		/* Wrong old size or new size, each with its true root: fails
		 * unless the claim is true and the path the honest one for it
		 * (0 -> 1 with the empty path of 1 -> 1, for instance). */
		for (s = 0; s <= v->b; s++)
			if (s != v->a)
				ck_assert_int_eq(
				    merkle_verify_consistency(
					s, v->b, vec.root[s], vec.root[v->b],
					&v->path),
				    honest_consistency(s, v->b, &v->path)
					? BS_OK
					: BS_EPROOF);
		for (s = v->a; s <= vec.nleaves; s++)
			if (s != v->b)
				ck_assert_int_eq(
				    merkle_verify_consistency(
					v->a, s, vec.root[v->a], vec.root[s],
					&v->path),
				    honest_consistency(v->a, s, &v->path)
					? BS_OK
					: BS_EPROOF);
		/* Impossible sizes. */
		ck_assert_int_eq(
		    merkle_verify_consistency(v->b + 1, v->b, vec.root[v->a],
					      vec.root[v->b], &v->path),
		    BS_EINVALID);
		ck_assert_int_eq(merkle_verify_consistency(
				     v->a, MERKLE_MAX_SIZE + 1, vec.root[v->a],
				     vec.root[v->b], &v->path),
				 BS_EINVALID);
		/* Swapped roots (the same root twice when sizes are equal,
		 * which is then correct). */
		ck_assert_int_eq(
		    merkle_verify_consistency(v->a, v->b, vec.root[v->b],
					      vec.root[v->a], &v->path),
		    v->a == v->b ? BS_OK : BS_EPROOF);
		/* Every bit of either root. */
		for (bit = 0; bit < 8 * H; bit++) {
			memcpy(bad, vec.root[v->a], H);
			bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			ck_assert_int_eq(
			    merkle_verify_consistency(v->a, v->b, bad,
						      vec.root[v->b], &v->path),
			    BS_EPROOF);
			memcpy(bad, vec.root[v->b], H);
			bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			ck_assert_int_eq(
			    merkle_verify_consistency(
				v->a, v->b, vec.root[v->a], bad, &v->path),
			    BS_EPROOF);
		}
	}
}
END_TEST

/* The cases RFC 9162 leaves to the implementer. */
START_TEST(consistency_edges)
{
	struct merkle_path empty = {0}, one = {0};
	uint8_t zero[H] = {0};

	vectors_load();
	one.count = 1;
	memcpy(one.hash[0], vec.root[3], H);
	/* From the empty tree: empty path, and the old root must be the
	 * empty root. */
	ck_assert_int_eq(
	    merkle_verify_consistency(0, 5, vec.root[0], vec.root[5], &empty),
	    BS_OK);
	ck_assert_int_eq(
	    merkle_verify_consistency(0, 0, vec.root[0], vec.root[0], &empty),
	    BS_OK);
	ck_assert_int_eq(
	    merkle_verify_consistency(0, 5, zero, vec.root[5], &empty),
	    BS_EPROOF);
	ck_assert_int_eq(merkle_verify_consistency(0, 0, zero, zero, &empty),
			 BS_EPROOF);
	ck_assert_int_eq(
	    merkle_verify_consistency(0, 5, vec.root[0], vec.root[5], &one),
	    BS_EPROOF);
	/* Equal sizes: empty path and equal roots. */
	ck_assert_int_eq(
	    merkle_verify_consistency(3, 3, vec.root[3], vec.root[3], &empty),
	    BS_OK);
	ck_assert_int_eq(
	    merkle_verify_consistency(3, 3, vec.root[3], vec.root[4], &empty),
	    BS_EPROOF);
	ck_assert_int_eq(
	    merkle_verify_consistency(3, 3, vec.root[3], vec.root[3], &one),
	    BS_EPROOF);
	/* Different sizes need a path, even when old is a power of two. */
	ck_assert_int_eq(
	    merkle_verify_consistency(4, 8, vec.root[4], vec.root[8], &empty),
	    BS_EPROOF);
	ck_assert_int_eq(
	    merkle_verify_consistency(3, 8, vec.root[3], vec.root[8], &empty),
	    BS_EPROOF);
}
END_TEST

/* ---- the frontier ----------------------------------------------------- */

START_TEST(frontier_known_answer)
{
	/* The frontier of the 7 vector leaves is root(4), then MTH(leaf 4,
	 * leaf 5) and leaf 6: the three hashes of the published consistency
	 * proof 6 -> 7, in reverse. */
	static const char *want_hex =
	    "07"
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
	    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
	    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f";
	uint8_t want[1 + 3 * H];
	struct merkle_compact c, back;
	struct buf b;
	uint64_t i;

	vectors_load();
	hex_decode(want, sizeof want, want_hex);
	merkle_compact_init(&c);
	for (i = 0; i < 7; i++)
		ck_assert_int_eq(merkle_compact_append(&c, vec.leaf + i * H),
				 BS_OK);
	buf_init(&b, MERKLE_FRONTIER_MAX_ENCODED);
	ck_assert_int_eq(merkle_compact_encode(&c, &b), BS_OK);
	ck_assert_uint_eq(b.len, sizeof want);
	ck_assert_mem_eq(b.data, want, sizeof want);
	ck_assert_int_eq(merkle_compact_decode(&back, b.data, b.len), BS_OK);
	ck_assert_mem_eq(&back, &c, sizeof c);

	/* The empty frontier is one zero byte. */
	merkle_compact_init(&c);
	buf_reset(&b);
	ck_assert_int_eq(merkle_compact_encode(&c, &b), BS_OK);
	ck_assert_uint_eq(b.len, 1);
	ck_assert_uint_eq(b.data[0], 0);
	buf_release(&b);
}
END_TEST

START_TEST(frontier_decode_strict)
{
	struct merkle_compact c, back, zero;
	uint8_t enc[MERKLE_FRONTIER_MAX_ENCODED + 1], tmp[H];
	struct buf b;
	size_t n, len;
	uint64_t i;

	vectors_load();
	merkle_compact_init(&zero);
	merkle_compact_init(&c);
	for (i = 0; i < 7; i++)
		ck_assert_int_eq(merkle_compact_append(&c, vec.leaf + i * H),
				 BS_OK);
	buf_init(&b, MERKLE_FRONTIER_MAX_ENCODED);
	ck_assert_int_eq(merkle_compact_encode(&c, &b), BS_OK);
	len = b.len;
	memcpy(enc, b.data, len);

	/* Truncated at every byte; a failed decode leaves the empty frontier.
	 */
	for (n = 0; n < len; n++) {
		memset(&back, 0xa5, sizeof back);
		ck_assert_int_eq(merkle_compact_decode(&back, enc, n),
				 BS_ETRUNCATED);
		ck_assert_mem_eq(&back, &zero, sizeof zero);
	}
	enc[len] = 0;
	ck_assert_int_eq(merkle_compact_decode(&back, enc, len + 1),
			 BS_ETRAILING);
	ck_assert_mem_eq(&back, &zero, sizeof zero);

	/* Overlong size: 7 as 0x87 0x00. */
	{
		uint8_t over[2 + 3 * H];

		over[0] = 0x87;
		over[1] = 0x00;
		memcpy(over + 2, enc + 1, 3 * H);
		ck_assert_int_eq(
		    merkle_compact_decode(&back, over, sizeof over),
		    BS_EOVERLONG);
	}

	/* The size limit: 2^63 decodes (one hash), and is full; 2^63 + 1
	 * does not. */
	{
		uint8_t big[10 + 2 * H];
		size_t vl;

		memset(big, 0x11, sizeof big);
		vl = wire_varint_encode(MERKLE_MAX_SIZE, big);
		ck_assert_uint_eq(vl, 10);
		ck_assert_int_eq(merkle_compact_decode(&back, big, vl + H),
				 BS_OK);
		ck_assert_uint_eq(merkle_compact_size(&back), MERKLE_MAX_SIZE);
		c = back;
		ck_assert_int_eq(merkle_compact_append(&back, vec.leaf),
				 BS_ELIMIT);
		ck_assert_mem_eq(&back, &c, sizeof c);
		merkle_compact_root(&back, tmp);
		ck_assert_mem_eq(tmp, big + vl, H);

		/* 2^63 + 1 would need two hashes; the limit comes first. */
		vl = wire_varint_encode(MERKLE_MAX_SIZE + 1, big);
		ck_assert_int_eq(merkle_compact_decode(&back, big, vl + 2 * H),
				 BS_ELIMIT);
		ck_assert_int_eq(merkle_compact_decode(&back, big, vl),
				 BS_ELIMIT);
		/* An encoder would refuse the same. */
		back.size = MERKLE_MAX_SIZE + 1;
		buf_reset(&b);
		ck_assert_int_eq(merkle_compact_encode(&back, &b), BS_EINVALID);
		ck_assert_uint_eq(b.len, 0);
	}

	/* The buffer's cap and running out of memory. */
	buf_release(&b);
	buf_init(&b, 10);
	ck_assert_int_eq(merkle_compact_encode(&c, &b), BS_ELIMIT);
	buf_release(&b);
	buf_init(&b, MERKLE_FRONTIER_MAX_ENCODED);
	mem_fail_after(0);
	ck_assert_int_eq(merkle_compact_encode(&c, &b), BS_ENOMEM);
	mem_fail_reset();
	buf_release(&b);
}
END_TEST

/* ---- properties ------------------------------------------------------- */

#define PROP_MAX 300

/* For every prefix of random logs: incremental frontier == batch root ==
 * reference root; the frontier round-trips through its encoding and
 * equals one built from the source, with and without a cache. */
START_TEST(property_compact_matches_batch)
{
	static uint8_t leaves[PROP_MAX * H];
	static struct cache cache;
	unsigned seed = 0x6962 + (unsigned)_i;
	struct merkle_source plain, cached;
	struct merkle_array arr = {leaves, PROP_MAX};
	struct merkle_compact c, back, built;
	uint8_t a[H], b2[H], r[H];
	struct buf b;
	uint64_t n;

	random_leaves(leaves, PROP_MAX, &seed);
	merkle_source_from_array(&plain, &arr);
	cache_fill(&cache, &cached, leaves, PROP_MAX);
	buf_init(&b, MERKLE_FRONTIER_MAX_ENCODED);
	merkle_compact_init(&c);
	for (n = 0; n <= PROP_MAX; n++) {
		merkle_compact_root(&c, a);
		ck_assert_int_eq(merkle_root(&plain, n, b2), BS_OK);
		ck_assert_mem_eq(a, b2, H);
		ref_mth(leaves, n, r);
		ck_assert_mem_eq(a, r, H);

		cache.leaf_calls = cache.subtree_calls = 0;
		ck_assert_int_eq(merkle_root(&cached, n, b2), BS_OK);
		ck_assert_mem_eq(a, b2, H);
		/* A full cache leaves at most the odd last leaf to fetch, and
		 * one subtree per set bit of the size. */
		ck_assert_int_le(cache.leaf_calls, 1);
		ck_assert_int_le(cache.subtree_calls, __builtin_popcountll(n));

		ck_assert_int_eq(merkle_compact_build(&built, &plain, n),
				 BS_OK);
		ck_assert_mem_eq(&built, &c, sizeof c);
		ck_assert_int_eq(merkle_compact_build(&built, &cached, n),
				 BS_OK);
		ck_assert_mem_eq(&built, &c, sizeof c);

		buf_reset(&b);
		ck_assert_int_eq(merkle_compact_encode(&c, &b), BS_OK);
		ck_assert_uint_eq(b.len,
				  wire_varint_size(n) +
				      H * (size_t)__builtin_popcountll(n));
		ck_assert_int_eq(merkle_compact_decode(&back, b.data, b.len),
				 BS_OK);
		ck_assert_mem_eq(&back, &c, sizeof c);

		if (n < PROP_MAX)
			ck_assert_int_eq(
			    merkle_compact_append(&c, leaves + n * H), BS_OK);
	}
	buf_release(&b);
}
END_TEST

/* Checks every inclusion proof of a tree of n random leaves, and every
 * consistency proof from each m <= n: generated with and without a cache,
 * equal to the reference, verifying, and caught when damaged. A damaged
 * claim must fail unless it is itself true, i.e. the path is exactly what
 * an honest log gives for it. */
static void check_tree(const uint8_t *leaves, uint64_t n, unsigned *seed)
{
	static struct cache cache;
	static uint8_t roots[PROP_MAX + 1][H];
	struct merkle_array arr = {leaves, n};
	struct merkle_source plain, cached;
	struct merkle_path p, q, ref;
	struct merkle_compact c;
	uint64_t i, m, x;

	merkle_source_from_array(&plain, &arr);
	cache_fill(&cache, &cached, leaves, n);
	merkle_compact_init(&c);
	for (m = 0; m <= n; m++) {
		merkle_compact_root(&c, roots[m]);
		if (m < n)
			ck_assert_int_eq(
			    merkle_compact_append(&c, leaves + m * H), BS_OK);
	}

	for (i = 0; i < n; i++) {
		const uint8_t *leaf = leaves + i * H;

		ck_assert_int_eq(merkle_inclusion_proof(&plain, i, n, &p),
				 BS_OK);
		ck_assert_int_eq(merkle_inclusion_proof(&cached, i, n, &q),
				 BS_OK);
		ck_assert(path_eq(&p, &q));
		ref.count = 0;
		ref_path(i, leaves, n, &ref);
		ck_assert(path_eq(&p, &ref));
		ck_assert_uint_eq(merkle_inclusion_length(i, n), p.count);
		ck_assert_int_eq(
		    merkle_verify_inclusion(leaf, i, n, &p, roots[n]), BS_OK);
		if (p.count) {
			q = p;
			x = (uint64_t)rand_r(seed) % (p.count * 8 * H);
			q.hash[x / (8 * H)][x % (8 * H) / 8] ^=
			    (uint8_t)(1u << (x % 8));
			ck_assert_int_eq(
			    merkle_verify_inclusion(leaf, i, n, &q, roots[n]),
			    BS_EPROOF);
		}
		if (n > 1) {
			x = (i + 1 + (uint64_t)rand_r(seed) % (n - 1)) % n;
			ck_assert_int_eq(
			    merkle_verify_inclusion(leaf, x, n, &p, roots[n]),
			    BS_EPROOF);
			ck_assert_int_eq(merkle_verify_inclusion(leaves + x * H,
								 i, n, &p,
								 roots[n]),
					 BS_EPROOF);
		}
		/* Another size, with its true root. */
		x = i + 1 + (uint64_t)rand_r(seed) % (n - i);
		ck_assert_int_eq(merkle_inclusion_proof(&cached, i, x, &q),
				 BS_OK);
		ck_assert_int_eq(
		    merkle_verify_inclusion(leaf, i, x, &p, roots[x]),
		    path_eq(&p, &q) ? BS_OK : BS_EPROOF);
	}

	for (m = 0; m <= n; m++) {
		ck_assert_int_eq(merkle_consistency_proof(&plain, m, n, &p),
				 BS_OK);
		ck_assert_int_eq(merkle_consistency_proof(&cached, m, n, &q),
				 BS_OK);
		ck_assert(path_eq(&p, &q));
		ref_proof(m, leaves, n, &ref);
		ck_assert(path_eq(&p, &ref));
		ck_assert_uint_eq(merkle_consistency_length(m, n), p.count);
		ck_assert_int_eq(
		    merkle_verify_consistency(m, n, roots[m], roots[n], &p),
		    BS_OK);
		if (p.count) {
			q = p;
			x = (uint64_t)rand_r(seed) % (p.count * 8 * H);
			q.hash[x / (8 * H)][x % (8 * H) / 8] ^=
			    (uint8_t)(1u << (x % 8));
			ck_assert_int_eq(merkle_verify_consistency(
					     m, n, roots[m], roots[n], &q),
					 BS_EPROOF);
		}
		if (m != n)
			ck_assert_int_eq(merkle_verify_consistency(
					     m, n, roots[n], roots[m], &p),
					 BS_EPROOF);
		/* Another old size, then another new size, with true roots. */
		x = (uint64_t)rand_r(seed) % (n + 1);
		ck_assert_int_eq(merkle_consistency_proof(&cached, x, n, &q),
				 BS_OK);
		ck_assert_int_eq(
		    merkle_verify_consistency(x, n, roots[x], roots[n], &p),
		    path_eq(&p, &q) ? BS_OK : BS_EPROOF);
		x = m + (uint64_t)rand_r(seed) % (n - m + 1);
		ck_assert_int_eq(merkle_consistency_proof(&cached, m, x, &q),
				 BS_OK);
		ck_assert_int_eq(
		    merkle_verify_consistency(m, x, roots[m], roots[x], &p),
		    path_eq(&p, &q) ? BS_OK : BS_EPROOF);
	}
}

/* Every tree up to 64 leaves: every pair (m <= n). */
START_TEST(property_proofs_small)
{
	static uint8_t leaves[64 * H];
	unsigned seed = 0xc0ffee;
	uint64_t n;

	for (n = 0; n <= 64; n++) {
		random_leaves(leaves, n, &seed);
		check_tree(leaves, n, &seed);
	}
}
END_TEST

/* Random larger trees: every leaf and every old size of each. */
START_TEST(property_proofs_random)
{
	static uint8_t leaves[PROP_MAX * H];
	unsigned seed = 0x9162 + (unsigned)_i;
	int t;

	for (t = 0; t < 8; t++) {
		uint64_t n = 65 + (uint64_t)rand_r(&seed) % (PROP_MAX - 64);

		random_leaves(leaves, n, &seed);
		check_tree(leaves, n, &seed);
	}
}
END_TEST

/* ---- huge trees, through a cache -------------------------------------- */

/* A tree of up to 2^63 leaves where leaf i is SHA-256(0x00 || i mod 4), so
 * every complete subtree of 4 or more leaves has a hash that depends only
 * on its height: a consistent cache of the whole tree in 64 hashes. */
struct huge {
	uint8_t leaf[4][H];
	uint8_t level[64][H];
};

static void huge_init(struct huge *h, struct merkle_source *src,
		      merkle_leaf_fn leaf, merkle_subtree_fn subtree)
{
	unsigned l;
	uint8_t d;

	for (d = 0; d < 4; d++)
		merkle_leaf_hash(h->leaf[d], &d, 1);
	merkle_node_hash(h->level[1], h->leaf[0], h->leaf[1]);
	{
		uint8_t right[H];

		merkle_node_hash(right, h->leaf[2], h->leaf[3]);
		merkle_node_hash(h->level[2], h->level[1], right);
	}
	for (l = 3; l < 64; l++)
		merkle_node_hash(h->level[l], h->level[l - 1], h->level[l - 1]);
	src->leaf = leaf;
	src->subtree = subtree;
	src->ctx = h;
}

static enum bs_status huge_leaf(void *ctx, uint64_t index, uint8_t out[H])
{
	const struct huge *h = ctx;

	memcpy(out, h->leaf[index % 4], H);
	return BS_OK;
}

static enum bs_status huge_subtree(void *ctx, uint64_t start, unsigned level,
				   uint8_t out[H], bool *found)
{
	const struct huge *h = ctx;

	ck_assert_uint_eq(start % ((uint64_t)1 << level), 0);
	if (level >= 2) {
		memcpy(out, h->level[level], H);
		*found = true;
	}
	return BS_OK;
}

START_TEST(huge_trees)
{
	static const uint64_t sizes[] = {
	    MERKLE_MAX_SIZE,
	    MERKLE_MAX_SIZE - 1,
	    MERKLE_MAX_SIZE - 5,
	    ((uint64_t)1 << 40) + 12345,
	    0x5555555555555555ull,
	    0x2aaaaaaaaaaaaaabull,
	    1000003,
	};
	struct huge h;
	struct merkle_source src;
	struct merkle_path p;
	struct merkle_compact c;
	uint8_t root_new[H], root_old[H], leaf[H];
	unsigned seed = 42;
	size_t i, t;

	huge_init(&h, &src, huge_leaf, huge_subtree);
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint64_t n = sizes[i];

		ck_assert_int_eq(merkle_root(&src, n, root_new), BS_OK);
		ck_assert_int_eq(merkle_compact_build(&c, &src, n), BS_OK);
		merkle_compact_root(&c, leaf);
		ck_assert_mem_eq(leaf, root_new, H);
		for (t = 0; t < 50; t++) {
			uint64_t x = rand64(&seed) % n;
			uint64_t picks[3] = {x, n - 1, n - 1 - x % 7};
			size_t k;

			for (k = 0; k < 3; k++) {
				uint64_t idx = picks[k];

				ck_assert_int_eq(
				    merkle_inclusion_proof(&src, idx, n, &p),
				    BS_OK);
				ck_assert_uint_eq(
				    p.count, merkle_inclusion_length(idx, n));
				ck_assert_int_eq(huge_leaf(&h, idx, leaf),
						 BS_OK);
				ck_assert_int_eq(
				    merkle_verify_inclusion(leaf, idx, n, &p,
							    root_new),
				    BS_OK);

				ck_assert_int_eq(
				    merkle_consistency_proof(&src, idx, n, &p),
				    BS_OK);
				ck_assert_uint_eq(
				    p.count, merkle_consistency_length(idx, n));
				ck_assert_int_eq(
				    merkle_root(&src, idx, root_old), BS_OK);
				ck_assert_int_eq(
				    merkle_verify_consistency(idx, n, root_old,
							      root_new, &p),
				    BS_OK);
			}
		}
	}
	/* The longest proofs the limits allow. */
	ck_assert_uint_eq(merkle_inclusion_length(0, MERKLE_MAX_SIZE), 63);
	ck_assert_uint_eq(
	    merkle_consistency_length(MERKLE_MAX_SIZE - 1, MERKLE_MAX_SIZE),
	    MERKLE_MAX_PROOF);
	ck_assert_int_eq(merkle_consistency_proof(&src, MERKLE_MAX_SIZE - 1,
						  MERKLE_MAX_SIZE, &p),
			 BS_OK);
	ck_assert_uint_eq(p.count, MERKLE_MAX_PROOF);
}
END_TEST

/* ---- limits and failing sources --------------------------------------- */

START_TEST(parameter_limits)
{
	struct merkle_source src;
	struct merkle_array arr;
	struct merkle_path p;
	struct merkle_compact c;
	uint8_t out[H];

	vectors_load();
	vec_source(&src, &arr);
	p.count = 7;
	ck_assert_int_eq(merkle_inclusion_proof(&src, 8, 8, &p), BS_EINVALID);
	ck_assert_uint_eq(p.count, 0);
	ck_assert_int_eq(merkle_inclusion_proof(&src, 0, 0, &p), BS_EINVALID);
	ck_assert_int_eq(
	    merkle_inclusion_proof(&src, 0, MERKLE_MAX_SIZE + 1, &p),
	    BS_EINVALID);
	ck_assert_int_eq(merkle_consistency_proof(&src, 5, 4, &p), BS_EINVALID);
	ck_assert_int_eq(
	    merkle_consistency_proof(&src, 0, MERKLE_MAX_SIZE + 1, &p),
	    BS_EINVALID);
	ck_assert_int_eq(merkle_root(&src, MERKLE_MAX_SIZE + 1, out),
			 BS_EINVALID);
	ck_assert_int_eq(merkle_compact_build(&c, &src, MERKLE_MAX_SIZE + 1),
			 BS_EINVALID);
	ck_assert_uint_eq(merkle_inclusion_length(3, 3), 0);
	ck_assert_uint_eq(merkle_inclusion_length(0, MERKLE_MAX_SIZE + 1), 0);
	ck_assert_uint_eq(merkle_consistency_length(4, 3), 0);
	ck_assert_uint_eq(merkle_consistency_length(1, MERKLE_MAX_SIZE + 1), 0);
	/* The array source refuses to read past its end. */
	ck_assert_int_eq(merkle_root(&src, 9, out), BS_EINVALID);
	ck_assert_int_eq(merkle_inclusion_proof(&src, 0, 9, &p), BS_EINVALID);
	/* Empty proofs where the RFC gives them. */
	ck_assert_int_eq(merkle_consistency_proof(&src, 0, 8, &p), BS_OK);
	ck_assert_uint_eq(p.count, 0);
	ck_assert_int_eq(merkle_consistency_proof(&src, 5, 5, &p), BS_OK);
	ck_assert_uint_eq(p.count, 0);
	ck_assert_int_eq(merkle_inclusion_proof(&src, 0, 1, &p), BS_OK);
	ck_assert_uint_eq(p.count, 0);
}
END_TEST

struct failing {
	uint64_t bad_leaf;    /* leaf index that fails */
	uint64_t bad_subtree; /* subtree start that fails (level >= 1) */
	enum bs_status status;
};

static enum bs_status failing_leaf(void *ctx, uint64_t index, uint8_t out[H])
{
	const struct failing *f = ctx;

	if (index == f->bad_leaf)
		return f->status;
	memset(out, (int)index, H);
	return BS_OK;
}

static enum bs_status failing_subtree(void *ctx, uint64_t start, unsigned level,
				      uint8_t out[H], bool *found)
{
	const struct failing *f = ctx;

	(void)level;
	(void)out;
	if (start == f->bad_subtree)
		return f->status;
	*found = false;
	return BS_OK;
}

START_TEST(source_errors_propagate)
{
	struct failing f = {5, UINT64_MAX, BS_ESTATE};
	struct merkle_source src = {failing_leaf, NULL, &f};
	struct merkle_compact c, zero;
	struct merkle_path p;
	uint8_t out[H];

	merkle_compact_init(&zero);
	ck_assert_int_eq(merkle_root(&src, 8, out), BS_ESTATE);
	ck_assert_int_eq(merkle_root(&src, 5, out), BS_OK);
	ck_assert_int_eq(merkle_inclusion_proof(&src, 0, 8, &p), BS_ESTATE);
	ck_assert_uint_eq(p.count, 0);
	ck_assert_int_eq(merkle_consistency_proof(&src, 3, 8, &p), BS_ESTATE);
	ck_assert_uint_eq(p.count, 0);
	ck_assert_int_eq(merkle_compact_build(&c, &src, 7), BS_ESTATE);
	ck_assert_mem_eq(&c, &zero, sizeof c);

	/* A cache that fails is not silently bypassed. */
	f.bad_leaf = UINT64_MAX;
	f.bad_subtree = 4;
	f.status = BS_ENOMEM;
	src.subtree = failing_subtree;
	ck_assert_int_eq(merkle_root(&src, 8, out), BS_ENOMEM);
	ck_assert_int_eq(merkle_root(&src, 4, out), BS_OK);
	ck_assert_int_eq(merkle_inclusion_proof(&src, 1, 8, &p), BS_ENOMEM);
	ck_assert_uint_eq(p.count, 0);
}
END_TEST

static Suite *merkle_suite(void)
{
	Suite *s = suite_create("merkle");
	TCase *tc = tcase_create("vectors");
	TCase *tp = tcase_create("properties");

	tcase_add_test(tc, hash_rules);
	tcase_add_test(tc, hash_large_inputs);
	tcase_add_test(tc, vector_roots);
	tcase_add_test(tc, vector_inclusion);
	tcase_add_test(tc, vector_consistency);
	tcase_add_test(tc, vector_inclusion_corrupt);
	tcase_add_test(tc, vector_consistency_corrupt);
	tcase_add_test(tc, consistency_edges);
	tcase_add_test(tc, frontier_known_answer);
	tcase_add_test(tc, frontier_decode_strict);
	tcase_add_test(tc, parameter_limits);
	tcase_add_test(tc, source_errors_propagate);
	suite_add_tcase(s, tc);

	tcase_add_loop_test(tp, property_compact_matches_batch, 0, 3);
	tcase_add_test(tp, property_proofs_small);
	tcase_add_loop_test(tp, property_proofs_random, 0, 3);
	tcase_add_test(tp, huge_trees);
	suite_add_tcase(s, tp);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(merkle_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
