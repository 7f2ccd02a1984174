/* cmd_sync.c - `branchsync sync`: the command around the sync engine
 * (sync.c): options, the passphrase, progress only on a terminal, the
 * --json summary and the exit codes of docs/SYNC.md. Not for the protocol
 * itself. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "commands.h"
#include "identity.h"
#include "replica.h"
#include "sync.h"

static const char sync_usage[] =
	"usage: branchsync sync --db FILE [--json]\n\n"
	"Sends this device's pending change sets to the district server and "
	"brings in\neverything new it may see, checking every signature, "
	"proof and checkpoint on\nthe way. A sync cut off at any point "
	"resumes at the next one; nothing is lost\nor applied twice. The "
	"requests are signed, so the passphrase is needed.\n\n"
	"  --db FILE   the replica (or $BRANCHSYNC_DB)\n"
	"  --json      print a summary object on stdout (keys in "
	"docs/SYNC.md)\n\n"
	"Exit codes: 0 done, 1 usage, 2 refused by the server (or not "
	"enrolled),\n3 server unreachable (the changes wait in the outbox), "
	"4 verification failed.\n";

static int64_t cmd_sync_pending(struct replica *r)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM bs_outbox"
			       " WHERE acked=0", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void cmd_sync_json(const struct sync_summary *s)
{
	char root[2 * HASH_BYTES + 1];
	size_t i;

	for (i = 0; i < HASH_BYTES; i++)
		snprintf(root + 2 * i, 3, "%02x", s->checkpoint_root[i]);
	printf("{\"pushed\":%llu,\"accepted\":%llu,\"duplicates\":%llu,"
	       "\"refused\":%llu,\"pulled\":%llu,\"applied\":%llu,"
	       "\"conflicts\":%llu,\"bytes_sent\":%llu,"
	       "\"bytes_received\":%llu,\"requests\":%llu,"
	       "\"checkpoint\":{\"size\":%llu,"
	       "\"root\":\"%s\"},\"cursor\":%llu}\n",
	       (unsigned long long)s->pushed, (unsigned long long)s->accepted,
	       (unsigned long long)s->duplicates,
	       (unsigned long long)s->refused, (unsigned long long)s->pulled,
	       (unsigned long long)s->applied,
	       (unsigned long long)s->conflicts,
	       (unsigned long long)s->bytes_sent,
	       (unsigned long long)s->bytes_received,
	       (unsigned long long)s->requests,
	       (unsigned long long)s->checkpoint_size, root,
	       (unsigned long long)s->cursor);
}

/* The unreachable message names what waits, counted after the failure. */
static void cmd_sync_unreachable(struct replica *r, struct err *e)
{
	struct err u;
	int64_t n = cmd_sync_pending(r);
	char cause[sizeof e->msg];

	snprintf(cause, sizeof cause, "%s", e->msg);
	err_init(&u);
	if (n < 0)
		err_set(&u, ERR_UNREACHABLE, "server unreachable: the pending "
			"change sets wait in the outbox; nothing is lost (%s)",
			cause);
	else
		err_set(&u, ERR_UNREACHABLE, "server unreachable: %lld change "
			"set%s wait%s in the outbox; nothing is lost (%s)",
			(long long)n, n == 1 ? "" : "s", n == 1 ? "s" : "",
			cause);
	*e = u;
}

static int cmd_sync_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *db = NULL;
	int json = 0, npos = 0;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ "--json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct sync_options o;
	struct sync_summary sum;
	struct identity idn;
	struct replica *r = NULL;
	struct err e;
	int done = 0;

	err_init(&e);
	memset(&idn, 0, sizeof idn);
	memset(&o, 0, sizeof o);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos > 0) {
		cli_usage(cmd, &e, "sync takes no arguments");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, &e) ||
	    replica_open(db, REPLICA_OPEN, &r, &e) ||
	    identity_load(r, &idn, &e))
		goto cleanup;
	if (!idn.role || !idn.server_url) {
		err_set(&e, ERR_INVALID, "this device is not enrolled; run "
			"'branchsync enroll' with a token from the district "
			"office first");
		goto cleanup;
	}
	o.progress = isatty(STDERR_FILENO);
	if (identity_unlock(&idn, &e) || sync_run(r, &idn, &o, &sum, &e))
		goto cleanup;
	done = 1;
	if (sum.refused > 0)
		err_set(&e, ERR_INVALID, "the server refused %llu change set%s "
			"(%s); they stay in the outbox marked refused",
			(unsigned long long)sum.refused,
			sum.refused == 1 ? "" : "s", sum.refusal);
	/* a sync that ran to its end reports, refusals or not */
	if (json)
		cmd_sync_json(&sum);
cleanup:
	if (e.kind == ERR_UNREACHABLE && r)
		cmd_sync_unreachable(r, &e);
	identity_release(&idn);
	replica_close(r);
	if (e.kind != ERR_OK) {
		if (done)
			fflush(stdout);
		return cli_fail(&e);
	}
	return cli_finish(&e);
}

const struct cli_command cmd_sync = {
	.name = "sync",
	.summary = "send pending changes to the server and bring in new ones",
	.usage = sync_usage,
	.run = cmd_sync_run,
};
