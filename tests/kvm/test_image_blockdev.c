// SPDX-License-Identifier: GPL-2.0
/*
 * Images on raw block devices (loop devices over sparse files). Needs root
 * and losetup, not KVM. Every loop device is detached in the teardown.
 */
#include "../lib/snapimg.h"
#include "../lib/vmproc.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "snapshot/image.h"
#include "vmm/snapcfg.h"

#define MAX_LOOPS 4

FIXTURE(blk)
{
	char dir[256];
	char loops[MAX_LOOPS][64];
	unsigned int nr_loops;
	pid_t holder;
	char mnt[300];
	struct snap_config cfg;
	struct snap_layout layout;
};

/* A loop device over a new sparse file of size bytes; its path in self->loops. */
static const char *add_loop(struct _fixture_blk *self, uint64_t size)
{
	char *dev = self->loops[self->nr_loops];

	if (self->nr_loops >= MAX_LOOPS ||
	    !loop_attach(self->dir, self->nr_loops, size, dev, sizeof(self->loops[0])))
		return NULL;
	self->nr_loops++;
	return dev;
}

FIXTURE_SETUP(blk)
{
	struct error err;

	self->holder = -1;
	TEST_REQUIRE(geteuid() == 0, "needs root for loop devices");
	TEST_REQUIRE(have_tool("losetup"), "losetup is not installed");
	ASSERT_NOT_NULL(snapimg_mkdtemp(self->dir, sizeof(self->dir), "kvmsnap-blk"));
	/* 2.5 MiB image: 2M RAM, 64K VRAM, 256K BIOS, 128K ACPI. */
	ASSERT_EQ(snapimg_small_pc(&self->cfg, 1), 0);
	ASSERT_EQ(snap_layout_compute(&self->cfg, SNAP_ORDER_REGISTRY, &self->layout, &err), 0);
}

FIXTURE_TEARDOWN(blk)
{
	unsigned int i;

	if (self->holder > 0) {
		kill(self->holder, SIGKILL);
		waitpid(self->holder, NULL, 0);
	}
	if (self->mnt[0])
		umount(self->mnt);
	for (i = 0; i < self->nr_loops; i++)
		loop_detach(self->loops[i]);
	rm_tree(self->dir);
}

/* Write byte over the first len bytes of dev: what a device held before. */
static int fill_device(const char *dev, int byte, size_t len)
{
	uint8_t *buf = malloc(len);
	int fd = open(dev, O_WRONLY | O_CLOEXEC), ret = -1;

	if (buf && fd >= 0) {
		memset(buf, byte, len);
		ret = pwrite(fd, buf, len, 0) == (ssize_t)len && !fsync(fd) ? 0 : -1;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/* 1 if dev reads as zeros over [off, off + len), 0 if not, -1 if it cannot be read. */
static int reads_zero(const char *dev, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	int fd = open(dev, O_RDONLY | O_CLOEXEC), ret = -1;
	size_t i;

	if (buf && fd >= 0 && pread(fd, buf, len, (off_t)off) == (ssize_t)len)
		for (ret = 1, i = 0; i < len; i++)
			if (buf[i])
				ret = 0;
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

static int create(const char *dev, const struct snap_config *cfg, bool force, struct error *err)
{
	struct snap_target_opts o = {.force = force, .direct = true};

	return snapimg_create(dev, cfg, &o, err);
}

TEST_F(blk, create_on_a_loop_device)
{
	static struct cli_out o;
	const char *dev = add_loop(self, 4 << 20);
	struct snap_verify_result res;
	struct snap_image img;
	struct error err;
	char want[200];

	ASSERT_NOT_NULL(dev);
	/* Old data where the page slots go: create must zero it, or say it did not. */
	ASSERT_EQ(fill_device(dev, 0xa5, 4 << 20), 0);
	ASSERT_EQ(create(dev, &self->cfg, false, &err), 0);
	ASSERT_EQ(snap_image_open(dev, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_TRUE(img.blockdev);
	EXPECT_EQ(img.target_size, 4 << 20);
	EXPECT_EQ(img.hdr.image_size, self->layout.image_size);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_EMPTY);
	/* A loop device has write-zeroes: zeroed by it, the slots are taken for zeros. */
	EXPECT_EQ(img.hdr.flags, SNAP_HDR_DATA_ZERO);
	EXPECT_EQ(reads_zero(dev, self->layout.sections[0].data_off, SNAP_PAGE_SIZE * 16), 1);
	EXPECT_EQ(snap_image_verify(&img, true, &res, &err), 0);
	EXPECT_EQ(res.pages_checked, 624);
	snap_image_close(&img);

	CLI(&o, "info", dev);
	EXPECT_EQ(o.status, 0);
	EXPECT_NOT_NULL(strstr(o.out, "block device, 4194304 bytes"));
	EXPECT_NOT_NULL(strstr(o.out, "state:              empty"));
	CLI(&o, "verify", dev);
	EXPECT_EQ(o.status, 0);
	snprintf(want, sizeof(want), "image %s: OK (generation 0, empty, 624 pages checked)\n",
		 dev);
	EXPECT_STREQ(o.out, want);

	/* An existing kvmsnap image is no foreign signature: prepare opens it. */
	ASSERT_EQ(snap_image_prepare(dev, &self->cfg, NULL, &img, &err), 0);
	EXPECT_TRUE(img.blockdev);
	snap_image_close(&img);
	EXPECT_EQ(create(dev, &self->cfg, false, &err), 0);
}

TEST_F(blk, prepare_makes_an_image_on_a_blank_device)
{
	const char *dev = add_loop(self, 4 << 20);
	struct snap_image img = {0};
	struct error err;

	ASSERT_NOT_NULL(dev);
	ASSERT_EQ(snap_image_prepare(dev, &self->cfg, NULL, &img, &err), 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_EMPTY);
	snap_image_close(&img);
}

TEST_F(blk, too_small_device_is_refused)
{
	const char *dev = add_loop(self, 1 << 20);
	struct error err;
	char want[200];

	ASSERT_NOT_NULL(dev);
	EXPECT_EQ(create(dev, &self->cfg, false, &err), -ENOSPC);
	snprintf(want, sizeof(want), "%s: 1 MiB device is smaller than the 2.52 MiB image", dev);
	EXPECT_STREQ(err.msg, want);
	/* force overrides signatures, never the size. */
	EXPECT_EQ(create(dev, &self->cfg, true, &err), -ENOSPC);
}

TEST_F(blk, file_system_signature_needs_force)
{
	const char *dev = add_loop(self, 8 << 20);
	struct error err;
	char cmd[200], want[200];
	int fd;

	ASSERT_NOT_NULL(dev);
	if (have_tool("mkfs.ext4")) {
		snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F %s >/dev/null 2>&1", dev);
		ASSERT_EQ(system(cmd), 0);
		snprintf(want, sizeof(want),
			 "%s: carries an ext4 file system signature; use --force to overwrite it",
			 dev);
	} else {
		/* The ext2/3/4 superblock magic, 0xEF53 at 1024 + 0x38. */
		static const uint8_t magic[2] = {0x53, 0xef};

		fd = open(dev, O_WRONLY);
		ASSERT_EQ(pwrite(fd, magic, 2, 1080), 2);
		fsync(fd);
		close(fd);
		snprintf(want, sizeof(want), "%s: carries an ext", dev);
	}
	EXPECT_EQ(create(dev, &self->cfg, false, &err), -EEXIST);
	EXPECT_EQ(strncmp(err.msg, want, strlen(want)), 0);
	TH_LOG("%s", err.msg);
	ASSERT_EQ(create(dev, &self->cfg, true, &err), 0);
	/* Now it is ours. */
	EXPECT_EQ(create(dev, &self->cfg, false, &err), 0);
}

TEST_F(blk, partition_table_needs_force)
{
	const char *dev = add_loop(self, 8 << 20);
	struct error err;
	uint8_t mbr[512] = {0};
	int fd;

	ASSERT_NOT_NULL(dev);
	/* A DOS partition table: one Linux partition from sector 2048, and the 0x55AA mark. */
	mbr[446 + 4] = 0x83;
	mbr[446 + 8] = 0x00;
	mbr[446 + 9] = 0x08;
	mbr[446 + 12] = 0x00;
	mbr[446 + 13] = 0x20;
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	fd = open(dev, O_WRONLY);
	ASSERT_EQ(pwrite(fd, mbr, sizeof(mbr), 0), (ssize_t)sizeof(mbr));
	fsync(fd);
	close(fd);
	EXPECT_EQ(create(dev, &self->cfg, false, &err), -EEXIST);
	EXPECT_NOT_NULL(strstr(err.msg, "partition table; use --force"));
	EXPECT_EQ(create(dev, &self->cfg, true, &err), 0);
}

TEST_F(blk, device_held_by_another_process_is_in_use)
{
	const char *dev = add_loop(self, 4 << 20);
	struct snap_image img;
	struct error err;
	char want[200], c;
	int p[2];

	ASSERT_NOT_NULL(dev);
	ASSERT_EQ(pipe(p), 0);
	self->holder = fork();
	if (self->holder == 0) {
		int fd = open(dev, O_RDONLY | O_EXCL);

		c = fd >= 0 ? 'y' : 'n';
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	ASSERT_EQ(read(p[0], &c, 1), 1);
	ASSERT_EQ(c, 'y');
	EXPECT_EQ(create(dev, &self->cfg, false, &err), -EBUSY);
	snprintf(want, sizeof(want), "%s: device is in use (mounted or held by another program)",
		 dev);
	EXPECT_STREQ(err.msg, want);
	EXPECT_EQ(create(dev, &self->cfg, true, &err), -EBUSY);
	/* A writer's open is exclusive too. */
	EXPECT_EQ(snap_image_prepare(dev, &self->cfg, NULL, &img, &err), -EBUSY);
	close(p[0]);
	close(p[1]);
}

TEST_F(blk, mounted_device_is_in_use)
{
	const char *dev = add_loop(self, 8 << 20);
	struct error err;
	char cmd[200];

	ASSERT_NOT_NULL(dev);
	TEST_REQUIRE(have_tool("mkfs.ext4"), "mkfs.ext4 is not installed");
	snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F %s >/dev/null 2>&1", dev);
	ASSERT_EQ(system(cmd), 0);
	snprintf(self->mnt, sizeof(self->mnt), "%s/mnt", self->dir);
	ASSERT_EQ(mkdir(self->mnt, 0700), 0);
	if (mount(dev, self->mnt, "ext4", 0, NULL)) {
		self->mnt[0] = '\0';
		SKIP(return, "cannot mount ext4: %s", strerror(errno));
	}
	EXPECT_EQ(create(dev, &self->cfg, true, &err), -EBUSY);
	EXPECT_NOT_NULL(strstr(err.msg, "device is in use"));
}

TEST_HARNESS_MAIN
