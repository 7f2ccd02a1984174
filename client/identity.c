/* identity.c - the device key and enrollment from the replica's settings
 * (see identity.h). The secret key exists only in keystore's guarded memory,
 * from identity_unlock to identity_release. */
#include "identity.h"

#include <string.h>

#include <sodium.h>

#include "clock.h"
#include "mem.h"
#include "passphrase.h"

int identity_load(struct replica *r, struct identity *id, struct err *e)
{
	uint8_t *name = NULL, *role = NULL, *scope = NULL, *branch = NULL;
	uint8_t *url = NULL;
	size_t n;

	memset(id, 0, sizeof *id);
	if (replica_setting_get(r, "device_key", &id->sealed, &id->sealed_len,
				e) ||
	    replica_setting_get(r, "device_name", &name, &n, e) ||
	    replica_setting_get(r, "role", &role, &n, e) ||
	    replica_setting_get(r, "scope", &scope, &n, e) ||
	    replica_setting_get(r, "default_branch", &branch, &n, e) ||
	    replica_setting_get(r, "server_url", &url, &n, e))
		goto fail;
	/* replica_setting_get NUL-terminates, so these are strings. */
	id->name = (char *)name;
	id->role = (char *)role;
	id->scope = (char *)scope;
	id->default_branch = (char *)branch;
	id->server_url = (char *)url;
	name = role = scope = branch = url = NULL;
	if (!id->sealed) {
		err_set(e, ERR_INVALID, "%s has no device key; it was not made "
			"by 'branchsync init'", r->path);
		goto fail;
	}
	if (keystore_public(id->sealed, id->sealed_len, id->pk) != BS_OK ||
	    keystore_is_encrypted(id->sealed, id->sealed_len,
				  &id->encrypted) != BS_OK) {
		err_set(e, ERR_INVALID, "the device key in %s is damaged; "
			"restore the replica from a backup", r->path);
		goto fail;
	}
	return 0;
fail:
	mem_free(name);
	mem_free(role);
	mem_free(scope);
	mem_free(branch);
	mem_free(url);
	return -1;
}

int identity_unlock(struct identity *id, struct err *e)
{
	char *pass = NULL;
	const char *why = NULL;
	enum bs_status st;
	int rc = -1;

	if (id->encrypted) {
		st = passphrase_read(NULL, 0, &pass, &why);
		if (st != BS_OK) {
			err_set(e, ERR_INVALID, "%s",
				why ? why : "cannot read the passphrase");
			goto cleanup;
		}
	}
	st = keystore_open(id->sealed, id->sealed_len, pass, &id->key);
	if (st == BS_EHASH) {
		err_set(e, ERR_INVALID, "wrong passphrase; type it again or "
			"check BRANCHSYNC_PASSPHRASE");
		goto cleanup;
	}
	if (st == BS_ENOMEM) {
		err_set(e, ERR_INVALID, "out of memory opening the device key");
		goto cleanup;
	}
	if (st != BS_OK) {
		err_set(e, ERR_INVALID, "cannot open the device key (%s)",
			bs_status_str(st));
		goto cleanup;
	}
	id->signer.pk = id->key->pk;
	id->signer.sk = id->key->sk;
	id->signer.scope_only =
		id->role && strcmp(id->role, "branch") == 0 ? id->scope : NULL;
	id->signer.wall_ms = clock_wall_ms();
	rc = 0;
cleanup:
	passphrase_free(pass);
	return rc;
}

const char *identity_default_branch(const struct identity *id)
{
	if (id->role && strcmp(id->role, "branch") == 0 && id->scope &&
	    id->scope[0])
		return id->scope;
	if (id->default_branch && id->default_branch[0])
		return id->default_branch;
	return NULL;
}

int identity_may_write(const struct identity *id, const char *branch_id,
		       struct err *e)
{
	if (!id->role)
		return 0;
	if (strcmp(id->role, "auditor") == 0) {
		err_set(e, ERR_INVALID, "this device is enrolled as an auditor "
			"and may not change records");
		return -1;
	}
	if (strcmp(id->role, "branch") == 0 &&
	    (!id->scope || strcmp(id->scope, branch_id) != 0)) {
		err_set(e, ERR_INVALID, "this device is enrolled for branch %s "
			"and may not write records of branch %s",
			id->scope ? id->scope : "(none)", branch_id);
		return -1;
	}
	return 0;
}

void identity_hex(const struct identity *id,
		  char out[2 * SIGN_PUBLIC_BYTES + 1])
{
	sodium_bin2hex(out, 2 * SIGN_PUBLIC_BYTES + 1, id->pk,
		       SIGN_PUBLIC_BYTES);
}

void identity_release(struct identity *id)
{
	keystore_key_free(id->key);
	if (id->sealed)
		sodium_memzero(id->sealed, id->sealed_len);
	mem_free(id->sealed);
	mem_free(id->name);
	mem_free(id->role);
	mem_free(id->scope);
	mem_free(id->default_branch);
	mem_free(id->server_url);
	memset(id, 0, sizeof *id);
}
