// SPDX-License-Identifier: GPL-2.0
/*
 * The throttle controller (snapshot/throttle.c), alone and driving the
 * precopy engine on a fake VM.
 *
 * The fake guest is a mutator thread that dirties pages in proportion to
 * what the sink has written, times the share of time its vCPUs may run:
 * unthrottled it dirties 1.5 pages for every page written (a guest faster
 * than the writer never converges), throttled to pct it dirties
 * (100 - pct)% of that. It walks its working set in order, as the dirtier's
 * seq pattern does, so every page it dirties in a pass is a new one. The
 * test measures no time: the engine must bring the mutator's rate down,
 * and the rates are counted, not timed.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "snapshot/precopy.h"
#include "snapshot/throttle.h"

/* ---- the controller alone ---- */

TEST(throttle_starts_at_initial_then_steps_up_to_max)
{
	struct snap_throttle t;

	snap_throttle_init(&t, 99);
	EXPECT_EQ(t.pct, 0);
	/* Dirtied at most half of what was written: it converges, no throttle. */
	EXPECT_EQ(snap_throttle_next(&t, 50, 100), 0);
	EXPECT_EQ(snap_throttle_next(&t, 51, 100), 20);
	EXPECT_EQ(snap_throttle_next(&t, 80, 100), 30);
	EXPECT_EQ(snap_throttle_next(&t, 10, 100), 30); /* never down within a snapshot */
	for (int i = 0; i < 20; i++)
		snap_throttle_next(&t, 100, 100);
	EXPECT_EQ(t.pct, 99);
}

/*
 * Within a pass: beyond twice its share of the aim, a throttle in force goes
 * to the top, and none becomes what the rates so far need.
 */
TEST(throttle_in_pass_rises_when_the_pass_would_leave_too_much)
{
	static const struct {
		unsigned int max, pct;
		uint64_t fresh, done, total, aim;
		unsigned int want;
	} cases[] = {
	    /* A quarter done, aim 100: a share of 25, so up to 50 dirtied is fine. */
	    {99, 70, 50, 250, 1000, 100, 70},
	    {99, 70, 51, 250, 1000, 100, 99},
	    {80, 50, 200, 250, 1000, 100, 80}, /* capped by max */
	    /* None in force: 60 dirtied per 250 cleaned, 180 in the 750 left; 40 of the aim */
	    /* left: run 40/180 of the time, 78%. */
	    {99, 0, 60, 250, 1000, 100, 78},
	    {99, 0, 100, 250, 1000, 100, 99}, /* the aim used up: the top */
	    {0, 0, 1000, 250, 1000, 100, 0},  /* off stays off */
	    {99, 0, 1000, 250, 0, 100, 0},    /* nothing to go by: no change */
	};
	struct snap_throttle t;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		snap_throttle_init(&t, cases[i].max);
		t.pct = cases[i].pct;
		EXPECT_EQ(snap_throttle_in_pass(&t, cases[i].fresh, cases[i].done, cases[i].total,
						cases[i].aim),
			  cases[i].want);
		EXPECT_EQ(t.pct, cases[i].want);
	}
}

TEST(throttle_max_caps_it_and_zero_turns_it_off)
{
	struct snap_throttle t;

	snap_throttle_init(&t, 25);
	EXPECT_EQ(snap_throttle_next(&t, 100, 100), 20);
	EXPECT_EQ(snap_throttle_next(&t, 100, 100), 25);
	EXPECT_EQ(snap_throttle_next(&t, 100, 100), 25);
	snap_throttle_init(&t, 10);
	EXPECT_EQ(snap_throttle_next(&t, 100, 100), 10); /* the first step is capped too */
	snap_throttle_init(&t, 0);
	EXPECT_EQ(snap_throttle_next(&t, 1000, 1), 0);
	snap_throttle_init(&t, 250);
	EXPECT_EQ(t.max, 99);
	/* Nothing written (an empty pass): anything dirty is more than half of it. */
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_next(&t, 0, 0), 0);
	EXPECT_EQ(snap_throttle_next(&t, 1, 0), 20);
}

/* With the measured rates, it jumps straight to what they need, if that is more than a step. */
TEST(throttle_jumps_to_what_the_rates_need)
{
	struct snap_throttle t;

	/* Dirtying 10x as fast as the writer: run 5% of the time. */
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_next_rate(&t, 100, 100, 10e9, 1e9), 95);
	/* Measured under 50%: at full speed it dirties twice that, so 75%. */
	snap_throttle_init(&t, 99);
	t.pct = 50;
	EXPECT_EQ(snap_throttle_next_rate(&t, 100, 100, 1e9, 1e9), 75);
	/* Slower than that needs: the step applies. */
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_next_rate(&t, 100, 100, 0.6e9, 1e9), 20);
	/* Capped. */
	snap_throttle_init(&t, 60);
	EXPECT_EQ(snap_throttle_next_rate(&t, 100, 100, 100e9, 1e9), 60);
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_next_rate(&t, 100, 100, 1000e9, 1e9), 99);
	/* Converging anyway: no throttle, however fast the sample. */
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_next_rate(&t, 50, 100, 100e9, 1e9), 0);
	/* Unknown rates: the steps alone. */
	EXPECT_EQ(snap_throttle_next_rate(&t, 100, 100, 0, 1e9), 20);
	EXPECT_EQ(snap_throttle_next_rate(&t, 100, 100, 5e9, 0), 30);
}

/*
 * Settling: the next pass over `dirty` takes dirty / write_rate s, and the
 * guest may dirty `target` bytes meanwhile.
 */
TEST(throttle_to_settle_leaves_the_target)
{
	struct snap_throttle t;

	/* 100 MB at 1 GB/s: 0.1 s; 1 GB/s of dirtying would be 100 MB: run 1%. */
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_settle(&t, 100e6, 1e6, 1e9, 1e9), 99);
	/* 10 MB in 10 ms at 100 MB/s of dirtying is 1 MB: no throttle needed. */
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_settle(&t, 10e6, 1e6, 100e6, 1e9), 0);
	/* 4 MB would be dirtied, 1 MB may: run 25%, hold 75%. */
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_settle(&t, 10e6, 1e6, 400e6, 1e9), 75);
	/* Measured under 50%: at full speed twice as fast, so hold 88% (87.5 up). */
	snap_throttle_init(&t, 99);
	t.pct = 50;
	EXPECT_EQ(snap_throttle_settle(&t, 10e6, 1e6, 400e6, 1e9), 88);
	/* Never down, capped, off, and unknown rates or a set at the target change nothing. */
	EXPECT_EQ(snap_throttle_settle(&t, 10e6, 1e6, 1e6, 1e9), 88);
	snap_throttle_init(&t, 60);
	EXPECT_EQ(snap_throttle_settle(&t, 100e6, 1e6, 1e9, 1e9), 60);
	snap_throttle_init(&t, 0);
	EXPECT_EQ(snap_throttle_settle(&t, 100e6, 1e6, 1e9, 1e9), 0);
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_settle(&t, 100e6, 1e6, 0, 1e9), 0);
	EXPECT_EQ(snap_throttle_settle(&t, 100e6, 1e6, 1e9, 0), 0);
	EXPECT_EQ(snap_throttle_settle(&t, 1e6, 1e6, 1e9, 1e9), 0);
}

/*
 * Settling's throttle misled: the set shrank by less than a quarter, or a
 * throttle aimed at leaving the floor left more than twice the floor.
 */
TEST(settling_gives_up_on_the_rates_when_they_misled)
{
	const uint64_t floor = 1 << 20;

	/* Shrinking by a quarter or more, with no throttle aimed yet: the rates go on. */
	EXPECT_FALSE(snap_throttle_settle_missed(4 << 20, 8 << 20, floor, false));
	EXPECT_FALSE(snap_throttle_settle_missed(6 << 20, 8 << 20, floor, false));
	/* Less than a quarter: stuck. */
	EXPECT_TRUE(snap_throttle_settle_missed((6 << 20) + 1, 8 << 20, floor, false));
	EXPECT_TRUE(snap_throttle_settle_missed(9 << 20, 8 << 20, floor, false));
	/* Aimed at the floor: within twice it, it worked; beyond, a paced guest made up for it. */
	EXPECT_FALSE(snap_throttle_settle_missed(2 << 20, 8 << 20, floor, true));
	EXPECT_TRUE(snap_throttle_settle_missed((2 << 20) + 1, 8 << 20, floor, true));
	/* The first fetch has nothing before it. */
	EXPECT_FALSE(snap_throttle_settle_missed(4 << 20, UINT64_MAX, floor, false));
}

TEST(dirty_limit_holds_the_rate_under_the_limit)
{
	struct snap_throttle t;

	snap_throttle_init(&t, 99);
	/* 400 MB/s at full speed, a limit of 100: run a quarter of the time. */
	EXPECT_EQ(snap_throttle_limit(&t, 400e6, 100e6), 75);
	/* 100 MB/s measured under 75% is 400 at full speed: a limit of 40 needs 90%. */
	EXPECT_EQ(snap_throttle_limit(&t, 100e6, 40e6), 90);
	/* Never down; a limit the guest keeps changes nothing; capped; off; unknown rates. */
	EXPECT_EQ(snap_throttle_limit(&t, 10e6, 100e6), 90);
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_limit(&t, 50e6, 100e6), 0);
	EXPECT_EQ(snap_throttle_limit(&t, 1e12, 1e6), 99);
	snap_throttle_init(&t, 60);
	EXPECT_EQ(snap_throttle_limit(&t, 400e6, 100e6), 60);
	snap_throttle_init(&t, 0);
	EXPECT_EQ(snap_throttle_limit(&t, 400e6, 100e6), 0);
	snap_throttle_init(&t, 99);
	EXPECT_EQ(snap_throttle_limit(&t, 0, 100e6), 0);
	EXPECT_EQ(snap_throttle_limit(&t, 400e6, 0), 0);
}

/* ---- the engine on a fake VM ---- */

#define PAGES	  4096 /* one 16 MiB region, all of it the working set */
#define MAX_CALLS 64

struct fake {
	struct snap_vm vm;
	uint8_t *mem, *copy, *at_pause;
	uint64_t log[PAGES / 64]; /* the "KVM" dirty log, under lock */
	pthread_mutex_t lock;
	pthread_t thread;
	sem_t work, done;
	uint64_t budget;	     /* pages to dirty, handed to the mutator */
	uint64_t fetch_budget;	     /* pages a fetch finds dirtied first... */
	unsigned int budget_fetches; /* ...in this many fetches from now */
	bool quit;
	uint64_t next;	  /* the mutator's next page */
	uint64_t ws;	  /* the pages it walks, from 0; 0: all */
	unsigned int pct; /* throttle in force */
	unsigned int calls[MAX_CALLS], nr_calls;
	uint64_t dirtied_per_pass[SNAP_MAX_PASSES], written_per_pass[SNAP_MAX_PASSES];
	unsigned int pass;
	bool paused, finished, fail_write;
	bool paced;		      /* makes up for a throttle below 80% (guest_runs()) */
	bool stubborn;		      /* up to 40 pages a write below 99% (guest_runs()) */
	bool catches_up;	      /* 1 page in 8 written below 99% (guest_runs()) */
	unsigned int finished_at_pct; /* the throttle when finish() came */
	uint64_t writes;
};

static void *mutator(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		sem_wait(&f->work);
		if (f->quit)
			break;
		for (uint64_t i = 0; i < f->budget; i++) {
			uint64_t page = f->next++ % (f->ws ? f->ws : PAGES);

			f->mem[page * 4096 + f->next % 4000] = (uint8_t)f->next;
			pthread_mutex_lock(&f->lock);
			f->log[page / 64] |= 1ULL << (page % 64);
			pthread_mutex_unlock(&f->lock);
		}
		f->dirtied_per_pass[f->pass] += f->budget;
		sem_post(&f->done);
	}
	return NULL;
}

/*
 * The guest runs while the sink writes n pages: it dirties 1.5 n x
 * (100 - pct)%. Paced, it dirties 1.5 n whatever the throttle, as long as
 * the time left to it lets it catch up: its full speed is 5 times that, so
 * up to 80%; above, 7.5 n x (100 - pct)%. Stubborn, it dirties up to 40
 * pages whatever the throttle below 99%, and none at 99%: a small set that
 * no throttle the rates ask for brings down. Catching up, it dirties n / 8
 * whatever the throttle below 99%, and none at 99%: a guest whose full
 * speed is far above its pace.
 */
static void guest_runs(struct fake *f, uint64_t n)
{
	if (f->paused)
		return;
	if (f->stubborn)
		f->budget = f->pct < 99 ? MIN(2 * n, 40) : 0;
	else if (f->catches_up)
		f->budget = f->pct < 99 ? n / 8 : 0;
	else if (f->paced)
		f->budget = f->pct < 80 ? n * 3 / 2 : n * 15 * (100 - f->pct) / 200;
	else
		f->budget = n * 3 * (100 - f->pct) / 200;
	sem_post(&f->work);
	sem_wait(&f->done);
}

static int op_log_start(void *ctx, bool *prefilled, struct error *err)
{
	struct fake *f = ctx;

	(void)err;
	*prefilled = false;
	memset(f->log, 0, sizeof(f->log));
	return 0;
}

static int op_fetch(void *ctx, struct error *err)
{
	struct fake *f = ctx;

	(void)err;
	if (f->budget_fetches) { /* the guest, busy while the engine sampled its rate */
		f->budget_fetches--;
		f->budget = f->fetch_budget;
		sem_post(&f->work);
		sem_wait(&f->done);
	}
	pthread_mutex_lock(&f->lock);
	memcpy(f->vm.regions[0].dirty, f->log, sizeof(f->log));
	memset(f->log, 0, sizeof(f->log));
	pthread_mutex_unlock(&f->lock);
	if (f->pass + 1 < SNAP_MAX_PASSES)
		f->pass++;
	return 0;
}

static int op_pause(void *ctx, uint64_t *us, uint64_t *paused_us, struct error *err)
{
	struct fake *f = ctx;

	(void)err;
	*paused_us = 0;
	f->paused = true;
	memcpy(f->at_pause, f->mem, PAGES * 4096);
	*us = 1;
	return 0;
}

static int op_state(void *ctx, uint8_t *buf, size_t cap, size_t *used, struct error *err)
{
	(void)ctx, (void)buf, (void)cap, (void)err;
	*used = 0;
	return 0;
}

static int op_finish(void *ctx, uint64_t *resumed_us, struct error *err)
{
	struct fake *f = ctx;

	(void)err;
	if (resumed_us)
		*resumed_us = 0;
	f->finished_at_pct = f->pct;
	f->paused = false;
	f->finished = true;
	return 0;
}

static int op_throttle(void *ctx, unsigned int pct, struct error *err)
{
	struct fake *f = ctx;

	(void)err;
	if (f->nr_calls < MAX_CALLS)
		f->calls[f->nr_calls++] = pct;
	f->pct = pct;
	return 0;
}

static const struct snap_vm_ops fake_ops = {
    .log_start = op_log_start,
    .fetch_dirty = op_fetch,
    .pause = op_pause,
    .save_state = op_state,
    .finish = op_finish,
    .throttle = op_throttle,
};

static int sink_write(void *ctx, unsigned int r, uint64_t first, uint64_t n, const uint8_t *src,
		      struct error *err)
{
	struct fake *f = ctx;

	(void)r;
	if (f->fail_write && f->pct >= 40)
		return err_set(err, -EIO, "injected write error at throttle %u%%", f->pct);
	memcpy(f->copy + first * 4096, src, n * 4096);
	f->writes += n;
	f->written_per_pass[f->pass] += n;
	guest_runs(f, n);
	return 0;
}

static const struct snap_sink_ops sink_ops = {.write = sink_write};

FIXTURE(eng)
{
	struct fake f;
	struct snap_sink sink;
	struct snap_options lim;
	struct snap_precopy_opts po;
	struct snap_stage stage;
	struct snap_report rep;
};

FIXTURE_SETUP(eng)
{
	struct fake *f = &self->f;
	struct error e;

	memset(f, 0, sizeof(*f));
	f->mem = calloc(PAGES, 4096);
	f->copy = calloc(PAGES, 4096);
	f->at_pause = calloc(PAGES, 4096);
	ASSERT_TRUE(f->mem && f->copy && f->at_pause);
	pthread_mutex_init(&f->lock, NULL);
	sem_init(&f->work, 0, 0);
	sem_init(&f->done, 0, 0);
	f->vm.ctx = f;
	f->vm.ops = &fake_ops;
	f->vm.cfg.nr_regions = 1;
	f->vm.cfg.regions[0].size = PAGES * 4096ULL;
	f->vm.regions[0].mem = f->mem;
	f->vm.regions[0].memfd = -1;
	f->vm.regions[0].size = PAGES * 4096ULL;
	f->vm.regions[0].dirty = calloc(PAGES / 64, 8);
	ASSERT_EQ(pthread_create(&f->thread, NULL, mutator, f), 0);
	self->sink = (struct snap_sink){.ctx = f, .ops = &sink_ops};
	/* Converged only once at most 16 pages are dirty: a guest at full speed never gets there. */
	self->lim = (struct snap_options){.threshold = 16 * 4096, .max_passes = 40};
	ASSERT_EQ(snap_stage_alloc(&self->stage, 1 << 20, &e), 0);
	self->po = (struct snap_precopy_opts){.limits = &self->lim, .stage = &self->stage};
}

FIXTURE_TEARDOWN(eng)
{
	self->f.quit = true;
	sem_post(&self->f.work);
	pthread_join(self->f.thread, NULL);
	/* The engine stopped the stage's worker before it returned. */
	EXPECT_FALSE(self->stage.worker);
	snap_stage_free(&self->stage);
	free(self->f.mem);
	free(self->f.copy);
	free(self->f.at_pause);
	free(self->f.vm.regions[0].dirty);
}

static double rate(const struct fake *f, unsigned int pass)
{
	return f->written_per_pass[pass]
		   ? (double)f->dirtied_per_pass[pass] / (double)f->written_per_pass[pass]
		   : 0;
}

/* Unthrottled, the mutator keeps up with the writer: precopy runs out of passes. */
TEST_F(eng, without_throttle_it_does_not_converge)
{
	struct error err = {0};
	unsigned int i;

	self->lim.max_throttle = 0;
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), 0);
	TH_LOG("%u passes: %s", self->rep.nr_passes, self->rep.stop_reason);
	EXPECT_FALSE(self->rep.converged);
	EXPECT_STREQ(self->rep.stop_reason, "pass limit reached");
	EXPECT_EQ(self->f.nr_calls, 0);
	for (i = 0; i < self->rep.nr_passes; i++)
		EXPECT_EQ(self->rep.passes[i].throttle_pct, 0);
	/* Still exact: the final batch takes what is left. */
	EXPECT_EQ(memcmp(self->f.copy, self->f.at_pause, PAGES * 4096), 0);
}

/*
 * With the throttle: the fake has no re-arm, so the engine's sample sees
 * nothing, and the rate comes from what each pass left dirty over its
 * length. The throttle goes at once to what lets the next pass leave at
 * most the threshold (16 pages of a 4096-page set rewritten 1.5 times a
 * pass: the max, 99%), not up a step at a time; the dirty set then
 * shrinks and precopy converges. The image is the memory at the pause,
 * and the VM runs at full speed again before it resumes.
 */
TEST_F(eng, throttle_brings_the_rate_down_until_it_converges)
{
	struct error err = {0};
	unsigned int i, last = 0;

	self->lim.max_throttle = 99;
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), 0);
	for (i = 0; i < self->rep.nr_passes; i++) {
		const struct snap_pass *p = &self->rep.passes[i];

		TH_LOG(
		    "pass %u: %llu pages, throttle %u%%, guest dirtied %.2f pages a page written",
		    i + 1, (unsigned long long)p->dirty_pages, p->throttle_pct, rate(&self->f, i));
		/* Never down; up by at least a step. */
		EXPECT_GE(p->throttle_pct, last);
		if (p->throttle_pct != last)
			EXPECT_GE(p->throttle_pct, last ? last + 10 : 20);
		last = p->throttle_pct;
	}
	EXPECT_TRUE(self->rep.converged);
	EXPECT_STREQ(self->rep.stop_reason, "dirty set below threshold");
	/* One rise, straight to what converges, not the eight steps of 10 from 20. */
	EXPECT_EQ(self->rep.passes[1].throttle_pct, 99);
	EXPECT_EQ(last, 99);
	EXPECT_LE(self->rep.nr_passes, 5);
	/* The mutator's rate came down: from 1.5 pages a page written to at most half. */
	EXPECT_GT(rate(&self->f, 0), 1.4);
	EXPECT_LE(rate(&self->f, self->rep.nr_passes - 2), 0.5);
	/* Lifted before the VM resumed, and only then finished. */
	ASSERT_GT(self->f.nr_calls, 0);
	EXPECT_EQ(self->f.calls[self->f.nr_calls - 1], 0);
	EXPECT_EQ(self->f.finished_at_pct, 0);
	EXPECT_TRUE(self->f.finished);
	EXPECT_EQ(memcmp(self->f.copy, self->f.at_pause, PAGES * 4096), 0);
}

/*
 * A dirty limit: the rate sampled before pass 1 (1024 pages in the second
 * window of a few ms; 64 KiB/s unless it lasted a minute) is far above it,
 * so pass 1 already runs under the throttle that brings it there, and the
 * mutator dirties a fraction of what pass 1 writes instead of 1.5 times as
 * much.
 */
TEST_F(eng, dirty_limit_throttles_pass_1)
{
	struct error err = {0};

	self->lim.max_throttle = 99;
	self->lim.dirty_limit = 64 << 10;
	self->f.fetch_budget = 1024;
	self->f.budget_fetches = 4; /* two samples: each fetches to start and to end its window */
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), 0);
	TH_LOG("sampled %.0f MiB/s; pass 1 at %u%%, the mutator %.2f pages a page written",
	       self->rep.start_dirty_rate / 1048576.0, self->rep.passes[0].throttle_pct,
	       rate(&self->f, 4));
	EXPECT_GT(self->rep.start_dirty_rate, 64 << 10);
	EXPECT_GE(self->rep.passes[0].throttle_pct, 80);
	ASSERT_GT(self->f.nr_calls, 0);
	EXPECT_EQ(self->f.calls[0], self->rep.passes[0].throttle_pct);
	/* Pass 1's writes count in the fake's pass 4: the samples' four fetches came first. */
	EXPECT_EQ(self->f.written_per_pass[4], PAGES);
	EXPECT_LE(rate(&self->f, 4), 0.3);
	EXPECT_TRUE(self->rep.converged);
	EXPECT_EQ(self->f.finished_at_pct, 0);
	EXPECT_EQ(memcmp(self->f.copy, self->f.at_pause, PAGES * 4096), 0);
}

/* Without a limit nothing is sampled before pass 1, and pass 1 runs at full speed. */
TEST_F(eng, no_dirty_limit_no_throttle_in_pass_1)
{
	struct error err = {0};

	self->lim.max_throttle = 99;
	self->f.fetch_budget = 1024;
	self->f.budget_fetches = 4; /* two samples: each fetches to start and to end its window */
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), 0);
	EXPECT_EQ(self->rep.start_dirty_rate, 0);
	EXPECT_EQ(self->rep.passes[0].throttle_pct, 0);
	/* The limit is kept even by a guest throttled off: no throttle, no sample. */
	self->lim.max_throttle = 0;
	self->lim.dirty_limit = 100 << 20;
	memset(&self->rep, 0, sizeof(self->rep));
	self->f.fetch_budget = 1024;
	self->f.budget_fetches = 4; /* two samples: each fetches to start and to end its window */
	self->f.nr_calls = 0;
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), 0);
	EXPECT_EQ(self->rep.start_dirty_rate, 0);
	EXPECT_EQ(self->rep.passes[0].throttle_pct, 0);
	EXPECT_EQ(self->f.nr_calls, 0);
}

/* A cap too low (1.5 x 70% > 1): the throttle stays at the cap and the pass limit ends it. */
/*
 * A guest that paces itself makes up for any throttle below 80% in the
 * time left to it, so a throttle sized by the rate it shows (it runs half
 * the time and dirties as much) buys nothing, pass after pass. Sized by
 * what the next pass may leave, it lands above 80% at once.
 */
TEST_F(eng, a_paced_guest_converges_in_few_passes)
{
	struct error err = {0};
	unsigned int i;

	self->lim.max_throttle = 99;
	self->lim.threshold = 256 * 4096;
	self->f.paced = true;
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), 0);
	for (i = 0; i < self->rep.nr_passes; i++)
		TH_LOG(
		    "pass %u: %llu pages, throttle %u%%, guest dirtied %.2f pages a page written",
		    i + 1, (unsigned long long)self->rep.passes[i].dirty_pages,
		    self->rep.passes[i].throttle_pct, rate(&self->f, i));
	EXPECT_TRUE(self->rep.converged);
	EXPECT_GE(self->rep.passes[1].throttle_pct, 80);
	EXPECT_LE(self->rep.nr_passes, 5);
	EXPECT_EQ(memcmp(self->f.copy, self->f.at_pause, PAGES * 4096), 0);
}

/*
 * Settling (no threshold given): the set is under the threshold but above
 * the floor, and stays there whatever the sampled rates ask for. The
 * engine must not spend its passes on it: the top throttle at once, then
 * the pause. It used to run out of passes at the throttle the rates gave.
 */
TEST_F(eng, settling_stops_when_the_set_stops_shrinking)
{
	struct error err = {0};
	unsigned int i;

	self->lim.threshold = 0;
	self->lim.settle_floor = 4096;
	self->lim.max_throttle = 99;
	self->f.stubborn = true;
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), 0);
	for (i = 0; i < self->rep.nr_passes; i++)
		TH_LOG("pass %u: %llu pages, throttle %u%%", i + 1,
		       (unsigned long long)self->rep.passes[i].dirty_pages,
		       self->rep.passes[i].throttle_pct);
	EXPECT_TRUE(self->rep.converged);
	EXPECT_LE(self->rep.nr_passes, 6);
	EXPECT_EQ(self->rep.passes[self->rep.nr_passes - 1].throttle_pct, 99);
	EXPECT_EQ(memcmp(self->f.copy, self->f.at_pause, PAGES * 4096), 0);
}

/*
 * Settling with a settle floor of floor pages, the guest catching up below
 * 99% over 520 pages; the engine looks at chunk boundaries, every 64 pages.
 * Every set after pass 1 is under the threshold, which no stage bounds.
 */
static int run_catching_up(struct _fixture_eng *self, uint64_t floor)
{
	struct error err = {0};
	unsigned int i;
	int ret;

	self->lim.threshold = 0;
	self->lim.max_downtime_ms = 60000;
	self->lim.settle_floor = floor * 4096;
	self->lim.clear_chunk = 64;
	self->lim.max_throttle = 99;
	self->po.stage = NULL;
	self->f.catches_up = true;
	self->f.ws = 520;
	ret = snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err);
	for (i = 0; i < self->rep.nr_passes; i++)
		TH_LOG("pass %u: %llu pages, throttle %u%% to %u%% at %llu us", i + 1,
		       (unsigned long long)self->rep.passes[i].dirty_pages,
		       self->rep.passes[i].throttle_pct, self->rep.passes[i].throttle_end_pct,
		       (unsigned long long)self->rep.passes[i].throttle_raised_us);
	return ret;
}

/*
 * Settling, a guest that makes up for any throttle below 99%: pass 1 leaves
 * 512 pages, and the pass after it may leave the floor of 16. It runs
 * unthrottled (the sample saw no rate), and a quarter into it the guest
 * has dirtied 16 pages, four times its share. The throttle rises at once,
 * within the pass, to what the rest of it needs to leave no more: the top.
 * The next pass finds what the guest dirtied in that quarter, not the 64
 * pages of the whole pass. The guest walks 520 pages, so that by then it
 * has dirtied pages 512-519, ahead of the copy, and 0-7, behind it: what
 * the look found there (the fake's fetch re-arms, as KVM's does without
 * manual protect) must still reach the image.
 */
TEST_F(eng, a_pass_that_would_leave_too_much_is_throttled_within_it)
{
	const struct snap_pass *p2;

	ASSERT_EQ(run_catching_up(self, 16), 0);
	ASSERT_GE(self->rep.nr_passes, 3);
	p2 = &self->rep.passes[1];
	EXPECT_EQ(p2->throttle_pct, 0);
	EXPECT_EQ(p2->throttle_end_pct, 99);
	EXPECT_GT(p2->throttle_raised_us, 0);
	/* 512 pages, and what the look found ahead of the copy. */
	EXPECT_GE(self->rep.passes[1].dirty_pages, 512);
	/* Left after pass 2: what a quarter of it let the guest dirty, not 64 pages. */
	EXPECT_LE(self->rep.passes[2].dirty_pages, 24);
	EXPECT_EQ(self->rep.passes[2].throttle_pct, 99);
	EXPECT_TRUE(self->rep.converged);
	EXPECT_LE(self->rep.nr_passes, 5);
	EXPECT_EQ(memcmp(self->f.copy, self->f.at_pause, PAGES * 4096), 0);
}

/*
 * The same guest against a floor of 128 pages: a quarter into pass 2 it has
 * dirtied 16 pages, within twice its share of 32. The throttle stays as it
 * was for the whole pass, and the pass after it has what the guest dirtied
 * during all of it.
 */
TEST_F(eng, a_guest_within_its_share_keeps_its_throttle)
{
	unsigned int i;

	ASSERT_EQ(run_catching_up(self, 128), 0);
	for (i = 0; i < self->rep.nr_passes; i++) {
		EXPECT_EQ(self->rep.passes[i].throttle_end_pct, self->rep.passes[i].throttle_pct);
		EXPECT_EQ(self->rep.passes[i].throttle_raised_us, 0);
	}
	ASSERT_GE(self->rep.nr_passes, 3);
	EXPECT_GE(self->rep.passes[1].dirty_pages, 512);
	/* Unthrottled all pass: 1 in 8 of its 520 pages, less what hit pages not yet copied. */
	EXPECT_GE(self->rep.passes[2].dirty_pages, 32);
	EXPECT_TRUE(self->rep.converged);
	EXPECT_EQ(memcmp(self->f.copy, self->f.at_pause, PAGES * 4096), 0);
}

TEST_F(eng, max_throttle_caps_it)
{
	struct error err = {0};
	unsigned int i;

	self->lim.max_throttle = 30;
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), 0);
	EXPECT_FALSE(self->rep.converged);
	for (i = 0; i < self->rep.nr_passes; i++)
		EXPECT_LE(self->rep.passes[i].throttle_pct, 30);
	EXPECT_EQ(self->rep.passes[self->rep.nr_passes - 1].throttle_pct, 30);
	EXPECT_EQ(self->f.finished_at_pct, 0);
}

/* A write error while throttled: the snapshot fails, and the guest runs at full speed. */
TEST_F(eng, failure_while_throttled_lifts_the_throttle)
{
	struct error err = {0};

	self->lim.max_throttle = 99;
	self->f.fail_write = true;
	EXPECT_EQ(snap_precopy_run(&self->f.vm, &self->sink, &self->po, &self->rep, &err), -EIO);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "injected write error at throttle 99%"));
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	EXPECT_EQ(self->f.finished_at_pct, 0);
	EXPECT_EQ(self->f.calls[self->f.nr_calls - 1], 0);
}

TEST_HARNESS_MAIN
