/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmsnap bench: live snapshots of the same dirtier workload three ways,
 * side by side in one run, each against the target's own limits measured in
 * the same run.
 *
 *   fixed   kvmsnap's fixed-size image (`kvmsnap snapshot`)
 *   append  the same precopy engine appending every pass to a growing file
 *           (`kvmsnap snapshot --append`), as classic save streams do
 *   qemu    QEMU's classic live save (`migrate` to a file) of the same
 *           Multiboot dirtier, when qemu-system-x86_64 is installed
 *
 * The modules below are driven by vmm/builtin-bench.c. Each function that
 * can fail returns 0 or -errno with *err set (lib/error.h), and never exits.
 */
#ifndef KVMSNAP_BENCH_H
#define KVMSNAP_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "lib/align.h"
#include "lib/error.h"

#define BENCH_MAX_VALUES 8  /* values per grid axis */
#define BENCH_MAX_PASSES 64 /* per-pass bytes kept per run */
#define BENCH_SAMPLE_MS	 50 /* file-size samples during a save */

enum bench_kind { BENCH_FIXED, BENCH_APPEND, BENCH_QEMU, BENCH_NR_KINDS };
enum bench_target { BENCH_TARGET_FILE, BENCH_TARGET_LOOP, BENCH_NR_TARGETS };

extern const char *const bench_kind_names[];	/* "fixed", "append", "qemu", NULL */
extern const char *const bench_target_names[];	/* "file", "loop", NULL */
extern const char *const bench_pattern_names[]; /* "seq", "random", "hot", NULL */

/* One point of the grid: the guest, its workload and where it is saved. */
struct bench_case {
	uint64_t ram;	      /* bytes of guest RAM */
	uint64_t ws;	      /* bytes of working set */
	uint64_t rate;	      /* pages/ms for the whole VM, 0 = as fast as it can */
	unsigned int pattern; /* index into bench_pattern_names */
	unsigned int vcpus;
	unsigned int target; /* enum bench_target */
};

/*
 * A save starts once the guest has written this many pages (or its whole
 * working set, if smaller), then runs warm_ms more: where the dirtier's
 * first progress report came when it reported every 65536 pages, kept so
 * that figures stay comparable now that it reports every 5 ms.
 */
#define BENCH_READY_PAGES    65536ULL
#define bench_ready_pages(c) MIN(BENCH_READY_PAGES, (c)->ws / 4096)

/* The grid: every combination of the values of each axis. */
struct bench_grid {
	uint64_t ram[BENCH_MAX_VALUES], ws[BENCH_MAX_VALUES], rate[BENCH_MAX_VALUES];
	unsigned int pattern[BENCH_MAX_VALUES], vcpus[BENCH_MAX_VALUES], target[BENCH_MAX_VALUES];
	unsigned int nr_ram, nr_ws, nr_rate, nr_pattern, nr_vcpus, nr_target;
};

/* One sample of a file's size during a save. */
struct bench_sample {
	double t_ms;
	uint64_t bytes;
};

/* One save of one case by one kind in one round: a row of the CSV. */
struct bench_run {
	unsigned int case_idx, round;
	enum bench_kind kind;
	bool ok;		   /* the save finished; else note says why */
	bool converged;		   /* precopy ended below its threshold */
	char note[160];		   /* why it failed, or what is special */
	double total_ms;	   /* the save, durable (fsync included) */
	double downtime_ms;	   /* the guest's pause */
	double restore_ms;	   /* start of the restoring process to a running VM; 0: none */
	double restore_lazy_ms;	   /* the same for `kvmsnap restore --lazy` */
	double guest_pps;	   /* the guest's pages/s just before the save (kvmsnap-measured) */
	double guest_pps_during;   /* ...and during a kvmsnap save (its report); 0: unknown */
	unsigned int passes;	   /* precopy passes, the final batch included */
	unsigned int throttle_max; /* highest throttle percent of any pass */
	uint64_t pages;		   /* pages written with their data (all passes) */
	uint64_t zero_pages;	   /* pages recorded as zero without data (append's holes) */
	uint64_t bytes;		   /* bytes written or transferred */
	uint64_t file_bytes;	   /* size of the image or file at the end */
	uint64_t image_size; /* `kvmsnap image size` of the case (fixed: must equal file_bytes) */
	double target_mib_s; /* the target's sequential write limit in this round */
	double pass1_mib_s;  /* pass 1 alone (every page once, the guest running) */
	uint64_t pass_bytes[BENCH_MAX_PASSES];
	double pass_ms[BENCH_MAX_PASSES];
	unsigned int pass_throttle[BENCH_MAX_PASSES]; /* the highest during each pass */
	struct bench_sample *samples;		      /* malloc'd */
	size_t nr_samples;
};

/* ---- grid.c ---- */

/* Parse a comma-separated list of sizes ("512M,1G"); 0 or -EINVAL. */
int bench_grid__sizes(const char *s, uint64_t *v, unsigned int *n, struct error *err);
/* Parse a comma-separated list of numbers in [lo, hi]. */
int bench_grid__uints(const char *s, uint64_t lo, uint64_t hi, uint64_t *v, unsigned int *n,
		      struct error *err);
/* Parse a comma-separated list of names from names[]. */
int bench_grid__names(const char *s, const char *const *names, unsigned int *v, unsigned int *n,
		      struct error *err);
/* Number of cases; case i in *c (axes vary fastest from the last). */
unsigned int bench_grid__count(const struct bench_grid *g);
void bench_grid__case(const struct bench_grid *g, unsigned int i, struct bench_case *c);
/* A working set that does not fit the RAM the dirtier gets: -EINVAL naming both. */
int bench_grid__check(const struct bench_grid *g, struct error *err);
/* "1G ws=512M rate=50 random 1 vCPU file" */
void bench_case__describe(const struct bench_case *c, char *buf, size_t len);

/* ---- proc.c: child processes with deadlines ---- */

/* The path of this kvmsnap binary (/proc/self/exe). */
const char *bench_proc__self(void);
/* Start argv (searched in PATH) in a process group of its own, stdin from
 * /dev/null, stdout to out_path and stderr to err_path (NULL: /dev/null; the
 * same path: one log), default signal handling. Its pid, or -errno. */
pid_t bench_proc__spawn(const char *const *argv, const char *out_path, const char *err_path,
			struct error *err);
/* Wait up to timeout_ms for pid; its wait status in *status. 0, or -ETIMEDOUT. */
int bench_proc__wait(pid_t pid, unsigned int timeout_ms, int *status);
/* SIGTERM, then SIGKILL after grace_ms; always reaps. */
void bench_proc__stop(pid_t pid, unsigned int grace_ms);
/* Run argv to the end (at most timeout_ms); its stdout in *out (malloc'd, may be NULL). */
int bench_proc__run(const char *const *argv, unsigned int timeout_ms, char **out, const char *dir,
		    struct error *err);
/* Milliseconds on the monotonic clock. */
double bench_now_ms(void);
void bench_sleep_ms(unsigned int ms);
/* prog in PATH: true with its path in path. */
bool bench_proc__which(const char *prog, char *path, size_t len);

/* ---- sampler.c: a thread that samples a file's size ---- */

struct bench_sampler;
/* Sample path's st_size every BENCH_SAMPLE_MS from now until stop. */
int bench_sampler__start(struct bench_sampler **s, const char *path, struct error *err);
/* Stop; hand the samples over (t from start). */
void bench_sampler__stop(struct bench_sampler *s, struct bench_sample **samples, size_t *nr);

/* ---- probe.c: the target's limits ---- */

struct bench_probe {
	char tool[16];	  /* "fio" or "O_DIRECT probe" */
	double seq_mib_s; /* sequential 1 MiB writes, O_DIRECT, over written blocks, fsync'd */
};

/* Measure sequential writes to a size-byte file at path (removed afterwards). */
int bench_probe__run(const char *path, uint64_t size, bool use_fio, struct bench_probe *p,
		     struct error *err);

/* ---- vm.c: the kvmsnap columns ---- */

struct bench_vm_opts {
	const char *dir;      /* scratch folder */
	const char *kernel;   /* the Multiboot dirtier, or NULL for the built-in guest */
	uint64_t tsc_khz;     /* for the Multiboot dirtier's command line */
	unsigned int warm_ms; /* guest runs this long before each save */
	unsigned int max_downtime_ms;
	unsigned int max_time_s;
	uint64_t dirty_limit; /* snapshot --dirty-limit, bytes/s; 0: none */
	const char *image;    /* the case's fixed image (file or block device) */
	bool restore;	      /* also time an eager restore of the fixed image */
};

/* A running dirtier VM of case c, with its control socket in o->dir. */
struct bench_vm;
int bench_vm__start(struct bench_vm **vm, const struct bench_case *c, const struct bench_vm_opts *o,
		    struct error *err);
/* The guest's pages/s over the last interval (control `stats`). */
int bench_vm__rate(struct bench_vm *vm, double *pps, struct error *err);
/* Save the running VM as kind (FIXED: into o->image; APPEND: into a new file). */
int bench_vm__save(struct bench_vm *vm, enum bench_kind kind, struct bench_run *r,
		   struct error *err);
void bench_vm__stop(struct bench_vm *vm);
/* The command line that gives the Multiboot dirtier case c's workload. */
void bench_vm__cmdline(const struct bench_case *c, uint64_t tsc_khz, char *buf, size_t len);

/* ---- output.c ---- */

struct bench_env {
	const char *dir, *probe_tool, *qemu, *kernel, *host;
	unsigned int rounds, cpus;
	uint64_t tsc_khz;
	uint64_t dirty_limit; /* kvmsnap saves' --dirty-limit, 0: none */
};

/* Medians and spread per case and kind, and the ratios, as a table. */
void bench_output__table(FILE *f, const struct bench_case *cases, unsigned int nr_cases,
			 const struct bench_run *runs, size_t nr_runs);
int bench_output__csv(const char *path, const struct bench_case *cases,
		      const struct bench_run *runs, size_t nr_runs, struct error *err);
int bench_output__json(const char *path, const struct bench_env *env,
		       const struct bench_case *cases, unsigned int nr_cases,
		       const struct bench_run *runs, size_t nr_runs, struct error *err);
/* The CSV header line, without its newline (tests check against it). */
extern const char bench_csv_header[];

/* ---- plot.c ---- */

/* Data files and gnuplot PNGs into dir (gnuplot must be installed). */
int bench_plot__write(const char *dir, const struct bench_case *cases, unsigned int nr_cases,
		      const struct bench_run *runs, size_t nr_runs, struct error *err);

#endif
