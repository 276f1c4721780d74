// SPDX-License-Identifier: GPL-2.0
/* kvmsnap restore: resume a VM from a snapshot image, eagerly or lazily. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "restore/restore.h"
#include "state/state.h"
#include "util/util.h"
#include "vm-setup.h"

struct restore_opts {
	const char *image;
	const char *control;
	const char *serial;
	const char *kvm_dev;
	const char *user;
	bool lazy, paused, keep_caps, json, direct, have_slot;
	uint32_t slot;
	enum vm_clock_mode clock;
};

/* In the order of enum vm_clock_mode. */
static const char *const clock_modes[] = {"catch-up", "continue", NULL};

/* Milestones, ns since the command started. */
struct restore_times {
	uint64_t t0;
	uint64_t validated, built, memory, state, running;
};

static void restore_usage(FILE *f, const struct parse_opt *opts)
{
	fprintf(f, "usage: kvmsnap restore IMAGE [--slot N] [--lazy] [--paused] [--control PATH]\n"
		   "                       [--clock catch-up|continue]\n"
		   "                       [--serial stdio|FILE|none] [--user USER[:GROUP]] "
		   "[--keep-caps]\n"
		   "                       [--no-direct] [--json] [-v]\n"
		   "\n"
		   "Resume the VM saved in IMAGE, a complete snapshot image (file, block\n"
		   "device or NBD URI; --lazy: not NBD), exactly where its snapshot paused\n"
		   "it. The VM is rebuilt from the image's own configuration (RAM, VRAM,\n"
		   "vCPUs) and then runs as with `kvmsnap run`. The image is checked first:\n"
		   "an image that is empty, was interrupted, is truncated, corrupted or of\n"
		   "another format version is refused.\n"
		   "\n");
	parse_options__usage(f, opts);
	fprintf(f, "\nWith -v the debug messages include the time of each phase.\n");
	exit_status__usage(f, EXIT_STATUS_VM);
}

/* 0, 1 after --help, or -1 after a usage error (reported). */
static int restore_parse(int argc, char **argv, struct restore_opts *o)
{
	const struct parse_opt opts[] = {
	    OPT_ARG("IMAGE", &o->image),
	    OPT_BOOL(0, "lazy", &o->lazy,
		     "map the image's memory into the guest (MAP_PRIVATE) instead\n"
		     "of reading it first: pages load on first touch and the VM\n"
		     "starts in milliseconds. The image must not change while\n"
		     "the VM runs; a block device is held exclusively until a\n"
		     "snapshot of the VM copies the memory out of it."),
	    OPT_UINT(0, "slot", &o->slot, "N", 0, SNAP_MAX_SLOTS - 1,
		     "restore slot N of a two-slot image (default: the newest\n"
		     "complete one)",
		     .seen = &o->have_slot),
	    OPT_ENUM(0, "clock", &o->clock, "MODE", clock_modes,
		     "a guest that uses kvmclock (Linux): catch-up (default)\n"
		     "moves its TSC and kvmclock forward by the host time since\n"
		     "the snapshot, so its wall clock is right, and tells it it\n"
		     "was stopped (KVM_KVMCLOCK_CTRL); continue: its clocks go on\n"
		     "from the pause, the wall clock lagging by the time saved"),
	    OPT_BOOL(0, "paused", &o->paused,
		     "stay paused until `kvmsnap ctl PATH resume` (needs --control)"),
	    OPT_SET(0, "no-direct", &o->direct, false,
		    "eager restore: buffered reads instead of O_DIRECT"),
	    OPT_BOOL(0, "json", &o->json,
		     "once the VM is started, print one JSON object with the\n"
		     "time of each phase on stdout (use --serial FILE with it)"),
	    VM_OPTIONS(o),
	    OPT_END(),
	};
	int ret;

	o->direct = true;
	VM_OPTIONS_DEFAULTS(o);
	ret = builtin__parse_options(argc, argv, "restore", opts, restore_usage);
	if (ret)
		return ret;
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
		      struct restore_times *t, struct restore_load_stats *ls, struct error *err)
{
	struct vm_setup_opts vo = {.pc = ri->pc,
				   .kvm_dev = o->kvm_dev,
				   .control = o->control,
				   .serial = o->serial,
				   .user = o->user,
				   .keep_caps = o->keep_caps};
	struct vm_state_devices devs;
	int ret;

	ret = vm_setup__open(vs, &vo, err);
	if (!ret)
		ret = vm_setup__create(vs, &vo, err);
	if (!ret)
		ret = restore__check_regions(ri, &vs->kvm.mem, err);
	/* Lazy: the image takes the place of the memory before KVM sees it. */
	if (!ret && o->lazy)
		ret = restore__map_lazy(ri, &vs->kvm, err);
	if (!ret)
		ret = vm_setup__add_cpus(vs, &vo, err);
	if (!ret)
		ret = vm_setup__add_devices(vs, err);
	if (!ret)
		ret = vm_setup__lock_down(vs, &vo, err);
	if (ret)
		return ret;
	snprintf(vs->kvm.guest_desc, sizeof(vs->kvm.guest_desc), "%s", ri->guest);
	t->built = now_ns();
	if (!o->lazy)
		ret = restore__load_eager(ri, &vs->kvm.mem, ls, err);
	t->memory = now_ns();
	devs = (struct vm_state_devices){.com1 = &vs->com1, .rtc = &vs->rtc};
	if (!ret)
		ret = restore__load_state(ri, &vs->kvm, &devs, o->clock, err);
	/* Memory equals the slot now: the first snapshot back into it can be incremental. */
	if (!ret)
		ret = mem__track_restored(&vs->kvm.mem, ri->img.hdr.uuid, ri->img.slot,
					  ri->img.hdr.write_id, err);
	t->state = now_ns();
	return ret;
}

int cmd_restore(int argc, char **argv)
{
	struct restore_times t = {.t0 = now_ns()};
	struct restore_load_stats ls = {0};
	struct restore_opts o = {0};
	struct restore_image ri;
	struct error err = {0};
	struct vm_setup vs;
	int ret, status = EXIT_VMM_ERROR;

	ret = restore_parse(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : EXIT_VMM_ERROR;
	vm_setup__init(&vs);
	/* The image first: a refused one touches nothing. */
	ret = restore__open(
	    &ri, o.image,
	    &(struct restore_open_opts){
		.lazy = o.lazy, .direct = o.direct, .have_slot = o.have_slot, .slot = o.slot},
	    &err);
	t.validated = now_ns();
	if (!ret)
		ret = restore_vm(&vs, &ri, &o, &t, &ls, &err);
	restore__close(&ri);
	if (ret) {
		pr_err("%s", err.msg);
		goto out;
	}
	/* Park the vCPUs first, so the release is one step that can be timed. */
	if (vm_setup__start(&vs, true) == 0) {
		t.running = now_ns();
		if (!o.paused)
			kvm__resume(&vs.kvm, NULL);
		report(&o, &t, &ls);
	}
	status = vm_setup__serve(&vs);
out:
	vm_setup__teardown(&vs);
	return status;
}
