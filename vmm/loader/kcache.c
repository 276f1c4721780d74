// SPDX-License-Identifier: GPL-2.0
/* The kernel cache (kcache.h): unpacked vmlinux files keyed by their payload's digest. */
#include "loader/kcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/le.h"
#include "util/util.h"

#define KCACHE_MAGIC	 "KVMSNAP-VMLINUX\n"
#define KCACHE_VERSION	 1
#define KC_VERSION	 16
#define KC_SIZE		 24
#define KC_PAYLOAD_HASH	 32
#define KC_CONTENT_HASH	 48
#define KC_HEADER_FIELDS 64

int kcache__default_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/kvmsnap", xdg);
	else if (home && home[0] == '/')
		n = snprintf(buf, len, "%s/.cache/kvmsnap", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= len ? -ENOENT : 0;
}

static void digest(const void *p, size_t len, uint8_t out[16])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(p, len));
	memcpy(out, c.digest, 16);
}

/* dir/vmlinux-<payload digest in hex>, and the digest. */
static int file_name(const char *dir, const void *payload, size_t len, uint8_t key[16], char *path,
		     size_t path_len)
{
	char hex[33];
	unsigned int i;
	int n;

	digest(payload, len, key);
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	n = snprintf(path, path_len, "%s/vmlinux-%s", dir, hex);
	return n < 0 || (size_t)n >= path_len ? -ENAMETOOLONG : 0;
}

/* Someone else's folder, or one others may write to, could hand us any kernel. */
static int check_dir(const char *dir, struct error *err)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return err_errno(err, errno, "kernel cache %s", dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(err, -ENOTDIR, "kernel cache %s: not a folder", dir);
	if (st.st_uid != geteuid())
		return err_set(err, -EPERM,
			       "kernel cache %s: owned by uid %u, not %u; kvmsnap trusts only "
			       "a folder of its own user's",
			       dir, (unsigned int)st.st_uid, (unsigned int)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return err_set(err, -EPERM,
			       "kernel cache %s: writable by others (mode %04o); kvmsnap trusts "
			       "only a folder no one else can write to",
			       dir, (unsigned int)(st.st_mode & 07777));
	return 0;
}

int kcache__lookup(const char *dir, const void *payload, size_t payload_len, uint64_t size,
		   struct kcache_hit *hit, struct error *err)
{
	uint8_t key[16], sum[16];
	char path[PATH_MAX];
	const uint8_t *h;
	struct stat st;
	int fd, ret;

	memset(hit, 0, sizeof(*hit));
	ret = check_dir(dir, err);
	if (ret)
		return ret == -ENOENT ? -ENOENT : ret;
	if (file_name(dir, payload, payload_len, key, path, sizeof(path)))
		return -ENOENT;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) || size > SIZE_MAX - KCACHE_DATA_OFF ||
	    (uint64_t)st.st_size != KCACHE_DATA_OFF + size) {
		close(fd);
		return -ENOENT;
	}
	hit->map_len = KCACHE_DATA_OFF + size;
	hit->map = mmap(NULL, hit->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (hit->map == MAP_FAILED) {
		hit->map = NULL;
		return -ENOENT;
	}
	h = hit->map;
	hit->data = h + KCACHE_DATA_OFF;
	hit->len = size;
	if (memcmp(h, KCACHE_MAGIC, 16) || get_le32(h + KC_VERSION) != KCACHE_VERSION ||
	    get_le64(h + KC_SIZE) != size || memcmp(h + KC_PAYLOAD_HASH, key, 16))
		goto miss;
	digest(hit->data, size, sum);
	if (memcmp(h + KC_CONTENT_HASH, sum, 16))
		goto miss;
	utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW); /* used last: kept longest */
	return 0;
miss:
	kcache__release(hit);
	return -ENOENT;
}

void kcache__release(struct kcache_hit *hit)
{
	if (hit->map)
		munmap(hit->map, hit->map_len);
	memset(hit, 0, sizeof(*hit));
}

/* mkdir -p, the new folders private to the user. */
static int make_dirs(const char *dir, struct error *err)
{
	char path[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n >= sizeof(path))
		return err_set(err, -ENAMETOOLONG, "kernel cache %s: path too long", dir);
	memcpy(path, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return err_errno(err, errno, "kernel cache %s: mkdir %s", dir, path);
		path[i] = dir[i];
	}
	return 0;
}

/* Remove all but the KCACHE_KEEP newest vmlinux-* files of dir (keep is one of them). */
static void evict(const char *dir, const char *keep)
{
	struct {
		char name[KCACHE_NAME_MAX + 1];
		struct timespec mtime;
	} f[KCACHE_KEEP + 1], t;
	unsigned int n = 0, i;
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		return;
	/* Keep the newest KCACHE_KEEP in f[], sorted newest first; unlink what falls out. */
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "vmlinux-", 8) || strlen(e->d_name) > KCACHE_NAME_MAX ||
		    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
		    lstat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		snprintf(t.name, sizeof(t.name), "%s", e->d_name);
		t.mtime = st.st_mtim;
		/* The file just stored is the newest, whatever the clock says. */
		if (!strcmp(path, keep))
			t.mtime.tv_sec = INT64_MAX;
		for (i = n; i > 0 && (f[i - 1].mtime.tv_sec < t.mtime.tv_sec ||
				      (f[i - 1].mtime.tv_sec == t.mtime.tv_sec &&
				       f[i - 1].mtime.tv_nsec < t.mtime.tv_nsec));
		     i--)
			f[i] = f[i - 1];
		f[i] = t;
		if (++n > KCACHE_KEEP) {
			n--;
			snprintf(path, sizeof(path), "%s/%s", dir, f[n].name);
			unlink(path);
		}
	}
	closedir(d);
}

int kcache__store(const char *dir, const void *payload, size_t payload_len, const void *data,
		  size_t len, struct error *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	uint8_t key[16], hdr[KCACHE_DATA_OFF] = {0};
	ssize_t n;
	int fd, ret;

	ret = make_dirs(dir, err);
	if (!ret)
		ret = check_dir(dir, err);
	if (ret)
		return ret;
	if (file_name(dir, payload, payload_len, key, path, sizeof(path)) ||
	    snprintf(tmp, sizeof(tmp), "%s/.vmlinux-XXXXXX", dir) >= (int)sizeof(tmp))
		return err_set(err, -ENAMETOOLONG, "kernel cache %s: path too long", dir);
	memcpy(hdr, KCACHE_MAGIC, 16);
	put_le32(hdr + KC_VERSION, KCACHE_VERSION);
	put_le64(hdr + KC_SIZE, len);
	memcpy(hdr + KC_PAYLOAD_HASH, key, 16);
	digest(data, len, hdr + KC_CONTENT_HASH);

	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return err_errno(err, errno, "kernel cache %s: create", dir);
	n = write_in_full(fd, hdr, sizeof(hdr));
	if (n == (ssize_t)sizeof(hdr))
		n = write_in_full(fd, data, len);
	if (n < 0)
		ret = err_errno(err, (int)-n, "kernel cache %s: write", dir);
	if (close(fd) < 0 && !ret)
		ret = err_errno(err, errno, "kernel cache %s: write", dir);
	if (!ret && rename(tmp, path) < 0)
		ret = err_errno(err, errno, "kernel cache %s: rename", dir);
	if (ret)
		unlink(tmp);
	else
		evict(dir, path);
	return ret;
}
