/* cmd_init.c - `branchsync init`: creates a replica and this device's key
 * pair, sealed under a passphrase unless the operator asks for an
 * unattended key. Not for enrollment, which binds the key to a role later. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "commands.h"
#include "keystore.h"
#include "mem.h"
#include "passphrase.h"
#include "replica.h"
#include "schema.h"
#include "utf8.h"

#define INIT_NAME_MAX 200 /* bytes of a device label */

static const char init_usage[] =
	"usage: branchsync init --db FILE [--name LABEL] [--branch ID]\n"
	"                       [--no-passphrase]\n\n"
	"Creates a new replica at FILE and a key pair for this device, and "
	"prints the\ndevice id (the public key in hex) on stdout.\n\n"
	"  --db FILE         the replica to create (or $BRANCHSYNC_DB); it must "
	"not exist\n"
	"  --name LABEL      a label for this device, shown by status\n"
	"  --branch ID       the branch new records go to when put or "
	"import-csv\n"
	"                    do not say (enrollment for a branch overrides "
	"it)\n"
	"  --no-passphrase   store the key unencrypted, for unattended use; "
	"anyone\n"
	"                    who can read FILE can then sign as this device\n\n"
	"The passphrase is asked twice on the terminal, or taken from\n"
	"$BRANCHSYNC_PASSPHRASE.\n";

/* A label is shown to people: one line of valid UTF-8, not too long. */
static int init_check_name(const char *name, struct err *e)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > INIT_NAME_MAX ||
	    !utf8_valid((const uint8_t *)name, len)) {
		err_set(e, ERR_INVALID, "the device name must be 1 to %d bytes "
			"of utf-8 text", INIT_NAME_MAX);
		return -1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
			err_set(e, ERR_INVALID, "the device name must not "
				"contain control characters");
			return -1;
		}
	}
	return 0;
}

/* Removes a replica that init created but could not finish, with the
 * files SQLite keeps beside it, so that running init again works. */
static void init_remove(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char name[4096];
	size_t i;

	for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		if ((size_t)snprintf(name, sizeof name, "%s%s", path,
				     suffixes[i]) < sizeof name)
			unlink(name);
	}
}

static int init_store(struct replica *r, const uint8_t *sealed, size_t len,
		      const char *name, const char *branch, struct err *e)
{
	if (replica_begin(r, e))
		return -1;
	if (replica_setting_set(r, "device_key", sealed, len, e) ||
	    (name && replica_setting_set_text(r, "device_name", name, e)) ||
	    (branch && replica_setting_set_text(r, "default_branch", branch,
						e)) ||
	    replica_commit(r, e)) {
		replica_rollback(r);
		return -1;
	}
	return 0;
}

static int init_run(const struct cli_command *cmd, int argc, char **argv)
{
	const char *db_opt = NULL, *name = NULL, *branch = NULL, *db = NULL;
	const char *why = NULL;
	int no_pass = 0, npos = 0, created = 0, rc;
	const struct cli_opt opts[] = {
		{ "--db", &db_opt, NULL },
		{ "--name", &name, NULL },
		{ "--branch", &branch, NULL },
		{ "--no-passphrase", NULL, &no_pass },
		{ NULL, NULL, NULL },
	};
	struct replica *r = NULL;
	uint8_t *sealed = NULL, pk[SIGN_PUBLIC_BYTES];
	char hex[2 * SIGN_PUBLIC_BYTES + 1];
	size_t sealed_len = 0;
	char *pass = NULL;
	struct stat st;
	struct err e;
	enum bs_status bs;

	err_init(&e);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos > 0) {
		cli_usage(cmd, &e, "init takes no arguments");
		goto cleanup;
	}
	if (cli_db_path(cmd, db_opt, &db, &e) ||
	    (name && init_check_name(name, &e)))
		goto cleanup;
	if (branch && !schema_id_valid(branch)) {
		err_set(&e, ERR_INVALID, "--branch must be a branch id of 1 to "
			"%d characters from a-z, A-Z, 0-9, '_', '.', ':' and "
			"'-'", SCHEMA_ID_MAX);
		goto cleanup;
	}
	/* Checked before asking for a passphrase that would be wasted. */
	if (stat(db, &st) == 0 || errno != ENOENT) {
		err_set(&e, ERR_INVALID, "%s already exists; choose another "
			"--db or remove it first", db);
		goto cleanup;
	}
	if (!no_pass) {
		bs = passphrase_read("New passphrase: ", 1, &pass, &why);
		if (bs != BS_OK) {
			err_set(&e, ERR_INVALID, "%s",
				why ? why : "cannot read the passphrase");
			goto cleanup;
		}
	}
	bs = keystore_generate(pass, KEYSTORE_STRENGTH_INTERACTIVE, &sealed,
			       &sealed_len, pk);
	if (bs != BS_OK) {
		err_set(&e, ERR_INVALID, "cannot make the device key (%s)",
			bs_status_str(bs));
		goto cleanup;
	}
	if (replica_create_device(db, &r, &e))
		goto cleanup;
	created = 1;
	if (init_store(r, sealed, sealed_len, name, branch, &e))
		goto cleanup;
	replica_close(r);
	r = NULL;
	if (no_pass)
		cli_warn("the device key is stored unencrypted; anyone who can "
			 "read %s can sign as this device", db);
	sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
	printf("%s\n", hex);
cleanup:
	replica_close(r);
	if (e.kind != ERR_OK && created)
		init_remove(db);
	keystore_sealed_free(sealed, sealed_len);
	passphrase_free(pass);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	rc = cli_finish(&e);
	return rc;
}

const struct cli_command cmd_init = {
	.name = "init",
	.summary = "create a replica and this device's key",
	.usage = init_usage,
	.run = init_run,
};
