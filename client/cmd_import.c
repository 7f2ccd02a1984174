/* cmd_import.c - `branchsync import-csv`: a roster from Excel into one
 * record table, all or nothing. Every row is read and checked first (with
 * the replica locked), then the rows are written branch by branch, each
 * branch's rows cut into its own change set. Not a CSV parser (csv.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "commands.h"
#include "csv.h"
#include "fsutil.h"
#include "identity.h"
#include "mem.h"
#include "merge.h"
#include "records.h"
#include "replica.h"
#include "schema.h"

/* Rows of one branch are cut into a new change set once the values written
 * since the last cut pass this estimate. Well under the body limit on
 * purpose: every device that pulls a change set holds a few copies of it at
 * once, and old PCs are short of memory (docs/SYNC.md, "Known limits"). */
#define IMPORT_SET_BYTES (512u * 1024)
#define IMPORT_COL_NONE ((size_t)-1)

static const char import_usage[] =
	"usage: branchsync import-csv --db FILE TABLE CSVFILE\n"
	"                             [--encoding auto|utf-8|gb18030]\n\n"
	"Imports the rows of CSVFILE into TABLE, all or nothing. The header "
	"row names\nthe columns (known columns of TABLE, any letter case). A "
	"row without an id,\nor with an empty one, becomes a new record; a row "
	"whose id exists changes\nthat record's named columns (an empty cell "
	"clears a column); a row with an\nunknown id becomes a new record "
	"with that id. Without a branch_id the rows go\nto the enrolled branch "
	"or the replica's default branch. Each branch's rows\nbecome one "
	"signed change set (split if very large).\n\n"
	"  --db FILE           the replica (or $BRANCHSYNC_DB)\n"
	"  --encoding ENC      auto (default: UTF-8, else GB18030), utf-8 or "
	"gb18030\n";

struct import_row {
	unsigned long line;
	uint32_t mask;          /* SQL columns (>= 1) the row sets */
	int exists;             /* an update, not an insert */
	char *id;               /* owned */
	const char *branch;     /* vals[1].text of this row */
	size_t bytes;           /* estimated size in a changeset */
};

struct import {
	const struct schema_table *t;
	size_t width;                          /* t->ncolumns + 2 */
	size_t ncsv;
	size_t colmap[CSV_MAX_COLUMNS];        /* csv column -> SQL column */
	const struct schema_column *cols[RECORDS_MAX_COLUMNS];
	struct import_row *rows;
	struct schema_value *vals;             /* nrows * width */
	size_t nrows, cap;
	struct records *rs;
	struct merge *merge;
	struct identity *idn;
};

/* Puts "line N: " before the message already in e. */
static void import_at_line(struct err *e, unsigned long line)
{
	char msg[sizeof e->msg];

	/* The precision keeps the result within e->msg. */
	snprintf(msg, sizeof msg, "line %lu: %.480s", line, e->msg);
	memcpy(e->msg, msg, sizeof msg);
}

static void import_release(struct import *im)
{
	size_t i;

	for (i = 0; i < im->nrows; i++)
		mem_free(im->rows[i].id);
	for (i = 0; i < im->nrows * im->width; i++)
		schema_value_clear(&im->vals[i]);
	mem_free(im->rows);
	mem_free(im->vals);
	records_free(im->rs);
	merge_free(im->merge);
}

static const char *import_col_name(const struct schema_table *t, size_t i)
{
	return i == 0 ? "id" : i == 1 ? "branch_id" : t->columns[i - 2].name;
}

/* Maps the header names onto the table's columns. */
static int import_header(struct import *im, struct csv_reader *rd,
			 struct err *e)
{
	const char *const *names = csv_header(rd, &im->ncsv);
	char lower[256], msg[sizeof e->msg];
	size_t i, j, k;

	for (i = 0; i < im->width; i++)
		im->cols[i] = schema_column_find(im->t,
						 import_col_name(im->t, i));
	for (j = 0; j < im->ncsv; j++) {
		for (k = 0; names[j][k] && k + 1 < sizeof lower; k++)
			lower[k] = names[j][k] >= 'A' && names[j][k] <= 'Z'
				? (char)(names[j][k] - 'A' + 'a') : names[j][k];
		lower[k] = '\0';
		im->colmap[j] = IMPORT_COL_NONE;
		for (i = 0; i < im->width; i++)
			if (strcmp(lower, import_col_name(im->t, i)) == 0)
				im->colmap[j] = i;
		if (im->colmap[j] == IMPORT_COL_NONE) {
			schema_unknown_column_msg(im->t, names[j], msg,
						  sizeof msg);
			err_set(e, ERR_INVALID, "header row: %s", msg);
			return -1;
		}
	}
	return 0;
}

static int import_grow(struct import *im, struct err *e)
{
	size_t cap = im->cap ? im->cap * 2 : 256;
	struct import_row *rows;
	struct schema_value *vals;

	if (im->nrows < im->cap)
		return 0;
	rows = mem_realloc(im->rows, cap * sizeof *rows);
	if (!rows)
		goto nomem;
	im->rows = rows;
	vals = mem_realloc(im->vals, cap * im->width * sizeof *vals);
	if (!vals)
		goto nomem;
	im->vals = vals;
	memset(vals + im->cap * im->width, 0,
	       (cap - im->cap) * im->width * sizeof *vals);
	im->cap = cap;
	return 0;
nomem:
	err_set(e, ERR_INVALID, "out of memory reading the csv file");
	return -1;
}

/* Sets SQL column ci of the row from a cell, via the schema. */
static int import_cell(struct import *im, struct import_row *row,
		       struct schema_value *vals, size_t ci, const char *cell,
		       size_t len, struct err *e)
{
	char msg[sizeof e->msg];

	if (schema_parse_value_n(im->t, im->cols[ci], cell, len, &vals[ci],
				 msg, sizeof msg) != BS_OK) {
		err_set(e, ERR_INVALID, "line %lu: %s", row->line, msg);
		return -1;
	}
	row->mask |= UINT32_C(1) << ci;
	row->bytes += vals[ci].kind == SCHEMA_VALUE_TEXT
		? strlen(vals[ci].text) + 4 : 10;
	return 0;
}

/* Decides the row's id, branch and whether it exists, from the id and
 * branch_id cells (NULL when absent or empty). */
static int import_keys(struct import *im, struct import_row *row,
		       struct schema_value *vals, const char *id_cell,
		       const char *branch_cell, struct err *e)
{
	char fresh[RECORDS_ID_HEX + 1], *existing = NULL;
	const char *branch;
	int deleted, rc = -1;

	if (!id_cell && im->t->scope_is_id)
		id_cell = branch_cell;
	if (im->t->scope_is_id && branch_cell &&
	    strcmp(id_cell, branch_cell) != 0) {
		err_set(e, ERR_INVALID, "line %lu: the branch_id of a row of "
			"table '%s' must equal its id", row->line, im->t->name);
		return -1;
	}
	if (id_cell && !schema_id_valid(id_cell)) {
		err_set(e, ERR_INVALID, "line %lu: the id is not valid: ids are "
			"1 to %d characters from a-z, A-Z, 0-9, '_', '.', ':' "
			"and '-'", row->line, SCHEMA_ID_MAX);
		return -1;
	}
	if (!id_cell)
		records_new_id(fresh);
	row->id = mem_strdup(id_cell ? id_cell : fresh);
	if (!row->id) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	if (id_cell && records_find(im->rs, im->t, row->id, &existing, e))
		goto cleanup;
	row->exists = existing != NULL;
	if (existing && branch_cell && strcmp(existing, branch_cell) != 0) {
		err_set(e, ERR_INVALID, "line %lu: record %s belongs to branch "
			"%s and cannot move to another branch", row->line,
			row->id, existing);
		goto cleanup;
	}
	branch = existing ? existing
		: im->t->scope_is_id ? row->id
		: branch_cell ? branch_cell : identity_default_branch(im->idn);
	if (!branch) {
		err_set(e, ERR_INVALID, "line %lu: branch_id is required; add "
			"a branch_id column, or create the replica with 'init "
			"--branch ID' to set a default", row->line);
		goto cleanup;
	}
	if (import_cell(im, row, vals, 1, branch, strlen(branch), e))
		goto cleanup;
	row->branch = vals[1].text;
	if (identity_may_write(im->idn, row->branch, e)) {
		import_at_line(e, row->line);
		goto cleanup;
	}
	if (id_cell && !existing) {
		deleted = merge_is_deleted(im->merge, im->t->name, row->id,
					   row->branch, e);
		if (deleted < 0)
			goto cleanup;
		if (deleted) {
			err_set(e, ERR_INVALID, "line %lu: record %s in table "
				"'%s' was deleted; a deleted record cannot be "
				"written again", row->line, row->id,
				im->t->name);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	mem_free(existing);
	return rc;
}

/* Reads, checks and keeps one CSV record. */
static int import_record(struct import *im, const char *const *fields,
			 const size_t *lens, unsigned long line, struct err *e)
{
	struct import_row *row;
	struct schema_value *vals;
	const char *id_cell = NULL, *branch_cell = NULL;
	char msg[sizeof e->msg];
	size_t j, i;

	if (import_grow(im, e))
		return -1;
	row = &im->rows[im->nrows];
	vals = &im->vals[im->nrows * im->width];
	memset(row, 0, sizeof *row);
	row->line = line;
	im->nrows++; /* from here on import_release frees what row holds */
	for (j = 0; j < im->ncsv; j++) {
		if (im->colmap[j] == 0 && lens[j])
			id_cell = fields[j];
		if (im->colmap[j] == 1 && lens[j])
			branch_cell = fields[j];
	}
	if (import_keys(im, row, vals, id_cell, branch_cell, e))
		return -1;
	for (j = 0; j < im->ncsv; j++) {
		size_t ci = im->colmap[j];

		/* In a new record an empty cell means "not given". */
		if (ci < 2 || (!row->exists && lens[j] == 0))
			continue;
		if (import_cell(im, row, vals, ci, fields[j], lens[j], e))
			return -1;
	}
	for (i = 2; i < im->width && !row->exists; i++) {
		struct schema_value v;

		if (row->mask & (UINT32_C(1) << i))
			continue;
		if (schema_insert_default(im->t, im->cols[i], &v, msg,
					  sizeof msg) != BS_OK) {
			err_set(e, ERR_INVALID, "line %lu: %s", line, msg);
			return -1;
		}
		schema_value_clear(&v);
	}
	row->bytes += strlen(row->id) + 8;
	return 0;
}

/* qsort order: by branch, then by position in the file. */
static int import_cmp(const void *a, const void *b)
{
	const struct import_row *ra = *(const struct import_row *const *)a;
	const struct import_row *rb = *(const struct import_row *const *)b;
	int c = strcmp(ra->branch, rb->branch);

	if (c)
		return c;
	return ra->line < rb->line ? -1 : ra->line > rb->line;
}

/* Writes one row, moving its values into a records_row. */
static int import_write(struct import *im, struct import_row *row,
			struct err *e)
{
	struct schema_value *vals = &im->vals[(size_t)(row - im->rows) *
					      im->width];
	struct records_row rr;
	size_t i;
	int found = 1, rc;

	records_row_init(&rr, im->t);
	/* branch_id first, borrowed: row->branch points into it and the
	 * next row's cut decision still reads it. */
	rr.cols[rr.n] = im->cols[1];
	rr.vals[rr.n++] = vals[1];
	for (i = 2; i < im->width; i++) {
		if (!(row->mask & (UINT32_C(1) << i)))
			continue;
		rr.cols[rr.n] = im->cols[i];
		rr.vals[rr.n++] = vals[i];
		memset(&vals[i], 0, sizeof vals[i]);
	}
	rc = row->exists ? records_update(im->rs, row->id, row->branch, &rr,
					  &found, e)
			 : records_insert(im->rs, row->id, &rr, e);
	memset(&rr.vals[0], 0, sizeof rr.vals[0]);
	records_row_clear(&rr);
	if (rc == 0 && !found)
		err_set(e, ERR_INVALID, "record %s vanished during the import",
			row->id);
	if (rc || !found) {
		import_at_line(e, row->line);
		return -1;
	}
	return 0;
}

/* Writes every row, branch by branch, cutting a change set per branch and
 * whenever one grows past IMPORT_SET_BYTES. *sets counts the cuts made. */
static int import_write_all(struct import *im, struct capture *cap,
			    int *sets, struct err *e)
{
	struct import_row **order;
	size_t i, pending = 0;
	int count, rc = -1;

	*sets = 0;
	if (im->nrows == 0)
		return 0;
	order = mem_calloc(im->nrows, sizeof *order);
	if (!order) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	for (i = 0; i < im->nrows; i++)
		order[i] = &im->rows[i];
	qsort(order, im->nrows, sizeof *order, import_cmp);
	for (i = 0; i < im->nrows; i++) {
		struct import_row *row = order[i];

		if (i > 0 && (strcmp(row->branch, order[i - 1]->branch) != 0 ||
			      pending + row->bytes > IMPORT_SET_BYTES)) {
			if (capture_cut(cap, &count, e))
				goto cleanup;
			*sets += count;
			pending = 0;
		}
		if (import_write(im, row, e))
			goto cleanup;
		pending += row->bytes;
	}
	rc = 0;
cleanup:
	mem_free(order);
	return rc;
}

/* Reads and checks every record of the file into im. */
static int import_read(struct import *im, struct csv_reader *rd,
		       struct err *e)
{
	const char *const *fields;
	const size_t *lens;
	size_t nfields;
	unsigned long line;
	char msg[sizeof e->msg];

	for (;;) {
		if (csv_next_record(rd, &fields, &lens, &nfields, &line, msg,
				    sizeof msg) != BS_OK) {
			err_set(e, ERR_INVALID, "%s", msg);
			return -1;
		}
		if (nfields == 0)
			return 0;
		if (import_record(im, fields, lens, line, e))
			return -1;
	}
}

static int import_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *db = NULL, *enc_name = NULL;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ "--encoding", &enc_name, NULL },
		{ NULL, NULL, NULL },
	};
	enum csv_encoding enc = CSV_ENC_AUTO;
	struct csv_reader rd;
	struct import im;
	struct identity idn;
	struct replica *r = NULL;
	struct capture *cap = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int npos = 0, sets = 0, count = 0;
	struct err e;
	char msg[sizeof e.msg];

	err_init(&e);
	memset(&rd, 0, sizeof rd);
	memset(&im, 0, sizeof im);
	memset(&idn, 0, sizeof idn);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos != 2) {
		cli_usage(cmd, &e, "import-csv needs a TABLE and a CSV file");
		goto cleanup;
	}
	if (enc_name && csv_encoding_parse(enc_name, &enc) != BS_OK) {
		cli_usage(cmd, &e, "unknown encoding; use auto, utf-8 or "
			  "gb18030");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, &e))
		goto cleanup;
	im.t = schema_table_find(argv[0]);
	if (!im.t) {
		schema_unknown_table_msg(argv[0], msg, sizeof msg);
		err_set(&e, ERR_INVALID, "%s", msg);
		goto cleanup;
	}
	im.width = im.t->ncolumns + 2;
	if (im.width > RECORDS_MAX_COLUMNS) {
		err_set(&e, ERR_INVALID, "table '%s' has too many columns",
			im.t->name);
		goto cleanup;
	}
	if (fsutil_read_all(argv[1], CSV_DEFAULT_MAX_INPUT, &data, &len)) {
		err_set(&e, ERR_INVALID, "cannot read %s: %s", argv[1],
			strerror(errno));
		goto cleanup;
	}
	if (csv_reader_open(&rd, data, len, enc, CSV_DEFAULT_MAX_INPUT, msg,
			    sizeof msg) != BS_OK) {
		err_set(&e, ERR_INVALID, "%s", msg);
		goto cleanup;
	}
	if (import_header(&im, &rd, &e))
		goto cleanup;
	if (replica_open(db, REPLICA_OPEN, &r, &e) ||
	    identity_load(r, &idn, &e) || identity_unlock(&idn, &e) ||
	    records_new(r->db, &im.rs, &e) || merge_new(r->db, &im.merge, &e))
		goto cleanup;
	im.idn = &idn;
	/* Locked from the first lookup to the commit: what the checks saw is
	 * what the writes change. */
	if (capture_begin(r, &idn.signer, &cap, &e))
		goto cleanup;
	records_set_capture(im.rs, cap);
	if (import_read(&im, &rd, &e) ||
	    import_write_all(&im, cap, &sets, &e) ||
	    capture_commit(cap, &count, &e))
		goto cleanup;
	sets += count;
	fprintf(stderr, "imported %zu rows into %s (%d change set%s)\n",
		im.nrows, im.t->name, sets, sets == 1 ? "" : "s");
cleanup:
	capture_free(cap);
	import_release(&im);
	identity_release(&idn);
	replica_close(r);
	csv_reader_release(&rd);
	mem_free(data);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

const struct cli_command cmd_import_csv = {
	.name = "import-csv",
	.summary = "import the rows of a csv file into a table",
	.usage = import_usage,
	.run = import_run,
};
