/* bs_status.h - the one error type of branchsync's protocol library.
 * Every decoder and verifier returns one of these; BS_OK is zero so that
 * `if (rc) goto cleanup;` reads naturally. Not for user-facing exit codes:
 * the programs map these onto the exit codes of DESIGN.md. */
#ifndef BS_STATUS_H
#define BS_STATUS_H

enum bs_status {
	BS_OK = 0,
	BS_ETRUNCATED,    /* input ended inside a field */
	BS_EOVERLONG,     /* an integer not in its one shortest encoding */
	BS_ETRAILING,     /* bytes left after a complete object */
	BS_EMAGIC,        /* wrong magic bytes */
	BS_EVERSION,      /* unknown format version */
	BS_ELIMIT,        /* a size or count over its declared limit */
	BS_ENOMEM,        /* allocation failed */
	BS_ESIGNATURE,    /* Ed25519 signature does not verify */
	BS_EHASH,         /* a content hash does not match */
	BS_EINVALID,      /* a field holds a value the format forbids */
	BS_EPROOF,        /* a Merkle proof does not verify */
	BS_ECRYPTO,       /* libsodium could not be initialised */
	BS_ESTATE,        /* call not valid in the object's current state */
};

/* Returns a short lowercase phrase for `s`; never NULL. */
const char *bs_status_str(enum bs_status s);

#endif
