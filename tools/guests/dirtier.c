// SPDX-License-Identifier: GPL-2.0
/*
 * dirtier: dirty guest pages at a given rate, in a given pattern, and check
 * on every write that the page still holds the stamp this guest last wrote
 * there. A snapshot that restores stale or wrong memory shows up as a bad
 * stamp (MSGPORT_FAIL with the page's GPA).
 *
 * The working set [free_start, free_start + ws) is cut into one contiguous
 * slice per vCPU. A pass writes as many pages as the slice holds:
 *   seq     every page in order; each stamp must be exactly one pass old
 *   random  uniformly random pages; a stamp may be from any earlier pass, or
 *           from this one (a page can come up twice)
 *   hot     as random, but 90% of the writes go to the first 10% of the slice
 *
 * A restored VM resumes mid-loop, so the loop state is in memory (struct
 * dirtier_cpu) and the pacing copes with the TSC jumping.
 */
#include "rt.h"

#define REPORT_MS	    5		 /* progress reports in a pass: every 5 ms... */
#define REPORT_CHECK	    64		 /* ...looked at every 64 pages... */
#define REPORT_EVERY	    65536	 /* ...or every 65536 pages without the TSC rate */
#define PACE_MAX_CATCHUP_MS 20		 /* most time a stall (or a restore) can make up for */
#define RATE_MAX	    (1ULL << 32) /* pages/ms; above this, pacing would overflow */
#define HOT_PERCENT	    90		 /* share of hot-pattern writes that go to... */
#define HOT_AREA_PERCENT    10		 /* ...this leading share of the slice */
#define VGA_STATUS_ROW	    1		 /* vCPU n reports on row VGA_STATUS_ROW + n */

struct dirtier_cpu {
	uint64_t first;	      /* working-set index of the slice's first page */
	uint64_t npages;      /* pages in the slice */
	uint64_t pass;	      /* pass being written, from 1 */
	uint64_t done;	      /* pages written in this pass */
	uint64_t total;	      /* pages written since the start */
	uint64_t rng;	      /* xorshift64 state */
	uint64_t pace_last;   /* TSC at the last credit refill */
	uint64_t pace_acc;    /* credit, in 1/pace_den pages */
	uint64_t pace_tokens; /* pages that may be written now */
	uint64_t report_last; /* TSC at the last progress report */
} __attribute__((aligned(64)));

/* The same for every vCPU: derived from the boot info. */
struct dirtier_cfg {
	uint64_t base;	 /* GPA of working-set page 0 */
	uint64_t npages; /* pages in the working set */
	uint64_t rate;	 /* pages/ms for the whole VM, 0 = unlimited */
	uint64_t passes; /* 0 = forever */
	uint64_t pattern;
	uint64_t pace_den;    /* tsc_khz * nr_cpus: credit units per page */
	uint64_t pace_max_el; /* TSC ticks a refill may count at most */
	uint64_t report_el;   /* TSC ticks between progress reports, 0 = by page count */
	unsigned int nr_cpus;
};

static struct dirtier_cpu cpus[RT_MAX_CPUS];
static uint32_t nr_verified;

static const char *const pattern_names[] = {
    [DIRTIER_SEQ] = "seq",
    [DIRTIER_RANDOM] = "random",
    [DIRTIER_HOT] = "hot",
};

static volatile struct dirtier_stamp *stamp_of(const struct dirtier_cfg *cfg, uint64_t page)
{
	return (volatile struct dirtier_stamp *)(uintptr_t)(cfg->base + page * RT_PAGE_SIZE);
}

/*
 * Is the stamp of working-set page `page` one this guest may have left:
 * written in a pass in [lo, hi], or never written (all zero) when lo is 0?
 */
static int stamp_ok(const struct dirtier_cfg *cfg, uint64_t page, uint64_t lo, uint64_t hi)
{
	volatile struct dirtier_stamp *st = stamp_of(cfg, page);
	uint64_t magic = st->magic, pass = st->pass, pg = st->page, check = st->check;

	if (!magic && !pass && !pg && !check)
		return lo == 0;
	return magic == DIRTIER_STAMP_MAGIC && pg == page && pass >= 1 && pass >= lo &&
	       pass <= hi && check == dirtier_stamp_check(pass, page);
}

static void dirty_page(const struct dirtier_cfg *cfg, uint64_t page, uint64_t pass)
{
	volatile struct dirtier_stamp *st = stamp_of(cfg, page);
	uint64_t lo = cfg->pattern == DIRTIER_SEQ ? pass - 1 : 0;
	uint64_t hi = cfg->pattern == DIRTIER_SEQ ? pass - 1 : pass;

	if (!stamp_ok(cfg, page, lo, hi))
		rt_fail((uintptr_t)st);
	/* check last: a stamp torn by a snapshot never looks valid */
	st->magic = DIRTIER_STAMP_MAGIC;
	st->page = page;
	st->pass = pass;
	st->check = dirtier_stamp_check(pass, page);
}

/*
 * Token bucket on the TSC. Credit grows by rate / (tsc_khz * nr_cpus) pages
 * per tick; a stall, or a TSC that jumps (restore), adds at most
 * PACE_MAX_CATCHUP_MS of credit, and a TSC that goes back adds none.
 */
static void pace(const struct dirtier_cfg *cfg, struct dirtier_cpu *c)
{
	while (!c->pace_tokens) {
		uint64_t now = rt_rdtsc();
		uint64_t elapsed = now > c->pace_last ? now - c->pace_last : 0;

		if (elapsed > cfg->pace_max_el)
			elapsed = cfg->pace_max_el;
		c->pace_last = now;
		c->pace_acc += elapsed * cfg->rate;
		c->pace_tokens = c->pace_acc / cfg->pace_den;
		c->pace_acc -= c->pace_tokens * cfg->pace_den;
		if (!c->pace_tokens)
			rt_pause();
	}
	c->pace_tokens--;
}

/*
 * Whether a progress report is due, c->total having just gone up: every
 * REPORT_MS by the TSC (a host measures the guest's rate over a few ms from
 * them), every REPORT_EVERY pages without its frequency.
 */
static int report_due(const struct dirtier_cfg *cfg, struct dirtier_cpu *c)
{
	uint64_t now;

	if (!cfg->report_el)
		return !(c->total % REPORT_EVERY);
	if (c->total % REPORT_CHECK)
		return 0;
	now = rt_rdtsc();
	/* A TSC that went back (a restore elsewhere) reports too, and starts over. */
	if (now - c->report_last < cfg->report_el && now >= c->report_last)
		return 0;
	c->report_last = now;
	return 1;
}

static void report(unsigned int cpu, const struct dirtier_cpu *c)
{
	char line[VGA_COLS + 1];
	uint64_t completed = c->pass - 1;

	rt_msg_write(MSGPORT_PROGRESS, c->total);
	rt_msg_write(MSGPORT_PASS, completed);
	rt_snprintf(line, sizeof(line), "dirtier cpu%u pass %lu pages %lu ", cpu, completed,
		    c->total);
	rt_vga_write(VGA_STATUS_ROW + cpu, 0, VGA_ATTR_NORMAL, line);
}

/* The slice page (0-based) that write number `done` of a pass goes to. */
static uint64_t pick_page(const struct dirtier_cfg *cfg, struct dirtier_cpu *c)
{
	uint64_t n = c->npages, hot;

	switch (cfg->pattern) {
	case DIRTIER_RANDOM:
		return rt_rand_below(&c->rng, n);
	case DIRTIER_HOT:
		hot = n * HOT_AREA_PERCENT / 100;
		if (!hot)
			hot = 1;
		if (hot == n || rt_rand_below(&c->rng, 100) < HOT_PERCENT)
			return rt_rand_below(&c->rng, hot);
		return hot + rt_rand_below(&c->rng, n - hot);
	default:
		return c->done;
	}
}

static void run_pass(unsigned int cpu, const struct dirtier_cfg *cfg, struct dirtier_cpu *c)
{
	for (; c->done < c->npages; c->done++) {
		if (cfg->rate)
			pace(cfg, c);
		dirty_page(cfg, c->first + pick_page(cfg, c), c->pass);
		c->total++;
		if (report_due(cfg, c))
			report(cpu, c);
	}
}

/* After the last pass: every stamp of the slice must be valid. */
static void verify(const struct dirtier_cfg *cfg, const struct dirtier_cpu *c)
{
	uint64_t last = cfg->passes;
	uint64_t lo = cfg->pattern == DIRTIER_SEQ ? last : 0;
	uint64_t i;

	for (i = 0; i < c->npages; i++) {
		if (!stamp_ok(cfg, c->first + i, lo, last))
			rt_fail((uintptr_t)stamp_of(cfg, c->first + i));
	}
}

static void setup(unsigned int cpu, const struct kvmsnap_bootinfo *bi, struct dirtier_cfg *cfg)
{
	uint64_t ws = bi->params[DIRTIER_P_WS];
	uint64_t avail = bi->free_end > bi->free_start ? bi->free_end - bi->free_start : 0;

	if (!ws || ws > avail)
		ws = avail;
	cfg->base = bi->free_start;
	cfg->npages = ws / RT_PAGE_SIZE;
	cfg->rate = bi->params[DIRTIER_P_RATE];
	cfg->passes = bi->params[DIRTIER_P_PASSES];
	cfg->pattern = bi->params[DIRTIER_P_PATTERN];
	cfg->nr_cpus = bi->nr_cpus;

	if (cpu == 0)
		rt_printf(
		    "dirtier: ws %lu KiB (%lu pages at 0x%lx), rate %lu pages/ms, pattern %s, "
		    "passes %lu, seed 0x%lx, %u vCPUs\n",
		    cfg->npages * RT_PAGE_SIZE / 1024, cfg->npages, cfg->base, cfg->rate,
		    cfg->pattern <= DIRTIER_HOT ? pattern_names[cfg->pattern] : "?", cfg->passes,
		    bi->params[DIRTIER_P_SEED], cfg->nr_cpus);

	if (cfg->pattern > DIRTIER_HOT || !cfg->npages || !cfg->nr_cpus || cpu >= cfg->nr_cpus) {
		if (cpu == 0)
			rt_puts(
			    "dirtier: error: bad pattern, empty working set or bad vCPU count\n");
		rt_exit(RT_EXIT_BAD_PARAMS);
	}
	if (cfg->rate >= RATE_MAX)
		cfg->rate = 0;
	if (cfg->rate && !bi->tsc_khz) {
		if (cpu == 0)
			rt_puts("dirtier: error: a rate needs the TSC frequency, tsc_khz is 0\n");
		rt_exit(RT_EXIT_NO_TSC);
	}
	cfg->pace_den = bi->tsc_khz * cfg->nr_cpus;
	cfg->pace_max_el = bi->tsc_khz * PACE_MAX_CATCHUP_MS;
	cfg->report_el = bi->tsc_khz * REPORT_MS;
}

void guest_main(unsigned int cpu, const struct kvmsnap_bootinfo *bi)
{
	struct dirtier_cfg cfg;
	struct dirtier_cpu *c = &cpus[cpu];
	uint64_t per;

	setup(cpu, bi, &cfg);

	per = cfg.npages / cfg.nr_cpus;
	c->first = cpu * per;
	c->npages = cpu == cfg.nr_cpus - 1 ? cfg.npages - c->first : per;
	c->pass = 1;
	c->rng = rt_seed(bi->params[DIRTIER_P_SEED] ^ ((uint64_t)cpu << 32));
	c->pace_last = rt_rdtsc();
	c->report_last = c->pace_last;

	rt_msg_write(MSGPORT_READY, 1);
	if (!c->npages && !cfg.passes)
		rt_halt(); /* nothing to dirty, forever */

	while (c->npages && (!cfg.passes || c->pass <= cfg.passes)) {
		run_pass(cpu, &cfg, c);
		c->pass++;
		c->done = 0;
		report(cpu, c);
	}

	verify(&cfg, c);
	rt_atomic_inc(&nr_verified);
	if (cpu != 0)
		rt_halt();
	while (rt_atomic_load(&nr_verified) < cfg.nr_cpus)
		rt_pause();
	rt_printf("dirtier: %lu passes done, self-check ok\n", cfg.passes);
	rt_exit(0);
}
