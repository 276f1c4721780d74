// SPDX-License-Identifier: GPL-2.0
/*
 * The write queue (snapshot/ioq.h): every write lands where it was asked
 * for, with more writes than slots, vectored writes and unaligned writes
 * mixed in; failing writes are reported, naming the image, and everything
 * in flight is reaped all the same (no hang, no buffer left in use).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"

#include "snapshot/ioq.h"
#include "snapshot/snapshot.h"

#define PAGES 1000 /* several times SNAP_IOQ_DEPTH */

static int tmp_image(struct snap_image *img, int flags)
{
	char path[] = "/tmp/kvmsnap-ioq-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (PAGES + 2) * SNAP_PAGE_SIZE)) {
		close(fd);
		unlink(path);
		return -1;
	}
	memset(img, 0, sizeof(*img));
	img->fd = flags == O_RDWR ? fd : open(path, flags);
	if (img->fd != fd)
		close(fd);
	unlink(path);
	snprintf(img->path, sizeof(img->path), "%s", path);
	img->target_size = (PAGES + 2) * SNAP_PAGE_SIZE;
	return img->fd < 0 ? -1 : 0;
}

static uint8_t *pattern_pages(uint64_t n)
{
	uint8_t *p = aligned_alloc(SNAP_PAGE_SIZE, n * SNAP_PAGE_SIZE);
	uint64_t i;

	for (i = 0; p && i < n * SNAP_PAGE_SIZE / 8; i++)
		((uint64_t *)p)[i] = i * 0x9e3779b97f4a7c15ULL + 1;
	return p;
}

TEST(every_write_lands)
{
	uint8_t *src = pattern_pages(PAGES), *back = malloc(PAGES * SNAP_PAGE_SIZE);
	struct iovec iov[PAGES / 4][2];
	struct snap_image img;
	struct snap_ioq q;
	struct error err;
	uint64_t i;

	ASSERT_NE(src, NULL);
	ASSERT_NE(back, NULL);
	ASSERT_EQ(tmp_image(&img, O_RDWR), 0);
	snap_ioq_init(&q, &img);
	if (strcmp(snap_ioq_engine(&q), "io_uring"))
		TH_LOG("no io_uring here: writes are synchronous");
	/*
	 * Pages in a scattered order: odd pages one by one, every other even
	 * page as a 2-buffer vectored write of it and the next even page,
	 * written from two places.
	 */
	for (i = 1; i < PAGES; i += 2)
		ASSERT_EQ(snap_ioq_write(&q, src + i * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE,
					 i * SNAP_PAGE_SIZE, &err),
			  0);
	for (i = 0; i + 2 < PAGES; i += 4) {
		struct iovec *v = iov[i / 4];

		v[0] = (struct iovec){src + i * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE};
		v[1] = (struct iovec){src + (i + 2) * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE};
		/* Lands at i and i + 1: page i + 1 is rewritten with i + 2's bytes ... */
		ASSERT_EQ(snap_ioq_writev(&q, v, 2, i * SNAP_PAGE_SIZE, &err), 0);
	}
	ASSERT_EQ(snap_ioq_drain(&q, &err), 0);
	/* ... and written back once the vectored writes are in: ordered by the drain. */
	for (i = 1; i + 1 < PAGES; i += 4)
		ASSERT_EQ(snap_ioq_write(&q, src + i * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE,
					 i * SNAP_PAGE_SIZE, &err),
			  0);
	/* Even pages the vectored writes did not cover, as a byte-unaligned write. */
	for (i = 2; i < PAGES; i += 4)
		ASSERT_EQ(snap_ioq_write(&q, src + i * SNAP_PAGE_SIZE + 1, SNAP_PAGE_SIZE - 1,
					 i * SNAP_PAGE_SIZE + 1, &err),
			  0);
	for (i = 2; i < PAGES; i += 4)
		ASSERT_EQ(snap_ioq_write(&q, src + i * SNAP_PAGE_SIZE, 1, i * SNAP_PAGE_SIZE, &err),
			  0);
	ASSERT_EQ(snap_ioq_drain(&q, &err), 0);
	EXPECT_EQ(q.inflight, 0);
	ASSERT_EQ(pread(img.fd, back, PAGES * SNAP_PAGE_SIZE, 0),
		  (ssize_t)(PAGES * SNAP_PAGE_SIZE));
	for (i = 0; i < PAGES; i++)
		if (memcmp(back + i * SNAP_PAGE_SIZE, src + i * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE)) {
			TH_LOG("page %llu differs", (unsigned long long)i);
			EXPECT_TRUE(false);
			break;
		}
	snap_ioq_exit(&q);
	close(img.fd);
	free(src);
	free(back);
}

TEST(failed_writes_are_reported_and_reaped)
{
	uint8_t *src = pattern_pages(PAGES);
	struct snap_image img;
	struct snap_ioq q;
	struct error err;
	uint64_t i;
	int ret = 0;

	ASSERT_NE(src, NULL);
	/* Read-only: every write fails, in its completion (or at once, without io_uring). */
	ASSERT_EQ(tmp_image(&img, O_RDONLY), 0);
	snap_ioq_init(&q, &img);
	for (i = 0; i < PAGES && !ret; i++)
		ret = snap_ioq_write(&q, src + i * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE,
				     i * SNAP_PAGE_SIZE, &err);
	if (!ret)
		ret = snap_ioq_drain(&q, &err);
	EXPECT_NE(ret, 0);
	TH_LOG("error: %s", err.msg);
	EXPECT_NE(strstr(err.msg, img.path), NULL);
	/* Whatever failed first, nothing is left in flight to touch the buffers. */
	snap_ioq_drain(&q, &err);
	EXPECT_EQ(q.inflight, 0);
	snap_ioq_exit(&q);
	close(img.fd);
	free(src);
}

TEST_HARNESS_MAIN
