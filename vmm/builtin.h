/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The subcommands of the kvmsnap binary, one vmm/builtin-<cmd>.c each. Each
 * takes the arguments after its own name (argv[0] is the subcommand) and
 * returns the process exit status (exit-status.h).
 */
#ifndef KVMSNAP_BUILTIN_H
#define KVMSNAP_BUILTIN_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit-status.h"
#include "layout.h"
#include "util/parse-options.h"
#include "util/util.h"

int cmd_run(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/*
 * The options of every command that runs a VM (run, restore), for its
 * option table. o points to a struct with the fields control, serial,
 * kvm_dev, user (const char *) and keep_caps (bool); VM_OPTIONS_DEFAULTS(o)
 * sets their defaults before parsing.
 */
#define VM_OPTIONS(o)                                                              \
	OPT_STRING(0, "control", &(o)->control, "PATH",                            \
		   "serve the JSON control protocol on this UNIX socket"),         \
	    OPT_STRING(0, "serial", &(o)->serial, "WHERE",                         \
		       "guest serial line: stdio (default; stdin is its input),\n" \
		       "a file (output only), or none"),                           \
	    OPT_STRING(0, "kvm-device", &(o)->kvm_dev, "PATH",                     \
		       "the KVM device, default /dev/kvm"),                        \
	    USER_OPTION(o),                                                        \
	    OPT_BOOL(0, "keep-caps", &(o)->keep_caps,                              \
		     "no lock-down: keep the user, every capability and no\n"      \
		     "seccomp filter. By default, once /dev/kvm, the serial\n"     \
		     "file and the control socket are open, kvmsnap switches\n"    \
		     "to --user, drops every capability, sets no_new_privs\n"      \
		     "and allows only the syscalls it needs. Keep them only\n"     \
		     "to debug (e.g. to attach perf or gdb as root);\n"            \
		     "KVMSNAP_KEEP_CAPS=1 in the environment does the same."),     \
	    OPT_BOOL('v', "verbose", &log_verbose, "debug messages")

/* --user for a struct with a const char *user: run, restore and snapshot. */
#define USER_OPTION(o)                                                         \
	OPT_STRING(0, "user", &(o)->user, "USER[:GROUP]",                      \
		   "the user (name or uid) and group to run as once set up;\n" \
		   "started as root the default is nobody:nogroup, and\n"      \
		   "root keeps root (without capabilities)")

/*
 * Parse a command's options (parse_options()) and print what comes of it:
 * usage(stdout, opts) after --help, or the one error line. Returns 0, 1
 * after --help, or -EINVAL after a usage error.
 */
static inline int builtin__parse_options(int argc, char **argv, const char *cmd,
					 const struct parse_opt *opts,
					 void (*usage)(FILE *f, const struct parse_opt *opts))
{
	struct error err;
	int ret = parse_options(argc, argv, cmd, opts, &err);

	if (ret == PARSE_OPT_HELP) {
		usage(stdout, opts);
		return 1;
	}
	if (ret)
		pr_err("%s", err.msg);
	return ret ? -EINVAL : 0;
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

/*
 * --mem, --vcpus and --vram into a struct pc_config *pc (run, image size and
 * image create); seen (a bool *, or NULL) is set when one of them is given.
 * The ranges of --mem and --vram are pc__check_config()'s, after parsing.
 */
#define PC_OPTIONS(pc, seen_)                                                                      \
	OPT_SIZE(0, "mem", &(pc)->ram_size, "SIZE",                                                \
		 "guest RAM (K/M/G suffixes), default 256M, 2M..64G", .seen = (seen_)),            \
	    OPT_UINT(0, "vcpus", &(pc)->nr_cpus, "N", 1, VCPUS_MAX,                                \
		     "vCPUs, one thread each, default 1, at most " STRINGIFY(VCPUS_MAX),           \
		     .seen = (seen_)),                                                             \
	    OPT_SIZE(0, "vram", &(pc)->vram_size, "SIZE", "VGA video RAM, default 16M, 64K..256M", \
		     .seen = (seen_))

#define VM_OPTIONS_DEFAULTS(o)                                   \
	do {                                                     \
		const char *keep_ = getenv("KVMSNAP_KEEP_CAPS"); \
                                                                 \
		(o)->serial = "stdio";                           \
		(o)->kvm_dev = "/dev/kvm";                       \
		(o)->keep_caps = keep_ && !strcmp(keep_, "1");   \
	} while (0)

#endif
