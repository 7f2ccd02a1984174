/* prefetch.c - one GET on a thread of its own (see prefetch.h). The
 * thread only runs transport_request on a transport nobody else touches
 * meanwhile; everything it writes is read after pthread_join. */
#include "prefetch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
	pthread_mutex_lock(&p->lock);
	p->finished = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void prefetch_start(struct prefetch *p, struct transport *t,
		    const char *target, unsigned flags)
{
	prefetch_release(p);
	p->t = t;
	p->flags = flags;
	snprintf(p->target, sizeof p->target, "%s", target);
	if (pthread_mutex_init(&p->lock, NULL) == 0) {
		if (pthread_cond_init(&p->cond, NULL) == 0) {
			if (pthread_create(&p->thread, NULL, prefetch_main,
					   p) == 0) {
				p->state = 1;
				return;
			}
			pthread_cond_destroy(&p->cond);
		}
		pthread_mutex_destroy(&p->lock);
	}
	/* no thread (out of resources): the same request, synchronously */
	p->rc = transport_request(p->t, "GET", p->target, NULL, 0, p->flags,
				  &p->rep, &p->e);
	p->state = 2;
}

int prefetch_ready(struct prefetch *p, unsigned ms)
{
	struct timespec until;
	int done;

	if (p->state != 1)
		return 1;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	while (!p->finished &&
	       pthread_cond_timedwait(&p->cond, &p->lock, &until) !=
		       ETIMEDOUT)
		;
	done = p->finished;
	pthread_mutex_unlock(&p->lock);
	return done;
}

int prefetch_wait(struct prefetch *p, struct err *e)
{
	if (p->state == 1) {
		pthread_join(p->thread, NULL);
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
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
