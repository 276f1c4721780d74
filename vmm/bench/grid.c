// SPDX-License-Identifier: GPL-2.0
/* The benchmark grid: comma-separated values per axis, every combination. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "util/util.h"

const char *const bench_kind_names[] = {"fixed", "append", "qemu", NULL};
const char *const bench_target_names[] = {"file", "loop", NULL};
const char *const bench_pattern_names[] = {"seq", "random", "hot", NULL};

/*
 * Split s at commas into at most BENCH_MAX_VALUES items and call parse on
 * each; an empty item or one too many is an error naming the list.
 */
static int split(const char *s, unsigned int *n, struct error *err,
		 int (*parse)(const char *item, unsigned int i, void *ctx, struct error *err),
		 void *ctx)
{
	char buf[256], *item, *save = NULL;
	unsigned int i = 0;
	int ret;

	if (strlen(s) >= sizeof(buf))
		return err_set(err, -EINVAL, "'%.40s...': list too long", s);
	strcpy(buf, s);
	if (!*buf || buf[strlen(buf) - 1] == ',' || *buf == ',' || strstr(buf, ",,"))
		return err_set(err, -EINVAL, "'%s': an empty value in the list", s);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (i == BENCH_MAX_VALUES)
			return err_set(err, -EINVAL, "'%s': at most %d values", s,
				       BENCH_MAX_VALUES);
		ret = parse(item, i, ctx, err);
		if (ret)
			return ret;
		i++;
	}
	*n = i;
	return 0;
}

static int parse_one_size(const char *item, unsigned int i, void *ctx, struct error *err)
{
	uint64_t *v = ctx;

	if (parse_size(item, &v[i]) || !v[i])
		return err_set(err, -EINVAL, "'%s' is not a size (K, M, G suffixes)", item);
	return 0;
}

int bench_grid__sizes(const char *s, uint64_t *v, unsigned int *n, struct error *err)
{
	return split(s, n, err, parse_one_size, v);
}

struct uint_ctx {
	uint64_t lo, hi, *v;
};

static int parse_one_uint(const char *item, unsigned int i, void *ctx, struct error *err)
{
	struct uint_ctx *u = ctx;

	if (parse_uint(item, u->lo, u->hi, &u->v[i]))
		return err_set(err, -EINVAL, "'%s' is not a number from %llu to %llu", item,
			       (unsigned long long)u->lo, (unsigned long long)u->hi);
	return 0;
}

int bench_grid__uints(const char *s, uint64_t lo, uint64_t hi, uint64_t *v, unsigned int *n,
		      struct error *err)
{
	struct uint_ctx u = {.lo = lo, .hi = hi, .v = v};

	return split(s, n, err, parse_one_uint, &u);
}

struct name_ctx {
	const char *const *names;
	unsigned int *v;
};

static int parse_one_name(const char *item, unsigned int i, void *ctx, struct error *err)
{
	struct name_ctx *c = ctx;
	unsigned int k;

	for (k = 0; c->names[k]; k++)
		if (!strcmp(item, c->names[k])) {
			c->v[i] = k;
			return 0;
		}
	return err_set(err, -EINVAL, "'%s' is not one of %s%s%s%s%s", item, c->names[0],
		       c->names[1] ? ", " : "", c->names[1] ? c->names[1] : "",
		       c->names[1] && c->names[2] ? ", " : "",
		       c->names[1] && c->names[2] ? c->names[2] : "");
}

int bench_grid__names(const char *s, const char *const *names, unsigned int *v, unsigned int *n,
		      struct error *err)
{
	struct name_ctx c = {.names = names, .v = v};

	return split(s, n, err, parse_one_name, &c);
}

unsigned int bench_grid__count(const struct bench_grid *g)
{
	return g->nr_ram * g->nr_ws * g->nr_rate * g->nr_pattern * g->nr_vcpus * g->nr_target;
}

void bench_grid__case(const struct bench_grid *g, unsigned int i, struct bench_case *c)
{
	c->target = g->target[i % g->nr_target];
	i /= g->nr_target;
	c->vcpus = g->vcpus[i % g->nr_vcpus];
	i /= g->nr_vcpus;
	c->pattern = g->pattern[i % g->nr_pattern];
	i /= g->nr_pattern;
	c->rate = g->rate[i % g->nr_rate];
	i /= g->nr_rate;
	c->ws = g->ws[i % g->nr_ws];
	i /= g->nr_ws;
	c->ram = g->ram[i % g->nr_ram];
}

/*
 * The dirtier's working set lives in free RAM above its image; leave it
 * 16 MiB (image, page tables, stacks) and at least 1 MiB per vCPU.
 */
#define BENCH_RAM_RESERVED (16ULL << 20)

int bench_grid__check(const struct bench_grid *g, struct error *err)
{
	char a[32], b[32];
	unsigned int i, k, v;

	for (i = 0; i < g->nr_ram; i++)
		for (k = 0; k < g->nr_ws; k++) {
			if (g->ws[k] + BENCH_RAM_RESERVED <= g->ram[i])
				continue;
			return err_set(
			    err, -EINVAL,
			    "working set %s does not fit in %s of RAM (16M is the guest's)",
			    format_size(g->ws[k], a, sizeof(a)),
			    format_size(g->ram[i], b, sizeof(b)));
		}
	for (k = 0; k < g->nr_ws; k++)
		for (v = 0; v < g->nr_vcpus; v++)
			if (g->ws[k] < g->vcpus[v] * 4096ULL)
				return err_set(err, -EINVAL,
					       "working set %s is less than a page per vCPU",
					       format_size(g->ws[k], a, sizeof(a)));
	return 0;
}

void bench_case__describe(const struct bench_case *c, char *buf, size_t len)
{
	char ram[32], ws[32], rate[32];

	if (c->rate)
		snprintf(rate, sizeof(rate), "%llu", (unsigned long long)c->rate);
	else
		snprintf(rate, sizeof(rate), "max");
	snprintf(buf, len, "%s ws=%s rate=%s %s %u vCPU %s", format_size(c->ram, ram, sizeof(ram)),
		 format_size(c->ws, ws, sizeof(ws)), rate, bench_pattern_names[c->pattern],
		 c->vcpus, bench_target_names[c->target]);
}
