// SPDX-License-Identifier: GPL-2.0
/* kvmsnap snapshot: a live snapshot of a running kvmsnap into a fixed-size image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "live-snapshot/manager.h"
#include "snapshot/hashq.h"
#include "snapshot/throttle.h"
#include "util/util.h"

static void snapshot_usage(FILE *f, const struct parse_opt *opts)
{
	fprintf(f,
		"usage: kvmsnap snapshot IMAGE --control PATH [--incremental] [--slot N]\n"
		"                        [--every SECONDS]\n"
		"                        [--max-downtime MS | --threshold SIZE]\n"
		"                        [--max-passes N] [--max-time SECONDS] [--order "
		"registry|size]\n"
		"                        [--max-throttle PERCENT] [--dirty-limit SIZE]\n"
		"                        [--slots N] [--force] [--no-direct] [--via-stream] "
		"[--json]\n"
		"                        [--no-progress] [--user USER[:GROUP]] [--keep-caps]\n"
		"       kvmsnap snapshot FILE --control PATH --append [--force] [limits...]\n"
		"\n"
		"Take a live snapshot of the VM behind the control socket PATH into IMAGE, a\n"
		"preallocated file, a raw block device or an NBD export (nbd://HOST[:PORT]/NAME,\n"
		"nbd+unix:///NAME?socket=PATH). A missing file is created at the exact\n"
		"size `kvmsnap image size` gives. The guest keeps running; it pauses only for\n"
		"the last small batch of dirty pages.\n"
		"\n"
		"With --append, FILE gets an append stream instead: the benchmark baseline of\n"
		"classic save streams (QEMU's migrate-to-file), where every pass appends its\n"
		"dirty pages, so the file grows past the guest's RAM. Same engine, limits and\n"
		"throttle as an image; kvmsnap cannot restore it.\n"
		"\n");
	parse_options__usage(f, opts);
	fprintf(f,
		"\nIf the dirty rate outruns the writer, the pass or time limit ends precopy and\n"
		"the final pause writes what is left: the report then says it did not converge\n"
		"and gives the real downtime.\n");
	exit_status__usage(f, EXIT_STATUS_REQUEST);
}

/*
 * Dirty runs at most this many clean pages apart are written as one: on
 * these disks 8 wrote a 1 GiB guest rewriting 512 MiB at random in 0.65-0.8x
 * the time of 0 and never needed the throttle, where 0 often went to 99%
 * (Documentation/benchmarks.md, "Merging dirty runs"). KVMSNAP_MERGE_GAP
 * overrides it, KVMSNAP_CLEAR_CHUNK the pages re-armed at once
 * (snap_options.clear_chunk) and KVMSNAP_SETTLE_FLOOR the bytes settling
 * aims to leave for the pause (snap_options.settle_floor), for such
 * measurements.
 */
#define MERGE_GAP_DEFAULT 8
#define MERGE_GAP_MAX	  4096
#define CLEAR_CHUNK_MAX	  (1ULL << 32)
#define SETTLE_FLOOR_MAX  (1ULL << 30)

/* A tuning knob from the environment, or def when unset or not a number in [min, max]. */
static uint64_t snapshot__env_uint(const char *name, uint64_t min, uint64_t max, uint64_t def)
{
	const char *env = getenv(name);
	uint64_t v;

	if (env && *env && !parse_uint(env, min, max, &v))
		return v;
	return def;
}

/* The values of --order, in the order of enum snap_order. */
static const char *const snapshot_orders[] = {"registry", "size", NULL};

/* Parse into o; 1 after --help, 0, or -1 after reporting a usage error. */
static int snapshot__parse_opts(int argc, char **argv, struct manager_opts *o)
{
	const char *keep = getenv("KVMSNAP_KEEP_CAPS");
	bool have_downtime = false, no_progress = false, keep_caps = keep && !strcmp(keep, "1");
	bool have_order = false, have_slots = false;
	const struct parse_opt opts[] = {
	    OPT_ARG("IMAGE", &o->image),
	    OPT_STRING(0, "control", &o->control, "PATH", "the control socket of `kvmsnap run`"),
	    OPT_UINT(0, "max-downtime", &o->snap.max_downtime_ms, "MS", 1, 60000,
		     "target pause, default 20: the threshold is MS times the\n"
		     "write bandwidth measured in this snapshot's own passes",
		     .unit = "milliseconds", .seen = &have_downtime),
	    OPT_SIZE(0, "threshold", &o->snap.threshold, "SIZE",
		     "pause once at most SIZE bytes are dirty (instead)", .min = 1),
	    OPT_UINT(0, "max-passes", &o->snap.max_passes, "N", 1, SNAP_MAX_PASSES - 1,
		     "at most N passes before the final pause, default 30"),
	    OPT_UINT(0, "max-time", &o->snap.max_time_ms, "SECONDS", 1, 86400,
		     "precopy time budget before the final pause, default 60", .unit = "seconds",
		     .scale = 1000),
	    OPT_UINT(0, "max-throttle", &o->snap.max_throttle, "PERCENT", 0, 99,
		     "when the guest dirties faster than the image is written,\n"
		     "hold its vCPUs up to PERCENT of the time so that precopy\n"
		     "converges (20, then +10 a pass); default 99, 0: never"),
	    OPT_SIZE(0, "dirty-limit", &o->snap.dirty_limit, "SIZE",
		     "hold the vCPUs from pass 1 on so that the guest dirties\n"
		     "at most SIZE bytes a second (say 40M): a shorter snapshot\n"
		     "for a slower guest while it runs; default none",
		     .min = 4096),
	    OPT_BOOL(0, "incremental", &o->incremental,
		     "write only the pages changed since the slot's last snapshot,\n"
		     "if the VM tracked them; else a full snapshot (the report says why)"),
	    OPT_UINT(0, "every", &o->every_ms, "SECONDS", 1, 86400,
		     "checkpoint continuously: a snapshot every SECONDS into\n"
		     "alternating slots, one line each, until SIGINT or SIGTERM\n"
		     "(use with --incremental and an image of 2 slots)",
		     .unit = "seconds", .scale = 1000),
	    OPT_UINT(0, "slot", &o->slot, "N", 0, SNAP_MAX_SLOTS - 1,
		     "write slot N (default: the one not holding the newest\n"
		     "complete snapshot)",
		     .seen = &o->have_slot),
	    OPT_ENUM(0, "order", &o->target.order, "ORDER", snapshot_orders,
		     "section order of a new image: registry (default) or size",
		     .seen = &have_order),
	    OPT_UINT(0, "slots", &o->target.nr_slots, "N", 1, SNAP_MAX_SLOTS,
		     "slots of a new image: 1 (default) or 2", .seen = &have_slots),
	    OPT_BOOL(0, "force", &o->target.force,
		     "overwrite a block device that carries a file system\n"
		     "(--append: an existing FILE)"),
	    OPT_SET(0, "no-direct", &o->target.direct, false,
		    "buffered writes instead of O_DIRECT"),
	    OPT_BOOL(0, "via-stream", &o->stream,
		     "the VM streams its pages through a pipe this process gives it,\n"
		     "and this process never maps guest memory"),
	    OPT_BOOL(0, "append", &o->append,
		     "benchmark baseline: append every pass's pages to FILE, a\n"
		     "growing stream as classic save streams write it, instead of\n"
		     "an image; kvmsnap cannot restore it"),
	    OPT_BOOL(0, "json", &o->json, "print the report as one JSON object"),
	    OPT_BOOL(0, "no-progress", &no_progress, "no progress line on a terminal"),
	    USER_OPTION(o),
	    OPT_BOOL(0, "keep-caps", &keep_caps,
		     "no lock-down; by default, once the image is open, the\n"
		     "manager switches to --user, drops every capability and\n"
		     "allows only the syscalls it needs (KVMSNAP_KEEP_CAPS=1\n"
		     "does the same)"),
	    OPT_END(),
	};
	int ret;

	o->snap.max_downtime_ms = 20;
	o->snap.max_throttle = SNAP_THROTTLE_MAX;
	/* Now: sysconf() reads /sys, which the lock-down closes. */
	o->snap.hash_threads = snap_hashq_default_threads();
	o->snap.merge_gap = (unsigned int)snapshot__env_uint("KVMSNAP_MERGE_GAP", 0, MERGE_GAP_MAX,
							     MERGE_GAP_DEFAULT);
	o->snap.clear_chunk = snapshot__env_uint("KVMSNAP_CLEAR_CHUNK", 64, CLEAR_CHUNK_MAX, 0);
	o->snap.settle_floor =
	    snapshot__env_uint("KVMSNAP_SETTLE_FLOOR", SNAP_PAGE_SIZE, SETTLE_FLOOR_MAX, 0);
	o->target.direct = true;
	ret = builtin__parse_options(argc, argv, "snapshot", opts, snapshot_usage);
	if (ret)
		return ret;
	o->progress = !o->json && !no_progress && isatty(STDERR_FILENO);
	o->lock_down = !keep_caps;
	if (have_downtime && o->snap.threshold) {
		pr_err("snapshot: give --max-downtime or --threshold, not both");
		return -1;
	}
	if (!o->image) {
		pr_err("snapshot: give exactly one IMAGE (see kvmsnap snapshot --help)");
		return -1;
	}
	if (o->append && (o->incremental || o->have_slot || have_slots || o->every_ms ||
			  o->stream || have_order)) {
		pr_err(
		    "snapshot: --append writes a stream, not an image: drop --incremental, --slot, "
		    "--slots, --every, --via-stream and --order");
		return -1;
	}
	if (o->append && snap_image_path_is_nbd(o->image)) {
		pr_err("snapshot: --append writes a growing file, and an NBD export has a fixed "
		       "size: give a file");
		return -1;
	}
	if (o->stream && (o->incremental || o->every_ms)) {
		pr_err("snapshot: --incremental and --every do not work with --via-stream yet");
		return -1;
	}
	if (o->every_ms && o->have_slot) {
		pr_err("snapshot: --every alternates the slots; drop --slot");
		return -1;
	}
	/* A progress line between checkpoint lines would only garble them. */
	if (o->every_ms)
		o->progress = false;
	if (!o->control) {
		pr_err("snapshot: --control PATH is required: the control socket of kvmsnap run");
		return -1;
	}
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	struct manager_opts o = {0};
	int ret = snapshot__parse_opts(argc, argv, &o);

	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	return manager__snapshot(&o) ? EXIT_FAILED : EXIT_OK;
}
