/* digest.c - canonical digest of the record tables (protocol/FORMAT.md,
 * "Canonical digest"), and the per-row hashes that localise a difference
 * ("Row hashes"), both as the server writes them and as an auditor reads
 * them. */
#include "digest.h"

#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "frame.h"
#include "schema.h"
#include "wire.h"

static const uint8_t digest_magic[4] = {'B', 'S', 'D', 'G'};

/* SELECT id, branch_id, <columns> FROM t ORDER BY id, branch_id */
static int select_all(sqlite3 *db, const struct schema_table *t,
		      sqlite3_stmt **st, struct err *e)
{
	struct buf b;
	size_t i;
	int rc;

	buf_init(&b, 8192);
	buf_append(&b, "SELECT id, branch_id", 20);
	for (i = 0; i < t->ncolumns; i++) {
		buf_append(&b, ", \"", 3);
		buf_append(&b, t->columns[i].name, strlen(t->columns[i].name));
		buf_append_u8(&b, '"');
	}
	buf_append(&b, " FROM \"", 7);
	buf_append(&b, t->name, strlen(t->name));
	buf_append(&b, "\" ORDER BY id COLLATE BINARY, branch_id COLLATE BINARY",
		   54);
	buf_append_u8(&b, 0);
	rc = b.status ? SQLITE_NOMEM
		: sqlite3_prepare_v2(db, (const char *)b.data, -1, st, NULL);
	buf_release(&b);
	if (rc != SQLITE_OK) {
		err_set(e, ERR_INVALID, "cannot read table %s: %s", t->name,
			sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Appends the canonical encoding of the current row of st. */
static int encode_row(sqlite3_stmt *st, int ncol, struct buf *b,
		      struct err *e)
{
	int i;

	for (i = 0; i < ncol; i++) {
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			buf_append_u8(b, 0);
			break;
		case SQLITE_INTEGER:
			buf_append_u8(b, 1);
			wire_put_u64be(b, (uint64_t)sqlite3_column_int64(st, i));
			break;
		case SQLITE_TEXT:
			buf_append_u8(b, 2);
			wire_put_blob(b, sqlite3_column_text(st, i),
				      (size_t)sqlite3_column_bytes(st, i));
			break;
		default:
			err_set(e, ERR_INVALID, "record tables hold a value of "
				"a type the schema does not allow");
			return -1;
		}
	}
	if (b->status) {
		err_set(e, ERR_INVALID, "out of memory computing the digest");
		return -1;
	}
	return 0;
}

int digest_compute(sqlite3 *db, uint8_t out[HASH_BYTES], struct err *e)
{
	crypto_hash_sha256_state h;
	struct buf b;
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc = -1, step;

	buf_init(&b, 1 << 20);
	crypto_hash_sha256_init(&h);
	buf_append(&b, digest_magic, 4);
	buf_append_u8(&b, 1);
	wire_put_varint(&b, SCHEMA_VERSION);
	for (i = 0; i < schema_table_count(); i++) {
		const struct schema_table *t = schema_table_at(i);

		wire_put_blob(&b, t->name, strlen(t->name));
		if (select_all(db, t, &st, e))
			goto cleanup;
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			buf_append_u8(&b, 1); /* a row follows */
			if (encode_row(st, (int)t->ncolumns + 2, &b, e))
				goto cleanup;
			if (b.len > (1 << 19)) {
				crypto_hash_sha256_update(&h, b.data, b.len);
				buf_reset(&b);
			}
		}
		if (step != SQLITE_DONE) {
			err_set(e, ERR_INVALID, "cannot read table %s: %s",
				t->name, sqlite3_errmsg(db));
			goto cleanup;
		}
		sqlite3_finalize(st);
		st = NULL;
		buf_append_u8(&b, 0); /* end of table */
	}
	if (b.status) {
		err_set(e, ERR_INVALID, "out of memory computing the digest");
		goto cleanup;
	}
	crypto_hash_sha256_update(&h, b.data, b.len);
	crypto_hash_sha256_final(&h, out);
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	buf_release(&b);
	return rc;
}

int digest_row_hashes(sqlite3 *db, const char *table,
		      int (*each)(void *ctx, const char *id,
				  const char *branch_id,
				  const uint8_t hash[HASH_BYTES]),
		      void *ctx, struct err *e)
{
	const struct schema_table *t = schema_table_find(table);
	sqlite3_stmt *st = NULL;
	struct buf b;
	uint8_t hash[HASH_BYTES];
	int rc = -1, step;

	if (!t) {
		err_set(e, ERR_INVALID, "unknown table '%s'", table);
		return -1;
	}
	buf_init(&b, 1 << 20);
	if (select_all(db, t, &st, e))
		goto cleanup;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *branch = (const char *)sqlite3_column_text(st, 1);

		buf_reset(&b);
		if (encode_row(st, (int)t->ncolumns + 2, &b, e))
			goto cleanup;
		hash_sha256(hash, b.data, b.len, NULL, 0);
		/* a NULL id (only a hand-edited database has one) is
		 * named as empty; its hash still tells it apart */
		if (each(ctx, id ? id : "", branch ? branch : "", hash))
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		err_set(e, ERR_INVALID, "cannot read table %s: %s", t->name,
			sqlite3_errmsg(db));
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	buf_release(&b);
	return rc;
}

void digest_rowhash_encode(struct buf *b, const char *table, const char *id,
			   const char *branch_id,
			   const uint8_t hash[HASH_BYTES])
{
	wire_put_blob(b, table, strlen(table));
	wire_put_blob(b, id, strlen(id));
	wire_put_blob(b, branch_id, strlen(branch_id));
	buf_append(b, hash, HASH_BYTES);
}

/* digest_row_hashes' callback for digest_put_rows: one ROWHASH frame. */
struct digest_rows_ctx {
	struct buf *out;
	struct buf frame;
	const char *table;
	int (*flush)(void *ctx, struct err *e);
	void *flush_ctx;
	struct err *e;
	int flush_failed;
};

static int digest_rows_put_one(void *ctx, const char *id,
			       const char *branch_id,
			       const uint8_t hash[HASH_BYTES])
{
	struct digest_rows_ctx *c = ctx;

	buf_reset(&c->frame);
	digest_rowhash_encode(&c->frame, c->table, id, branch_id, hash);
	if (c->frame.status)
		return 1;
	frame_put(c->out, FRAME_ROWHASH, c->frame.data, c->frame.len);
	if (c->out->status != BS_OK)
		return 1;
	if (c->flush && c->flush(c->flush_ctx, c->e)) {
		c->flush_failed = 1;
		return 1;
	}
	return 0;
}

int digest_put_rows(sqlite3 *db, struct buf *b,
		    int (*flush)(void *ctx, struct err *e), void *ctx,
		    struct err *e)
{
	struct digest_rows_ctx c;
	size_t i;
	int rc = -1;

	c.out = b;
	c.table = NULL;
	c.flush = flush;
	c.flush_ctx = ctx;
	c.e = e;
	c.flush_failed = 0;
	/* ids longer than a reader takes (only a hand-edited database
	 * has them) are still sent: the reader reports the frame */
	buf_init(&c.frame, 1 << 20);
	for (i = 0; i < schema_table_count(); i++) {
		c.table = schema_table_at(i)->name;
		if (digest_row_hashes(db, c.table, digest_rows_put_one, &c, e) ||
		    c.flush_failed)
			goto cleanup;
		if (c.frame.status || b->status) {
			err_set(e, ERR_INVALID, "the row hashes of table %s "
				"are too large to send", c.table);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	buf_release(&c.frame);
	return rc;
}

enum bs_status digest_rowhash_decode(const uint8_t *p, size_t len,
				     struct digest_rowhash *out)
{
	struct wire_reader r;
	enum bs_status st;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((st = wire_get_blob(&r, DIGEST_TABLE_MAX, &out->table,
				&out->table_len)) ||
	    (st = wire_get_blob(&r, DIGEST_ROW_ID_MAX, &out->id,
				&out->id_len)) ||
	    (st = wire_get_blob(&r, DIGEST_ROW_ID_MAX, &out->branch_id,
				&out->branch_len)) ||
	    (st = wire_get_bytes(&r, HASH_BYTES, &out->hash)))
		return st;
	return wire_expect_end(&r);
}
