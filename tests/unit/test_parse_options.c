// SPDX-License-Identifier: GPL-2.0
/* The declarative option parser of the commands, without KVM. */
#include "../harness.h"

#include "vmm/util/parse-options.h"
#include "vmm/util/util.h"

struct opts {
	bool flag, direct, seen_num;
	int verbose;
	const char *name;
	uint64_t size;
	unsigned int num;
	uint64_t ms;
	uint8_t small;
	uint32_t color;
	const char *first, *second;
	char cb_seen[32];
};

static const char *const colors[] = {"red", "green", "blue", NULL};

static int cb_upper(const struct parse_opt *opt, const char *arg, struct error *err)
{
	struct opts *o = opt->value;

	if (!strcmp(arg, "bad"))
		return err_set(err, -EINVAL, "--cb %s: not wanted", arg);
	snprintf(o->cb_seen, sizeof(o->cb_seen), "%s", arg);
	return 0;
}

#define TABLE(o)                                                                                   \
	{                                                                                          \
		OPT_ARG("FIRST", &(o)->first), OPT_ARG("SECOND", &(o)->second),                    \
		    OPT_BOOL('f', "flag", &(o)->flag, "a flag"),                                   \
		    OPT_SET(0, "no-direct", &(o)->direct, false, "clear direct"),                  \
		    OPT_BOOL('v', "verbose", &(o)->verbose, "debug messages"),                     \
		    OPT_STRING('n', "name", &(o)->name, "NAME", "a name\non two lines"),           \
		    OPT_SIZE(0, "size", &(o)->size, "SIZE", "a size", .min = 4096),                \
		    OPT_UINT(0, "num", &(o)->num, "N", 1, 64, "a number", .seen = &(o)->seen_num), \
		    OPT_UINT(0, "time", &(o)->ms, "SECONDS", 1, 86400, "seconds",                  \
			     .unit = "seconds", .scale = 1000),                                    \
		    OPT_UINT(0, "small", &(o)->small, "N", 0, 255, "one byte"),                    \
		    OPT_ENUM(0, "color", &(o)->color, "COLOR", colors, "a colour"),                \
		    OPT_CALLBACK(0, "cb", (o), "ARG", cb_upper, "a callback"),                     \
		    OPT_STRING(0, "a-very-long-option-name", &(o)->name, "VALUE",                  \
			       "wraps to a line"),                                                 \
		    OPT_END(),                                                                     \
	}

/* Parse the NULL-terminated arguments (after the command "test") into o. */
static int parse(struct opts *o, struct error *err, const char *const *args)
{
	const struct parse_opt table[] = TABLE(o);
	char cmd[] = "test", *argv[32] = {cmd};
	int argc = 1;

	memset(o, 0, sizeof(*o));
	o->direct = true;
	memset(err, 0, sizeof(*err));
	while (*args && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	return parse_options(argc, argv, "test", table, err);
}

#define PARSE(o, err, ...) parse(o, err, (const char *const[]){__VA_ARGS__, NULL})

TEST(types)
{
	struct opts o;
	struct error err;

	ASSERT_EQ(PARSE(&o, &err, "--flag", "--no-direct", "--name", "x", "--size", "64K", "--num",
			"7", "--time", "3", "--small", "255", "--color", "blue", "--cb", "hi"),
		  0);
	EXPECT_TRUE(o.flag);
	EXPECT_FALSE(o.direct);
	EXPECT_STREQ(o.name, "x");
	EXPECT_EQ(o.size, 65536);
	EXPECT_EQ(o.num, 7);
	EXPECT_TRUE(o.seen_num);
	EXPECT_EQ(o.ms, 3000);
	EXPECT_EQ(o.small, 255);
	EXPECT_EQ(o.color, 2);
	EXPECT_STREQ(o.cb_seen, "hi");
	EXPECT_NULL(o.first);

	ASSERT_EQ(PARSE(&o, &err, "--size", "2G"), 0);
	EXPECT_EQ(o.size, 2ULL << 30);
	EXPECT_FALSE(o.seen_num);
	EXPECT_TRUE(o.direct);
	/* The last one wins. */
	ASSERT_EQ(PARSE(&o, &err, "--num", "2", "--num", "3"), 0);
	EXPECT_EQ(o.num, 3);
}

TEST(value_forms)
{
	struct opts o;
	struct error err;

	ASSERT_EQ(PARSE(&o, &err, "--name=a=b", "--num=5"), 0);
	EXPECT_STREQ(o.name, "a=b");
	EXPECT_EQ(o.num, 5);
	ASSERT_EQ(PARSE(&o, &err, "--name", "--flag"), 0);
	EXPECT_STREQ(o.name, "--flag");
	EXPECT_FALSE(o.flag);
	ASSERT_EQ(PARSE(&o, &err, "--name="), 0);
	EXPECT_STREQ(o.name, "");
	/* Short options: alone, grouped, with the value attached or next. */
	ASSERT_EQ(PARSE(&o, &err, "-f", "-n", "x"), 0);
	EXPECT_TRUE(o.flag);
	EXPECT_STREQ(o.name, "x");
	ASSERT_EQ(PARSE(&o, &err, "-vf"), 0);
	EXPECT_TRUE(o.flag);
	EXPECT_EQ(o.verbose, 1);
	ASSERT_EQ(PARSE(&o, &err, "-fnvalue"), 0);
	EXPECT_TRUE(o.flag);
	EXPECT_STREQ(o.name, "value");
	ASSERT_EQ(PARSE(&o, &err, "-vfn", "y"), 0);
	EXPECT_STREQ(o.name, "y");
}

TEST(ranges)
{
	struct opts o;
	struct error err;

	EXPECT_EQ(PARSE(&o, &err, "--num", "0"), -EINVAL);
	EXPECT_STREQ(err.msg, "--num 0: must be a number from 1 to 64");
	EXPECT_EQ(PARSE(&o, &err, "--num", "65"), -EINVAL);
	EXPECT_STREQ(err.msg, "--num 65: must be a number from 1 to 64");
	EXPECT_EQ(PARSE(&o, &err, "--num", "two"), -EINVAL);
	EXPECT_STREQ(err.msg, "--num two: must be a number from 1 to 64");
	EXPECT_FALSE(o.seen_num);
	EXPECT_EQ(PARSE(&o, &err, "--time", "86401"), -EINVAL);
	EXPECT_STREQ(err.msg, "--time 86401: seconds from 1 to 86400");
	EXPECT_EQ(PARSE(&o, &err, "--size", "1X"), -EINVAL);
	EXPECT_STREQ(err.msg, "--size 1X: not a size (use e.g. 512M or 2G)");
	EXPECT_EQ(PARSE(&o, &err, "--size", "99999999T"), -EINVAL);
	EXPECT_STREQ(err.msg, "--size 99999999T: too large");
	EXPECT_EQ(PARSE(&o, &err, "--size", "1K"), -EINVAL);
	EXPECT_STREQ(err.msg, "--size 1K: must be at least 4K");
	EXPECT_EQ(PARSE(&o, &err, "--small", "256"), -EINVAL);
	EXPECT_EQ(PARSE(&o, &err, "--color", "pink"), -EINVAL);
	EXPECT_STREQ(err.msg, "--color pink: must be red, green or blue");
	EXPECT_EQ(PARSE(&o, &err, "--cb", "bad"), -EINVAL);
	EXPECT_STREQ(err.msg, "--cb bad: not wanted");
	/* A short option is named by its long name in value errors. */
	EXPECT_EQ(PARSE(&o, &err, "-n"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: option --name needs a value");
}

TEST(missing_values)
{
	struct opts o;
	struct error err;

	EXPECT_EQ(PARSE(&o, &err, "--num"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: option --num needs a value");
	EXPECT_EQ(PARSE(&o, &err, "-vn"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: option --name needs a value");
	EXPECT_EQ(PARSE(&o, &err, "--flag=1"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: option --flag takes no value");
}

TEST(unknown_options)
{
	struct opts o;
	struct error err;

	EXPECT_EQ(PARSE(&o, &err, "--bogus"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: unknown option '--bogus' (see kvmsnap test --help)");
	EXPECT_EQ(PARSE(&o, &err, "--bogus=3"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: unknown option '--bogus=3' (see kvmsnap test --help)");
	EXPECT_EQ(PARSE(&o, &err, "-x"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: unknown option '-x' (see kvmsnap test --help)");
	/* The unknown letter of a group, before or after known ones. */
	EXPECT_EQ(PARSE(&o, &err, "-xv"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: unknown option '-x' (see kvmsnap test --help)");
	EXPECT_EQ(PARSE(&o, &err, "-vfq"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: unknown option '-q' (see kvmsnap test --help)");
	/* No abbreviations: a prefix is not the option. */
	EXPECT_EQ(PARSE(&o, &err, "--fla"), -EINVAL);
}

TEST(help)
{
	struct opts o;
	struct error err;

	EXPECT_EQ(PARSE(&o, &err, "--help"), PARSE_OPT_HELP);
	EXPECT_EQ(PARSE(&o, &err, "-h"), PARSE_OPT_HELP);
	EXPECT_EQ(PARSE(&o, &err, "-vh"), PARSE_OPT_HELP);
	EXPECT_EQ(PARSE(&o, &err, "a", "--flag", "--help"), PARSE_OPT_HELP);
	/* An error before --help wins. */
	EXPECT_EQ(PARSE(&o, &err, "--bogus", "--help"), -EINVAL);
}

TEST(positional_arguments)
{
	struct opts o;
	struct error err;

	ASSERT_EQ(PARSE(&o, &err, "one", "--flag", "two"), 0);
	EXPECT_STREQ(o.first, "one");
	EXPECT_STREQ(o.second, "two");
	EXPECT_TRUE(o.flag);
	ASSERT_EQ(PARSE(&o, &err, "--num", "3", "one"), 0);
	EXPECT_STREQ(o.first, "one");
	EXPECT_NULL(o.second);
	/* "-" is an argument; after "--" everything is. */
	ASSERT_EQ(PARSE(&o, &err, "-", "--", "--flag"), 0);
	EXPECT_STREQ(o.first, "-");
	EXPECT_STREQ(o.second, "--flag");
	EXPECT_FALSE(o.flag);
	EXPECT_EQ(PARSE(&o, &err, "a", "b", "c"), -EINVAL);
	EXPECT_STREQ(err.msg, "test: unexpected argument 'c'");
}

TEST(usage_lists_every_option)
{
	struct opts o;
	const struct parse_opt table[] = TABLE(&o);
	const struct parse_opt *p;
	char *buf = NULL, *line, want[80];
	size_t len = 0;
	int col;
	FILE *f = open_memstream(&buf, &len);

	ASSERT_NOT_NULL(f);
	parse_options__usage(f, table);
	fclose(f);
	for (p = table; p->type != PARSE_OPT_END; p++) {
		if (p->type == PARSE_OPT_ARG)
			continue;
		snprintf(want, sizeof(want), "--%s%s%s", p->long_name, p->argh ? " " : "",
			 p->argh ? p->argh : "");
		EXPECT_NOT_NULL(strstr(buf, want));
		snprintf(want, sizeof(want), "%.*s", (int)strcspn(p->help, "\n"), p->help);
		EXPECT_NOT_NULL(strstr(buf, want));
	}
	/* Positional arguments are the synopsis' business, not the option list's. */
	EXPECT_NULL(strstr(buf, "FIRST"));
	EXPECT_EQ(strncmp(buf, "  -f, --flag ", 13), 0);
	EXPECT_NOT_NULL(strstr(buf, "\n  -n, --name NAME "));
	EXPECT_NOT_NULL(strstr(buf, "\n  -h, --help "));
	/* Help text lines up: the second line starts in the column of the first. */
	line = strstr(buf, "\n  -n, --name NAME ") + 1;
	col = (int)(strstr(line, "a name\n") - line);
	snprintf(want, sizeof(want), "a name\n%*son two lines\n", col, "");
	EXPECT_NOT_NULL(strstr(buf, want));
	/* A name too long for the column puts its help on the next line, there. */
	snprintf(want, sizeof(want), "--a-very-long-option-name VALUE\n%*swraps", col, "");
	EXPECT_NOT_NULL(strstr(buf, want));
	free(buf);
}

TEST_HARNESS_MAIN
