// SPDX-License-Identifier: GPL-2.0
/*
 * `kvmsnap bench --plot DIR`: the data behind each figure as plain columns
 * (so a reader can re-plot them) and PNGs drawn by gnuplot:
 *
 *   size-caseN.png      file size over time during the first round's save:
 *                       fixed (flat, preallocated) against append and QEMU
 *   passes-caseN.png    bytes written per precopy pass, fixed against append
 *   downtime.png        downtime against the guest's dirty rate, every run
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

#define MIB (1024.0 * 1024.0)

static const struct bench_run *first_ok(const struct bench_run *runs, size_t nr, unsigned int ci,
					enum bench_kind k)
{
	size_t i;

	for (i = 0; i < nr; i++)
		if (runs[i].ok && runs[i].case_idx == ci && runs[i].kind == k)
			return &runs[i];
	return NULL;
}

static FILE *open_data(const char *dir, const char *name, char *path, size_t len, struct error *err)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		err_errno(err, errno, "%s", path);
	return f;
}

/* One data file per (case, kind) with what the figure of that case shows. */
static int write_case_data(const char *dir, FILE *gp, unsigned int ci, const char *desc,
			   const struct bench_run *runs, size_t nr, struct error *err)
{
	char name[64], path[4200];
	const char *sep = "plot ";
	unsigned int k;
	size_t i;

	fprintf(gp, "set output '%s/size-case%u.png'\n", dir, ci + 1);
	fprintf(gp, "set title 'File size during the save: %s'\n", desc);
	fprintf(gp, "set xlabel 'seconds from the start of the save'\n"
		    "set ylabel 'MiB'\nset key outside right\n");
	for (k = 0; k < BENCH_NR_KINDS; k++) {
		const struct bench_run *r = first_ok(runs, nr, ci, k);
		FILE *f;

		if (!r || !r->nr_samples)
			continue;
		snprintf(name, sizeof(name), "size-case%u-%s.dat", ci + 1, bench_kind_names[k]);
		f = open_data(dir, name, path, sizeof(path), err);
		if (!f)
			return err->code;
		fprintf(f, "# seconds MiB (%s, round %u)\n", bench_kind_names[k], r->round + 1);
		for (i = 0; i < r->nr_samples; i++)
			fprintf(f, "%.3f %.3f\n", r->samples[i].t_ms / 1000.0,
				(double)r->samples[i].bytes / MIB);
		fclose(f);
		fprintf(gp, "%s'%s' using 1:2 with lines lw 2 title '%s'", sep, path,
			bench_kind_names[k]);
		sep = ", ";
	}
	fprintf(gp, "%s\n",
		*sep == 'p' ? "set label 1 'no data' at graph 0.5,0.5\nplot 0 notitle" : "");
	fprintf(gp, "unset label 1\n");

	fprintf(gp, "set output '%s/passes-case%u.png'\n", dir, ci + 1);
	fprintf(gp, "set title 'Bytes written per pass: %s'\n", desc);
	fprintf(gp, "set xlabel 'pass'\nset xtics 1\nset ylabel 'MiB'\nset key outside right\nset "
		    "logscale y\n");
	sep = "plot ";
	for (k = 0; k < BENCH_NR_KINDS; k++) {
		const struct bench_run *r = first_ok(runs, nr, ci, k);
		FILE *f;

		if (!r || !r->passes || k == BENCH_QEMU)
			continue;
		snprintf(name, sizeof(name), "passes-case%u-%s.dat", ci + 1, bench_kind_names[k]);
		f = open_data(dir, name, path, sizeof(path), err);
		if (!f)
			return err->code;
		fprintf(f, "# pass MiB (%s, round %u)\n", bench_kind_names[k], r->round + 1);
		for (i = 0; i < r->passes && i < BENCH_MAX_PASSES; i++)
			fprintf(f, "%zu %.3f\n", i + 1, (double)r->pass_bytes[i] / MIB);
		fclose(f);
		fprintf(gp, "%s'%s' using 1:2 with linespoints lw 2 title '%s'", sep, path,
			bench_kind_names[k]);
		sep = ", ";
	}
	fprintf(gp, "%s\nunset logscale y\n", *sep == 'p' ? "plot 1 notitle" : "");
	return 0;
}

static int write_downtime_data(const char *dir, FILE *gp, const struct bench_case *cases,
			       const struct bench_run *runs, size_t nr, struct error *err)
{
	char name[64], path[4200];
	const char *sep = "plot ";
	unsigned int k;
	size_t i;

	fprintf(gp, "set output '%s/downtime.png'\n", dir);
	fprintf(gp, "set title 'Downtime against the guest dirty rate (every run)'\n");
	fprintf(gp, "set xlabel 'guest dirty rate, pages/ms (as asked; unlimited: as measured)'\n"
		    "set ylabel 'downtime, ms'\nset logscale y\nset key outside right\n");
	for (k = 0; k < BENCH_NR_KINDS; k++) {
		unsigned int n = 0;
		FILE *f;

		snprintf(name, sizeof(name), "downtime-%s.dat", bench_kind_names[k]);
		f = open_data(dir, name, path, sizeof(path), err);
		if (!f)
			return err->code;
		fprintf(f, "# pages/ms downtime_ms case round (%s)\n", bench_kind_names[k]);
		for (i = 0; i < nr; i++) {
			const struct bench_run *r = &runs[i];
			double rate;

			if (!r->ok || r->kind != k || r->downtime_ms <= 0)
				continue;
			/* The asked rate; the measured one only for "as fast as it can". */
			rate = cases[r->case_idx].rate ? (double)cases[r->case_idx].rate
						       : r->guest_pps / 1000.0;
			fprintf(f, "%.1f %.3f %u %u\n", rate, r->downtime_ms, r->case_idx + 1,
				r->round + 1);
			n++;
		}
		fclose(f);
		if (!n)
			continue;
		fprintf(gp, "%s'%s' using 1:2 with points pt 7 ps 1.3 title '%s'", sep, path,
			bench_kind_names[k]);
		sep = ", ";
	}
	fprintf(gp, "%s\nunset logscale y\n", *sep == 'p' ? "plot 1 notitle" : "");
	return 0;
}

int bench_plot__write(const char *dir, const struct bench_case *cases, unsigned int nr_cases,
		      const struct bench_run *runs, size_t nr_runs, struct error *err)
{
	const char *argv[] = {"gnuplot", NULL, NULL};
	char gp_path[4200];
	unsigned int ci;
	FILE *gp;
	int ret = 0;

	gp = open_data(dir, "bench.gp", gp_path, sizeof(gp_path), err);
	if (!gp)
		return err->code;
	fprintf(gp, "set terminal pngcairo size 900,540 noenhanced\nset grid\n");
	for (ci = 0; ci < nr_cases && !ret; ci++) {
		char desc[160];

		bench_case__describe(&cases[ci], desc, sizeof(desc));
		ret = write_case_data(dir, gp, ci, desc, runs, nr_runs, err);
	}
	if (!ret)
		ret = write_downtime_data(dir, gp, cases, runs, nr_runs, err);
	if (fclose(gp) && !ret)
		ret = err_errno(err, errno, "%s", gp_path);
	if (ret)
		return ret;
	argv[1] = gp_path;
	return bench_proc__run(argv, 120 * 1000, NULL, dir, err);
}
