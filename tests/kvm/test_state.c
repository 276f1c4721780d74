// SPDX-License-Identifier: GPL-2.0
/*
 * VM state save and restore on real KVM, with the dirtier running on one and
 * on two vCPUs, in this process:
 *  (a) two saves of a paused VM are the same, but for what runs on its own;
 *  (b) restoring a save into the same paused VM and saving again gives it back,
 *      and the VM runs on when resumed;
 *  (c) a second VM built the same way, given the first one's memory and the
 *      saved state and never run before, runs on: the dirtier's progress
 *      counters grow past the saved values and it never fails a stamp check
 *      (exit 6) or crashes (exit 4). This is the proof that restore works.
 */
#include "../harness.h"
#include "../lib/util.h"

#include <fcntl.h>
#include <xxhash.h>

#include "lib/le.h"
#include "snapshot/snapshot.h"
#include "snapshot/state.h"
#include "vmm/devices/debug-exit.h"
#include "vmm/devices/msgport.h"
#include "vmm/devices/uart.h"
#include "vmm/guests.h"
#include "vmm/kvm.h"
#include "vmm/layout.h"
#include "vmm/pc.h"
#include "vmm/state/state.h"
#include "vmm/util/util.h"

#define GUEST_SPEC	"dirtier:ws=8M"
#define RAM_SIZE	(256ULL << 20)
#define WARMUP_MS	200
#define RUN_MS		300
#define PROGRESS_MAX_MS 30000 /* the longest a vCPU may take to report progress, slow hosts too */
#define MAX_RECORDS	256

/* The state area the image reserves for this many vCPUs. */
#define STATE_CAP(n) snap_state_area_size(n)

struct vm {
	struct kvm kvm;
	struct uart com1;
	struct vm_state_devices devs;
	bool built, started;
};

/*
 * As vmm/vm-setup.c's vm_setup__create(), vm_setup__add_cpus() and
 * vm_setup__add_devices() do, with the guest loaded in between as run does.
 */
static void vm_build(struct th_result *_r, struct vm *v, unsigned int nr_cpus)
{
	struct pc_config pc = {.ram_size = RAM_SIZE, .vram_size = VRAM_DEFAULT, .nr_cpus = nr_cpus};
	struct guest_spec spec;
	struct kvm *kvm = &v->kvm;

	kvm__init(kvm);
	v->built = true;
	ASSERT_EQ(guests__parse(GUEST_SPEC, &spec, NULL), 0);
	ASSERT_EQ(kvm__open(kvm, "/dev/kvm", NULL), 0);
	ASSERT_EQ(kvm__create_vm(kvm, NULL), 0);
	kvm->ram_size = pc.ram_size;
	ASSERT_EQ(pc__setup_memory(&kvm->mem, &pc, NULL), 0);
	ASSERT_EQ(mem__register_slots(&kvm->mem, kvm->vm_fd, NULL), 0);
	ASSERT_EQ(kvm_cpu__create_all(kvm, nr_cpus, NULL), 0);
	ASSERT_EQ(guests__load(kvm, &spec, NULL), 0);
	ASSERT_EQ(uart__init(&v->com1, kvm, PORT_COM1, 4), 0);
	kvm->com1 = &v->com1;
	ASSERT_EQ(debug_exit__init(kvm, PORT_DEBUG_EXIT), 0);
	ASSERT_EQ(msgport__init(kvm, MSGPORT_GPA), 0);
	v->devs.com1 = &v->com1;
}

static void vm_start(struct th_result *_r, struct vm *v)
{
	ASSERT_EQ(kvm_cpu__start_all(&v->kvm), 0);
	v->started = true;
}

static void vm_destroy(struct vm *v)
{
	if (!v->built)
		return;
	kvm__request_exit(&v->kvm, EXIT_OK, "test done");
	if (v->started)
		kvm_cpu__stop_all(&v->kvm);
	kvm__exit(&v->kvm);
	v->built = v->started = false;
}

static uint64_t pages_of(struct vm *v, unsigned int i)
{
	return __atomic_load_n(&v->kvm.cpus[i]->progress.pages, __ATOMIC_RELAXED);
}

/*
 * Run at least min_ms and until every vCPU's page count is above floor[i],
 * for at most PROGRESS_MAX_MS. Fails if the VM ends or a vCPU does not move.
 */
static void wait_progress(struct th_result *_r, struct vm *v, const uint64_t *floor,
			  unsigned int min_ms)
{
	uint64_t start = now_ns();
	unsigned int i, behind;

	for (;;) {
		uint64_t ms = (now_ns() - start) / 1000000;

		if (kvm__has_exited(&v->kvm)) {
			TH_LOG("the VM ended: status %d, %s", v->kvm.exit_status,
			       v->kvm.exit_reason);
			ASSERT_FALSE(kvm__has_exited(&v->kvm));
		}
		behind = 0;
		for (i = 0; i < v->kvm.nr_cpus; i++)
			if (pages_of(v, i) <= floor[i])
				behind++;
		if (!behind && ms >= min_ms)
			return;
		if (ms >= PROGRESS_MAX_MS) {
			for (i = 0; i < v->kvm.nr_cpus; i++)
				TH_LOG("vCPU %u: %llu pages, needed more than %llu", i,
				       (unsigned long long)pages_of(v, i),
				       (unsigned long long)floor[i]);
			ASSERT_EQ(behind, 0);
		}
		sleep_ms(10);
	}
}

struct rec_list {
	unsigned int n;
	struct snap_state_record r[MAX_RECORDS];
};

static void read_records(struct th_result *_r, const uint8_t *buf, size_t len, struct rec_list *out)
{
	struct snap_state_reader rd;
	struct error err = {0};
	int ret;

	out->n = 0;
	ret = snap_state_open(&rd, buf, len, &err);
	if (ret)
		TH_LOG("%s", err.msg);
	ASSERT_EQ(ret, 0);
	while ((ret = snap_state_next(&rd, &out->r[out->n], &err)) > 0) {
		out->n++;
		ASSERT_LT(out->n, MAX_RECORDS);
	}
	if (ret)
		TH_LOG("%s", err.msg);
	ASSERT_EQ(ret, 0);
}

/* The PIT's count_load_time of channel i, in the PIT payload. */
static bool is_pit_load_time(size_t off)
{
	return off < 0x48 && off % 0x18 >= 0x10;
}

/*
 * Two saves must match record for record, byte for byte, except:
 *  - CLOCK: KVM_GET_CLOCK reads kvmclock now, and it runs while paused;
 *  - the values of the MSRs that count time (IA32_TSC, and Hyper-V's
 *    reference counter and VP runtime where KVM offers them, as nested KVM
 *    on Debian 6.1 does; KVM reads the runtime off the calling thread):
 *    they run while the vCPUs are paused;
 *  - with pit_reloaded, the PIT's count_load_time: KVM_SET_PIT2 reloads the
 *    counters at the current host time, whatever the record said.
 * Returns the number of records that differ otherwise.
 */
#define HV_X64_MSR_VP_RUNTIME	  0x40000010
#define HV_X64_MSR_TIME_REF_COUNT 0x40000020

static bool is_time_msr(uint32_t index)
{
	return index == MSR_IA32_TSC_NR || index == HV_X64_MSR_VP_RUNTIME ||
	       index == HV_X64_MSR_TIME_REF_COUNT;
}

static unsigned int compare_states(struct th_result *_r, const uint8_t *a, size_t alen,
				   const uint8_t *b, size_t blen, bool pit_reloaded)
{
	static struct rec_list ra, rb;
	unsigned int i, bad = 0;
	size_t k;

	read_records(_r, a, alen, &ra);
	read_records(_r, b, blen, &rb);
	if (ra.n != rb.n) {
		TH_LOG("%u records, then %u", ra.n, rb.n);
		return 1;
	}
	for (i = 0; i < ra.n; i++) {
		const struct snap_state_record *x = &ra.r[i], *y = &rb.r[i];
		const char *name = vm_state__type_name(x->type);

		if (x->type != y->type || x->instance != y->instance || x->len != y->len) {
			TH_LOG("record %u: %s/%u len %u, then %s/%u len %u", i, name, x->instance,
			       x->len, vm_state__type_name(y->type), y->instance, y->len);
			bad++;
			continue;
		}
		if (x->type == VM_STATE_CLOCK)
			continue;
		for (k = 0; k < x->len; k++) {
			if (x->payload[k] == y->payload[k])
				continue;
			if (x->type == VM_STATE_PIT && pit_reloaded && is_pit_load_time(k))
				continue;
			if (x->type == VM_STATE_MSRS && k >= VM_STATE_MSRS_HEAD) {
				size_t e = VM_STATE_MSRS_HEAD + (k - VM_STATE_MSRS_HEAD) /
								    VM_STATE_MSR_SIZE *
								    VM_STATE_MSR_SIZE;

				/* Same index in both (checked at its own bytes), value bytes differ. */
				if (k >= e + 4 && is_time_msr(get_le32(x->payload + e)) &&
				    get_le32(y->payload + e) == get_le32(x->payload + e))
					continue;
				TH_LOG("vCPU %u MSRS: MSR 0x%x differs", x->instance,
				       get_le32(x->payload + e));
			} else {
				TH_LOG(
				    "%s/%u differs at payload offset 0x%zx (0x%02x, then 0x%02x)",
				    name, x->instance, k, x->payload[k], y->payload[k]);
			}
			bad++;
			break;
		}
	}
	return bad;
}

/* One line with the payload size of each of vCPU 0's records and the VM's. */
static void log_sizes(struct th_result *_r, const uint8_t *buf, size_t len)
{
	static struct rec_list l;
	char line[512];
	size_t n = 0;
	unsigned int i;

	read_records(_r, buf, len, &l);
	for (i = 0; i < l.n && n < sizeof(line) - 32; i++)
		if (l.r[i].instance == 0)
			n += snprintf(line + n, sizeof(line) - n, " %s %u",
				      vm_state__type_name(l.r[i].type), l.r[i].len);
	line[n] = '\0';
	TH_LOG("payload bytes:%s", line);
}

/* Change vCPU 0's saved RIP and fix the checksum, as a test of the comparison. */
static void corrupt_rip(struct th_result *_r, uint8_t *buf, size_t len)
{
	static struct rec_list l;
	unsigned int i;

	read_records(_r, buf, len, &l);
	for (i = 0; i < l.n; i++)
		if (l.r[i].type == VM_STATE_REGS && l.r[i].instance == 0)
			((uint8_t *)l.r[i].payload)[0x80] ^= 0x10;
	put_le64(buf + 0x18, XXH3_64bits(buf + SNAP_STATE_HDR_SIZE, len - SNAP_STATE_HDR_SIZE));
}

static void save(struct th_result *_r, struct vm *v, uint8_t *buf, size_t cap, size_t *used)
{
	struct error err = {0};
	int ret = vm_state__save(&v->kvm, &v->devs, buf, cap, used, &err);

	if (ret)
		TH_LOG("vm_state__save: %s", err.msg);
	ASSERT_EQ(ret, 0);
}

static void restore(struct th_result *_r, struct vm *v, const uint8_t *buf, size_t len)
{
	struct error err = {0};
	int ret = vm_state__restore(&v->kvm, &v->devs, VM_CLOCK_CATCH_UP, buf, len, &err);

	if (ret)
		TH_LOG("vm_state__restore: %s", err.msg);
	ASSERT_EQ(ret, 0);
}

/* The other VM gets this one's memory, region by region, as restore maps the image. */
static void copy_memory(struct th_result *_r, struct vm *dst, struct vm *src)
{
	unsigned int i;

	ASSERT_EQ(dst->kvm.mem.nr_regions, src->kvm.mem.nr_regions);
	for (i = 0; i < src->kvm.mem.nr_regions; i++) {
		struct mem_region *d = &dst->kvm.mem.regions[i], *s = &src->kvm.mem.regions[i];

		ASSERT_STREQ(d->name, s->name);
		ASSERT_EQ(d->size, s->size);
		memcpy(d->host, s->host, s->size);
	}
}

/* Two in-process VMs and three state buffers; the teardown frees them after a bail-out too. */
FIXTURE(sr)
{
	struct vm a, b;
	uint8_t *s1, *s2, *s3;
};

FIXTURE_VARIANT(sr)
{
	unsigned int nr_cpus;
};

FIXTURE_VARIANT_ADD(sr, 1_vcpu){.nr_cpus = 1};
FIXTURE_VARIANT_ADD(sr, 2_vcpus){.nr_cpus = 2};

FIXTURE_SETUP(sr)
{
	size_t cap = STATE_CAP(variant->nr_cpus);

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened read-write: no KVM here");
	self->s1 = calloc(1, cap);
	self->s2 = calloc(1, cap);
	self->s3 = calloc(1, cap);
	ASSERT_TRUE(self->s1 && self->s2 && self->s3);
}

FIXTURE_TEARDOWN(sr)
{
	vm_destroy(&self->b);
	vm_destroy(&self->a);
	free(self->s1);
	free(self->s2);
	free(self->s3);
}

TEST_F_TIMEOUT(sr, save_restore, 180)
{
	unsigned int nr_cpus = variant->nr_cpus;
	size_t cap = STATE_CAP(nr_cpus), used1 = 0, used2 = 0, used3 = 0;
	uint8_t *s1 = self->s1, *s2 = self->s2, *s3 = self->s3;
	uint64_t zero[VCPUS_MAX] = {0}, saved[VCPUS_MAX] = {0}, resumed[VCPUS_MAX] = {0};
	struct vm *a = &self->a, *b = &self->b;
	uint64_t t0, t1;
	unsigned int i;

	vm_build(_r, a, nr_cpus);
	ASSERT_EQ(kvm_cpu__reset_all(&a->kvm, NULL), 0);
	vm_start(_r, a);
	wait_progress(_r, a, zero, WARMUP_MS);
	ASSERT_EQ(kvm__pause(&a->kvm, NULL, NULL), 0);
	for (i = 0; i < nr_cpus; i++)
		saved[i] = pages_of(a, i);

	/* (a) Saving twice gives the same state. */
	t0 = now_ns();
	save(_r, a, s1, cap, &used1);
	t1 = now_ns();
	save(_r, a, s2, cap, &used2);
	TH_LOG("%u vCPU(s): %zu of %zu state bytes used, saved in %llu us", nr_cpus, used1, cap,
	       (unsigned long long)(t1 - t0) / 1000);
	log_sizes(_r, s1, used1);
	ASSERT_EQ(used1, used2);
	EXPECT_EQ(compare_states(_r, s1, used1, s2, used2, false), 0);
	/* The comparison itself sees a change in a register (RIP of vCPU 0). */
	memcpy(s3, s1, used1);
	corrupt_rip(_r, s3, used1);
	EXPECT_EQ(compare_states(_r, s1, used1, s3, used1, false), 1);

	/* (b) Restoring into the same paused VM, then saving, gives it back. */
	t0 = now_ns();
	restore(_r, a, s1, used1);
	t1 = now_ns();
	TH_LOG("restored in %llu us", (unsigned long long)(t1 - t0) / 1000);
	save(_r, a, s3, cap, &used3);
	ASSERT_EQ(used1, used3);
	EXPECT_EQ(compare_states(_r, s1, used1, s3, used3, true), 0);

	/* (c) A second VM, never run, with the first one's memory and state. */
	vm_build(_r, b, nr_cpus);
	copy_memory(_r, b, a);
	restore(_r, b, s1, used1);
	for (i = 0; i < nr_cpus; i++)
		EXPECT_EQ(pages_of(b, i), saved[i]);
	vm_start(_r, b);
	wait_progress(_r, b, saved, RUN_MS);
	for (i = 0; i < nr_cpus; i++)
		TH_LOG("vCPU %u: %llu pages at the save, %llu after running the restored VM", i,
		       (unsigned long long)saved[i], (unsigned long long)pages_of(b, i));
	ASSERT_FALSE(kvm__has_exited(&b->kvm));
	vm_destroy(b);

	/* And the first VM, restored in (b), runs on too. */
	for (i = 0; i < nr_cpus; i++)
		resumed[i] = pages_of(a, i);
	ASSERT_EQ(kvm__resume(&a->kvm, NULL), 0);
	wait_progress(_r, a, resumed, RUN_MS);
	ASSERT_FALSE(kvm__has_exited(&a->kvm));
}

/* A state with a record for a vCPU the VM lacks, or missing one, is refused before KVM is touched. */
TEST_TIMEOUT(restore_refuses_mismatch, 60)
{
	static struct vm one, two;
	size_t cap = STATE_CAP(2), used = 0;
	uint8_t *s = calloc(1, cap);
	struct error err = {0};

	/* No teardown: a bail-out leaves the VMs to the end of this test's process. */
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened read-write: no KVM here");
	ASSERT_NOT_NULL(s);
	vm_build(_r, &two, 2);
	vm_build(_r, &one, 1);
	ASSERT_EQ(kvm_cpu__reset_all(&two.kvm, NULL), 0);
	save(_r, &two, s, cap, &used);
	EXPECT_EQ(vm_state__restore(&one.kvm, &one.devs, VM_CLOCK_CATCH_UP, s, used, &err),
		  -EINVAL);
	EXPECT_NE(strstr(err.msg, "vCPU 1"), NULL);
	/* A VM with a UART needs the UART record. */
	EXPECT_EQ(vm_state__save(&two.kvm, NULL, s, cap, &used, &err), 0);
	EXPECT_EQ(vm_state__restore(&two.kvm, &two.devs, VM_CLOCK_CATCH_UP, s, used, &err),
		  -EINVAL);
	EXPECT_NE(strstr(err.msg, "UART"), NULL);
	/* Too small an area is -ENOSPC, not an overrun. */
	EXPECT_EQ(vm_state__save(&two.kvm, &two.devs, s, 4096, &used, &err), -ENOSPC);
	vm_destroy(&one);
	vm_destroy(&two);
	free(s);
}

TEST_HARNESS_MAIN
