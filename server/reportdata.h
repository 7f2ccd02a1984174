/* reportdata.h - the district's figures as report.c writes them: per
 * branch, per township and for the whole district, each figure a list of
 * (key, value), plus the pairings of each branch and the device registry
 * with the evidence the log holds. Read in one transaction; only the
 * writers of server/report.c use it. The figures: docs/REPORT.md. */
#ifndef BS_REPORTDATA_H
#define BS_REPORTDATA_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"

#define REPORTDATA_METRICS 15

enum {
	REPORTDATA_TOTAL = 1, /* the keys are followed by "total", their sum */
	REPORTDATA_MONEY = 2, /* values are cents, written "1234.50" */
	REPORTDATA_TOP = 4,   /* largest first, the rest summed together */
	REPORTDATA_QUIET = 8, /* text omits it while the district's is zero */
};

/* A figure as the outputs name it: JSON section.name, CSV section and
 * metric columns. `keys` are always present in this order (zero when no
 * record has them); NULL keys make a list of whatever keys occur. */
struct reportdata_metric {
	const char *section;
	const char *name;
	const char *title;         /* heading of its text table */
	const char *const *keys;
	const char *key_label;     /* text header of a list's key column */
	unsigned flags;
};

/* The figures in output order; consecutive ones share a section. */
extern const struct reportdata_metric reportdata_metrics[REPORTDATA_METRICS];

struct reportdata_item {
	char *key;
	int64_t n;
};

struct reportdata_vals {
	struct reportdata_item *v;
	size_t n, cap;
};

struct reportdata_partner {
	char *id, *name, *model;
};

/* A branch, or the totals of a township or of the district. Text is valid
 * UTF-8: invalid bytes of the records are replaced by U+FFFD. */
struct reportdata_unit {
	char *id;
	char *name;
	char *twp;                 /* its township's id, or "(none)" */
	int known;                 /* has a branches row */
	struct reportdata_vals m[REPORTDATA_METRICS];
	struct reportdata_partner *partners; /* branches only */
	size_t npartners, cap;
};

struct reportdata_town {
	struct reportdata_unit u;  /* u.id: the township's id, or "(none)" */
	size_t first, count;       /* its branches in reportdata.units */
};

struct reportdata_device {
	char hex[2 * 32 + 1];      /* the device's public key */
	char *name, *scope;
	int role;                  /* enum enrollment_role */
	int revoked;
	int64_t last_seen_ms, last_seq;
	int64_t pending;           /* refused change sets it authored */
	char *reason;              /* the latest one's; NULL if none */
};

struct reportdata {
	char *district;            /* the district's name, or NULL */
	struct reportdata_unit *units; /* ordered by township, then id */
	size_t nunits, cap;
	struct reportdata_unit **by_id; /* the same, ordered by id */
	struct reportdata_town *towns; /* ordered by id, "(none)" last */
	size_t ntowns;
	struct reportdata_unit all;    /* the district's totals */
	struct reportdata_device *devices;
	size_t ndevices, dcap;
};

/* Reads every figure of the server database db into *r, which the caller
 * zeroes first and frees with reportdata_clear (also after a failure).
 * Runs inside one read transaction (the caller's, if one is open). Fails
 * with ERR_INVALID: out of memory, a database error, a sum too large. */
int reportdata_load(sqlite3 *db, struct reportdata *r, struct err *e);
void reportdata_clear(struct reportdata *r);

/* The value of key in vs, 0 when absent. */
int64_t reportdata_get(const struct reportdata_vals *vs, const char *key);

#endif
