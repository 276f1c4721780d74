// SPDX-License-Identifier: GPL-2.0
/*
 * The VM state area without KVM: the KSSTATE1 container (round trip, every
 * rejection, and a fixed-seed mutation loop that must never crash or read
 * past the area), and each record payload: encode known values, decode into
 * a zeroed struct, compare field by field; short payloads and impossible
 * values are refused; a few offsets are pinned to Documentation/state-records.md,
 * and every payload's bytes to what the codecs wrote before the field tables.
 * Every field table refuses the first value past each limit it declares.
 */
#include "../harness.h"

#include <xxhash.h>

#include "lib/le.h"
#include "snapshot/state.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/uart.h"
#include "vmm/state/field.h"
#include "vmm/state/state.h"

#define MUTATION_ITERS 20000
#define MUTATION_SEED  0x5eed5eedULL

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Recompute the checksum after a test edits the records. */
static void fix_checksum(uint8_t *buf)
{
	uint64_t used = get_le64(buf + 0x10);

	put_le64(buf + 0x18, XXH3_64bits(buf + SNAP_STATE_HDR_SIZE, used - SNAP_STATE_HDR_SIZE));
}

/* A valid area: records of lengths 0, 5, 16 and 13. Returns bytes used. */
static size_t build_area(uint8_t *buf, size_t cap)
{
	static const uint32_t lens[] = {0, 5, 16, 13};
	struct snap_state_writer w;
	struct error err = {0};
	size_t used = 0;
	unsigned int i, j;

	snap_state_init(&w, buf, cap);
	for (i = 0; i < 4; i++) {
		uint8_t *p = snap_state_add(&w, 0x100 + i, i * 3, lens[i]);

		if (!p)
			return 0;
		for (j = 0; j < lens[i]; j++)
			p[j] = (uint8_t)(0xa0 + i * 16 + j);
	}
	if (snap_state_finish(&w, &used, &err))
		return 0;
	return used;
}

TEST(container_round_trip)
{
	static const uint32_t lens[] = {0, 5, 16, 13};
	uint8_t buf[512];
	struct snap_state_reader r;
	struct snap_state_record rec;
	struct error err = {0};
	size_t used = build_area(buf, sizeof(buf));
	unsigned int i, j;

	/* 4 headers, payloads padded to 0, 8, 16, 16 */
	ASSERT_EQ(used, 0x20 + 4 * 16 + 0 + 8 + 16 + 16);
	ASSERT_EQ(memcmp(buf, "KSSTATE1", 8), 0);
	ASSERT_EQ(get_le32(buf + 8), 4);
	ASSERT_EQ(get_le64(buf + 0x10), used);
	ASSERT_EQ(snap_state_open(&r, buf, used, &err), 0);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(snap_state_next(&r, &rec, &err), 1);
		EXPECT_EQ(rec.type, 0x100 + i);
		EXPECT_EQ(rec.instance, i * 3);
		ASSERT_EQ(rec.len, lens[i]);
		for (j = 0; j < lens[i]; j++)
			EXPECT_EQ(rec.payload[j], 0xa0 + i * 16 + j);
	}
	ASSERT_EQ(snap_state_next(&r, &rec, &err), 0);
	/* A larger area than used is fine: only `used` bytes count. */
	ASSERT_EQ(snap_state_open(&r, buf, sizeof(buf), &err), 0);
}

TEST(container_empty)
{
	uint8_t buf[64];
	struct snap_state_writer w;
	struct snap_state_reader r;
	struct snap_state_record rec;
	struct error err = {0};
	size_t used = 0;

	snap_state_init(&w, buf, sizeof(buf));
	ASSERT_EQ(snap_state_finish(&w, &used, &err), 0);
	ASSERT_EQ(used, SNAP_STATE_HDR_SIZE);
	ASSERT_EQ(snap_state_open(&r, buf, used, &err), 0);
	ASSERT_EQ(snap_state_next(&r, &rec, &err), 0);
}

TEST(container_overflow)
{
	uint8_t buf[64];
	struct snap_state_writer w;
	struct error err = {0};
	size_t used = 0;

	snap_state_init(&w, buf, sizeof(buf));
	ASSERT_NOT_NULL(snap_state_add(&w, 1, 0, 16)); /* 0x20 + 32 = 64: exactly full */
	ASSERT_NULL(snap_state_add(&w, 2, 0, 0));
	ASSERT_TRUE(w.overflow);
	ASSERT_NULL(snap_state_add(&w, 3, 0, 0)); /* stays failed */
	ASSERT_EQ(snap_state_finish(&w, &used, &err), -ENOSPC);
	ASSERT_NE(strstr(err.msg, "does not fit"), NULL);

	snap_state_init(&w, buf, 16); /* not even the header */
	ASSERT_EQ(snap_state_finish(&w, &used, &err), -ENOSPC);
	snap_state_init(&w, buf, sizeof(buf));
	ASSERT_NULL(snap_state_add(&w, 1, 0, UINT32_MAX));
}

TEST(container_rejects_header)
{
	uint8_t buf[512], bad[512];
	struct snap_state_reader r;
	struct error err = {0};
	size_t used = build_area(buf, sizeof(buf));

	ASSERT_GT(used, 0);
	ASSERT_EQ(snap_state_open(&r, buf, 0, &err), -EINVAL);
	ASSERT_EQ(snap_state_open(&r, buf, SNAP_STATE_HDR_SIZE - 1, &err), -EINVAL);

	memcpy(bad, buf, used);
	bad[7] = '2';
	ASSERT_EQ(snap_state_open(&r, bad, used, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "magic"), NULL);

	/* Truncated: the area is shorter than `used`. */
	ASSERT_EQ(snap_state_open(&r, buf, used - 8, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "bytes used"), NULL);

	memcpy(bad, buf, used);
	bad[0x40] ^= 1;
	ASSERT_EQ(snap_state_open(&r, bad, used, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "checksum"), NULL);

	memcpy(bad, buf, used);
	put_le32(bad + 0x0c, 1);
	ASSERT_EQ(snap_state_open(&r, bad, used, &err), -EINVAL);

	memcpy(bad, buf, used);
	put_le64(bad + 0x10, used - 4); /* not a multiple of 8 */
	ASSERT_EQ(snap_state_open(&r, bad, used, &err), -EINVAL);
	put_le64(bad + 0x10, 0x18); /* shorter than the header */
	ASSERT_EQ(snap_state_open(&r, bad, used, &err), -EINVAL);

	memcpy(bad, buf, used);
	put_le32(bad + 0x08, 1000); /* more records than bytes for them */
	ASSERT_EQ(snap_state_open(&r, bad, used, &err), -EINVAL);
}

/* Open a (checksum-fixed) area and walk it; the first error or 0 at the end. */
static int walk(const uint8_t *buf, size_t len, struct error *err)
{
	struct snap_state_reader r;
	struct snap_state_record rec;
	int ret = snap_state_open(&r, buf, len, err);

	while (!ret && (ret = snap_state_next(&r, &rec, err)) > 0)
		ret = 0;
	return ret;
}

TEST(container_rejects_records)
{
	uint8_t buf[512], bad[512];
	struct error err = {0};
	size_t used = build_area(buf, sizeof(buf));
	const size_t rec1 = 0x20 + 16; /* second record: 5 bytes, padded to 8 */

	ASSERT_GT(used, 0);
	ASSERT_EQ(walk(buf, used, &err), 0);

	/* Overlong: the last record claims more than is left. */
	memcpy(bad, buf, used);
	put_le32(bad + used - 32 + 8, 17);
	fix_checksum(bad);
	ASSERT_EQ(walk(bad, used, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "claims"), NULL);
	put_le32(bad + used - 32 + 8, UINT32_MAX);
	fix_checksum(bad);
	ASSERT_EQ(walk(bad, used, &err), -EINVAL);

	/* Nonzero padding after the 5-byte payload. */
	memcpy(bad, buf, used);
	bad[rec1 + 16 + 6] = 1;
	fix_checksum(bad);
	ASSERT_EQ(walk(bad, used, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "padding"), NULL);

	/* Nonzero reserved record field. */
	memcpy(bad, buf, used);
	put_le32(bad + rec1 + 12, 1);
	fix_checksum(bad);
	ASSERT_EQ(walk(bad, used, &err), -EINVAL);

	/* The count says fewer records than there are: trailing bytes. */
	memcpy(bad, buf, used);
	put_le32(bad + 8, 3);
	ASSERT_EQ(walk(bad, used, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "after the last"), NULL);

	/* The count says more: the reader runs out of bytes. */
	memcpy(bad, buf, used);
	put_le32(bad + 8, 5);
	ASSERT_EQ(walk(bad, used, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "truncated"), NULL);

	/* `used` cuts the last record short (checksum made to match). */
	memcpy(bad, buf, used);
	put_le64(bad + 0x10, used - 8);
	fix_checksum(bad);
	ASSERT_EQ(walk(bad, used - 8, &err), -EINVAL);
}

/*
 * Random mutations of a valid area: bytes flipped, the length cut, header
 * fields rewritten; half the time the checksum is made to match so the
 * record parser sees the damage. Each area sits in its own exactly sized
 * allocation, so ASan catches any read past it. Every returned payload must
 * lie inside [0x20, used).
 */
TEST(container_mutation_loop)
{
	uint8_t good[512];
	size_t used = build_area(good, sizeof(good));
	uint64_t seed = MUTATION_SEED;
	unsigned int it, accepted = 0, rejected = 0;

	ASSERT_GT(used, 0);
	for (it = 0; it < MUTATION_ITERS; it++) {
		size_t len = used, k, n;
		struct snap_state_reader r;
		struct snap_state_record rec;
		struct error err = {0};
		uint8_t *buf;
		int ret, steps = 0;

		if (rng_next(&seed) % 4 == 0)
			len = rng_next(&seed) % (used + 1);
		buf = malloc(len ? len : 1);
		ASSERT_NOT_NULL(buf);
		memcpy(buf, good, len);
		n = 1 + rng_next(&seed) % 4;
		for (k = 0; k < n && len; k++) {
			size_t at = rng_next(&seed) % len;

			switch (rng_next(&seed) % 3) {
			case 0:
				buf[at] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
				break;
			case 1:
				buf[at] = (uint8_t)rng_next(&seed);
				break;
			default: /* a whole little-endian u32, as a length or count would be */
				if (at + 4 <= len)
					put_le32(buf + at, (uint32_t)rng_next(&seed));
			}
		}
		if (len >= 0x20 && (rng_next(&seed) & 1)) {
			uint64_t u = get_le64(buf + 0x10);

			if (u >= 0x20 && u <= len)
				fix_checksum(buf);
		}
		ret = snap_state_open(&r, buf, len, &err);
		while (!ret && (ret = snap_state_next(&r, &rec, &err)) > 0) {
			ASSERT_TRUE(rec.payload >= buf + SNAP_STATE_HDR_SIZE + 16);
			ASSERT_TRUE(rec.payload + rec.len <= buf + r.used);
			ASSERT_LE(r.used, len);
			ASSERT_LT(++steps, 1000);
			ret = 0;
		}
		ASSERT_TRUE(ret == 0 || ret == -EINVAL);
		if (ret)
			ASSERT_NE(err.msg[0], '\0');
		if (ret)
			rejected++;
		else
			accepted++;
		free(buf);
	}
	TH_LOG("%u mutated areas: %u accepted, %u rejected", MUTATION_ITERS, accepted, rejected);
	ASSERT_GT(rejected, MUTATION_ITERS / 2);
}

/* ---- per-vCPU payloads ---- */

TEST(regs_round_trip)
{
	struct kvm_regs a, b;
	uint8_t p[VM_STATE_REGS_SIZE];
	struct error err = {0};

	a = (struct kvm_regs){
	    .rax = 0x0101010101010101,
	    .rbx = 0x0202020202020202,
	    .rcx = 0x0303030303030303,
	    .rdx = 0x0404040404040404,
	    .rsi = 0x0505050505050505,
	    .rdi = 0x0606060606060606,
	    .rsp = 0x0707070707070707,
	    .rbp = 0x0808080808080808,
	    .r8 = 0x0909090909090909,
	    .r9 = 0x0a0a0a0a0a0a0a0a,
	    .r10 = 0x0b0b0b0b0b0b0b0b,
	    .r11 = 0x0c0c0c0c0c0c0c0c,
	    .r12 = 0x0d0d0d0d0d0d0d0d,
	    .r13 = 0x0e0e0e0e0e0e0e0e,
	    .r14 = 0x0f0f0f0f0f0f0f0f,
	    .r15 = 0x1010101010101010,
	    .rip = 0xffffffff81000123,
	    .rflags = 0x246,
	};
	cpu_state__encode_regs(&a, p);
	/* Pinned to the documented offsets. */
	EXPECT_EQ(get_le64(p + 0x00), a.rax);
	EXPECT_EQ(get_le64(p + 0x80), a.rip);
	EXPECT_EQ(get_le64(p + 0x88), a.rflags);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(cpu_state__decode_regs(p, sizeof(p), &b, &err), 0);
	EXPECT_EQ(b.rax, a.rax);
	EXPECT_EQ(b.rbx, a.rbx);
	EXPECT_EQ(b.rcx, a.rcx);
	EXPECT_EQ(b.rdx, a.rdx);
	EXPECT_EQ(b.rsi, a.rsi);
	EXPECT_EQ(b.rdi, a.rdi);
	EXPECT_EQ(b.rsp, a.rsp);
	EXPECT_EQ(b.rbp, a.rbp);
	EXPECT_EQ(b.r8, a.r8);
	EXPECT_EQ(b.r9, a.r9);
	EXPECT_EQ(b.r10, a.r10);
	EXPECT_EQ(b.r11, a.r11);
	EXPECT_EQ(b.r12, a.r12);
	EXPECT_EQ(b.r13, a.r13);
	EXPECT_EQ(b.r14, a.r14);
	EXPECT_EQ(b.r15, a.r15);
	EXPECT_EQ(b.rip, a.rip);
	EXPECT_EQ(b.rflags, a.rflags);
	ASSERT_EQ(cpu_state__decode_regs(p, sizeof(p) - 1, &b, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "REGS record"), NULL);
	ASSERT_EQ(cpu_state__decode_regs(p, 0, &b, &err), -EINVAL);
}

static void fill_seg(struct kvm_segment *s, unsigned int n)
{
	*s = (struct kvm_segment){
	    .base = 0x1000000000ULL * (n + 1) + n,
	    .limit = 0xfff00 + n,
	    .selector = (uint16_t)(0x8 * (n + 1)),
	    .type = (uint8_t)(n % 16),
	    .present = 1,
	    .dpl = (uint8_t)(n % 4),
	    .db = (uint8_t)(n & 1),
	    .s = (uint8_t)(~n & 1),
	    .l = (uint8_t)((n >> 1) & 1),
	    .g = 1,
	    .avl = (uint8_t)((n >> 2) & 1),
	    .unusable = (uint8_t)(n == 7),
	};
}

#define EXPECT_SEG_EQ(x, y)                            \
	do {                                           \
		EXPECT_EQ((x).base, (y).base);         \
		EXPECT_EQ((x).limit, (y).limit);       \
		EXPECT_EQ((x).selector, (y).selector); \
		EXPECT_EQ((x).type, (y).type);         \
		EXPECT_EQ((x).present, (y).present);   \
		EXPECT_EQ((x).dpl, (y).dpl);           \
		EXPECT_EQ((x).db, (y).db);             \
		EXPECT_EQ((x).s, (y).s);               \
		EXPECT_EQ((x).l, (y).l);               \
		EXPECT_EQ((x).g, (y).g);               \
		EXPECT_EQ((x).avl, (y).avl);           \
		EXPECT_EQ((x).unusable, (y).unusable); \
	} while (0)

static void fill_sregs(struct cpu_sregs *a)
{
	unsigned int i;

	memset(a, 0, sizeof(*a));
	fill_seg(&a->s.cs, 0);
	fill_seg(&a->s.ds, 1);
	fill_seg(&a->s.es, 2);
	fill_seg(&a->s.fs, 3);
	fill_seg(&a->s.gs, 4);
	fill_seg(&a->s.ss, 5);
	fill_seg(&a->s.tr, 6);
	fill_seg(&a->s.ldt, 7);
	a->s.gdt = (struct kvm_dtable){.base = 0x1122334455667788, .limit = 0x1f};
	a->s.idt = (struct kvm_dtable){.base = 0x8877665544332211, .limit = 0xfff};
	a->s.cr0 = 0x80050033;
	a->s.cr2 = 0xdeadbeef000;
	a->s.cr3 = 0x1234000;
	a->s.cr4 = 0x3606e0;
	a->s.cr8 = 0xf;
	a->s.efer = 0xd01;
	a->s.apic_base = 0xfee00900;
	a->s.flags = KVM_SREGS2_FLAGS_PDPTRS_VALID;
	for (i = 0; i < 4; i++)
		a->s.pdptrs[i] = 0xabc000 + i * 0x1001;
	a->interrupt_bitmap[1] = 1ULL << 5; /* vector 69 */
}

TEST(sregs_round_trip)
{
	struct cpu_sregs a, b;
	uint8_t p[VM_STATE_SREGS_SIZE], bad[VM_STATE_SREGS_SIZE];
	struct error err = {0};
	unsigned int i;

	fill_sregs(&a);
	cpu_state__encode_sregs(&a, p);
	EXPECT_EQ(get_le16(p + 0x0c), a.s.cs.selector);
	EXPECT_EQ(get_le64(p + 0xc0), a.s.gdt.base);
	EXPECT_EQ(get_le64(p + 0xf0), a.s.cr3);
	EXPECT_EQ(get_le64(p + 0x110), a.s.apic_base);
	EXPECT_EQ(get_le64(p + 0x148), a.interrupt_bitmap[1]);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(cpu_state__decode_sregs(p, sizeof(p), &b, &err), 0);
	EXPECT_SEG_EQ(b.s.cs, a.s.cs);
	EXPECT_SEG_EQ(b.s.ds, a.s.ds);
	EXPECT_SEG_EQ(b.s.es, a.s.es);
	EXPECT_SEG_EQ(b.s.fs, a.s.fs);
	EXPECT_SEG_EQ(b.s.gs, a.s.gs);
	EXPECT_SEG_EQ(b.s.ss, a.s.ss);
	EXPECT_SEG_EQ(b.s.tr, a.s.tr);
	EXPECT_SEG_EQ(b.s.ldt, a.s.ldt);
	EXPECT_EQ(b.s.gdt.base, a.s.gdt.base);
	EXPECT_EQ(b.s.gdt.limit, a.s.gdt.limit);
	EXPECT_EQ(b.s.idt.base, a.s.idt.base);
	EXPECT_EQ(b.s.idt.limit, a.s.idt.limit);
	EXPECT_EQ(b.s.cr0, a.s.cr0);
	EXPECT_EQ(b.s.cr2, a.s.cr2);
	EXPECT_EQ(b.s.cr3, a.s.cr3);
	EXPECT_EQ(b.s.cr4, a.s.cr4);
	EXPECT_EQ(b.s.cr8, a.s.cr8);
	EXPECT_EQ(b.s.efer, a.s.efer);
	EXPECT_EQ(b.s.apic_base, a.s.apic_base);
	EXPECT_EQ(b.s.flags, a.s.flags);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(b.s.pdptrs[i], a.s.pdptrs[i]);
		EXPECT_EQ(b.interrupt_bitmap[i], a.interrupt_bitmap[i]);
	}

	ASSERT_EQ(cpu_state__decode_sregs(p, sizeof(p) - 8, &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[24 * 2 + 0x0f] = 2; /* es.present */
	ASSERT_EQ(cpu_state__decode_sregs(bad, sizeof(bad), &b, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "segment present"), NULL);
	memcpy(bad, p, sizeof(p));
	bad[0x10] = 4; /* cs.dpl */
	ASSERT_EQ(cpu_state__decode_sregs(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le64(bad + 0x118, 2); /* unknown flag */
	ASSERT_EQ(cpu_state__decode_sregs(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le64(bad + 0x118, 0); /* PDPTRs present but flagged invalid */
	ASSERT_EQ(cpu_state__decode_sregs(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le64(bad + 0x140, 1); /* a second pending interrupt */
	ASSERT_EQ(cpu_state__decode_sregs(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0xc0 + 12] = 1; /* gdt reserved */
	ASSERT_EQ(cpu_state__decode_sregs(bad, sizeof(bad), &b, &err), -EINVAL);
}

TEST(fpu_round_trip)
{
	struct kvm_fpu a, b;
	uint8_t p[VM_STATE_FPU_SIZE];
	struct error err = {0};
	unsigned int i, j;

	memset(&a, 0, sizeof(a));
	for (i = 0; i < 8; i++)
		for (j = 0; j < 16; j++)
			a.fpr[i][j] = (uint8_t)(i * 16 + j);
	for (i = 0; i < 16; i++)
		for (j = 0; j < 16; j++)
			a.xmm[i][j] = (uint8_t)(0x80 + i * 7 + j);
	a.fcw = 0x37f;
	a.fsw = 0x1234;
	a.ftwx = 0xa5;
	a.last_opcode = 0x7ff;
	a.last_ip = 0x1122334455667788;
	a.last_dp = 0x8877665544332211;
	a.mxcsr = 0x1f80;
	cpu_state__encode_fpu(&a, p);
	EXPECT_EQ(get_le32(p + 0x198), a.mxcsr);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(cpu_state__decode_fpu(p, sizeof(p), &b, &err), 0);
	EXPECT_EQ(memcmp(b.fpr, a.fpr, sizeof(a.fpr)), 0);
	EXPECT_EQ(memcmp(b.xmm, a.xmm, sizeof(a.xmm)), 0);
	EXPECT_EQ(b.fcw, a.fcw);
	EXPECT_EQ(b.fsw, a.fsw);
	EXPECT_EQ(b.ftwx, a.ftwx);
	EXPECT_EQ(b.last_opcode, a.last_opcode);
	EXPECT_EQ(b.last_ip, a.last_ip);
	EXPECT_EQ(b.last_dp, a.last_dp);
	EXPECT_EQ(b.mxcsr, a.mxcsr);
	ASSERT_EQ(cpu_state__decode_fpu(p, sizeof(p) - 1, &b, &err), -EINVAL);
	p[0x85] = 1;
	ASSERT_EQ(cpu_state__decode_fpu(p, sizeof(p), &b, &err), -EINVAL);
}

TEST(xsave_round_trip)
{
	uint8_t area[4096], p[4096 + 8];
	const uint8_t *out = NULL;
	uint32_t n = 0, i;
	struct error err = {0};

	for (i = 0; i < sizeof(area); i++)
		area[i] = (uint8_t)(i * 31 + 7);
	ASSERT_EQ(cpu_state__xsave_size(4096), sizeof(p));
	cpu_state__encode_xsave(area, sizeof(area), p);
	EXPECT_EQ(get_le32(p), 4096);
	ASSERT_EQ(cpu_state__decode_xsave(p, sizeof(p), &out, &n, &err), 0);
	ASSERT_EQ(n, 4096);
	EXPECT_EQ(memcmp(out, area, n), 0);
	ASSERT_EQ(cpu_state__decode_xsave(p, sizeof(p) - 1, &out, &n, &err), -EINVAL);
	ASSERT_EQ(cpu_state__decode_xsave(p, 4, &out, &n, &err), -EINVAL);
	put_le32(p, 100); /* shorter than the legacy area and header */
	ASSERT_EQ(cpu_state__decode_xsave(p, 108, &out, &n, &err), -EINVAL);
	put_le32(p, 4096);
	put_le32(p + 4, 1);
	ASSERT_EQ(cpu_state__decode_xsave(p, sizeof(p), &out, &n, &err), -EINVAL);
}

TEST(xcrs_round_trip)
{
	struct kvm_xcrs a, b;
	uint8_t p[VM_STATE_XCRS_HEAD + KVM_MAX_XCRS * VM_STATE_XCR_SIZE];
	struct error err = {0};
	uint32_t len;

	memset(&a, 0, sizeof(a));
	a.nr_xcrs = 2;
	a.xcrs[0] = (struct kvm_xcr){.xcr = 0, .value = 0x207};
	a.xcrs[1] = (struct kvm_xcr){.xcr = 1, .value = 0x1234567890};
	len = cpu_state__xcrs_size(&a);
	ASSERT_EQ(len, 8 + 2 * 16);
	cpu_state__encode_xcrs(&a, p);
	memset(&b, 0xff, sizeof(b));
	ASSERT_EQ(cpu_state__decode_xcrs(p, len, &b, &err), 0);
	EXPECT_EQ(b.nr_xcrs, 2);
	EXPECT_EQ(b.flags, 0);
	EXPECT_EQ(b.xcrs[0].xcr, 0);
	EXPECT_EQ(b.xcrs[0].value, 0x207);
	EXPECT_EQ(b.xcrs[1].xcr, 1);
	EXPECT_EQ(b.xcrs[1].value, 0x1234567890);
	ASSERT_EQ(cpu_state__decode_xcrs(p, len - 1, &b, &err), -EINVAL);
	ASSERT_EQ(cpu_state__decode_xcrs(p, 4, &b, &err), -EINVAL);
	put_le32(p, KVM_MAX_XCRS + 1);
	ASSERT_EQ(cpu_state__decode_xcrs(p, sizeof(p), &b, &err), -EINVAL);
}

TEST(msrs_round_trip)
{
	struct kvm_msr_entry a[3] = {
	    {.index = 0x10, .data = 0x123456789abcdef0},
	    {.index = 0xc0000080, .data = 0xd01},
	    {.index = 0x6e0, .data = 0xfedcba9876543210},
	};
	struct kvm_msr_entry *b = calloc(VM_STATE_MSRS_MAX, sizeof(*b));
	uint8_t p[8 + 3 * 12];
	struct error err = {0};
	uint32_t n = 0, i;

	ASSERT_NOT_NULL(b);
	ASSERT_EQ(cpu_state__msrs_size(3), sizeof(p));
	cpu_state__encode_msrs(a, 3, p);
	/* 12-byte packed pairs: the second index is at 8 + 12. */
	EXPECT_EQ(get_le32(p + 8 + 12), 0xc0000080);
	EXPECT_EQ(get_le64(p + 8 + 12 + 4), 0xd01);
	ASSERT_EQ(cpu_state__decode_msrs(p, sizeof(p), b, &n, &err), 0);
	ASSERT_EQ(n, 3);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(b[i].index, a[i].index);
		EXPECT_EQ(b[i].reserved, 0);
		EXPECT_EQ(b[i].data, a[i].data);
	}
	ASSERT_EQ(cpu_state__decode_msrs(p, sizeof(p) - 1, b, &n, &err), -EINVAL);
	ASSERT_EQ(cpu_state__decode_msrs(p, 7, b, &n, &err), -EINVAL);
	put_le32(p + 8 + 24, 0x10); /* the TSC twice */
	ASSERT_EQ(cpu_state__decode_msrs(p, sizeof(p), b, &n, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "twice"), NULL);
	put_le32(p, VM_STATE_MSRS_MAX + 1);
	ASSERT_EQ(cpu_state__decode_msrs(p, sizeof(p), b, &n, &err), -EINVAL);
	free(b);
}

TEST(lapic_round_trip)
{
	struct kvm_lapic_state a, b;
	uint8_t p[VM_STATE_LAPIC_SIZE];
	struct error err = {0};
	unsigned int i;

	for (i = 0; i < sizeof(a.regs); i++)
		a.regs[i] = (char)(i * 13);
	cpu_state__encode_lapic(&a, p);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(cpu_state__decode_lapic(p, sizeof(p), &b, &err), 0);
	EXPECT_EQ(memcmp(a.regs, b.regs, sizeof(a.regs)), 0);
	ASSERT_EQ(cpu_state__decode_lapic(p, sizeof(p) - 1, &b, &err), -EINVAL);
}

static void fill_events(struct kvm_vcpu_events *e)
{
	memset(e, 0, sizeof(*e));
	e->exception.injected = 1;
	e->exception.nr = 14;
	e->exception.has_error_code = 1;
	e->exception.pending = 0;
	e->exception.error_code = 0x1234abcd;
	e->interrupt.injected = 1;
	e->interrupt.nr = 0x45;
	e->interrupt.soft = 0;
	e->interrupt.shadow = KVM_X86_SHADOW_INT_STI;
	e->nmi.injected = 0;
	e->nmi.pending = 1;
	e->nmi.masked = 1;
	e->sipi_vector = 0x9a;
	e->flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW |
		   KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD;
	e->smi.smm = 1;
	e->smi.pending = 0;
	e->smi.smm_inside_nmi = 1;
	e->smi.latched_init = 1;
	e->triple_fault.pending = 1;
	e->exception_has_payload = 1;
	e->exception_payload = 0xcafef00d12345678;
}

TEST(events_round_trip)
{
	struct kvm_vcpu_events a, b;
	uint8_t p[VM_STATE_EVENTS_SIZE], bad[VM_STATE_EVENTS_SIZE];
	struct error err = {0};

	fill_events(&a);
	cpu_state__encode_events(&a, p);
	EXPECT_EQ(get_le32(p + 0x04), a.exception.error_code);
	EXPECT_EQ(get_le32(p + 0x14), a.flags);
	EXPECT_EQ(get_le64(p + 0x20), a.exception_payload);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(cpu_state__decode_events(p, sizeof(p), &b, &err), 0);
	EXPECT_EQ(b.exception.injected, a.exception.injected);
	EXPECT_EQ(b.exception.nr, a.exception.nr);
	EXPECT_EQ(b.exception.has_error_code, a.exception.has_error_code);
	EXPECT_EQ(b.exception.pending, a.exception.pending);
	EXPECT_EQ(b.exception.error_code, a.exception.error_code);
	EXPECT_EQ(b.interrupt.injected, a.interrupt.injected);
	EXPECT_EQ(b.interrupt.nr, a.interrupt.nr);
	EXPECT_EQ(b.interrupt.soft, a.interrupt.soft);
	EXPECT_EQ(b.interrupt.shadow, a.interrupt.shadow);
	EXPECT_EQ(b.nmi.injected, a.nmi.injected);
	EXPECT_EQ(b.nmi.pending, a.nmi.pending);
	EXPECT_EQ(b.nmi.masked, a.nmi.masked);
	EXPECT_EQ(b.sipi_vector, a.sipi_vector);
	EXPECT_EQ(b.flags, a.flags);
	EXPECT_EQ(b.smi.smm, a.smi.smm);
	EXPECT_EQ(b.smi.pending, a.smi.pending);
	EXPECT_EQ(b.smi.smm_inside_nmi, a.smi.smm_inside_nmi);
	EXPECT_EQ(b.smi.latched_init, a.smi.latched_init);
	EXPECT_EQ(b.triple_fault.pending, a.triple_fault.pending);
	EXPECT_EQ(b.exception_has_payload, a.exception_has_payload);
	EXPECT_EQ(b.exception_payload, a.exception_payload);

	ASSERT_EQ(cpu_state__decode_events(p, sizeof(p) - 1, &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x01] = 32; /* exception vector */
	ASSERT_EQ(cpu_state__decode_events(bad, sizeof(bad), &b, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "exception.nr"), NULL);
	memcpy(bad, p, sizeof(p));
	bad[0x0b] = 4; /* shadow */
	ASSERT_EQ(cpu_state__decode_events(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le32(bad + 0x14, 0x40); /* unknown flag */
	ASSERT_EQ(cpu_state__decode_events(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x1e] = 1; /* reserved */
	ASSERT_EQ(cpu_state__decode_events(bad, sizeof(bad), &b, &err), -EINVAL);
}

TEST(mp_state_debugregs_progress_round_trip)
{
	struct kvm_mp_state ma = {.mp_state = KVM_MP_STATE_INIT_RECEIVED}, mb = {0};
	struct kvm_debugregs da, db;
	struct cpu_progress pa = {.pages = 0x123456789, .passes = 77, .ready = 1}, pb = {0};
	uint8_t m[VM_STATE_MP_STATE_SIZE], d[VM_STATE_DEBUGREGS_SIZE], g[VM_STATE_PROGRESS_SIZE];
	struct error err = {0};
	unsigned int i;

	cpu_state__encode_mp_state(&ma, m);
	ASSERT_EQ(cpu_state__decode_mp_state(m, sizeof(m), &mb, &err), 0);
	EXPECT_EQ(mb.mp_state, ma.mp_state);
	ASSERT_EQ(cpu_state__decode_mp_state(m, sizeof(m) - 1, &mb, &err), -EINVAL);
	put_le32(m, KVM_MP_STATE_STOPPED); /* s390 only */
	ASSERT_EQ(cpu_state__decode_mp_state(m, sizeof(m), &mb, &err), -EINVAL);

	memset(&da, 0, sizeof(da));
	for (i = 0; i < 4; i++)
		da.db[i] = 0xffff800000001000ULL + i;
	da.dr6 = 0xffff0ff0;
	da.dr7 = 0x400;
	cpu_state__encode_debugregs(&da, d);
	EXPECT_EQ(get_le64(d + 0x20), da.dr6);
	memset(&db, 0xff, sizeof(db));
	ASSERT_EQ(cpu_state__decode_debugregs(d, sizeof(d), &db, &err), 0);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(db.db[i], da.db[i]);
	EXPECT_EQ(db.dr6, da.dr6);
	EXPECT_EQ(db.dr7, da.dr7);
	EXPECT_EQ(db.flags, 0);
	ASSERT_EQ(cpu_state__decode_debugregs(d, sizeof(d) + 1, &db, &err), -EINVAL);
	put_le64(d + 0x30, 1);
	ASSERT_EQ(cpu_state__decode_debugregs(d, sizeof(d), &db, &err), -EINVAL);
	put_le64(d + 0x30, 0);
	put_le64(d + 0x28, 1ULL << 32);
	ASSERT_EQ(cpu_state__decode_debugregs(d, sizeof(d), &db, &err), -EINVAL);

	cpu_state__encode_progress(&pa, g);
	ASSERT_EQ(cpu_state__decode_progress(g, sizeof(g), &pb, &err), 0);
	EXPECT_EQ(pb.pages, pa.pages);
	EXPECT_EQ(pb.passes, pa.passes);
	EXPECT_EQ(pb.ready, pa.ready);
	ASSERT_EQ(cpu_state__decode_progress(g, sizeof(g) - 8, &pb, &err), -EINVAL);
	g[0x10] = 2;
	ASSERT_EQ(cpu_state__decode_progress(g, sizeof(g), &pb, &err), -EINVAL);
	g[0x10] = 1;
	g[0x17] = 1;
	ASSERT_EQ(cpu_state__decode_progress(g, sizeof(g), &pb, &err), -EINVAL);
}

/* ---- VM-wide payloads ---- */

TEST(pic_round_trip)
{
	struct kvm_pic_state a =
				 {
				     .last_irr = 0x11,
				     .irr = 0x22,
				     .imr = 0xfb,
				     .isr = 0x04,
				     .priority_add = 5,
				     .irq_base = 0x28,
				     .read_reg_select = 1,
				     .poll = 0,
				     .special_mask = 1,
				     .init_state = 3,
				     .auto_eoi = 1,
				     .rotate_on_auto_eoi = 0,
				     .special_fully_nested_mode = 1,
				     .init4 = 1,
				     .elcr = 0x0c,
				     .elcr_mask = 0xf8,
				 },
			     b;
	uint8_t p[VM_STATE_PIC_SIZE], bad[VM_STATE_PIC_SIZE];
	struct error err = {0};

	vm_state__encode_pic(&a, p);
	EXPECT_EQ(p[0x5], 0x28);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(vm_state__decode_pic(VM_STATE_PIC_SLAVE, p, sizeof(p), &b, &err), 0);
	EXPECT_EQ(b.last_irr, a.last_irr);
	EXPECT_EQ(b.irr, a.irr);
	EXPECT_EQ(b.imr, a.imr);
	EXPECT_EQ(b.isr, a.isr);
	EXPECT_EQ(b.priority_add, a.priority_add);
	EXPECT_EQ(b.irq_base, a.irq_base);
	EXPECT_EQ(b.read_reg_select, a.read_reg_select);
	EXPECT_EQ(b.poll, a.poll);
	EXPECT_EQ(b.special_mask, a.special_mask);
	EXPECT_EQ(b.init_state, a.init_state);
	EXPECT_EQ(b.auto_eoi, a.auto_eoi);
	EXPECT_EQ(b.rotate_on_auto_eoi, a.rotate_on_auto_eoi);
	EXPECT_EQ(b.special_fully_nested_mode, a.special_fully_nested_mode);
	EXPECT_EQ(b.init4, a.init4);
	EXPECT_EQ(b.elcr, a.elcr);
	EXPECT_EQ(b.elcr_mask, a.elcr_mask);

	ASSERT_EQ(vm_state__decode_pic(VM_STATE_PIC_SLAVE, p, sizeof(p) - 1, &b, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "PIC_SLAVE"), NULL);
	memcpy(bad, p, sizeof(p));
	bad[0x9] = 4; /* init_state */
	ASSERT_EQ(vm_state__decode_pic(VM_STATE_PIC_MASTER, bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x5] = 0x29; /* irq_base */
	ASSERT_EQ(vm_state__decode_pic(VM_STATE_PIC_MASTER, bad, sizeof(bad), &b, &err), -EINVAL);
}

TEST(ioapic_round_trip)
{
	struct kvm_ioapic_state a, b;
	uint8_t p[VM_STATE_IOAPIC_SIZE], bad[VM_STATE_IOAPIC_SIZE];
	struct error err = {0};
	unsigned int i;

	memset(&a, 0, sizeof(a));
	a.base_address = 0xfec00000;
	a.ioregsel = 0x13;
	a.id = 2;
	a.irr = 0x00a5a5;
	for (i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		a.redirtbl[i].bits = ((uint64_t)i << 56) | (1ULL << 16) | (0x20 + i);
	a.redirtbl[3].fields.remote_irr = 1;
	a.redirtbl[3].fields.trig_mode = 1;
	vm_state__encode_ioapic(&a, p);
	EXPECT_EQ(get_le64(p + 0x18), a.redirtbl[0].bits);
	/* The architectural layout: remote IRR bit 14, trigger bit 15, destination 63:56. */
	EXPECT_EQ(get_le64(p + 0x18 + 3 * 8),
		  (3ULL << 56) | (1ULL << 16) | (1 << 15) | (1 << 14) | 0x23);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(vm_state__decode_ioapic(p, sizeof(p), &b, &err), 0);
	EXPECT_EQ(b.base_address, a.base_address);
	EXPECT_EQ(b.ioregsel, a.ioregsel);
	EXPECT_EQ(b.id, a.id);
	EXPECT_EQ(b.irr, a.irr);
	for (i = 0; i < KVM_IOAPIC_NUM_PINS; i++) {
		EXPECT_EQ(b.redirtbl[i].bits, a.redirtbl[i].bits);
		EXPECT_EQ(b.redirtbl[i].fields.vector, a.redirtbl[i].fields.vector);
		EXPECT_EQ((unsigned int)b.redirtbl[i].fields.mask,
			  (unsigned int)a.redirtbl[i].fields.mask);
		EXPECT_EQ((unsigned int)b.redirtbl[i].fields.remote_irr,
			  (unsigned int)a.redirtbl[i].fields.remote_irr);
		EXPECT_EQ(b.redirtbl[i].fields.dest_id, a.redirtbl[i].fields.dest_id);
	}
	ASSERT_EQ(vm_state__decode_ioapic(p, sizeof(p) - 8, &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le32(bad + 0x10, 1u << 24); /* a 25th pin */
	ASSERT_EQ(vm_state__decode_ioapic(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le32(bad + 0x0c, 16); /* 4-bit id */
	ASSERT_EQ(vm_state__decode_ioapic(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le32(bad + 0x14, 1); /* reserved */
	ASSERT_EQ(vm_state__decode_ioapic(bad, sizeof(bad), &b, &err), -EINVAL);
}

TEST(pit_round_trip)
{
	struct kvm_pit_state2 a, b;
	uint8_t p[VM_STATE_PIT_SIZE], bad[VM_STATE_PIT_SIZE];
	struct error err = {0};
	unsigned int i;

	memset(&a, 0, sizeof(a));
	for (i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *c = &a.channels[i];

		c->count = i == 0 ? 0x10000 : 0x1234 + i;
		c->latched_count = (uint16_t)(0x4321 + i);
		c->count_latched = (uint8_t)(i + 1);
		c->status_latched = i & 1;
		c->status = (uint8_t)(0x30 + i);
		c->read_state = (uint8_t)(i + 1);
		c->write_state = (uint8_t)(4 - i);
		c->write_latch = (uint8_t)(0x9c + i);
		c->rw_mode = 3;
		c->mode = i == 2 ? 0xff : (uint8_t)(i + 2);
		c->bcd = i == 1;
		c->gate = i != 2;
		c->count_load_time = -1000000007LL * (i + 1);
	}
	a.flags = KVM_PIT_FLAGS_HPET_LEGACY;
	vm_state__encode_pit(&a, p);
	EXPECT_EQ(get_le32(p + 0x18), a.channels[1].count);
	EXPECT_EQ(get_le32(p + 0x48), a.flags);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(vm_state__decode_pit(p, sizeof(p), &b, &err), 0);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(b.channels[i].count, a.channels[i].count);
		EXPECT_EQ(b.channels[i].latched_count, a.channels[i].latched_count);
		EXPECT_EQ(b.channels[i].count_latched, a.channels[i].count_latched);
		EXPECT_EQ(b.channels[i].status_latched, a.channels[i].status_latched);
		EXPECT_EQ(b.channels[i].status, a.channels[i].status);
		EXPECT_EQ(b.channels[i].read_state, a.channels[i].read_state);
		EXPECT_EQ(b.channels[i].write_state, a.channels[i].write_state);
		EXPECT_EQ(b.channels[i].write_latch, a.channels[i].write_latch);
		EXPECT_EQ(b.channels[i].rw_mode, a.channels[i].rw_mode);
		EXPECT_EQ(b.channels[i].mode, a.channels[i].mode);
		EXPECT_EQ(b.channels[i].bcd, a.channels[i].bcd);
		EXPECT_EQ(b.channels[i].gate, a.channels[i].gate);
		EXPECT_EQ(b.channels[i].count_load_time, a.channels[i].count_load_time);
	}
	EXPECT_EQ(b.flags, a.flags);

	ASSERT_EQ(vm_state__decode_pit(p, sizeof(p) - 1, &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le32(bad, 0x10001); /* count */
	ASSERT_EQ(vm_state__decode_pit(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x18 + 0x0d] = 8; /* channel 1 mode */
	ASSERT_EQ(vm_state__decode_pit(bad, sizeof(bad), &b, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "mode"), NULL);
	memcpy(bad, p, sizeof(p));
	bad[0x09] = 5; /* read_state */
	ASSERT_EQ(vm_state__decode_pit(bad, sizeof(bad), &b, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	put_le32(bad + 0x48, 4); /* unknown flag */
	ASSERT_EQ(vm_state__decode_pit(bad, sizeof(bad), &b, &err), -EINVAL);
}

TEST(clock_round_trip)
{
	struct vm_clock a, b;
	uint8_t p[VM_STATE_CLOCK_SIZE];
	struct error err = {0};

	memset(&a, 0, sizeof(a));
	a.data.clock = 0x0123456789abcdef;
	a.data.flags = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
	a.data.realtime = 0x1111222233334444;
	a.data.host_tsc = 0x5555666677778888;
	a.tsc_khz = 2999999;
	vm_state__encode_clock(&a, p);
	EXPECT_EQ(get_le32(p + 0x0c), a.tsc_khz);
	memset(&b, 0, sizeof(b));
	ASSERT_EQ(vm_state__decode_clock(p, sizeof(p), &b, &err), 0);
	EXPECT_EQ(b.data.clock, a.data.clock);
	EXPECT_EQ(b.data.flags, a.data.flags);
	EXPECT_EQ(b.data.realtime, a.data.realtime);
	EXPECT_EQ(b.data.host_tsc, a.data.host_tsc);
	EXPECT_EQ(b.tsc_khz, a.tsc_khz);
	ASSERT_EQ(vm_state__decode_clock(p, sizeof(p) - 1, &b, &err), -EINVAL);
	put_le32(p + 8, 1); /* not a KVM_CLOCK_* flag */
	ASSERT_EQ(vm_state__decode_clock(p, sizeof(p), &b, &err), -EINVAL);
}

/* ---- devices ---- */

TEST(uart_round_trip)
{
	struct uart a, b;
	uint8_t p[UART_STATE_SIZE], bad[UART_STATE_SIZE];
	struct error err = {0};
	unsigned int i;

	/* No VM: the models run without KVM. */
	ASSERT_EQ(uart__init(&a, NULL, 0x3f8, 4), 0);
	ASSERT_EQ(uart__init(&b, NULL, 0x3f8, 4), 0);
	a.r = (struct uart_regs){
	    .ier = 0x03,
	    .iir = 0xc4,
	    .fcr = 0xc9,
	    .lcr = 0x1b,
	    .mcr = 0x1b,
	    .lsr = 0x61,
	    .msr = 0xb0,
	    .scr = 0x5a,
	    .dll = 0x01,
	    .dlm = 0x02,
	    .thri_pending = 1,
	    .rx_count = 3,
	    .rx_head = 14,
	    .irq_level = 1,
	};
	for (i = 0; i < UART_FIFO_SIZE; i++)
		a.r.rx_fifo[i] = (uint8_t)('a' + i);
	uart__save(&a, p);
	EXPECT_EQ(p[0x0b], 3);
	EXPECT_EQ(p[0x10], 'a');
	ASSERT_EQ(uart__check_state(p, sizeof(p), &err), 0);
	ASSERT_EQ(uart__restore(&b, p, sizeof(p), &err), 0);
	EXPECT_EQ(b.r.ier, a.r.ier);
	EXPECT_EQ(b.r.iir, a.r.iir);
	EXPECT_EQ(b.r.fcr, a.r.fcr);
	EXPECT_EQ(b.r.lcr, a.r.lcr);
	EXPECT_EQ(b.r.mcr, a.r.mcr);
	EXPECT_EQ(b.r.lsr, a.r.lsr);
	EXPECT_EQ(b.r.msr, a.r.msr);
	EXPECT_EQ(b.r.scr, a.r.scr);
	EXPECT_EQ(b.r.dll, a.r.dll);
	EXPECT_EQ(b.r.dlm, a.r.dlm);
	EXPECT_EQ(b.r.thri_pending, a.r.thri_pending);
	EXPECT_EQ(b.r.rx_count, a.r.rx_count);
	EXPECT_EQ(b.r.rx_head, a.r.rx_head);
	EXPECT_EQ(b.r.irq_level, a.r.irq_level);
	EXPECT_EQ(memcmp(b.r.rx_fifo, a.r.rx_fifo, UART_FIFO_SIZE), 0);
	/* The restored FIFO is read from its head, wrapping around. */
	EXPECT_EQ(uart__read(&b, 0), 'a' + 14);
	EXPECT_EQ(uart__read(&b, 0), 'a' + 15);
	EXPECT_EQ(uart__read(&b, 0), 'a');

	ASSERT_EQ(uart__check_state(p, sizeof(p) - 1, &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x0b] = UART_FIFO_SIZE + 1; /* rx_count */
	ASSERT_EQ(uart__restore(&b, bad, sizeof(bad), &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "rx_count"), NULL);
	memcpy(bad, p, sizeof(p));
	bad[0x0c] = UART_FIFO_SIZE; /* rx_head */
	ASSERT_EQ(uart__check_state(bad, sizeof(bad), &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x01] = 0xc3; /* not an IIR interrupt id */
	ASSERT_EQ(uart__check_state(bad, sizeof(bad), &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x0e] = 1; /* reserved */
	ASSERT_EQ(uart__check_state(bad, sizeof(bad), &err), -EINVAL);
}

/*
 * The CMOS RTC: what the guest wrote (register B binary and 12-hour, an
 * alarm, NVRAM, the index) comes back through the record; the bytes the
 * RTC never stores, flags and reserved bytes are refused.
 */
TEST(rtc_round_trip)
{
	struct rtc a, b;
	uint8_t p[RTC_STATE_SIZE], bad[RTC_STATE_SIZE];
	struct error err = {0};
	unsigned int i;

	ASSERT_EQ(rtc__init(&a, NULL, 0x70), 0);
	ASSERT_EQ(rtc__init(&b, NULL, 0x70), 0);
	rtc__write_at(&a, 0x0b, 0x04); /* binary, 12-hour */
	rtc__write_at(&a, 0x0a, 0x2f);
	rtc__write_at(&a, 0x01, 0x30); /* seconds alarm */
	for (i = 0x0e; i < RTC_CMOS_SIZE; i++)
		if (i != 0x32)
			rtc__write_at(&a, i, (uint8_t)(i * 7));
	a.index = 0x3c;
	rtc__save(&a, p);
	EXPECT_EQ(p[0x00], 0x3c);
	EXPECT_EQ(get_le32(p + 0x04), 0);
	EXPECT_EQ(p[0x08 + 0x0b], 0x04);
	EXPECT_EQ(p[0x08 + 0x40], (uint8_t)(0x40 * 7));
	ASSERT_EQ(rtc__check_state(p, sizeof(p), &err), 0);
	ASSERT_EQ(rtc__restore(&b, p, sizeof(p), &err), 0);
	EXPECT_EQ(b.index, 0x3c);
	EXPECT_EQ(memcmp(b.cmos, a.cmos, RTC_CMOS_SIZE), 0);
	/* The restored register B formats the time: 18:07 is 6 PM, binary. */
	EXPECT_EQ(rtc__read_at(&b, 0x04, 1796148429LL), 0x86);
	EXPECT_EQ(rtc__read_at(&b, 0x01, 0), 0x30);

	/* Truncated, too long. */
	ASSERT_EQ(rtc__check_state(p, sizeof(p) - 1, &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "RTC record"), NULL);
	ASSERT_EQ(rtc__check_state(p, sizeof(p) + 1, &err), -EINVAL);
	/* Unknown flags. */
	memcpy(bad, p, sizeof(p));
	put_le32(bad + 0x04, 1);
	ASSERT_EQ(rtc__restore(&b, bad, sizeof(bad), &err), -EINVAL);
	ASSERT_NE(strstr(err.msg, "flags"), NULL);
	memcpy(bad, p, sizeof(p));
	bad[0x00] = 0x80; /* index: bit 7 is the NMI mask, never kept */
	ASSERT_EQ(rtc__check_state(bad, sizeof(bad), &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x02] = 1; /* reserved */
	ASSERT_EQ(rtc__check_state(bad, sizeof(bad), &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x08 + 0x04] = 0x12; /* hours: read from the host, never stored */
	ASSERT_EQ(rtc__check_state(bad, sizeof(bad), &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x08 + 0x0a] |= 0x80; /* UIP */
	ASSERT_EQ(rtc__check_state(bad, sizeof(bad), &err), -EINVAL);
	memcpy(bad, p, sizeof(p));
	bad[0x08 + 0x0d] = 0; /* register D */
	ASSERT_EQ(rtc__check_state(bad, sizeof(bad), &err), -EINVAL);
	/* A refused record leaves the RTC as it was. */
	EXPECT_EQ(b.index, 0x3c);
}

/* n bytes of a pattern that gives every field its own nonzero value. */
static void pattern(void *p, size_t n, uint8_t seed)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i * 0x9d + (i >> 8));
}

#define HASH_PAYLOAD(h, encode, var, size)                   \
	do {                                                 \
		uint8_t _p[size];                            \
		pattern(&var, sizeof(var), (uint8_t)(h)[0]); \
		encode(&var, _p);                            \
		(h)[++(h)[0]] = XXH3_64bits(_p, size);       \
	} while (0)

/* XXH3 of every fixed-size payload encoded from patterned structs; h[0] is the count. */
static void hash_payloads(uint64_t *h)
{
	struct kvm_regs r;
	struct cpu_sregs s;
	struct kvm_fpu f;
	struct kvm_lapic_state l;
	struct kvm_vcpu_events e;
	struct kvm_mp_state m;
	struct kvm_debugregs d;
	struct cpu_progress g;
	struct kvm_pic_state pic;
	struct kvm_ioapic_state io;
	struct kvm_pit_state2 pit;
	struct vm_clock c;

	HASH_PAYLOAD(h, cpu_state__encode_regs, r, VM_STATE_REGS_SIZE);
	HASH_PAYLOAD(h, cpu_state__encode_sregs, s, VM_STATE_SREGS_SIZE);
	HASH_PAYLOAD(h, cpu_state__encode_fpu, f, VM_STATE_FPU_SIZE);
	HASH_PAYLOAD(h, cpu_state__encode_lapic, l, VM_STATE_LAPIC_SIZE);
	HASH_PAYLOAD(h, cpu_state__encode_events, e, VM_STATE_EVENTS_SIZE);
	HASH_PAYLOAD(h, cpu_state__encode_mp_state, m, VM_STATE_MP_STATE_SIZE);
	HASH_PAYLOAD(h, cpu_state__encode_debugregs, d, VM_STATE_DEBUGREGS_SIZE);
	HASH_PAYLOAD(h, cpu_state__encode_progress, g, VM_STATE_PROGRESS_SIZE);
	HASH_PAYLOAD(h, vm_state__encode_pic, pic, VM_STATE_PIC_SIZE);
	HASH_PAYLOAD(h, vm_state__encode_ioapic, io, VM_STATE_IOAPIC_SIZE);
	HASH_PAYLOAD(h, vm_state__encode_pit, pit, VM_STATE_PIT_SIZE);
	HASH_PAYLOAD(h, vm_state__encode_clock, c, VM_STATE_CLOCK_SIZE);
}

/* The same for the variable-size payloads and the UART. */
static void hash_variable_payloads(uint64_t *h)
{
	static struct kvm_msr_entry msrs[5];
	static uint8_t area[600], p[VM_STATE_XSAVE_HEAD + sizeof(area)];
	struct kvm_xcrs x;
	struct uart u;

	pattern(&x, sizeof(x), 1);
	x.nr_xcrs = 3;
	cpu_state__encode_xcrs(&x, p);
	h[++h[0]] = XXH3_64bits(p, cpu_state__xcrs_size(&x));
	pattern(msrs, sizeof(msrs), 2);
	cpu_state__encode_msrs(msrs, 5, p);
	h[++h[0]] = XXH3_64bits(p, cpu_state__msrs_size(5));
	pattern(area, sizeof(area), 3);
	cpu_state__encode_xsave(area, sizeof(area), p);
	h[++h[0]] = XXH3_64bits(p, cpu_state__xsave_size(sizeof(area)));
	uart__init(&u, NULL, 0x3f8, 4);
	pattern(&u.r, sizeof(u.r), 4);
	uart__save(&u, p);
	h[++h[0]] = XXH3_64bits(p, UART_STATE_SIZE);
}

/*
 * The on-disk format must not change: images already written depend on it.
 * These hashes are of the payloads as the codecs wrote them before the field
 * tables (commit 9e2f7b6^), for the same patterned structs.
 */
TEST(payload_bytes_unchanged)
{
	static const uint64_t want[] = {
	    0,			   /* got[0] is the count */
	    0x2178022bc20a0925ULL, /* REGS */
	    0xc1905046d84de6aaULL, /* SREGS */
	    0x3ebd98afd8ebd2a4ULL, /* FPU */
	    0x1d5bfd6666b9d9c9ULL, /* LAPIC */
	    0x47fe998868ae2af8ULL, /* EVENTS */
	    0x132b6d53bbb762a6ULL, /* MP_STATE */
	    0x34140f8c524c2cffULL, /* DEBUGREGS */
	    0xa2ac9d22bf3e46f5ULL, /* PROGRESS */
	    0x2749846f9c294855ULL, /* PIC */
	    0x68095c7e745fa468ULL, /* IOAPIC */
	    0x00afab7291090ad1ULL, /* PIT */
	    0x1728a6c958436d72ULL, /* CLOCK */
	    0x34820ed2ae450124ULL, /* XCRS */
	    0xdf2562d14171d2fcULL, /* MSRS */
	    0x6aca1840189845a7ULL, /* XSAVE */
	    0x0ba88beb8b0202bcULL, /* UART */
	};
	uint64_t got[32] = {0};
	unsigned int i;

	hash_payloads(got);
	hash_variable_payloads(got);
	ASSERT_EQ(got[0], sizeof(want) / sizeof(want[0]) - 1);
	for (i = 1; i <= got[0]; i++)
		if (got[i] != want[i]) {
			TH_LOG("payload %u: 0x%016llx", i, (unsigned long long)got[i]);
			_r->failed = 1;
		}
}

static void put_le_n(uint8_t *p, unsigned int width, uint64_t v)
{
	while (width--) {
		*p++ = (uint8_t)v;
		v >>= 8;
	}
}

/* The first value that field f refuses, in *v; false if it takes any value. */
static bool bad_value(const struct state_field *f, uint64_t *v)
{
	uint64_t all = f->width < 8 ? (1ull << (8 * f->width)) - 1 : UINT64_MAX;
	uint64_t invalid = ~f->bits & all;

	if (f->kind == SF_RESERVED)
		*v = 1ull << (8 * (f->width - 1)); /* the last byte: the check covers them all */
	else if (invalid)
		*v = invalid & -invalid; /* the lowest invalid bit */
	else if (f->max < all)
		*v = f->max + 1;
	else
		return false;
	return true;
}

/*
 * Every field that has a limit, in the first and the last element of each
 * repeated part: its first invalid value is refused, with its name in the
 * message. p is t->size zero bytes, which every table accepts.
 */
static unsigned int refuses(uint32_t type, const struct state_table *t, uint8_t *p)
{
	const struct state_field *f;
	unsigned int e, bad = 0;
	struct error err;
	uint64_t v;

	for (f = t->f; f < t->f + t->n; f++) {
		for (e = 0; e<f->count; e += f->count> 1 ? f->count - 1 : 1) {
			uint8_t *q = p + f->off + e * f->width;

			if (f->kind == SF_TABLE) {
				bad += refuses(type, f->sub, q);
				continue;
			}
			if (f->kind == SF_BYTES || !bad_value(f, &v))
				continue;
			put_le_n(q, f->width, v);
			if (state_check(type, t, p, &err) != -EINVAL || !strstr(err.msg, f->name)) {
				TH_LOG("%s: %s = 0x%llx is not refused", vm_state__type_name(type),
				       f->name, (unsigned long long)v);
				bad++;
			}
			put_le_n(q, f->width, 0);
		}
	}
	return bad;
}

TEST(tables_refuse_what_they_limit)
{
	static uint8_t p[VM_STATE_LAPIC_SIZE];
	const struct vm_state_layout *l;
	struct error err;
	unsigned int i, n, bad = 0;

	l = vm_state__layouts(&n);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(state_check(l[i].type, l[i].fixed, p, &err), 0);
		bad += refuses(l[i].type, l[i].fixed, p);
		if (l[i].entry)
			bad += refuses(l[i].type, l[i].entry, p);
	}
	EXPECT_EQ(bad, 0);
}

TEST(type_names)
{
	EXPECT_STREQ(vm_state__type_name(VM_STATE_REGS), "REGS");
	EXPECT_STREQ(vm_state__type_name(VM_STATE_PIT), "PIT");
	EXPECT_STREQ(vm_state__type_name(VM_STATE_UART), "UART");
	EXPECT_STREQ(vm_state__type_name(VM_STATE_RTC), "RTC");
	EXPECT_STREQ(vm_state__type_name(0x9999), "?");
	/* Grouped: vCPU 0x01xx, VM 0x02xx, devices 0x03xx. */
	EXPECT_EQ(VM_STATE_PROGRESS >> 8, 0x01);
	EXPECT_EQ(VM_STATE_CLOCK >> 8, 0x02);
	EXPECT_EQ(VM_STATE_UART >> 8, 0x03);
	EXPECT_EQ(VM_STATE_RTC >> 8, 0x03);
}

TEST_HARNESS_MAIN
