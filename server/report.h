/* report.h - the district's figures from the consolidated records, for
 * people (text) and machines (CSV, JSON): per township and branch, members
 * by status and where the away members are, needs by category and status,
 * activities per month, trainings, positions, help cases, pairings, and per
 * device its last sync and any evidence the log holds against it. Reads
 * only; computed in one read transaction so the figures agree. */
#ifndef BS_REPORT_H
#define BS_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "err.h"

enum report_format {
	REPORT_TEXT,
	REPORT_CSV,
	REPORT_JSON,
};

/* 0 and *out for "text", "csv" or "json"; -1 otherwise. */
int report_format_parse(const char *name, enum report_format *out);

/* Writes the report of the server database `db` to out. */
int report_write(sqlite3 *db, enum report_format fmt, uint64_t now_ms,
		 FILE *out, struct err *e);

#endif
