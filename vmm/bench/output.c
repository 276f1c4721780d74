// SPDX-License-Identifier: GPL-2.0
/*
 * What `kvmsnap bench` prints: a table of medians with their spread per
 * case and kind, the ratios a reader decides on, and every run as CSV or
 * JSON for anyone who wants to check the medians.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bench/bench.h"
#include "util/util.h"

const char bench_csv_header[] =
    "case,ram,ws,rate,pattern,vcpus,target,round,kind,ok,converged,total_ms,downtime_ms,"
    "restore_ms,restore_lazy_ms,guest_pps,passes,throttle_max,pages,zero_pages,bytes,file_bytes,"
    "image_size,"
    "file_ratio,"
    "write_mib_s,target_mib_s,ratio_to_target,pass1_ratio,guest_pps_during,note";

/* Write throughput of a run, MiB/s, and as a share of the target's limit. */
static double write_mib_s(const struct bench_run *r)
{
	return r->total_ms > 0 ? (double)r->bytes / (1 << 20) / (r->total_ms / 1000.0) : 0;
}

static double ratio_to_target(const struct bench_run *r)
{
	return r->target_mib_s > 0 ? write_mib_s(r) / r->target_mib_s : 0;
}

static double pass1_ratio(const struct bench_run *r)
{
	return r->target_mib_s > 0 ? r->pass1_mib_s / r->target_mib_s : 0;
}

static double file_ratio(const struct bench_run *r, const struct bench_case *c)
{
	return c->ram ? (double)r->file_bytes / (double)c->ram : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct spread {
	double median, min, max;
	unsigned int n;
};

typedef double (*run_value)(const struct bench_run *r, const struct bench_case *c);

/* Median and range of f over the successful runs of (case, kind). */
static struct spread spread_of(const struct bench_run *runs, size_t nr, unsigned int case_idx,
			       enum bench_kind kind, const struct bench_case *c, run_value f)
{
	struct spread s = {0};
	double v[64];
	size_t i;

	for (i = 0; i < nr && s.n < 64; i++)
		if (runs[i].ok && runs[i].case_idx == case_idx && runs[i].kind == kind)
			v[s.n++] = f(&runs[i], c);
	if (!s.n)
		return s;
	qsort(v, s.n, sizeof(v[0]), cmp_double);
	s.min = v[0];
	s.max = v[s.n - 1];
	s.median = s.n % 2 ? v[s.n / 2] : (v[s.n / 2 - 1] + v[s.n / 2]) / 2;
	return s;
}

static double v_total(const struct bench_run *r, const struct bench_case *c)
{
	(void)c;
	return r->total_ms;
}

static double v_downtime(const struct bench_run *r, const struct bench_case *c)
{
	(void)c;
	return r->downtime_ms;
}

static double v_restore(const struct bench_run *r, const struct bench_case *c)
{
	(void)c;
	return r->restore_ms;
}

static double v_restore_lazy(const struct bench_run *r, const struct bench_case *c)
{
	(void)c;
	return r->restore_lazy_ms;
}

static double v_file(const struct bench_run *r, const struct bench_case *c)
{
	return file_ratio(r, c);
}

static double v_target(const struct bench_run *r, const struct bench_case *c)
{
	(void)c;
	return ratio_to_target(r);
}

static double v_pass1(const struct bench_run *r, const struct bench_case *c)
{
	(void)c;
	return pass1_ratio(r);
}

static void print_spread(FILE *f, struct spread s, const char *fmt)
{
	char a[32], b[32], m[32];

	/* All zero: not measured for this kind (restore not asked, QEMU's pass 1). */
	if (!s.n || s.max == 0) {
		fprintf(f, " %21s", "-");
		return;
	}
	snprintf(m, sizeof(m), fmt, s.median);
	snprintf(a, sizeof(a), fmt, s.min);
	snprintf(b, sizeof(b), fmt, s.max);
	if (s.n == 1)
		fprintf(f, " %21s", m);
	else {
		char all[100];

		snprintf(all, sizeof(all), "%s (%s-%s)", m, a, b);
		fprintf(f, " %21s", all);
	}
}

static unsigned int failures(const struct bench_run *runs, size_t nr, unsigned int case_idx,
			     enum bench_kind kind, unsigned int *attempts, const char **why)
{
	unsigned int bad = 0;
	size_t i;

	*attempts = 0;
	for (i = 0; i < nr; i++) {
		if (runs[i].case_idx != case_idx || runs[i].kind != kind)
			continue;
		(*attempts)++;
		if (!runs[i].ok) {
			bad++;
			*why = runs[i].note;
		}
	}
	return bad;
}

void bench_output__table(FILE *f, const struct bench_case *cases, unsigned int nr_cases,
			 const struct bench_run *runs, size_t nr_runs)
{
	unsigned int ci, k;

	for (ci = 0; ci < nr_cases; ci++) {
		const struct bench_case *c = &cases[ci];
		struct spread tot[BENCH_NR_KINDS], down[BENCH_NR_KINDS];
		char desc[160];

		bench_case__describe(c, desc, sizeof(desc));
		fprintf(f, "\ncase %u: %s\n", ci + 1, desc);
		fprintf(f, "  %-7s %21s %21s %21s %21s %21s %21s %21s\n", "", "total ms",
			"downtime ms", "file / RAM", "restore ms", "lazy restore ms",
			"write / target", "pass 1 / target");
		for (k = 0; k < BENCH_NR_KINDS; k++) {
			unsigned int attempts, bad;
			const char *why = NULL;

			tot[k] = spread_of(runs, nr_runs, ci, k, c, v_total);
			down[k] = spread_of(runs, nr_runs, ci, k, c, v_downtime);
			bad = failures(runs, nr_runs, ci, k, &attempts, &why);
			if (!attempts)
				continue;
			fprintf(f, "  %-7s", bench_kind_names[k]);
			print_spread(f, tot[k], "%.0f");
			print_spread(f, down[k], "%.2f");
			print_spread(f, spread_of(runs, nr_runs, ci, k, c, v_file), "%.2f");
			print_spread(f, spread_of(runs, nr_runs, ci, k, c, v_restore), "%.0f");
			print_spread(f, spread_of(runs, nr_runs, ci, k, c, v_restore_lazy), "%.0f");
			print_spread(f, spread_of(runs, nr_runs, ci, k, c, v_target), "%.2f");
			print_spread(f, spread_of(runs, nr_runs, ci, k, c, v_pass1), "%.2f");
			fprintf(f, "\n");
			if (bad)
				fprintf(f, "          %u of %u failed: %s\n", bad, attempts, why);
		}
		for (k = BENCH_APPEND; k < BENCH_NR_KINDS; k++) {
			if (!tot[BENCH_FIXED].n || !tot[k].n || tot[k].median <= 0)
				continue;
			fprintf(f, "  fixed / %s: total time %.2f", bench_kind_names[k],
				tot[BENCH_FIXED].median / tot[k].median);
			if (down[k].median > 0)
				fprintf(f, ", downtime %.3f",
					down[BENCH_FIXED].median / down[k].median);
			fprintf(f, " (medians)\n");
		}
	}
}

static void csv_escape(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s == '\n' ? ' ' : *s, f);
	}
	fputc('"', f);
}

int bench_output__csv(const char *path, const struct bench_case *cases,
		      const struct bench_run *runs, size_t nr_runs, struct error *err)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
	size_t i;

	if (!f)
		return err_errno(err, errno, "%s", path);
	fprintf(f, "%s\n", bench_csv_header);
	for (i = 0; i < nr_runs; i++) {
		const struct bench_run *r = &runs[i];
		const struct bench_case *c = &cases[r->case_idx];

		fprintf(f,
			"%u,%llu,%llu,%llu,%s,%u,%s,%u,%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%.0f,%u,%u,%"
			"llu,%llu,"
			"%llu,%llu,%llu,%.4f,%.1f,%.1f,%.4f,%.4f,%.0f,",
			r->case_idx + 1, (unsigned long long)c->ram, (unsigned long long)c->ws,
			(unsigned long long)c->rate, bench_pattern_names[c->pattern], c->vcpus,
			bench_target_names[c->target], r->round + 1, bench_kind_names[r->kind],
			r->ok, r->converged, r->total_ms, r->downtime_ms, r->restore_ms,
			r->restore_lazy_ms, r->guest_pps, r->passes, r->throttle_max,
			(unsigned long long)r->pages, (unsigned long long)r->zero_pages,
			(unsigned long long)r->bytes, (unsigned long long)r->file_bytes,
			(unsigned long long)r->image_size, file_ratio(r, c), write_mib_s(r),
			r->target_mib_s, ratio_to_target(r), pass1_ratio(r), r->guest_pps_during);
		csv_escape(f, r->note);
		fputc('\n', f);
	}
	if (f != stdout && fclose(f))
		return err_errno(err, errno, "%s", path);
	if (f == stdout)
		fflush(f);
	return 0;
}

static struct json_object *jd(double v)
{
	return json_object_new_double(v);
}

static struct json_object *ju(uint64_t v)
{
	return json_object_new_uint64(v);
}

static struct json_object *run_json(const struct bench_run *r, const struct bench_case *c)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	size_t i;

	json_object_object_add(o, "case", ju(r->case_idx + 1));
	json_object_object_add(o, "round", ju(r->round + 1));
	json_object_object_add(o, "kind", json_object_new_string(bench_kind_names[r->kind]));
	json_object_object_add(o, "ok", json_object_new_boolean(r->ok));
	json_object_object_add(o, "converged", json_object_new_boolean(r->converged));
	json_object_object_add(o, "note", json_object_new_string(r->note));
	json_object_object_add(o, "total_ms", jd(r->total_ms));
	json_object_object_add(o, "downtime_ms", jd(r->downtime_ms));
	json_object_object_add(o, "restore_ms", jd(r->restore_ms));
	json_object_object_add(o, "restore_lazy_ms", jd(r->restore_lazy_ms));
	json_object_object_add(o, "guest_pps", jd(r->guest_pps));
	json_object_object_add(o, "guest_pps_during", jd(r->guest_pps_during));
	json_object_object_add(o, "passes", ju(r->passes));
	json_object_object_add(o, "throttle_max", ju(r->throttle_max));
	json_object_object_add(o, "pages", ju(r->pages));
	json_object_object_add(o, "zero_pages", ju(r->zero_pages));
	json_object_object_add(o, "bytes", ju(r->bytes));
	json_object_object_add(o, "file_bytes", ju(r->file_bytes));
	json_object_object_add(o, "image_size", ju(r->image_size));
	json_object_object_add(o, "file_ratio", jd(file_ratio(r, c)));
	json_object_object_add(o, "write_mib_s", jd(write_mib_s(r)));
	json_object_object_add(o, "target_mib_s", jd(r->target_mib_s));
	json_object_object_add(o, "ratio_to_target", jd(ratio_to_target(r)));
	json_object_object_add(o, "pass1_mib_s", jd(r->pass1_mib_s));
	json_object_object_add(o, "pass1_ratio", jd(pass1_ratio(r)));
	for (i = 0; i < r->passes && i < BENCH_MAX_PASSES; i++)
		json_object_array_add(a, ju(r->pass_bytes[i]));
	json_object_object_add(o, "pass_bytes", a);
	a = json_object_new_array();
	for (i = 0; i < r->passes && i < BENCH_MAX_PASSES; i++)
		json_object_array_add(a, jd(r->pass_ms[i]));
	json_object_object_add(o, "pass_ms", a);
	a = json_object_new_array();
	for (i = 0; i < r->passes && i < BENCH_MAX_PASSES; i++)
		json_object_array_add(a, ju(r->pass_throttle[i]));
	json_object_object_add(o, "pass_throttle", a);
	a = json_object_new_array();
	for (i = 0; i < r->nr_samples; i++) {
		struct json_object *p = json_object_new_array();

		json_object_array_add(p, jd(r->samples[i].t_ms));
		json_object_array_add(p, ju(r->samples[i].bytes));
		json_object_array_add(a, p);
	}
	json_object_object_add(o, "size_samples", a);
	return o;
}

int bench_output__json(const char *path, const struct bench_env *env,
		       const struct bench_case *cases, unsigned int nr_cases,
		       const struct bench_run *runs, size_t nr_runs, struct error *err)
{
	struct json_object *root = json_object_new_object(), *e = json_object_new_object();
	struct json_object *a = json_object_new_array();
	unsigned int i;
	int ret = 0;
	size_t k;

	json_object_object_add(e, "dir", json_object_new_string(env->dir));
	json_object_object_add(e, "limit_tool", json_object_new_string(env->probe_tool));
	json_object_object_add(e, "qemu", env->qemu ? json_object_new_string(env->qemu) : NULL);
	json_object_object_add(e, "kernel",
			       env->kernel ? json_object_new_string(env->kernel) : NULL);
	json_object_object_add(e, "host", json_object_new_string(env->host));
	json_object_object_add(e, "rounds", ju(env->rounds));
	json_object_object_add(e, "cpus", ju(env->cpus));
	json_object_object_add(e, "tsc_khz", ju(env->tsc_khz));
	json_object_object_add(e, "dirty_limit", ju(env->dirty_limit));
	json_object_object_add(root, "env", e);
	for (i = 0; i < nr_cases; i++) {
		struct json_object *c = json_object_new_object();
		char desc[160];

		bench_case__describe(&cases[i], desc, sizeof(desc));
		json_object_object_add(c, "case", ju(i + 1));
		json_object_object_add(c, "describe", json_object_new_string(desc));
		json_object_object_add(c, "ram", ju(cases[i].ram));
		json_object_object_add(c, "ws", ju(cases[i].ws));
		json_object_object_add(c, "rate", ju(cases[i].rate));
		json_object_object_add(
		    c, "pattern", json_object_new_string(bench_pattern_names[cases[i].pattern]));
		json_object_object_add(c, "vcpus", ju(cases[i].vcpus));
		json_object_object_add(c, "target",
				       json_object_new_string(bench_target_names[cases[i].target]));
		json_object_array_add(a, c);
	}
	json_object_object_add(root, "cases", a);
	a = json_object_new_array();
	for (k = 0; k < nr_runs; k++)
		json_object_array_add(a, run_json(&runs[k], &cases[runs[k].case_idx]));
	json_object_object_add(root, "runs", a);
	if (json_object_to_file_ext(strcmp(path, "-") ? path : "/dev/stdout", root,
				    JSON_C_TO_STRING_PLAIN))
		ret = err_set(err, -EIO, "%s: %s", path, json_util_get_last_err());
	json_object_put(root);
	return ret;
}
