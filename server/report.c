/* report.c - the district's figures (server/report.h); placeholder while
 * the real implementation is being written. */
#include <string.h>

#include "report.h"

int report_format_parse(const char *name, enum report_format *out)
{
	if (strcmp(name, "text") == 0)
		*out = REPORT_TEXT;
	else if (strcmp(name, "csv") == 0)
		*out = REPORT_CSV;
	else if (strcmp(name, "json") == 0)
		*out = REPORT_JSON;
	else
		return -1;
	return 0;
}

int report_write(sqlite3 *db, enum report_format fmt, uint64_t now_ms,
		 FILE *out, struct err *e)
{
	(void)db;
	(void)fmt;
	(void)now_ms;
	(void)out;
	err_set(e, ERR_INVALID, "report is not implemented yet");
	return -1;
}
