/* replica.h - one device's SQLite file: the record tables, and beside them
 * the device's own bookkeeping (settings, outbox of signed change sets,
 * per-cell clocks, tombstones, conflicts, applied change sets). Opening runs
 * the ordered migrations so an older file upgrades in place. Not for the
 * merge rules (merge.h) nor for capturing writes (capture.h). */
#ifndef BS_REPLICA_H
#define BS_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"

/* Number of migrations; PRAGMA user_version of an up-to-date replica. */
#define REPLICA_VERSION 7

struct replica {
	sqlite3 *db;
	char *path;
};

enum replica_mode {
	REPLICA_OPEN,    /* the file must exist */
	REPLICA_CREATE,  /* the file must not exist */
	REPLICA_MEMORY,  /* private in-memory database, for tests */
};

/* Once per process, before any database is opened: SQLite's allocation
 * statistics take a global mutex on every malloc (4% of an initial pull's
 * time); nothing of ours reads them. */
void replica_global_init(void);

/* Opens (or creates) a replica and brings it to REPLICA_VERSION. Allocates
 * *out; free with replica_close. Fails with ERR_INVALID and a message. */
int replica_open(const char *path, enum replica_mode mode,
		 struct replica **out /* OUT */, struct err *e);
/* Like replica_open but stops at `version` migrations (tests of upgrades). */
int replica_open_at(const char *path, enum replica_mode mode, int version,
		    struct replica **out /* OUT */, struct err *e);
/* replica_open(path, REPLICA_CREATE, ...) for a device's replica, whose
 * pages are REPLICA_DEVICE_PAGE_SIZE bytes rather than SQLite's 4 KiB: an
 * initial pull or a big import writes a quarter of the pages (and WAL
 * frames), and B-trees are shallower; the cache is sized in bytes, so it
 * takes no more memory. */
#define REPLICA_DEVICE_PAGE_SIZE 16384
int replica_create_device(const char *path, struct replica **out /* OUT */,
			  struct err *e);
void replica_close(struct replica *r);

/* Applies the migrations from the file's version up to `version`. */
int replica_migrate(sqlite3 *db, int version, struct err *e);

/* BEGIN IMMEDIATE: writers queue here rather than failing mid-transaction. */
int replica_begin(struct replica *r, struct err *e);
int replica_commit(struct replica *r, struct err *e);
void replica_rollback(struct replica *r);

/* Settings are small named blobs. get: *val is a fresh allocation (mem_free)
 * or NULL when absent; returns 0 in both cases, -1 on a database error. */
int replica_setting_get(struct replica *r, const char *key,
			uint8_t **val /* OUT */, size_t *len /* OUT */,
			struct err *e);
/* Text convenience: a NUL-terminated copy or NULL when absent. */
char *replica_setting_text(struct replica *r, const char *key);
int replica_setting_int(struct replica *r, const char *key, int64_t *out,
			int64_t dflt, struct err *e);
int replica_setting_set(struct replica *r, const char *key, const void *val,
			size_t len, struct err *e);
int replica_setting_set_text(struct replica *r, const char *key,
			     const char *val, struct err *e);
int replica_setting_set_int(struct replica *r, const char *key, int64_t v,
			    struct err *e);

/* Runs one SQL statement (no results) and reports a failure in e. */
int replica_exec(sqlite3 *db, const char *sql, struct err *e);

#endif
