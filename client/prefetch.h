/* prefetch.h - GETs run ahead on a thread of their own, so that the next
 * pull pages travel (and the server builds them) while this one is
 * verified and merged. Each answer may name the request that follows it;
 * at most PREFETCH_DEPTH answers wait to be taken. Not for deciding what
 * to ask (sync_pull.c gives the rule) nor for HTTP (transport.h). */
#ifndef BS_PREFETCH_H
#define BS_PREFETCH_H

#include <pthread.h>
#include <stddef.h>

#include "err.h"
#include "transport.h"

#define PREFETCH_TARGET_MAX 160
#define PREFETCH_DEPTH 2

/* Called on the prefetch thread with an answer just received: 1 and the
 * next target in out (at most n bytes) to send it next, else 0. Must only
 * read the answer and what arg points to that does not change. */
typedef int (*prefetch_next_fn)(void *arg, const struct transport_reply *rep,
				char *out, size_t n);

struct prefetch_slot {
	char target[PREFETCH_TARGET_MAX];
	struct transport_reply rep;
	struct err e;
	int rc;
};

struct prefetch {
	struct transport *t;
	unsigned flags;
	prefetch_next_fn next;
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;          /* guards what follows */
	pthread_cond_t cond;
	struct prefetch_slot slot[PREFETCH_DEPTH];
	size_t head, count;            /* answers received, not taken */
	int running, stop, ended;
	char target[PREFETCH_TARGET_MAX]; /* the request being sent */
};

void prefetch_init(struct prefetch *p);
/* Starts sending GET target with transport_request's flags on t, and
 * after it what `next` names. Nothing else may use t until
 * prefetch_release returns. 0, or -1 when no thread could be started
 * (nothing was sent: the caller asks itself). */
int prefetch_start(struct prefetch *p, struct transport *t,
		   const char *target, unsigned flags, prefetch_next_fn next,
		   void *arg);
/* Takes the oldest answer if it was the request for `target`: 1 and the
 * answer moved into *rep (released first), or -1 with transport_request's
 * error in e; 0 when none will come for it (then release). Waits for it. */
int prefetch_take(struct prefetch *p, const char *target,
		  struct transport_reply *rep, struct err *e);
/* Stops after the request on the way, waits for the thread and frees
 * every answer not taken; p is idle again. */
void prefetch_release(struct prefetch *p);

#endif
