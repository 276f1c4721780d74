// SPDX-License-Identifier: GPL-2.0
#include "guests.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "loader/loader.h"
#include "pc.h"
#include "util/util.h"

extern const uint8_t guest_hello_start[], guest_hello_end[];
extern const uint8_t guest_dirtier_start[], guest_dirtier_end[];
extern const uint8_t guest_pagewriter_start[], guest_pagewriter_end[];

static const char *const dirtier_patterns[] = {"seq", "random", "hot", NULL};

static const struct guest_param hello_params[] = {
    {"code", HELLO_P_CODE, GP_UINT, 0, 0, 127, NULL, "exit code (status is code*2+1)"},
};

static const struct guest_param dirtier_params[] = {
    {"ws", DIRTIER_P_WS, GP_SIZE, 0, 0, UINT64_MAX, NULL,
     "working set, split between vCPUs (default: all free RAM below 3G)"},
    {"rate", DIRTIER_P_RATE, GP_UINT, 0, 0, 100000000, NULL,
     "pages per millisecond for the whole VM, 0 = as fast as possible"},
    {"pattern", DIRTIER_P_PATTERN, GP_ENUM, DIRTIER_SEQ, 0, 2, dirtier_patterns,
     "seq, random or hot (90% of writes to 10% of pages)"},
    {"passes", DIRTIER_P_PASSES, GP_UINT, 0, 0, UINT32_MAX, NULL,
     "passes before a final self-check and exit 0, 0 = run forever"},
    {"seed", DIRTIER_P_SEED, GP_UINT, 1, 0, UINT64_MAX, NULL, "seed of random and hot"},
};

static const struct guest_param pagewriter_params[] = {
    {"mailbox", PAGEWRITER_P_MAILBOX, GP_SIZE, 0, 0, UINT64_MAX, NULL,
     "address of the mailbox page in free RAM, e.g. 8M (default: the first free page)"},
};

static const struct builtin_guest builtin_guests[] = {
    {"hello", "prints to serial and VGA text, then exits through the message port", hello_params,
     ARRAY_SIZE(hello_params), guest_hello_start, guest_hello_end},
    {"dirtier", "dirties a working set at a rate, stamping and self-checking each page",
     dirtier_params, ARRAY_SIZE(dirtier_params), guest_dirtier_start, guest_dirtier_end},
    {"pagewriter",
     "stores a round number at the addresses a host lists in a mailbox (dirty-log test)",
     pagewriter_params, ARRAY_SIZE(pagewriter_params), guest_pagewriter_start,
     guest_pagewriter_end},
};

_Static_assert(offsetof(struct kvmsnap_bootinfo, params) == 0x48, "boot info ABI");
_Static_assert(offsetof(struct kvmsnap_bootinfo, cmdline) == 0x88, "boot info ABI");

const struct builtin_guest *guests__table(unsigned int *nr)
{
	*nr = ARRAY_SIZE(builtin_guests);
	return builtin_guests;
}

static int parse_value(const struct builtin_guest *g, const struct guest_param *p, const char *val,
		       uint64_t *out, struct error *err)
{
	unsigned int i;
	int ret = -EINVAL;

	switch (p->type) {
	case GP_SIZE:
		ret = parse_size(val, out);
		break;
	case GP_UINT:
		ret = parse_uint(val, p->min, p->max, out);
		break;
	case GP_ENUM:
		for (i = 0; p->names[i]; i++) {
			if (!strcmp(val, p->names[i])) {
				*out = i;
				return 0;
			}
		}
		return err_set(
		    err, -EINVAL,
		    "--guest %s: %s=%s: not one of the allowed values (see kvmsnap run --help)",
		    g->name, p->key, val);
	}
	if (ret)
		return err_set(err, -EINVAL, "--guest %s: %s=%s: %s", g->name, p->key, val,
			       ret == -ERANGE ? "out of range" : "not a valid number");
	return 0;
}

static int parse_pair(const struct builtin_guest *g, char *kv, struct guest_spec *spec,
		      struct error *err)
{
	char *eq = strchr(kv, '=');
	unsigned int i;

	if (!eq || eq == kv)
		return err_set(err, -EINVAL, "--guest %s: '%s' is not key=value", g->name, kv);
	*eq = '\0';
	for (i = 0; i < g->nr_params; i++)
		if (!strcmp(kv, g->params[i].key))
			return parse_value(g, &g->params[i], eq + 1,
					   &spec->params[g->params[i].index], err);
	return err_set(err, -EINVAL, "--guest %s: unknown parameter '%s'", g->name, kv);
}

int guests__parse(const char *text, struct guest_spec *spec, struct error *err)
{
	const struct builtin_guest *g = NULL;
	char buf[256], *args, *tok, *save;
	unsigned int i;
	int ret = 0;

	memset(spec, 0, sizeof(*spec));
	if (strlen(text) >= sizeof(buf))
		return err_set(err, -EINVAL, "--guest: specification longer than %zu characters",
			       sizeof(buf) - 1);
	strcpy(buf, text);
	strcpy(spec->text, text);
	args = strchr(buf, ':');
	if (args)
		*args++ = '\0';
	for (i = 0; i < ARRAY_SIZE(builtin_guests); i++)
		if (!strcmp(buf, builtin_guests[i].name))
			g = &builtin_guests[i];
	if (!g)
		return err_set(err, -EINVAL,
			       "--guest %s: no such built-in guest (see kvmsnap run --help)", buf);
	spec->guest = g;
	for (i = 0; i < g->nr_params; i++)
		spec->params[g->params[i].index] = g->params[i].def;
	for (tok = args ? strtok_r(args, ",", &save) : NULL; tok && !ret;
	     tok = strtok_r(NULL, ",", &save))
		ret = parse_pair(g, tok, spec, err);
	return ret;
}

static int check_dirtier(struct kvm *kvm, const struct guest_spec *spec, uint64_t free_start,
			 uint64_t free_end, struct error *err)
{
	uint64_t ws = spec->params[DIRTIER_P_WS];
	char a[32], b[32];

	if (free_start >= free_end)
		return err_set(
		    err, -EINVAL,
		    "--guest dirtier: no free RAM above the guest image (use a larger --mem)");
	if (ws > free_end - free_start)
		return err_set(
		    err, -EINVAL,
		    "--guest dirtier: ws=%s does not fit in the %s of free RAM below 3G (raise "
		    "--mem)",
		    format_size(ws, a, sizeof(a)),
		    format_size(free_end - free_start, b, sizeof(b)));
	if (!IS_ALIGNED(ws, PAGE_SIZE) || (ws && ws / PAGE_SIZE < kvm->nr_cpus))
		return err_set(
		    err, -EINVAL,
		    "--guest dirtier: ws=%s must be a multiple of 4K with a page per vCPU",
		    format_size(ws, a, sizeof(a)));
	return 0;
}

/* The mailbox must be a whole page of free RAM: the guest image is not. */
static int check_pagewriter(const struct guest_spec *spec, uint64_t free_start, uint64_t free_end,
			    struct error *err)
{
	uint64_t gpa = spec->params[PAGEWRITER_P_MAILBOX];

	if (!gpa)
		gpa = free_start;
	if (!IS_ALIGNED(gpa, PAGE_SIZE) || gpa < free_start || gpa >= free_end)
		return err_set(err, -EINVAL,
			       "--guest pagewriter: mailbox=0x%llx must be a page in free RAM "
			       "[0x%llx, 0x%llx)",
			       (unsigned long long)gpa, (unsigned long long)free_start,
			       (unsigned long long)free_end);
	return 0;
}

int guests__load(struct kvm *kvm, const struct guest_spec *spec, struct error *err)
{
	const struct builtin_guest *g = spec->guest;
	struct kvmsnap_bootinfo bi;
	uint64_t free_start, free_end;
	int ret;

	ret = loader__load_elf64(&kvm->mem, g->name, g->elf_start, g->elf_end - g->elf_start,
				 &kvm->boot, err);
	if (ret)
		return ret;
	kvm->boot.all_cpus = true;

	free_start = ALIGN_UP(kvm->boot.image_end, 2 * MiB);
	free_end = pc__low_ram_end(kvm->ram_size);
	if (g->params == dirtier_params) {
		ret = check_dirtier(kvm, spec, free_start, free_end, err);
		if (ret)
			return ret;
	}
	if (g->params == pagewriter_params) {
		ret = check_pagewriter(spec, free_start, free_end, err);
		if (ret)
			return ret;
	}

	memset(&bi, 0, sizeof(bi));
	bi.magic = KVMSNAP_BOOTINFO_MAGIC;
	bi.version = KVMSNAP_BOOTINFO_VERSION;
	bi.nr_cpus = kvm->nr_cpus;
	bi.ram_size = kvm->ram_size;
	bi.low_ram_end = free_end;
	bi.free_start = free_start;
	bi.free_end = free_end;
	bi.tsc_khz = kvm->tsc_khz;
	bi.vga_text = VGA_TEXT_GPA;
	bi.msgport = MSGPORT_GPA;
	memcpy(bi.params, spec->params, sizeof(bi.params));
	snprintf(bi.cmdline, sizeof(bi.cmdline), "%s", spec->text);
	/* x86-64 guests read the struct as it is: same layout, little-endian. */
	ret = mem__write(&kvm->mem, BOOT_INFO_GPA, &bi, sizeof(bi));
	if (ret)
		err_set(err, ret, "--guest %s: no RAM for the boot info at 0x%llx", g->name,
			(unsigned long long)BOOT_INFO_GPA);
	return ret;
}
