/* api.h - branchsyncd's HTTP endpoints (docs/API.md): authentication by
 * device key and one-time challenge, enroll, push, pull, log, proofs,
 * checkpoints, state digest, devices, health and metrics. Requests run on
 * many threads at once: each reads in a snapshot of its own (a pool of
 * reader connections, SQLite's WAL readers); pushes wait, signatures
 * checked, for a writer thread that commits every push queued meanwhile
 * in one transaction (group commit: one fsync for all, each answered once
 * its data is durable). Not for the HTTP mechanics (http.h) nor for the
 * verdicts on change sets (ingest.h). */
#ifndef BS_API_H
#define BS_API_H

#include "http.h"
#include "ingest.h"
#include "srvlog.h"
#include "store.h"

struct api;

/* Prepares the API over an unlocked store, whose connection becomes the
 * writer's, and starts the writer thread; *out is freed by api_free (after
 * the http server is stopped). */
int api_new(struct store *s, struct api **out /* OUT */, struct err *e);
void api_free(struct api *a);
/* Lets /metrics include the HTTP layer's counters. */
void api_set_http(struct api *a, struct http_server *h);
/* The http_handler_fn to give http_server_start with the api as ctx. */
void api_handle(void *ctx, const struct http_request *req,
		struct http_response *resp);

#endif
