// SPDX-License-Identifier: GPL-2.0
/*
 * Image targets: a regular file preallocated in full, or a raw block device.
 * Everything that could make a later write fail or destroy someone else's
 * data (no space, a device too small, mounted, or holding a file system) is
 * refused here, before the first byte of the image is written.
 */
#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/image.h"
#include "snapshot/nbd.h"
#include "snapshot/target.h"

static int sys_err(struct error *err, int e, const char *path, const char *what)
{
	return err_set(err, -e, "%s: %s: %s", path, what, strerror(e));
}

#define ZERO_CHUNK (8ULL << 20)

/*
 * Write zeros over the whole preallocated file, with O_DIRECT. fallocate
 * leaves unwritten extents, and the first write to each block then pays a
 * conversion (ext4, XFS): a first snapshot into a new image ran at 0.65 of
 * fio over written blocks, one into a written image at or above it. Paying
 * it here keeps it out of the time the guest runs with dirty logging on.
 * Skipped where the file system has no direct I/O (tmpfs: nothing to gain).
 */
static int zero_fill(struct snap_target *t, const char *path, uint64_t size, struct error *err)
{
	int fl = fcntl(t->fd, F_GETFL), ret = 0;
	uint64_t off = 0;
	uint8_t *buf;

	if (fl < 0 || fcntl(t->fd, F_SETFL, fl | O_DIRECT))
		return 0;
	buf = aligned_alloc(4096, ZERO_CHUNK);
	if (!buf)
		ret = err_set(err, -ENOMEM, "out of memory to write the image");
	else
		memset(buf, 0, ZERO_CHUNK);
	while (buf && off < size) {
		size_t n = (size_t)(size - off < ZERO_CHUNK ? size - off : ZERO_CHUNK);
		ssize_t w = pwrite(t->fd, buf, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ret = sys_err(err, w < 0 ? errno : EIO, path, "cannot write the image");
			break;
		}
		off += (uint64_t)w;
	}
	free(buf);
	fcntl(t->fd, F_SETFL, fl);
	return ret;
}

static int preallocate(struct snap_target *t, const char *path, uint64_t size, struct error *err)
{
	char human[32];
	int e = 0;

	/* Every block now, so that no snapshot write can ever meet ENOSPC. */
	if (fallocate(t->fd, 0, 0, (off_t)size))
		e = errno;
	if (e == EOPNOTSUPP)
		e = posix_fallocate(t->fd, 0, (off_t)size);
	if (e == ENOSPC || e == EDQUOT)
		return err_set(err, -ENOSPC, "%s: not enough space for the %s image", path,
			       snap_size_str(size, human, sizeof(human)));
	if (e)
		return sys_err(err, e, path, "cannot preallocate the image");
	t->size = size;
	e = zero_fill(t, path, size, err);
	t->zeroed = !e;
	return e;
}

/*
 * Zero [0, size) of a device, if it can do so by itself: a punched hole
 * on a block device is REQ_OP_WRITE_ZEROES without the fallback that
 * writes zero pages (BLKDEV_ZERO_NOFALLBACK), so it either is fast and
 * reads back as zeros, or fails (EOPNOTSUPP) and changes nothing. Then the
 * first snapshot need not write the pages the guest never touched. Loop
 * devices, NVMe and virtio-blk with write-zeroes have it.
 */
static void zero_device(struct snap_target *t, uint64_t size)
{
	t->zeroed = !fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)size);
}

static int device_size(int fd, const char *path, uint64_t *size, struct error *err)
{
	if (ioctl(fd, BLKGETSIZE64, size))
		return sys_err(err, errno, path, "cannot get the device size");
	return 0;
}

/*
 * A kvmsnap image is on the target: its whole header block decodes,
 * checksum and all. Eight magic bytes are not enough: anyone can write
 * those over a file system, which would then be overwritten without --force.
 */
static bool header_decodes(const uint8_t *buf)
{
	struct snap_header *h = malloc(sizeof(*h));
	bool ours = h && !snap_header_decode(buf, h, NULL);

	free(h);
	return ours;
}

static bool holds_image(int fd)
{
	uint8_t *buf = malloc(SNAP_HEADER_SIZE);
	bool ours = buf && pread(fd, buf, SNAP_HEADER_SIZE, 0) == (ssize_t)SNAP_HEADER_SIZE &&
		    header_decodes(buf);

	free(buf);
	return ours;
}

/* ---- NBD exports ---- */

#define NBD_PROBE_BYTES (64 * 1024) /* all zero: a blank export, nobody's data */

/* 1: a kvmsnap image, 0: blank (the first bytes are zero), 2: someone else's data. */
static int nbd_contents(struct snap_nbd *n, uint64_t size, struct error *err)
{
	size_t len = (size_t)(size < NBD_PROBE_BYTES ? size : NBD_PROBE_BYTES), i;
	uint8_t *buf = calloc(1, NBD_PROBE_BYTES);
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory");
	ret = snap_nbd_pread(n, buf, len, 0, err);
	if (!ret && len >= SNAP_HEADER_SIZE && header_decodes(buf))
		ret = 1;
	for (i = 0; !ret && i < len; i++)
		if (buf[i])
			ret = 2;
	free(buf);
	return ret;
}

/*
 * Nothing can hold an export for us (NBD has no locks, and many clients
 * may connect), so what protects someone else's data is that an export
 * becomes an image only when it is blank or already one, unless force.
 */
static int create_nbd(const char *path, uint64_t size, bool force, struct snap_target *t,
		      struct error *err)
{
	char a[SNAP_SIZE_PAIR_LEN], b[SNAP_SIZE_PAIR_LEN];
	int ret;

	t->fd = -1;
	ret = snap_nbd_open(path, true, &t->nbd, &t->size, err);
	if (ret)
		return ret;
	if (t->size < size) {
		snap_size_pair_str(t->size, a, size, b);
		return err_set(err, -ENOSPC, "%s: the %s NBD export is smaller than the %s image",
			       path, a, b);
	}
	if (force)
		return 0;
	ret = nbd_contents(t->nbd, t->size, err);
	if (ret < 0)
		return ret;
	if (ret == 2)
		return err_set(err, -EEXIST,
			       "%s: the NBD export holds data that is not a kvmsnap image; use "
			       "--force to overwrite it",
			       path);
	return 0;
}

/*
 * One writer or several readers, across processes: a snapshot holds its
 * image exclusively from open to end, and readers (restore, which maps the
 * image for as long as a lazy VM runs, info, verify) share it.
 */
static int lock_target(int fd, bool exclusive, bool wait, const char *path, struct error *err)
{
	int op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
	unsigned int waited = 0;

	for (;;) {
		if (!flock(fd, op))
			return 0;
		if (errno != EWOULDBLOCK)
			return sys_err(err, errno, path, "cannot lock");
		if (!wait || waited >= SNAP_LOCK_WAIT_MS)
			break;
		usleep(50 * 1000);
		waited += 50;
	}
	return err_set(err, -EBUSY, "%s: in use by another kvmsnap (%s); try again when it is done",
		       path,
		       exclusive ? "a snapshot, restore or check of this image"
				 : "a snapshot being written into it");
}

static const char *signature_kind(const char *usage)
{
	if (!usage)
		return "signature";
	if (!strcmp(usage, "filesystem"))
		return "file system signature";
	if (!strcmp(usage, "raid"))
		return "RAID member signature";
	if (!strcmp(usage, "crypto"))
		return "encrypted volume signature";
	return "signature";
}

/* Refuse a device that carries a file system, RAID member, partition table, ... */
static int check_signatures(int fd, const char *path, struct error *err)
{
	const char *type = NULL, *usage = NULL, *pttype = NULL;
	blkid_probe pr;
	int ret = 0, found;

	pr = blkid_new_probe();
	if (!pr)
		return err_set(err, -ENOMEM, "%s: cannot probe for signatures", path);
	if (blkid_probe_set_device(pr, fd, 0, 0)) {
		blkid_free_probe(pr);
		return err_set(err, -EIO, "%s: cannot probe for signatures", path);
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
	blkid_probe_enable_partitions(pr, 1);
	found = blkid_do_safeprobe(pr);
	if (found == 0) {
		blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
		blkid_probe_lookup_value(pr, "USAGE", &usage, NULL);
		blkid_probe_lookup_value(pr, "PTTYPE", &pttype, NULL);
	}
	if (found == -2)
		ret = err_set(
		    err, -EEXIST,
		    "%s: carries several conflicting signatures; use --force to overwrite it",
		    path);
	else if (found < 0)
		ret = err_set(err, -EIO, "%s: probing for signatures failed", path);
	else if (type)
		ret = err_set(err, -EEXIST, "%s: carries %s %s %s; use --force to overwrite it",
			      path, strchr("aeiouxAEIOUX", type[0]) ? "an" : "a", type,
			      signature_kind(usage));
	else if (pttype)
		ret = err_set(err, -EEXIST,
			      "%s: carries a %s partition table; use --force to overwrite it", path,
			      pttype);
	blkid_free_probe(pr);
	return ret;
}

static int create_blockdev(const char *path, uint64_t size, bool force, bool wait,
			   struct snap_target *t, struct error *err)
{
	char a[SNAP_SIZE_PAIR_LEN], b[SNAP_SIZE_PAIR_LEN];
	int ret;

	/* O_EXCL on a block device fails with EBUSY while it is mounted or held. */
	t->fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (t->fd < 0 && errno == EBUSY)
		return err_set(err, -EBUSY,
			       "%s: device is in use (mounted or held by another program)", path);
	if (t->fd < 0)
		return sys_err(err, errno, path, "cannot open");
	t->blockdev = true;
	ret = device_size(t->fd, path, &t->size, err);
	if (ret)
		return ret;
	if (t->size < size) {
		snap_size_pair_str(t->size, a, size, b);
		return err_set(err, -ENOSPC, "%s: %s device is smaller than the %s image", path, a,
			       b);
	}
	ret = lock_target(t->fd, true, wait, path, err);
	/* An old kvmsnap image is ours to overwrite; its page data may look like anything. */
	if (!ret && !force && !holds_image(t->fd))
		ret = check_signatures(t->fd, path, err);
	if (!ret)
		zero_device(t, size);
	return ret;
}

/* What is at path, as an open descriptor sees it: links are followed (by-id device names). */
static int stat_target(const char *path, struct stat *st, struct error *err)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return sys_err(err, errno, path, "cannot open");
	if (fstat(fd, st))
		ret = sys_err(err, errno, path, "cannot stat");
	close(fd);
	return ret;
}

/* An existing regular file, overwritten (--force): never through a symbolic link. */
static int overwrite_file(const char *path, uint64_t size, bool wait, struct snap_target *t,
			  struct error *err)
{
	struct stat st;
	int ret;

	t->fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0 && errno == ELOOP)
		return err_set(
		    err, -ELOOP,
		    "%s: a symbolic link to a file; kvmsnap overwrites no file through a "
		    "link",
		    path);
	if (t->fd < 0)
		return sys_err(err, errno, path, "cannot open");
	if (fstat(t->fd, &st))
		return sys_err(err, errno, path, "cannot stat");
	if (!S_ISREG(st.st_mode))
		return err_set(err, -EINVAL, "%s: not a regular file or a block device", path);
	ret = lock_target(t->fd, true, wait, path, err);
	if (!ret && ftruncate(t->fd, 0))
		ret = sys_err(err, errno, path, "cannot truncate");
	if (ret)
		return ret;
	t->created = true;
	return preallocate(t, path, size, err);
}

int snap_target_create(const char *path, uint64_t size, bool force, bool wait,
		       struct snap_target *t, struct error *err)
{
	struct stat st;
	int ret;

	memset(t, 0, sizeof(*t));
	if (snap_nbd_is_uri(path))
		return create_nbd(path, size, force, t, err);
	/* Guest memory: for the owner only. O_EXCL never follows a link. */
	t->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (t->fd >= 0) {
		t->created = true;
		ret = lock_target(t->fd, true, wait, path, err);
		return ret ? ret : preallocate(t, path, size, err);
	}
	if (errno != EEXIST)
		return sys_err(err, errno, path, "cannot create");
	ret = stat_target(path, &st, err);
	if (ret)
		return ret;
	if (S_ISBLK(st.st_mode))
		return create_blockdev(path, size, force, wait, t, err);
	if (!S_ISREG(st.st_mode))
		return err_set(err, -EINVAL, "%s: not a regular file or a block device", path);
	if (!force)
		return err_set(err, -EEXIST, "%s: already exists; use --force to overwrite it",
			       path);
	return overwrite_file(path, size, wait, t, err);
}

int snap_target_open(const char *path, bool rdwr, bool wait, struct snap_target *t,
		     struct error *err)
{
	struct stat st;
	int ret;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if (snap_nbd_is_uri(path))
		return snap_nbd_open(path, rdwr, &t->nbd, &t->size, err);
	if (stat(path, &st))
		return sys_err(err, errno, path, "cannot open");
	t->blockdev = S_ISBLK(st.st_mode);
	if (!t->blockdev && !S_ISREG(st.st_mode))
		return err_set(err, -EINVAL, "%s: not a regular file or a block device", path);
	/* A writer holds its device exclusively: nobody can mount it under us. */
	t->fd =
	    open(path, (rdwr ? O_RDWR : O_RDONLY) | (rdwr && t->blockdev ? O_EXCL : 0) | O_CLOEXEC);
	if (t->fd < 0 && errno == EBUSY)
		return err_set(err, -EBUSY,
			       "%s: device is in use (mounted or held by another program)", path);
	if (t->fd < 0)
		return sys_err(err, errno, path, "cannot open");
	/* The descriptor is what counts: the path may have changed since stat(). */
	if (fstat(t->fd, &st))
		return sys_err(err, errno, path, "cannot stat");
	if (S_ISBLK(st.st_mode) != t->blockdev)
		return err_set(err, -EINVAL, "%s: changed while it was opened", path);
	ret = lock_target(t->fd, rdwr, wait, path, err);
	if (ret)
		return ret;
	if (t->blockdev)
		return device_size(t->fd, path, &t->size, err);
	t->size = (uint64_t)st.st_size;
	return 0;
}

bool snap_target_set_direct(struct snap_target *t)
{
	int fl = t->nbd ? -1 : fcntl(t->fd, F_GETFL);

	/* EINVAL where the file system has no direct I/O (tmpfs on older kernels). */
	return fl >= 0 && fcntl(t->fd, F_SETFL, fl | O_DIRECT) == 0;
}

int snap_target_sync(struct snap_target *t, const char *path, struct error *err)
{
	if (t->nbd)
		return snap_nbd_flush(t->nbd, err);
	/* On a block device fsync also flushes the device's volatile write cache. */
	if ((t->blockdev ? fsync(t->fd) : fdatasync(t->fd)) == 0)
		return 0;
	return sys_err(err, errno, path, "cannot make the image durable");
}

void snap_target_close(struct snap_target *t, const char *path, bool keep)
{
	snap_nbd_close(t->nbd);
	t->nbd = NULL;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	if (t->created && !keep)
		unlink(path);
}

/* An export that cannot be reached is not blank: opening it then says why. */
static bool is_blank_export(const char *path)
{
	struct snap_nbd *n;
	struct error e;
	uint64_t size;
	bool blank;

	if (snap_nbd_open(path, false, &n, &size, &e))
		return false;
	blank = nbd_contents(n, size, &e) != 1;
	snap_nbd_close(n);
	return blank;
}

bool snap_target_is_blank(const char *path)
{
	struct stat st;
	bool ours;
	int fd;

	if (snap_nbd_is_uri(path))
		return is_blank_export(path);
	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ours = holds_image(fd);
	close(fd);
	return !ours;
}

bool snap_image_path_is_nbd(const char *path)
{
	return snap_nbd_is_uri(path);
}
