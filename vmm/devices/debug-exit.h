/* SPDX-License-Identifier: GPL-2.0 */
/* isa-debug-exit at port 0xf4: a write of v ends the VM with status (v << 1) | 1. */
#ifndef KVMSNAP_DEBUG_EXIT_H
#define KVMSNAP_DEBUG_EXIT_H

#include <stdint.h>

struct kvm;

int debug_exit__init(struct kvm *kvm, uint16_t port);
/* The process exit status for a written value (8 bits, as exit() keeps). */
int debug_exit__status(uint64_t value);

#endif
