/* api_int.h - what api.c shares with the endpoints that live in files of
 * their own (push.c): a request's struct api, what authentication
 * established, the read transaction and the writer. Only for server/. */
#ifndef BS_API_INT_H
#define BS_API_INT_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

struct api_core;
struct api_reader;

/* What a request works with. The api given to api_new's caller is the
 * root: its store is the write connection, which only the writer uses.
 * Each request has its own, whose s and log are a reader connection's
 * while it reads (api_read_begin to api_read_end) and the root's
 * otherwise, when only the store's thread-safe parts (challenges,
 * contacts, key) may be used. */
struct api {
	struct store *s;
	struct srvlog *log;
	struct api_core *core;
	struct api_reader *reader; /* while reading */
};

/* What an authenticated request established. */
struct api_caller {
	uint8_t key[SIGN_PUBLIC_BYTES];
	struct store_device dev;
	int verified; /* the request's signature verified with key */
};

/* Takes a reader for the request: one snapshot for everything it reads.
 * With `log`, a->log is the reader's log, reloaded. -1 with e set when no
 * reader or no transaction could be had. Ended by api_read_end. */
int api_read_begin(struct api *a, int log, struct err *e);
/* Ends the read transaction, if any, and gives the reader back. */
void api_read_end(struct api *a);
/* 0 if who's role is one of those allowed, else -1 with a 403 in resp. */
int api_role_allowed(const struct api_caller *who, struct http_response *resp,
		     int branch, int district, int auditor);
/* Hands verified sets to the writer and, once they are committed, counts
 * their verdicts for /metrics. outs (n of them) and cp are the caller's;
 * -1 with e set as writer_push fails. */
int api_commit_push(struct api *a, const struct ingest_item *items, size_t n,
		    struct ingest_outcome *outs /* OUT */,
		    struct checkpoint *cp /* OUT */, struct err *e);

#endif
