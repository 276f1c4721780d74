// SPDX-License-Identifier: GPL-2.0
/*
 * The dirty ring against the bitmap, on the same guest in the same run
 * (issue 10: keep the ring as an option only if it measures better here).
 *
 * Each round builds three VMs in turn, in an order that rotates per round,
 * each running the built-in dirtier at full speed over --ws, and for
 * --seconds collects what it dirties every --interval-ms:
 *
 *   off     no logging: how fast the guest writes on this machine
 *   bitmap  KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (mem__fetch_dirty), as
 *           the snapshot engine does
 *   ring    KVM_CAP_DIRTY_LOG_RING, harvested and reset (dirty-ring.h)
 *
 * It prints, per mode, medians over the rounds of: the guest's own write
 * rate (pages/s, its progress counter) as a ratio to `off` in the same
 * round; the distinct dirty pages collected per second; the collector's
 * time per interval; and for the ring, how often a vCPU found it full.
 *
 * Usage: dirtyring-bench [--ws SIZE] [--seconds N] [--interval-ms N]
 *                        [--entries N] [--rounds N] [--vcpus N]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dirty-ring.h"
#include "guests.h"
#include "mem.h"
#include "util/util.h"
#include "vm-setup.h"

enum mode { MODE_OFF, MODE_BITMAP, MODE_RING, NR_MODES };
static const char *const mode_names[NR_MODES] = {"off", "bitmap", "ring"};

struct opts {
	uint64_t ws;
	unsigned int seconds, interval_ms, entries, rounds, vcpus;
};

struct result {
	double guest_pps;     /* the guest's own counter */
	double collected_pps; /* distinct dirty pages per second, summed over intervals */
	double collect_us;    /* collector time per interval */
	uint64_t full_waits;
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t popcount_words(const uint64_t *bm, uint64_t words)
{
	uint64_t n = 0, w;

	for (w = 0; w < words; w++)
		n += (uint64_t)__builtin_popcountll(bm[w]);
	return n;
}

/* One interval's collection: distinct pages into bitmaps (cleared first), their count. */
static int collect(struct kvm *kvm, enum mode m, uint64_t **bitmaps, uint64_t *pages,
		   struct error *err)
{
	struct mem_region *r;
	uint64_t n = 0, ring_entries;
	int ret = 0;

	mem__for_each_region (&kvm->mem, r)
		memset(bitmaps[r - kvm->mem.regions], 0, mem__region_bitmap_bytes(r));
	if (m == MODE_RING) {
		ret = dirty_ring__harvest(kvm, bitmaps, &ring_entries, err);
	} else {
		mem__for_each_region (&kvm->mem, r) {
			ret = mem__fetch_dirty(&kvm->mem, r, bitmaps[r - kvm->mem.regions], err);
			if (ret)
				break;
		}
	}
	mem__for_each_region (&kvm->mem, r)
		n += popcount_words(bitmaps[r - kvm->mem.regions], mem__region_bitmap_bytes(r) / 8);
	*pages = n;
	return ret;
}

static int build_vm(struct vm_setup *vs, const struct opts *o, enum mode m, struct error *err)
{
	struct vm_setup_opts vo = {
	    .pc = {.ram_size = o->ws + (64ULL << 20),
		   .vram_size = VRAM_DEFAULT,
		   .nr_cpus = o->vcpus},
	    .kvm_dev = "/dev/kvm",
	    .serial = "none",
	};
	struct guest_spec spec;
	char text[96];
	int ret;

	/* The ring replaces the bitmap: no manual protect for it to clash with. */
	if (m == MODE_RING)
		setenv("KVMSNAP_DIRTY_LOG", "get", 1);
	else
		unsetenv("KVMSNAP_DIRTY_LOG");
	snprintf(text, sizeof(text), "dirtier:ws=%lluK,rate=0,pattern=random,seed=7",
		 (unsigned long long)(o->ws >> 10));
	ret = vm_setup__open(vs, &vo, err);
	if (!ret)
		ret = vm_setup__create(vs, &vo, err);
	if (!ret && m == MODE_RING)
		ret = dirty_ring__enable(&vs->kvm, o->entries, err);
	if (!ret)
		ret = vm_setup__add_cpus(vs, &vo, err);
	if (!ret && m == MODE_RING)
		ret = dirty_ring__map(&vs->kvm, err);
	if (!ret)
		ret = guests__parse(text, &spec, err);
	if (!ret)
		ret = guests__load(&vs->kvm, &spec, err);
	if (!ret)
		ret = vm_setup__add_devices(vs, err);
	if (!ret)
		ret = kvm_cpu__reset_all(&vs->kvm, err);
	return ret;
}

static int run_mode(const struct opts *o, enum mode m, struct result *res, struct error *err)
{
	struct vm_setup vs;
	uint64_t *bitmaps[MEM_MAX_REGIONS] = {0}, g0, t0, t, collected = 0, spent = 0, n;
	unsigned int intervals = 0, i;
	bool started = false;
	struct mem_region *r;
	int ret;

	memset(res, 0, sizeof(*res));
	vm_setup__init(&vs);
	ret = build_vm(&vs, o, m, err);
	mem__for_each_region (&vs.kvm.mem, r) {
		bitmaps[r - vs.kvm.mem.regions] = calloc(1, mem__region_bitmap_bytes(r));
		if (!bitmaps[r - vs.kvm.mem.regions] && !ret)
			ret = err_set(err, -ENOMEM, "out of memory");
	}
	if (!ret && m != MODE_OFF)
		ret = mem__set_log_dirty(&vs.kvm.mem, true, err);
	if (!ret) {
		started = true;
		ret =
		    vm_setup__start(&vs, false) ? err_set(err, -EIO, "the vCPUs did not start") : 0;
	}
	/* Warm up: the guest has touched its working set once. */
	t0 = mono_us();
	while (!ret && kvm__progress_pages(&vs.kvm) < o->ws / PAGE_SIZE && mono_us() - t0 < 60000000) {
		usleep(10000);
		if (m != MODE_OFF)
			ret = collect(&vs.kvm, m, bitmaps, &n, err);
	}
	g0 = kvm__progress_pages(&vs.kvm);
	t0 = mono_us();
	while (!ret && mono_us() - t0 < (uint64_t)o->seconds * 1000000) {
		usleep(o->interval_ms * 1000);
		if (m == MODE_OFF)
			continue;
		t = mono_us();
		ret = collect(&vs.kvm, m, bitmaps, &n, err);
		spent += mono_us() - t;
		collected += n;
		intervals++;
	}
	t = mono_us() - t0;
	res->guest_pps = (double)(kvm__progress_pages(&vs.kvm) - g0) * 1e6 / (double)t;
	res->collected_pps = (double)collected * 1e6 / (double)t;
	res->collect_us = intervals ? (double)spent / intervals : 0;
	res->full_waits =
	    vs.kvm.ring ? __atomic_load_n(&vs.kvm.ring->full_waits, __ATOMIC_RELAXED) : 0;
	if (started)
		kvm_cpu__stop_all(&vs.kvm);
	vm_setup__teardown(&vs);
	for (i = 0; i < MEM_MAX_REGIONS; i++)
		free(bitmaps[i]);
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		uint64_t v;

		if (!strcmp(argv[i], "--ws") && !parse_size(argv[i + 1], &v) && v >= (1 << 20))
			o->ws = v;
		else if (!strcmp(argv[i], "--seconds") && !parse_uint(argv[i + 1], 1, 600, &v))
			o->seconds = (unsigned int)v;
		else if (!strcmp(argv[i], "--interval-ms") &&
			 !parse_uint(argv[i + 1], 1, 10000, &v))
			o->interval_ms = (unsigned int)v;
		else if (!strcmp(argv[i], "--entries") && !parse_uint(argv[i + 1], 64, 1 << 20, &v))
			o->entries = (unsigned int)v;
		else if (!strcmp(argv[i], "--rounds") && !parse_uint(argv[i + 1], 1, 100, &v))
			o->rounds = (unsigned int)v;
		else if (!strcmp(argv[i], "--vcpus") && !parse_uint(argv[i + 1], 1, 8, &v))
			o->vcpus = (unsigned int)v;
		else {
			fprintf(stderr, "dirtyring-bench: bad option or value: %s %s\n", argv[i],
				argv[i + 1]);
			return -1;
		}
	}
	if (i < argc) {
		fprintf(stderr, "dirtyring-bench: %s needs a value\n", argv[i]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.ws = 256ULL << 20,
			 .seconds = 3,
			 .interval_ms = 10,
			 .entries = 65536,
			 .rounds = 3,
			 .vcpus = 1};
	double ratio[NR_MODES][100], coll[NR_MODES][100], us[NR_MODES][100], waits[NR_MODES][100];
	struct result res[NR_MODES];
	unsigned int round, k, m;
	struct error err = {0};

	if (parse(argc, argv, &o))
		return 2;
	printf("dirtyring-bench: dirtier ws=%lluM at full speed, %u vCPU(s), %u s per mode, "
	       "collected every %u ms, ring of %u entries, %u round(s)\n",
	       (unsigned long long)(o.ws >> 20), o.vcpus, o.seconds, o.interval_ms, o.entries,
	       o.rounds);
	for (round = 0; round < o.rounds; round++) {
		for (k = 0; k < NR_MODES; k++) {
			m = (k + round) % NR_MODES;
			if (run_mode(&o, (enum mode)m, &res[m], &err)) {
				fprintf(stderr, "dirtyring-bench: %s: %s\n", mode_names[m],
					err.msg);
				return 1;
			}
			printf("  round %u %-6s guest %.0f pages/s, collected %.0f pages/s, "
			       "%.0f us per collection, %llu ring-full waits\n",
			       round + 1, mode_names[m], res[m].guest_pps, res[m].collected_pps,
			       res[m].collect_us, (unsigned long long)res[m].full_waits);
		}
		for (m = 0; m < NR_MODES; m++) {
			ratio[m][round] = res[MODE_OFF].guest_pps
					      ? res[m].guest_pps / res[MODE_OFF].guest_pps
					      : 0;
			coll[m][round] = res[m].collected_pps;
			us[m][round] = res[m].collect_us;
			waits[m][round] = (double)res[m].full_waits;
		}
	}
	printf("medians: mode, guest rate / off, collected pages/s, us per collection, ring-full "
	       "waits\n");
	for (m = 0; m < NR_MODES; m++)
		printf("  %-6s %.3f %.0f %.0f %.0f\n", mode_names[m], median(ratio[m], o.rounds),
		       median(coll[m], o.rounds), median(us[m], o.rounds),
		       median(waits[m], o.rounds));
	return 0;
}
