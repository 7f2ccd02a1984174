/* commands.h - the commands of `branchsync`, and what only they share. */
#ifndef BS_COMMANDS_H
#define BS_COMMANDS_H

#include "cli.h"

/* The commands of this build, in the order --help lists them. */
extern const struct cli_command cmd_init;
extern const struct cli_command cmd_records_put;
extern const struct cli_command cmd_records_get;
extern const struct cli_command cmd_records_delete;
extern const struct cli_command cmd_query;
extern const struct cli_command cmd_import_csv;
extern const struct cli_command cmd_status;
extern const struct cli_command cmd_status_conflicts;
extern const struct cli_command cmd_enroll;
extern const struct cli_command cmd_sync;
extern const struct cli_command cmd_bundle;
extern const struct cli_command cmd_audit;

/* The replica path: `opt` (from --db) or else $BRANCHSYNC_DB. Fails with
 * ERR_USAGE when neither is set. */
int cli_db_path(const struct cli_command *cmd, const char *opt,
		const char **path /* OUT */, struct err *e);

#endif
