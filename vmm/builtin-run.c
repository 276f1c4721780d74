// SPDX-License-Identifier: GPL-2.0
/* kvmsnap run: build the PC, load a guest, run it until it ends. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "builtin.h"
#include "guests.h"
#include "kvm.h"
#include "layout.h"
#include "loader/kcache.h"
#include "loader/loader.h"
#include "live-snapshot/manager.h"
#include "pc.h"
#include "snapshot/throttle.h"
#include "util/util.h"
#include "vm-setup.h"

#define MAX_INITRDS 16

struct run_opts {
	struct pc_config pc;
	const char *guest_text; /* --guest SPEC */
	struct guest_spec guest;
	bool have_guest;
	struct kernel_args kernel;
	const char *initrds[MAX_INITRDS];
	const char *kernel_cache; /* --kernel-cache DIR|none */
	char cache_dir[4096];
	char *initrd_list;
	const char *control;
	const char *serial;
	const char *kvm_dev;
	const char *user;
	bool keep_caps;
	const char *snapshot;	 /* --snapshot IMAGE */
	uint64_t snapshot_after; /* seconds */
	const char *checkpoint;	 /* --checkpoint IMAGE */
	uint64_t every_ms;	 /* --every */
	char tmpdir[64];	 /* private control socket for --snapshot without --control */
	char tmpsock[96];
};

static void run_usage(FILE *f, const struct parse_opt *opts)
{
	const struct builtin_guest *g;
	unsigned int nr, i, j;

	fprintf(
	    f,
	    "usage: kvmsnap run [--mem SIZE] [--vcpus N] [--vram SIZE]\n"
	    "                   (--guest NAME[:key=value,...] | --kernel FILE [--append STR] "
	    "[--initrd FILE[,FILE...]]\n"
	    "                    [--decompress host|guest] [--kernel-cache DIR|none])\n"
	    "                   [--control PATH] [--serial stdio|FILE|none] [--user USER[:GROUP]]\n"
	    "                   [--keep-caps] [-v]\n"
	    "\n"
	    "Run a guest on KVM until it exits, `kvmsnap ctl PATH quit` is sent, or a\n"
	    "SIGINT/SIGTERM arrives.\n"
	    "\n");
	parse_options__usage(f, opts);
	fprintf(f, "\nBuilt-in guests:\n");
	g = guests__table(&nr);
	for (i = 0; i < nr; i++) {
		fprintf(f, "  %-10s %s\n", g[i].name, g[i].help);
		for (j = 0; j < g[i].nr_params; j++)
			fprintf(f, "      %-8s %s\n", g[i].params[j].key, g[i].params[j].help);
	}
	exit_status__usage(f, EXIT_STATUS_VM);
}

/* --initrd FILE[,FILE...]: opt->value is the struct run_opts. */
static int parse_initrds(const struct parse_opt *opt, const char *list, struct error *err)
{
	struct run_opts *o = opt->value;
	char *tok, *save;

	free(o->initrd_list);
	o->initrd_list = strdup(list);
	if (!o->initrd_list)
		return err_set(err, -ENOMEM, "--initrd: out of memory");
	o->kernel.nr_initrds = 0;
	for (tok = strtok_r(o->initrd_list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->kernel.nr_initrds >= MAX_INITRDS)
			return err_set(err, -EINVAL, "--initrd: more than %d files", MAX_INITRDS);
		o->initrds[o->kernel.nr_initrds++] = tok;
	}
	o->kernel.initrds = o->initrds;
	return 0;
}

/* In the order of enum kernel_unpack. */
static const char *const unpack_modes[] = {"host", "guest", NULL};

/* Returns 0, 1 for --help (already printed), or -EINVAL (reported). */
static int run_parse(int argc, char **argv, struct run_opts *o)
{
	const struct parse_opt opts[] = {
	    PC_OPTIONS(&o->pc, NULL),
	    OPT_STRING(0, "guest", &o->guest_text, "SPEC", "a built-in test guest (below)"),
	    OPT_STRING(0, "kernel", &o->kernel.path, "FILE",
		       "a Linux bzImage (64-bit boot protocol), a Multiboot v1\n"
		       "kernel (entered as the spec says) or an ELF64 kernel\n"
		       "(entered in 64-bit mode)"),
	    OPT_STRING(0, "append", &o->kernel.append, "STR",
		       "kernel command line (Linux: default console=ttyS0 pci=off)"),
	    OPT_ENUM(0, "decompress", &o->kernel.unpack, "WHERE", unpack_modes,
		     "a bzImage's compressed kernel: host (default) unpacks xz,\n"
		     "lzma, gzip and zstd in kvmsnap and enters the vmlinux;\n"
		     "guest, and other codecs, run the kernel's decompressor"),
	    OPT_STRING(0, "kernel-cache", &o->kernel_cache, "DIR",
		       "where kernels unpacked on the host are kept for the next\n"
		       "boot (default $XDG_CACHE_HOME/kvmsnap or ~/.cache/kvmsnap,\n"
		       "about 65 MiB per kernel); none: never"),
	    OPT_CALLBACK(0, "initrd", o, "FILES", parse_initrds,
			 "comma-separated: Linux's initrd (the files back to\n"
			 "back) or Multiboot modules"),
	    OPT_STRING(0, "snapshot", &o->snapshot, "IMAGE",
		       "take a live snapshot into IMAGE once the guest has run for\n"
		       "--snapshot-after SECONDS (default 1), as `kvmsnap snapshot`\n"
		       "would; the guest runs on afterwards"),
	    OPT_UINT(0, "snapshot-after", &o->snapshot_after, "SECONDS", 0, 86400,
		     "seconds before --snapshot starts, default 1", .unit = "seconds"),
	    OPT_STRING(0, "checkpoint", &o->checkpoint, "IMAGE",
		       "keep the VM checkpointed in IMAGE: an incremental snapshot\n"
		       "into alternating slots every --every SECONDS, as\n"
		       "`kvmsnap snapshot --incremental --every` would"),
	    OPT_UINT(0, "every", &o->every_ms, "SECONDS", 1, 86400,
		     "seconds between --checkpoint snapshots, default 10", .unit = "seconds",
		     .scale = 1000),
	    VM_OPTIONS(o),
	    OPT_END(),
	};
	struct error err;
	int ret;

	o->pc.ram_size = 256 * MiB;
	o->pc.vram_size = VRAM_DEFAULT;
	o->pc.nr_cpus = 1;
	o->snapshot_after = 1;
	o->every_ms = 10000;
	VM_OPTIONS_DEFAULTS(o);
	ret = builtin__parse_options(argc, argv, "run", opts, run_usage);
	if (ret)
		return ret;
	if (o->guest_text) {
		o->have_guest = true;
		if (guests__parse(o->guest_text, &o->guest, &err)) {
			pr_err("%s", err.msg);
			return -EINVAL;
		}
	}
	if (o->have_guest == !!o->kernel.path) {
		pr_err("run: give exactly one of --guest NAME or --kernel FILE");
		return -EINVAL;
	}
	if (!o->kernel.path &&
	    (o->kernel.append || o->kernel.nr_initrds || o->kernel.unpack || o->kernel_cache)) {
		pr_err("run: --append, --initrd, --decompress and --kernel-cache go with --kernel");
		return -EINVAL;
	}
	if (o->kernel_cache && !o->kernel_cache[0]) {
		pr_err("run: --kernel-cache: give a folder, or none");
		return -EINVAL;
	}
	if (o->kernel_cache && strcmp(o->kernel_cache, "none"))
		o->kernel.cache_dir = o->kernel_cache;
	else if (!o->kernel_cache && !kcache__default_dir(o->cache_dir, sizeof(o->cache_dir)))
		o->kernel.cache_dir = o->cache_dir;
	if (o->snapshot && o->checkpoint) {
		pr_err("run: give --snapshot or --checkpoint, not both");
		return -EINVAL;
	}
	if (pc__check_config(&o->pc, &err)) {
		pr_err("%s", err.msg);
		return -EINVAL;
	}
	return 0;
}

/* --snapshot without --control: serve a private socket in a private folder. */
static int private_control(struct run_opts *o)
{
	strcpy(o->tmpdir, "/tmp/kvmsnap-XXXXXX");
	if (!mkdtemp(o->tmpdir)) {
		pr_err("cannot create a folder for the control socket: %s", strerror(errno));
		o->tmpdir[0] = '\0';
		return -errno;
	}
	snprintf(o->tmpsock, sizeof(o->tmpsock), "%s/control", o->tmpdir);
	o->control = o->tmpsock;
	return 0;
}

/*
 * Fork the snapshot manager for --snapshot. Forked before any thread starts
 * and before the lock-down, so that it connects as the caller and opens the
 * image as the caller could; it locks itself down once it has. It keeps
 * only stdio, waits, then drives the snapshot over the control socket like
 * `kvmsnap snapshot` does. Returns its pid, or -errno.
 */
static pid_t start_snapshot_child(const struct run_opts *o)
{
	struct manager_opts m = {
	    .image = o->snapshot ? o->snapshot : o->checkpoint,
	    .control = o->control,
	    .incremental = o->checkpoint != NULL,
	    .every_ms = o->checkpoint ? o->every_ms : 0,
	    .target = {.direct = true, .nr_slots = o->checkpoint ? 2 : 1},
	    .snap = {.max_downtime_ms = 20, .max_throttle = SNAP_THROTTLE_MAX},
	    .lock_down = !o->keep_caps,
	    .user = o->user,
	};
	sigset_t all;
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		pr_err("cannot start the snapshot process: %s", strerror(errno));
		return -errno;
	}
	if (pid)
		return pid;
	close_range(3, ~0U, 0);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	sleep((unsigned int)o->snapshot_after);
	status = manager__snapshot(&m);
	/* _exit() drops stdio buffers: the report must reach a file or pipe too. */
	fflush(NULL);
	_exit(status);
}

/* Load the guest: a built-in one or a kernel, with its description for status. */
static int load_guest(struct kvm *kvm, struct run_opts *o, struct error *err)
{
	struct kernel_report rep = {0};
	struct timespec t0, t1;
	long long ms;
	int ret;

	if (o->have_guest) {
		snprintf(kvm->guest_desc, sizeof(kvm->guest_desc), "%s", o->guest.text);
		return guests__load(kvm, &o->guest, err);
	}
	snprintf(kvm->guest_desc, sizeof(kvm->guest_desc), "kernel %s", o->kernel.path);
	o->kernel.report = &rep;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = loader__load_kernel(&kvm->mem, &o->kernel, &kvm->boot, err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	o->kernel.report = NULL;
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (ret || kvm->boot.mode != BOOT_LINUX64)
		return ret;
	if (rep.cache_note[0] && o->kernel_cache)
		pr_warn("%s; the kernel is unpacked each time", rep.cache_note);
	else if (rep.cache_note[0])
		pr_debug("%s", rep.cache_note);
	if (rep.cached)
		pr_debug("kernel: %s payload mapped from the kernel cache %s, loaded in %lld ms",
			 rep.codec, o->kernel.cache_dir, ms);
	else if (rep.unpacked)
		pr_debug("kernel: %s payload unpacked on the host to %llu bytes in %lld ms%s%s",
			 rep.codec, (unsigned long long)rep.unpacked_bytes, ms,
			 rep.stored ? ", kept in " : "", rep.stored ? o->kernel.cache_dir : "");
	else
		pr_debug("kernel: %s payload left to the kernel's decompressor", rep.codec);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {0};
	struct vm_setup_opts vo;
	struct vm_setup vs;
	struct error err;
	int ret, status = EXIT_VMM_ERROR;
	pid_t snap_pid = 0;

	vm_setup__init(&vs);
	ret = run_parse(argc, argv, &o);
	if (ret) {
		free(o.initrd_list);
		return ret > 0 ? 0 : EXIT_VMM_ERROR;
	}
	if ((o.snapshot || o.checkpoint) && !o.control && private_control(&o))
		goto out;
	vo = (struct vm_setup_opts){.pc = o.pc,
				    .kvm_dev = o.kvm_dev,
				    .control = o.control,
				    .serial = o.serial,
				    .user = o.user,
				    .keep_caps = o.keep_caps,
				    .control_dir = o.tmpdir[0] ? o.tmpdir : NULL};
	if (vm_setup__open(&vs, &vo, &err) || vm_setup__create(&vs, &vo, &err) ||
	    vm_setup__add_cpus(&vs, &vo, &err) || load_guest(&vs.kvm, &o, &err) ||
	    vm_setup__add_devices(&vs, &err) || kvm_cpu__reset_all(&vs.kvm, &err)) {
		pr_err("%s", err.msg);
		goto out;
	}
	if (o.snapshot || o.checkpoint) {
		snap_pid = start_snapshot_child(&o);
		if (snap_pid < 0)
			goto out;
	}
	if (vm_setup__lock_down(&vs, &vo, &err)) {
		pr_err("%s", err.msg);
		goto out;
	}
	vm_setup__start(&vs, false);
	status = vm_setup__serve(&vs);
out:
	vm_setup__teardown(&vs);
	if (snap_pid > 0) {
		/* A snapshot still running when the VM ends has nothing left to save. */
		if (waitpid(snap_pid, NULL, WNOHANG) == 0) {
			kill(snap_pid, SIGTERM);
			waitpid(snap_pid, NULL, 0);
		}
	}
	/* After a lock-down the keeper removed them, and these fail quietly. */
	if (o.tmpdir[0]) {
		unlink(o.tmpsock);
		rmdir(o.tmpdir);
	}
	free(o.initrd_list);
	return status;
}
