/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The exit statuses of every kvmsnap command, in one table:
 *
 *   0        success; for run and restore: the VM ended by `ctl quit`, or
 *            the guest powered off (ACPI S5)
 *   1        snapshot, image, ctl: the snapshot, check or request failed
 *   2        bad input (a usage error, a refused image) or kvmsnap failed
 *   4        run, restore: the guest crashed
 *   6        run, restore: the guest reported a failed self-check
 *   8        run, restore: the guest asked for a reset (reboot); kvmsnap ends
 *            the VM instead
 *   (v<<1)|1 run, restore: the guest wrote v to the debug-exit port 0xf4 or
 *            the message port's exit register (odd: the guest's own status,
 *            as QEMU's isa-debug-exit gives it); 1 is then the guest's v = 0
 *   128+N    run, restore: ended by signal N (SIGINT, SIGTERM, SIGHUP)
 *
 * kvmsnap's own statuses are even for run and restore, so the guest's odd
 * ones never collide with them.
 */
#ifndef KVMSNAP_EXIT_STATUS_H
#define KVMSNAP_EXIT_STATUS_H

#include <stdio.h>

#define EXIT_OK		 0		/* success; run, restore: quit on the control socket */
#define EXIT_FAILED	 1		/* snapshot, image, ctl: the operation failed */
#define EXIT_VMM_ERROR	 2		/* bad input, or kvmsnap itself failed */
#define EXIT_USAGE	 EXIT_VMM_ERROR /* bad input: the same status, named for parsers */
#define EXIT_GUEST_CRASH 4		/* triple fault, KVM internal error, guest exception */
#define EXIT_GUEST_CHECK 6		/* the guest reported a failed self-check */
#define EXIT_GUEST_RESET 8		/* the guest asked for a reset: the VM ends */
#define EXIT_SIGNAL_BASE 128		/* + signal number, for SIGINT/SIGTERM/SIGHUP */

/* Which lines of the table a command's --help prints. */
enum exit_status_kind {
	EXIT_STATUS_VM,	     /* run, restore: a VM and its guest */
	EXIT_STATUS_REQUEST, /* snapshot, image, ctl: an operation that succeeds or fails */
};

/* The closing "Exit status:" lines of a command's --help. */
void exit_status__usage(FILE *f, enum exit_status_kind kind);

#endif
