/* bs_status.c - human phrases for enum bs_status (see bs_status.h). */
#include "bs_status.h"

const char *bs_status_str(enum bs_status s)
{
	switch (s) {
	case BS_OK: return "ok";
	case BS_ETRUNCATED: return "input is truncated";
	case BS_EOVERLONG: return "integer is not minimally encoded";
	case BS_ETRAILING: return "unexpected bytes after the end";
	case BS_EMAGIC: return "wrong magic bytes";
	case BS_EVERSION: return "unsupported format version";
	case BS_ELIMIT: return "size over the limit";
	case BS_ENOMEM: return "out of memory";
	case BS_ESIGNATURE: return "signature does not verify";
	case BS_EHASH: return "hash does not match";
	case BS_EINVALID: return "invalid field value";
	case BS_EPROOF: return "proof does not verify";
	case BS_ECRYPTO: return "crypto library failed to initialise";
	case BS_ESTATE: return "operation not valid in this state";
	}
	return "unknown error";
}
