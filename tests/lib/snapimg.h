/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the image tests (tests/unit/test_snap_image.c on regular files,
 * tests/kvm/test_image_blockdev.c on loop devices): the smallest PC's
 * configuration, the temporary directory, creating an image, and running
 * `kvmsnap image ...` (cmd_image) in a child with its output captured.
 * CLI() needs a fixture with a `char dir[]`. Folders go with rm_tree() (util.h).
 */
#ifndef KVMSNAP_TEST_SNAPIMG_H
#define KVMSNAP_TEST_SNAPIMG_H

#include <stddef.h>

#include "util.h"

#include "snapshot/image.h"
#include "vmm/pc.h"
#include "vmm/snapcfg.h"

int cmd_image(int argc, char **argv);

/* The smallest PC: 2M RAM, 64K VRAM, 256K BIOS, 128K ACPI: 624 pages. */
int snapimg_small_pc(struct snap_config *cfg, unsigned int vcpus);

/* A new directory $TMPDIR/<prefix>-XXXXXX (or under /tmp) in dir; NULL on failure. */
char *snapimg_mkdtemp(char *dir, size_t size, const char *prefix);

/* snap_image_create with options o, the image closed again on success. */
int snapimg_create(const char *path, const struct snap_config *cfg,
		   const struct snap_target_opts *o, struct error *err);

struct cli_out {
	int status;
	char out[65536];
	char err[4096];
};

/* Run cmd_image in a child, its stdout and stderr captured through files in dir. */
void snapimg_cli(const char *dir, struct cli_out *o, const char *const *args);

#define CLI(o, ...) snapimg_cli(self->dir, (o), (const char *const[]){__VA_ARGS__, NULL})

#endif
