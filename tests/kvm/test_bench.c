// SPDX-License-Identifier: GPL-2.0
/*
 * `kvmsnap bench` on a grid small enough to finish in seconds: its CSV has
 * the documented columns, one row per (kind, round), and values that hold
 * whatever the machine's speed:
 *
 *  - every save succeeded; bytes written >= pages x 4096;
 *  - the fixed image's size is `kvmsnap image size` for that VM, in every round;
 *  - the append file holds every page of the guest at least once: with its
 *    data, or as a zero run (QEMU's zero pages), and at least pass 1's data;
 *  - QEMU's file, when QEMU is installed, is not empty.
 *
 * Bad grids are refused before any VM starts, with one line naming the value.
 */
#include <inttypes.h>

#include "../lib/snapimg.h"
#include "../lib/vmproc.h"

#define MEM    "64M"
#define ROUNDS 2 /* as --rounds below */
#define CSV_COLS                                                                                \
	"case,ram,ws,rate,pattern,vcpus,target,round,kind,ok,converged,total_ms,downtime_ms,"   \
	"restore_ms,restore_lazy_ms,guest_pps,passes,throttle_max,pages,zero_pages,bytes,file_" \
	"bytes,image_size,"                                                                     \
	"file_ratio,"                                                                           \
	"write_mib_s,target_mib_s,ratio_to_target,pass1_ratio,guest_pps_during,note"

enum {
	C_ROUND = 7,
	C_KIND,
	C_OK,
	C_PAGES = 18,
	C_ZERO,
	C_BYTES,
	C_FILE,
	C_IMAGE,
	C_NOTE = 29,
	C_NR
};

/* Split a CSV row (only the last field may be quoted) into C_NR fields. */
static int split_row(char *line, char **f)
{
	int n = 0;

	while (n < C_NR - 1) {
		f[n++] = line;
		line = strchr(line, ',');
		if (!line)
			return n;
		*line++ = '\0';
	}
	f[n++] = line;
	return n;
}

static uint64_t u64(const char *s)
{
	return strtoull(s, NULL, 10);
}

/* `kvmsnap image size --mem MEM --json`: image_size and total_ram_bytes. */
static void image_terms(struct th_result *_r, uint64_t *image, uint64_t *ram)
{
	const char *const prefix[] = {"image", "size", NULL};
	const char *const args[] = {"--mem", MEM, "--json", NULL};
	char err[OUT_MAX];
	struct json_object *j = cli_json_ok(prefix, args, err);

	ASSERT_NE(j, NULL);
	*image = u64_of(j, "image_size");
	*ram = u64_of(j, "total_ram_bytes");
	json_object_put(j);
	ASSERT_GT(*image, 0);
	ASSERT_GT(*ram, 0);
}

TEST_TIMEOUT(small_grid_csv_is_sane, 300)
{
	char dir[64], csv[128], out[OUT_MAX], err[OUT_MAX], kinds[32], *text, *line, *save = NULL;
	unsigned int rows = 0, seen[3] = {0};
	uint64_t image_size, ram_bytes, max_fixed_data = 0;
	bool qemu = have_tool("qemu-system-x86_64");
	int status;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	image_terms(_r, &image_size, &ram_bytes);
	ASSERT_NE(snapimg_mkdtemp(dir, sizeof(dir), "bench"), NULL);
	snprintf(csv, sizeof(csv), "%s/out.csv", dir);
	snprintf(kinds, sizeof(kinds), "fixed,append%s", qemu ? ",qemu" : "");
	status = RUN_CLI(out, err, "bench", "--dir", dir, "--ram", MEM, "--ws", "8M", "--rate",
			 "20", "--rounds", "2", "--warm", "200", "--no-fio", "--kinds", kinds,
			 "--max-time", "30", "--csv", csv, "--no-progress");
	if (status)
		TH_LOG("bench: %s", err);
	ASSERT_EQ(status, 0);
	ASSERT_NE(strstr(out, "case 1:"), NULL);

	text = malloc(1 << 20);
	ASSERT_NE(text, NULL);
	read_file(csv, text, 1 << 20);
	line = strtok_r(text, "\n", &save);
	ASSERT_NE(line, NULL);
	EXPECT_STREQ(line, CSV_COLS);
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *f[C_NR];
		int kind;

		ASSERT_EQ(split_row(line, f), C_NR);
		kind = !strcmp(f[C_KIND], "fixed") ? 0 : !strcmp(f[C_KIND], "append") ? 1 : 2;
		seen[kind]++;
		rows++;
		EXPECT_STREQ(f[C_OK], "1");
		EXPECT_GE(u64(f[C_BYTES]), u64(f[C_PAGES]) * 4096);
		EXPECT_GT(u64(f[C_FILE]), 0);
		if (kind == 0) {
			EXPECT_EQ(u64(f[C_FILE]), image_size);
			EXPECT_EQ(u64(f[C_IMAGE]), image_size);
			/* Every page written or, a hole over a zero slot, kept. */
			EXPECT_GE((u64(f[C_PAGES]) + u64(f[C_ZERO])) * 4096, ram_bytes);
			if (u64(f[C_BYTES]) > max_fixed_data)
				max_fixed_data = u64(f[C_BYTES]);
		} else if (kind == 1) {
			/* and the file is its data plus headers (bytes = file_bytes) */
			EXPECT_GE((u64(f[C_PAGES]) + u64(f[C_ZERO])) * 4096, ram_bytes);
			EXPECT_EQ(u64(f[C_BYTES]), u64(f[C_FILE]));
		}
	}
	EXPECT_EQ(seen[0], ROUNDS);
	EXPECT_EQ(seen[1], ROUNDS);
	EXPECT_EQ(seen[2], qemu ? ROUNDS : 0);
	EXPECT_EQ(rows, (qemu ? 3 : 2) * ROUNDS);
	/* The fixed image wrote something; the kept zeros are checked above. */
	EXPECT_GT(max_fixed_data, 0);
	free(text);
	rm_tree(dir);
}

TEST(bad_grids_refused_up_front)
{
	static const struct {
		const char *opt, *val, *want;
	} cases[] = {
	    {"--ram", "64M,xyz", "'xyz' is not a size"},
	    {"--ws", "1G", "does not fit in 64M of RAM"},
	    {"--pattern", "zigzag", "'zigzag' is not one of seq, random, hot"},
	    {"--kinds", "fixed,,qemu", "an empty value"},
	    {"--target", "tape", "'tape' is not one of file, loop"},
	    {"--vcpus", "0", "'0' is not a number from 1 to 64"},
	    {"--csv", "/nonexistent/out.csv", "--csv /nonexistent/out.csv: its folder"},
	};
	char out[OUT_MAX], err[OUT_MAX], dir[64];
	unsigned int i;

	ASSERT_NE(snapimg_mkdtemp(dir, sizeof(dir), "bench"), NULL);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int status = RUN_CLI(out, err, "bench", "--dir", dir, "--ram", "64M", "--ws", "8M",
				     cases[i].opt, cases[i].val, "--no-progress");

		EXPECT_EQ(status, 2);
		EXPECT_NE(strstr(err, cases[i].want), NULL);
		EXPECT_EQ(count_lines(err), 1);
	}
	/* No scratch folder was made for a refused grid: dir is still empty. */
	EXPECT_EQ(rmdir(dir), 0);
}

TEST_HARNESS_MAIN
