// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty-log correctness, in the style of the kernel's KVM selftest
 * dirty_log_test.c, run in process on the VM that `kvmsnap run` builds.
 *
 * The built-in guest pagewriter stores a round number at the addresses the
 * test lists in its mailbox. After each round the test fetches every
 * region's dirty log with mem__fetch_dirty() and checks it page by page:
 * each listed page is dirty in its region's bitmap (a write through the
 * framebuffer alias sets the same region bit as one through the text window
 * would), every other page is clean unless the guest may dirty it on its
 * own, a second fetch finds the listed pages clean again, and every value
 * ever stored still reads back. pc.bios is read-only and never dirty.
 *
 * Pages come from low RAM above the boot page tables, RAM above the guest
 * image, all of vga.vram through both windows and acpi.tables (writable:
 * it is plain memory that the guest may overwrite). Edge pages: the first
 * and last of each range that the guest does not use itself, and pages at
 * 64-bit word boundaries of the bitmaps.
 *
 * A dirty tracker started before the guest runs (mem__track_restored()) gets
 * every fetch: at the end its bitmaps equal the union of all of them, and
 * turning logging off invalidates it.
 */
#include <fcntl.h>
#include <unistd.h>

#include "../harness.h"
#include "vmm/dirty-ring.h"
#include "vmm/guests.h"
#include "vmm/layout.h"
#include "vmm/mem.h"
#include "vmm/util/util.h"
#include "vmm/vm-setup.h"

#define RAM_SIZE    (256 * MiB) /* all below 3G: pc.ram has its two ranges only */
#define ROUNDS	    20
#define SEED	    0x6469727479ULL
#define EDGE_ROUND  1	  /* every edge page */
#define ALIAS_ROUND 2	  /* vram page 3 via the framebuffer, page 5 via the text window */
#define EMPTY_ROUND 7	  /* no page at all */
#define WAIT_MS	    30000 /* per round: never assume how fast the guest runs */
#define TEST_SECS   300
#define MAX_WRITTEN 4096 /* distinct host addresses the test keeps values for */
#define MAX_REPORT  5	 /* bad pages logged per region and kind */

struct written {
	volatile uint64_t *host;
	uint64_t gpa, round;
};

struct dirty_vm {
	struct vm_setup vs;
	bool started;
	uint64_t *bitmap[MEM_MAX_REGIONS]; /* what the fetch returned */
	uint64_t *want[MEM_MAX_REGIONS];   /* pages this round's list writes */
	uint64_t *all[MEM_MAX_REGIONS];	   /* every fetch so far, ORed */
	struct pagewriter_mailbox *mb;	   /* host view of the mailbox */
	uint64_t mailbox, free_start, pgtable_end, vram_pages;
	uint64_t list[PAGEWRITER_MAX_GPAS];
	unsigned int nr;
	struct written written[MAX_WRITTEN];
	unsigned int nr_written;
	uint64_t rng;
};

FIXTURE(dirty_log)
{
	struct dirty_vm vm;
};

FIXTURE_SETUP(dirty_log)
{
	int fd;

	vm_setup__init(&self->vm.vs);
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	TEST_REQUIRE(fd >= 0, "/dev/kvm cannot be opened: %s", strerror(errno));
	close(fd);
}

FIXTURE_TEARDOWN(dirty_log)
{
	struct dirty_vm *vm = &self->vm;
	unsigned int i;

	if (vm->started)
		kvm_cpu__stop_all(&vm->vs.kvm);
	vm_setup__teardown(&vm->vs);
	for (i = 0; i < MEM_MAX_REGIONS; i++) {
		free(vm->bitmap[i]);
		free(vm->want[i]);
		free(vm->all[i]);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A page-aligned GPA in [lo, hi), plus a random 8-byte-aligned offset. */
static uint64_t pick(uint64_t *rng, uint64_t lo, uint64_t hi)
{
	uint64_t page = lo + xorshift64(rng) % ((hi - lo) / PAGE_SIZE) * PAGE_SIZE;

	return page + xorshift64(rng) % (PAGE_SIZE / 8) * 8;
}

static bool ram_page(const struct mem_region *r)
{
	return r->flags & MEM_REGION_RAM;
}

/*
 * pc.ram pages the guest or the CPU may dirty by themselves (region page j
 * is GPA j * 4K below 3G). Everything else must be clean unless listed.
 *   [0, pgtable_end)      boot GDT, boot info, command line (host-written,
 *                         but allowed), and the boot page tables: the CPU
 *                         sets accessed/dirty bits in them on a first access
 *                         to each 2 MiB page, e.g. the first store to vram
 *   BOOT_STACK_TOP - 4K   the ELF64 entry stack (crt0 leaves it at once)
 *   [1M, free_start)      the guest image: code, data, and in .bss its GDT
 *                         and TSS (ltr sets the busy bit), IDT, per-vCPU
 *                         exception and ring-3 stacks, fault records
 *   the mailbox           the guest writes ready and done there
 */
static bool guest_may_dirty(const struct dirty_vm *vm, const struct mem_region *r, uint64_t j)
{
	uint64_t gpa = j * PAGE_SIZE;

	if (!ram_page(r))
		return false;
	return gpa < vm->pgtable_end || gpa == BOOT_STACK_TOP - PAGE_SIZE ||
	       (gpa >= HIGH_RAM_START && gpa < vm->free_start) || gpa == vm->mailbox;
}

/* End of the boot page tables: past the highest PD that the PDPT uses. */
static uint64_t find_pgtable_end(struct mem_registry *reg)
{
	const uint64_t *pdpt = mem__gpa_to_host(reg, BOOT_PGTABLE_GPA + PAGE_SIZE, PAGE_SIZE);
	uint64_t end = BOOT_PGTABLE_GPA + 2 * PAGE_SIZE; /* PML4 and PDPT */
	unsigned int i;

	for (i = 0; pdpt && i < PAGE_SIZE / 8; i++)
		if (pdpt[i] & 1)
			end = MAX(end, (pdpt[i] & 0x000ffffffffff000ULL) + PAGE_SIZE);
	return end;
}

/*
 * Every VMM call that builds, starts and feeds the VM is here or in
 * fetch(), so that a change of signature touches one place. The steps are
 * those of `kvmsnap run --guest pagewriter --serial none`, without a
 * control socket and without dropping capabilities.
 */
static int start_vm_ring(struct dirty_vm *vm, unsigned int nr_cpus, uint32_t ring_entries)
{
	struct vm_setup_opts o = {
	    .pc = {.ram_size = RAM_SIZE, .vram_size = VRAM_DEFAULT, .nr_cpus = nr_cpus},
	    .kvm_dev = "/dev/kvm",
	    .control = NULL,
	    .serial = "none",
	};
	struct kvm *kvm = &vm->vs.kvm;
	struct guest_spec spec;
	struct error err = {0};
	int ret;

	ret = vm_setup__open(&vm->vs, &o, &err);
	if (!ret)
		ret = vm_setup__create(&vm->vs, &o, &err);
	if (!ret && ring_entries)
		ret = dirty_ring__enable(kvm, ring_entries, &err);
	if (!ret)
		ret = vm_setup__add_cpus(&vm->vs, &o, &err);
	if (!ret && ring_entries)
		ret = dirty_ring__map(kvm, &err);
	if (!ret)
		ret = guests__parse("pagewriter", &spec, &err);
	if (!ret)
		ret = guests__load(kvm, &spec, &err);
	if (!ret)
		ret = vm_setup__add_devices(&vm->vs, &err);
	if (!ret)
		ret = kvm_cpu__reset_all(kvm, &err);
	/* Every page starts clean: the guest's start-up is round 0. */
	if (!ret)
		ret = mem__set_log_dirty(&kvm->mem, true, &err);
	if (!ret && !ring_entries)
		ret = mem__track_restored(&kvm->mem, (const uint8_t[16]){1}, 0, 0x1, &err);
	if (ret) {
		fprintf(stderr, "# cannot build the VM: %s\n", err.msg);
		return ret;
	}
	vm->started = true; /* even on failure: stopping is safe on any vCPU */
	return vm_setup__start(&vm->vs, false);
}

static int start_vm(struct dirty_vm *vm, unsigned int nr_cpus)
{
	return start_vm_ring(vm, nr_cpus, 0);
}

/* The one dirty-log fetch: OR what r's pages got since the last one into bm. */
static int fetch(struct dirty_vm *vm, const struct mem_region *r, uint64_t *bm)
{
	struct error err = {0};
	int ret = mem__fetch_dirty(&vm->vs.kvm.mem, r, bm, &err);

	if (ret)
		TH_LOG("%s: %s", r->name, err.msg);
	return ret;
}

/* Wait until *p == want, the VM ends, or WAIT_MS pass. */
static bool wait_for(struct kvm *kvm, const uint64_t *p, uint64_t want)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != want) {
		if (kvm__has_exited(kvm)) {
			TH_LOG("the VM ended: %s (status %d)", kvm->exit_reason, kvm->exit_status);
			return false;
		}
		if (now_ms() > deadline) {
			TH_LOG("no 0x%llx from the guest in %d ms (0x%llx)",
			       (unsigned long long)want, WAIT_MS,
			       (unsigned long long)__atomic_load_n(p, __ATOMIC_ACQUIRE));
			return false;
		}
		usleep(100);
	}
	return true;
}

static void add(struct dirty_vm *vm, uint64_t gpa)
{
	if (vm->nr < PAGEWRITER_MAX_GPAS)
		vm->list[vm->nr++] = gpa;
}

/*
 * The round's addresses. Test windows: low RAM between the page tables and
 * the entry stack page, plus the last low page; RAM past the mailbox; vram
 * pages 0-7 through the text window and any vram page through the
 * framebuffer; acpi.tables. The first page of each pc.ram range belongs to
 * the guest (the boot GDT page, the image at 1M), so the window edges stand
 * in for them.
 */
static void build_list(struct dirty_vm *vm, unsigned int round)
{
	uint64_t lo = vm->pgtable_end, lo_end = BOOT_STACK_TOP - PAGE_SIZE;
	uint64_t hi = vm->mailbox + PAGE_SIZE, hi_end = RAM_SIZE;
	uint64_t lfb_end = VGA_LFB_GPA + vm->vram_pages * PAGE_SIZE;
	uint64_t w, *s = &vm->rng;
	const uint64_t words[] = {63, 64, 127, 128};
	unsigned int i, n;

	vm->nr = 0;
	switch (round) {
	case 0: /* the guest's start-up */
	case EMPTY_ROUND:
		return;
	case ALIAS_ROUND:
		add(vm, VGA_LFB_GPA + 3 * PAGE_SIZE);
		add(vm, VGA_TEXT_GPA + 5 * PAGE_SIZE + 8);
		return;
	case EDGE_ROUND:
		add(vm, lo);
		add(vm, lo_end - PAGE_SIZE);
		add(vm, LOW_RAM_END - PAGE_SIZE);
		for (i = 0; i < ARRAY_SIZE(words); i++) {
			/* Region page == GPA page in low RAM. */
			if (words[i] * PAGE_SIZE >= lo)
				add(vm, words[i] * PAGE_SIZE);
			else
				fprintf(stderr, "# page %llu is a page table: not tested\n",
					(unsigned long long)words[i]);
			add(vm, VGA_LFB_GPA + words[i] * PAGE_SIZE);
		}
		/* Word boundaries of both the region and the range bitmap (1M is 256 pages). */
		w = ALIGN_UP(hi / PAGE_SIZE + 1, 64);
		add(vm, hi);
		add(vm, (w - 1) * PAGE_SIZE);
		add(vm, w * PAGE_SIZE);
		add(vm, (w + 63) * PAGE_SIZE);
		add(vm, (w + 64) * PAGE_SIZE);
		add(vm, hi_end - PAGE_SIZE);
		add(vm, VGA_TEXT_GPA);
		add(vm, VGA_TEXT_GPA + VGA_TEXT_SIZE - PAGE_SIZE);
		add(vm, VGA_LFB_GPA + VGA_TEXT_SIZE); /* first page past the text window */
		add(vm, lfb_end - PAGE_SIZE);
		add(vm, ACPI_GPA);
		add(vm, ACPI_GPA + ACPI_SIZE - PAGE_SIZE);
		return;
	}
	for (n = xorshift64(s) % 8, i = 0; i < n; i++)
		add(vm, pick(s, lo, lo_end));
	for (n = xorshift64(s) % 16, i = 0; i < n; i++)
		add(vm, pick(s, hi, hi_end));
	for (n = xorshift64(s) % 4, i = 0; i < n; i++)
		add(vm, pick(s, VGA_TEXT_GPA, VGA_TEXT_GPA + VGA_TEXT_SIZE));
	for (n = xorshift64(s) % 8, i = 0; i < n; i++)
		add(vm, pick(s, VGA_LFB_GPA, lfb_end));
	for (n = xorshift64(s) % 4, i = 0; i < n; i++)
		add(vm, pick(s, ACPI_GPA, ACPI_GPA + ACPI_SIZE));
}

static bool test_bit(const uint64_t *bm, uint64_t j)
{
	return bm[j / 64] >> (j % 64) & 1;
}

/* Mark the listed pages in want[] and note the values they will hold. */
static void expect_round(struct th_result *_r, struct dirty_vm *vm, uint64_t round)
{
	struct mem_registry *reg = &vm->vs.kvm.mem;
	struct mem_region *r;
	struct mem_range *rg;
	volatile uint64_t *host;
	unsigned int i, k;
	uint64_t j;

	mem__for_each_region (reg, r)
		memset(vm->want[r - reg->regions], 0, mem__region_bitmap_bytes(r));
	for (i = 0; i < vm->nr; i++) {
		rg = mem__find_range(reg, vm->list[i], &r);
		host = mem__gpa_to_host(reg, vm->list[i], 8);
		ASSERT_NOT_NULL(rg);
		ASSERT_NOT_NULL(host);
		ASSERT_FALSE(r->flags & MEM_REGION_READONLY);
		j = (vm->list[i] - rg->gpa + rg->offset) / PAGE_SIZE;
		vm->want[r - reg->regions][j / 64] |= 1ULL << (j % 64);

		/* Aliases share a host address: the later store wins. */
		for (k = 0; k < vm->nr_written && vm->written[k].host != host; k++)
			;
		if (k == vm->nr_written) {
			ASSERT_LT(vm->nr_written, MAX_WRITTEN);
			vm->nr_written++;
		}
		vm->written[k] = (struct written){.host = host, .gpa = vm->list[i], .round = round};
	}
}

/*
 * Fetch every region's log and compare it with want[] page by page: a
 * wanted page must be dirty, any other page clean unless the guest may
 * dirty it itself. With again, this is the fetch right after the checked
 * one: the guest has written nothing since, so no page is wanted.
 */
static void check_logs(struct th_result *_r, struct dirty_vm *vm, unsigned int round, bool again)
{
	struct mem_registry *reg = &vm->vs.kvm.mem;
	const char *what = again ? "second fetch" : "fetch";
	unsigned int missing, extra, dirty, own;
	struct mem_region *r;
	uint64_t j, *bm, *want;
	char line[256];
	int len = 0;

	mem__for_each_region (reg, r) {
		bm = vm->bitmap[r - reg->regions];
		want = vm->want[r - reg->regions];
		memset(bm, 0, mem__region_bitmap_bytes(r));
		ASSERT_EQ(fetch(vm, r, bm), 0);
		for (j = 0; j < mem__region_bitmap_bytes(r) / 8; j++)
			vm->all[r - reg->regions][j] |= bm[j];
		missing = extra = dirty = own = 0;
		for (j = 0; j < r->size / PAGE_SIZE; j++) {
			bool is_dirty = test_bit(bm, j), wanted = !again && test_bit(want, j);

			dirty += is_dirty;
			if (wanted && !is_dirty && missing++ < MAX_REPORT)
				TH_LOG("round %u %s: %s page %llu was written but is clean", round,
				       what, r->name, (unsigned long long)j);
			if (!wanted && is_dirty) {
				if (guest_may_dirty(vm, r, j))
					own++;
				else if (extra++ < MAX_REPORT)
					TH_LOG("round %u %s: %s page %llu is dirty but was not "
					       "written",
					       round, what, r->name, (unsigned long long)j);
			}
		}
		EXPECT_EQ(missing, 0);
		EXPECT_EQ(extra, 0);
		if (r->flags & MEM_REGION_READONLY)
			EXPECT_EQ(dirty, 0);
		if (!again && len < (int)sizeof(line))
			len += snprintf(line + len, sizeof(line) - len, " %s %u", r->name, dirty);
		if (!again && own && len < (int)sizeof(line))
			len += snprintf(line + len, sizeof(line) - len, " (%u its own)", own);
	}
	if (!again)
		fprintf(stderr, "# round %u: %u addresses; dirty:%s\n", round, vm->nr, line);
}

/* Every value the guest ever stored must still be there, through any alias. */
static void check_values(struct th_result *_r, struct dirty_vm *vm, unsigned int round)
{
	unsigned int k, bad = 0;
	uint64_t v;

	for (k = 0; k < vm->nr_written; k++) {
		v = *vm->written[k].host;
		if (v != vm->written[k].round && bad++ < MAX_REPORT)
			TH_LOG("round %u: 0x%llx holds %llu, not %llu", round,
			       (unsigned long long)vm->written[k].gpa, (unsigned long long)v,
			       (unsigned long long)vm->written[k].round);
	}
	EXPECT_EQ(bad, 0);
}

static void run_round(struct th_result *_r, struct dirty_vm *vm, unsigned int round)
{
	struct kvm *kvm = &vm->vs.kvm;

	build_list(vm, round);
	expect_round(_r, vm, round);
	if (_r->failed)
		return;
	if (round == 0) {
		ASSERT_TRUE(wait_for(kvm, &vm->mb->ready, PAGEWRITER_READY));
	} else {
		memcpy(vm->mb->gpa, vm->list, vm->nr * sizeof(vm->list[0]));
		vm->mb->nr = vm->nr;
		__atomic_store_n(&vm->mb->go, round, __ATOMIC_RELEASE);
		ASSERT_TRUE(wait_for(kvm, &vm->mb->done, round));
	}
	check_logs(_r, vm, round, false);
	if (!_r->failed)
		check_logs(_r, vm, round, true);
	if (!_r->failed)
		check_values(_r, vm, round);
}

/* The tracker saw every fetch, and nothing else; logging off invalidates it. */
static void check_tracker(struct th_result *_r, struct dirty_vm *vm)
{
	struct mem_registry *reg = &vm->vs.kvm.mem;
	const struct dirty_tracker *t = dirty_track__find(&reg->track, (const uint8_t[16]){1}, 0);
	struct mem_region *r;
	struct error err = {0};
	uint64_t j, *bm;

	ASSERT_NOT_NULL(t);
	EXPECT_TRUE(t->valid);
	EXPECT_TRUE(mem__tracking(reg));
	mem__for_each_region (reg, r) {
		bm = vm->all[r - reg->regions];
		ASSERT_NOT_NULL(t->bitmap[r - reg->regions]);
		for (j = 0; j < mem__region_bitmap_bytes(r) / 8; j++)
			EXPECT_EQ(t->bitmap[r - reg->regions][j], bm[j]);
	}
	ASSERT_EQ(mem__set_log_dirty(reg, false, &err), 0);
	EXPECT_FALSE(t->valid);
	EXPECT_EQ(t->why, DIRTY_TRACK_LOG_OFF);
	EXPECT_FALSE(mem__tracking(reg));
}

/* Where the pagewriter's mailbox is (a boot parameter, else the first free page). */
static bool open_mailbox(struct dirty_vm *vm)
{
	struct mem_registry *reg = &vm->vs.kvm.mem;
	const struct kvmsnap_bootinfo *bi = GUEST_PTR(reg, BOOT_INFO_GPA, struct kvmsnap_bootinfo);

	if (!bi)
		return false;
	vm->free_start = bi->free_start;
	vm->mailbox =
	    bi->params[PAGEWRITER_P_MAILBOX] ? bi->params[PAGEWRITER_P_MAILBOX] : bi->free_start;
	vm->mb = mem__gpa_to_host(reg, vm->mailbox, PAGE_SIZE);
	return vm->mb != NULL;
}

/* The guest stores round at gpa; true once it says it did. */
static bool guest_writes(struct dirty_vm *vm, uint64_t gpa, uint64_t round)
{
	vm->mb->gpa[0] = gpa;
	vm->mb->nr = 1;
	__atomic_store_n(&vm->mb->go, round, __ATOMIC_RELEASE);
	return wait_for(&vm->vs.kvm, &vm->mb->done, round);
}

static void run_test(struct th_result *_r, struct dirty_vm *vm, unsigned int nr_cpus)
{
	struct mem_registry *reg = &vm->vs.kvm.mem;
	struct mem_region *r;
	unsigned int round;
	size_t bytes;

	ASSERT_EQ(start_vm(vm, nr_cpus), 0);
	mem__for_each_region (reg, r) {
		bytes = mem__region_bitmap_bytes(r);
		vm->bitmap[r - reg->regions] = calloc(1, bytes);
		vm->want[r - reg->regions] = calloc(1, bytes);
		vm->all[r - reg->regions] = calloc(1, bytes);
		ASSERT_NOT_NULL(vm->all[r - reg->regions]);
		ASSERT_NOT_NULL(vm->bitmap[r - reg->regions]);
		ASSERT_NOT_NULL(vm->want[r - reg->regions]);
	}
	r = mem__find_region(reg, "vga.vram");
	ASSERT_NOT_NULL(r);
	vm->vram_pages = r->size / PAGE_SIZE;
	ASSERT_TRUE(open_mailbox(vm));
	vm->pgtable_end = find_pgtable_end(reg);
	ASSERT_LT(vm->pgtable_end, BOOT_STACK_TOP - 2 * PAGE_SIZE);
	vm->rng = SEED;
	fprintf(stderr,
		"# seed 0x%llx, %u vCPU%s; the guest's own pages: [0, 0x%llx), 0x%llx, "
		"[0x%llx, 0x%llx), mailbox 0x%llx\n",
		(unsigned long long)SEED, nr_cpus, nr_cpus == 1 ? "" : "s",
		(unsigned long long)vm->pgtable_end, BOOT_STACK_TOP - PAGE_SIZE, HIGH_RAM_START,
		(unsigned long long)vm->free_start, (unsigned long long)vm->mailbox);

	for (round = 0; round <= ROUNDS && !_r->failed; round++)
		run_round(_r, vm, round);
	if (_r->failed)
		return;
	check_tracker(_r, vm);
	/* A crash before this would have won: the status must be ours. */
	kvm__request_exit(&vm->vs.kvm, EXIT_OK, "dirty-log test done");
	EXPECT_EQ(vm_setup__serve(&vm->vs), EXIT_OK);
	vm->started = false;
}

TEST_F_TIMEOUT(dirty_log, one_vcpu, TEST_SECS)
{
	run_test(_r, &self->vm, 1);
}

/* vCPU 1 parks in a pause loop in ring 3; its stacks and GDT are in the image. */
TEST_F_TIMEOUT(dirty_log, two_vcpus, TEST_SECS)
{
	run_test(_r, &self->vm, 2);
}

/* pc.ram with a bitmap for its fetches, once the page writer is ready; NULL if not. */
static struct mem_region *pagewriter_on_pc_ram(struct dirty_vm *vm)
{
	struct mem_region *r = mem__find_region(&vm->vs.kvm.mem, "pc.ram");

	if (!r)
		return NULL;
	vm->bitmap[0] = calloc(1, mem__region_bitmap_bytes(r));
	if (!vm->bitmap[0] || !open_mailbox(vm) ||
	    !wait_for(&vm->vs.kvm, &vm->mb->ready, PAGEWRITER_READY))
		return NULL;
	return r;
}

/* Whether page j of a region bitmap is set after a fetch into a cleared one. */
static bool fetched(struct th_result *_r, struct dirty_vm *vm, const struct mem_region *r,
		    uint64_t j, bool lazy)
{
	struct error err = {0};
	uint64_t *bm = vm->bitmap[0];

	memset(bm, 0, mem__region_bitmap_bytes(r));
	if (lazy)
		EXPECT_EQ(mem__fetch_dirty_lazy(&vm->vs.kvm.mem, r, bm, &err), 0);
	else
		EXPECT_EQ(mem__fetch_dirty(&vm->vs.kvm.mem, r, bm, &err), 0);
	return test_bit(bm, j);
}

/*
 * Manual protect (KVM_CLEAR_DIRTY_LOG): a lazily fetched page stays
 * reported until it is re-armed; a fetch that re-arms at once re-arms it
 * too, and forgets it, so that a later mem__clear_dirty() cannot clear a
 * bit KVM set after that (a write the snapshot would then miss).
 */
TEST_F_TIMEOUT(dirty_log, lazy_rearm_never_drops_a_later_write, TEST_SECS)
{
	struct dirty_vm *vm = &self->vm;
	struct mem_registry *reg = &vm->vs.kvm.mem;
	struct error err = {0};
	struct mem_region *r;
	uint64_t gpa, j;

	ASSERT_EQ(start_vm(vm, 1), 0);
	if (!reg->manual_protect)
		SKIP(return, "manual dirty-log protection is off (no "
			     "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, or KVMSNAP_DIRTY_LOG=get)");
	r = pagewriter_on_pc_ram(vm);
	ASSERT_NOT_NULL(r);
	gpa = vm->mailbox + 2 * PAGE_SIZE;
	j = gpa / PAGE_SIZE; /* below 3G: region page = gpa page */

	ASSERT_TRUE(guest_writes(vm, gpa, 1));
	EXPECT_TRUE(fetched(_r, vm, r, j, true));
	/* Not re-armed yet: KVM reports it again. */
	EXPECT_TRUE(fetched(_r, vm, r, j, true));
	/* Re-armed at once, and clean afterwards. */
	EXPECT_TRUE(fetched(_r, vm, r, j, false));
	EXPECT_FALSE(fetched(_r, vm, r, j, true));
	/* A write now, then a re-arm of the whole region before the next fetch. */
	ASSERT_TRUE(guest_writes(vm, gpa, 2));
	EXPECT_EQ(mem__clear_dirty(reg, r, 0, r->size / PAGE_SIZE, &err), 0);
	EXPECT_TRUE(fetched(_r, vm, r, j, false));
	/* And the ordinary way: fetched lazily, re-armed, written, fetched. */
	ASSERT_TRUE(guest_writes(vm, gpa, 3));
	EXPECT_TRUE(fetched(_r, vm, r, j, true));
	EXPECT_EQ(mem__clear_dirty(reg, r, 0, r->size / PAGE_SIZE, &err), 0);
	EXPECT_FALSE(fetched(_r, vm, r, j, true));
	ASSERT_TRUE(guest_writes(vm, gpa, 4));
	EXPECT_TRUE(fetched(_r, vm, r, j, false));
}

/*
 * KVM_DIRTY_LOG_INITIALLY_SET: logging started all dirty reports every
 * page, written or not, until it is re-armed; after that, only writes.
 * Started the ordinary way, every page is clean at once.
 */
TEST_F_TIMEOUT(dirty_log, all_dirty_start_reports_every_page_until_rearmed, TEST_SECS)
{
	struct dirty_vm *vm = &self->vm;
	struct mem_registry *reg = &vm->vs.kvm.mem;
	struct error err = {0};
	struct mem_region *r;
	uint64_t gpa, j, far;
	bool all = false;

	ASSERT_EQ(start_vm(vm, 1), 0);
	if (!reg->initially_set)
		SKIP(return, "no KVM_DIRTY_LOG_INITIALLY_SET here (or KVMSNAP_DIRTY_LOG is set)");
	r = pagewriter_on_pc_ram(vm);
	ASSERT_NOT_NULL(r);
	gpa = vm->mailbox + 2 * PAGE_SIZE;
	j = gpa / PAGE_SIZE;
	far = r->size / PAGE_SIZE - 1; /* never written by the guest */

	ASSERT_EQ(mem__set_log_dirty(reg, false, &err), 0);
	ASSERT_EQ(mem__start_log_all_dirty(reg, &all, &err), 0);
	EXPECT_TRUE(all);
	EXPECT_TRUE(fetched(_r, vm, r, far, true));
	EXPECT_TRUE(fetched(_r, vm, r, j, true));
	EXPECT_EQ(mem__clear_dirty(reg, r, 0, r->size / PAGE_SIZE, &err), 0);
	EXPECT_FALSE(fetched(_r, vm, r, far, true));
	EXPECT_FALSE(fetched(_r, vm, r, j, true));
	ASSERT_TRUE(guest_writes(vm, gpa, 5));
	EXPECT_TRUE(fetched(_r, vm, r, j, true));
	EXPECT_FALSE(fetched(_r, vm, r, far, true));

	/* The ordinary start: clean at once, and a write is seen. */
	ASSERT_EQ(mem__set_log_dirty(reg, false, &err), 0);
	ASSERT_EQ(mem__set_log_dirty(reg, true, &err), 0);
	EXPECT_FALSE(fetched(_r, vm, r, far, false));
	EXPECT_FALSE(fetched(_r, vm, r, j, false));
	ASSERT_TRUE(guest_writes(vm, gpa, 6));
	EXPECT_TRUE(fetched(_r, vm, r, j, false));
}

#define RING_ENTRIES 512 /* the least KVM takes is a page of them and its reserve */

/*
 * The dirty ring (dirty-ring.h): a page the guest writes is harvested, once;
 * after the reset, a page it does not write again is not; one it writes
 * again is. A ring that fills makes the vCPU wait, not fail.
 */
TEST_F_TIMEOUT(dirty_log, ring_harvests_the_pages_the_guest_wrote, TEST_SECS)
{
	struct dirty_vm *vm = &self->vm;
	struct mem_registry *reg;
	struct error err = {0};
	uint64_t *bms[MEM_MAX_REGIONS] = {0}, gpa, j, n, deadline;
	int ret;
	struct mem_region *r;
	unsigned int i;

	/* The ring replaces the bitmap: no manual protect beside it. */
	setenv("KVMSNAP_DIRTY_LOG", "get", 1);
	ret = start_vm_ring(vm, 1, RING_ENTRIES);
	unsetenv("KVMSNAP_DIRTY_LOG");
	if (ret == -EOPNOTSUPP)
		SKIP(return, "KVM offers no dirty ring of %u entries here", RING_ENTRIES);
	ASSERT_EQ(ret, 0);
	reg = &vm->vs.kvm.mem;
	mem__for_each_region (reg, r) {
		bms[r - reg->regions] = calloc(1, mem__region_bitmap_bytes(r));
		ASSERT_NOT_NULL(bms[r - reg->regions]);
	}
	r = mem__find_region(reg, "pc.ram");
	ASSERT_NOT_NULL(r);
	ASSERT_TRUE(open_mailbox(vm));
	/* Start-up may fill the ring: harvest while it runs, or the vCPU waits for ever. */
	deadline = now_ms() + WAIT_MS;
	while (__atomic_load_n(&vm->mb->ready, __ATOMIC_ACQUIRE) != PAGEWRITER_READY) {
		ASSERT_EQ(dirty_ring__harvest(&vm->vs.kvm, bms, &n, &err), 0);
		ASSERT_FALSE(kvm__has_exited(&vm->vs.kvm));
		ASSERT_LT(now_ms(), deadline);
		usleep(1000);
	}
	ASSERT_EQ(dirty_ring__harvest(&vm->vs.kvm, bms, &n, &err), 0);
	gpa = vm->mailbox + 2 * PAGE_SIZE;
	j = gpa / PAGE_SIZE;

	ASSERT_TRUE(guest_writes(vm, gpa, 1));
	memset(bms[r - reg->regions], 0, mem__region_bitmap_bytes(r));
	ASSERT_EQ(dirty_ring__harvest(&vm->vs.kvm, bms, &n, &err), 0);
	EXPECT_TRUE(test_bit(bms[r - reg->regions], j));
	EXPECT_GE(n, 1);
	/* Reset: not again, unless written again. */
	memset(bms[r - reg->regions], 0, mem__region_bitmap_bytes(r));
	ASSERT_EQ(dirty_ring__harvest(&vm->vs.kvm, bms, &n, &err), 0);
	EXPECT_FALSE(test_bit(bms[r - reg->regions], j));
	ASSERT_TRUE(guest_writes(vm, gpa, 2));
	ASSERT_EQ(dirty_ring__harvest(&vm->vs.kvm, bms, &n, &err), 0);
	EXPECT_TRUE(test_bit(bms[r - reg->regions], j));

	/* More pages in one round than the ring holds: the vCPU waits for each harvest. */
	memset(bms[r - reg->regions], 0, mem__region_bitmap_bytes(r));
	for (i = 0; i < PAGEWRITER_MAX_GPAS; i++)
		vm->mb->gpa[i] = vm->mailbox + (16 + i) * PAGE_SIZE;
	vm->mb->nr = PAGEWRITER_MAX_GPAS;
	__atomic_store_n(&vm->mb->go, 3, __ATOMIC_RELEASE);
	deadline = now_ms() + WAIT_MS;
	/* No harvest until the vCPU says the ring is full (or, wrongly, finishes). */
	while (!__atomic_load_n(&vm->vs.kvm.ring->full_waits, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&vm->mb->done, __ATOMIC_ACQUIRE) != 3 && now_ms() < deadline)
		usleep(1000);
	while (__atomic_load_n(&vm->mb->done, __ATOMIC_ACQUIRE) != 3) {
		ASSERT_EQ(dirty_ring__harvest(&vm->vs.kvm, bms, &n, &err), 0);
		ASSERT_LT(now_ms(), deadline);
		usleep(1000);
	}
	ASSERT_EQ(dirty_ring__harvest(&vm->vs.kvm, bms, &n, &err), 0);
	for (i = 0; i < PAGEWRITER_MAX_GPAS; i++)
		EXPECT_TRUE(test_bit(bms[r - reg->regions], (vm->mailbox / PAGE_SIZE) + 16 + i));
	TH_LOG("%llu ring-full waits", (unsigned long long)vm->vs.kvm.ring->full_waits);
	EXPECT_GT(vm->vs.kvm.ring->full_waits, 0);
	for (i = 0; i < MEM_MAX_REGIONS; i++)
		free(bms[i]);
}

TEST_HARNESS_MAIN
