/* merkle.c - RFC 9162 Merkle tree hashing, proofs and compact frontiers
 * (protocol/FORMAT.md, sections "Merkle tree" and "Frontier encoding").
 * Pure computation over a caller's leaf source; no storage, no allocation. */
#include "merkle.h"

#include <string.h>

#include "wire.h"

/* A run of leaves [start, start + len) whose subtree hash is one proof
 * entry. */
struct merkle_range {
	uint64_t start;
	uint64_t len;
};

static bool merkle_is_pow2(uint64_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

/* RFC 9162's k: the largest power of two strictly less than n (n >= 2). */
static uint64_t merkle_split(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

static size_t merkle_popcount(uint64_t n)
{
	return (size_t)__builtin_popcountll(n);
}

void merkle_leaf_hash(uint8_t out[HASH_BYTES], const uint8_t *data, size_t len)
{
	static const uint8_t prefix = 0x00;

	hash_sha256(out, &prefix, 1, data, len);
}

void merkle_node_hash(uint8_t out[HASH_BYTES], const uint8_t left[HASH_BYTES],
		      const uint8_t right[HASH_BYTES])
{
	/* Copying first is what lets out alias left or right. */
	uint8_t in[1 + 2 * HASH_BYTES];

	in[0] = 0x01;
	memcpy(in + 1, left, HASH_BYTES);
	memcpy(in + 1 + HASH_BYTES, right, HASH_BYTES);
	hash_sha256(out, in, sizeof in, NULL, 0);
}

void merkle_empty_root(uint8_t out[HASH_BYTES])
{
	hash_sha256(out, NULL, 0, NULL, 0);
}

static enum bs_status merkle_array_leaf(void *ctx, uint64_t index,
					uint8_t out[HASH_BYTES])
{
	const struct merkle_array *arr = ctx;

	if (index >= arr->count)
		return BS_EINVALID;
	memcpy(out, arr->hashes + (size_t)index * HASH_BYTES, HASH_BYTES);
	return BS_OK;
}

void merkle_source_from_array(struct merkle_source *src,
			      struct merkle_array *arr)
{
	src->leaf = merkle_array_leaf;
	src->subtree = NULL;
	src->ctx = arr;
}

/* MTH(D[start:start+n]) for n >= 1, asking the source's cache for every
 * complete subtree first. Ranges produced by the RFC's recursion are
 * always aligned, so a complete one is [start, start + 2^level) with start
 * a multiple of 2^level, as the cache expects. Recursion depth <= 64. */
static enum bs_status merkle_subtree(const struct merkle_source *src,
				     uint64_t start, uint64_t n,
				     uint8_t out[HASH_BYTES])
{
	uint8_t left[HASH_BYTES], right[HASH_BYTES];
	enum bs_status rc;
	uint64_t k;

	if (n == 1)
		return src->leaf(src->ctx, start, out);
	if (src->subtree && merkle_is_pow2(n)) {
		bool found = false;

		rc = src->subtree(src->ctx, start, (unsigned)__builtin_ctzll(n),
				  out, &found);
		if (rc || found)
			return rc;
	}
	k = merkle_split(n);
	rc = merkle_subtree(src, start, k, left);
	if (rc)
		return rc;
	rc = merkle_subtree(src, start + k, n - k, right);
	if (rc)
		return rc;
	merkle_node_hash(out, left, right);
	return BS_OK;
}

enum bs_status merkle_root(const struct merkle_source *src, uint64_t size,
			   uint8_t out[HASH_BYTES])
{
	if (size > MERKLE_MAX_SIZE)
		return BS_EINVALID;
	if (size == 0) {
		merkle_empty_root(out);
		return BS_OK;
	}
	return merkle_subtree(src, 0, size, out);
}

static void merkle_reverse(struct merkle_range *plan, size_t n)
{
	size_t i;

	for (i = 0; i < n / 2; i++) {
		struct merkle_range t = plan[i];

		plan[i] = plan[n - 1 - i];
		plan[n - 1 - i] = t;
	}
}

/* The subtrees whose hashes make PATH(m, D[n]), in proof order. Walks the
 * RFC's recursion top down (each level contributes its sibling), then
 * reverses, since the RFC lists the deepest sibling first. Needs m < n <=
 * MERKLE_MAX_SIZE, so there are at most 63 levels. */
static size_t merkle_plan_inclusion(uint64_t m, uint64_t n,
				    struct merkle_range plan[MERKLE_MAX_PROOF])
{
	uint64_t base = 0;
	size_t depth = 0;

	while (n > 1) {
		uint64_t k = merkle_split(n);

		if (m < k) {
			plan[depth].start = base + k;
			plan[depth].len = n - k;
			n = k;
		} else {
			plan[depth].start = base;
			plan[depth].len = k;
			base += k;
			m -= k;
			n -= k;
		}
		depth++;
	}
	merkle_reverse(plan, depth);
	return depth;
}

/* The subtrees whose hashes make PROOF(m, D[n]) = SUBPROOF(m, D[n], true),
 * in proof order. Once the recursion has gone right (b false), the old
 * tree is no longer a complete left subtree and the node it ends on,
 * MTH(D[m]) of the sub-range, is the proof's first entry. Needs
 * m <= n <= MERKLE_MAX_SIZE: at most 63 levels plus that node. */
static size_t
merkle_plan_consistency(uint64_t m, uint64_t n,
			struct merkle_range plan[MERKLE_MAX_PROOF])
{
	uint64_t base = 0;
	size_t depth = 0;
	bool whole = true;

	if (m == 0)
		return 0;
	while (m != n) {
		uint64_t k = merkle_split(n);

		if (m <= k) {
			plan[depth].start = base + k;
			plan[depth].len = n - k;
			n = k;
		} else {
			plan[depth].start = base;
			plan[depth].len = k;
			base += k;
			m -= k;
			n -= k;
			whole = false;
		}
		depth++;
	}
	if (!whole) {
		plan[depth].start = base;
		plan[depth].len = m;
		depth++;
	}
	merkle_reverse(plan, depth);
	return depth;
}

size_t merkle_inclusion_length(uint64_t index, uint64_t size)
{
	struct merkle_range plan[MERKLE_MAX_PROOF];

	if (index >= size || size > MERKLE_MAX_SIZE)
		return 0;
	return merkle_plan_inclusion(index, size, plan);
}

size_t merkle_consistency_length(uint64_t old_size, uint64_t new_size)
{
	struct merkle_range plan[MERKLE_MAX_PROOF];

	if (old_size > new_size || new_size > MERKLE_MAX_SIZE)
		return 0;
	return merkle_plan_consistency(old_size, new_size, plan);
}

static enum bs_status merkle_fill(const struct merkle_source *src,
				  const struct merkle_range *plan, size_t n,
				  struct merkle_path *out)
{
	enum bs_status rc = BS_OK;
	size_t i;

	for (i = 0; i < n; i++) {
		rc = merkle_subtree(src, plan[i].start, plan[i].len,
				    out->hash[i]);
		if (rc)
			goto cleanup;
	}
	out->count = n;
cleanup:
	return rc;
}

enum bs_status merkle_inclusion_proof(const struct merkle_source *src,
				      uint64_t index, uint64_t size,
				      struct merkle_path *out)
{
	struct merkle_range plan[MERKLE_MAX_PROOF];

	out->count = 0;
	if (index >= size || size > MERKLE_MAX_SIZE)
		return BS_EINVALID;
	return merkle_fill(src, plan, merkle_plan_inclusion(index, size, plan),
			   out);
}

enum bs_status merkle_consistency_proof(const struct merkle_source *src,
					uint64_t old_size, uint64_t new_size,
					struct merkle_path *out)
{
	struct merkle_range plan[MERKLE_MAX_PROOF];

	out->count = 0;
	if (old_size > new_size || new_size > MERKLE_MAX_SIZE)
		return BS_EINVALID;
	return merkle_fill(
	    src, plan, merkle_plan_consistency(old_size, new_size, plan), out);
}

static bool merkle_hash_eq(const uint8_t a[HASH_BYTES],
			   const uint8_t b[HASH_BYTES])
{
	return memcmp(a, b, HASH_BYTES) == 0;
}

/* Shifts fn and sn right together until fn's low bit is set or fn is 0:
 * skips the levels where the node is the last one and has no sibling. */
static void merkle_skip_lonely(uint64_t *fn, uint64_t *sn)
{
	while ((*fn & 1) == 0 && *fn != 0) {
		*fn >>= 1;
		*sn >>= 1;
	}
}

enum bs_status merkle_verify_inclusion(const uint8_t leaf_hash[HASH_BYTES],
				       uint64_t index, uint64_t size,
				       const struct merkle_path *path,
				       const uint8_t root[HASH_BYTES])
{
	uint8_t r[HASH_BYTES];
	uint64_t fn, sn;
	size_t i;

	if (index >= size || size > MERKLE_MAX_SIZE ||
	    path->count > MERKLE_MAX_PROOF)
		return BS_EINVALID;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf_hash, HASH_BYTES);
	for (i = 0; i < path->count; i++) {
		const uint8_t *p = path->hash[i];

		if (sn == 0)
			return BS_EPROOF; /* more hashes than levels */
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(r, p, r);
			merkle_skip_lonely(&fn, &sn);
		} else {
			merkle_node_hash(r, r, p);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && merkle_hash_eq(r, root) ? BS_OK : BS_EPROOF;
}

/* The cases RFC 9162 2.1.4.2 does not cover: nothing to prove but that
 * the roots agree (equal sizes) or that the old tree is the empty one. */
static enum bs_status merkle_verify_trivial(uint64_t old_size,
					    uint64_t new_size,
					    const uint8_t old_root[HASH_BYTES],
					    const uint8_t new_root[HASH_BYTES],
					    const struct merkle_path *path)
{
	uint8_t empty[HASH_BYTES];

	if (path->count != 0)
		return BS_EPROOF;
	merkle_empty_root(empty);
	if (old_size == 0 && !merkle_hash_eq(old_root, empty))
		return BS_EPROOF;
	if (old_size == new_size && !merkle_hash_eq(old_root, new_root))
		return BS_EPROOF;
	return BS_OK;
}

enum bs_status merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
					 const uint8_t old_root[HASH_BYTES],
					 const uint8_t new_root[HASH_BYTES],
					 const struct merkle_path *path)
{
	uint8_t fr[HASH_BYTES], sr[HASH_BYTES];
	uint64_t fn, sn;
	size_t i;

	if (old_size > new_size || new_size > MERKLE_MAX_SIZE ||
	    path->count > MERKLE_MAX_PROOF)
		return BS_EINVALID;
	if (old_size == 0 || old_size == new_size)
		return merkle_verify_trivial(old_size, new_size, old_root,
					     new_root, path);
	if (path->count == 0)
		return BS_EPROOF;
	/* A power-of-two old tree is a complete subtree of the new one: the
	 * RFC prepends its root rather than sending it. */
	if (merkle_is_pow2(old_size)) {
		memcpy(fr, old_root, HASH_BYTES);
		i = 0;
	} else {
		memcpy(fr, path->hash[0], HASH_BYTES);
		i = 1;
	}
	memcpy(sr, fr, HASH_BYTES);
	fn = old_size - 1;
	sn = new_size - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < path->count; i++) {
		const uint8_t *c = path->hash[i];

		if (sn == 0)
			return BS_EPROOF;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(fr, c, fr);
			merkle_node_hash(sr, c, sr);
			merkle_skip_lonely(&fn, &sn);
		} else {
			merkle_node_hash(sr, sr, c);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && merkle_hash_eq(fr, old_root) &&
		       merkle_hash_eq(sr, new_root)
		   ? BS_OK
		   : BS_EPROOF;
}

void merkle_compact_init(struct merkle_compact *c)
{
	memset(c, 0, sizeof *c);
}

enum bs_status merkle_compact_append(struct merkle_compact *c,
				     const uint8_t leaf_hash[HASH_BYTES])
{
	uint8_t h[HASH_BYTES];
	size_t n = merkle_popcount(c->size);
	uint64_t s;

	if (c->size >= MERKLE_MAX_SIZE)
		return BS_ELIMIT;
	memcpy(h, leaf_hash, HASH_BYTES);
	/* Each trailing set bit of the size is a complete subtree as tall as
	 * the one the new leaf has just grown into: merge them, right to
	 * left, like a binary carry. Merged slots are wiped so that unused
	 * slots are always zero and equal frontiers compare equal bytewise. */
	for (s = c->size; s & 1; s >>= 1) {
		n--;
		merkle_node_hash(h, c->root[n], h);
		memset(c->root[n], 0, HASH_BYTES);
	}
	memcpy(c->root[n], h, HASH_BYTES);
	c->size++;
	return BS_OK;
}

void merkle_compact_root(const struct merkle_compact *c,
			 uint8_t out[HASH_BYTES])
{
	size_t n = merkle_popcount(c->size), i;

	if (n == 0) {
		merkle_empty_root(out);
		return;
	}
	/* The RFC's tree of n leaves is its largest complete left subtree,
	 * then the tree of the rest: fold the frontier from the right. */
	memcpy(out, c->root[n - 1], HASH_BYTES);
	for (i = n - 1; i > 0; i--)
		merkle_node_hash(out, c->root[i - 1], out);
}

uint64_t merkle_compact_size(const struct merkle_compact *c)
{
	return c->size;
}

enum bs_status merkle_compact_build(struct merkle_compact *c,
				    const struct merkle_source *src,
				    uint64_t size)
{
	enum bs_status rc = BS_OK;
	uint64_t start = 0;
	size_t n = 0;
	int bit;

	merkle_compact_init(c);
	if (size > MERKLE_MAX_SIZE) {
		rc = BS_EINVALID;
		goto cleanup;
	}
	for (bit = 63; bit >= 0; bit--) {
		uint64_t len = (uint64_t)1 << bit;

		if (!(size & len))
			continue;
		rc = merkle_subtree(src, start, len, c->root[n]);
		if (rc)
			goto cleanup;
		n++;
		start += len;
	}
	c->size = size;
cleanup:
	if (rc)
		merkle_compact_init(c);
	return rc;
}

enum bs_status merkle_compact_encode(const struct merkle_compact *c,
				     struct buf *b)
{
	size_t i, n;

	if (c->size > MERKLE_MAX_SIZE)
		return BS_EINVALID;
	n = merkle_popcount(c->size);
	wire_put_varint(b, c->size);
	for (i = 0; i < n; i++)
		buf_append(b, c->root[i], HASH_BYTES);
	return b->status;
}

enum bs_status merkle_compact_decode(struct merkle_compact *c, const uint8_t *p,
				     size_t len)
{
	struct wire_reader r;
	enum bs_status rc;
	uint64_t size;
	size_t i, n;

	merkle_compact_init(c);
	wire_reader_init(&r, p, len);
	rc = wire_get_varint(&r, &size);
	if (rc)
		goto cleanup;
	if (size > MERKLE_MAX_SIZE) {
		rc = BS_ELIMIT;
		goto cleanup;
	}
	n = merkle_popcount(size);
	for (i = 0; i < n; i++) {
		rc = wire_get_fixed(&r, c->root[i], HASH_BYTES);
		if (rc)
			goto cleanup;
	}
	rc = wire_expect_end(&r);
	if (rc)
		goto cleanup;
	c->size = size;
cleanup:
	if (rc)
		merkle_compact_init(c);
	return rc;
}
