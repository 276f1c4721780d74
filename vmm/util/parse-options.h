/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarative command-line options: a command describes its options in a
 * table, parse_options() fills the destinations the table names, and
 * parse_options__usage() prints the option list of --help from the same
 * table. Cross-option checks stay in the command, after parsing.
 *
 *	static const struct parse_opt opts[] = {
 *		OPT_SIZE(0, "mem", &o.mem, "SIZE", "guest RAM"),
 *		OPT_UINT(0, "vcpus", &o.vcpus, "N", 1, 64, "vCPUs"),
 *		OPT_BOOL('v', "verbose", &verbose, "debug messages"),
 *		OPT_ARG("IMAGE", &o.image),
 *		OPT_END(),
 *	};
 *
 * Options and positional arguments may come in any order; "--" ends the
 * options. "--name value" and "--name=value" both work, and short options
 * group ("-vq", "-ofile"). -h and --help are always known. A value error
 * names the option and the value ("--vcpus 0: must be a number from 1 to
 * 64"); a usage error names the command ("run: option --mem needs a
 * value"). Nothing here prints an error or exits.
 */
#ifndef KVMSNAP_PARSE_OPTIONS_H
#define KVMSNAP_PARSE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/error.h"

enum parse_opt_type {
	PARSE_OPT_END,
	PARSE_OPT_BOOL,	    /* no value: stores setval (an integer of any width) */
	PARSE_OPT_STRING,   /* const char *: the argument itself */
	PARSE_OPT_SIZE,	    /* integer: parse_size(), K/M/G suffixes, in [min, max] */
	PARSE_OPT_UINT,	    /* integer: parse_uint() in [min, max], times scale */
	PARSE_OPT_ENUM,	    /* integer: the index of the value in names */
	PARSE_OPT_CALLBACK, /* cb(opt, value, err) */
	PARSE_OPT_ARG,	    /* const char *: the next positional argument */
};

struct parse_opt;
typedef int (*parse_opt_cb)(const struct parse_opt *opt, const char *arg, struct error *err);

struct parse_opt {
	enum parse_opt_type type;
	char short_name;	  /* 0: none */
	const char *long_name;	  /* without "--"; NULL: none */
	const char *argh;	  /* the value's name in --help ("SIZE"); positional: its name */
	const char *help;	  /* may hold '\n': the lines line up in --help */
	void *value;		  /* the destination; for a callback, its data */
	size_t value_size;	  /* sizeof the destination for integer types */
	uint64_t setval;	  /* BOOL: the value stored (1 unless OPT_SET) */
	uint64_t min, max;	  /* SIZE, UINT: the range (SIZE: max 0 = none) */
	uint64_t scale;		  /* UINT: stored value = parsed value x scale (0 = 1) */
	const char *unit;	  /* UINT: "--max-time 0: seconds from 1 to 86400" */
	const char *const *names; /* ENUM: the accepted values, NULL-terminated */
	parse_opt_cb cb;	  /* CALLBACK: returns 0 or -errno with err filled */
	bool *seen;		  /* if set: made true when the option is given */
};

/*
 * Every macro takes optional trailing designated initializers for the rarer
 * fields, e.g. OPT_SIZE(0, "threshold", &t, "SIZE", "...", .min = 1) or
 * .seen = &have_mem.
 */
#define OPT_END()                     \
	{                             \
		.type = PARSE_OPT_END \
	}
#define OPT_BOOL(s, l, v, h, ...)                                                         \
	{                                                                                 \
		.type = PARSE_OPT_BOOL, .short_name = (s), .long_name = (l), .help = (h), \
		.value = (v), .value_size = sizeof(*(v)), .setval = 1, __VA_ARGS__        \
	}
/* A flag that stores val, e.g. 0 for --no-direct. */
#define OPT_SET(s, l, v, val, h, ...)                                                     \
	{                                                                                 \
		.type = PARSE_OPT_BOOL, .short_name = (s), .long_name = (l), .help = (h), \
		.value = (v), .value_size = sizeof(*(v)), .setval = (val), __VA_ARGS__    \
	}
#define OPT_STRING(s, l, v, a, h, ...)                                                      \
	{                                                                                   \
		.type = PARSE_OPT_STRING, .short_name = (s), .long_name = (l), .argh = (a), \
		.help = (h), .value = (v), .value_size = sizeof(*(v)), __VA_ARGS__          \
	}
#define OPT_SIZE(s, l, v, a, h, ...)                                                      \
	{                                                                                 \
		.type = PARSE_OPT_SIZE, .short_name = (s), .long_name = (l), .argh = (a), \
		.help = (h), .value = (v), .value_size = sizeof(*(v)), __VA_ARGS__        \
	}
#define OPT_UINT(s, l, v, a, lo, hi, h, ...)                                                     \
	{                                                                                        \
		.type = PARSE_OPT_UINT, .short_name = (s), .long_name = (l), .argh = (a),        \
		.help = (h), .value = (v), .value_size = sizeof(*(v)), .min = (lo), .max = (hi), \
		__VA_ARGS__                                                                      \
	}
#define OPT_ENUM(s, l, v, a, list, h, ...)                                                \
	{                                                                                 \
		.type = PARSE_OPT_ENUM, .short_name = (s), .long_name = (l), .argh = (a), \
		.help = (h), .value = (v), .value_size = sizeof(*(v)), .names = (list),   \
		__VA_ARGS__                                                               \
	}
#define OPT_CALLBACK(s, l, data, a, fn, h, ...)                                               \
	{                                                                                     \
		.type = PARSE_OPT_CALLBACK, .short_name = (s), .long_name = (l), .argh = (a), \
		.help = (h), .value = (data), .cb = (fn), __VA_ARGS__                         \
	}
#define OPT_ARG(a, v)                                            \
	{                                                        \
		.type = PARSE_OPT_ARG, .argh = (a), .value = (v) \
	}

/* parse_options() after -h or --help: the command prints its usage. */
#define PARSE_OPT_HELP 1

/*
 * Parse argv[1..argc-1] (argv[0] is the command) against opts. cmd names
 * the command in messages ("run", "image size"). Returns 0, PARSE_OPT_HELP,
 * or -EINVAL with one line in err. Options are handled in the order given;
 * a later one overrides an earlier one.
 */
int parse_options(int argc, char **argv, const char *cmd, const struct parse_opt *opts,
		  struct error *err);

/* The option lines of --help for opts, then "  -h, --help  this help". */
void parse_options__usage(FILE *f, const struct parse_opt *opts);

#endif
