// SPDX-License-Identifier: GPL-2.0
/* kvmsnap: git-style subcommands. */
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "util/util.h"

#include "lib/version.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct subcommand subcommands[] = {
    {"run", cmd_run, "run a guest (built-in test guest or kernel)"},
    {"ctl", cmd_ctl, "send a control request to a running kvmsnap"},
    {"snapshot", cmd_snapshot, "live-snapshot a running kvmsnap into a fixed-size image"},
    {"restore", cmd_restore, "resume a VM from a snapshot image, eagerly or lazily"},
    {"image", cmd_image, "size, create, show or verify snapshot images"},
    {"bench", cmd_bench, "live snapshots of one workload: fixed image, append, QEMU"},
};

static void usage(FILE *f)
{
	unsigned int i;

	fprintf(f, "usage: kvmsnap COMMAND [ARGS...]\n\n"
		   "kvmsnap is a small KVM virtual machine monitor built for live\n"
		   "memory snapshots into a fixed-size image.\n\ncommands:\n");
	for (i = 0; i < ARRAY_SIZE(subcommands); i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(f, "\n`kvmsnap COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
	unsigned int i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("kvmsnap %s\n", KVMSNAP_VERSION);
		return EXIT_OK;
	}
	for (i = 0; i < ARRAY_SIZE(subcommands); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	pr_err("'%s' is not a kvmsnap command (see kvmsnap --help)", argv[1]);
	return EXIT_USAGE;
}
