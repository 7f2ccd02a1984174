/* ingest.c - verdicts on pushed change sets, and the server's own log
 * entries (see ingest.h; rules in docs/API.md, "Ingest"). */
#include "ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "changeset.h"
#include "logentry.h"
#include "mem.h"
#include "schema.h"

enum ingest_sp { SP_BEGIN, SP_RELEASE, SP_ROLLBACK, SP_COUNT };

static const char *const ingest_sp_sql[SP_COUNT] = {
	"SAVEPOINT ingest_batch", "RELEASE ingest_batch",
	"ROLLBACK TO ingest_batch"};

struct ingest {
	struct store *s;
	struct srvlog *log;
	struct merge *merge;
	sqlite3_stmt *find_id;
	sqlite3_stmt *sp[SP_COUNT];
};

/* ingest_verified's answer when merge_apply refused a body that was not
 * checked first: the batch is done again, checking each body first. */
#define INGEST_REDO 1

int ingest_new(struct store *s, struct srvlog *log, struct ingest **out,
	       struct err *e)
{
	struct ingest *in = mem_calloc(1, sizeof *in);

	*out = NULL;
	if (!in) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	in->s = s;
	in->log = log;
	*out = in;
	return 0;
}

/* The merger, made on first use (and again after a rollback). */
static struct merge *merger(struct ingest *in, struct err *e)
{
	if (!in->merge && merge_new(in->s->r->db, &in->merge, e) == 0)
		merge_drop_bytes(in->merge);
	return in->merge;
}

void ingest_free(struct ingest *in)
{
	size_t i;

	if (!in)
		return;
	sqlite3_finalize(in->find_id);
	for (i = 0; i < SP_COUNT; i++)
		sqlite3_finalize(in->sp[i]);
	merge_free(in->merge);
	mem_free(in);
}

static void refuse(struct ingest_outcome *out, const char *fmt, const char *a)
{
	out->status = VERDICT_REFUSED;
	snprintf(out->reason, sizeof out->reason, fmt, a);
}

static void short_hex(const uint8_t *p, char out[17])
{
	sodium_bin2hex(out, 17, p, 8);
}

/* 1 and the entry's index and verdict if this id was logged before. */
static int find_logged(struct ingest *in, const uint8_t id[HASH_BYTES],
		       uint64_t *index, int *verdict, struct err *e)
{
	int step;

	if (!in->find_id &&
	    sqlite3_prepare_v3(in->s->r->db,
			       "SELECT idx, verdict FROM srv_log WHERE cs_id=?1"
			       " ORDER BY idx LIMIT 1", -1,
			       SQLITE_PREPARE_PERSISTENT, &in->find_id,
			       NULL) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(in->s->r->db));
		return -1;
	}
	sqlite3_reset(in->find_id);
	sqlite3_bind_blob(in->find_id, 1, id, HASH_BYTES, SQLITE_STATIC);
	step = sqlite3_step(in->find_id);
	if (step == SQLITE_ROW) {
		*index = (uint64_t)sqlite3_column_int64(in->find_id, 0);
		*verdict = sqlite3_column_int(in->find_id, 1);
	}
	sqlite3_reset(in->find_id);
	return step == SQLITE_ROW;
}

/* leaf: the entry's leaf hash when the caller has it (accepted sets). */
static int log_changeset(struct ingest *in, const struct changeset *cs,
			 const uint8_t *bytes, size_t len,
			 enum logentry_verdict verdict, const char *reason,
			 const uint8_t *leaf, int64_t now_ms, uint64_t *index,
			 struct err *e)
{
	struct logentry le = {LOGENTRY_CHANGESET, verdict, reason,
			      reason ? strlen(reason) : 0, bytes, len};
	struct srvlog_meta meta = {cs->env.author, cs->env.seq, cs->id,
				   cs->env.scope, now_ms, leaf};

	return srvlog_append(in->log, &le, &meta, index, e);
}

/* The policy an enrolled, unrevoked author's change set must meet; writes
 * the reason of a refusal, or leaves it empty. The body is checked only
 * when `body` (merge_apply checks it the same way). */
static void check_policy(const struct store_device *d,
			 const struct changeset *cs, int body, char *reason,
			 size_t n)
{
	struct err why;

	reason[0] = '\0';
	if (d->role == ROLE_AUDITOR) {
		snprintf(reason, n, "auditor devices may not write");
		return;
	}
	if (d->role == ROLE_BRANCH && strcmp(cs->env.scope, d->scope) != 0) {
		snprintf(reason, n, "out of scope: device of branch %s wrote "
			 "scope %s", d->scope, cs->env.scope);
		return;
	}
	if (cs->env.schema_version != SCHEMA_VERSION) {
		snprintf(reason, n, "unknown schema version %llu",
			 (unsigned long long)cs->env.schema_version);
		return;
	}
	err_init(&why);
	if (body && merge_check(cs, &why))
		snprintf(reason, n, "%.250s", why.msg);
}

/* A well-signed change set from a known, unrevoked device: chain, policy,
 * then log (and apply when accepted). With `careful` the body is checked
 * before anything is written (check_policy, so it is applied unchecked),
 * and a failure of merge_apply_checked is an internal one. Without it
 * merge_apply checks the body (merge.h: it fails on any body merge_check
 * refuses) and its failure returns INGEST_REDO, the caller rolling back
 * and doing it again carefully to tell a refusal from a failure: bodies
 * that break the schema are rare, and checking each one twice is a sixth
 * of ingest. */
static int ingest_verified(struct ingest *in, struct store_device *d,
			   const struct changeset *cs, const uint8_t *bytes,
			   size_t len, const uint8_t *leaf, int64_t now_ms,
			   int careful, struct ingest_outcome *out,
			   struct err *e)
{
	char reason[VERDICT_REASON_MAX + 1], hex[17];
	struct merge_stats stats = {0};
	struct err quiet;
	int applied;

	if ((int64_t)cs->env.seq <= d->last_seq) {
		/* not a duplicate (its id is new): two sets for one sequence */
		snprintf(reason, sizeof reason, "equivocation: sequence %llu "
			 "of this device was already logged with another "
			 "change set", (unsigned long long)cs->env.seq);
		refuse(out, "%s", reason);
		out->logged = 1;
		return log_changeset(in, cs, bytes, len, LOGENTRY_REFUSED,
				     reason, NULL, now_ms, &out->index, e);
	}
	if ((int64_t)cs->env.seq > d->last_seq + 1) {
		snprintf(reason, sizeof reason, "chain gap: expected sequence "
			 "%lld first", (long long)d->last_seq + 1);
		refuse(out, "%s", reason);
		return 0;
	}
	if (d->last_seq > 0 && memcmp(cs->env.prev, d->head, HASH_BYTES) != 0) {
		short_hex(d->head, hex);
		snprintf(reason, sizeof reason, "chain fork: previous id does "
			 "not match the logged %s", hex);
		refuse(out, "%s", reason);
		out->logged = 1;
		return log_changeset(in, cs, bytes, len, LOGENTRY_REFUSED,
				     reason, NULL, now_ms, &out->index, e);
	}
	check_policy(d, cs, careful, reason, sizeof reason);
	out->logged = 1;
	if (reason[0]) {
		refuse(out, "%s", reason);
		if (log_changeset(in, cs, bytes, len, LOGENTRY_REFUSED, reason,
				  NULL, now_ms, &out->index, e))
			return -1;
	} else if (careful) {
		out->status = VERDICT_ACCEPTED;
		if (!merger(in, e) ||
		    log_changeset(in, cs, bytes, len, LOGENTRY_ACCEPTED, NULL,
				  leaf, now_ms, &out->index, e) ||
		    merge_apply_checked(in->merge, cs, &applied, &stats, e))
			return -1;
	} else {
		err_init(&quiet);
		if (!merger(in, e))
			return -1;
		if (merge_apply(in->merge, cs, &applied, &stats, &quiet))
			return INGEST_REDO;
		out->status = VERDICT_ACCEPTED;
		if (log_changeset(in, cs, bytes, len, LOGENTRY_ACCEPTED, NULL,
				  leaf, now_ms, &out->index, e))
			return -1;
	}
	/* refusals by policy still take their place in the chain */
	d->last_seq = (int64_t)cs->env.seq;
	memcpy(d->head, cs->id, HASH_BYTES);
	d->last_seen_ms = now_ms;
	return store_device_put(in->s, d, e);
}

/* The verdict on one item (sig_ok < 0: not verified yet). Returns 0,
 * INGEST_REDO (see ingest_verified) or -1. */
static int ingest_one(struct ingest *in, const struct ingest_item *it,
		      int64_t now_ms, int careful, struct ingest_outcome *out,
		      struct err *e)
{
	const struct changeset *cs = &it->cs;
	struct store_device d;
	uint64_t index;
	int verdict, found;

	memset(out, 0, sizeof *out);
	if (it->decoded) {
		refuse(out, "malformed change set: %s",
		       bs_status_str(it->decoded));
		return 0;
	}
	memcpy(out->id, cs->id, HASH_BYTES);
	found = store_device_get(in->s, cs->env.author, &d, e);
	if (found < 0)
		return -1;
	if (!found) {
		refuse(out, "%s", "unknown device: its author is not enrolled");
		return 0;
	}
	if (it->sig_ok == 0 ||
	    (it->sig_ok < 0 && changeset_verify(cs) != BS_OK)) {
		refuse(out, "%s", "signature does not verify");
		return 0;
	}
	found = find_logged(in, cs->id, &index, &verdict, e);
	if (found < 0)
		return -1;
	if (found) {
		out->logged = 1;
		out->index = index;
		out->status = verdict == LOGENTRY_ACCEPTED ? VERDICT_DUPLICATE
							   : VERDICT_REFUSED;
		snprintf(out->reason, sizeof out->reason, "%s",
			 verdict == LOGENTRY_ACCEPTED ? ""
			 : "refused before; see the log entry");
		return 0;
	}
	if (d.revoke_idx >= 0) {
		refuse(out, "%s", "device revoked");
		return 0;
	}
	return ingest_verified(in, &d, cs, it->bytes, it->len,
			       it->has_leaf ? it->leaf : NULL, now_ms, careful,
			       out, e);
}

int ingest_changeset(struct ingest *in, const uint8_t *bytes, size_t len,
		     int sig_ok, int64_t now_ms, struct ingest_outcome *out,
		     struct err *e)
{
	struct ingest_item it;

	ingest_item_init(&it, bytes, len);
	it.decoded = changeset_decode(bytes, len, &it.cs);
	it.sig_ok = sig_ok ? 1 : -1;
	return ingest_one(in, &it, now_ms, 1, out, e);
}

static int savepoint(struct ingest *in, enum ingest_sp which, struct err *e)
{
	sqlite3_stmt **st = &in->sp[which];
	int rc;

	if (!*st && sqlite3_prepare_v3(in->s->r->db, ingest_sp_sql[which], -1,
				       SQLITE_PREPARE_PERSISTENT, st,
				       NULL) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(in->s->r->db));
		return -1;
	}
	rc = sqlite3_step(*st);
	sqlite3_reset(*st);
	if (rc == SQLITE_DONE)
		return 0;
	err_set(e, ERR_INVALID, "database error: %s",
		sqlite3_errmsg(in->s->r->db));
	return -1;
}

static int batch_run(struct ingest *in, const struct ingest_item *items,
		     size_t n, int64_t now_ms, int careful,
		     struct ingest_outcome *outs, struct err *e)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = ingest_one(in, &items[i], now_ms, careful, &outs[i], e);
		if (rc)
			return rc;
	}
	return 0;
}

void ingest_rolled_back(struct ingest *in)
{
	/* the merger remembers the local index of the last author, which
	 * may name a bs_devices row that was just rolled back: the next one
	 * starts afresh */
	merge_free(in->merge);
	in->merge = NULL;
}

int ingest_batch(struct ingest *in, const struct ingest_item *items,
		 size_t n, int64_t now_ms, struct ingest_outcome *outs,
		 struct err *e)
{
	struct err quiet;
	int rc;

	if (savepoint(in, SP_BEGIN, e))
		return -1;
	rc = batch_run(in, items, n, now_ms, 0, outs, e);
	if (rc == INGEST_REDO) {
		ingest_rolled_back(in);
		rc = savepoint(in, SP_ROLLBACK, e) ||
		     srvlog_reload(in->log, e) ||
		     batch_run(in, items, n, now_ms, 1, outs, e) ? -1 : 0;
	}
	if (rc == 0 && savepoint(in, SP_RELEASE, e) == 0)
		return 0;
	/* a statement that failed may have ended the whole transaction
	 * already; then there is no savepoint left to roll back */
	err_init(&quiet);
	if (!sqlite3_get_autocommit(in->s->r->db) &&
	    savepoint(in, SP_ROLLBACK, &quiet) == 0)
		savepoint(in, SP_RELEASE, &quiet);
	ingest_rolled_back(in);
	srvlog_reload(in->log, &quiet);
	return -1;
}

int ingest_enroll(struct ingest *in, const uint8_t device[SIGN_PUBLIC_BYTES],
		  enum enrollment_role role, const char *scope,
		  const char *name, int64_t now_ms, uint8_t **signed_bytes,
		  size_t *signed_len, uint64_t *index, struct err *e)
{
	struct enrollment en;
	struct store_device d;
	struct buf b;
	struct logentry le;
	struct srvlog_meta meta = {device, 0, NULL, NULL, now_ms, NULL};
	int found, rc = -1;

	*signed_bytes = NULL;
	found = store_device_get(in->s, device, &d, e);
	if (found)
		return found < 0 ? -1 : (err_set(e, ERR_INVALID, "this device "
			"is already enrolled"), -1);
	memset(&en, 0, sizeof en);
	memcpy(en.device, device, SIGN_PUBLIC_BYTES);
	en.role = role;
	snprintf(en.scope, sizeof en.scope, "%s", scope);
	snprintf(en.name, sizeof en.name, "%s", name);
	en.time_ms = (uint64_t)now_ms;
	buf_init(&b, ENROLLMENT_SIGNED_MAX);
	if (!in->s->key || enrollment_sign(&en, in->s->key->sk, &b) != BS_OK) {
		err_set(e, ERR_INVALID, "cannot sign the enrollment (role %s, "
			"scope %s)", enrollment_role_name(role) ?
			enrollment_role_name(role) : "?", scope);
		goto cleanup;
	}
	le = (struct logentry){LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED, NULL, 0,
			       b.data, b.len};
	if (srvlog_append(in->log, &le, &meta, index, e))
		goto cleanup;
	memset(&d, 0, sizeof d);
	memcpy(d.key, device, SIGN_PUBLIC_BYTES);
	d.role = role;
	snprintf(d.scope, sizeof d.scope, "%s", scope);
	snprintf(d.name, sizeof d.name, "%s", name);
	d.enroll_idx = (int64_t)*index;
	d.revoke_idx = -1;
	d.last_seen_ms = now_ms;
	if (store_device_put(in->s, &d, e))
		goto cleanup;
	*signed_bytes = buf_detach(&b, signed_len);
	rc = 0;
cleanup:
	buf_release(&b);
	return rc;
}

int ingest_revoke(struct ingest *in, const uint8_t device[SIGN_PUBLIC_BYTES],
		  const char *reason, int64_t now_ms, uint64_t *index,
		  struct err *e)
{
	struct revocation rv;
	struct store_device d;
	struct buf b;
	struct logentry le;
	struct srvlog_meta meta = {device, 0, NULL, NULL, now_ms, NULL};
	int found, rc = -1;

	found = store_device_get(in->s, device, &d, e);
	if (found <= 0)
		return found < 0 ? -1 : (err_set(e, ERR_INVALID,
			"no such device; list them with 'branchsyncd devices'"), -1);
	if (d.revoke_idx >= 0) {
		err_set(e, ERR_INVALID, "this device is already revoked");
		return -1;
	}
	if (memcmp(device, in->s->pk, SIGN_PUBLIC_BYTES) == 0) {
		err_set(e, ERR_INVALID, "the server cannot revoke its own key");
		return -1;
	}
	memset(&rv, 0, sizeof rv);
	memcpy(rv.device, device, SIGN_PUBLIC_BYTES);
	rv.time_ms = (uint64_t)now_ms;
	snprintf(rv.reason, sizeof rv.reason, "%s", reason ? reason : "");
	buf_init(&b, REVOCATION_SIGNED_MAX);
	if (!in->s->key || revocation_sign(&rv, in->s->key->sk, &b) != BS_OK) {
		err_set(e, ERR_INVALID, "cannot sign the revocation");
		goto cleanup;
	}
	le = (struct logentry){LOGENTRY_REVOCATION, LOGENTRY_ACCEPTED, NULL, 0,
			       b.data, b.len};
	if (srvlog_append(in->log, &le, &meta, index, e))
		goto cleanup;
	d.revoke_idx = (int64_t)*index;
	rc = store_device_put(in->s, &d, e);
cleanup:
	buf_release(&b);
	return rc;
}

int ingest_own_outbox(struct ingest *in, int64_t now_ms, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (sqlite3_prepare_v2(in->s->r->db,
			       "SELECT bytes FROM bs_outbox WHERE acked=0"
			       " ORDER BY seq", -1, &st, NULL) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(in->s->r->db));
		return -1;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct ingest_outcome out;

		if (ingest_changeset(in, sqlite3_column_blob(st, 0),
				     (size_t)sqlite3_column_bytes(st, 0), 0,
				     now_ms, &out, e))
			goto cleanup;
		if (out.status == VERDICT_REFUSED) {
			err_set(e, ERR_INVALID, "the server refused its own "
				"change set: %s", out.reason);
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE ||
	    replica_exec(in->s->r->db, "UPDATE bs_outbox SET acked=1"
			 " WHERE acked=0", e))
		goto cleanup;
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

void ingest_item_init(struct ingest_item *it, const uint8_t *bytes,
		      size_t len)
{
	memset(it, 0, sizeof *it);
	it->bytes = bytes;
	it->len = len;
	it->decoded = BS_EINVALID;
}

#define PREP_MAX_HELPERS 15

struct ingest_prep {
	struct ingest_item *items;
	size_t n;
	atomic_size_t next;	  /* the next item nobody took */
	pthread_t tid[PREP_MAX_HELPERS];
	unsigned helpers;	  /* started */
};

/* Takes items one at a time until none is left. */
static void prep_work(struct ingest_prep *p)
{
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n) {
		struct ingest_item *it = &p->items[i];

		struct logentry le = {LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED,
				      NULL, 0, it->bytes, it->len};

		it->decoded = changeset_decode(it->bytes, it->len, &it->cs);
		it->sig_ok = it->decoded == BS_OK &&
			     changeset_verify(&it->cs) == BS_OK;
		it->has_leaf = it->sig_ok && srvlog_leaf(&le, it->leaf) == 0;
	}
}

static void *prep_thread(void *arg)
{
	prep_work(arg);
	return NULL;
}

void ingest_prepare_start(struct ingest_item *items, size_t n,
			  unsigned helpers, struct ingest_prep **out)
{
	struct ingest_prep *p = mem_calloc(1, sizeof *p);

	*out = p;
	if (!p)
		return;
	p->items = items;
	p->n = n;
	atomic_init(&p->next, 0);
	if (helpers > PREP_MAX_HELPERS)
		helpers = PREP_MAX_HELPERS;
	if (helpers > n)
		helpers = (unsigned)n;
	/* a helper that cannot start leaves its share to the others */
	while (p->helpers < helpers &&
	       pthread_create(&p->tid[p->helpers], NULL, prep_thread, p) == 0)
		p->helpers++;
}

void ingest_prepare_finish(struct ingest_prep *p, struct ingest_item *items,
			   size_t n)
{
	struct ingest_prep alone;
	unsigned t;

	if (!p) {
		memset(&alone, 0, sizeof alone);
		alone.items = items;
		alone.n = n;
		atomic_init(&alone.next, 0);
		prep_work(&alone);
		return;
	}
	prep_work(p);
	for (t = 0; t < p->helpers; t++)
		pthread_join(p->tid[t], NULL);
	mem_free(p);
}

void ingest_prepare(struct ingest_item *items, size_t n, unsigned threads)
{
	struct ingest_prep *p;

	if (threads == 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cores > 0 ? (unsigned)cores : 1;
	}
	ingest_prepare_start(items, n, threads - 1, &p);
	ingest_prepare_finish(p, items, n);
}
