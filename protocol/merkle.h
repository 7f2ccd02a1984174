/* merkle.h - the RFC 6962 / RFC 9162 Merkle tree over the server's log
 * (protocol/FORMAT.md, section "Merkle tree"): leaf and node hashes, roots,
 * inclusion and consistency proofs, and the compact frontier a server keeps
 * to append in O(log n). Pure computation: leaves come from the caller
 * through a source; storing the log or its nodes is not done here. */
#ifndef BS_MERKLE_H
#define BS_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "sign.h"

/* Largest tree we accept (2^63 leaves): with it every proof fits in
 * MERKLE_MAX_PROOF hashes (a consistency proof of a larger tree could need
 * 65) and a frontier holds at most 63 subtree roots. */
#define MERKLE_MAX_SIZE	    ((uint64_t)1 << 63)
#define MERKLE_MAX_PROOF    64
#define MERKLE_MAX_FRONTIER 64
/* Longest frontier encoding: varint size, then 63 hashes. */
#define MERKLE_FRONTIER_MAX_ENCODED (10 + 63 * HASH_BYTES)

/* An audit path: inclusion or consistency proof hashes, in RFC 9162 order
 * (the hash nearest the leaf, or the old tree, first). Fixed size so that
 * decoders need not allocate. */
struct merkle_path {
	size_t count;
	uint8_t hash[MERKLE_MAX_PROOF][HASH_BYTES];
};

/* Writes the leaf hash of log entry `index` (always < the tree size being
 * hashed) to out. Any status but BS_OK aborts the computation and is
 * returned to the caller unchanged. */
typedef enum bs_status (*merkle_leaf_fn)(void *ctx, uint64_t index,
					 uint8_t out[HASH_BYTES] /* OUT */);

/* Optional cache of interior nodes: the hash of the complete subtree of
 * 2^level leaves [start, start + 2^level), where level >= 1 and start is a
 * multiple of 2^level. Sets *found and writes out when it knows the hash;
 * leaves *found false to have it computed from the children. */
typedef enum bs_status (*merkle_subtree_fn)(void *ctx, uint64_t start,
					    unsigned level,
					    uint8_t out[HASH_BYTES] /* OUT */,
					    bool *found /* OUT */);

struct merkle_source {
	merkle_leaf_fn leaf;
	merkle_subtree_fn subtree; /* may be NULL */
	void *ctx;
};

/* Leaf hashes held in memory: count consecutive HASH_BYTES-byte hashes. */
struct merkle_array {
	const uint8_t *hashes;
	uint64_t count;
};

/* The frontier of a tree of `size` leaves: the roots of its complete
 * subtrees, one per set bit of size, largest (leftmost) first. Slots past
 * those are zero, so two frontiers are equal iff memcmp says so. */
struct merkle_compact {
	uint64_t size;
	uint8_t root[MERKLE_MAX_FRONTIER][HASH_BYTES];
};

/* SHA-256(0x00 || data). data may be NULL when len is 0. */
void merkle_leaf_hash(uint8_t out[HASH_BYTES] /* OUT */, const uint8_t *data,
		      size_t len);
/* SHA-256(0x01 || left || right). out may alias left or right. */
void merkle_node_hash(uint8_t out[HASH_BYTES] /* OUT */,
		      const uint8_t left[HASH_BYTES],
		      const uint8_t right[HASH_BYTES]);
/* SHA-256 of the empty string: the root of the tree of no leaves. */
void merkle_empty_root(uint8_t out[HASH_BYTES] /* OUT */);

/* Points src at arr (which must outlive src); no subtree cache. Asking it
 * for an index >= arr->count fails with BS_EINVALID. */
void merkle_source_from_array(struct merkle_source *src /* OUT */,
			      struct merkle_array *arr);

/* Root of the tree of the first `size` leaves of src. Fails with
 * BS_EINVALID if size > MERKLE_MAX_SIZE, or with the source's status. */
enum bs_status merkle_root(const struct merkle_source *src, uint64_t size,
			   uint8_t out[HASH_BYTES] /* OUT */);

/* Number of hashes in the inclusion proof of index in a tree of size,
 * or in the consistency proof from old_size to new_size. Also 0 for
 * impossible parameters, which callers must reject on their own (the
 * verifiers do, with BS_EINVALID). */
size_t merkle_inclusion_length(uint64_t index, uint64_t size);
size_t merkle_consistency_length(uint64_t old_size, uint64_t new_size);

/* RFC 9162 2.1.3.1 PATH(index, D[size]). Fails with BS_EINVALID if
 * index >= size or size > MERKLE_MAX_SIZE, or with the source's status;
 * out->count is 0 on failure. Allocates nothing. */
enum bs_status merkle_inclusion_proof(const struct merkle_source *src,
				      uint64_t index, uint64_t size,
				      struct merkle_path *out /* OUT */);

/* RFC 9162 2.1.4.1 PROOF(old_size, D[new_size]); empty when old_size is 0
 * or equal to new_size. Fails with BS_EINVALID if old_size > new_size or
 * new_size > MERKLE_MAX_SIZE, or with the source's status; out->count is
 * 0 on failure. Allocates nothing. */
enum bs_status merkle_consistency_proof(const struct merkle_source *src,
					uint64_t old_size, uint64_t new_size,
					struct merkle_path *out /* OUT */);

/* RFC 9162 2.1.3.2. BS_OK only if path proves that leaf_hash is entry
 * `index` of the tree of `size` leaves whose root is `root`; BS_EPROOF if
 * not; BS_EINVALID if index >= size, size > MERKLE_MAX_SIZE or
 * path->count > MERKLE_MAX_PROOF. The (size, root) pair must itself be
 * authenticated (a signed checkpoint): the proof only binds the shape. */
enum bs_status merkle_verify_inclusion(const uint8_t leaf_hash[HASH_BYTES],
				       uint64_t index, uint64_t size,
				       const struct merkle_path *path,
				       const uint8_t root[HASH_BYTES])
    __attribute__((warn_unused_result));

/* RFC 9162 2.1.4.2, extended to the cases the RFC leaves out: equal sizes
 * need an empty path and equal roots; old_size 0 needs an empty path and
 * old_root equal to the empty root. BS_OK only if the tree of new_size
 * leaves with new_root extends the tree of old_size leaves with old_root;
 * BS_EPROOF if not; BS_EINVALID if old_size > new_size,
 * new_size > MERKLE_MAX_SIZE or path->count > MERKLE_MAX_PROOF. */
enum bs_status merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
					 const uint8_t old_root[HASH_BYTES],
					 const uint8_t new_root[HASH_BYTES],
					 const struct merkle_path *path)
    __attribute__((warn_unused_result));

/* The frontier of the empty tree. */
void merkle_compact_init(struct merkle_compact *c /* OUT */);

/* Appends one leaf hash, hashing only the subtrees it completes (one per
 * trailing set bit of the size, so O(1) amortised and O(log n) at worst).
 * Fails with BS_ELIMIT, leaving c unchanged, once the size is
 * MERKLE_MAX_SIZE. */
enum bs_status merkle_compact_append(struct merkle_compact *c,
				     const uint8_t leaf_hash[HASH_BYTES])
    __attribute__((warn_unused_result));

/* Root of the tree the frontier describes (the empty root for size 0). */
void merkle_compact_root(const struct merkle_compact *c,
			 uint8_t out[HASH_BYTES] /* OUT */);
uint64_t merkle_compact_size(const struct merkle_compact *c);

/* Builds the frontier of the first `size` leaves of src: one subtree hash
 * per set bit, so O(log n) source calls when src caches interior nodes.
 * Fails with BS_EINVALID if size > MERKLE_MAX_SIZE, or with the source's
 * status; c is the empty frontier on failure. */
enum bs_status merkle_compact_build(struct merkle_compact *c /* OUT */,
				    const struct merkle_source *src,
				    uint64_t size);

/* Appends the frontier encoding (protocol/FORMAT.md, "Frontier encoding")
 * to b and returns b->status (BS_ELIMIT or BS_ENOMEM from the buffer);
 * BS_EINVALID, leaving b untouched, if c->size > MERKLE_MAX_SIZE. */
enum bs_status merkle_compact_encode(const struct merkle_compact *c,
				     struct buf *b);

/* Strict decoder of a frontier encoding. Fails with BS_ETRUNCATED,
 * BS_EOVERLONG, BS_ELIMIT (size > MERKLE_MAX_SIZE) or BS_ETRAILING;
 * c is the empty frontier on failure. Allocates nothing. */
enum bs_status merkle_compact_decode(struct merkle_compact *c /* OUT */,
				     const uint8_t *p, size_t len)
    __attribute__((warn_unused_result));

#endif
