/* identity.h - who this device is, as its replica records it: the sealed
 * device key (opened with the passphrase only when a command signs), its
 * label, and its enrollment (role and scope), plus the write policy that
 * follows from them. Not for making keys (cmd_init.c) nor for enrolling. */
#ifndef BS_IDENTITY_H
#define BS_IDENTITY_H

#include <stdint.h>

#include "capture.h"
#include "err.h"
#include "keystore.h"
#include "replica.h"

struct identity {
	uint8_t pk[SIGN_PUBLIC_BYTES];
	int encrypted;               /* the key needs a passphrase */
	char *name;                  /* 'device_name', or NULL */
	char *role;                  /* 'role': NULL when not enrolled */
	char *scope;                 /* 'scope' */
	char *default_branch;        /* 'default_branch', or NULL */
	char *server_url;            /* 'server_url', or NULL */
	uint8_t *sealed;             /* 'device_key' */
	size_t sealed_len;
	struct keystore_key *key;    /* set by identity_unlock */
	struct capture_signer signer;
};

/* Reads the device's settings from r into *id, without any passphrase.
 * Allocates the strings and the sealed key; release with identity_release
 * (also after a failure). Fails with ERR_INVALID when the replica has no
 * or a damaged device key, or on a database error. */
int identity_load(struct replica *r, struct identity *id /* OUT */,
		  struct err *e);

/* Opens the device key, reading the passphrase (BRANCHSYNC_PASSPHRASE or the
 * terminal) if it is encrypted, and fills id->signer for capture with the
 * current wall clock. Fails with ERR_INVALID: "wrong passphrase", no
 * passphrase to be had, or a damaged key. */
int identity_unlock(struct identity *id, struct err *e);

/* The branch new rows go to when the command does not say: the enrolled
 * branch scope, else the replica's default branch; NULL if neither. */
const char *identity_default_branch(const struct identity *id);

/* Refuses (ERR_INVALID) writes the enrollment does not allow: anything by
 * an auditor, and rows outside its branch by a branch device, so that a
 * change set is never signed only to be refused later. */
int identity_may_write(const struct identity *id, const char *branch_id,
		       struct err *e);

/* Writes the device id (public key) as 64 lowercase hex digits and a NUL. */
void identity_hex(const struct identity *id,
		  char out[2 * SIGN_PUBLIC_BYTES + 1]);

/* Wipes and frees what identity_load and identity_unlock allocated. */
void identity_release(struct identity *id);

#endif
