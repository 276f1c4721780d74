// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel cache (vmm/loader/kcache.h): a stored kernel is found again,
 * byte for byte; every file or folder it cannot trust is a miss or a
 * refusal, never a kernel; failed stores leave nothing behind.
 */
#include "../harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "../lib/util.h"

#include <xxhash.h>

#include "vmm/loader/kcache.h"

#define DATA_LEN (256 * 1024 + 123)

FIXTURE(kc)
{
	char dir[64];
	char cache[96];
	char file[PATH_MAX];
	uint8_t payload[512];
	uint8_t data[DATA_LEN];
	struct kcache_hit hit;
	struct error err;
};

/*
 * The cache's vmlinux-* files (self->file: the last one seen) and, in
 * *tmp, its leftover temporary files; -1 without a folder.
 */
static int scan(struct _fixture_kc *self, int *tmp)
{
	struct dirent *e;
	DIR *d = opendir(self->cache);
	int n = 0;

	*tmp = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			(*tmp)++;
		else if (!strncmp(e->d_name, "vmlinux-", 8)) {
			snprintf(self->file, sizeof(self->file), "%s/%s", self->cache, e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* The one vmlinux-* file in the cache, and no temporary one: 0 and its path, or -1. */
static int cache_file(struct _fixture_kc *self)
{
	int tmp;

	return scan(self, &tmp) == 1 && !tmp ? 0 : -1;
}

FIXTURE_SETUP(kc)
{
	size_t i;

	strcpy(self->dir, "/tmp/kvmsnap-kc-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->cache, sizeof(self->cache), "%s/a/b/kvmsnap", self->dir);
	for (i = 0; i < sizeof(self->payload); i++)
		self->payload[i] = (uint8_t)(i * 3 + 1);
	for (i = 0; i < DATA_LEN; i++)
		self->data[i] = (uint8_t)(i * 7 + i / 4096);
}

FIXTURE_TEARDOWN(kc)
{
	kcache__release(&self->hit);
	rm_tree(self->dir);
}

static int lookup(struct _fixture_kc *self)
{
	kcache__release(&self->hit);
	return kcache__lookup(self->cache, self->payload, sizeof(self->payload), DATA_LEN,
			      &self->hit, &self->err);
}

static int store(struct _fixture_kc *self)
{
	return kcache__store(self->cache, self->payload, sizeof(self->payload), self->data,
			     DATA_LEN, &self->err);
}

/* Change one byte of the cache file at off. */
static void poke(struct _fixture_kc *self, struct th_result *_r, off_t off)
{
	uint8_t b;
	int fd = open(self->file, O_RDWR);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	ASSERT_EQ(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

TEST_F(kc, miss_then_store_then_hit)
{
	struct stat st;

	EXPECT_EQ(lookup(self), -ENOENT); /* no folder yet */
	ASSERT_EQ(store(self), 0);
	ASSERT_EQ(stat(self->cache, &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0700);
	ASSERT_EQ(cache_file(self), 0);
	ASSERT_EQ(stat(self->file, &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0600);
	EXPECT_EQ(st.st_size, KCACHE_DATA_OFF + DATA_LEN);
	ASSERT_EQ(lookup(self), 0);
	EXPECT_EQ(self->hit.len, DATA_LEN);
	EXPECT_EQ(memcmp(self->hit.data, self->data, DATA_LEN), 0);
	/* Another payload, or another size, is another kernel. */
	self->payload[100] ^= 1;
	EXPECT_EQ(lookup(self), -ENOENT);
	self->payload[100] ^= 1;
	EXPECT_EQ(kcache__lookup(self->cache, self->payload, sizeof(self->payload), DATA_LEN - 1,
				 &self->hit, &self->err),
		  -ENOENT);
	/* Storing again replaces the file. */
	ASSERT_EQ(store(self), 0);
	ASSERT_EQ(cache_file(self), 0);
	EXPECT_EQ(lookup(self), 0);
}

TEST_F(kc, damaged_files_are_misses)
{
	static const off_t offs[] = {0,
				     16,
				     24,
				     32,
				     48,
				     KCACHE_DATA_OFF,
				     KCACHE_DATA_OFF + 77777,
				     KCACHE_DATA_OFF + DATA_LEN - 1};
	unsigned int i;

	ASSERT_EQ(store(self), 0);
	ASSERT_EQ(cache_file(self), 0);
	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		TH_LOG("byte at %lld", (long long)offs[i]);
		poke(self, _r, offs[i]);
		EXPECT_EQ(lookup(self), -ENOENT);
		poke(self, _r, offs[i]);
		EXPECT_EQ(lookup(self), 0);
	}
	ASSERT_EQ(truncate(self->file, KCACHE_DATA_OFF + DATA_LEN - 1), 0);
	EXPECT_EQ(lookup(self), -ENOENT);
}

TEST_F(kc, untrusted_files_are_misses)
{
	char target[PATH_MAX];

	ASSERT_EQ(store(self), 0);
	ASSERT_EQ(cache_file(self), 0);
	ASSERT_EQ(chmod(self->file, 0620), 0); /* group-writable */
	EXPECT_EQ(lookup(self), -ENOENT);
	ASSERT_EQ(chmod(self->file, 0600), 0);
	EXPECT_EQ(lookup(self), 0);
	/* A symbolic link under the name, even to a good file. */
	snprintf(target, sizeof(target), "%s/good", self->dir);
	ASSERT_EQ(rename(self->file, target), 0);
	ASSERT_EQ(symlink(target, self->file), 0);
	EXPECT_EQ(lookup(self), -ENOENT);
}

TEST_F(kc, folders_others_can_write_are_refused)
{
	ASSERT_EQ(store(self), 0);
	ASSERT_EQ(chmod(self->cache, 0777), 0);
	EXPECT_EQ(lookup(self), -EPERM);
	EXPECT_NOT_NULL(strstr(self->err.msg, "writable by others (mode 0777)"));
	EXPECT_EQ(store(self), -EPERM);
	ASSERT_EQ(chmod(self->cache, 0700), 0);
	EXPECT_EQ(lookup(self), 0);
	if (geteuid() == 0) { /* someone else's folder */
		ASSERT_EQ(chown(self->cache, 65534, 65534), 0);
		EXPECT_EQ(lookup(self), -EPERM);
		EXPECT_NOT_NULL(strstr(self->err.msg, "owned by uid 65534"));
	}
}

TEST_F(kc, store_failures_leave_nothing)
{
	char file[PATH_MAX];

	/* A file where the folder should be. */
	snprintf(file, sizeof(file), "%s/plain", self->dir);
	ASSERT_EQ(write_file(file, "x", 1), 0);
	EXPECT_EQ(kcache__store(file, self->payload, sizeof(self->payload), self->data, DATA_LEN,
				&self->err),
		  -ENOTDIR);
	EXPECT_NOT_NULL(strstr(self->err.msg, "kernel cache"));
	/* A folder that cannot be written (root writes anyway: skip that part). */
	ASSERT_EQ(store(self), 0);
	ASSERT_EQ(cache_file(self), 0);
	ASSERT_EQ(unlink(self->file), 0);
	if (geteuid() != 0) {
		ASSERT_EQ(chmod(self->cache, 0500), 0);
		EXPECT_EQ(store(self), -EACCES);
		ASSERT_EQ(chmod(self->cache, 0700), 0);
	}
	EXPECT_EQ(cache_file(self), -1); /* nothing, and no temporary file */
}

/* Files named vmlinux-* in the cache. */
static int count_files(struct _fixture_kc *self)
{
	int tmp;

	return scan(self, &tmp);
}

/* The documented name of the current payload's file: vmlinux-<XXH3-128, hex>. */
static void file_of(struct _fixture_kc *self, char *path, size_t len)
{
	XXH128_canonical_t c;
	char hex[33];
	unsigned int i;

	XXH128_canonicalFromHash(&c, XXH3_128bits(self->payload, sizeof(self->payload)));
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
	snprintf(path, len, "%s/vmlinux-%s", self->cache, hex);
}

/* Set the current payload's file's mtime to sec. */
static int set_mtime(struct _fixture_kc *self, time_t sec)
{
	struct timespec ts[2] = {{.tv_sec = sec}, {.tv_sec = sec}};
	char path[PATH_MAX];

	file_of(self, path, sizeof(path));
	return utimensat(AT_FDCWD, path, ts, 0);
}

TEST_F(kc, keeps_the_kernels_used_last)
{
	unsigned int i;

	/* Six kernels, stored one after the other, older first: the last four stay. */
	for (i = 0; i < 6; i++) {
		self->payload[0] = (uint8_t)i;
		ASSERT_EQ(store(self), 0);
		/* Stored in order, older first; set apart by whole seconds, in the past. */
		ASSERT_EQ(set_mtime(self, 1000000 + i), 0);
	}
	EXPECT_EQ(count_files(self), KCACHE_KEEP);
	for (i = 0; i < 6; i++) {
		self->payload[0] = (uint8_t)i;
		EXPECT_EQ(lookup(self), i < 6 - KCACHE_KEEP ? -ENOENT : 0);
		/* That hit touched it: back to its place in the order. */
		if (i >= 6 - KCACHE_KEEP)
			ASSERT_EQ(set_mtime(self, 1000000 + i), 0);
	}
	/* A hit makes kernel 2 the newest: storing a seventh evicts kernel 3, not 2. */
	self->payload[0] = 2;
	ASSERT_EQ(lookup(self), 0);
	self->payload[0] = 7;
	ASSERT_EQ(store(self), 0);
	EXPECT_EQ(count_files(self), KCACHE_KEEP);
	self->payload[0] = 2;
	EXPECT_EQ(lookup(self), 0);
	self->payload[0] = 3;
	EXPECT_EQ(lookup(self), -ENOENT);
}

TEST(default_dir)
{
	char buf[256];

	ASSERT_EQ(setenv("XDG_CACHE_HOME", "/x/cache", 1), 0);
	ASSERT_EQ(kcache__default_dir(buf, sizeof(buf)), 0);
	EXPECT_STREQ(buf, "/x/cache/kvmsnap");
	ASSERT_EQ(setenv("XDG_CACHE_HOME", "relative", 1), 0); /* ignored, as the spec says */
	ASSERT_EQ(setenv("HOME", "/home/u", 1), 0);
	ASSERT_EQ(kcache__default_dir(buf, sizeof(buf)), 0);
	EXPECT_STREQ(buf, "/home/u/.cache/kvmsnap");
	ASSERT_EQ(unsetenv("XDG_CACHE_HOME"), 0);
	ASSERT_EQ(unsetenv("HOME"), 0);
	EXPECT_EQ(kcache__default_dir(buf, sizeof(buf)), -ENOENT);
	ASSERT_EQ(setenv("HOME", "/home/u", 1), 0);
	EXPECT_EQ(kcache__default_dir(buf, 8), -ENOENT);
}

TEST_HARNESS_MAIN
