/* exportlog.h - `branchsyncd export-log`: everything an auditor needs to
 * check the district without the server, in one frame-stream file
 * (protocol/FORMAT.md, "Exported logs"): the server's key and origin, every
 * entry, the latest checkpoint, a signed digest of the records, and the
 * unsigned hash of each record row. */
#ifndef BS_EXPORTLOG_H
#define BS_EXPORTLOG_H

#include "store.h"

/* Writes the export atomically to path (needs the unlocked key). */
int exportlog_write(struct store *s, const char *path, struct err *e);

#endif
