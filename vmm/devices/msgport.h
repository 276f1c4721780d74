/* SPDX-License-Identifier: GPL-2.0 */
/* The guest-to-host message port (MMIO); vmm/guest-abi.h defines the registers. */
#ifndef KVMSNAP_MSGPORT_H
#define KVMSNAP_MSGPORT_H

#include <stdint.h>

struct kvm;

int msgport__init(struct kvm *kvm, uint64_t gpa);

#endif
