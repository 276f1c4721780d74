/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The built-in test guests (tools/guests/), embedded in the binary, and the
 * NAME:key=value,... syntax of --guest. Parameters are parsed and checked
 * here on the host, so a typo is an error before any VM exists.
 */
#ifndef KVMSNAP_GUESTS_H
#define KVMSNAP_GUESTS_H

#include <stddef.h>
#include <stdint.h>

#include "guest-abi.h"
#include "kvm.h"

enum guest_param_type { GP_SIZE, GP_UINT, GP_ENUM };

struct guest_param {
	const char *key;
	unsigned int index; /* into kvmsnap_bootinfo.params */
	enum guest_param_type type;
	uint64_t def, min, max;
	const char *const *names; /* GP_ENUM: value i is names[i], NULL-terminated */
	const char *help;
};

struct builtin_guest {
	const char *name;
	const char *help;
	const struct guest_param *params;
	unsigned int nr_params;
	const uint8_t *elf_start, *elf_end; /* the embedded ELF file */
};

struct guest_spec {
	const struct builtin_guest *guest;
	uint64_t params[KVMSNAP_MAX_PARAMS];
	char text[256];
};

/* All built-in guests; used by --help. */
const struct builtin_guest *guests__table(unsigned int *nr);

/*
 * Parse "NAME[:key=value,...]" into spec, with defaults for keys not given.
 * 0, or -EINVAL with *err naming the guest, key or value at fault.
 */
int guests__parse(const char *text, struct guest_spec *spec, struct error *err);

/*
 * Load the guest's ELF, check its parameters against the VM (the dirtier's
 * working set must fit in free low RAM) and write the boot info. 0 or -errno
 * with *err set.
 */
int guests__load(struct kvm *kvm, const struct guest_spec *spec, struct error *err);

#endif
