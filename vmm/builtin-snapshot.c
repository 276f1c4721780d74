// SPDX-License-Identifier: GPL-2.0
/* kvmsnap snapshot: a live snapshot of a running kvmsnap into a fixed-size image. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "live-snapshot/manager.h"
#include "util/util.h"

static void snapshot_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: kvmsnap snapshot IMAGE --control PATH [--max-downtime MS | --threshold SIZE]\n"
	    "                        [--max-passes N] [--max-time SECONDS] [--order "
	    "registry|size]\n"
	    "                        [--force] [--no-direct] [--json] [--no-progress]\n"
	    "\n"
	    "Take a live snapshot of the VM behind the control socket PATH into IMAGE, a\n"
	    "preallocated file or a raw block device. A missing file is created at the exact\n"
	    "size `kvmsnap image size` gives. The guest keeps running; it pauses only for\n"
	    "the last small batch of dirty pages.\n"
	    "\n"
	    "  --control PATH      the control socket of `kvmsnap run`\n"
	    "  --max-downtime MS   target pause, default 20: the threshold is MS times the\n"
	    "                      write bandwidth measured in this snapshot's own passes\n"
	    "  --threshold SIZE    pause once at most SIZE bytes are dirty (instead)\n"
	    "  --max-passes N      at most N passes before the final pause, default 30\n"
	    "  --max-time SECONDS  precopy time budget before the final pause, default 60\n"
	    "  --order ORDER       section order of a new image: registry (default) or size\n"
	    "  --force             overwrite a block device that carries a file system\n"
	    "  --no-direct         buffered writes instead of O_DIRECT\n"
	    "  --json              print the report as one JSON object\n"
	    "  --no-progress       no progress line on a terminal\n"
	    "\n"
	    "If the dirty rate outruns the writer, the pass or time limit ends precopy and\n"
	    "the final pause writes what is left: the report then says it did not converge\n"
	    "and gives the real downtime.\n");
}

enum {
	OPT_CONTROL = 256,
	OPT_DOWNTIME,
	OPT_THRESHOLD,
	OPT_PASSES,
	OPT_TIME,
	OPT_ORDER,
	OPT_FORCE,
	OPT_NO_DIRECT,
	OPT_JSON,
	OPT_NO_PROGRESS
};

static const struct option snapshot_options[] = {
    {"control", required_argument, NULL, OPT_CONTROL},
    {"max-downtime", required_argument, NULL, OPT_DOWNTIME},
    {"threshold", required_argument, NULL, OPT_THRESHOLD},
    {"max-passes", required_argument, NULL, OPT_PASSES},
    {"max-time", required_argument, NULL, OPT_TIME},
    {"order", required_argument, NULL, OPT_ORDER},
    {"force", no_argument, NULL, OPT_FORCE},
    {"no-direct", no_argument, NULL, OPT_NO_DIRECT},
    {"json", no_argument, NULL, OPT_JSON},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"help", no_argument, NULL, 'h'},
    {},
};

/* Parse into o; 1 after --help, 0, or -1 after reporting a usage error. */
int snapshot__parse_opts(int argc, char **argv, struct manager_opts *o)
{
	bool have_downtime = false;
	char bad[8];
	uint64_t v;
	int c;

	o->snap.max_downtime_ms = 20;
	o->target.direct = true;
	o->progress = isatty(STDERR_FILENO);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", snapshot_options, NULL)) != -1) {
		switch (c) {
		case OPT_CONTROL:
			o->control = optarg;
			break;
		case OPT_DOWNTIME:
			if (parse_uint(optarg, 1, 60000, &v)) {
				pr_err("--max-downtime %s: milliseconds from 1 to 60000", optarg);
				return -1;
			}
			o->snap.max_downtime_ms = v;
			have_downtime = true;
			break;
		case OPT_THRESHOLD:
			if (parse_size(optarg, &v) || !v) {
				pr_err("--threshold %s: a size such as 16M", optarg);
				return -1;
			}
			o->snap.threshold = v;
			break;
		case OPT_PASSES:
			if (parse_uint(optarg, 1, SNAP_MAX_PASSES - 1, &v)) {
				pr_err("--max-passes %s: from 1 to %d", optarg,
				       SNAP_MAX_PASSES - 1);
				return -1;
			}
			o->snap.max_passes = (unsigned int)v;
			break;
		case OPT_TIME:
			if (parse_uint(optarg, 1, 86400, &v)) {
				pr_err("--max-time %s: seconds from 1 to 86400", optarg);
				return -1;
			}
			o->snap.max_time_ms = v * 1000;
			break;
		case OPT_ORDER:
			if (!strcmp(optarg, "registry")) {
				o->target.order = SNAP_ORDER_REGISTRY;
			} else if (!strcmp(optarg, "size")) {
				o->target.order = SNAP_ORDER_SIZE;
			} else {
				pr_err("--order %s: registry or size", optarg);
				return -1;
			}
			break;
		case OPT_FORCE:
			o->target.force = true;
			break;
		case OPT_NO_DIRECT:
			o->target.direct = false;
			break;
		case OPT_JSON:
			o->json = true;
			o->progress = false;
			break;
		case OPT_NO_PROGRESS:
			o->progress = false;
			break;
		case 'h':
			snapshot_usage(stdout);
			return 1;
		case ':':
			pr_err("snapshot: option %s needs a value", argv[optind - 1]);
			return -1;
		default:
			pr_err("snapshot: unknown option '%s' (see kvmsnap snapshot --help)",
			       getopt_bad_option(argv, bad, sizeof(bad)));
			return -1;
		}
	}
	if (have_downtime && o->snap.threshold) {
		pr_err("snapshot: give --max-downtime or --threshold, not both");
		return -1;
	}
	if (optind != argc - 1) {
		pr_err("snapshot: give exactly one IMAGE (see kvmsnap snapshot --help)");
		return -1;
	}
	o->image = argv[optind];
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
		return ret > 0 ? 0 : 2;
	return manager__snapshot(&o);
}
