// SPDX-License-Identifier: GPL-2.0
/*
 * kvmsnap bench: a grid of dirtier workloads, each saved live by kvmsnap's
 * fixed image, by the append baseline and by QEMU's classic live save, in
 * rounds, with the target's own limit measured in every round
 * (vmm/bench/bench.h has the parts).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/qemu.h"
#include "builtin.h"

struct bench_opts {
	const char *dir, *ram, *ws, *rate, *pattern, *vcpus, *target, *kinds;
	const char *csv, *json, *plot, *kernel;
	unsigned int rounds, warm_ms, max_downtime_ms, max_time_s;
	uint64_t dirty_limit;
	bool no_fio, install, no_restore, builtin_guest, keep, no_progress;
};

struct bench_state {
	struct bench_opts o;
	struct bench_grid grid;
	bool kinds[BENCH_NR_KINDS];
	char scratch[4096];
	const char *qemu, *kernel;
	char kernel_buf[4096];
	const char *qemu_why; /* why the QEMU column does not run */
	uint64_t tsc_khz;
	bool progress, fio;
	struct bench_case *cases;
	unsigned int nr_cases;
	struct bench_run *runs;
	size_t nr_runs;
	unsigned int failed;
};

static void bench_usage(FILE *f, const struct parse_opt *opts)
{
	fprintf(f,
		"usage: kvmsnap bench [--dir DIR] [--ram LIST] [--ws LIST] [--rate LIST]\n"
		"                     [--pattern LIST] [--vcpus LIST] [--target LIST]\n"
		"                     [--kinds LIST] [--rounds N] [--csv FILE] [--json FILE]\n"
		"                     [--plot DIR] [...]\n"
		"\n"
		"Live-snapshot the same dirtier workload three ways, in the same run: into\n"
		"kvmsnap's fixed image (fixed), appending every pass to a growing file with the\n"
		"same engine (append), and with QEMU's classic live save to a file (qemu, when\n"
		"qemu-system-x86_64 is installed). Every combination of the LIST values is a\n"
		"case; each runs --rounds times, and each round first measures the target's\n"
		"sequential write limit (fio if installed, else an O_DIRECT probe of its own).\n"
		"The table gives medians with their range; --csv and --json give every run.\n"
		"\n");
	parse_options__usage(f, opts);
	fprintf(f, "\nThe kvmsnap columns run the Multiboot build of the dirtier, the very binary\n"
		   "QEMU runs, when the case has one vCPU; with more vCPUs they run the built-in\n"
		   "dirtier and the qemu column is left out. Needs /dev/kvm; the loop target and\n"
		   "--install need root. A case needs about 3 x RAM free in DIR.\n");
	exit_status__usage(f, EXIT_STATUS_REQUEST);
}

static int bench_parse(int argc, char **argv, struct bench_opts *o)
{
	const struct parse_opt opts[] = {
	    OPT_STRING(0, "dir", &o->dir, "DIR",
		       "where the images and files go, default /var/tmp\n"
		       "(a scratch folder is made in it and removed after)"),
	    OPT_STRING(0, "ram", &o->ram, "LIST", "guest RAM sizes, default 1G"),
	    OPT_STRING(0, "ws", &o->ws, "LIST", "working sets, default 512M"),
	    OPT_STRING(0, "rate", &o->rate, "LIST",
		       "dirty rates in pages/ms, 0 = as fast as the guest can;\n"
		       "default 50"),
	    OPT_STRING(0, "pattern", &o->pattern, "LIST",
		       "seq, random or hot (90% of writes to 10% of the set);\n"
		       "default random"),
	    OPT_STRING(0, "vcpus", &o->vcpus, "LIST", "vCPUs, default 1"),
	    OPT_STRING(0, "target", &o->target, "LIST",
		       "file (a file in DIR) or loop (a loop device on a file\n"
		       "in DIR; root); default file"),
	    OPT_STRING(0, "kinds", &o->kinds, "LIST",
		       "which of fixed, append, qemu to run; default all"),
	    OPT_UINT(0, "rounds", &o->rounds, "N", 1, 50, "rounds per case, default 3"),
	    OPT_UINT(0, "warm", &o->warm_ms, "MS", 0, 600000,
		     "the guest runs this long before each save, default 2000"),
	    OPT_UINT(0, "max-downtime", &o->max_downtime_ms, "MS", 1, 60000,
		     "the downtime target of every save, default 20"),
	    OPT_UINT(0, "max-time", &o->max_time_s, "SECONDS", 1, 3600,
		     "precopy time limit of every save, default 60"),
	    OPT_SIZE(0, "dirty-limit", &o->dirty_limit, "SIZE",
		     "kvmsnap saves hold the guest under SIZE bytes/s from\n"
		     "pass 1 on (snapshot --dirty-limit); QEMU's do not",
		     .min = 4096),
	    OPT_STRING(0, "kernel", &o->kernel, "FILE",
		       "the Multiboot dirtier (default: guests/dirtier-mb.elf\n"
		       "next to this kvmsnap binary)"),
	    OPT_BOOL(0, "builtin-guest", &o->builtin_guest,
		     "kvmsnap columns run the built-in dirtier instead"),
	    OPT_BOOL(0, "no-restore", &o->no_restore, "do not time restores"),
	    OPT_BOOL(0, "no-fio", &o->no_fio, "measure the target with the O_DIRECT probe"),
	    OPT_BOOL(0, "install", &o->install,
		     "apt-get install fio (and gnuplot for --plot) if missing"),
	    OPT_STRING(0, "csv", &o->csv, "FILE", "every run as CSV (- for stdout)"),
	    OPT_STRING(0, "json", &o->json, "FILE", "every run as JSON (- for stdout)"),
	    OPT_STRING(0, "plot", &o->plot, "DIR", "PNG plots (gnuplot) and their data into DIR"),
	    OPT_BOOL(0, "keep", &o->keep, "keep the scratch folder"),
	    OPT_BOOL(0, "no-progress", &o->no_progress, "no progress line on a terminal"),
	    OPT_END(),
	};

	o->dir = "/var/tmp";
	o->ram = "1G";
	o->ws = "512M";
	o->rate = "50";
	o->pattern = "random";
	o->vcpus = "1";
	o->target = "file";
	o->kinds = "fixed,append,qemu";
	o->rounds = 3;
	o->warm_ms = 2000;
	o->max_downtime_ms = 20;
	o->max_time_s = 60;
	return builtin__parse_options(argc, argv, "bench", opts, bench_usage);
}

static int bench_setup_grid(struct bench_state *s, struct error *err)
{
	struct bench_grid *g = &s->grid;
	uint64_t v[BENCH_MAX_VALUES];
	unsigned int kinds[BENCH_MAX_VALUES], nr_kinds, i;
	int ret;

	ret = bench_grid__sizes(s->o.ram, g->ram, &g->nr_ram, err);
	if (ret)
		return err_prefix(err, "--ram");
	for (i = 0; i < g->nr_ram; i++)
		if (g->ram[i] < (32ULL << 20) || g->ram[i] > (64ULL << 30))
			return err_set(err, -EINVAL, "--ram: sizes from 32M to 64G");
	ret = bench_grid__sizes(s->o.ws, g->ws, &g->nr_ws, err);
	if (ret)
		return err_prefix(err, "--ws");
	ret = bench_grid__uints(s->o.rate, 0, 1U << 30, g->rate, &g->nr_rate, err);
	if (ret)
		return err_prefix(err, "--rate");
	ret = bench_grid__names(s->o.pattern, bench_pattern_names, g->pattern, &g->nr_pattern, err);
	if (ret)
		return err_prefix(err, "--pattern");
	ret = bench_grid__uints(s->o.vcpus, 1, 64, v, &g->nr_vcpus, err);
	if (ret)
		return err_prefix(err, "--vcpus");
	for (i = 0; i < g->nr_vcpus; i++)
		g->vcpus[i] = (unsigned int)v[i];
	ret = bench_grid__names(s->o.target, bench_target_names, g->target, &g->nr_target, err);
	if (ret)
		return err_prefix(err, "--target");
	ret = bench_grid__names(s->o.kinds, bench_kind_names, kinds, &nr_kinds, err);
	if (ret)
		return err_prefix(err, "--kinds");
	for (i = 0; i < nr_kinds; i++)
		s->kinds[kinds[i]] = true;
	ret = bench_grid__check(g, err);
	if (ret)
		return ret;
	s->nr_cases = bench_grid__count(g);
	s->cases = calloc(s->nr_cases, sizeof(*s->cases));
	s->runs = calloc((size_t)s->nr_cases * s->o.rounds * BENCH_NR_KINDS, sizeof(*s->runs));
	if (!s->cases || !s->runs)
		return err_set(err, -ENOMEM, "out of memory");
	for (i = 0; i < s->nr_cases; i++)
		bench_grid__case(g, i, &s->cases[i]);
	return 0;
}

static bool in_path(const char *prog)
{
	char path[4096];

	return bench_proc__which(prog, path, sizeof(path));
}

/* apt-get install pkg for prog, when asked and root. */
static int bench_install(struct bench_state *s, const char *prog, const char *pkg,
			 struct error *err)
{
	const char *update[] = {"apt-get", "update", NULL};
	const char *install[] = {"apt-get", "install", "-y", pkg, NULL};
	int ret;

	if (in_path(prog))
		return 0;
	if (!s->o.install)
		return -ENOENT;
	if (geteuid())
		return err_set(err, -EPERM, "--install: apt-get needs root to install %s", pkg);
	pr_info("bench: installing %s", pkg);
	ret = bench_proc__run(install, 600 * 1000, NULL, s->scratch, err);
	if (ret) {
		ret = bench_proc__run(update, 600 * 1000, NULL, s->scratch, err);
		if (!ret)
			ret = bench_proc__run(install, 600 * 1000, NULL, s->scratch, err);
	}
	return ret;
}

/* The host's TSC rate as KVM gives it to a vCPU: the dirtier's pacing clock. */
static int host_tsc_khz(uint64_t *khz, struct error *err)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1, cpu = -1, ret;

	if (kvm < 0)
		return err_errno(err, errno, "/dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm >= 0)
		cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	ret = cpu >= 0 ? ioctl(cpu, KVM_GET_TSC_KHZ, 0) : -1;
	if (ret <= 0)
		ret = err_errno(err, errno ? errno : EINVAL, "KVM_GET_TSC_KHZ");
	else
		*khz = (uint64_t)ret;
	if (cpu >= 0)
		close(cpu);
	if (vm >= 0)
		close(vm);
	close(kvm);
	return ret < 0 ? ret : 0;
}

/* The Multiboot dirtier and QEMU: what the same-binary comparison needs. */
static void bench_find_peers(struct bench_state *s)
{
	char self[4096];

	if (s->o.kernel) {
		s->kernel = s->o.kernel;
	} else {
		snprintf(self, sizeof(self), "%s", bench_proc__self());
		snprintf(s->kernel_buf, sizeof(s->kernel_buf), "%s/guests/dirtier-mb.elf",
			 dirname(self));
		if (!access(s->kernel_buf, R_OK))
			s->kernel = s->kernel_buf;
	}
	s->qemu = bench_qemu__find();
	if (!s->kinds[BENCH_QEMU])
		s->qemu_why = "not asked for";
	else if (!s->qemu)
		s->qemu_why = "qemu-system-x86_64 is not installed";
	else if (!s->kernel)
		s->qemu_why = "no Multiboot dirtier (build it with make, or give --kernel)";
}

static void bench_progress(struct bench_state *s, unsigned int ci, unsigned int round,
			   const char *what)
{
	char desc[160];

	if (!s->progress)
		return;
	bench_case__describe(&s->cases[ci], desc, sizeof(desc));
	fprintf(stderr, "\r\033[Kbench: case %u/%u (%s) round %u/%u: %s", ci + 1, s->nr_cases, desc,
		round + 1, s->o.rounds, what);
	fflush(stderr);
}

static struct bench_run *new_run(struct bench_state *s, unsigned int ci, unsigned int round,
				 enum bench_kind kind, uint64_t image_size, double target_mib_s)
{
	struct bench_run *r = &s->runs[s->nr_runs++];

	r->case_idx = ci;
	r->round = round;
	r->kind = kind;
	r->image_size = image_size;
	r->target_mib_s = target_mib_s;
	return r;
}

static void run_failed(struct bench_state *s, struct bench_run *r, const struct error *err)
{
	snprintf(r->note, sizeof(r->note), "%.*s", (int)sizeof(r->note) - 1, err->msg);
	r->ok = false;
	s->failed++;
	if (s->progress)
		fprintf(stderr, "\n");
	pr_warn("bench: %s: %s", bench_kind_names[r->kind], err->msg);
}

/* One kvmsnap column of one round: a fresh VM, warmed, then saved. */
static void bench_kvmsnap_run(struct bench_state *s, unsigned int ci, unsigned int round,
			      enum bench_kind kind, const char *image, uint64_t image_size,
			      double target)
{
	const struct bench_case *c = &s->cases[ci];
	struct bench_vm_opts vo = {
	    .dir = s->scratch,
	    .kernel = c->vcpus == 1 && !s->o.builtin_guest ? s->kernel : NULL,
	    .tsc_khz = s->tsc_khz,
	    .warm_ms = s->o.warm_ms,
	    .max_downtime_ms = s->o.max_downtime_ms,
	    .max_time_s = s->o.max_time_s,
	    .dirty_limit = s->o.dirty_limit,
	    .image = image,
	    .restore = !s->o.no_restore,
	};
	struct bench_run *r = new_run(s, ci, round, kind, image_size, target);
	struct bench_vm *vm = NULL;
	struct error err;
	int ret;

	bench_progress(s, ci, round, bench_kind_names[kind]);
	ret = bench_vm__start(&vm, c, &vo, &err);
	if (!ret)
		ret = bench_vm__rate(vm, &r->guest_pps, &err);
	if (!ret)
		ret = bench_vm__save(vm, kind, r, &err);
	bench_vm__stop(vm);
	if (ret)
		run_failed(s, r, &err);
	else if (!vo.kernel)
		strncat(r->note, ", built-in dirtier", sizeof(r->note) - strlen(r->note) - 1);
}

static void bench_qemu_run(struct bench_state *s, unsigned int ci, unsigned int round,
			   double target, double guest_pps)
{
	const struct bench_case *c = &s->cases[ci];
	char cmdline[160], file[4200];
	struct bench_qemu_opts qo = {
	    .qemu = s->qemu,
	    .kernel = s->kernel,
	    .append = cmdline,
	    .ram = c->ram,
	    .vcpus = c->vcpus,
	    .dir = s->scratch,
	    .file = file,
	    .ready_pages = bench_ready_pages(c),
	    .warm_ms = s->o.warm_ms,
	    .max_downtime_ms = s->o.max_downtime_ms,
	    .max_time_s = s->o.max_time_s,
	    .auto_converge = true,
	    .restore = !s->o.no_restore,
	};
	struct bench_qemu_result q = {0};
	struct bench_run *r = new_run(s, ci, round, BENCH_QEMU, 0, target);
	struct error err;
	size_t i;

	bench_progress(s, ci, round, "qemu");
	bench_vm__cmdline(c, s->tsc_khz, cmdline, sizeof(cmdline));
	snprintf(file, sizeof(file), "%s/qemu-%u-%u.state", s->scratch, ci + 1, round + 1);
	r->guest_pps = guest_pps; /* the same binary and workload, measured under kvmsnap */
	if (bench_qemu__run(&qo, &q, &err)) {
		run_failed(s, r, &err);
		free(q.samples);
		unlink(file);
		return;
	}
	r->ok = q.completed;
	r->converged = q.completed;
	r->total_ms = q.total_ms;
	r->downtime_ms = q.downtime_ms;
	r->restore_ms = q.restore_ms;
	r->bytes = q.transferred;
	r->pages = q.transferred / 4096;
	r->passes = q.passes;
	r->file_bytes = q.file_bytes;
	r->samples = q.samples;
	r->nr_samples = q.nr_samples;
	for (i = 0; i < r->nr_samples; i++)
		if (r->samples[i].bytes > r->file_bytes)
			r->file_bytes = r->samples[i].bytes;
	snprintf(r->note, sizeof(r->note), "QEMU: %s", q.status);
	if (!r->ok) {
		s->failed++;
		pr_warn("bench: qemu: migration ended %s", q.status);
	}
	unlink(file);
}

/* A loop device on a new file of size bytes in the scratch folder. */
static int loop_attach(struct bench_state *s, uint64_t size, char *dev, size_t len,
		       struct error *err)
{
	char file[4200];
	const char *argv[] = {"losetup", "--find", "--show", "--direct-io=on", file, NULL};
	char *out = NULL;
	int fd, ret;

	if (geteuid())
		return err_set(err, -EPERM, "the loop target needs root (losetup)");
	snprintf(file, sizeof(file), "%s/loop-backing.img", s->scratch);
	fd = open(file, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(err, errno, "%s", file);
	ret = posix_fallocate(fd, 0, (off_t)size);
	close(fd);
	if (ret)
		return err_errno(err, ret, "%s: fallocate", file);
	ret = bench_proc__run(argv, 60 * 1000, &out, s->scratch, err);
	if (!ret) {
		snprintf(dev, len, "%s", out ? out : "");
		dev[strcspn(dev, "\n")] = '\0';
		if (strncmp(dev, "/dev/loop", 9))
			ret = err_set(err, -EIO, "losetup printed no loop device");
	}
	free(out);
	return ret;
}

static void loop_detach(struct bench_state *s, const char *dev)
{
	const char *argv[] = {"losetup", "--detach", dev, NULL};
	char file[4200];
	struct error err;

	if (bench_proc__run(argv, 60 * 1000, NULL, s->scratch, &err))
		pr_warn("bench: %s", err.msg);
	snprintf(file, sizeof(file), "%s/loop-backing.img", s->scratch);
	unlink(file);
}

/* `kvmsnap image create` for the case; its size in *size. */
static int bench_image(struct bench_state *s, const struct bench_case *c, const char *image,
		       uint64_t *size, struct error *err)
{
	char mem[32], vcpus[16], *out = NULL;
	const char *argv[] = {bench_proc__self(), "image", "create",  image,	"--mem", mem,
			      "--vcpus",	  vcpus,   "--force", "--json", NULL};
	struct stat st;
	int ret;

	snprintf(mem, sizeof(mem), "%lluK", (unsigned long long)(c->ram >> 10));
	snprintf(vcpus, sizeof(vcpus), "%u", c->vcpus);
	ret = bench_proc__run(argv, 600 * 1000, &out, s->scratch, err);
	if (!ret) {
		const char *p = out ? strstr(out, "\"image_size\"") : NULL;

		if (!p || sscanf(strchr(p, ':') + 1, "%llu", (unsigned long long *)size) != 1)
			ret = err_set(err, -EPROTO, "image create: no image_size in its output");
	}
	free(out);
	if (!ret && !stat(image, &st) && S_ISREG(st.st_mode) && (uint64_t)st.st_size != *size)
		ret = err_set(err, -EIO, "image create: %s is %lld bytes, not %llu", image,
			      (long long)st.st_size, (unsigned long long)*size);
	return ret;
}

static int bench_case_run(struct bench_state *s, unsigned int ci, struct error *err)
{
	const struct bench_case *c = &s->cases[ci];
	char image[4200], probe_path[4200];
	uint64_t image_size = 0;
	unsigned int round, k;
	int ret;

	if (c->target == BENCH_TARGET_LOOP) {
		struct error e;

		/* image size first, to size the loop device: a throwaway file. */
		snprintf(image, sizeof(image), "%s/size-probe.img", s->scratch);
		ret = bench_image(s, c, image, &image_size, &e);
		unlink(image);
		if (!ret)
			ret = loop_attach(s, image_size, image, sizeof(image), &e);
		if (ret)
			return err_set(err, ret, "%s", e.msg);
	} else {
		snprintf(image, sizeof(image), "%s/fixed-%u.img", s->scratch, ci + 1);
	}
	ret = bench_image(s, c, image, &image_size, err);
	snprintf(probe_path, sizeof(probe_path), "%s/probe.dat", s->scratch);
	for (round = 0; !ret && round < s->o.rounds; round++) {
		struct bench_probe p = {0};
		double pps = 0;
		size_t first = s->nr_runs;

		bench_progress(s, ci, round, "measuring the target");
		ret = bench_probe__run(probe_path,
				       image_size < (1ULL << 30) ? image_size : (1ULL << 30),
				       s->fio, &p, err);
		if (ret)
			break;
		/* Rotate the order of the kinds: drift favours no one. */
		for (k = 0; k < BENCH_NR_KINDS; k++) {
			enum bench_kind kind = (k + round) % BENCH_NR_KINDS;

			if (!s->kinds[kind])
				continue;
			if (kind == BENCH_QEMU) {
				if (s->qemu_why || c->vcpus > 1 || c->target != BENCH_TARGET_FILE)
					continue;
				/* The guest rate QEMU's run shares: this round's kvmsnap one. */
				bench_qemu_run(s, ci, round, p.seq_mib_s, pps);
				continue;
			}
			if (kind == BENCH_APPEND && c->target != BENCH_TARGET_FILE)
				continue;
			bench_kvmsnap_run(s, ci, round, kind, image, image_size, p.seq_mib_s);
			if (s->runs[s->nr_runs - 1].ok)
				pps = s->runs[s->nr_runs - 1].guest_pps;
		}
		/* QEMU ran first this round: give it the rate measured after it. */
		for (; first < s->nr_runs; first++)
			if (s->runs[first].kind == BENCH_QEMU && !s->runs[first].guest_pps)
				s->runs[first].guest_pps = pps;
	}
	if (c->target == BENCH_TARGET_LOOP)
		loop_detach(s, image);
	else
		unlink(image);
	return ret;
}

static bool bench_loop_case(const struct bench_case *c)
{
	return c->target == BENCH_TARGET_LOOP;
}

static bool bench_smp_case(const struct bench_case *c)
{
	return c->vcpus > 1;
}

static bool has_case(const struct bench_state *s, bool (*match)(const struct bench_case *c))
{
	unsigned int i;

	for (i = 0; i < s->nr_cases; i++)
		if (match(&s->cases[i]))
			return true;
	return false;
}

static void bench_report(struct bench_state *s)
{
	char desc[64];

	if (s->progress)
		fprintf(stderr, "\r\033[K");
	printf("kvmsnap bench: %u case(s), %u round(s); target limit by %s (sequential 1 MiB "
	       "O_DIRECT writes%s, over written blocks, fsync'd)\n",
	       s->nr_cases, s->o.rounds, s->fio ? "fio" : "the O_DIRECT probe",
	       s->fio ? ", 8 in flight" : ", 1 in flight");
	if (s->kinds[BENCH_QEMU])
		printf("qemu: %s\n", s->qemu_why ? s->qemu_why : s->qemu);
	snprintf(desc, sizeof(desc), "%s", s->kernel ? s->kernel : "none");
	printf("guest: %s (Multiboot dirtier, 1-vCPU cases), tsc %llu kHz\n", desc,
	       (unsigned long long)s->tsc_khz);
	if (s->o.dirty_limit)
		printf("kvmsnap saves: --dirty-limit %llu bytes/s (the guest held from pass 1 on; "
		       "QEMU's saves have no such limit)\n",
		       (unsigned long long)s->o.dirty_limit);
	printf("medians (min-max); total = save until durable; write / target = bytes "
	       "written per second of total / the target's limit\n");
	bench_output__table(stdout, s->cases, s->nr_cases, s->runs, s->nr_runs);
	if ((s->kinds[BENCH_APPEND] || s->kinds[BENCH_QEMU]) && has_case(s, bench_loop_case))
		printf("\nloop cases: fixed only (append and qemu need a file that grows)\n");
	if (s->kinds[BENCH_QEMU] && !s->qemu_why && has_case(s, bench_smp_case))
		printf("\ncases of more vCPUs: no qemu column (the Multiboot dirtier runs on vCPU "
		       "0 only)\n");
}

static int bench_outputs(struct bench_state *s, struct error *err)
{
	char host[256] = "";
	struct bench_env env = {
	    .dir = s->o.dir,
	    .probe_tool = s->fio ? "fio" : "O_DIRECT probe",
	    .qemu = s->qemu_why ? NULL : s->qemu,
	    .kernel = s->kernel,
	    .host = host,
	    .rounds = s->o.rounds,
	    .cpus = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN),
	    .tsc_khz = s->tsc_khz,
	    .dirty_limit = s->o.dirty_limit,
	};
	int ret;

	gethostname(host, sizeof(host) - 1);
	if (s->o.csv) {
		ret = bench_output__csv(s->o.csv, s->cases, s->runs, s->nr_runs, err);
		if (ret)
			return ret;
	}
	if (s->o.json) {
		ret = bench_output__json(s->o.json, &env, s->cases, s->nr_cases, s->runs,
					 s->nr_runs, err);
		if (ret)
			return ret;
	}
	if (s->o.plot) {
		if (mkdir(s->o.plot, 0755) && errno != EEXIST)
			return err_errno(err, errno, "--plot %s", s->o.plot);
		ret = bench_plot__write(s->o.plot, s->cases, s->nr_cases, s->runs, s->nr_runs, err);
		if (ret)
			return err_prefix(err, "--plot");
	}
	return 0;
}

static void bench_free(struct bench_state *s)
{
	size_t i;

	for (i = 0; i < s->nr_runs; i++)
		free(s->runs[i].samples);
	free(s->runs);
	free(s->cases);
	if (s->scratch[0] && !s->o.keep) {
		const char *argv[] = {"rm", "-rf", "--one-file-system", s->scratch, NULL};
		struct error err;

		if (bench_proc__run(argv, 120 * 1000, NULL, "/tmp", &err))
			pr_warn("bench: %s", err.msg);
	} else if (s->scratch[0]) {
		pr_info("bench: kept %s", s->scratch);
	}
}

/* An output file that could not be written: found now, not after the run. */
static int check_output(const char *opt, const char *path, struct error *err)
{
	char dir[4096];

	if (!path || !strcmp(path, "-"))
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	if (access(dirname(dir), W_OK))
		return err_errno(err, errno, "%s %s: its folder", opt, path);
	return 0;
}

/* Everything that can be refused before a VM starts. */
static int bench_prepare(struct bench_state *s, struct error *err)
{
	int ret = bench_setup_grid(s, err);

	if (!ret)
		ret = check_output("--csv", s->o.csv, err);
	if (!ret)
		ret = check_output("--json", s->o.json, err);
	if (ret)
		return ret;
	if (access("/dev/kvm", R_OK | W_OK))
		return err_errno(err, errno, "/dev/kvm");
	ret = host_tsc_khz(&s->tsc_khz, err);
	if (ret)
		return ret;
	snprintf(s->scratch, sizeof(s->scratch), "%s/kvmsnap-bench.XXXXXX", s->o.dir);
	if (!mkdtemp(s->scratch)) {
		ret = err_errno(err, errno, "--dir %s", s->o.dir);
		s->scratch[0] = '\0';
		return ret;
	}
	/* The VMs drop to nobody: their sockets and logs go here. */
	chmod(s->scratch, 0755);
	s->fio = !s->o.no_fio;
	if (s->fio) {
		ret = bench_install(s, "fio", "fio", err);
		if (ret == -ENOENT) {
			pr_info("bench: fio is not installed (--install installs it): the O_DIRECT "
				"probe measures the target");
			s->fio = false;
		} else if (ret) {
			return ret;
		}
	}
	if (s->o.plot) {
		ret = bench_install(s, "gnuplot", "gnuplot-nox", err);
		if (ret == -ENOENT)
			return err_set(err, ret,
				       "--plot needs gnuplot: apt-get install gnuplot-nox, or add "
				       "--install");
		if (ret)
			return ret;
	}
	bench_find_peers(s);
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_state s = {0};
	struct error err;
	unsigned int ci;
	int ret;

	ret = bench_parse(argc, argv, &s.o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	s.progress = !s.o.no_progress && isatty(STDERR_FILENO);
	ret = bench_prepare(&s, &err);
	if (ret) {
		pr_err("bench: %s", err.msg);
		bench_free(&s);
		return EXIT_USAGE;
	}
	for (ci = 0; ci < s.nr_cases; ci++) {
		ret = bench_case_run(&s, ci, &err);
		if (ret) {
			if (s.progress)
				fprintf(stderr, "\n");
			pr_err("bench: case %u: %s", ci + 1, err.msg);
			s.failed++;
		}
	}
	bench_report(&s);
	ret = bench_outputs(&s, &err);
	if (ret) {
		pr_err("bench: %s", err.msg);
		s.failed++;
	}
	bench_free(&s);
	return s.failed ? EXIT_FAILED : EXIT_OK;
}
