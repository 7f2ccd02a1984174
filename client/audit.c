/* audit.c - the auditor's verifier (see audit.h; the rules and what each
 * failure means are in docs/AUDIT.md). Entries are buffered in batches:
 * worker threads check a batch on its own (leaf hashes, decoding,
 * signatures, body validity) while the caller's thread judges and replays
 * the batch before it in log order, so memory stays bounded by two batches
 * and signature checking overlaps the replay. Not for I/O of any kind. */
#include "audit.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "changeset.h"
#include "digest.h"
#include "logentry.h"
#include "mem.h"
#include "merge.h"
#include "merkle.h"
#include "replica.h"
#include "schema.h"
#include "wire.h"

#define AUDIT_THREADS_MAX 8
/* A chain position beyond the next by more than this is not taken: a
 * hostile log must not make us allocate for sequences nobody wrote. */
#define AUDIT_GAP_MAX  1024
#define AUDIT_NO_INDEX UINT64_MAX

/* One position of a device's chain: the change set holding it. */
struct audit_link {
	uint8_t id[HASH_BYTES];
	uint64_t index; /* AUDIT_NO_INDEX: skipped by a gap */
};

/* An enrolled device, as the log has told of it so far. */
struct audit_dev {
	uint8_t key[SIGN_PUBLIC_BYTES];
	int used;
	enum enrollment_role role;
	char scope[ENROLLMENT_SCOPE_MAX + 1];
	uint64_t enroll_idx;
	int revoked;
	uint64_t revoke_idx;
	int wrote;
	uint64_t last_seq;	  /* positions 1..last_seq are taken */
	struct audit_link *chain; /* chain[s - 1] holds sequence s */
	size_t cap;
};

/* One entry of the batch and what the parallel phase found. */
struct audit_item {
	uint64_t index;
	size_t off, len; /* in the batch's bytes */
	uint8_t leaf[HASH_BYTES];
	enum bs_status le_st;  /* logentry_decode */
	enum bs_status obj_st; /* the payload: decoding, and the
				  server's signature on enrollments
				  and revocations */
	enum bs_status sig_st; /* a change set's own signature */
	int body_bad;	       /* merge_check refused the body */
	int too_long;	       /* over LOGENTRY_MAX: bytes not kept */
	struct logentry le;
	union {
		struct changeset cs;
		struct enrollment en;
		struct revocation rv;
	} u;
};

struct audit;

/* One worker's share of a batch: items first, first + step, ... */
struct audit_worker {
	const struct audit *a;
	struct audit_batch *b;
	size_t first, step;
};

/* Entries buffered together: their bytes, and the items pointing there. */
struct audit_batch {
	struct buf bytes;
	struct audit_item *items;
	size_t nitems;
	int checking; /* workers may be running on it */
	size_t nthreads;
	pthread_t th[AUDIT_THREADS_MAX];
	int started[AUDIT_THREADS_MAX];
	struct audit_worker w[AUDIT_THREADS_MAX];
};

/* Row hashes kept for the comparison: ROWHASH payloads end to end in
 * `bytes`, the i-th from off[i] to off[i + 1]. */
struct audit_rows {
	struct buf bytes; /* capped at AUDIT_ROWS_BYTES */
	uint32_t *off;	  /* n + 1 offsets once n > 0 */
	size_t n, cap;
	int full; /* the cap or memory was reached: rows were lost */
};

/* One row hash, decoded, pointing into an audit_rows. */
struct audit_row {
	struct digest_rowhash h;
};

struct audit {
	uint8_t server_pk[SIGN_PUBLIC_BYTES];
	char origin[CHECKPOINT_ORIGIN_MAX + 1];
	struct audit_options o;
	const struct schema_table *rec_table;
	struct replica *r;
	struct merge *merge;
	/* two batches: one filled (and then judged) by the caller's thread
	 * while the other is checked by the workers */
	struct audit_batch batch[2];
	int cur; /* the batch being filled */
	/* the log so far */
	uint64_t next;	 /* the index expected next */
	uint8_t *leaves; /* leaf hashes in the order fed */
	uint64_t nleaves, leaves_cap;
	struct audit_dev *devs; /* open addressing, power of two */
	size_t devs_cap, ndevs;
	char (*scopes)[CHANGESET_SCOPE_MAX + 1]; /* sorted */
	size_t nscopes, scopes_cap;
	struct merge_stats stats;
	uint8_t cp_bytes[CHECKPOINT_SIGNED_MAX];
	size_t cp_len;
	int cp_given;
	uint8_t sd_bytes[STATEDIGEST_SIGNED_MAX];
	size_t sd_len;
	int sd_given;
	size_t events_cap;
	struct audit_rows srv_rows, rep_rows; /* the server's, the replay's */
	int rows_given;
	uint64_t rows_bad; /* malformed ROWHASH frames */
	struct audit_result res;
};

static const uint8_t audit_empty[1];

static void audit_batch_wait(struct audit_batch *b);

/* ---- failures ---- */

static void audit_failv(struct audit *a, int64_t index, const uint8_t *device,
			const char *fmt, va_list ap)
{
	struct audit_failure *f;

	a->res.failures_total++;
	if (a->res.nfailures == AUDIT_FAILURES_MAX)
		return;
	f = &a->res.failures[a->res.nfailures++];
	f->index = index;
	f->has_device = device != NULL;
	if (device)
		memcpy(f->device, device, SIGN_PUBLIC_BYTES);
	vsnprintf(f->reason, sizeof f->reason, fmt, ap);
}

void audit_fail(struct audit *a, int64_t index, const uint8_t *device,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	audit_failv(a, index, device, fmt, ap);
	va_end(ap);
}

/* A failure about log entry `index` (unsigned in the log). */
static void audit_fail_at(struct audit *a, uint64_t index,
			  const uint8_t *device, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void audit_fail_at(struct audit *a, uint64_t index,
			  const uint8_t *device, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	audit_failv(a, index > INT64_MAX ? INT64_MAX : (int64_t)index, device,
		    fmt, ap);
	va_end(ap);
}

static void audit_hex(const uint8_t *p, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, p, n);
}

/* ---- devices ---- */

static size_t audit_dev_slot(const struct audit *a,
			     const uint8_t key[SIGN_PUBLIC_BYTES])
{
	uint64_t h;

	/* keys are public and come from server-signed enrollments, so their
	 * first bytes spread well enough */
	memcpy(&h, key, sizeof h);
	h ^= h >> 29;
	return (size_t)(h * UINT64_C(0x9e3779b97f4a7c15) >> 11) &
	       (a->devs_cap - 1);
}

static struct audit_dev *audit_dev_find(struct audit *a,
					const uint8_t key[SIGN_PUBLIC_BYTES])
{
	size_t i = audit_dev_slot(a, key);

	while (a->devs[i].used) {
		if (memcmp(a->devs[i].key, key, SIGN_PUBLIC_BYTES) == 0)
			return &a->devs[i];
		i = (i + 1) & (a->devs_cap - 1);
	}
	return NULL;
}

/* Doubles the table. Pointers into it are invalid afterwards. */
static int audit_dev_grow(struct audit *a)
{
	struct audit_dev *old = a->devs;
	size_t old_cap = a->devs_cap, i, j;

	a->devs = mem_calloc(old_cap * 2, sizeof *a->devs);
	if (!a->devs) {
		a->devs = old;
		return -1;
	}
	a->devs_cap = old_cap * 2;
	for (i = 0; i < old_cap; i++) {
		if (!old[i].used)
			continue;
		j = audit_dev_slot(a, old[i].key);
		while (a->devs[j].used)
			j = (j + 1) & (a->devs_cap - 1);
		a->devs[j] = old[i];
	}
	mem_free(old);
	return 0;
}

/* Adds a key known not to be in the table; NULL when out of memory. */
static struct audit_dev *audit_dev_add(struct audit *a,
				       const uint8_t key[SIGN_PUBLIC_BYTES])
{
	size_t i;

	if (2 * (a->ndevs + 1) > a->devs_cap && audit_dev_grow(a))
		return NULL;
	i = audit_dev_slot(a, key);
	while (a->devs[i].used)
		i = (i + 1) & (a->devs_cap - 1);
	memset(&a->devs[i], 0, sizeof a->devs[i]);
	a->devs[i].used = 1;
	memcpy(a->devs[i].key, key, SIGN_PUBLIC_BYTES);
	a->ndevs++;
	return &a->devs[i];
}

/* Takes chain position `seq` for a change set; positions skipped by a gap
 * stay unknown. Returns -1 when out of memory. */
static int audit_chain_take(struct audit_dev *d, uint64_t seq,
			    const uint8_t id[HASH_BYTES], uint64_t index)
{
	uint64_t s;

	if (seq <= d->last_seq || seq - d->last_seq > AUDIT_GAP_MAX)
		return 0;
	if (seq > d->cap) {
		size_t cap = d->cap ? d->cap : 16;
		struct audit_link *c;

		while (cap < seq)
			cap *= 2;
		c = mem_realloc(d->chain, cap * sizeof *c);
		if (!c)
			return -1;
		d->chain = c;
		d->cap = cap;
	}
	for (s = d->last_seq + 1; s < seq; s++) {
		memset(d->chain[s - 1].id, 0, HASH_BYTES);
		d->chain[s - 1].index = AUDIT_NO_INDEX;
	}
	memcpy(d->chain[seq - 1].id, id, HASH_BYTES);
	d->chain[seq - 1].index = index;
	d->last_seq = seq;
	return 0;
}

static const char *audit_role_name(enum enrollment_role role)
{
	const char *n = enrollment_role_name(role);

	return n ? n : "unknown";
}

/* ---- scopes written ---- */

static int audit_scope_note(struct audit *a, const char *scope)
{
	size_t lo = 0, hi = a->nscopes, mid;
	int c;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		c = strcmp(a->scopes[mid], scope);
		if (c == 0)
			return 0;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (a->nscopes == a->scopes_cap) {
		size_t cap = a->scopes_cap ? 2 * a->scopes_cap : 16;
		void *p = mem_realloc(a->scopes, cap * sizeof *a->scopes);

		if (!p)
			return -1;
		a->scopes = p;
		a->scopes_cap = cap;
	}
	memmove(a->scopes + lo + 1, a->scopes + lo,
		(a->nscopes - lo) * sizeof *a->scopes);
	snprintf(a->scopes[lo], sizeof a->scopes[lo], "%s", scope);
	a->nscopes++;
	return 0;
}

/* ---- life cycle ---- */

int audit_new(const uint8_t server_pk[SIGN_PUBLIC_BYTES], const char *origin,
	      const struct audit_options *o, struct audit **out, struct err *e)
{
	struct audit *a = NULL;
	size_t i;

	*out = NULL;
	if (o->record_table && !schema_table_find(o->record_table)) {
		err_set(e, ERR_USAGE, "--record: there is no table '%.64s'",
			o->record_table);
		return -1;
	}
	a = mem_calloc(1, sizeof *a);
	if (!a)
		goto nomem;
	memcpy(a->server_pk, server_pk, SIGN_PUBLIC_BYTES);
	snprintf(a->origin, sizeof a->origin, "%s", origin);
	a->o = *o;
	if (a->o.threads == 0)
		a->o.threads = AUDIT_THREADS;
	if (a->o.threads > AUDIT_THREADS_MAX)
		a->o.threads = AUDIT_THREADS_MAX;
	a->rec_table =
	    o->record_table ? schema_table_find(o->record_table) : NULL;
	for (i = 0; i < 2; i++) {
		buf_init(&a->batch[i].bytes, AUDIT_BATCH_BYTES + LOGENTRY_MAX);
		a->batch[i].items =
		    mem_calloc(AUDIT_BATCH_ITEMS, sizeof *a->batch[i].items);
		if (!a->batch[i].items)
			goto nomem;
	}
	buf_init(&a->srv_rows.bytes, AUDIT_ROWS_BYTES);
	buf_init(&a->rep_rows.bytes, AUDIT_ROWS_BYTES);
	a->res.failures =
	    mem_calloc(AUDIT_FAILURES_MAX, sizeof *a->res.failures);
	a->devs_cap = 64;
	a->devs = mem_calloc(a->devs_cap, sizeof *a->devs);
	if (!a->res.failures || !a->devs)
		goto nomem;
	if (replica_open(":memory:", REPLICA_MEMORY, &a->r, e) ||
	    replica_exec(a->r->db, "PRAGMA secure_delete=OFF", e) ||
	    merge_new(a->r->db, &a->merge, e))
		goto fail;
	/* the replay keeps the log's change sets nowhere but in the log */
	merge_drop_bytes(a->merge);
	*out = a;
	return 0;
nomem:
	err_set(e, ERR_INVALID, "out of memory starting the audit");
fail:
	audit_free(a);
	return -1;
}

static void audit_values_free(struct audit_value *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		mem_free(v[i].text);
	mem_free(v);
}

void audit_free(struct audit *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < 2; i++) {
		audit_batch_wait(&a->batch[i]);
		buf_release(&a->batch[i].bytes);
		mem_free(a->batch[i].items);
	}
	merge_free(a->merge);
	replica_close(a->r);
	mem_free(a->leaves);
	for (i = 0; a->devs && i < a->devs_cap; i++)
		mem_free(a->devs[i].chain);
	mem_free(a->devs);
	mem_free(a->scopes);
	mem_free(a->res.failures);
	buf_release(&a->srv_rows.bytes);
	mem_free(a->srv_rows.off);
	buf_release(&a->rep_rows.bytes);
	mem_free(a->rep_rows.off);
	for (i = 0; i < a->res.nevents; i++)
		audit_values_free(a->res.events[i].values,
				  a->res.events[i].nvalues);
	mem_free(a->res.events);
	audit_values_free(a->res.now, a->res.nnow);
	mem_free(a);
}

const struct audit_result *audit_result(const struct audit *a)
{
	return &a->res;
}

void audit_checkpoint(struct audit *a, const uint8_t *p, size_t len)
{
	if (a->cp_given++) {
		audit_fail(a, -1, NULL,
			   "more than one checkpoint was given "
			   "for one log");
		return;
	}
	a->cp_len = len;
	if (len <= sizeof a->cp_bytes)
		memcpy(a->cp_bytes, p, len);
}

void audit_digest(struct audit *a, const uint8_t *p, size_t len)
{
	if (a->sd_given++) {
		audit_fail(a, -1, NULL,
			   "more than one state digest was given "
			   "for one log");
		return;
	}
	a->sd_len = len;
	if (len <= sizeof a->sd_bytes)
		memcpy(a->sd_bytes, p, len);
}

/* ---- the parallel phase: what each entry is, on its own ---- */

static void audit_check_item(const struct audit *a, const struct audit_batch *b,
			     struct audit_item *it)
{
	const uint8_t *p =
	    b->bytes.data ? b->bytes.data + it->off : audit_empty;
	struct err why;

	if (it->too_long)
		return;
	logentry_leaf_hash(p, it->len, it->leaf);
	it->le_st = logentry_decode(p, it->len, &it->le);
	if (it->le_st)
		return;
	switch (it->le.kind) {
	case LOGENTRY_CHANGESET:
		it->obj_st = changeset_decode(it->le.payload,
					      it->le.payload_len, &it->u.cs);
		if (it->obj_st)
			return;
		it->sig_st = changeset_verify(&it->u.cs);
		if (it->sig_st)
			return;
		/* SQLite's changeset iterator needs no connection, so the
		 * body's schema check runs here too */
		err_init(&why);
		it->body_bad = merge_check(&it->u.cs, &why) != 0;
		break;
	case LOGENTRY_ENROLLMENT:
		it->obj_st = enrollment_open(it->le.payload, it->le.payload_len,
					     a->server_pk, &it->u.en);
		break;
	case LOGENTRY_REVOCATION:
		it->obj_st = revocation_open(it->le.payload, it->le.payload_len,
					     a->server_pk, &it->u.rv);
		break;
	}
}

static void *audit_worker_run(void *arg)
{
	struct audit_worker *w = arg;
	size_t i;

	for (i = w->first; i < w->b->nitems; i += w->step)
		audit_check_item(w->a, w->b, &w->b->items[i]);
	return NULL;
}

/* Starts o.threads workers on batch b and returns at once; a worker that
 * cannot be started leaves its share to audit_batch_wait. */
static void audit_batch_start(const struct audit *a, struct audit_batch *b)
{
	size_t n = b->nitems < 16 ? 1 : a->o.threads, t;

	if (n < 1 || n > AUDIT_THREADS_MAX)
		n = 1;
	b->nthreads = n;
	b->checking = 1;
	for (t = 0; t < n; t++) {
		b->w[t].a = a;
		b->w[t].b = b;
		b->w[t].first = t;
		b->w[t].step = n;
		b->started[t] = pthread_create(&b->th[t], NULL,
					       audit_worker_run, &b->w[t]) == 0;
	}
}

/* Waits for b's workers (doing the share of any that did not start). */
static void audit_batch_wait(struct audit_batch *b)
{
	size_t t;

	if (!b->checking)
		return;
	for (t = 0; t < b->nthreads; t++) {
		if (b->started[t])
			pthread_join(b->th[t], NULL);
		else
			audit_worker_run(&b->w[t]);
	}
	b->checking = 0;
}

/* ---- the sequential phase: the entry in its place in the log ---- */

static void audit_position(struct audit *a, const struct audit_item *it)
{
	if (it->index == a->next) {
		a->next++;
		return;
	}
	if (it->index > a->next && it->index == a->next + 1)
		audit_fail_at(a, a->next, NULL,
			      "this entry is missing: the "
			      "log goes from entry %llu to entry %llu",
			      (unsigned long long)a->next - 1,
			      (unsigned long long)it->index);
	else if (it->index > a->next)
		audit_fail_at(a, a->next, NULL,
			      "entries %llu to %llu are "
			      "missing: the log goes on with entry %llu",
			      (unsigned long long)a->next,
			      (unsigned long long)it->index - 1,
			      (unsigned long long)it->index);
	else
		audit_fail_at(a, it->index, NULL,
			      "this entry is out of order "
			      "or repeated: it comes after entry %llu",
			      (unsigned long long)a->next - 1);
	if (it->index >= a->next)
		a->next = it->index + 1;
}

static void audit_enrollment(struct audit *a, const struct audit_item *it,
			     int *oom)
{
	const struct enrollment *en = &it->u.en;
	struct audit_dev *d;

	if (it->obj_st) {
		audit_fail_at(a, it->index, NULL,
			      "the enrollment does not "
			      "verify with the server's key (%s)",
			      bs_status_str(it->obj_st));
		return;
	}
	a->res.enrollments++;
	d = audit_dev_find(a, en->device);
	if (d) {
		audit_fail_at(a, it->index, en->device,
			      "the device is "
			      "enrolled a second time (first at entry %llu)",
			      (unsigned long long)d->enroll_idx);
		return;
	}
	d = audit_dev_add(a, en->device);
	if (!d) {
		*oom = 1;
		return;
	}
	d->role = en->role;
	snprintf(d->scope, sizeof d->scope, "%s", en->scope);
	d->enroll_idx = it->index;
	a->res.devices++;
}

static void audit_revocation(struct audit *a, const struct audit_item *it)
{
	const struct revocation *rv = &it->u.rv;
	struct audit_dev *d;

	if (it->obj_st) {
		audit_fail_at(a, it->index, NULL,
			      "the revocation does not "
			      "verify with the server's key (%s)",
			      bs_status_str(it->obj_st));
		return;
	}
	a->res.revocations++;
	d = audit_dev_find(a, rv->device);
	if (!d || d->enroll_idx >= it->index) {
		audit_fail_at(a, it->index, rv->device,
			      "the revocation names "
			      "a device the log had not enrolled before it");
		return;
	}
	if (d->revoked) {
		audit_fail_at(a, it->index, rv->device,
			      "the device is revoked "
			      "a second time (first at entry %llu)",
			      (unsigned long long)d->revoke_idx);
		return;
	}
	d->revoked = 1;
	d->revoke_idx = it->index;
	a->res.revoked++;
}

/* Was the author enrolled before this entry and not revoked by then?
 * Failures are recorded; returns 1 when both hold. */
static int audit_author_ok(struct audit *a, const struct audit_item *it,
			   const struct audit_dev *d, const char *what)
{
	const struct changeset *cs = &it->u.cs;

	if (!d) {
		audit_fail_at(a, it->index, cs->env.author,
			      "%s a change set "
			      "by a device the log never enrolled",
			      what);
		return 0;
	}
	if (d->enroll_idx >= it->index) {
		audit_fail_at(a, it->index, cs->env.author,
			      "%s a change set "
			      "by a device enrolled only later, at entry %llu",
			      what, (unsigned long long)d->enroll_idx);
		return 0;
	}
	if (d->revoked && d->revoke_idx < it->index) {
		audit_fail_at(a, it->index, cs->env.author,
			      "%s a change set "
			      "by a device revoked before it, at entry %llu",
			      what, (unsigned long long)d->revoke_idx);
		return 0;
	}
	return 1;
}

static void audit_link_name(const struct audit_link *l, char *out, size_t n)
{
	if (l->index == AUDIT_NO_INDEX)
		snprintf(out, n, "a change set missing from the log");
	else
		snprintf(out, n, "the change set at entry %llu",
			 (unsigned long long)l->index);
}

/* The chain rule for a set that must take the next position (accepted,
 * or refused by policy). Records a failure and returns 0 if it does not;
 * then takes the position when it lies ahead, so one bad set does not
 * make every later one fail. */
static int audit_chain_next(struct audit *a, const struct audit_item *it,
			    struct audit_dev *d, const char *what, int *oom)
{
	const struct changeset *cs = &it->u.cs;
	uint64_t seq = cs->env.seq;
	char held[64];

	if (seq <= d->last_seq) {
		const struct audit_link *l = &d->chain[seq - 1];

		audit_link_name(l, held, sizeof held);
		if (memcmp(l->id, cs->id, HASH_BYTES) == 0)
			audit_fail_at(a, it->index, cs->env.author,
				      "%s the "
				      "same change set again: sequence %llu is "
				      "%s",
				      what, (unsigned long long)seq, held);
		else
			audit_fail_at(a, it->index, cs->env.author,
				      "%s an "
				      "equivocation: sequence %llu of this "
				      "device is already %s",
				      what, (unsigned long long)seq, held);
		return 0;
	}
	if (seq > d->last_seq + 1 && d->last_seq == 0) {
		audit_fail_at(a, it->index, cs->env.author,
			      "%s a change set "
			      "after a chain gap: the device's first change "
			      "set in the log has sequence %llu",
			      what, (unsigned long long)seq);
	} else if (seq > d->last_seq + 1) {
		audit_fail_at(a, it->index, cs->env.author,
			      "%s a change set "
			      "after a chain gap: sequence %llu follows "
			      "sequence %llu",
			      what, (unsigned long long)seq,
			      (unsigned long long)d->last_seq);
	} else if (d->last_seq > 0 && memcmp(cs->env.prev, d->chain[seq - 2].id,
					     HASH_BYTES) != 0) {
		audit_link_name(&d->chain[seq - 2], held, sizeof held);
		audit_fail_at(a, it->index, cs->env.author,
			      "%s a fork of the "
			      "device's chain: its previous id is not that of "
			      "sequence %llu, %s",
			      what, (unsigned long long)seq - 1, held);
	} else {
		return audit_chain_take(d, seq, cs->id, it->index)
			   ? (*oom = 1, 0)
			   : 1;
	}
	if (audit_chain_take(d, seq, cs->id, it->index))
		*oom = 1;
	return 0;
}

/* Why the schema refuses this set's body, or NULL if it is valid. */
static const char *audit_body_policy(const struct audit_item *it, char *buf,
				     size_t n)
{
	const struct changeset *cs = &it->u.cs;
	struct err why;

	if (cs->env.schema_version != SCHEMA_VERSION) {
		snprintf(buf, n, "unknown schema version %llu",
			 (unsigned long long)cs->env.schema_version);
		return buf;
	}
	if (!it->body_bad)
		return NULL;
	err_init(&why);
	merge_check(cs, &why);
	snprintf(buf, n, "the body is not valid for the schema: %.200s",
		 why.msg);
	return buf;
}

/* Why policy refuses this set from this author, or NULL if it allows it
 * (docs/API.md, "Ingest", step 7). */
static const char *audit_policy(const struct audit_item *it,
				const struct audit_dev *d, char *buf, size_t n)
{
	const struct changeset *cs = &it->u.cs;

	if (d->role == ROLE_AUDITOR)
		return "auditor devices may not write";
	if (d->role != ROLE_BRANCH && d->role != ROLE_DISTRICT)
		return "the author's role allows no writing";
	if (d->role == ROLE_BRANCH && strcmp(cs->env.scope, d->scope) != 0) {
		snprintf(buf, n,
			 "out of scope: a device of branch %s wrote "
			 "scope %s",
			 d->scope, cs->env.scope);
		return buf;
	}
	return audit_body_policy(it, buf, n);
}

static int audit_starts(const struct logentry *le, const char *prefix)
{
	size_t n = strlen(prefix);

	return le->reason_len >= n && memcmp(le->reason, prefix, n) == 0;
}

/* A refused set: it must be something the server may log as refused,
 * and the reason must be true. Refused sets are never replayed. */
static void audit_refused(struct audit *a, const struct audit_item *it,
			  struct audit_dev *d, int *oom)
{
	const struct changeset *cs = &it->u.cs;
	const struct logentry *le = &it->le;
	uint64_t seq = cs->env.seq;
	char buf[300], held[64];
	const char *why;
	int rlen = le->reason_len > 120 ? 120 : (int)le->reason_len;

	if (!audit_author_ok(a, it, d, "the server logged a refusal of"))
		return;
	if (audit_starts(le, "equivocation")) {
		if (seq > d->last_seq)
			audit_fail_at(a, it->index, cs->env.author,
				      "logged "
				      "as an equivocation, but sequence %llu "
				      "of this device was not in the log "
				      "before",
				      (unsigned long long)seq);
		else if (memcmp(d->chain[seq - 1].id, cs->id, HASH_BYTES) == 0)
			audit_fail_at(
			    a, it->index, cs->env.author,
			    "logged "
			    "as an equivocation, but it is the very "
			    "change set at entry %llu",
			    (unsigned long long)d->chain[seq - 1].index);
		return;
	}
	if (audit_starts(le, "chain fork")) {
		if (seq != d->last_seq + 1 || d->last_seq == 0)
			audit_fail_at(a, it->index, cs->env.author,
				      "logged "
				      "as a chain fork, but sequence %llu is "
				      "not the device's next (%llu)",
				      (unsigned long long)seq,
				      (unsigned long long)d->last_seq + 1);
		else if (memcmp(cs->env.prev, d->chain[seq - 2].id,
				HASH_BYTES) == 0) {
			audit_link_name(&d->chain[seq - 2], held, sizeof held);
			audit_fail_at(a, it->index, cs->env.author,
				      "logged "
				      "as a chain fork, but it continues the "
				      "chain from %s",
				      held);
		}
		return;
	}
	/* a refusal by policy takes its place in the chain */
	audit_chain_next(a, it, d, "the server logged as refused by policy",
			 oom);
	why = audit_policy(it, d, buf, sizeof buf);
	if (!why)
		audit_fail_at(a, it->index, cs->env.author,
			      "refused (\"%.*s\") "
			      "although its author may write scope %s and its "
			      "body is valid",
			      rlen, le->reason, cs->env.scope);
	else if (audit_starts(le, "out of scope") &&
		 !(d->role == ROLE_BRANCH && strcmp(d->scope, cs->env.scope)))
		audit_fail_at(a, it->index, cs->env.author,
			      "refused as out of "
			      "scope, but a %s device of scope %s may write "
			      "scope %s",
			      audit_role_name(d->role), d->scope,
			      cs->env.scope);
	else if (audit_starts(le, "auditor") && d->role != ROLE_AUDITOR)
		audit_fail_at(a, it->index, cs->env.author,
			      "refused as written "
			      "by an auditor, but its author is a %s device",
			      audit_role_name(d->role));
}

/* Copies a changeset value for --record. */
static int audit_value_set(struct audit_value *v, const char *column,
			   sqlite3_value *sv)
{
	v->column = column;
	v->text = NULL;
	switch (sv ? sqlite3_value_type(sv) : SQLITE_NULL) {
	case SQLITE_NULL:
		v->kind = 0;
		return 0;
	case SQLITE_INTEGER:
		v->kind = 1;
		v->i = sqlite3_value_int64(sv);
		return 0;
	default:
		v->kind = 2;
		v->text = mem_strndup((const char *)sqlite3_value_text(sv),
				      (size_t)sqlite3_value_bytes(sv));
		return v->text ? 0 : -1;
	}
}

static struct audit_event *audit_event_add(struct audit *a)
{
	struct audit_event *ev;

	if (a->res.nevents == a->events_cap) {
		size_t cap = a->events_cap ? 2 * a->events_cap : 8;
		void *p = mem_realloc(a->res.events, cap * sizeof *ev);

		if (!p)
			return NULL;
		a->res.events = p;
		a->events_cap = cap;
	}
	ev = &a->res.events[a->res.nevents++];
	memset(ev, 0, sizeof *ev);
	return ev;
}

/* Notes one row operation of a replayed set if it is the --record row. */
static int audit_record_op(struct audit *a, const struct audit_item *it,
			   const struct audit_dev *d,
			   sqlite3_changeset_iter *iter)
{
	const struct schema_table *t = a->rec_table;
	const char *tname, *id, *branch;
	sqlite3_value *v = NULL, *b = NULL;
	struct audit_event *ev;
	int ncol, op, ind;
	size_t i;

	if (sqlite3changeset_op(iter, &tname, &ncol, &op, &ind) != SQLITE_OK ||
	    strcmp(tname, t->name) != 0 || (size_t)ncol != t->ncolumns + 2)
		return 0;
	if (op == SQLITE_INSERT) {
		sqlite3changeset_new(iter, 0, &v);
		sqlite3changeset_new(iter, 1, &b);
	} else {
		sqlite3changeset_old(iter, 0, &v);
		sqlite3changeset_old(iter, 1, &b);
	}
	id = v ? (const char *)sqlite3_value_text(v) : NULL;
	branch = b ? (const char *)sqlite3_value_text(b) : NULL;
	if (!id || !branch || strcmp(id, a->o.record_id) != 0)
		return 0;
	if (!(ev = audit_event_add(a)))
		return -1;
	ev->index = it->index;
	memcpy(ev->author, it->u.cs.env.author, SIGN_PUBLIC_BYTES);
	snprintf(ev->role, sizeof ev->role, "%s",
		 d ? audit_role_name(d->role) : "unknown");
	snprintf(ev->scope, sizeof ev->scope, "%s", d ? d->scope : "");
	snprintf(ev->branch_id, sizeof ev->branch_id, "%s", branch);
	ev->hlc = it->u.cs.env.hlc;
	ev->op = op == SQLITE_INSERT   ? "insert"
		 : op == SQLITE_UPDATE ? "update"
				       : "delete";
	if (op == SQLITE_DELETE)
		return 0;
	ev->values = mem_calloc(t->ncolumns, sizeof *ev->values);
	if (!ev->values)
		return -1;
	for (i = 0; i < t->ncolumns; i++) {
		v = NULL;
		sqlite3changeset_new(iter, (int)i + 2, &v);
		/* an UPDATE carries only the columns it changed */
		if (op == SQLITE_UPDATE && !v)
			continue;
		if (audit_value_set(&ev->values[ev->nvalues++],
				    t->columns[i].name, v))
			return -1;
	}
	return 0;
}

static int audit_record(struct audit *a, const struct audit_item *it,
			const struct audit_dev *d, struct err *e)
{
	sqlite3_changeset_iter *iter = NULL;
	int rc = -1, step;

	/* the body passed merge_check, so SQLite's iterator may see it */
	if (sqlite3changeset_start(&iter, (int)it->u.cs.body_len,
				   (void *)it->u.cs.body) != SQLITE_OK)
		goto cleanup;
	while ((step = sqlite3changeset_next(iter)) == SQLITE_ROW)
		if (audit_record_op(a, it, d, iter))
			goto cleanup;
	rc = 0;
cleanup:
	sqlite3changeset_finalize(iter);
	if (rc)
		err_set(e, ERR_INVALID,
			"out of memory keeping the record's "
			"history");
	return rc;
}

/* An accepted set: in the chain, by an author allowed to write its scope,
 * valid; then replayed. Authentic sets that break a rule are replayed all
 * the same (the server says it applied them), so that the digest says
 * separately whether its records are what its log yields. */
static int audit_accepted(struct audit *a, const struct audit_item *it,
			  struct audit_dev *d, int *oom, struct err *e)
{
	const struct changeset *cs = &it->u.cs;
	char buf[300];
	const char *why;
	int applied = 0;

	audit_author_ok(a, it, d, "the server accepted");
	why = d ? audit_policy(it, d, buf, sizeof buf)
		: audit_body_policy(it, buf, sizeof buf);
	if (d)
		audit_chain_next(a, it, d, "the server accepted", oom);
	if (why)
		audit_fail_at(a, it->index, cs->env.author,
			      "the server "
			      "accepted a change set that policy refuses: %s",
			      why);
	if (it->body_bad || *oom)
		return 0;
	if (merge_apply(a->merge, cs, &applied, &a->stats, e))
		return -1;
	if (!applied)
		return 0;
	a->res.applied++;
	if (d)
		d->wrote = 1;
	if (audit_scope_note(a, cs->env.scope)) {
		*oom = 1;
		return 0;
	}
	return a->rec_table ? audit_record(a, it, d, e) : 0;
}

static int audit_changeset(struct audit *a, const struct audit_item *it,
			   int *oom, struct err *e)
{
	const struct changeset *cs = &it->u.cs;
	struct audit_dev *d;

	a->res.changesets++;
	if (it->le.verdict == LOGENTRY_ACCEPTED)
		a->res.accepted++;
	else
		a->res.refused++;
	if (it->obj_st == BS_EHASH) {
		audit_fail_at(a, it->index, NULL,
			      "the change set's body does "
			      "not match the hash its author signed");
		return 0;
	}
	if (it->obj_st) {
		audit_fail_at(a, it->index, NULL,
			      "the change set is malformed "
			      "(%s)",
			      bs_status_str(it->obj_st));
		return 0;
	}
	if (it->sig_st) {
		audit_fail_at(
		    a, it->index, cs->env.author,
		    "the change set's "
		    "signature does not verify with its author's key");
		return 0;
	}
	d = audit_dev_find(a, cs->env.author);
	if (it->le.verdict == LOGENTRY_REFUSED) {
		audit_refused(a, it, d, oom);
		return 0;
	}
	return audit_accepted(a, it, d, oom, e);
}

static int audit_leaf_push(struct audit *a, const uint8_t leaf[HASH_BYTES])
{
	if (a->nleaves == a->leaves_cap) {
		uint64_t cap = a->leaves_cap ? 2 * a->leaves_cap : 4096;
		uint8_t *p =
		    cap > SIZE_MAX / HASH_BYTES
			? NULL
			: mem_realloc(a->leaves, (size_t)cap * HASH_BYTES);

		if (!p)
			return -1;
		a->leaves = p;
		a->leaves_cap = cap;
	}
	memcpy(a->leaves + a->nleaves * HASH_BYTES, leaf, HASH_BYTES);
	a->nleaves++;
	return 0;
}

/* Entry 0 opens every log: the server enrolls its own key as district. */
static void audit_first(struct audit *a, const struct audit_item *it)
{
	if (it->le_st == BS_OK && it->le.kind == LOGENTRY_ENROLLMENT &&
	    it->obj_st == BS_OK &&
	    memcmp(it->u.en.device, a->server_pk, SIGN_PUBLIC_BYTES) == 0 &&
	    it->u.en.role == ROLE_DISTRICT)
		return;
	audit_fail_at(a, it->index, NULL,
		      "the log does not start with the "
		      "server's enrollment of its own key as district");
}

static int audit_judge(struct audit *a, const struct audit_item *it,
		       struct err *e)
{
	int oom = 0, rc = 0;

	if (audit_leaf_push(a, it->leaf))
		goto nomem;
	a->res.entries++;
	audit_position(a, it);
	if (a->res.entries == 1)
		audit_first(a, it);
	if (it->le_st) {
		audit_fail_at(a, it->index, NULL,
			      "the log entry is malformed "
			      "(%s)",
			      bs_status_str(it->le_st));
		return 0;
	}
	switch (it->le.kind) {
	case LOGENTRY_ENROLLMENT:
		audit_enrollment(a, it, &oom);
		break;
	case LOGENTRY_REVOCATION:
		audit_revocation(a, it);
		break;
	case LOGENTRY_CHANGESET:
		rc = audit_changeset(a, it, &oom, e);
		break;
	}
	if (!oom)
		return rc;
nomem:
	err_set(e, ERR_INVALID, "out of memory auditing log entry %llu",
		(unsigned long long)it->index);
	return -1;
}

/* Judges and replays a checked batch in log order, in one transaction
 * of the private replica, and empties it. */
static int audit_judge_batch(struct audit *a, struct audit_batch *b,
			     struct err *e)
{
	size_t i;
	int rc = -1;

	audit_batch_wait(b);
	if (b->nitems == 0)
		return 0;
	if (replica_begin(a->r, e))
		goto cleanup;
	for (i = 0; i < b->nitems; i++)
		if (audit_judge(a, &b->items[i], e)) {
			replica_rollback(a->r);
			goto cleanup;
		}
	if (replica_commit(a->r, e))
		goto cleanup;
	rc = 0;
cleanup:
	b->nitems = 0;
	buf_reset(&b->bytes);
	return rc;
}

/* The batch being filled goes to the workers; the one they checked
 * before is judged meanwhile, and is filled next. */
static int audit_rotate(struct audit *a, struct err *e)
{
	struct audit_batch *full = &a->batch[a->cur];

	audit_batch_start(a, full);
	a->cur = !a->cur;
	return audit_judge_batch(a, &a->batch[a->cur], e);
}

int audit_entry(struct audit *a, uint64_t index, const uint8_t *entry,
		size_t len, struct err *e)
{
	struct audit_batch *b = &a->batch[a->cur];
	struct audit_item *it;
	int too_long = len > LOGENTRY_MAX;

	if (b->nitems == AUDIT_BATCH_ITEMS ||
	    (b->nitems > 0 && b->bytes.len + len > AUDIT_BATCH_BYTES)) {
		if (audit_rotate(a, e))
			return -1;
		b = &a->batch[a->cur];
	}
	if (!too_long)
		buf_append(&b->bytes, entry, len);
	if (b->bytes.status) {
		err_set(e, ERR_INVALID, "out of memory reading log entry %llu",
			(unsigned long long)index);
		return -1;
	}
	it = &b->items[b->nitems++];
	memset(it, 0, sizeof *it);
	it->index = index;
	if (too_long) {
		/* no entry is this long: judged without keeping its bytes */
		it->too_long = 1;
		logentry_leaf_hash(entry, len, it->leaf);
		it->le_st = BS_ELIMIT;
		return 0;
	}
	it->off = b->bytes.len - len;
	it->len = len;
	return 0;
}

/* ---- the end: checkpoint, digest, --record ---- */

static void audit_judge_checkpoint(struct audit *a)
{
	struct audit_result *res = &a->res;
	struct merkle_source src;
	struct merkle_array arr = {a->leaves, a->nleaves};
	uint8_t root[HASH_BYTES];
	char got[2 * HASH_BYTES + 1], want[2 * HASH_BYTES + 1];
	enum bs_status st;
	int ok = 1;

	if (!a->cp_given) {
		audit_fail(a, -1, NULL,
			   "no signed checkpoint came with the log: "
			   "nothing shows that these entries are the server's");
		return;
	}
	st = a->cp_len > sizeof a->cp_bytes
		 ? BS_ELIMIT
		 : checkpoint_decode(a->cp_bytes, a->cp_len, &res->cp);
	if (st) {
		audit_fail(a, -1, NULL, "the checkpoint is malformed (%s)",
			   bs_status_str(st));
		return;
	}
	res->have_checkpoint = 1;
	if (checkpoint_verify(&res->cp, a->server_pk) != BS_OK) {
		audit_fail(a, -1, NULL,
			   "the checkpoint's signature does not "
			   "verify with the server's key");
		ok = 0;
	}
	if (strcmp(res->cp.origin, a->origin) != 0) {
		audit_fail(a, -1, NULL,
			   "the checkpoint is for the log of "
			   "'%.64s', not of '%.64s'",
			   res->cp.origin, a->origin);
		ok = 0;
	}
	if (res->cp.size > a->nleaves) {
		audit_fail(a, -1, NULL,
			   "the checkpoint signs %llu entries but "
			   "the log has only %llu",
			   (unsigned long long)res->cp.size,
			   (unsigned long long)a->nleaves);
		res->checkpoint_ok = 0;
		return;
	}
	merkle_source_from_array(&src, &arr);
	if (merkle_root(&src, res->cp.size, root) != BS_OK ||
	    memcmp(root, res->cp.root, HASH_BYTES) != 0) {
		audit_hex(root, HASH_BYTES, got);
		audit_hex(res->cp.root, HASH_BYTES, want);
		audit_fail(
		    a, -1, NULL,
		    "the Merkle root of the first %llu "
		    "entries is %s, but the checkpoint signs %s: an entry "
		    "was changed, removed, added or reordered",
		    (unsigned long long)res->cp.size, got, want);
		ok = 0;
	}
	if (a->nleaves > res->cp.size) {
		audit_fail(a, -1, NULL,
			   "entries %llu to %llu lie beyond the "
			   "signed checkpoint: no signature covers them",
			   (unsigned long long)res->cp.size,
			   (unsigned long long)a->nleaves - 1);
		ok = 0;
	}
	res->checkpoint_ok = ok;
}

static int audit_count_rows(struct audit *a, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char sql[128];
	size_t i;

	a->res.ntables = 0;
	for (i = 0; i < schema_table_count() && i < AUDIT_TABLES_MAX; i++) {
		const struct schema_table *t = schema_table_at(i);

		snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"",
			 t->name);
		if (sqlite3_prepare_v2(a->r->db, sql, -1, &st, NULL) !=
			SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_ROW) {
			err_set(e, ERR_INVALID,
				"cannot count the replayed "
				"rows: %s",
				sqlite3_errmsg(a->r->db));
			sqlite3_finalize(st);
			return -1;
		}
		a->res.table[i] = t->name;
		a->res.rows[i] = (uint64_t)sqlite3_column_int64(st, 0);
		a->res.ntables++;
		sqlite3_finalize(st);
		st = NULL;
	}
	return 0;
}

static void audit_judge_digest(struct audit *a)
{
	struct audit_result *res = &a->res;
	char got[2 * HASH_BYTES + 1], want[2 * HASH_BYTES + 1], rows[512];
	size_t i, n = 0;
	enum bs_status st;

	if (!a->sd_given) {
		audit_fail(a, -1, NULL,
			   "no signed state digest came with the "
			   "log: the replay cannot be compared with the "
			   "server's records");
		return;
	}
	st = a->sd_len > sizeof a->sd_bytes
		 ? BS_ELIMIT
		 : statedigest_open(a->sd_bytes, a->sd_len, a->server_pk,
				    &res->sd);
	if (st) {
		audit_fail(a, -1, NULL,
			   "the state digest does not verify with "
			   "the server's key (%s)",
			   bs_status_str(st));
		return;
	}
	res->have_digest = 1;
	if (strcmp(res->sd.origin, a->origin) != 0)
		audit_fail(a, -1, NULL,
			   "the state digest is for the log of "
			   "'%.64s', not of '%.64s'",
			   res->sd.origin, a->origin);
	if (res->sd.log_size != res->entries) {
		audit_fail(a, -1, NULL,
			   "the state digest is for a log of %llu "
			   "entries, but %llu were replayed",
			   (unsigned long long)res->sd.log_size,
			   (unsigned long long)res->entries);
		return;
	}
	res->digest_compared = 1;
	if (memcmp(res->sd.digest, res->replayed, HASH_BYTES) == 0) {
		res->digest_ok = 1;
		return;
	}
	rows[0] = '\0';
	for (i = 0; i < res->ntables && n < sizeof rows; i++)
		n += (size_t)snprintf(rows + n, sizeof rows - n, "%s%s %llu",
				      i ? ", " : "", res->table[i],
				      (unsigned long long)res->rows[i]);
	audit_hex(res->sd.digest, HASH_BYTES, want);
	audit_hex(res->replayed, HASH_BYTES, got);
	audit_fail(a, -1, NULL,
		   "the server's records are not what its log "
		   "yields: it signed digest %s, replaying the log gives %s "
		   "(replayed rows: %s)",
		   want, got, rows);
}

/* The --record row as the replay left it. */
static int audit_record_now(struct audit *a, struct err *e)
{
	const struct schema_table *t = a->rec_table;
	struct buf sql;
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc = -1, step;

	buf_init(&sql, 4096);
	buf_append(&sql, "SELECT branch_id", 16);
	for (i = 0; i < t->ncolumns; i++) {
		buf_append(&sql, ", \"", 3);
		buf_append(&sql, t->columns[i].name,
			   strlen(t->columns[i].name));
		buf_append_u8(&sql, '"');
	}
	buf_append(&sql, " FROM \"", 7);
	buf_append(&sql, t->name, strlen(t->name));
	buf_append(&sql, "\" WHERE id=?1 ORDER BY branch_id LIMIT 1", 40);
	buf_append_u8(&sql, 0);
	if (sql.status || sqlite3_prepare_v2(a->r->db, (const char *)sql.data,
					     -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, a->o.record_id, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = 0;
		goto cleanup;
	}
	if (step != SQLITE_ROW)
		goto dberr;
	a->res.record_found = 1;
	snprintf(a->res.now_branch, sizeof a->res.now_branch, "%s",
		 (const char *)sqlite3_column_text(st, 0));
	a->res.now = mem_calloc(t->ncolumns, sizeof *a->res.now);
	if (!a->res.now) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < t->ncolumns; i++)
		if (audit_value_set(&a->res.now[a->res.nnow++],
				    t->columns[i].name,
				    sqlite3_column_value(st, (int)i + 1))) {
			err_set(e, ERR_INVALID, "out of memory");
			goto cleanup;
		}
	rc = 0;
	goto cleanup;
dberr:
	err_set(e, ERR_INVALID, "cannot read the replayed record: %s",
		sqlite3_errmsg(a->r->db));
cleanup:
	sqlite3_finalize(st);
	buf_release(&sql);
	return rc;
}

int audit_finish(struct audit *a, struct err *e)
{
	size_t i;

	/* the older batch first: log order */
	if (audit_rotate(a, e) || audit_judge_batch(a, &a->batch[!a->cur], e))
		return -1;
	if (a->res.entries == 0)
		audit_fail(a, -1, NULL,
			   "the log holds no entries: every log "
			   "starts with the server's own enrollment");
	audit_judge_checkpoint(a);
	if (digest_compute(a->r->db, a->res.replayed, e) ||
	    audit_count_rows(a, e))
		return -1;
	audit_judge_digest(a);
	if (a->rec_table && audit_record_now(a, e))
		return -1;
	a->res.conflicts = a->stats.conflicts;
	a->res.scopes = a->nscopes;
	for (i = 0; i < a->devs_cap; i++)
		a->res.authors += a->devs[i].used && a->devs[i].wrote;
	return 0;
}

/* ---- row hashes: where a digest that failed differs ---- */

/* Appends one payload; sets l->full, and drops it, at the cap or when
 * memory runs out. */
static void audit_rows_add(struct audit_rows *l, const uint8_t *p, size_t len)
{
	if (l->full)
		return;
	if (l->n + 2 > l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		uint32_t *off = mem_realloc(l->off, cap * sizeof *off);

		if (!off) {
			l->full = 1;
			return;
		}
		l->off = off;
		l->cap = cap;
	}
	buf_append(&l->bytes, p, len);
	if (l->bytes.status) {
		l->full = 1;
		return;
	}
	if (l->n == 0)
		l->off[0] = 0;
	l->off[++l->n] = (uint32_t)l->bytes.len;
}

void audit_row_hash(struct audit *a, const uint8_t *p, size_t len)
{
	struct digest_rowhash h;

	a->rows_given = 1;
	if (digest_rowhash_decode(p, len, &h) != BS_OK) {
		a->rows_bad++;
		return;
	}
	audit_rows_add(&a->srv_rows, p, len);
}

int audit_rows_wanted(const struct audit *a)
{
	return a->res.digest_compared && !a->res.digest_ok;
}

/* digest_row_hashes' callback: keeps one of the replay's rows. */
struct audit_rows_ctx {
	struct audit_rows *l;
	struct buf one;
	const char *table;
};

static int audit_rows_replayed(void *ctx, const char *id,
			       const char *branch_id,
			       const uint8_t hash[HASH_BYTES])
{
	struct audit_rows_ctx *c = ctx;

	buf_reset(&c->one);
	digest_rowhash_encode(&c->one, c->table, id, branch_id, hash);
	if (c->one.status)
		c->l->full = 1;
	else
		audit_rows_add(c->l, c->one.data, c->one.len);
	return c->l->full;
}

static int audit_rows_collect(struct audit *a, struct err *e)
{
	struct audit_rows_ctx c;
	size_t i;
	int rc = 0;

	c.l = &a->rep_rows;
	buf_init(&c.one, 3 * (WIRE_VARINT_MAX + DIGEST_ROW_ID_MAX) +
				 HASH_BYTES);
	for (i = 0; i < schema_table_count() && !rc && !c.l->full; i++) {
		c.table = schema_table_at(i)->name;
		rc = digest_row_hashes(a->r->db, c.table, audit_rows_replayed,
				       &c, e);
	}
	buf_release(&c.one);
	return rc;
}

static int audit_row_part_cmp(const uint8_t *x, size_t xl, const uint8_t *y,
			      size_t yl)
{
	int c = memcmp(x, y, xl < yl ? xl : yl);

	if (c)
		return c;
	return (xl > yl) - (xl < yl);
}

/* (table, id, branch_id), bytewise: the order of the digest's rows. */
static int audit_row_cmp(const void *px, const void *py)
{
	const struct digest_rowhash *x = &((const struct audit_row *)px)->h;
	const struct digest_rowhash *y = &((const struct audit_row *)py)->h;
	int c;

	if ((c = audit_row_part_cmp(x->table, x->table_len, y->table,
				    y->table_len)))
		return c;
	if ((c = audit_row_part_cmp(x->id, x->id_len, y->id, y->id_len)))
		return c;
	return audit_row_part_cmp(x->branch_id, x->branch_len, y->branch_id,
				  y->branch_len);
}

/* A sorted index of l, allocated here (free with mem_free); NULL when l
 * is empty or memory ran out (*nomem then set). Every payload in l
 * decodes: audit_row_hash and audit_rows_replayed checked them. */
static struct audit_row *audit_rows_sort(const struct audit_rows *l,
					 int *nomem)
{
	struct audit_row *v;
	size_t i;

	if (l->n == 0)
		return NULL;
	v = mem_calloc(l->n, sizeof *v);
	if (!v) {
		*nomem = 1;
		return NULL;
	}
	for (i = 0; i < l->n; i++)
		if (digest_rowhash_decode(l->bytes.data + l->off[i],
					  l->off[i + 1] - l->off[i],
					  &v[i].h) != BS_OK)
			*nomem = 1; /* cannot happen; never compare garbage */
	if (*nomem) {
		mem_free(v);
		return NULL;
	}
	qsort(v, l->n, sizeof *v, audit_row_cmp);
	return v;
}

/* Copies n untrusted bytes for display, control bytes as '?'. */
static void audit_row_name(char *out, size_t max, const uint8_t *p, size_t n)
{
	size_t i;

	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		out[i] = p[i] < 0x20 || p[i] == 0x7f ? '?' : (char)p[i];
	out[n] = '\0';
}

static void audit_row_fail(struct audit *a, const struct digest_rowhash *h,
			   const char *what)
{
	struct audit_failure *f;
	size_t kept = a->res.nfailures;
	char table[AUDIT_ROW_TABLE_MAX + 1], row[AUDIT_ROW_ID_MAX + 1],
	    branch[AUDIT_ROW_ID_MAX + 1];

	audit_row_name(table, AUDIT_ROW_TABLE_MAX, h->table, h->table_len);
	audit_row_name(row, AUDIT_ROW_ID_MAX, h->id, h->id_len);
	audit_row_name(branch, AUDIT_ROW_ID_MAX, h->branch_id, h->branch_len);
	audit_fail(a, -1, NULL, "table %.64s row %.128s (branch %.128s): %s",
		   table, row, branch, what);
	if (a->res.nfailures == kept)
		return; /* only counted */
	f = &a->res.failures[kept];
	f->has_row = 1;
	memcpy(f->table, table, sizeof table);
	memcpy(f->row, row, sizeof row);
	memcpy(f->branch, branch, sizeof branch);
}

int audit_rows_judge(struct audit *a, struct err *e)
{
	struct audit_row *s = NULL, *r = NULL;
	size_t i = 0, j = 0, ns = a->srv_rows.n, nr = 0;
	int nomem = 0, c, rc = -1;

	if (!audit_rows_wanted(a) || !a->rows_given)
		return 0;
	if (a->rows_bad)
		audit_fail(a, -1, NULL,
			   "%llu of the server's row hashes are malformed "
			   "and were not compared",
			   (unsigned long long)a->rows_bad);
	if (audit_rows_collect(a, e))
		return -1;
	if (a->srv_rows.full || a->rep_rows.full) {
		audit_fail(a, -1, NULL,
			   "there are too many rows to compare one by one "
			   "(over %u MiB of row hashes): the rows that differ "
			   "are not named", AUDIT_ROWS_BYTES >> 20);
		rc = 0;
		goto cleanup;
	}
	nr = a->rep_rows.n;
	s = audit_rows_sort(&a->srv_rows, &nomem);
	r = audit_rows_sort(&a->rep_rows, &nomem);
	if (nomem) {
		err_set(e, ERR_INVALID, "out of memory comparing the rows");
		goto cleanup;
	}
	while (i < ns || j < nr) {
		c = i == ns ? 1 : j == nr ? -1 : audit_row_cmp(&s[i], &r[j]);
		if (c < 0) {
			audit_row_fail(a, &s[i++].h,
				       "in the server's records but not "
				       "produced by the log");
		} else if (c > 0) {
			audit_row_fail(a, &r[j++].h,
				       "produced by the log but missing from "
				       "the server's records");
		} else {
			if (memcmp(s[i].h.hash, r[j].h.hash, HASH_BYTES) != 0)
				audit_row_fail(a, &s[i].h,
					       "differs from what the log "
					       "produces");
			i++;
			j++;
		}
	}
	rc = 0;
cleanup:
	mem_free(s);
	mem_free(r);
	/* the replay's hashes are not needed again */
	buf_release(&a->rep_rows.bytes);
	mem_free(a->rep_rows.off);
	a->rep_rows.off = NULL;
	a->rep_rows.n = a->rep_rows.cap = 0;
	return rc;
}

int audit_prefix_root(const struct audit *a, uint64_t size,
		      uint8_t out[HASH_BYTES])
{
	struct merkle_source src;
	struct merkle_array arr = {a->leaves, a->nleaves};

	if (size > a->nleaves)
		return -1;
	merkle_source_from_array(&src, &arr);
	return merkle_root(&src, size, out) == BS_OK ? 0 : -1;
}
