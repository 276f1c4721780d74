// SPDX-License-Identifier: GPL-2.0
/*
 * Image targets as a hostile local user would try them: links, modes,
 * two writers, a reader during a write, and a file system whose first bytes
 * were made to look like an image. Only the snapshot library is linked.
 */
#include "../harness.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "snapshot/image.h"

FIXTURE(target)
{
	char dir[64], path[128], link[128], victim[128];
	struct snap_config cfg;
};

FIXTURE_SETUP(target)
{
	strcpy(self->dir, "/tmp/kvmsnap-target-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/img", self->dir);
	snprintf(self->link, sizeof(self->link), "%s/link", self->dir);
	snprintf(self->victim, sizeof(self->victim), "%s/victim", self->dir);
	strcpy(self->cfg.machine, SNAP_MACHINE_PC);
	self->cfg.vcpus = 1;
	self->cfg.ram_size = 1 << 20;
	self->cfg.nr_regions = 1;
	strcpy(self->cfg.regions[0].id, "pc.ram");
	self->cfg.regions[0].size = 1 << 20;
}

FIXTURE_TEARDOWN(target)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

static int create(struct _fixture_target *self, const char *path, bool force,
		  struct snap_image *img, struct error *err)
{
	struct snap_target_opts o = {.force = force};

	memset(img, 0, sizeof(*img));
	return snap_image_create(path, &self->cfg, &o, img, err);
}

TEST_F(target, a_new_image_is_for_its_owner_only)
{
	struct snap_image img;
	struct error err;
	struct stat st;

	ASSERT_EQ(create(self, self->path, false, &img, &err), 0);
	snap_image_close(&img);
	ASSERT_EQ(stat(self->path, &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST_F(target, force_never_overwrites_a_file_through_a_link)
{
	struct snap_image img;
	struct error err;
	struct stat st;
	int fd = open(self->victim, O_CREAT | O_WRONLY, 0644);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "precious", 8), 8);
	close(fd);
	ASSERT_EQ(symlink(self->victim, self->link), 0);
	EXPECT_EQ(create(self, self->link, true, &img, &err), -ELOOP);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "link"));
	ASSERT_EQ(stat(self->victim, &st), 0);
	EXPECT_EQ(st.st_size, 8);
	/* A dangling link is not followed to create a file either. */
	ASSERT_EQ(unlink(self->victim), 0);
	EXPECT_LT(create(self, self->link, false, &img, &err), 0);
	EXPECT_NE(access(self->victim, F_OK), 0);
}

TEST_F(target, two_writers_cannot_share_an_image)
{
	struct snap_target_opts now = {.no_lock_wait = true};
	struct snap_image a, b;
	struct error err;

	ASSERT_EQ(create(self, self->path, false, &a, &err), 0);
	memset(&b, 0, sizeof(b));
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, &now, &b, &err), -EBUSY);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "in use"));
	/* Nor a reader while it is written. */
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, &now, &b, &err), -EBUSY);
	snap_image_close(&a);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &b, &err), 0);
	snap_image_close(&b);
}

TEST_F(target, readers_share_and_keep_writers_out)
{
	struct snap_target_opts now = {.no_lock_wait = true};
	struct snap_image a, b, w;
	struct error err;
	uint64_t t0 = time(NULL);

	ASSERT_EQ(create(self, self->path, false, &a, &err), 0);
	snap_image_close(&a);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &a, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &b, &err), 0);
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, &now, &w, &err), -EBUSY);
	/* Without no_lock_wait, a writer waits for the readers, then gives up. */
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &w, &err), -EBUSY);
	EXPECT_GE((uint64_t)time(NULL) - t0, SNAP_LOCK_WAIT_MS / 1000 - 1);
	snap_image_close(&a);
	snap_image_close(&b);
}

/* A loop device with ext4 on it, and the image magic written over its first bytes. */
TEST_F(target, magic_bytes_do_not_make_a_file_system_an_image)
{
	char backing[96], cmd[640], dev[64] = "";
	struct snap_image img;
	struct error err;
	FILE *p;

	TEST_REQUIRE(geteuid() == 0, "needs root for a loop device");
	TEST_REQUIRE(system("command -v mkfs.ext4 >/dev/null 2>&1") == 0, "mkfs.ext4 missing");
	snprintf(backing, sizeof(backing), "%s/backing", self->dir);
	snprintf(cmd, sizeof(cmd),
		 "truncate -s 64M %s && mkfs.ext4 -q -F %s && printf KVMSNAPI | "
		 "dd of=%s conv=notrunc status=none && losetup --find --show %s",
		 backing, backing, backing, backing);
	p = popen(cmd, "r");
	ASSERT_NOT_NULL(p);
	if (!fgets(dev, sizeof(dev), p))
		dev[0] = '\0';
	pclose(p);
	dev[strcspn(dev, "\n")] = '\0';
	TEST_REQUIRE(!strncmp(dev, "/dev/loop", 9), "no loop device");
	memset(&img, 0, sizeof(img));
	EXPECT_EQ(snap_image_prepare(dev, &self->cfg, &(struct snap_target_opts){0}, &img, &err),
		  -EEXIST);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "ext4"));
	snprintf(cmd, sizeof(cmd), "losetup -d %s", dev);
	if (system(cmd))
		TH_LOG("cannot detach %s", dev);
}

TEST_HARNESS_MAIN
