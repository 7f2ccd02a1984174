/* push.h - POST /v1/push, a device's change sets for the log: verified
 * in the request's thread, committed by the writer in a group with the
 * pushes that came meanwhile (docs/API.md). */
#ifndef BS_PUSH_H
#define BS_PUSH_H

#include "api_int.h"

/* Answers the push of the authenticated `who` in resp. Called inside the
 * read transaction that authenticated it, which it ends. */
void push_post(struct api *a, const struct http_request *req,
	       struct http_response *resp, struct api_caller *who);

#endif
