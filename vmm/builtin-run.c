// SPDX-License-Identifier: GPL-2.0
/* kvmsnap run: build the PC, load a guest, run it until it ends. */
#include <errno.h>
#include <getopt.h>
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
#include "loader/loader.h"
#include "manager.h"
#include "pc.h"
#include "util/util.h"
#include "vm-setup.h"

#define MAX_INITRDS 16

struct run_opts {
	struct pc_config pc;
	struct guest_spec guest;
	bool have_guest;
	struct kernel_args kernel;
	const char *initrds[MAX_INITRDS];
	char *initrd_list;
	const char *control;
	const char *serial;
	const char *kvm_dev;
	bool keep_caps;
	const char *snapshot;	 /* --snapshot IMAGE */
	uint64_t snapshot_after; /* seconds */
	char tmpdir[64];	 /* private control socket for --snapshot without --control */
	char tmpsock[96];
};

static void run_usage(FILE *f)
{
	const struct builtin_guest *g;
	unsigned int nr, i, j;

	fprintf(
	    f,
	    "usage: kvmsnap run [--mem SIZE] [--vcpus N] [--vram SIZE]\n"
	    "                   (--guest NAME[:key=value,...] | --kernel FILE [--append STR] "
	    "[--initrd FILE[,FILE...]])\n"
	    "                   [--control PATH] [--serial stdio|FILE|none] [--keep-caps] [-v]\n"
	    "\n"
	    "Run a guest on KVM until it exits, `kvmsnap ctl PATH quit` is sent, or a\n"
	    "SIGINT/SIGTERM arrives.\n"
	    "\n"
	    "  --mem SIZE        guest RAM (K/M/G suffixes), default 256M, 2M..64G\n"
	    "  --vcpus N         vCPUs, one thread each, default 1, at most %d\n"
	    "  --vram SIZE       VGA video RAM, default 16M, 64K..256M\n"
	    "  --guest SPEC      a built-in test guest (below)\n"
	    "  --kernel FILE     a Multiboot v1 kernel (entered as the spec says) or an\n"
	    "                    ELF64 kernel (entered in 64-bit mode)\n"
	    "  --append STR      kernel command line\n"
	    "  --initrd FILES    Multiboot modules, comma-separated\n"
	    "  --control PATH    serve the JSON control protocol on this UNIX socket\n"
	    "  --serial WHERE    guest serial output: stdio (default), a file, or none\n"
	    "  --kvm-device PATH the KVM device, default /dev/kvm\n"
	    "  --snapshot IMAGE  take a live snapshot into IMAGE once the guest has run for\n"
	    "                    --snapshot-after SECONDS (default 1), as `kvmsnap snapshot`\n"
	    "                    would; the guest runs on afterwards\n"
	    "  --keep-caps       keep capabilities; by default kvmsnap drops every\n"
	    "                    capability and sets no_new_privs once /dev/kvm, the\n"
	    "                    serial file and the control socket are open. Keep them\n"
	    "                    only to debug (e.g. to attach perf or gdb as root);\n"
	    "                    KVMSNAP_KEEP_CAPS=1 in the environment does the same.\n"
	    "  -v, --verbose     debug messages\n"
	    "\n"
	    "Exit status: (v << 1) | 1 when the guest writes v to the debug-exit port 0xf4\n"
	    "or the message port's exit register; 0 after `ctl quit`; 2 for bad input or a\n"
	    "kvmsnap failure; 4 when the guest crashed; 6 when it reported a failed\n"
	    "self-check; 128+N on signal N.\n"
	    "\n"
	    "Built-in guests:\n",
	    VCPUS_MAX);
	g = guests__table(&nr);
	for (i = 0; i < nr; i++) {
		fprintf(f, "  %-10s %s\n", g[i].name, g[i].help);
		for (j = 0; j < g[i].nr_params; j++)
			fprintf(f, "      %-8s %s\n", g[i].params[j].key, g[i].params[j].help);
	}
}

static int parse_size_opt(const char *opt, const char *val, uint64_t *out)
{
	int ret = parse_size(val, out);

	if (ret)
		pr_err("%s %s: %s", opt, val,
		       ret == -ERANGE ? "too large" : "not a size (use e.g. 512M or 2G)");
	return ret;
}

static int parse_initrds(struct run_opts *o, const char *list)
{
	char *tok, *save;

	free(o->initrd_list);
	o->initrd_list = strdup(list);
	if (!o->initrd_list)
		return -ENOMEM;
	o->kernel.nr_initrds = 0;
	for (tok = strtok_r(o->initrd_list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->kernel.nr_initrds >= MAX_INITRDS) {
			pr_err("--initrd: more than %d files", MAX_INITRDS);
			return -EINVAL;
		}
		o->initrds[o->kernel.nr_initrds++] = tok;
	}
	o->kernel.initrds = o->initrds;
	return 0;
}

enum {
	OPT_MEM = 256,
	OPT_VCPUS,
	OPT_VRAM,
	OPT_GUEST,
	OPT_KERNEL,
	OPT_APPEND,
	OPT_INITRD,
	OPT_CONTROL,
	OPT_SERIAL,
	OPT_KVM_DEV,
	OPT_KEEP_CAPS,
	OPT_SNAPSHOT,
	OPT_SNAPSHOT_AFTER,
};

static const struct option run_options[] = {
    {"mem", required_argument, NULL, OPT_MEM},
    {"vcpus", required_argument, NULL, OPT_VCPUS},
    {"vram", required_argument, NULL, OPT_VRAM},
    {"guest", required_argument, NULL, OPT_GUEST},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"append", required_argument, NULL, OPT_APPEND},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"kvm-device", required_argument, NULL, OPT_KVM_DEV},
    {"keep-caps", no_argument, NULL, OPT_KEEP_CAPS},
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"snapshot-after", required_argument, NULL, OPT_SNAPSHOT_AFTER},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {},
};

/* Returns 0, 1 for --help (already printed), or -EINVAL (reported). */
static int run_parse(int argc, char **argv, struct run_opts *o)
{
	struct error err;
	char bad[8];
	uint64_t v;
	int c, ret = 0;

	o->pc.ram_size = 256 * MiB;
	o->pc.vram_size = VRAM_DEFAULT;
	o->pc.nr_cpus = 1;
	o->serial = "stdio";
	o->kvm_dev = "/dev/kvm";
	o->keep_caps = getenv("KVMSNAP_KEEP_CAPS") && !strcmp(getenv("KVMSNAP_KEEP_CAPS"), "1");
	o->snapshot_after = 1;
	opterr = 0;
	optind = 1;
	while (!ret && (c = getopt_long(argc, argv, "+:vh", run_options, NULL)) != -1) {
		switch (c) {
		case OPT_MEM:
			ret = parse_size_opt("--mem", optarg, &o->pc.ram_size);
			break;
		case OPT_VRAM:
			ret = parse_size_opt("--vram", optarg, &o->pc.vram_size);
			break;
		case OPT_VCPUS:
			ret = parse_uint(optarg, 1, VCPUS_MAX, &v);
			if (ret)
				pr_err("--vcpus %s: must be a number from 1 to %d", optarg,
				       VCPUS_MAX);
			o->pc.nr_cpus = (unsigned int)v;
			break;
		case OPT_GUEST:
			ret = guests__parse(optarg, &o->guest, &err);
			if (ret)
				pr_err("%s", err.msg);
			o->have_guest = true;
			break;
		case OPT_KERNEL:
			o->kernel.path = optarg;
			break;
		case OPT_APPEND:
			o->kernel.append = optarg;
			break;
		case OPT_INITRD:
			ret = parse_initrds(o, optarg);
			break;
		case OPT_CONTROL:
			o->control = optarg;
			break;
		case OPT_SERIAL:
			o->serial = optarg;
			break;
		case OPT_KVM_DEV:
			o->kvm_dev = optarg;
			break;
		case OPT_KEEP_CAPS:
			o->keep_caps = true;
			break;
		case OPT_SNAPSHOT:
			o->snapshot = optarg;
			break;
		case OPT_SNAPSHOT_AFTER:
			ret = parse_uint(optarg, 0, 86400, &o->snapshot_after);
			if (ret)
				pr_err("--snapshot-after %s: seconds from 0 to 86400", optarg);
			break;
		case 'v':
			log_verbose = 1;
			break;
		case 'h':
			run_usage(stdout);
			return 1;
		case ':':
			pr_err("run: option %s needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			pr_err("run: unknown option '%s' (see kvmsnap run --help)",
			       getopt_bad_option(argv, bad, sizeof(bad)));
			return -EINVAL;
		}
	}
	if (ret)
		return -EINVAL;
	if (optind < argc) {
		pr_err("run: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (o->have_guest == !!o->kernel.path) {
		pr_err("run: give exactly one of --guest NAME or --kernel FILE");
		return -EINVAL;
	}
	if (!o->kernel.path && (o->kernel.append || o->kernel.nr_initrds)) {
		pr_err("run: --append and --initrd go with --kernel");
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
 * Fork the snapshot manager for --snapshot. Forked before any thread starts;
 * it keeps only stdio, waits, then drives the snapshot over the control
 * socket like `kvmsnap snapshot` does. Returns its pid, or -errno.
 */
static pid_t start_snapshot_child(const struct run_opts *o)
{
	struct manager_opts m = {
	    .image = o->snapshot,
	    .control = o->control,
	    .snap = {.max_downtime_ms = 20},
	    .target = {.direct = true},
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
	if (o->have_guest) {
		snprintf(kvm->guest_desc, sizeof(kvm->guest_desc), "%s", o->guest.text);
		return guests__load(kvm, &o->guest, err);
	}
	snprintf(kvm->guest_desc, sizeof(kvm->guest_desc), "kernel %s", o->kernel.path);
	return loader__load_kernel(&kvm->mem, &o->kernel, &kvm->boot, err);
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
	if (o.snapshot && !o.control && private_control(&o))
		goto out;
	vo = (struct vm_setup_opts){
	    .pc = o.pc, .kvm_dev = o.kvm_dev, .control = o.control, .serial = o.serial};
	if (vm_setup__open(&vs, &vo, &err) || vm_setup__create(&vs, &vo, &err) ||
	    vm_setup__add_cpus(&vs, &vo, &err) || load_guest(&vs.kvm, &o, &err) ||
	    vm_setup__add_devices(&vs, &err) || vm_setup__lock_down(&vs, o.keep_caps, &err) ||
	    kvm_cpu__reset_all(&vs.kvm, &err)) {
		pr_err("%s", err.msg);
		goto out;
	}
	if (o.snapshot) {
		snap_pid = start_snapshot_child(&o);
		if (snap_pid < 0)
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
	if (o.tmpdir[0]) {
		unlink(o.tmpsock);
		rmdir(o.tmpdir);
	}
	free(o.initrd_list);
	return status;
}
