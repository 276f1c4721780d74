// SPDX-License-Identifier: GPL-2.0
/* The fake VM of the snapshot library's tests: see fakevm.h. */
#include "fakevm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "snapshot/state.h"

const struct fake_region fake_regions[FAKE_NR_REGIONS] = {
    {"pc.ram", 8 << 20}, {"vga.vram", 1 << 20}, {"pc.bios", 64 << 10}};

/* The image slot the trackers count for. */
static unsigned int fake_slot(const struct fake_vm *f)
{
	return f->img ? f->img->slot : 0;
}

uint64_t fake_pages_of(unsigned int r)
{
	return fake_regions[r].size / 4096;
}

size_t fake_bitmap_bytes(unsigned int r)
{
	return (fake_pages_of(r) + 63) / 64 * 8;
}

/* A page was written: the dirty log and every slot's tracker see it. Under lock. */
void fake_mark_written(struct fake_vm *f, unsigned int r, uint64_t page)
{
	unsigned int s;
	uint64_t bit = 1ULL << (page % 64);

	if (f->logging && f->manual) {
		/* Only an armed page faults: its bit is set, and it stays writable. */
		if (f->armed[r][page / 64] & bit)
			f->log[r][page / 64] |= bit;
		f->armed[r][page / 64] &= ~bit;
	} else if (f->logging) {
		f->log[r][page / 64] |= bit;
	}
	for (s = 0; s < SNAP_MAX_SLOTS; s++)
		f->track[s][r][page / 64] |= 1ULL << (page % 64);
}

/* The guest: write a page, then mark it dirty, as a write fault does. */
static void *mutator(void *arg)
{
	struct fake_vm *f = arg;
	uint64_t x = 88172645463325252ULL;

	while (!f->quit) {
		unsigned int r;
		uint64_t page;

		if (f->quiet && !f->stop) {
			usleep(100);
			continue;
		}
		if (f->stop) {
			f->acked = 1;
			while (f->stop && !f->quit)
				usleep(100);
			f->acked = 0;
			continue;
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		r = (x >> 60) % 4 ? 0 : 1; /* pc.bios is read-only: never written */
		page = (x >> 8) % fake_pages_of(r);
		if (f->manual) {
			/* The fault and the store are one step, as in a real write. */
			pthread_mutex_lock(&f->lock);
			fake_mark_written(f, r, page);
			memset(f->mem[r] + page * 4096 + (x % 4000), (int)x, 64);
			pthread_mutex_unlock(&f->lock);
		} else {
			memset(f->mem[r] + page * 4096 + (x % 4000), (int)x, 64);
			pthread_mutex_lock(&f->lock);
			fake_mark_written(f, r, page);
			pthread_mutex_unlock(&f->lock);
		}
		f->writes++;
		if (!(f->writes % 64))
			usleep(50);
	}
	return NULL;
}

static int op_log_start(void *ctx, bool *prefilled, struct error *err)
{
	struct fake_vm *f = ctx;
	unsigned int r;

	unsigned int slot = fake_slot(f);

	(void)err;
	pthread_mutex_lock(&f->lock);
	for (r = 0; r < FAKE_NR_REGIONS; r++) {
		memset(f->log[r], 0, fake_bitmap_bytes(r));
		memset(f->armed[r], 0xff,
		       fake_bitmap_bytes(r)); /* logging on protects every page */
		memset(f->fetched[r], 0, fake_bitmap_bytes(r));
	}
	f->logging = true;
	/* Only if the tracker counts from what the slot holds. */
	*prefilled =
	    f->want_incremental && f->base && f->track_valid[slot] && f->track_id[slot] == f->base;
	for (r = 0; *prefilled && r < FAKE_NR_REGIONS; r++)
		memcpy(f->vm.regions[r].dirty, f->track[slot][r], fake_bitmap_bytes(r));
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int op_fetch(void *ctx, struct error *err)
{
	struct fake_vm *f = ctx;
	unsigned int r;

	f->fetches++;
	if (f->on_fetch)
		f->on_fetch(f, f->fetches);
	if (f->fail_fetch_at && (int)f->fetches == f->fail_fetch_at)
		return err_set(err, -EIO, "injected dirty-log failure");
	if (f->img && f->break_fd_at && (int)f->fetches == f->break_fd_at) {
		int ro = open(f->img->path, O_RDONLY);

		dup2(ro, f->img->fd);
		close(ro);
	}
	pthread_mutex_lock(&f->lock);
	if (f->always_dirty && !f->paused) { /* whatever the mutator managed meanwhile */
		f->mem[0][f->fetches % 4096] ^= 0xff;
		f->log[0][0] |= 1;
	}
	for (r = 0; r < FAKE_NR_REGIONS; r++) {
		size_t bytes = (fake_pages_of(r) + 63) / 64 * 8, w;

		memcpy(f->vm.regions[r].dirty, f->log[r], bytes);
		/* Manual protect while running: the bits stay until clear(); else re-armed now. */
		if (f->manual && !f->paused) {
			for (w = 0; w < bytes / 8; w++)
				f->fetched[r][w] |= f->log[r][w];
			continue;
		}
		for (w = 0; f->manual && w < bytes / 8; w++)
			f->armed[r][w] |= f->log[r][w];
		memset(f->log[r], 0, bytes);
	}
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int fake_op_clear(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err)
{
	struct fake_vm *f = ctx;
	uint64_t p;

	(void)err;
	pthread_mutex_lock(&f->lock);
	for (p = first; p < first + n; p++) {
		uint64_t bit = 1ULL << (p % 64);

		if (f->fetched[r][p / 64] & bit) {
			f->fetched[r][p / 64] &= ~bit;
			f->log[r][p / 64] &= ~bit;
			f->armed[r][p / 64] |= bit;
		}
	}
	f->clears++;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int op_pause(void *ctx, uint64_t *us, uint64_t *paused_us, struct error *err)
{
	struct fake_vm *f = ctx;
	unsigned int r;

	(void)err;
	*paused_us = 0;
	f->stop = 1;
	while (!f->acked)
		usleep(50);
	f->paused = 1;
	if (f->on_pause)
		f->on_pause(f);
	for (r = 0; r < FAKE_NR_REGIONS; r++) {
		memcpy(f->expect[r], f->mem[r], fake_regions[r].size);
		/* From here, the slot's tracker counts from this snapshot. */
		memcpy(f->pending[r], f->track[fake_slot(f)][r], fake_bitmap_bytes(r));
		memset(f->track[fake_slot(f)][r], 0, fake_bitmap_bytes(r));
	}
	*us = 1;
	return 0;
}

static int op_state(void *ctx, uint8_t *buf, size_t cap, size_t *used, struct error *err)
{
	struct snap_state_writer w;
	uint8_t *p;

	(void)ctx;
	snap_state_init(&w, buf, cap);
	p = snap_state_add(&w, 0x7777, 0, 16);
	if (p)
		memcpy(p, "fake vcpu state", 16);
	return snap_state_finish(&w, used, err);
}

static int op_finish(void *ctx, uint64_t *resumed_us, struct error *err)
{
	struct fake_vm *f = ctx;

	(void)err;
	if (resumed_us)
		*resumed_us = 0; /* unknown: the writer uses its own clock */
	pthread_mutex_lock(&f->lock);
	f->logging = false;
	pthread_mutex_unlock(&f->lock);
	f->paused = 0;
	f->stop = 0;
	f->finished = true;
	return 0;
}

const struct snap_vm_ops fake_vm_ops = {
    .log_start = op_log_start,
    .fetch_dirty = op_fetch,
    .pause = op_pause,
    .save_state = op_state,
    .finish = op_finish,
};

int fake_vm_init(struct fake_vm *f, bool holes)
{
	unsigned int r;

	pthread_mutex_init(&f->lock, NULL);
	f->vm.ctx = f;
	f->vm.ops = &fake_vm_ops;
	strcpy(f->vm.cfg.machine, SNAP_MACHINE_PC);
	f->vm.cfg.vcpus = 2;
	f->vm.cfg.ram_size = fake_regions[0].size;
	f->vm.cfg.vram_size = fake_regions[1].size;
	f->vm.cfg.nr_regions = FAKE_NR_REGIONS;
	strcpy(f->vm.metadata, "machine=test\n");
	for (r = 0; r < FAKE_NR_REGIONS; r++) {
		size_t bm = fake_bitmap_bytes(r);
		uint64_t i;

		strcpy(f->vm.cfg.regions[r].id, fake_regions[r].id);
		f->vm.cfg.regions[r].size = fake_regions[r].size;
		f->vm.regions[r].memfd = -1;
		if (holes && r == 0) {
			int fd = memfd_create("fake-ram", MFD_CLOEXEC);

			if (fd < 0 || ftruncate(fd, (off_t)fake_regions[r].size)) {
				perror("# fake VM memfd");
				return -1;
			}
			f->mem[r] = mmap(NULL, fake_regions[r].size, PROT_READ | PROT_WRITE,
					 MAP_SHARED, fd, 0);
			if (f->mem[r] == MAP_FAILED) {
				perror("# fake VM mmap");
				return -1;
			}
			f->vm.regions[r].memfd = fd;
		} else {
			f->mem[r] = aligned_alloc(4096, fake_regions[r].size);
		}
		f->expect[r] = malloc(fake_regions[r].size);
		f->log[r] = calloc(1, bm);
		f->vm.regions[r].dirty = calloc(1, bm);
		f->pending[r] = calloc(1, bm);
		f->armed[r] = calloc(1, bm);
		f->fetched[r] = calloc(1, bm);
		f->track[0][r] = calloc(1, bm);
		f->track[1][r] = calloc(1, bm);
		if (!f->mem[r] || !f->expect[r] || !f->log[r] || !f->vm.regions[r].dirty ||
		    !f->pending[r] || !f->armed[r] || !f->fetched[r] || !f->track[0][r] ||
		    !f->track[1][r]) {
			fprintf(stderr, "# fake VM: out of memory\n");
			return -1;
		}
		for (i = 0; i < fake_regions[r].size / 8; i++)
			if (f->vm.regions[r].memfd < 0 || (i * 8 >> 20) % 2)
				((uint64_t *)(void *)f->mem[r])[i] = XXH64(&i, sizeof(i), r);
		f->vm.regions[r].mem = f->mem[r];
		f->vm.regions[r].size = fake_regions[r].size;
	}
	return 0;
}

int fake_vm_start(struct fake_vm *f)
{
	return pthread_create(&f->thread, NULL, mutator, f) ? -1 : 0;
}

void fake_vm_stop(struct fake_vm *f)
{
	f->quit = 1;
	pthread_join(f->thread, NULL);
}
