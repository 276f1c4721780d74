// SPDX-License-Identifier: GPL-2.0
/* The exit-status lines that end every command's --help: one table. */
#include "exit-status.h"
#include "lib/align.h"

#define VM	(1u << EXIT_STATUS_VM)
#define REQUEST (1u << EXIT_STATUS_REQUEST)

static const struct {
	const char *status;
	const char *text;
	unsigned int kinds;
} exit_statuses[] = {
    {"0",
     "success (a VM: ended by `kvmsnap ctl PATH quit`, or the guest\n"
     "            powered off)",
     VM | REQUEST},
    {"1", "the snapshot, image check or control request failed", REQUEST},
    {"2", "bad input (a usage error, a refused image) or kvmsnap failed", VM | REQUEST},
    {"4", "the guest crashed", VM},
    {"6", "the guest reported a failed self-check", VM},
    {"8", "the guest asked for a reboot (kvmsnap ends the VM)", VM},
    {"(v<<1)|1",
     "the guest wrote v to the debug-exit port 0xf4 or the message\n"
     "            port's exit register",
     VM},
    {"128+N", "ended by signal N", VM},
};

void exit_status__usage(FILE *f, enum exit_status_kind kind)
{
	unsigned int i;

	fprintf(f, "\nExit status:\n");
	for (i = 0; i < ARRAY_SIZE(exit_statuses); i++)
		if (exit_statuses[i].kinds & (1u << kind))
			fprintf(f, "  %-9s %s\n", exit_statuses[i].status, exit_statuses[i].text);
}
