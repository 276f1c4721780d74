// SPDX-License-Identifier: GPL-2.0
/* Page hashing on worker threads (hashq.h). */
#include "snapshot/hashq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "snapshot/snapshot.h"

#define JOB_PAGES 256 /* 1 MiB a job: big enough to amortise the lock, small to share */
#define RING	  256 /* jobs queued at most */

struct job {
	const uint8_t *src;
	uint64_t *out;
	uint64_t n;
};

struct snap_hashq {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a job was queued, or stop */
	pthread_cond_t room; /* a job was taken */
	pthread_cond_t idle; /* pending reached 0 */
	struct job ring[RING];
	unsigned int head, tail; /* queued jobs: [tail, head) modulo RING */
	unsigned int pending;	 /* queued or being hashed */
	unsigned int nr_threads;
	bool stop;
	pthread_t threads[SNAP_HASHQ_MAX_THREADS];
};

static void hash_job(const struct job *j)
{
	uint64_t i;

	for (i = 0; i < j->n; i++)
		j->out[i] = snap_page_hash(j->src + i * SNAP_PAGE_SIZE);
}

static void *worker(void *arg)
{
	struct snap_hashq *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct job j;

		while (q->head == q->tail && !q->stop)
			pthread_cond_wait(&q->work, &q->lock);
		if (q->head == q->tail)
			break; /* stop, and nothing left */
		j = q->ring[q->tail++ % RING];
		pthread_cond_signal(&q->room);
		pthread_mutex_unlock(&q->lock);
		hash_job(&j);
		pthread_mutex_lock(&q->lock);
		if (!--q->pending)
			pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

unsigned int snap_hashq_default_threads(void)
{
	const char *env = getenv("KVMSNAP_HASH_THREADS");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (env && *env) {
		long v = strtol(env, NULL, 10);

		return v < 0			    ? 0
		       : v > SNAP_HASHQ_MAX_THREADS ? SNAP_HASHQ_MAX_THREADS
						    : (unsigned int)v;
	}
	/*
	 * One CPU for the writer and one for a vCPU first: on 2 CPUs a worker
	 * only competed with them (Documentation/benchmarks.md, "Hash workers").
	 */
	if (cpus <= 2)
		return 0;
	return cpus - 2 > 2 ? 2 : (unsigned int)(cpus - 2);
}

int snap_hashq_init(struct snap_hashq **out, unsigned int threads, struct error *err)
{
	struct snap_hashq *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (!q)
		return err_set(err, -ENOMEM, "out of memory for the hash queue");
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->room, NULL);
	pthread_cond_init(&q->idle, NULL);
	if (threads > SNAP_HASHQ_MAX_THREADS)
		threads = SNAP_HASHQ_MAX_THREADS;
	/* A thread that cannot start leaves fewer workers (or none: inline), not an error. */
	for (; q->nr_threads < threads; q->nr_threads++)
		if (pthread_create(&q->threads[q->nr_threads], NULL, worker, q))
			break;
	*out = q;
	return 0;
}

void snap_hashq_submit(struct snap_hashq *q, const uint8_t *src, uint64_t n, uint64_t *out)
{
	uint64_t done;

	if (!q->nr_threads) {
		hash_job(&(struct job){.src = src, .out = out, .n = n});
		return;
	}
	pthread_mutex_lock(&q->lock);
	for (done = 0; done < n;) {
		uint64_t cnt = n - done < JOB_PAGES ? n - done : JOB_PAGES;

		while (q->head - q->tail == RING)
			pthread_cond_wait(&q->room, &q->lock);
		q->ring[q->head++ % RING] =
		    (struct job){.src = src + done * SNAP_PAGE_SIZE, .out = out + done, .n = cnt};
		q->pending++;
		pthread_cond_signal(&q->work);
		done += cnt;
	}
	pthread_mutex_unlock(&q->lock);
}

void snap_hashq_wait(struct snap_hashq *q)
{
	if (!q || !q->nr_threads)
		return;
	pthread_mutex_lock(&q->lock);
	while (q->pending)
		pthread_cond_wait(&q->idle, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void snap_hashq_exit(struct snap_hashq *q)
{
	unsigned int i;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < q->nr_threads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->room);
	pthread_cond_destroy(&q->idle);
	free(q);
}

unsigned int snap_hashq_threads(const struct snap_hashq *q)
{
	return q ? q->nr_threads : 0;
}
