/* exportlog.c - the auditor's export of the whole log (see exportlog.h). */
#include "exportlog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "digest.h"
#include "frame.h"
#include "fsutil.h"
#include "srvlog.h"
#include "statedigest.h"
#include "wire.h"

/* Frames are gathered up to this many bytes, then written out: the file
 * can be far larger than memory. */
#define EXPORT_CHUNK ((size_t)1 << 20)

/* The export file being written, and the frames not yet in it. */
struct export_out {
	struct fsutil_atomic file;
	struct buf b;  /* holds EXPORT_CHUNK plus the largest frame */
};

static int out_flush(struct export_out *o, size_t above, struct err *e)
{
	if (o->b.status) {
		err_set(e, ERR_INVALID, "an export frame is too large");
		return -1;
	}
	if (o->b.len <= above)
		return 0;
	if (fsutil_atomic_write(&o->file, o->b.data, o->b.len)) {
		err_set(e, ERR_INVALID, "cannot write the export: %s",
			strerror(errno));
		return -1;
	}
	buf_reset(&o->b);
	return 0;
}

static int out_frame(struct export_out *o, unsigned type, const void *p,
		     size_t len, struct err *e)
{
	frame_put(&o->b, type, p, len);
	return out_flush(o, EXPORT_CHUNK, e);
}

static int put_entries(struct store *s, struct export_out *o, uint64_t size,
		       struct err *e)
{
	sqlite3_stmt *st = NULL;
	struct buf f;
	int step, rc = -1;

	buf_init(&f, LOGENTRY_MAX + WIRE_VARINT_MAX);
	if (sqlite3_prepare_v2(s->r->db, "SELECT idx, entry FROM srv_log"
			       " WHERE idx < ?1 ORDER BY idx", -1, &st, NULL)) {
		err_set(e, ERR_INVALID, "cannot read the log: %s",
			sqlite3_errmsg(s->r->db));
		goto cleanup;
	}
	sqlite3_bind_int64(st, 1, (int64_t)size);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		buf_reset(&f);
		wire_put_varint(&f, (uint64_t)sqlite3_column_int64(st, 0));
		buf_append(&f, sqlite3_column_blob(st, 1),
			   (size_t)sqlite3_column_bytes(st, 1));
		if (f.status) {
			err_set(e, ERR_INVALID, "log entry %lld is too large",
				(long long)sqlite3_column_int64(st, 0));
			goto cleanup;
		}
		if (out_frame(o, FRAME_ENTRY, f.data, f.len, e))
			goto cleanup;
	}
	if (step != SQLITE_DONE) {
		err_set(e, ERR_INVALID, "cannot read the log: %s",
			sqlite3_errmsg(s->r->db));
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	buf_release(&f);
	return rc;
}

/* digest_put_rows' flush: the row hashes go out a chunk at a time too. */
static int out_flush_chunk(void *ctx, struct err *e)
{
	return out_flush(ctx, EXPORT_CHUNK, e);
}

/* The export's first frames: the server's key and origin. */
static int put_meta(struct store *s, struct export_out *o, struct err *e)
{
	struct buf meta;
	int rc;

	buf_init(&meta, 512);
	buf_append(&meta, s->pk, SIGN_PUBLIC_BYTES);
	wire_put_blob(&meta, s->origin, strlen(s->origin));
	frame_stream_begin(&o->b);
	rc = meta.status ? -1 : out_frame(o, FRAME_META, meta.data, meta.len,
					  e);
	if (meta.status)
		err_set(e, ERR_INVALID, "the server's origin is too long");
	buf_release(&meta);
	return rc;
}

static int put_checkpoint(struct export_out *o, const struct checkpoint *cp,
			  struct err *e)
{
	uint8_t cpb[CHECKPOINT_SIGNED_MAX];

	memcpy(cpb, cp->raw, cp->raw_len);
	memcpy(cpb + cp->raw_len, cp->sig, SIGN_BYTES);
	return out_frame(o, FRAME_CHECKPOINT, cpb, cp->raw_len + SIGN_BYTES,
			 e);
}

int exportlog_write(struct store *s, const char *path, struct err *e)
{
	struct srvlog *log = NULL;
	struct checkpoint cp;
	struct statedigest sd;
	struct export_out o;
	struct buf sb;
	int rc = -1, open = 0;

	buf_init(&o.b, EXPORT_CHUNK + LOGENTRY_MAX + 64);
	buf_init(&sb, STATEDIGEST_SIGNED_MAX);
	/* one read transaction: entries, checkpoint, digest and row
	 * hashes agree */
	if (replica_exec(s->r->db, "BEGIN", e) || srvlog_open(s, &log, e) ||
	    srvlog_checkpoint_get(log, -1, &cp, e))
		goto cleanup;
	memset(&sd, 0, sizeof sd);
	snprintf(sd.origin, sizeof sd.origin, "%s", s->origin);
	sd.log_size = srvlog_size(log);
	sd.time_ms = clock_wall_ms();
	if (digest_compute(s->r->db, sd.digest, e))
		goto cleanup;
	if (statedigest_sign(&sd, s->key->sk, &sb) != BS_OK) {
		err_set(e, ERR_INVALID, "cannot sign the state digest");
		goto cleanup;
	}
	if (fsutil_atomic_open(&o.file, path, 0600)) {
		err_set(e, ERR_INVALID, "cannot write %s: %s", path,
			strerror(errno));
		goto cleanup;
	}
	open = 1;
	if (put_meta(s, &o, e) || put_entries(s, &o, srvlog_size(log), e) ||
	    put_checkpoint(&o, &cp, e) ||
	    out_frame(&o, FRAME_DIGEST, sb.data, sb.len, e) ||
	    /* unsigned: they only say where a failed digest differs */
	    digest_put_rows(s->r->db, &o.b, out_flush_chunk, &o, e))
		goto cleanup;
	frame_stream_end(&o.b);
	if (out_flush(&o, 0, e))
		goto cleanup;
	open = 0;
	if (fsutil_atomic_commit(&o.file)) {
		err_set(e, ERR_INVALID, "cannot write %s: %s", path,
			strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (open)
		fsutil_atomic_abort(&o.file);
	if (!sqlite3_get_autocommit(s->r->db))
		sqlite3_exec(s->r->db, "COMMIT", NULL, NULL, NULL);
	srvlog_free(log);
	buf_release(&o.b);
	buf_release(&sb);
	return rc;
}
