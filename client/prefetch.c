/* prefetch.c - GETs run ahead on a thread of their own (see prefetch.h).
 * The thread alone uses the transport until it is joined; answers pass to
 * the caller through slots guarded by one mutex. */
#include "prefetch.h"

#include <stdio.h>
#include <string.h>

void prefetch_init(struct prefetch *p)
{
	size_t i;

	memset(p, 0, sizeof *p);
	for (i = 0; i < PREFETCH_DEPTH; i++) {
		transport_reply_init(&p->slot[i].rep);
		err_init(&p->slot[i].e);
	}
}

static void *prefetch_main(void *arg)
{
	struct prefetch *p = arg;
	struct prefetch_slot s;
	char next[PREFETCH_TARGET_MAX];
	int more;

	for (;;) {
		transport_reply_init(&s.rep);
		err_init(&s.e);
		memcpy(s.target, p->target, sizeof s.target);
		s.rc = transport_request(p->t, "GET", s.target, NULL, 0,
					 p->flags, &s.rep, &s.e);
		/* the next request, if this answer names one */
		more = s.rc == 0 && p->next(p->arg, &s.rep, next, sizeof next);
		pthread_mutex_lock(&p->lock);
		p->slot[(p->head + p->count) % PREFETCH_DEPTH] = s;
		p->count++;
		pthread_cond_broadcast(&p->cond);
		while (more && !p->stop && p->count == PREFETCH_DEPTH)
			pthread_cond_wait(&p->cond, &p->lock);
		if (!more || p->stop) {
			p->ended = 1;
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		memcpy(p->target, next, sizeof p->target);
		pthread_mutex_unlock(&p->lock);
	}
}

int prefetch_start(struct prefetch *p, struct transport *t,
		   const char *target, unsigned flags, prefetch_next_fn next,
		   void *arg)
{
	prefetch_release(p);
	p->t = t;
	p->flags = flags;
	p->next = next;
	p->arg = arg;
	snprintf(p->target, sizeof p->target, "%s", target);
	if (pthread_mutex_init(&p->lock, NULL) != 0)
		return -1;
	if (pthread_cond_init(&p->cond, NULL) != 0) {
		pthread_mutex_destroy(&p->lock);
		return -1;
	}
	if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		return -1;
	}
	p->running = 1;
	return 0;
}

int prefetch_take(struct prefetch *p, const char *target,
		  struct transport_reply *rep, struct err *e)
{
	struct prefetch_slot *s;
	int rc = 0;

	if (!p->running)
		return 0;
	pthread_mutex_lock(&p->lock);
	while (p->count == 0 && !p->ended)
		pthread_cond_wait(&p->cond, &p->lock);
	if (p->count > 0 && strcmp(p->slot[p->head].target, target) == 0) {
		s = &p->slot[p->head];
		p->head = (p->head + 1) % PREFETCH_DEPTH;
		p->count--;
		if (s->rc) {
			*e = s->e;
			rc = -1;
			transport_reply_release(&s->rep);
		} else {
			transport_reply_release(rep);
			*rep = s->rep;
			rc = 1;
		}
		transport_reply_init(&s->rep);
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void prefetch_release(struct prefetch *p)
{
	size_t i;

	if (p->running) {
		pthread_mutex_lock(&p->lock);
		p->stop = 1;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
	}
	for (i = 0; i < PREFETCH_DEPTH; i++)
		transport_reply_release(&p->slot[i].rep);
	prefetch_init(p);
}
