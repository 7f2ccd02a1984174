/* bundle.h - bundles: change sets carried on a USB stick where a device has
 * no link at all (docs/BUNDLE.md; byte layout in protocol/FORMAT.md,
 * section "Bundles"). The file codec, the checks an importer makes before
 * it applies anything, and the export and import of a replica. Not for the
 * merge rules (shared/merge.h) nor for pushing relayed sets
 * (sync_push.c). */
#ifndef BS_BUNDLE_H
#define BS_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "changeset.h"
#include "checkpoint.h"
#include "err.h"
#include "identity.h"
#include "replica.h"

#define BUNDLE_META_MAGIC "BSBN"
#define BUNDLE_VERSION	  1
/* What a bundle holds: a device's pending change sets (what its next sync
 * would push), or what a district device has for one branch. */
#define BUNDLE_KIND_DEVICE 1
#define BUNDLE_KIND_BRANCH 2
/* magic, version, kind, origin blob, two keys, scope blob, time */
#define BUNDLE_META_MAX                                                        \
	(4 + 1 + 1 + 2 + CHECKPOINT_ORIGIN_MAX + 2 * SIGN_PUBLIC_BYTES + 1 +   \
	 CHANGESET_SCOPE_MAX + 8)
/* Limits of one bundle file, checked by writer and reader alike. */
#define BUNDLE_MAX_BYTES       (256u << 20)
#define BUNDLE_MAX_ENROLLMENTS 100000u
#define BUNDLE_MAX_CHANGESETS  1000000u
/* The largest frame payload a bundle may carry: one change set. */
#define BUNDLE_FRAME_MAX CHANGESET_MAX_ENCODED

/* The META frame. */
struct bundle_meta {
	uint8_t kind;				/* BUNDLE_KIND_* */
	char origin[CHECKPOINT_ORIGIN_MAX + 1]; /* the server's log name */
	uint8_t server_pk[SIGN_PUBLIC_BYTES];
	uint8_t exporter[SIGN_PUBLIC_BYTES]; /* the device that wrote it */
	char scope[CHANGESET_SCOPE_MAX + 1];
	uint64_t time_ms; /* informative */
};

/* Appends the META payload. BS_EINVALID for a kind, origin or scope the
 * format forbids (nothing appended then); else out's sticky status. */
enum bs_status bundle_meta_encode(const struct bundle_meta *m, struct buf *out);
/* Strictly decodes exactly one META payload. Allocates nothing. */
enum bs_status bundle_meta_decode(const uint8_t *p, size_t len,
				  struct bundle_meta *out /* OUT */)
    __attribute__((warn_unused_result));

/* A bundle's frames, checked for layout only (META first, then ENROLLMENT
 * frames, then CHANGESET frames, then END), pointing into the file's bytes,
 * which must outlive it. */
struct bundle_frame {
	const uint8_t *p;
	size_t len;
};

struct bundle {
	struct bundle_meta meta;
	struct bundle_frame *enrollments; /* frames 2 .. 1 + nenrollments */
	size_t nenrollments;
	struct bundle_frame *changesets; /* the frames after them */
	size_t nchangesets;
};

/*
 * Splits the bytes of a bundle file into its frames. Allocates the two
 * arrays (bundle_release frees them, also after a failure). Fails with
 * ERR_VERIFY and one sentence naming the frame (counted from 1, META
 * being frame 1) or byte offset: a malformed or truncated stream, a frame
 * out of place, a malformed META, more than the limits allow; ERR_INVALID
 * when out of memory.
 */
int bundle_parse(const uint8_t *p, size_t len, struct bundle *out /* OUT */,
		 struct err *e);
void bundle_release(struct bundle *b);

/* What an export wrote. */
struct bundle_export_summary {
	uint8_t kind;
	uint64_t changesets, enrollments, bytes;
	uint64_t missing; /* authors whose signed enrollment is unknown */
};

/*
 * Writes a bundle of replica r (device `id`, enrolled) to `path`,
 * atomically and with mode 0600: with for_branch NULL, the change sets
 * this device's next sync would push (its pending outbox, and on a
 * district device the pending relayed sets); with for_branch, which only
 * a district device may give, every change set it holds of that branch
 * and of the district scope. Each author's signed enrollment goes with its
 * sets when the replica keeps it. Allocates nothing that outlives the call.
 * Fails with ERR_INVALID (not enrolled, not allowed, too large, a database
 * or file error).
 */
int bundle_export(struct replica *r, const struct identity *id,
		  const char *for_branch, const char *path,
		  struct bundle_export_summary *sum /* OUT */, struct err *e);

/* What an import did. */
struct bundle_import_summary {
	struct bundle_meta meta;
	uint64_t changesets; /* in the bundle */
	uint64_t applied;    /* merged for the first time */
	uint64_t duplicates; /* already here */
	uint64_t relayed;    /* queued in bs_relay for the next sync */
	uint64_t conflicts;
};

/*
 * Reads the bundle file at `path`, verifies all of it (docs/BUNDLE.md,
 * "Import") and only then applies its change sets, in bundle order, in one
 * transaction; on a district device, others' change sets from a device
 * bundle are also queued for relay. Fails with ERR_VERIFY (the bundle
 * does not verify; the message names the frame) or ERR_INVALID (not
 * enrolled, a bundle this device may not see, a file or database error);
 * either way nothing was applied. Allocates nothing that outlives the
 * call.
 */
int bundle_import(struct replica *r, const struct identity *id,
		  const char *path, struct bundle_import_summary *sum /* OUT */,
		  struct err *e);

/* Keeps the exact signed bytes of an enrollment the caller verified, for
 * later bundles (the first one of a key stands). Runs in the caller's
 * transaction; ERR_INVALID on a database error. */
int bundle_enrollment_keep(struct replica *r,
			   const uint8_t device[SIGN_PUBLIC_BYTES],
			   const uint8_t *signed_bytes, size_t len,
			   struct err *e);

#endif
