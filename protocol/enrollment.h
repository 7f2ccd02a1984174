/* enrollment.h - the server's signed statements about devices: an
 * enrollment binds a device key to a role and scope; a revocation ends a
 * device's right to push or pull. Both are entries of the server's log, so
 * "was this device allowed" is judged by log position. Encodings:
 * protocol/FORMAT.md, "Enrollments and revocations". */
#ifndef BS_ENROLLMENT_H
#define BS_ENROLLMENT_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "sign.h"

#define ENROLLMENT_VERSION 1
#define ENROLLMENT_SCOPE_MAX 64
#define ENROLLMENT_NAME_MAX 128
#define REVOCATION_REASON_MAX 256
#define ENROLLMENT_SIGNED_MAX (5 + 32 + 1 + 2 + 64 + 2 + 128 + 8 + 64)
#define REVOCATION_SIGNED_MAX (5 + 32 + 8 + 2 + 256 + 64)

enum enrollment_role {
	ROLE_BRANCH = 1,   /* read/write one branch */
	ROLE_DISTRICT = 2, /* read/write everything */
	ROLE_AUDITOR = 3,  /* read everything, write nothing */
};

struct enrollment {
	uint8_t device[SIGN_PUBLIC_BYTES];
	enum enrollment_role role;
	char scope[ENROLLMENT_SCOPE_MAX + 1]; /* branch id, or "district" */
	char name[ENROLLMENT_NAME_MAX + 1];   /* the device's label */
	uint64_t time_ms;
	uint8_t sig[SIGN_BYTES];
};

struct revocation {
	uint8_t device[SIGN_PUBLIC_BYTES];
	uint64_t time_ms;
	char reason[REVOCATION_REASON_MAX + 1];
	uint8_t sig[SIGN_BYTES];
};

/* "branch", "district", "auditor"; NULL for an unknown value. */
const char *enrollment_role_name(enum enrollment_role role);
/* 0 and sets *role, or -1 for an unknown name. */
int enrollment_role_parse(const char *name, enum enrollment_role *role);

/* Sign (fills ->sig) and append encoding || signature to out. */
enum bs_status enrollment_sign(struct enrollment *en,
			       const uint8_t sk[SIGN_SECRET_BYTES],
			       struct buf *out);
/* Decode exactly one signed enrollment and verify it against the server's
 * key `pk`: decoding without verifying is not offered. */
enum bs_status enrollment_open(const uint8_t *p, size_t len,
			       const uint8_t pk[SIGN_PUBLIC_BYTES],
			       struct enrollment *out /* OUT */)
	__attribute__((warn_unused_result));

enum bs_status revocation_sign(struct revocation *rv,
			       const uint8_t sk[SIGN_SECRET_BYTES],
			       struct buf *out);
enum bs_status revocation_open(const uint8_t *p, size_t len,
			       const uint8_t pk[SIGN_PUBLIC_BYTES],
			       struct revocation *out /* OUT */)
	__attribute__((warn_unused_result));

#endif
