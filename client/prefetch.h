/* prefetch.h - one GET on a thread of its own, so that the next pull page
 * travels (and the server builds it) while this one is verified and merged.
 * Not for deciding what to ask (sync.c) nor for HTTP (transport.h). */
#ifndef BS_PREFETCH_H
#define BS_PREFETCH_H

#include <pthread.h>

#include "err.h"
#include "transport.h"

#define PREFETCH_TARGET_MAX 160

struct prefetch {
	struct transport *t;
	char target[PREFETCH_TARGET_MAX];
	unsigned flags;
	struct transport_reply rep;    /* the answer, once waited for */
	struct err e;
	int rc;
	int state;                     /* 0 idle, 1 on its thread, 2 done */
	pthread_t thread;
};

void prefetch_init(struct prefetch *p);
/* Sends GET target (copied) with transport_request's flags on t. Nothing
 * else may use t until prefetch_wait or prefetch_release returns. When no
 * thread can be started the request runs here before this returns. */
void prefetch_start(struct prefetch *p, struct transport *t,
		    const char *target, unsigned flags);
/* Waits for the request; then what transport_request returned and, on
 * -1, its error in e. The answer stays in p->rep. */
int prefetch_wait(struct prefetch *p, struct err *e);
/* Waits for any request and frees its answer; p is idle again. */
void prefetch_release(struct prefetch *p);

#endif
