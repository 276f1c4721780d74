// SPDX-License-Identifier: GPL-2.0
/*
 * A thread that samples a file's size while another process saves into it:
 * the "size over time" of the fixed image (flat), the append file and
 * QEMU's file (growing).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench/bench.h"

#define SAMPLER_MAX (10 * 60 * 1000 / BENCH_SAMPLE_MS) /* ten minutes' worth */

struct bench_sampler {
	pthread_t thread;
	char path[4096];
	double t0;
	struct bench_sample *v;
	size_t n;
	int stop; /* read and written with __atomic */
};

static void *sampler_main(void *arg)
{
	struct bench_sampler *s = arg;
	struct timespec ts = {.tv_nsec = BENCH_SAMPLE_MS * 1000 * 1000};

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) && s->n < SAMPLER_MAX) {
		struct stat st;

		/* A file not there yet has size 0: QEMU's shell creates it late. */
		s->v[s->n].t_ms = bench_now_ms() - s->t0;
		s->v[s->n].bytes = stat(s->path, &st) ? 0 : (uint64_t)st.st_size;
		s->n++;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int bench_sampler__start(struct bench_sampler **sp, const char *path, struct error *err)
{
	struct bench_sampler *s = calloc(1, sizeof(*s));
	int ret;

	if (!s || !(s->v = calloc(SAMPLER_MAX, sizeof(*s->v)))) {
		free(s);
		return err_set(err, -ENOMEM, "sampler: out of memory");
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->t0 = bench_now_ms();
	ret = pthread_create(&s->thread, NULL, sampler_main, s);
	if (ret) {
		free(s->v);
		free(s);
		return err_errno(err, ret, "sampler thread");
	}
	*sp = s;
	return 0;
}

void bench_sampler__stop(struct bench_sampler *s, struct bench_sample **samples, size_t *nr)
{
	struct stat st;

	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->thread, NULL);
	/* One last sample: the size at the end. */
	if (s->n < SAMPLER_MAX) {
		s->v[s->n].t_ms = bench_now_ms() - s->t0;
		s->v[s->n].bytes = stat(s->path, &st) ? 0 : (uint64_t)st.st_size;
		s->n++;
	}
	*samples = s->v;
	*nr = s->n;
	free(s);
}
