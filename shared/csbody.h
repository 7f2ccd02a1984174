/* csbody.h - a strict walk over an untrusted SQLite session changeset body
 * before SQLite's own iterator ever sees it. The format is SQLite's (the
 * header comment of ext/session/sqlite3session.c); this checks every length
 * against the bytes that remain, the table headers against our schema,
 * every record's field count and types, and limits on rows and values.
 * SQLite's iterator was found (by fuzz/fuzz_push.c) to hang on some corrupt
 * bodies, so nothing untrusted reaches it without passing here first. */
#ifndef BS_CSBODY_H
#define BS_CSBODY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CSBODY_MAX_ROWS 200000
#define CSBODY_MAX_VALUE 65536

/* 0 if body is a well-formed changeset of our schema's tables; -1 with
 * ERR_INVALID and a message naming the byte offset otherwise. */
int csbody_check(const uint8_t *body, size_t len, struct err *e);

#endif
