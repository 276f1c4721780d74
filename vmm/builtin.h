/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The subcommands of the kvmsnap binary. Each takes the arguments after its
 * own name (argv[0] is the subcommand) and returns the process exit status.
 */
#ifndef KVMSNAP_BUILTIN_H
#define KVMSNAP_BUILTIN_H

#include <stdbool.h>

int cmd_run(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_restore(int argc, char **argv);

/* `kvmsnap image screen`: print the VGA text screen an image holds (vmm/screen.c). */
int image__screen(const char *path, bool ansi);

#endif
