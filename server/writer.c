/* writer.c - the write connection and the group-commit thread (see
 * writer.h and docs/API.md, "POST /v1/push"). */
#include "writer.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "mem.h"

/* A push waiting for its group's commit, on its thread's stack. */
struct writer_job {
	const struct ingest_item *items;
	size_t n;
	struct ingest_outcome *outs;
	struct checkpoint cp; /* the group's, when it committed */
	int failed;
	struct err why; /* when failed */
	sem_t done;	/* posted by the writer thread */
	struct writer_job *next;
};

struct writer {
	struct store *s;
	struct srvlog *log;
	struct ingest *in;
	/* the write connection: one transaction at a time */
	pthread_mutex_t write_lock;
	/* the queue of pushes */
	pthread_mutex_t lock;
	pthread_cond_t work; /* a push is queued, or stop */
	struct writer_job *head, *tail;
	pthread_t thread;
	int stop;
};

int writer_begin(struct writer *w, struct err *e)
{
	pthread_mutex_lock(&w->write_lock);
	/* an admin command may have appended from another process */
	if (replica_begin(w->s->r, e) == 0 && srvlog_reload(w->log, e) == 0)
		return 0;
	replica_rollback(w->s->r);
	pthread_mutex_unlock(&w->write_lock);
	return -1;
}

void writer_abort(struct writer *w)
{
	struct err e;

	err_init(&e);
	replica_rollback(w->s->r);
	ingest_rolled_back(w->in);
	srvlog_reload(w->log, &e);
	pthread_mutex_unlock(&w->write_lock);
}

int writer_commit(struct writer *w, struct err *e)
{
	if (replica_commit(w->s->r, e) == 0) {
		pthread_mutex_unlock(&w->write_lock);
		return 0;
	}
	writer_abort(w);
	return -1;
}

/* Writes the contact times noted so far in a transaction of their own. */
static int touch_flush(struct writer *w, struct err *e)
{
	if (!store_touch_pending_since(w->s))
		return 0;
	if (writer_begin(w, e))
		return -1;
	if (store_touch_flush(w->s, e)) {
		writer_abort(w);
		return -1;
	}
	return writer_commit(w, e);
}

/* Contact times noted by reads alone would wait for the next push. */
static int touch_flush_due(struct writer *w, struct err *e)
{
	int64_t since = store_touch_pending_since(w->s);

	if (!since || (int64_t)clock_wall_ms() - since < WRITER_TOUCH_FLUSH_MS)
		return 0;
	return touch_flush(w, e);
}

/* Commits one group of pushes: each in its own savepoint (one that fails
 * on its own gets its error, the others go on), the contact times noted,
 * one checkpoint over them all, then one commit, the only fsync the group
 * waits for. */
static void group_run(struct writer *w, struct writer_job *group)
{
	struct writer_job *j;
	struct checkpoint cp;
	struct err e;
	int64_t now;

	err_init(&e);
	if (writer_begin(w, &e))
		goto fail_all;
	now = (int64_t)clock_wall_ms();
	for (j = group; j; j = j->next) {
		err_init(&e);
		if (ingest_batch(w->in, j->items, j->n, now, j->outs, &e) == 0)
			continue;
		j->failed = 1;
		j->why = e;
		/* a failure that ended the transaction fails the group */
		if (sqlite3_get_autocommit(w->s->r->db)) {
			writer_abort(w);
			goto fail_all;
		}
	}
	err_init(&e);
	if (store_touch_flush(w->s, &e) ||
	    srvlog_checkpoint(w->log, (int64_t)clock_wall_ms(), &cp, &e)) {
		writer_abort(w);
		goto fail_all;
	}
	if (writer_commit(w, &e))
		goto fail_all;
	for (j = group; j; j = j->next)
		j->cp = cp;
	return;
fail_all:
	for (j = group; j; j = j->next)
		if (!j->failed) {
			j->failed = 1;
			j->why = e;
		}
}

/* Each turn takes every push queued by then into one group, so that while
 * a group commits the next one gathers. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct writer_job *group, *last, *k;
	struct timespec until;
	struct err e;
	size_t sets;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (!w->head && !w->stop) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += WRITER_TOUCH_FLUSH_MS / 1000;
			pthread_cond_timedwait(&w->work, &w->lock, &until);
		}
		if (!w->head) {
			if (w->stop)
				break;
			pthread_mutex_unlock(&w->lock);
			err_init(&e);
			if (touch_flush_due(w, &e))
				fprintf(stderr, "branchsyncd: cannot write contact "
					"times: %s\n", e.msg);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		group = last = w->head;
		sets = group->n;
		while (last->next &&
		       sets + last->next->n <= WRITER_GROUP_MAX_SETS) {
			last = last->next;
			sets += last->n;
		}
		w->head = last->next;
		if (!w->head)
			w->tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&w->lock);
		group_run(w, group);
		for (k = group; k; k = last) {
			last = k->next;
			sem_post(&k->done); /* k belongs to its thread again */
		}
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int writer_push(struct writer *w, const struct ingest_item *items, size_t n,
		struct ingest_outcome *outs, struct checkpoint *cp,
		struct err *e)
{
	struct writer_job j;

	memset(&j, 0, sizeof j);
	j.items = items;
	j.n = n;
	j.outs = outs;
	/* a semaphore of its own: hundreds of pushes answered at once do
	 * not queue for one mutex, nor hold up the writer's next turn */
	if (sem_init(&j.done, 0, 0) != 0) {
		err_set(e, ERR_INVALID, "cannot wait for the writer");
		return -1;
	}
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = &j;
	else
		w->head = &j;
	w->tail = &j;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	while (sem_wait(&j.done) != 0)
		; /* EINTR */
	sem_destroy(&j.done);
	if (j.failed) {
		*e = j.why;
		return -1;
	}
	*cp = j.cp;
	return 0;
}

int writer_new(struct store *s, struct srvlog *log, struct ingest *in,
	       struct writer **out, struct err *e)
{
	struct writer *w = mem_calloc(1, sizeof *w);

	*out = NULL;
	if (!w) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	w->s = s;
	w->log = log;
	w->in = in;
	pthread_mutex_init(&w->write_lock, NULL);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		pthread_mutex_destroy(&w->write_lock);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->work);
		mem_free(w);
		err_set(e, ERR_INVALID, "cannot start the writer thread");
		return -1;
	}
	*out = w;
	return 0;
}

void writer_free(struct writer *w)
{
	struct err e;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	err_init(&e);
	if (touch_flush(w, &e))
		fprintf(stderr, "branchsyncd: cannot write contact times: %s\n",
			e.msg);
	pthread_mutex_destroy(&w->write_lock);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->work);
	mem_free(w);
}
