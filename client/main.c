/* main.c - branchsync's entry point: finds the command named on the command
 * line and runs it, or prints the overview and the version. The commands
 * themselves live in cmd_*.c; conventions shared by them in cli.c. */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "commands.h"
#include "config.h"
#include "replica.h"
#include "sign.h"

static const struct cli_command *const commands[] = {
	&cmd_init,
	&cmd_records_put,
	&cmd_records_get,
	&cmd_records_delete,
	&cmd_query,
	&cmd_import_csv,
	&cmd_status,
	&cmd_status_conflicts,
	&cmd_enroll,
	&cmd_sync,
	&cmd_bundle,
	&cmd_audit,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void overview(FILE *f)
{
	size_t i;

	fputs("usage: branchsync COMMAND [OPTIONS] [ARGS]\n"
	      "       branchsync --help | --version\n\n"
	      "Keeps a branch's records in a local replica and signs every "
	      "change.\n\ncommands:\n", f);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-11s %s\n", commands[i]->name,
			commands[i]->summary);
	fputs("\nRun 'branchsync COMMAND --help' for a command's options.\n"
	      "The replica is --db FILE or $BRANCHSYNC_DB; the passphrase comes "
	      "from the\nterminal or $BRANCHSYNC_PASSPHRASE.\n"
	      "Exit codes: 0 ok, 1 usage, 2 invalid data or refused, "
	      "3 server unreachable,\n4 verification failed.\n", f);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : NULL;
	size_t i;

	if (!name) {
		overview(stderr);
		return 1;
	}
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		overview(stdout);
		return fflush(stdout) ? 2 : 0;
	}
	if (strcmp(name, "--version") == 0) {
		printf("branchsync %s\n", BRANCHSYNC_VERSION);
		return fflush(stdout) ? 2 : 0;
	}
	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(name, commands[i]->name) != 0)
			continue;
		if (cli_wants_help(argc - 1, argv + 1)) {
			fputs(commands[i]->usage, stdout);
			return fflush(stdout) ? 2 : 0;
		}
		if (sign_init() != BS_OK) {
			fputs("branchsync: cannot initialise libsodium\n",
			      stderr);
			return 2;
		}
		replica_global_init();
		return commands[i]->run(commands[i], argc - 1, argv + 1);
	}
	fprintf(stderr, "branchsync: unknown command '%.40s'; run 'branchsync "
		"--help' for the list\n", name);
	return 1;
}

int cli_db_path(const struct cli_command *cmd, const char *opt,
		const char **path, struct err *e)
{
	const char *env = getenv("BRANCHSYNC_DB");

	*path = NULL;
	if (opt && *opt)
		*path = opt;
	else if (!opt && env && *env)
		*path = env;
	if (*path)
		return 0;
	return cli_usage(cmd, e, "no replica given; use --db FILE or set "
			 "BRANCHSYNC_DB");
}
