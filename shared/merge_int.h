/* merge_int.h - what merge.c (change sets from anywhere) and merge_local.c
 * (the clocks of this device's captured ones) share. Internal to those two
 * files: everyone else uses merge.h. */
#ifndef BS_MERGE_INT_H
#define BS_MERGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "csbody.h"
#include "implicit.h"
#include "merge.h"
#include "schema.h"

#define MERGE_CLOCK_BYTES 12
#define MERGE_MAX_TABLES 16
#define MERGE_MAX_COLS 16

/* Statements on one record table, prepared on first use. */
struct merge_table_stmts {
	sqlite3_stmt *select_row;  /* 1, the columns, rowid; by key */
	sqlite3_stmt *insert_row;
	sqlite3_stmt *delete_row;
	sqlite3_stmt *rowid_of;    /* rowid by key */
	sqlite3_stmt *new_rows;    /* rowid, id, branch_id of the ?1 highest */
	sqlite3_stmt *update_col[MERGE_MAX_COLS];
};

enum merge_stmt_kind {
	MERGE_SELECT_ROW,
	MERGE_INSERT_ROW,
	MERGE_UPDATE_COL,
	MERGE_DELETE_ROW,
	MERGE_ROWID_OF,
	MERGE_NEW_ROWS,
};

/* A row the captured body inserts: where its keys are in the body. */
struct merge_local_key {
	uint32_t tidx;
	uint32_t id_off, branch_off;
	uint8_t id_len, branch_len;
	uint8_t matched;          /* found among the table's highest rowids */
	uint8_t h[IMPLICIT_HASH_BYTES];
};

/* The clocks an UPDATE or DELETE of the captured body overwrites. */
struct merge_local_clocks {
	size_t tidx;
	int has_meta, deleted, pending;  /* pending: for the slow search */
	int64_t del_hlc, del_dev;
	uint32_t floor_cols;             /* the columns the write replaces */
	uint8_t h[IMPLICIT_HASH_BYTES];
	uint8_t clocks[MERGE_MAX_COLS * MERGE_CLOCK_BYTES];
};

/* What a capture keeps from merge_clock_floor to merge_record_local. */
struct merge_local {
	size_t body_len;
	struct merge_local_key *keys;
	size_t nkeys, capkeys;
	uint32_t *index;                  /* open addressing: key number + 1 */
	size_t index_size;
	struct merge_local_clocks *ops;
	size_t nops, capops;
};

struct merge {
	sqlite3 *db;
	sqlite3_stmt *get_applied, *put_applied;
	sqlite3_stmt *get_dev, *put_dev, *dev_key;
	sqlite3_stmt *get_meta, *put_meta;
	sqlite3_stmt *put_conflict, *any_tomb;
	struct merge_table_stmts tables[MERGE_MAX_TABLES];
	struct implicit *imp;
	/* per table, for the change set at hand: may it hold tombstones?
	 * -1 not asked yet */
	int tombs[MERGE_MAX_TABLES];
	/* the author of the change set being merged */
	uint8_t author[SIGN_PUBLIC_BYTES];
	int64_t author_idx;
	int drop_bytes;  /* the server keeps change sets in its log instead */
	struct merge_local local;
};

/* One row operation of a body, with its keys and its row's clocks. */
struct merge_op {
	const struct schema_table *t;
	size_t tidx;
	int op;                    /* CSBODY_INSERT, _UPDATE, _DELETE */
	const struct csbody_value *newv, *oldv;  /* ncolumns + 2 each */
	char id[SCHEMA_ID_MAX + 1], branch_id[SCHEMA_ID_MAX + 1];
	size_t id_len, branch_len;
	uint8_t hash[IMPLICIT_HASH_BYTES];  /* merge_op_hash */
	int has_meta;              /* bs_rows has an entry */
	uint8_t clocks[MERGE_MAX_COLS * MERGE_CLOCK_BYTES];
	int deleted;
	int64_t del_hlc, del_dev;
};

int merge_prep(struct merge *m, sqlite3_stmt **st, const char *sql,
	       struct err *e);
int merge_db_fail(struct merge *m, struct err *e);
size_t merge_table_index(const struct schema_table *t);
sqlite3_stmt *merge_stmt(struct merge *m, const struct schema_table *t,
			 enum merge_stmt_kind kind, size_t col, struct err *e);
void merge_bind_keys(sqlite3_stmt *st, const struct merge_op *op);

/* Fills op from cop: table, kind, values, keys (clocks cleared). 1 if both
 * keys are text of at most SCHEMA_ID_MAX bytes without a NUL. */
int merge_op_keys(const struct csbody_op *cop, struct merge_op *op);
void merge_op_hash(struct merge_op *op);

void merge_clock_get(const uint8_t *clocks, size_t col, uint64_t *hlc,
		     int64_t *dev);
void merge_clock_set(uint8_t *clocks, size_t col, uint64_t hlc, int64_t dev);
void merge_clocks_fill(struct merge_op *op, uint64_t hlc, int64_t dev);
int merge_author_index(struct merge *m, const uint8_t *key, struct err *e);

/* bs_rows: explicit clocks and tombstones of op's row. */
int merge_meta_load(struct merge *m, struct merge_op *op, struct err *e);
int merge_meta_store(struct merge *m, const struct merge_op *op,
		     struct err *e);
/* The implicit clocks of op's row, which is at rowid: by rowid, else by a
 * search of every range. *found 0 if neither knows the row. */
int merge_implicit_load(struct merge *m, struct merge_op *op, int64_t rowid,
			int *found /* OUT */, struct err *e);
int merge_table_has_tombstones(struct merge *m, const struct schema_table *t,
			       struct err *e);
int merge_mark_applied(struct merge *m, const struct changeset *cs,
		       int keep_bytes, struct err *e);

void merge_local_release(struct merge_local *l);

#endif
