// SPDX-License-Identifier: GPL-2.0
/* Declarative command-line options: see parse-options.h. */
#include <errno.h>
#include <string.h>

#include "parse-options.h"
#include "util.h"

/* The help text starts in this column at most; longer option names wrap. */
#define USAGE_HELP_COL_MAX 24

/* "--mem" or "-m": how messages name an option. */
static const char *opt_name(const struct parse_opt *o, char *buf, size_t len)
{
	if (o->long_name)
		snprintf(buf, len, "--%s", o->long_name);
	else
		snprintf(buf, len, "-%c", o->short_name);
	return buf;
}

static void store_uint(const struct parse_opt *o, uint64_t v)
{
	switch (o->value_size) {
	case 1:
		*(uint8_t *)o->value = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)o->value = (uint16_t)v;
		break;
	case 4:
		*(uint32_t *)o->value = (uint32_t)v;
		break;
	default:
		*(uint64_t *)o->value = v;
		break;
	}
}

/* The largest value the destination holds. */
static uint64_t dest_max(const struct parse_opt *o)
{
	return o->value_size >= 8 ? UINT64_MAX : (1ULL << (8 * o->value_size)) - 1;
}

static int enum_error(const struct parse_opt *o, const char *name, const char *arg,
		      struct error *err)
{
	char list[160] = "";
	size_t n = 0, i;

	while (o->names[n])
		n++;
	for (i = 0; i < n; i++) {
		size_t used = strlen(list);

		snprintf(list + used, sizeof(list) - used, "%s%s",
			 i == 0 ? "" : (i + 1 == n ? " or " : ", "), o->names[i]);
	}
	return err_set(err, -EINVAL, "%s %s: must be %s", name, arg, list);
}

/* Check and store the value of one option. */
static int set_value(const struct parse_opt *o, const char *arg, struct error *err)
{
	char name[64], a[32], b[32];
	uint64_t v, max;
	unsigned int i;
	int ret;

	opt_name(o, name, sizeof(name));
	switch (o->type) {
	case PARSE_OPT_BOOL:
		store_uint(o, o->setval);
		break;
	case PARSE_OPT_STRING:
		*(const char **)o->value = arg;
		break;
	case PARSE_OPT_SIZE:
		ret = parse_size(arg, &v);
		if (ret)
			return err_set(err, -EINVAL, "%s %s: %s", name, arg,
				       ret == -ERANGE ? "too large"
						      : "not a size (use e.g. 512M or 2G)");
		max = o->max ? o->max : dest_max(o);
		if (v < o->min)
			return err_set(err, -EINVAL, "%s %s: must be at least %s", name, arg,
				       format_size(o->min, a, sizeof(a)));
		if (v > max)
			return err_set(err, -EINVAL, "%s %s: must be at most %s", name, arg,
				       format_size(max, b, sizeof(b)));
		store_uint(o, v);
		break;
	case PARSE_OPT_UINT:
		if (parse_uint(arg, o->min, o->max, &v)) {
			if (o->unit)
				return err_set(err, -EINVAL, "%s %s: %s from %llu to %llu", name,
					       arg, o->unit, (unsigned long long)o->min,
					       (unsigned long long)o->max);
			return err_set(err, -EINVAL, "%s %s: must be a number from %llu to %llu",
				       name, arg, (unsigned long long)o->min,
				       (unsigned long long)o->max);
		}
		store_uint(o, v * (o->scale ? o->scale : 1));
		break;
	case PARSE_OPT_ENUM:
		for (i = 0; o->names[i]; i++)
			if (!strcmp(arg, o->names[i]))
				break;
		if (!o->names[i])
			return enum_error(o, name, arg, err);
		store_uint(o, i);
		break;
	case PARSE_OPT_CALLBACK:
		ret = o->cb(o, arg, err);
		if (ret)
			return ret;
		break;
	default:
		return err_set(err, -EINVAL, "%s: not an option", name);
	}
	if (o->seen)
		*o->seen = true;
	return 0;
}

static bool takes_value(const struct parse_opt *o)
{
	return o->type != PARSE_OPT_BOOL;
}

static const struct parse_opt *find_long(const struct parse_opt *opts, const char *name, size_t len)
{
	for (; opts->type != PARSE_OPT_END; opts++)
		if (opts->long_name && strlen(opts->long_name) == len &&
		    !strncmp(opts->long_name, name, len))
			return opts;
	return NULL;
}

static const struct parse_opt *find_short(const struct parse_opt *opts, char c)
{
	for (; opts->type != PARSE_OPT_END; opts++)
		if (opts->short_name && opts->short_name == c)
			return opts;
	return NULL;
}

static int unknown(const char *cmd, const char *what, struct error *err)
{
	return err_set(err, -EINVAL, "%s: unknown option '%s' (see kvmsnap %s --help)", cmd, what,
		       cmd);
}

static int needs_value(const char *cmd, const struct parse_opt *o, struct error *err)
{
	char name[64];

	return err_set(err, -EINVAL, "%s: option %s needs a value", cmd,
		       opt_name(o, name, sizeof(name)));
}

/* "--name", "--name=value" or "--name value"; *i moves past what it used. */
static int parse_long(int argc, char **argv, int *i, const char *cmd, const struct parse_opt *opts,
		      struct error *err)
{
	const char *name = argv[*i] + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct parse_opt *o;

	if ((len == 4 && !strncmp(name, "help", 4)) && !eq)
		return PARSE_OPT_HELP;
	o = find_long(opts, name, len);
	if (!o)
		return unknown(cmd, argv[*i], err);
	if (!takes_value(o)) {
		if (eq)
			return err_set(err, -EINVAL, "%s: option --%s takes no value", cmd,
				       o->long_name);
		return set_value(o, NULL, err);
	}
	if (eq)
		return set_value(o, eq + 1, err);
	if (*i + 1 >= argc)
		return needs_value(cmd, o, err);
	return set_value(o, argv[++*i], err);
}

/* "-v", a group "-vq", or "-ofile" / "-o file". */
static int parse_short(int argc, char **argv, int *i, const char *cmd, const struct parse_opt *opts,
		       struct error *err)
{
	const char *p;

	for (p = argv[*i] + 1; *p; p++) {
		const struct parse_opt *o = find_short(opts, *p);
		char bad[3] = {'-', *p, '\0'};
		int ret;

		if (!o && *p == 'h')
			return PARSE_OPT_HELP;
		if (!o)
			return unknown(cmd, bad, err);
		if (!takes_value(o)) {
			ret = set_value(o, NULL, err);
			if (ret)
				return ret;
			continue;
		}
		if (p[1])
			return set_value(o, p + 1, err);
		if (*i + 1 >= argc)
			return needs_value(cmd, o, err);
		return set_value(o, argv[++*i], err);
	}
	return 0;
}

/* The next positional argument, or "unexpected argument". */
static int parse_arg(const char *arg, const char *cmd, const struct parse_opt *opts,
		     unsigned int *nr_args, struct error *err)
{
	unsigned int n = 0;

	for (; opts->type != PARSE_OPT_END; opts++) {
		if (opts->type != PARSE_OPT_ARG)
			continue;
		if (n++ == *nr_args) {
			*(const char **)opts->value = arg;
			++*nr_args;
			return 0;
		}
	}
	return err_set(err, -EINVAL, "%s: unexpected argument '%s'", cmd, arg);
}

int parse_options(int argc, char **argv, const char *cmd, const struct parse_opt *opts,
		  struct error *err)
{
	unsigned int nr_args = 0;
	bool only_args = false;
	int i, ret = 0;

	for (i = 1; i < argc && !ret; i++) {
		const char *a = argv[i];

		if (only_args || a[0] != '-' || !a[1])
			ret = parse_arg(a, cmd, opts, &nr_args, err);
		else if (!strcmp(a, "--"))
			only_args = true;
		else if (a[1] == '-')
			ret = parse_long(argc, argv, &i, cmd, opts, err);
		else
			ret = parse_short(argc, argv, &i, cmd, opts, err);
	}
	return ret;
}

/* Print text with every line after the first indented to col. */
static void print_help(FILE *f, const char *text, int col)
{
	const char *p = text, *nl;

	while ((nl = strchr(p, '\n'))) {
		fprintf(f, "%.*s\n%*s", (int)(nl - p), p, col, "");
		p = nl + 1;
	}
	fprintf(f, "%s\n", p);
}

/* "-v, --verbose" or "--mem SIZE" into buf; returns its length. */
static int option_text(const struct parse_opt *o, char *buf, size_t len)
{
	int n = 0;

	if (o->short_name)
		n += snprintf(buf + n, len - n, "-%c%s", o->short_name, o->long_name ? ", " : "");
	if (o->long_name)
		n += snprintf(buf + n, len - n, "--%s", o->long_name);
	if (takes_value(o) && o->argh)
		n += snprintf(buf + n, len - n, " %s", o->argh);
	return n;
}

void parse_options__usage(FILE *f, const struct parse_opt *opts)
{
	static const struct parse_opt help = OPT_BOOL('h', "help", (bool *)NULL, "this help");
	const struct parse_opt *o;
	char text[96];
	int width = 0, col, n;

	for (o = opts; o->type != PARSE_OPT_END; o++) {
		n = option_text(o, text, sizeof(text));
		if (o->type != PARSE_OPT_ARG && n > width && n + 4 <= USAGE_HELP_COL_MAX)
			width = n;
	}
	n = option_text(&help, text, sizeof(text));
	if (n > width)
		width = n;
	col = 2 + width + 2;
	for (o = opts;; o++) {
		if (o->type == PARSE_OPT_ARG)
			continue;
		if (o->type == PARSE_OPT_END)
			o = &help;
		n = option_text(o, text, sizeof(text));
		if (n > width)
			fprintf(f, "  %s\n%*s", text, col, "");
		else
			fprintf(f, "  %-*s  ", width, text);
		print_help(f, o->help ? o->help : "", col);
		if (o == &help)
			break;
	}
}
