/* exportlog.c - the auditor's export of the whole log (see exportlog.h). */
#include "exportlog.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "digest.h"
#include "frame.h"
#include "fsutil.h"
#include "srvlog.h"
#include "statedigest.h"
#include "wire.h"

/* The export is built in memory up to this size (about three million
 * typical change sets); beyond it the command fails rather than swap. */
#define EXPORT_MAX ((size_t)2 << 30)

static int put_entries(struct store *s, struct buf *b, uint64_t size,
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
		frame_put(b, FRAME_ENTRY, f.data, f.len);
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

int exportlog_write(struct store *s, const char *path, struct err *e)
{
	struct srvlog *log = NULL;
	struct checkpoint cp;
	struct statedigest sd;
	struct buf b, meta, sb;
	int rc = -1;

	buf_init(&b, EXPORT_MAX);
	buf_init(&meta, 512);
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
	buf_append(&meta, s->pk, SIGN_PUBLIC_BYTES);
	wire_put_blob(&meta, s->origin, strlen(s->origin));
	frame_stream_begin(&b);
	frame_put(&b, FRAME_META, meta.data, meta.len);
	if (put_entries(s, &b, srvlog_size(log), e))
		goto cleanup;
	{
		uint8_t cpb[CHECKPOINT_SIGNED_MAX];
		memcpy(cpb, cp.raw, cp.raw_len);
		memcpy(cpb + cp.raw_len, cp.sig, SIGN_BYTES);
		frame_put(&b, FRAME_CHECKPOINT, cpb, cp.raw_len + SIGN_BYTES);
	}
	frame_put(&b, FRAME_DIGEST, sb.data, sb.len);
	/* unsigned: they only say where a failed digest differs */
	if (digest_put_rows(s->r->db, &b, e))
		goto cleanup;
	frame_stream_end(&b);
	if (b.status) {
		err_set(e, ERR_INVALID, "the log is too large to export at once");
		goto cleanup;
	}
	if (fsutil_write_atomic(path, b.data, b.len, 0600)) {
		err_set(e, ERR_INVALID, "cannot write %s", path);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (!sqlite3_get_autocommit(s->r->db))
		sqlite3_exec(s->r->db, "COMMIT", NULL, NULL, NULL);
	srvlog_free(log);
	buf_release(&b);
	buf_release(&meta);
	buf_release(&sb);
	return rc;
}
