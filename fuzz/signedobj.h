/* signedobj.h - the one driver of the fuzz targets for server-signed
 * objects (enrollments, revocations, state digests). Each input is tried
 * twice: as a signed object under the vectors' server key (seed bytes
 * 0x01..0x20), and as the unsigned part of one the driver signs itself, so
 * the fuzzer reaches the field rules behind the signature. Whatever opens
 * must re-sign to exactly its input. Not a signature test. */
#ifndef BS_FUZZ_SIGNEDOBJ_H
#define BS_FUZZ_SIGNEDOBJ_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sign.h"

struct signedobj {
	enum sign_kind kind;
	size_t max;          /* largest signed encoding */
	size_t obj_size;     /* sizeof the decoded struct */
	enum bs_status (*open)(const uint8_t *p, size_t len,
			       const uint8_t *pk, void *obj);
	enum bs_status (*sign)(void *obj, const uint8_t *sk, struct buf *out);
	/* 1 if the decoded struct is sane for input p (its signature field
	 * equals the input's last SIGN_BYTES, its strings terminated) */
	int (*sane)(const void *obj, const uint8_t *p, size_t len);
};

/* Runs one fuzz input through t; abort()s on any violation. */
void signedobj_run(const struct signedobj *t, const uint8_t *data,
		   size_t size);

#endif
