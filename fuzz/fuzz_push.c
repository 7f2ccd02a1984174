/* fuzz_push.c - libFuzzer target for the server's push-body parsing path
 * without its database: the frame stream reader, the change set decoder,
 * and merge_check's walk of an untrusted SQLite changeset body with
 * SQLite's own iterator (the input's first byte picks which: a push body,
 * or a raw changeset body under a fixed envelope). Nothing may crash, leak
 * or read out of bounds, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "changeset.h"
#include "err.h"
#include "frame.h"
#include "merge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void push_body(const uint8_t *data, size_t size)
{
	struct frame_reader fr;
	struct frame f;
	size_t off = 0, used;

	frame_reader_init(&fr, CHANGESET_MAX_ENCODED);
	while (off < size || frame_reader_next(&fr, &f)) {
		if (frame_reader_next(&fr, &f)) {
			struct changeset cs;

			if (f.type == FRAME_CHANGESET &&
			    changeset_decode(f.payload, f.len, &cs) == BS_OK) {
				struct err e;
				err_init(&e);
				(void)merge_check(&cs, &e);
			}
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
