// SPDX-License-Identifier: GPL-2.0
/* kvmsnap restore: resume a VM from a snapshot image, eagerly or lazily. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "restore.h"
#include "state/state.h"
#include "util/util.h"
#include "vm-setup.h"

struct restore_opts {
	const char *image;
	const char *control;
	const char *serial;
	const char *kvm_dev;
	bool lazy, paused, keep_caps, json, direct;
};

/* Milestones, ns since the command started. */
struct restore_times {
	uint64_t t0;
	uint64_t validated, built, memory, state, running;
};

static void restore_usage(FILE *f)
{
	fprintf(
	    f, "usage: kvmsnap restore IMAGE [--lazy] [--paused] [--control PATH]\n"
	       "                       [--serial stdio|FILE|none] [--keep-caps] [--no-direct]\n"
	       "                       [--json] [-v]\n"
	       "\n"
	       "Resume the VM saved in IMAGE, a complete snapshot image (file or block\n"
	       "device), exactly where its snapshot paused it. The VM is rebuilt from the\n"
	       "image's own configuration (RAM, VRAM, vCPUs) and then runs as with\n"
	       "`kvmsnap run`. The image is checked first: an image that is empty, was\n"
	       "interrupted, is truncated, corrupted or of another format version is refused.\n"
	       "\n"
	       "  --lazy            map the image's memory into the guest (MAP_PRIVATE) instead\n"
	       "                    of reading it first: pages load on first touch and the VM\n"
	       "                    starts in milliseconds. The image must not change while\n"
	       "                    the VM runs; a block device is held exclusively until a\n"
	       "                    snapshot of the VM copies the memory out of it.\n"
	       "  --paused          stay paused until `kvmsnap ctl PATH resume` (needs --control)\n"
	       "  --control PATH    serve the JSON control protocol on this UNIX socket\n"
	       "  --serial WHERE    guest serial output: stdio (default), a file, or none\n"
	       "  --keep-caps       keep capabilities (see kvmsnap run --help)\n"
	       "  --no-direct       eager restore: buffered reads instead of O_DIRECT\n"
	       "  --kvm-device PATH the KVM device, default /dev/kvm\n"
	       "  --json            once the VM is started, print one JSON object with the\n"
	       "                    time of each phase on stdout (use --serial FILE with it)\n"
	       "  -v, --verbose     debug messages, the phase times among them\n"
	       "\n"
	       "Exit status: as kvmsnap run; 2 when the image is refused or cannot be restored.\n");
}

enum {
	OPT_LAZY = 256,
	OPT_PAUSED,
	OPT_CONTROL,
	OPT_SERIAL,
	OPT_KVM_DEV,
	OPT_KEEP_CAPS,
	OPT_NO_DIRECT,
	OPT_JSON,
};

static const struct option restore_options[] = {
    {"lazy", no_argument, NULL, OPT_LAZY},
    {"paused", no_argument, NULL, OPT_PAUSED},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"kvm-device", required_argument, NULL, OPT_KVM_DEV},
    {"keep-caps", no_argument, NULL, OPT_KEEP_CAPS},
    {"no-direct", no_argument, NULL, OPT_NO_DIRECT},
    {"json", no_argument, NULL, OPT_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {},
};

/* 0, 1 after --help, or -1 after a usage error (reported). */
static int restore_parse(int argc, char **argv, struct restore_opts *o)
{
	const char *keep = getenv("KVMSNAP_KEEP_CAPS");
	char bad[8];
	int c;

	o->serial = "stdio";
	o->kvm_dev = "/dev/kvm";
	o->direct = true;
	o->keep_caps = keep && !strcmp(keep, "1");
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":vh", restore_options, NULL)) != -1) {
		switch (c) {
		case OPT_LAZY:
			o->lazy = true;
			break;
		case OPT_PAUSED:
			o->paused = true;
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
		case OPT_NO_DIRECT:
			o->direct = false;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'v':
			log_verbose = 1;
			break;
		case 'h':
			restore_usage(stdout);
			return 1;
		case ':':
			pr_err("restore: option %s needs a value", argv[optind - 1]);
			return -1;
		default:
			pr_err("restore: unknown option '%s' (see kvmsnap restore --help)",
			       getopt_bad_option(argv, bad, sizeof(bad)));
			return -1;
		}
	}
	if (optind < argc)
		o->image = argv[optind++];
	if (optind < argc) {
		pr_err("restore: unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (!o->image) {
		pr_err("restore: no IMAGE given (see kvmsnap restore --help)");
		return -1;
	}
	if (o->paused && !o->control) {
		pr_err("restore: --paused needs --control PATH, or nothing could resume the VM");
		return -1;
	}
	return 0;
}

static double ms(uint64_t from, uint64_t to)
{
	return to > from ? (to - from) / 1e6 : 0;
}

static void report(const struct restore_opts *o, const struct restore_times *t,
		   const struct restore_load_stats *ls)
{
	double read_ms = ls->read_ns / 1e6;
	double mib_s = read_ms > 0 ? ls->bytes / 1048576.0 / (read_ms / 1e3) : 0;
	struct json_object *j;

	pr_debug("restore %s (%s): validated %.2f ms, VM built %.2f ms, memory %.2f ms, state "
		 "%.2f ms, vCPUs released at %.2f ms",
		 o->image, o->lazy ? "lazy" : "eager", ms(t->t0, t->validated),
		 ms(t->validated, t->built), ms(t->built, t->memory), ms(t->memory, t->state),
		 ms(t->t0, t->running));
	if (!o->lazy)
		pr_debug("eager: %llu MiB in %.1f ms, %.0f MiB/s, %u threads, %s",
			 (unsigned long long)(ls->bytes >> 20), read_ms, mib_s, ls->threads,
			 ls->direct ? "O_DIRECT" : "buffered");
	if (!o->json)
		return;
	j = json_object_new_object();
	json_object_object_add(j, "ok", json_object_new_boolean(1));
	json_object_object_add(j, "image", json_object_new_string(o->image));
	json_object_object_add(j, "mode", json_object_new_string(o->lazy ? "lazy" : "eager"));
	json_object_object_add(j, "paused", json_object_new_boolean(o->paused));
	json_object_object_add(j, "validate_ms", json_object_new_double(ms(t->t0, t->validated)));
	json_object_object_add(j, "build_ms", json_object_new_double(ms(t->validated, t->built)));
	json_object_object_add(j, "memory_ms", json_object_new_double(ms(t->built, t->memory)));
	json_object_object_add(j, "state_ms", json_object_new_double(ms(t->memory, t->state)));
	/* When the vCPU threads were let into KVM_RUN (for --paused: ready to be). */
	json_object_object_add(j, "first_run_ms", json_object_new_double(ms(t->t0, t->running)));
	json_object_object_add(j, "bytes_read", json_object_new_uint64(ls->bytes));
	json_object_object_add(j, "read_ms", json_object_new_double(read_ms));
	json_object_object_add(j, "read_mib_s", json_object_new_double(mib_s));
	json_object_object_add(j, "read_threads", json_object_new_int((int)ls->threads));
	json_object_object_add(j, "direct", json_object_new_boolean(ls->direct));
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(j);
}

/* Build the VM the image describes and put the image into it. */
static int restore_vm(struct vm_setup *vs, struct restore_image *ri, const struct restore_opts *o,
		      struct restore_times *t, struct restore_load_stats *ls)
{
	struct vm_setup_opts vo = {
	    .pc = ri->pc, .kvm_dev = o->kvm_dev, .control = o->control, .serial = o->serial};
	struct vm_state_devices devs;
	struct error err;
	int ret;

	if (vm_setup__open(vs, &vo, &err) || vm_setup__create(vs, &vo, &err)) {
		pr_err("%s", err.msg);
		return err.code;
	}
	ret = restore__check_regions(ri, &vs->kvm.mem);
	/* Lazy: the image takes the place of the memory before KVM sees it. */
	if (!ret && o->lazy)
		ret = restore__map_lazy(ri, &vs->kvm.mem);
	if (ret)
		return ret;
	if (vm_setup__add_cpus(vs, &vo, &err) || vm_setup__add_devices(vs, &err) ||
	    vm_setup__lock_down(vs, o->keep_caps, &err)) {
		pr_err("%s", err.msg);
		return err.code;
	}
	snprintf(vs->kvm.guest_desc, sizeof(vs->kvm.guest_desc), "%s", ri->guest);
	t->built = now_ns();
	if (!o->lazy)
		ret = restore__load_eager(ri, &vs->kvm.mem, ls);
	t->memory = now_ns();
	devs = (struct vm_state_devices){.com1 = &vs->com1};
	if (!ret)
		ret = restore__load_state(ri, &vs->kvm, &devs);
	t->state = now_ns();
	return ret;
}

int cmd_restore(int argc, char **argv)
{
	struct restore_times t = {.t0 = now_ns()};
	struct restore_load_stats ls = {0};
	struct restore_opts o = {0};
	struct restore_image ri;
	struct vm_setup vs;
	int ret, status = EXIT_VMM_ERROR;

	ret = restore_parse(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : EXIT_VMM_ERROR;
	vm_setup__init(&vs);
	/* The image first: a refused one touches nothing. */
	ret = restore__open(&ri, o.image, o.lazy, o.direct);
	t.validated = now_ns();
	if (!ret)
		ret = restore_vm(&vs, &ri, &o, &t, &ls);
	restore__close(&ri);
	if (ret)
		goto out;
	/* Park the vCPUs first, so the release is one step that can be timed. */
	if (vm_setup__start(&vs, true) == 0) {
		t.running = now_ns();
		if (!o.paused)
			kvm__resume(&vs.kvm);
		report(&o, &t, &ls);
	}
	status = vm_setup__serve(&vs);
out:
	vm_setup__teardown(&vs);
	return status;
}
