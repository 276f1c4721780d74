/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hardware-reduced ACPI power registers that the FADT names: sleep
 * control, sleep status and reset, one byte each in I/O space (layout.h).
 * S5 written to sleep control ends the VM with EXIT_OK; the reset value
 * written to the reset register ends it with EXIT_GUEST_RESET (kvmsnap
 * does not reboot a VM).
 */
#ifndef KVMSNAP_POWER_H
#define KVMSNAP_POWER_H

#include <stdint.h>

struct kvm;

/* Claim the three ports. 0 or -errno. */
int power__init(struct kvm *kvm);

#endif
