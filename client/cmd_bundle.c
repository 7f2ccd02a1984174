/* cmd_bundle.c - `branchsync bundle export` and `branchsync bundle import`:
 * the commands around bundle.c (docs/BUNDLE.md): options, the messages and
 * the --json summaries, exit codes. Not for the file format nor for the
 * checks, which live in bundle.c. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "bundle.h"
#include "commands.h"
#include "identity.h"
#include "replica.h"

static const char bundle_usage[] =
    "usage: branchsync bundle export --db FILE --out FILE [--for BRANCH] "
    "[--json]\n"
    "       branchsync bundle import --db FILE [--json] FILE\n\n"
    "Carries change sets on a USB stick where there is no link at all.\n\n"
    "export writes what this device's next sync would send (its pending "
    "change\nsets, and on a district device the ones it relays for "
    "others), with the\nauthors' signed enrollments. With --for BRANCH, a "
    "district device writes\ninstead everything it holds of that branch "
    "and of the district, for a device\nof that branch.\n\n"
    "import checks everything in the bundle first: the server it was made "
    "for,\nevery enrollment and signature, every author's right to write, "
    "every\ndevice's chain. Only then does it merge the change sets, all "
    "in one\ntransaction; importing a bundle twice changes nothing. A "
    "district device\npushes other devices' change sets from a device's "
    "bundle at its next sync,\nwith their own signatures. No passphrase "
    "is needed.\n\n"
    "  --db FILE      the replica (or $BRANCHSYNC_DB)\n"
    "  --out FILE     where export writes the bundle (replaced atomically)\n"
    "  --for BRANCH   export what the branch should receive (district "
    "devices)\n"
    "  --json         print a summary object on stdout (keys in "
    "docs/BUNDLE.md)\n\n"
    "Exit codes: 0 done, 1 usage, 2 not enrolled or not allowed, or a "
    "local\nfailure, 4 the bundle does not verify (nothing was "
    "imported).\n";

static const char *bundle_kind_name(uint8_t kind)
{
	return kind == BUNDLE_KIND_BRANCH ? "branch" : "device";
}

static void cmd_bundle_export_report(const struct bundle_export_summary *s,
				     const char *out, int json)
{
	if (json) {
		printf("{\"kind\":\"%s\",\"changesets\":%llu,"
		       "\"enrollments\":%llu,\"missing_enrollments\":%llu,"
		       "\"bytes\":%llu}\n",
		       bundle_kind_name(s->kind),
		       (unsigned long long)s->changesets,
		       (unsigned long long)s->enrollments,
		       (unsigned long long)s->missing,
		       (unsigned long long)s->bytes);
		return;
	}
	if (s->missing)
		cli_warn(
		    "the signed enrollment of %llu author%s is not kept in "
		    "this replica (enrolled before branchsync kept "
		    "them); a device that never synced cannot import "
		    "their change sets",
		    (unsigned long long)s->missing, s->missing == 1 ? "" : "s");
	if (s->changesets == 0)
		fprintf(stderr,
			"branchsync: nothing to export: wrote a bundle "
			"with no change sets to %s\n",
			out);
	else
		fprintf(stderr,
			"branchsync: wrote %llu change set%s and %llu "
			"enrollment%s to %s (%llu bytes)\n",
			(unsigned long long)s->changesets,
			s->changesets == 1 ? "" : "s",
			(unsigned long long)s->enrollments,
			s->enrollments == 1 ? "" : "s", out,
			(unsigned long long)s->bytes);
}

static void cmd_bundle_import_report(const struct bundle_import_summary *s,
				     int json)
{
	char hex[2 * SIGN_PUBLIC_BYTES + 1];

	sodium_bin2hex(hex, sizeof hex, s->meta.exporter, SIGN_PUBLIC_BYTES);
	if (json) {
		printf("{\"kind\":\"%s\",\"exporter\":\"%s\",\"scope\":",
		       bundle_kind_name(s->meta.kind), hex);
		cli_json_string(stdout, s->meta.scope, strlen(s->meta.scope));
		printf(",\"changesets\":%llu,\"applied\":%llu,"
		       "\"duplicates\":%llu,\"relayed\":%llu,"
		       "\"conflicts\":%llu}\n",
		       (unsigned long long)s->changesets,
		       (unsigned long long)s->applied,
		       (unsigned long long)s->duplicates,
		       (unsigned long long)s->relayed,
		       (unsigned long long)s->conflicts);
		return;
	}
	fprintf(stderr,
		"branchsync: %llu new change set%s from the bundle of "
		"device %.16s (%llu already here)",
		(unsigned long long)s->applied, s->applied == 1 ? "" : "s", hex,
		(unsigned long long)s->duplicates);
	if (s->relayed)
		fprintf(stderr,
			"; %llu will be relayed to the server at the "
			"next sync",
			(unsigned long long)s->relayed);
	if (s->conflicts)
		fprintf(stderr,
			"; %llu conflict%s recorded (branchsync "
			"conflicts)",
			(unsigned long long)s->conflicts,
			s->conflicts == 1 ? "" : "s");
	fputc('\n', stderr);
}

static int cmd_bundle_export(const struct cli_command *cmd, int argc,
			     char **argv, struct err *e)
{
	const char *db_opt = NULL, *db = NULL, *out = NULL, *for_branch = NULL;
	int json = 0, npos = 0, rc = -1;
	const struct cli_opt opts[] = {
	    {"--db", &db_opt, NULL},	  {"--out", &out, NULL},
	    {"--for", &for_branch, NULL}, {"--json", NULL, &json},
	    {NULL, NULL, NULL},
	};
	struct bundle_export_summary sum;
	struct identity idn;
	struct replica *r = NULL;

	memset(&idn, 0, sizeof idn);
	if (cli_parse(cmd, argc, argv, opts, &npos, e))
		goto cleanup;
	if (npos > 0 || !out || !*out) {
		cli_usage(cmd, e,
			  "bundle export takes --out FILE and no "
			  "arguments");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, e) ||
	    replica_open(db, REPLICA_OPEN, &r, e) ||
	    identity_load(r, &idn, e) ||
	    bundle_export(r, &idn, for_branch, out, &sum, e))
		goto cleanup;
	cmd_bundle_export_report(&sum, out, json);
	rc = 0;
cleanup:
	identity_release(&idn);
	replica_close(r);
	return rc;
}

static int cmd_bundle_import(const struct cli_command *cmd, int argc,
			     char **argv, struct err *e)
{
	const char *db_opt = NULL, *db = NULL;
	int json = 0, npos = 0, rc = -1;
	const struct cli_opt opts[] = {
	    {"--db", &db_opt, NULL},
	    {"--json", NULL, &json},
	    {NULL, NULL, NULL},
	};
	struct bundle_import_summary sum;
	struct identity idn;
	struct replica *r = NULL;

	memset(&idn, 0, sizeof idn);
	if (cli_parse(cmd, argc, argv, opts, &npos, e))
		goto cleanup;
	if (npos != 1 || !*argv[0]) {
		cli_usage(cmd, e, "bundle import takes one bundle FILE");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, e) ||
	    replica_open(db, REPLICA_OPEN, &r, e) ||
	    identity_load(r, &idn, e) ||
	    bundle_import(r, &idn, argv[0], &sum, e))
		goto cleanup;
	cmd_bundle_import_report(&sum, json);
	rc = 0;
cleanup:
	identity_release(&idn);
	replica_close(r);
	return rc;
}

static int cmd_bundle_run(const struct cli_command *cmd, int argc, char **argv)
{
	struct err e;

	err_init(&e);
	if (argc < 2)
		cli_usage(cmd, &e, "say 'bundle export' or 'bundle import'");
	else if (strcmp(argv[1], "export") == 0)
		cmd_bundle_export(cmd, argc - 1, argv + 1, &e);
	else if (strcmp(argv[1], "import") == 0)
		cmd_bundle_import(cmd, argc - 1, argv + 1, &e);
	else
		cli_usage(cmd, &e,
			  "unknown bundle command '%.40s'; say "
			  "'bundle export' or 'bundle import'",
			  argv[1]);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

const struct cli_command cmd_bundle = {
    .name = "bundle",
    .summary = "carry change sets on a USB stick (export, import)",
    .usage = bundle_usage,
    .run = cmd_bundle_run,
};
