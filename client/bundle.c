/* bundle.c - bundle files (see bundle.h): the META codec and the frame
 * layout (protocol/FORMAT.md, section "Bundles"), export from a replica,
 * and import: every frame verified before anything is applied, then one
 * transaction (docs/BUNDLE.md). Not for pushing relayed sets
 * (sync_push.c). */
#include "bundle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "clock.h"
#include "enrollment.h"
#include "frame.h"
#include "fsutil.h"
#include "hlc.h"
#include "mem.h"
#include "merge.h"
#include "schema.h"
#include "sync.h"
#include "wire.h"

#define BUNDLE_SHORT_HEX 17 /* 8 bytes of a key or id, as hex, and NUL */

static void bundle_hex8(const uint8_t *p, char out[BUNDLE_SHORT_HEX])
{
	sodium_bin2hex(out, BUNDLE_SHORT_HEX, p, 8);
}

static int bundle_db_fail(struct replica *r, struct err *e)
{
	err_set(e, ERR_INVALID, "database error: %s", sqlite3_errmsg(r->db));
	return -1;
}

static int bundle_prepare(struct replica *r, const char *sql, sqlite3_stmt **st,
			  struct err *e)
{
	if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	return bundle_db_fail(r, e);
}

/* ---- META ---- */

/* Text shown to people: no control bytes (as "text" in FORMAT.md). */
static int bundle_text_ok(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] == 0x7f)
			return 0;
	return 1;
}

/* The field rules of META, shared by writer and reader. */
static int bundle_meta_valid(const struct bundle_meta *m, size_t olen,
			     size_t slen)
{
	return (m->kind == BUNDLE_KIND_DEVICE ||
		m->kind == BUNDLE_KIND_BRANCH) &&
	       olen >= 1 && olen <= CHECKPOINT_ORIGIN_MAX &&
	       bundle_text_ok(m->origin, olen) &&
	       changeset_scope_valid(m->scope, slen) &&
	       !(m->kind == BUNDLE_KIND_BRANCH &&
		 strcmp(m->scope, "district") == 0);
}

enum bs_status bundle_meta_encode(const struct bundle_meta *m, struct buf *out)
{
	size_t olen = strnlen(m->origin, sizeof m->origin);
	size_t slen = strnlen(m->scope, sizeof m->scope);

	if (!bundle_meta_valid(m, olen, slen))
		return BS_EINVALID;
	buf_append(out, BUNDLE_META_MAGIC, 4);
	buf_append_u8(out, BUNDLE_VERSION);
	buf_append_u8(out, m->kind);
	wire_put_blob(out, m->origin, olen);
	buf_append(out, m->server_pk, SIGN_PUBLIC_BYTES);
	buf_append(out, m->exporter, SIGN_PUBLIC_BYTES);
	wire_put_blob(out, m->scope, slen);
	wire_put_u64be(out, m->time_ms);
	return out->status;
}

enum bs_status bundle_meta_decode(const uint8_t *p, size_t len,
				  struct bundle_meta *out)
{
	struct wire_reader r;
	uint8_t magic[4], version;
	const uint8_t *origin, *scope;
	size_t olen, slen;
	enum bs_status st;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((st = wire_get_fixed(&r, magic, sizeof magic)))
		return st;
	if (memcmp(magic, BUNDLE_META_MAGIC, sizeof magic) != 0)
		return BS_EMAGIC;
	if ((st = wire_get_u8(&r, &version)))
		return st;
	if (version != BUNDLE_VERSION)
		return BS_EVERSION;
	if ((st = wire_get_u8(&r, &out->kind)) ||
	    (st = wire_get_blob(&r, CHECKPOINT_ORIGIN_MAX, &origin, &olen)) ||
	    (st = wire_get_fixed(&r, out->server_pk, SIGN_PUBLIC_BYTES)) ||
	    (st = wire_get_fixed(&r, out->exporter, SIGN_PUBLIC_BYTES)) ||
	    (st = wire_get_blob(&r, CHANGESET_SCOPE_MAX, &scope, &slen)) ||
	    (st = wire_get_u64be(&r, &out->time_ms)))
		return st;
	/* a NUL inside would make the C strings shorter than their fields */
	if (memchr(origin, 0, olen) || memchr(scope, 0, slen))
		return BS_EINVALID;
	memcpy(out->origin, origin, olen);
	memcpy(out->scope, scope, slen);
	if (!bundle_meta_valid(out, olen, slen))
		return BS_EINVALID;
	return wire_expect_end(&r);
}

/* ---- the frame layout ---- */

static int bundle_push(struct bundle_frame **arr, size_t *n, size_t *cap,
		       const uint8_t *p, size_t len)
{
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 64;
		struct bundle_frame *a = mem_realloc(*arr, ncap * sizeof *a);

		if (!a)
			return -1;
		*arr = a;
		*cap = ncap;
	}
	(*arr)[*n].p = p;
	(*arr)[(*n)++].len = len;
	return 0;
}

/* Files one frame (frame number nf) in its place. */
static int bundle_take(struct bundle *b, const struct frame *f,
		       const uint8_t *at, uint64_t nf, size_t caps[2],
		       struct err *e)
{
	enum bs_status st;

	if (nf == 1) {
		if (f->type != FRAME_META) {
			err_set(e, ERR_VERIFY,
				"frame 1 of the bundle is not "
				"its META frame (type %u); this is not a "
				"branchsync bundle",
				f->type);
			return -1;
		}
		if ((st = bundle_meta_decode(f->payload, f->len, &b->meta))) {
			err_set(e, ERR_VERIFY,
				"frame 1 of the bundle, its "
				"META, is malformed (%s)",
				bs_status_str(st));
			return -1;
		}
		return 0;
	}
	if (f->type == FRAME_ENROLLMENT && b->nchangesets == 0) {
		if (b->nenrollments == BUNDLE_MAX_ENROLLMENTS) {
			err_set(e, ERR_VERIFY,
				"frame %llu: the bundle holds "
				"more than %u enrollments",
				(unsigned long long)nf, BUNDLE_MAX_ENROLLMENTS);
			return -1;
		}
		if (bundle_push(&b->enrollments, &b->nenrollments, &caps[0], at,
				f->len))
			goto nomem;
		return 0;
	}
	if (f->type == FRAME_CHANGESET) {
		if (b->nchangesets == BUNDLE_MAX_CHANGESETS) {
			err_set(e, ERR_VERIFY,
				"frame %llu: the bundle holds "
				"more than %u change sets",
				(unsigned long long)nf, BUNDLE_MAX_CHANGESETS);
			return -1;
		}
		if (bundle_push(&b->changesets, &b->nchangesets, &caps[1], at,
				f->len))
			goto nomem;
		return 0;
	}
	err_set(e, ERR_VERIFY,
		"frame %llu of the bundle has type %u, which "
		"a bundle does not hold there",
		(unsigned long long)nf, f->type);
	return -1;
nomem:
	err_set(e, ERR_INVALID, "out of memory reading the bundle");
	return -1;
}

int bundle_parse(const uint8_t *p, size_t len, struct bundle *out,
		 struct err *e)
{
	struct frame_reader fr;
	struct frame f;
	size_t off = 0, used, caps[2] = {0, 0};
	uint64_t nf = 0;
	enum bs_status st = BS_OK;
	int rc = -1;

	memset(out, 0, sizeof *out);
	frame_reader_init(&fr, BUNDLE_FRAME_MAX);
	if (len > BUNDLE_MAX_BYTES) {
		err_set(e, ERR_VERIFY,
			"the file is larger than a bundle may "
			"be (%u MiB)",
			BUNDLE_MAX_BYTES >> 20);
		goto cleanup;
	}
	while (off < len) {
		if ((st = frame_reader_feed(&fr, p + off, len - off, &used)))
			break;
		off += used;
		if (!frame_reader_next(&fr, &f))
			continue;
		/* the payload is the last f.len bytes the reader took: point
		 * into the file rather than keep a copy */
		if (bundle_take(out, &f, p + fr.consumed - f.len, ++nf, caps,
				e))
			goto cleanup;
	}
	if (st == BS_OK)
		st = frame_reader_finish(&fr);
	if (st == BS_ETRUNCATED) {
		err_set(
		    e, ERR_VERIFY,
		    "the bundle is truncated after frame "
		    "%llu (it ends at byte %zu, before its END frame); copy "
		    "the file again",
		    (unsigned long long)nf, len);
		goto cleanup;
	}
	if (st && nf == 0) {
		err_set(e, ERR_VERIFY,
			"the file is not a bundle: it is "
			"malformed at byte %llu (%s)",
			(unsigned long long)fr.consumed, bs_status_str(st));
		goto cleanup;
	}
	if (st) {
		err_set(e, ERR_VERIFY,
			"the bundle is malformed at byte %llu, "
			"in the frame after frame %llu (%s)",
			(unsigned long long)fr.consumed, (unsigned long long)nf,
			bs_status_str(st));
		goto cleanup;
	}
	if (nf == 0) {
		err_set(e, ERR_VERIFY,
			"the bundle is empty: it has no META "
			"frame");
		goto cleanup;
	}
	rc = 0;
cleanup:
	frame_reader_release(&fr);
	return rc;
}

void bundle_release(struct bundle *b)
{
	mem_free(b->enrollments);
	mem_free(b->changesets);
	memset(b, 0, sizeof *b);
}

int bundle_enrollment_keep(struct replica *r,
			   const uint8_t device[SIGN_PUBLIC_BYTES],
			   const uint8_t *signed_bytes, size_t len,
			   struct err *e)
{
	sqlite3_stmt *st = NULL;
	int step;

	if (bundle_prepare(r,
			   "INSERT INTO bs_enrollments(key, bytes)"
			   " VALUES(?1, ?2) ON CONFLICT(key) DO NOTHING",
			   &st, e))
		return -1;
	sqlite3_bind_blob(st, 1, device, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 2, signed_bytes, len, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_finalize(st);
	return step == SQLITE_DONE ? 0 : bundle_db_fail(r, e);
}

/* What enroll and sync stored about the server: its key and log name. */
static int bundle_server(struct replica *r, const struct identity *id,
			 uint8_t pk[SIGN_PUBLIC_BYTES],
			 char origin[CHECKPOINT_ORIGIN_MAX + 1], struct err *e)
{
	uint8_t *v = NULL;
	size_t n = 0;
	char *o = NULL;
	int rc = -1;

	if (!id->role || !id->scope) {
		err_set(e, ERR_INVALID,
			"this device is not enrolled; run "
			"'branchsync enroll' with a token from the district "
			"office first");
		return -1;
	}
	if (replica_setting_get(r, "server_pk", &v, &n, e))
		return -1;
	o = replica_setting_text(r, "origin");
	if (!v || n != SIGN_PUBLIC_BYTES || !o || !*o ||
	    strlen(o) > CHECKPOINT_ORIGIN_MAX) {
		err_set(e, ERR_INVALID,
			"the enrollment stored in %s is "
			"incomplete or damaged; restore the replica from a "
			"backup",
			r->path);
		goto cleanup;
	}
	memcpy(pk, v, SIGN_PUBLIC_BYTES);
	strcpy(origin, o);
	rc = 0;
cleanup:
	mem_free(v);
	mem_free(o);
	return rc;
}

/* ---- export ---- */

/* One change set to export, before its bytes are read. */
struct bundle_item {
	uint8_t id[HASH_BYTES];
	uint8_t author[SIGN_PUBLIC_BYTES];
	int64_t seq;
	size_t pos; /* its place in the order the replica gives */
};

struct bundle_list {
	struct bundle_item *v;
	size_t n, cap;
};

static int bundle_list_add(struct bundle_list *l, sqlite3_stmt *st,
			   struct err *e)
{
	struct bundle_item *it;

	if (sqlite3_column_bytes(st, 0) != HASH_BYTES ||
	    sqlite3_column_bytes(st, 1) != SIGN_PUBLIC_BYTES) {
		err_set(e, ERR_INVALID,
			"the replica holds a damaged change "
			"set record; restore it from a backup");
		return -1;
	}
	if (l->n == BUNDLE_MAX_CHANGESETS) {
		err_set(e, ERR_INVALID,
			"more than %u change sets to export; "
			"a bundle holds at most that many",
			BUNDLE_MAX_CHANGESETS);
		return -1;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 256;
		struct bundle_item *v = mem_realloc(l->v, ncap * sizeof *v);

		if (!v) {
			err_set(e, ERR_INVALID, "out of memory");
			return -1;
		}
		l->v = v;
		l->cap = ncap;
	}
	it = &l->v[l->n];
	memcpy(it->id, sqlite3_column_blob(st, 0), HASH_BYTES);
	memcpy(it->author, sqlite3_column_blob(st, 1), SIGN_PUBLIC_BYTES);
	it->seq = sqlite3_column_int64(st, 2);
	it->pos = l->n++;
	return 0;
}

/* Appends the rows of a query (id, author, seq) to the list. */
static int bundle_list_query(struct replica *r, struct bundle_list *l,
			     const char *sql, const char *text,
			     const uint8_t *blob, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int step, rc = -1;

	if (bundle_prepare(r, sql, &st, e))
		return -1;
	if (text)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (blob)
		sqlite3_bind_blob(st, 1, blob, SIGN_PUBLIC_BYTES,
				  SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (bundle_list_add(l, st, e))
			goto cleanup;
	if (step != SQLITE_DONE) {
		bundle_db_fail(r, e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static int bundle_by_author_pos(const void *a, const void *b)
{
	const struct bundle_item *x = a, *y = b;
	int c = memcmp(x->author, y->author, SIGN_PUBLIC_BYTES);

	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int bundle_by_author_seq(const void *a, const void *b)
{
	const struct bundle_item *x = a, *y = b;
	int c = memcmp(x->author, y->author, SIGN_PUBLIC_BYTES);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Keeps the order the replica gave (the order it merged the sets in, which
 * respects causality) but makes each author's sets go in sequence order: the
 * places one author's sets hold are refilled with its sets sorted by
 * sequence. A replica that took some sets of an author out of order (a
 * bundle with gaps, then the log) would otherwise write a bundle that no
 * importer accepts.
 */
static int bundle_list_order(struct bundle_list *l, struct err *e)
{
	struct bundle_item *bypos = NULL, *byseq = NULL;
	size_t i;
	int rc = -1;

	if (l->n < 2)
		return 0;
	bypos = mem_calloc(l->n, sizeof *bypos);
	byseq = mem_calloc(l->n, sizeof *byseq);
	if (!bypos || !byseq) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	memcpy(bypos, l->v, l->n * sizeof *bypos);
	memcpy(byseq, l->v, l->n * sizeof *byseq);
	qsort(bypos, l->n, sizeof *bypos, bundle_by_author_pos);
	qsort(byseq, l->n, sizeof *byseq, bundle_by_author_seq);
	/* both sorts group the same authors with the same counts */
	for (i = 0; i < l->n; i++)
		l->v[bypos[i].pos] = byseq[i];
	rc = 0;
cleanup:
	mem_free(bypos);
	mem_free(byseq);
	return rc;
}

/* Appends the ENROLLMENT frame of `key` if the replica keeps it; counts
 * it as missing otherwise. */
static int bundle_put_enrollment(struct replica *r, sqlite3_stmt *st,
				 const uint8_t *key, struct buf *file,
				 struct bundle_export_summary *sum,
				 struct err *e)
{
	int step;

	sqlite3_reset(st);
	sqlite3_bind_blob(st, 1, key, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		frame_put(file, FRAME_ENROLLMENT, sqlite3_column_blob(st, 0),
			  (size_t)sqlite3_column_bytes(st, 0));
		sum->enrollments++;
	} else if (step == SQLITE_DONE) {
		sum->missing++;
	} else {
		return bundle_db_fail(r, e);
	}
	sqlite3_reset(st);
	return 0;
}

/* The exporter's enrollment, then every other author's, by key. */
static int bundle_put_enrollments(struct replica *r, const struct identity *id,
				  const struct bundle_list *l, struct buf *file,
				  struct bundle_export_summary *sum,
				  struct err *e)
{
	struct bundle_item *keys = NULL;
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc = -1;

	if (bundle_prepare(r, "SELECT bytes FROM bs_enrollments WHERE key=?1",
			   &st, e) ||
	    bundle_put_enrollment(r, st, id->pk, file, sum, e))
		goto cleanup;
	if (l->n) {
		keys = mem_calloc(l->n, sizeof *keys);
		if (!keys) {
			err_set(e, ERR_INVALID, "out of memory");
			goto cleanup;
		}
		memcpy(keys, l->v, l->n * sizeof *keys);
		qsort(keys, l->n, sizeof *keys, bundle_by_author_pos);
	}
	for (i = 0; i < l->n; i++) {
		if ((i > 0 && memcmp(keys[i].author, keys[i - 1].author,
				     SIGN_PUBLIC_BYTES) == 0) ||
		    memcmp(keys[i].author, id->pk, SIGN_PUBLIC_BYTES) == 0)
			continue;
		if (bundle_put_enrollment(r, st, keys[i].author, file, sum, e))
			goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	mem_free(keys);
	return rc;
}

/* Appends each listed change set's exact bytes, checked against its
 * record so that a damaged replica is told before the bundle travels. */
static int bundle_put_changesets(struct replica *r, const struct bundle_list *l,
				 struct buf *file,
				 struct bundle_export_summary *sum,
				 struct err *e)
{
	sqlite3_stmt *st = NULL;
	struct changeset cs;
	size_t i;
	int rc = -1;

	/* others' sets keep their bytes in bs_applied (relayed ones in
	 * bs_relay too); this device's own are in bs_outbox */
	if (bundle_prepare(r,
			   "SELECT coalesce((SELECT bytes FROM bs_applied"
			   " WHERE id=?1), (SELECT bytes FROM bs_outbox WHERE"
			   " id=?1), (SELECT bytes FROM bs_relay WHERE id=?1))",
			   &st, e))
		return -1;
	for (i = 0; i < l->n && !file->status; i++) {
		const struct bundle_item *it = &l->v[i];
		const uint8_t *p;
		size_t n;
		char hex[BUNDLE_SHORT_HEX];

		sqlite3_reset(st);
		sqlite3_bind_blob(st, 1, it->id, HASH_BYTES, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW) {
			bundle_db_fail(r, e);
			goto cleanup;
		}
		p = sqlite3_column_blob(st, 0);
		n = (size_t)sqlite3_column_bytes(st, 0);
		if (!p || changeset_decode(p, n, &cs) != BS_OK ||
		    memcmp(cs.id, it->id, HASH_BYTES) != 0 ||
		    memcmp(cs.env.author, it->author, SIGN_PUBLIC_BYTES) != 0 ||
		    cs.env.seq != (uint64_t)it->seq) {
			bundle_hex8(it->id, hex);
			err_set(e, ERR_INVALID,
				"the replica does not hold the "
				"bytes of change set %s, or they are damaged; "
				"restore it from a backup",
				hex);
			goto cleanup;
		}
		frame_put(file, FRAME_CHANGESET, p, n);
		sum->changesets++;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

/* Lists what goes in: for a device bundle, the relayed sets before this
 * device's own (its own may build on what it relays, never the other way
 * round, just as sync pushes them); for a branch, what the replica merged
 * of that scope and the district's, but not what the server refused. */
static int bundle_export_list(struct replica *r, const struct identity *id,
			      const char *for_branch, struct bundle_list *l,
			      struct err *e)
{
	if (for_branch)
		return bundle_list_query(
			   r, l,
			   "SELECT a.id, a.author, a.seq FROM bs_applied a"
			   " WHERE a.scope IN (?1, 'district') AND NOT EXISTS"
			   " (SELECT 1 FROM bs_outbox o WHERE o.id=a.id AND"
			   " o.acked=2) AND NOT EXISTS (SELECT 1 FROM bs_relay "
			   "y"
			   " WHERE y.id=a.id AND y.acked=2) ORDER BY a.rowid",
			   for_branch, NULL, e) ||
		       bundle_list_order(l, e);
	return bundle_list_query(
		   r, l,
		   "SELECT id, author, seq FROM bs_relay WHERE acked=0"
		   " ORDER BY author, seq",
		   NULL, NULL, e) ||
	       bundle_list_query(r, l,
				 "SELECT id, ?1, seq FROM bs_outbox WHERE "
				 "acked=0 ORDER BY seq",
				 NULL, id->pk, e);
}

static int bundle_export_check(const struct identity *id,
			       const char *for_branch, struct err *e)
{
	if (!for_branch)
		return 0;
	if (strcmp(id->role, "district") != 0) {
		err_set(e, ERR_INVALID,
			"only a district device can export a "
			"bundle for a branch (this one is a %s device); "
			"without --for it exports its own pending changes",
			id->role);
		return -1;
	}
	if (!changeset_scope_valid(for_branch, strlen(for_branch)) ||
	    strcmp(for_branch, "district") == 0) {
		err_set(e, ERR_INVALID,
			"--for takes a branch id (1 to 64 of "
			"A-Z a-z 0-9 _ . : -), not '%.64s'",
			for_branch);
		return -1;
	}
	return 0;
}

int bundle_export(struct replica *r, const struct identity *id,
		  const char *for_branch, const char *path,
		  struct bundle_export_summary *sum, struct err *e)
{
	struct bundle_meta m;
	struct bundle_list l;
	struct buf file, meta;
	int rc = -1;

	memset(sum, 0, sizeof *sum);
	memset(&m, 0, sizeof m);
	memset(&l, 0, sizeof l);
	buf_init(&file, BUNDLE_MAX_BYTES);
	buf_init(&meta, BUNDLE_META_MAX);
	if (bundle_server(r, id, m.server_pk, m.origin, e) ||
	    bundle_export_check(id, for_branch, e))
		goto cleanup;
	m.kind = for_branch ? BUNDLE_KIND_BRANCH : BUNDLE_KIND_DEVICE;
	memcpy(m.exporter, id->pk, SIGN_PUBLIC_BYTES);
	snprintf(m.scope, sizeof m.scope, "%s",
		 for_branch ? for_branch : id->scope);
	m.time_ms = clock_wall_ms();
	sum->kind = m.kind;
	if (bundle_meta_encode(&m, &meta) != BS_OK) {
		err_set(e, ERR_INVALID,
			"this device's enrollment (scope "
			"'%.64s') cannot be written in a bundle",
			id->scope);
		goto cleanup;
	}
	/* one read transaction: the list and the bytes are one snapshot */
	if (replica_exec(r->db, "BEGIN", e))
		goto cleanup;
	frame_stream_begin(&file);
	frame_put(&file, FRAME_META, meta.data, meta.len);
	if (bundle_export_list(r, id, for_branch, &l, e) ||
	    bundle_put_enrollments(r, id, &l, &file, sum, e) ||
	    bundle_put_changesets(r, &l, &file, sum, e))
		goto cleanup;
	frame_stream_end(&file);
	if (file.status) {
		err_set(
		    e, ERR_INVALID,
		    file.status == BS_ELIMIT
			? "the bundle would be larger than %u MiB; sync over a "
			  "link instead, or export more often"
			: "out of memory writing the bundle (%u MiB at most)",
		    BUNDLE_MAX_BYTES >> 20);
		goto cleanup;
	}
	replica_rollback(r);
	if (fsutil_write_atomic(path, file.data, file.len, 0600)) {
		err_set(e, ERR_INVALID, "cannot write the bundle to %s: %s",
			path, strerror(errno));
		goto cleanup;
	}
	sum->bytes = file.len;
	rc = 0;
cleanup:
	replica_rollback(r);
	mem_free(l.v);
	buf_release(&file);
	buf_release(&meta);
	return rc;
}

/* ---- import: verification ---- */

/* An author as the import judges it. */
struct bundle_author {
	uint8_t key[SIGN_PUBLIC_BYTES];
	enum enrollment_role role;
	char scope[ENROLLMENT_SCOPE_MAX + 1];
	int revoked;  /* the log this replica read revoked it */
	int has_last; /* an earlier set of it in the bundle */
	uint64_t last_seq;
	uint8_t last_id[HASH_BYTES];
};

struct bundle_in {
	struct replica *r;
	const struct identity *id;
	struct bundle b;
	uint8_t server_pk[SIGN_PUBLIC_BYTES];
	char origin[CHECKPOINT_ORIGIN_MAX + 1];
	struct bundle_author *authors; /* sorted by key */
	size_t nauthors, cap;
	sqlite3_stmt *held;   /* id -> 1 if in bs_applied */
	sqlite3_stmt *at_seq; /* (author, seq) -> id */
	sqlite3_stmt *logged; /* key -> role, scope, revoked */
	sqlite3_stmt *kept;   /* key -> signed enrollment */
};

static struct bundle_author *bundle_author_find(struct bundle_in *in,
						const uint8_t *key, size_t *at)
{
	size_t lo = 0, hi = in->nauthors;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(key, in->authors[mid].key, SIGN_PUBLIC_BYTES);

		if (c == 0)
			return &in->authors[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*at = lo;
	return NULL;
}

static struct bundle_author *bundle_author_add(struct bundle_in *in, size_t at,
					       const uint8_t *key,
					       struct err *e)
{
	struct bundle_author *a;

	if (in->nauthors == in->cap) {
		size_t ncap = in->cap ? 2 * in->cap : 16;

		a = mem_realloc(in->authors, ncap * sizeof *a);
		if (!a) {
			err_set(e, ERR_INVALID, "out of memory");
			return NULL;
		}
		in->authors = a;
		in->cap = ncap;
	}
	memmove(&in->authors[at + 1], &in->authors[at],
		(in->nauthors - at) * sizeof *a);
	in->nauthors++;
	a = &in->authors[at];
	memset(a, 0, sizeof *a);
	memcpy(a->key, key, SIGN_PUBLIC_BYTES);
	return a;
}

/* What the log this replica verified says of `key` (bs_authors): *found,
 * and role, scope and revocation into a. */
static int bundle_author_logged(struct bundle_in *in, const uint8_t *key,
				struct bundle_author *a, int *found,
				struct err *e)
{
	sqlite3_stmt *st = in->logged;
	const char *role, *scope;
	int step, rc = -1;

	*found = 0;
	sqlite3_reset(st);
	sqlite3_bind_blob(st, 1, key, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = 0;
		goto cleanup;
	}
	if (step != SQLITE_ROW) {
		bundle_db_fail(in->r, e);
		goto cleanup;
	}
	role = (const char *)sqlite3_column_text(st, 0);
	scope = (const char *)sqlite3_column_text(st, 1);
	if (!role || !scope || enrollment_role_parse(role, &a->role) ||
	    strlen(scope) > ENROLLMENT_SCOPE_MAX) {
		err_set(e, ERR_INVALID,
			"the replica's record of an author is "
			"damaged; restore it from a backup");
		goto cleanup;
	}
	strcpy(a->scope, scope);
	a->revoked = sqlite3_column_int(st, 2);
	*found = 1;
	rc = 0;
cleanup:
	sqlite3_reset(st);
	return rc;
}

/* An author of a change set whose enrollment is not in the bundle: the
 * log's record of it, else an enrollment kept from an earlier bundle. */
static int bundle_author_known(struct bundle_in *in, struct bundle_author *a,
			       uint64_t nf, struct err *e)
{
	struct enrollment en;
	char hex[BUNDLE_SHORT_HEX];
	int found, step, rc = -1;

	if (bundle_author_logged(in, a->key, a, &found, e))
		return -1;
	if (found)
		return 0;
	sqlite3_reset(in->kept);
	sqlite3_bind_blob(in->kept, 1, a->key, SIGN_PUBLIC_BYTES,
			  SQLITE_STATIC);
	step = sqlite3_step(in->kept);
	if (step == SQLITE_ROW &&
	    enrollment_open(sqlite3_column_blob(in->kept, 0),
			    (size_t)sqlite3_column_bytes(in->kept, 0),
			    in->server_pk, &en) == BS_OK &&
	    memcmp(en.device, a->key, SIGN_PUBLIC_BYTES) == 0) {
		a->role = en.role;
		strcpy(a->scope, en.scope);
		rc = 0;
	} else if (step == SQLITE_ROW || step == SQLITE_DONE) {
		bundle_hex8(a->key, hex);
		err_set(e, ERR_VERIFY,
			"frame %llu is a change set by device "
			"%s, whose enrollment is neither in the bundle nor "
			"known to this replica",
			(unsigned long long)nf, hex);
	} else {
		bundle_db_fail(in->r, e);
	}
	sqlite3_reset(in->kept);
	return rc;
}

/* Each ENROLLMENT frame: signed by our server, one per device, and not
 * contradicting the log this replica verified. */
static int bundle_check_enrollments(struct bundle_in *in, struct err *e)
{
	struct bundle_author *a, logged;
	struct enrollment en;
	char hex[BUNDLE_SHORT_HEX];
	enum bs_status st;
	size_t i, at = 0;
	uint64_t nf;
	int found;

	for (i = 0; i < in->b.nenrollments; i++) {
		nf = 2 + i;
		st = enrollment_open(in->b.enrollments[i].p,
				     in->b.enrollments[i].len, in->server_pk,
				     &en);
		if (st) {
			err_set(e, ERR_VERIFY,
				"frame %llu: the enrollment is "
				"not one signed by this device's district "
				"server (%s)",
				(unsigned long long)nf, bs_status_str(st));
			return -1;
		}
		bundle_hex8(en.device, hex);
		if (bundle_author_find(in, en.device, &at)) {
			err_set(e, ERR_VERIFY,
				"frame %llu repeats the "
				"enrollment of device %s",
				(unsigned long long)nf, hex);
			return -1;
		}
		memset(&logged, 0, sizeof logged);
		if (bundle_author_logged(in, en.device, &logged, &found, e))
			return -1;
		if (found && (logged.role != en.role ||
			      strcmp(logged.scope, en.scope) != 0)) {
			err_set(e, ERR_VERIFY,
				"frame %llu: the enrollment of "
				"device %s contradicts the one in the server's "
				"log",
				(unsigned long long)nf, hex);
			return -1;
		}
		if (!(a = bundle_author_add(in, at, en.device, e)))
			return -1;
		a->role = en.role;
		strcpy(a->scope, en.scope);
		a->revoked = found && logged.revoked;
	}
	return 0;
}

/* The id this replica holds for (author, seq), if any: *found. */
static int bundle_held_at(struct bundle_in *in, const uint8_t *author,
			  uint64_t seq, uint8_t id[HASH_BYTES], int *found,
			  struct err *e)
{
	sqlite3_stmt *st = in->at_seq;
	int step;

	*found = 0;
	sqlite3_reset(st);
	sqlite3_bind_blob(st, 1, author, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_bytes(st, 0) == HASH_BYTES) {
		memcpy(id, sqlite3_column_blob(st, 0), HASH_BYTES);
		*found = 1;
	}
	sqlite3_reset(st);
	if (step == SQLITE_ROW || step == SQLITE_DONE)
		return 0;
	return bundle_db_fail(in->r, e);
}

/*
 * The chain rules (docs/BUNDLE.md, "Chains"): an author's sets go in
 * increasing sequence; a set whose predecessor (seq - 1) is known, as the
 * author's previous set in the bundle or one the replica holds, must name
 * it in prev; the replica must not hold another set at the same sequence.
 * A device bundle must know every predecessor; a branch bundle, which
 * leaves out the sets of other scopes, may have gaps.
 */
static int bundle_check_chain(struct bundle_in *in, struct bundle_author *a,
			      const struct changeset *cs, uint64_t nf,
			      struct err *e)
{
	uint8_t pred[HASH_BYTES], same[HASH_BYTES];
	const uint8_t *want = NULL;
	char hex[BUNDLE_SHORT_HEX];
	uint64_t seq = cs->env.seq;
	int found;

	bundle_hex8(a->key, hex);
	if (a->has_last && seq <= a->last_seq) {
		err_set(e, ERR_VERIFY,
			"frame %llu: device %s's change set %llu "
			"comes after its change set %llu; a bundle holds each "
			"device's change sets in sequence order",
			(unsigned long long)nf, hex, (unsigned long long)seq,
			(unsigned long long)a->last_seq);
		return -1;
	}
	if (bundle_held_at(in, a->key, seq, same, &found, e))
		return -1;
	if (found && memcmp(same, cs->id, HASH_BYTES) != 0) {
		err_set(
		    e, ERR_VERIFY,
		    "frame %llu: device %s signed two "
		    "different change sets with sequence %llu, this one and "
		    "one this replica holds; show both to the district "
		    "office",
		    (unsigned long long)nf, hex, (unsigned long long)seq);
		return -1;
	}
	if (seq == 1)
		return 0; /* the decoder made sure prev is zero */
	if (a->has_last && a->last_seq == seq - 1) {
		want = a->last_id;
	} else {
		if (bundle_held_at(in, a->key, seq - 1, pred, &found, e))
			return -1;
		if (found)
			want = pred;
	}
	if (want && memcmp(want, cs->env.prev, HASH_BYTES) != 0) {
		err_set(e, ERR_VERIFY,
			"frame %llu: device %s's change set %llu "
			"does not chain to its change set %llu (a fork)",
			(unsigned long long)nf, hex, (unsigned long long)seq,
			(unsigned long long)(seq - 1));
		return -1;
	}
	if (!want && in->b.meta.kind == BUNDLE_KIND_DEVICE) {
		err_set(e, ERR_VERIFY,
			"frame %llu: device %s's change set %llu "
			"follows its change set %llu, which neither the bundle "
			"nor this replica holds; sync this device first, or "
			"import the earlier bundle",
			(unsigned long long)nf, hex, (unsigned long long)seq,
			(unsigned long long)(seq - 1));
		return -1;
	}
	return 0;
}

/* The author's right to write the set's scope, and this device's right
 * to see it. */
static int bundle_check_scope(struct bundle_in *in,
			      const struct bundle_author *a,
			      const struct changeset *cs, uint64_t nf,
			      struct err *e)
{
	const char *scope = cs->env.scope, *me = in->id->scope;
	char hex[BUNDLE_SHORT_HEX];

	bundle_hex8(a->key, hex);
	if (!(a->role == ROLE_DISTRICT ||
	      (a->role == ROLE_BRANCH && strcmp(a->scope, scope) == 0))) {
		err_set(e, ERR_VERIFY,
			"frame %llu is a change set of scope %s "
			"by device %s, whose enrollment (%s %s) does not allow "
			"it",
			(unsigned long long)nf, scope, hex,
			enrollment_role_name(a->role)
			    ? enrollment_role_name(a->role)
			    : "?",
			a->scope);
		return -1;
	}
	if (in->b.meta.kind == BUNDLE_KIND_BRANCH &&
	    strcmp(scope, in->b.meta.scope) != 0 &&
	    strcmp(scope, "district") != 0) {
		err_set(e, ERR_VERIFY,
			"frame %llu is a change set of scope %s "
			"in a bundle for branch %s",
			(unsigned long long)nf, scope, in->b.meta.scope);
		return -1;
	}
	if (strcmp(in->id->role, "branch") == 0 && strcmp(scope, me) != 0 &&
	    strcmp(scope, "district") != 0) {
		err_set(e, ERR_INVALID,
			"frame %llu holds a change set of "
			"branch %s, which this device (of branch %s) may not "
			"see; nothing was imported",
			(unsigned long long)nf, scope, me);
		return -1;
	}
	return 0;
}

static int bundle_is_held(struct bundle_in *in, const uint8_t *id, int *held,
			  struct err *e)
{
	int step;

	sqlite3_reset(in->held);
	sqlite3_bind_blob(in->held, 1, id, HASH_BYTES, SQLITE_STATIC);
	step = sqlite3_step(in->held);
	sqlite3_reset(in->held);
	*held = step == SQLITE_ROW;
	if (step == SQLITE_ROW || step == SQLITE_DONE)
		return 0;
	return bundle_db_fail(in->r, e);
}

/* One CHANGESET frame, with everything it depends on. */
static int bundle_check_changeset(struct bundle_in *in, size_t i, struct err *e)
{
	const struct bundle_frame *f = &in->b.changesets[i];
	uint64_t nf = 2 + in->b.nenrollments + i;
	struct bundle_author *a;
	struct changeset cs;
	struct err why;
	char hex[BUNDLE_SHORT_HEX];
	enum bs_status st;
	size_t at = 0;
	int held;

	st = changeset_decode(f->p, f->len, &cs);
	if (st == BS_OK)
		st = changeset_verify(&cs);
	if (st) {
		err_set(e, ERR_VERIFY,
			"frame %llu is a change set that does "
			"not verify (%s)",
			(unsigned long long)nf, bs_status_str(st));
		return -1;
	}
	if (cs.env.schema_version != SCHEMA_VERSION) {
		err_set(e, ERR_VERIFY,
			"frame %llu is a change set for record "
			"schema %llu; this branchsync knows schema %d",
			(unsigned long long)nf,
			(unsigned long long)cs.env.schema_version,
			SCHEMA_VERSION);
		return -1;
	}
	err_init(&why);
	if (merge_check(&cs, &why)) {
		err_set(e, ERR_VERIFY,
			"frame %llu is a change set that is not "
			"valid for the schema: %s",
			(unsigned long long)nf, why.msg);
		return -1;
	}
	if (!(a = bundle_author_find(in, cs.env.author, &at))) {
		if (!(a = bundle_author_add(in, at, cs.env.author, e)) ||
		    bundle_author_known(in, a, nf, e))
			return -1;
	}
	if (bundle_check_scope(in, a, &cs, nf, e) ||
	    bundle_is_held(in, cs.id, &held, e))
		return -1;
	bundle_hex8(a->key, hex);
	if (!held && memcmp(a->key, in->id->pk, SIGN_PUBLIC_BYTES) == 0) {
		err_set(e, ERR_VERIFY,
			"frame %llu is a change set signed by "
			"this device that its replica does not hold; was the "
			"replica restored from an old backup?",
			(unsigned long long)nf);
		return -1;
	}
	/* the log this replica read revoked the author: every set of it the
	 * server accepted came before the revocation, so this replica has
	 * pulled each one it may see; a new one can only be one the server
	 * never accepted */
	if (!held && a->revoked) {
		err_set(e, ERR_VERIFY,
			"frame %llu is a change set by device "
			"%s, which the server revoked, and not one the "
			"server's log holds",
			(unsigned long long)nf, hex);
		return -1;
	}
	if (bundle_check_chain(in, a, &cs, nf, e))
		return -1;
	a->has_last = 1;
	a->last_seq = cs.env.seq;
	memcpy(a->last_id, cs.id, HASH_BYTES);
	return 0;
}

static int bundle_check_meta(struct bundle_in *in, struct err *e)
{
	const struct bundle_meta *m = &in->b.meta;
	char want[2 * SIGN_PUBLIC_BYTES + 1], got[2 * SIGN_PUBLIC_BYTES + 1];

	if (memcmp(m->server_pk, in->server_pk, SIGN_PUBLIC_BYTES) != 0) {
		sodium_bin2hex(want, sizeof want, in->server_pk,
			       SIGN_PUBLIC_BYTES);
		sodium_bin2hex(got, sizeof got, m->server_pk,
			       SIGN_PUBLIC_BYTES);
		err_set(e, ERR_VERIFY,
			"frame 1: the bundle was made for the "
			"server with key %.16s..., not for this device's "
			"server (%.16s...)",
			got, want);
		return -1;
	}
	if (strcmp(m->origin, in->origin) != 0) {
		err_set(e, ERR_VERIFY,
			"frame 1: the bundle was made for log "
			"'%s', not for this device's '%s'",
			m->origin, in->origin);
		return -1;
	}
	if (m->kind == BUNDLE_KIND_BRANCH &&
	    strcmp(in->id->role, "branch") == 0 &&
	    strcmp(m->scope, in->id->scope) != 0) {
		err_set(e, ERR_INVALID,
			"the bundle is for branch %s, and this "
			"device belongs to branch %s; nothing was imported",
			m->scope, in->id->scope);
		return -1;
	}
	return 0;
}

static int bundle_verify(struct bundle_in *in, struct err *e)
{
	size_t i;

	if (bundle_check_meta(in, e) ||
	    bundle_prepare(in->r, "SELECT 1 FROM bs_applied WHERE id=?1",
			   &in->held, e) ||
	    bundle_prepare(in->r,
			   "SELECT id FROM bs_applied WHERE author=?1"
			   " AND seq=?2",
			   &in->at_seq, e) ||
	    bundle_prepare(in->r,
			   "SELECT role, scope, revoke_idx IS NOT NULL"
			   " FROM bs_authors WHERE key=?1",
			   &in->logged, e) ||
	    bundle_prepare(in->r,
			   "SELECT bytes FROM bs_enrollments"
			   " WHERE key=?1",
			   &in->kept, e) ||
	    bundle_check_enrollments(in, e))
		return -1;
	for (i = 0; i < in->b.nchangesets; i++)
		if (bundle_check_changeset(in, i, e))
			return -1;
	return 0;
}

/* ---- import: applying ---- */

static int bundle_relay(struct bundle_in *in, sqlite3_stmt **st,
			const struct changeset *cs, struct err *e)
{
	int step;

	if (!*st && bundle_prepare(in->r,
				   "INSERT INTO bs_relay(id, author,"
				   " seq, bytes) VALUES(?1, ?2, ?3, ?4)"
				   " ON CONFLICT DO NOTHING",
				   st, e))
		return -1;
	sqlite3_reset(*st);
	sqlite3_bind_blob(*st, 1, cs->id, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(*st, 2, cs->env.author, SIGN_PUBLIC_BYTES,
			  SQLITE_STATIC);
	sqlite3_bind_int64(*st, 3, (int64_t)cs->env.seq);
	sqlite3_bind_blob64(*st, 4, cs->env_bytes, cs->encoded_len,
			    SQLITE_STATIC);
	step = sqlite3_step(*st);
	sqlite3_reset(*st);
	return step == SQLITE_DONE ? 0 : bundle_db_fail(in->r, e);
}

/* Merges every set in bundle order, moves the clock as sync does, keeps
 * the enrollments and queues relays; the caller's transaction. */
static int bundle_apply_all(struct bundle_in *in, struct merge *m,
			    struct bundle_import_summary *sum, struct err *e)
{
	struct merge_stats stats;
	struct changeset cs;
	struct hlc clock;
	sqlite3_stmt *relay = NULL;
	int64_t stored = 0;
	uint64_t wall = clock_wall_ms(), stamp;
	enum hlc_verdict hv;
	int applied = 0, relays, rc = -1;
	size_t i;

	/* a district device relays others' sets from a device bundle: it is
	 * how a branch without a link reaches the server */
	relays = in->b.meta.kind == BUNDLE_KIND_DEVICE &&
		 strcmp(in->id->role, "district") == 0;
	memset(&stats, 0, sizeof stats);
	if (replica_setting_int(in->r, "hlc", &stored, 0, e))
		goto cleanup;
	hlc_init(&clock, SYNC_MAX_DRIFT_MS);
	hlc_restore(&clock, (uint64_t)stored);
	for (i = 0; i < in->b.nenrollments; i++) {
		struct enrollment en;

		if (enrollment_open(in->b.enrollments[i].p,
				    in->b.enrollments[i].len, in->server_pk,
				    &en) != BS_OK) {
			err_set(e, ERR_VERIFY,
				"an enrollment changed while "
				"the bundle was imported");
			goto cleanup;
		}
		if (bundle_enrollment_keep(in->r, en.device,
					   in->b.enrollments[i].p,
					   in->b.enrollments[i].len, e))
			goto cleanup;
	}
	for (i = 0; i < in->b.nchangesets; i++) {
		struct err why;

		/* the same bytes in memory that were verified */
		err_init(&why);
		if (changeset_decode(in->b.changesets[i].p,
				     in->b.changesets[i].len, &cs) != BS_OK)
			err_set(&why, ERR_INVALID, "it no longer decodes");
		else
			merge_apply(m, &cs, &applied, &stats, &why);
		if (why.kind != ERR_OK) {
			err_set(
			    e, why.kind,
			    "frame %llu could not be merged, "
			    "nothing was imported: %s",
			    (unsigned long long)(2 + in->b.nenrollments + i),
			    why.msg);
			goto cleanup;
		}
		if (!applied)
			continue;
		sum->applied++;
		if (hlc_receive(&clock, wall, cs.env.hlc, &stamp, &hv) !=
		    BS_OK) {
			err_set(e, ERR_INVALID,
				"the local clock cannot advance; "
				"check the computer's date");
			goto cleanup;
		}
		if (relays &&
		    memcmp(cs.env.author, in->id->pk, SIGN_PUBLIC_BYTES) != 0) {
			if (bundle_relay(in, &relay, &cs, e))
				goto cleanup;
			sum->relayed++;
		}
	}
	if (clock.last != (uint64_t)stored &&
	    replica_setting_set_int(in->r, "hlc", (int64_t)clock.last, e))
		goto cleanup;
	sum->duplicates = in->b.nchangesets - sum->applied;
	sum->conflicts = stats.conflicts;
	rc = 0;
cleanup:
	sqlite3_finalize(relay);
	return rc;
}

static void bundle_in_release(struct bundle_in *in)
{
	sqlite3_finalize(in->held);
	sqlite3_finalize(in->at_seq);
	sqlite3_finalize(in->logged);
	sqlite3_finalize(in->kept);
	mem_free(in->authors);
	bundle_release(&in->b);
	memset(in, 0, sizeof *in);
}

static int bundle_read(const char *path, uint8_t **data, size_t *len,
		       struct err *e)
{
	if (fsutil_read_all(path, BUNDLE_MAX_BYTES, data, len) == 0)
		return 0;
	if (errno == EFBIG)
		err_set(e, ERR_VERIFY,
			"%s is larger than a bundle may be "
			"(%u MiB)",
			path, BUNDLE_MAX_BYTES >> 20);
	else
		err_set(e, ERR_INVALID, "cannot read the bundle %s: %s", path,
			strerror(errno));
	return -1;
}

int bundle_import(struct replica *r, const struct identity *id,
		  const char *path, struct bundle_import_summary *sum,
		  struct err *e)
{
	struct bundle_in in;
	struct merge *m = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = -1;

	memset(sum, 0, sizeof *sum);
	memset(&in, 0, sizeof in);
	in.r = r;
	in.id = id;
	if (bundle_server(r, id, in.server_pk, in.origin, e) ||
	    bundle_read(path, &data, &len, e) ||
	    bundle_parse(data, len, &in.b, e))
		goto cleanup;
	sum->meta = in.b.meta;
	sum->changesets = in.b.nchangesets;
	/* BEGIN IMMEDIATE before verifying: what the checks read (held
	 * sets, authors) cannot change before the sets are applied */
	if (replica_begin(r, e) || bundle_verify(&in, e) ||
	    merge_new(r->db, &m, e) || bundle_apply_all(&in, m, sum, e) ||
	    replica_commit(r, e))
		goto cleanup;
	rc = 0;
cleanup:
	merge_free(m);
	bundle_in_release(&in);
	replica_rollback(r);
	mem_free(data);
	return rc;
}
