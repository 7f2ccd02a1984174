/* fuzz_push.c - libFuzzer target for the server's push-body parsing path
 * without its database: the frame stream reader, the change set decoder,
 * the compact change set expander, and merge_check's walk of an untrusted
 * SQLite changeset body (the input's first byte picks which: a push body,
 * or a raw changeset body under a fixed envelope). Nothing may crash, leak
 * or read out of bounds, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "changeset.h"
#include "cscompact.h"
#include "err.h"
#include "frame.h"
#include "merge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct changeset *cs)
{
	struct err e;

	err_init(&e);
	(void)merge_check(cs, &e);
}

/* A compact set expanded under a fixed author and predecessor, as the
 * server would, then decoded and checked like a whole one. */
static void compact(const uint8_t *p, size_t len)
{
	static const uint8_t author[SIGN_PUBLIC_BYTES] = {1};
	static const uint8_t prev[HASH_BYTES] = {2};
	static const uint8_t zero[HASH_BYTES];
	struct changeset cs;
	struct buf full;
	uint64_t seq;

	if (cscompact_seq(p, len, &seq) != BS_OK)
		return;
	buf_init(&full, CHANGESET_MAX_ENCODED);
	if (cscompact_expand(p, len, author, seq == 1 ? zero : prev, &full) ==
		BS_OK &&
	    changeset_decode(full.data, full.len, &cs) == BS_OK)
		check(&cs);
	buf_release(&full);
}

static void push_body(const uint8_t *data, size_t size)
{
	struct frame_reader fr;
	struct frame f;
	size_t off = 0, used;

	frame_reader_init(&fr, CHANGESET_MAX_ENCODED);
	while (off < size || frame_reader_next(&fr, &f)) {
		if (frame_reader_next(&fr, &f)) {
			struct changeset cs;

			if (f.type == FRAME_CHANGESET_COMPACT)
				compact(f.payload, f.len);
			else if (f.type == FRAME_CHANGESET &&
				 changeset_decode(f.payload, f.len, &cs) ==
				     BS_OK)
				check(&cs);
			continue;
		}
		if (frame_reader_feed(&fr, data + off, size - off, &used))
			break;
		off += used;
	}
	(void)frame_reader_finish(&fr);
	frame_reader_release(&fr);
}

static void raw_body(const uint8_t *data, size_t size)
{
	struct changeset cs;
	struct err e;

	memset(&cs, 0, sizeof cs);
	strcpy(cs.env.scope, "b1");
	cs.env.seq = 1;
	cs.env.schema_version = 1;
	cs.body = data;
	cs.body_len = size;
	err_init(&e);
	(void)merge_check(&cs, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		raw_body(data + 1, size - 1);
	else
		push_body(data + 1, size - 1);
	return 0;
}
