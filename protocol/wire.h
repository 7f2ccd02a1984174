/* wire.h - the primitive encodings every branchsync format is built from
 * (protocol/FORMAT.md, section "Primitives"): unsigned LEB128 varints in
 * their one shortest form, fixed 8-byte big-endian integers, fixed-size byte
 * strings and varint-length-prefixed blobs. Readers never allocate: they
 * point into the input, and check every length against what remains and
 * against the caller's limit before anyone could allocate for it. */
#ifndef BS_WIRE_H
#define BS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"

#define WIRE_VARINT_MAX 10 /* bytes in the longest u64 varint */

struct wire_reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

void wire_reader_init(struct wire_reader *r, const uint8_t *p, size_t len);
size_t wire_remaining(const struct wire_reader *r);

enum bs_status wire_get_u8(struct wire_reader *r, uint8_t *out /* OUT */);
/* Canonical: rejects a final 0x00 continuation byte (BS_EOVERLONG) and
 * anything above 2^64-1 (BS_EOVERLONG). */
enum bs_status wire_get_varint(struct wire_reader *r, uint64_t *out /* OUT */);
enum bs_status wire_get_u64be(struct wire_reader *r, uint64_t *out /* OUT */);
/* Points *out at the next n bytes (no copy). */
enum bs_status wire_get_bytes(struct wire_reader *r, size_t n,
			      const uint8_t **out /* OUT */);
enum bs_status wire_get_fixed(struct wire_reader *r, void *dst, size_t n);
/* Varint length, then that many bytes; BS_ELIMIT if length > max. */
enum bs_status wire_get_blob(struct wire_reader *r, size_t max,
			     const uint8_t **out /* OUT */,
			     size_t *len /* OUT */);
/* BS_ETRAILING unless every byte was consumed. */
enum bs_status wire_expect_end(const struct wire_reader *r);

/* 1 if none of the n bytes is a control byte (0x00-0x1f, 0x7f): the rule
 * for every text field people are shown (FORMAT.md, "text(max)"). */
int wire_printable(const void *p, size_t n);

/* Writers append to a struct buf; errors stick in b->status. */
void wire_put_varint(struct buf *b, uint64_t v);
void wire_put_u64be(struct buf *b, uint64_t v);
void wire_put_blob(struct buf *b, const void *p, size_t n);
/* Number of bytes wire_put_varint writes for v. */
size_t wire_varint_size(uint64_t v);
/* Encodes v into out (at least WIRE_VARINT_MAX bytes); returns its length. */
size_t wire_varint_encode(uint64_t v, uint8_t *out);

#endif
