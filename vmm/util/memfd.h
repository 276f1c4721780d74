/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memfds that can be handed to another process safely: their size is sealed
 * (the receiver cannot shrink them under the VM, which would then die of
 * SIGBUS), and the receiver gets a read-only descriptor.
 */
#ifndef KVMSNAP_MEMFD_H
#define KVMSNAP_MEMFD_H

#include <stdint.h>

#include "lib/error.h"

/* A close-on-exec memfd of size bytes, sealed against shrinking and growing. fd or -errno. */
int memfd__create_sealed(const char *name, uint64_t size, struct error *err);

/* A new read-only descriptor of the same memfd (or file); fd or -errno. */
int memfd__reopen_rdonly(int fd, struct error *err);

#endif
