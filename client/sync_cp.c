/* sync_cp.c - the checkpoints of a sync: each one the server signs must
 * extend the one this device verified before (the log only grows), else
 * both are kept as evidence of a fork (docs/SYNC.md, "Forks"). */
#include "sync_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "answer.h"
#include "merkle.h"
#include "proof.h"

/* Keeps both signed checkpoints as evidence and fails. */
int synccp_fork(struct sync *s, const struct checkpoint *cp,
		const char *why, struct err *e)
{
	uint8_t a[CHECKPOINT_SIGNED_MAX], b[CHECKPOINT_SIGNED_MAX];
	char old_root[2 * HASH_BYTES + 1], new_root[2 * HASH_BYTES + 1];
	char detail[512];
	size_t alen = answer_checkpoint_bytes(&s->cp, a);
	size_t blen = answer_checkpoint_bytes(cp, b);

	sodium_bin2hex(old_root, sizeof old_root, s->cp.root, HASH_BYTES);
	sodium_bin2hex(new_root, sizeof new_root, cp->root, HASH_BYTES);
	snprintf(detail, sizeof detail, "%s: checkpoint b (%llu entries, "
		 "root %s) does not extend checkpoint a (%llu entries, root "
		 "%s) verified before", why, (unsigned long long)cp->size,
		 new_root, (unsigned long long)s->cp.size, old_root);
	sync_evidence(s, "fork", detail, a, alen, b, blen);
	err_set(e, ERR_VERIFY, "the server's log forked (%s): its signed "
		"checkpoint of %llu entries does not extend the one of %llu "
		"entries this device verified before; both are kept in "
		"bs_evidence, show them to the district office and the auditor",
		why, (unsigned long long)cp->size,
		(unsigned long long)s->cp.size);
	return -1;
}

/* Fetches the consistency proof from our checkpoint to one of `size`. */
static int synccp_fetch_consistency(struct sync *s, uint64_t size,
				    struct proof *p, struct err *e)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct frame f;
	char target[96];
	enum bs_status st;
	int rc = -1;

	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, SYNC_SMALL_FRAME_MAX);
	snprintf(target, sizeof target, "/v1/consistency?old=%" PRIu64
		 "&new=%" PRIu64, s->cp.size, size);
	if (answer_get(s->t, target, 0, "consistency proof", &rep, e))
		goto cleanup;
	answer_frames_init(&fr, &rep.body, SYNC_SMALL_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_PROOF, "consistency proof", &f, e))
		goto cleanup;
	if ((st = proof_decode(f.payload, f.len, p)) != BS_OK) {
		err_set(e, ERR_VERIFY, "the server's consistency proof is "
			"malformed (%s)", bs_status_str(st));
		goto cleanup;
	}
	if (answer_frames_end(&fr, e))
		goto cleanup;
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	transport_reply_release(&rep);
	return rc;
}

/* Checks that cp extends the stored checkpoint: same root at the same
 * size, or a consistency proof (given, or fetched when NULL). A log that
 * shrank or a proof that fails is a fork. */
static int synccp_extends(struct sync *s, const struct checkpoint *cp,
			  const struct proof *given, struct err *e)
{
	struct proof fetched;
	const struct proof *p = given;

	if (cp->size < s->cp.size)
		return synccp_fork(s, cp, "the log shrank", e);
	if (cp->size == s->cp.size) {
		if (memcmp(cp->root, s->cp.root, HASH_BYTES) != 0)
			return synccp_fork(s, cp, "two roots for one size", e);
		return 0;
	}
	if (!p) {
		if (synccp_fetch_consistency(s, cp->size, &fetched, e))
			return -1;
		p = &fetched;
	}
	if (p->kind != PROOF_CONSISTENCY || p->first != s->cp.size ||
	    p->second != cp->size)
		return synccp_fork(s, cp, "the consistency proof is for other "
				   "sizes", e);
	if (merkle_verify_consistency(s->cp.size, cp->size, s->cp.root,
				      cp->root, &p->path) != BS_OK)
		return synccp_fork(s, cp, "the consistency proof fails", e);
	return 0;
}

/* Given an answer's verified checkpoint (a push receipt's or a pull
 * page's), reads the consistency proof that follows it when it is larger
 * than ours, and proves it extends ours. */
int synccp_checkpoint_proof(struct sync *s, struct answer_frames *fr,
			    const struct checkpoint *cp, struct err *e)
{
	struct frame f;
	struct proof p;
	enum bs_status st;

	if (cp->size <= s->cp.size)
		return synccp_extends(s, cp, NULL, e);
	if (answer_frames_expect(fr, FRAME_PROOF, "consistency proof", &f, e))
		return -1;
	if ((st = proof_decode(f.payload, f.len, &p)) != BS_OK) {
		err_set(e, ERR_VERIFY, "the server's consistency proof is "
			"malformed (%s)", bs_status_str(st));
		return -1;
	}
	return synccp_extends(s, cp, &p, e);
}

/* Reads a pull page's checkpoint and proves it extends ours. */
int synccp_answer_checkpoint(struct sync *s, struct answer_frames *fr,
			     struct checkpoint *cp, struct err *e)
{
	struct frame f;

	if (answer_frames_expect(fr, FRAME_CHECKPOINT, "checkpoint", &f, e) ||
	    answer_checkpoint_open(f.payload, f.len, s->server_pk, s->origin,
				   cp, e))
		return -1;
	return synccp_checkpoint_proof(s, fr, cp, e);
}

int synccp_store_checkpoint(struct sync *s, const struct checkpoint *cp,
			    struct err *e)
{
	uint8_t b[CHECKPOINT_SIGNED_MAX];
	size_t n = answer_checkpoint_bytes(cp, b);

	return replica_setting_set(s->r, "checkpoint", b, n, e);
}
