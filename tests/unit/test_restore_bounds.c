// SPDX-License-Identifier: GPL-2.0
/*
 * Bounded work on a hostile image: a sparse file that claims 512 GiB of guest
 * memory, with a valid header, start section and footer, costs `kvmsnap
 * restore` (and `image info`) no more than a few MiB before it is refused:
 * the machine is checked before any page-header table or state is touched.
 * Needs no KVM: the image is refused before the VM is built.
 */
#include "../harness.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "lib/le.h"
#include "snapshot/snapshot.h"

#define CLAIMED	   (512ULL << 30)
#define RSS_MAX_KB (64 * 1024) /* what the README promises beyond guest memory */

static const char *bin(void)
{
	const char *b = getenv("KVMSNAP_BIN");

	return b && *b ? b : "build/kvmsnap";
}

/* A complete-looking image of a 512 GiB "PC": every block valid, the data a hole. */
static int craft(const char *path)
{
	struct snap_config cfg = {.vcpus = 1, .ram_size = CLAIMED, .vram_size = 16 << 20};
	struct snap_layout l;
	struct snap_header *h = calloc(1, sizeof(*h));
	struct snap_footer f = {0};
	uint8_t *block = calloc(1, 4096);
	struct error err;
	unsigned int k;
	int fd, ret = -1;

	strcpy(cfg.machine, SNAP_MACHINE_PC);
	cfg.nr_regions = 2;
	strcpy(cfg.regions[0].id, "pc.ram");
	cfg.regions[0].size = CLAIMED;
	strcpy(cfg.regions[1].id, "vga.vram");
	cfg.regions[1].size = 16 << 20;
	if (!h || !block || snap_layout_compute(&cfg, SNAP_ORDER_REGISTRY, &l, &err))
		goto out;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)l.image_size))
		goto out;
	h->version = SNAP_FORMAT_VERSION;
	h->state = SNAP_STATE_COMPLETE;
	h->generation = 1;
	h->state_used = 4096; /* a state area that restore never gets to read */
	snap_header_set_layout(h, &l);
	snap_header_encode(h, block);
	if (pwrite(fd, block, 4096, 0) != 4096)
		goto close;
	snap_start_encode(&cfg, block);
	if (pwrite(fd, block, 4096, (off_t)l.start_off) != 4096)
		goto close;
	for (k = 0; k < l.nr_sections; k++) {
		memset(block, 0, 4096);
		snap_section_desc_encode(&l.sections[k], &cfg.regions[l.sections[k].region], block);
		if (pwrite(fd, block, SNAP_SECTION_DESC, (off_t)l.sections[k].offset) !=
		    SNAP_SECTION_DESC)
			goto close;
	}
	f.generation = 1;
	f.passes = 2;
	f.nr_regions = 2;
	f.digest_algo = SNAP_DIGEST_XXH3_TREE;
	f.region_size[0] = CLAIMED;
	f.region_size[1] = 16 << 20;
	snap_footer_encode(&f, block);
	if (pwrite(fd, block, 4096, (off_t)l.footer_off) != 4096)
		goto close;
	ret = 0;
close:
	close(fd);
out:
	free(h);
	free(block);
	return ret;
}

/* Run kvmsnap with args; exit status, its peak RSS in *kb, stderr in err. */
static int run(const char *const *args, long *kb, char *err, size_t len)
{
	char path[] = "/tmp/kvmsnap-bounds-err-XXXXXX";
	int efd = mkstemp(path), status = -1;
	struct rusage ru;
	pid_t pid;
	ssize_t n;

	if (efd < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(efd, STDERR_FILENO);
		execv(bin(), (char *const *)args);
		_exit(127);
	}
	if (pid > 0 && wait4(pid, &status, 0, &ru) == pid)
		*kb = ru.ru_maxrss;
	n = pread(efd, err, len - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	close(efd);
	unlink(path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(a_huge_sparse_image_is_refused_within_bounds)
{
	char dir[] = "/tmp/kvmsnap-bounds-XXXXXX", img[64], err[1024];
	struct stat st;
	long kb = 0;
	int status;

	TEST_REQUIRE(access(bin(), X_OK) == 0, "%s is not built", bin());
	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/huge.img", dir);
	ASSERT_EQ(craft(img), 0);
	ASSERT_EQ(stat(img, &st), 0);
	TH_LOG("image: %lld bytes claimed, %lld on disk", (long long)st.st_size,
	       (long long)st.st_blocks * 512);
	status = run((const char *const[]){bin(), "restore", img, "--serial", "none", NULL}, &kb,
		     err, sizeof(err));
	TH_LOG("restore: status %d, peak RSS %ld KiB: %s", status, kb, err);
	EXPECT_EQ(status, 2);
	EXPECT_NOT_NULL(strstr(err, "not one kvmsnap can build"));
	EXPECT_LT(kb, RSS_MAX_KB);
	status =
	    run((const char *const[]){bin(), "image", "verify", img, NULL}, &kb, err, sizeof(err));
	TH_LOG("verify: status %d, peak RSS %ld KiB: %s", status, kb, err);
	EXPECT_NE(status, 0);
	EXPECT_LT(kb, RSS_MAX_KB);
	unlink(img);
	rmdir(dir);
}

TEST_HARNESS_MAIN
