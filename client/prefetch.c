/* prefetch.c - one GET on a thread of its own (see prefetch.h). The
 * thread only runs transport_request on a transport nobody else touches
 * meanwhile; everything it writes is read after pthread_join. */
#include "prefetch.h"

#include <stdio.h>
#include <string.h>

void prefetch_init(struct prefetch *p)
{
	memset(p, 0, sizeof *p);
	transport_reply_init(&p->rep);
	err_init(&p->e);
}

static void *prefetch_main(void *arg)
{
	struct prefetch *p = arg;

	p->rc = transport_request(p->t, "GET", p->target, NULL, 0, p->flags,
				  &p->rep, &p->e);
	return NULL;
}

void prefetch_start(struct prefetch *p, struct transport *t,
		    const char *target, unsigned flags)
{
	prefetch_release(p);
	p->t = t;
	p->flags = flags;
	snprintf(p->target, sizeof p->target, "%s", target);
	if (pthread_create(&p->thread, NULL, prefetch_main, p) == 0) {
		p->state = 1;
		return;
	}
	/* no thread (out of resources): the same request, synchronously */
	prefetch_main(p);
	p->state = 2;
}

int prefetch_wait(struct prefetch *p, struct err *e)
{
	if (p->state == 1) {
		pthread_join(p->thread, NULL);
		p->state = 2;
	}
	if (p->state == 2 && p->rc) {
		*e = p->e;
		return -1;
	}
	return 0;
}

void prefetch_release(struct prefetch *p)
{
	struct err quiet;

	err_init(&quiet);
	prefetch_wait(p, &quiet);
	transport_reply_release(&p->rep);
	prefetch_init(p);
}
