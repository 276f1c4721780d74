/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The contract between kvmsnap and its built-in test guests. This header is
 * included both by the VMM and by the freestanding guests, so it uses only
 * fixed-width types and no libc.
 *
 * Entry: every vCPU starts at the ELF entry in 64-bit mode at CPL0, with the
 * host-built identity map of all RAM and of the 4 GiB below (2 MiB pages,
 * U/S and R/W set at every level), RDI = BOOT_INFO_GPA and RSI = the vCPU
 * index. Interrupts are off. The guest must set its own GDT, TSS, IDT and
 * stack, then drop to ring 3: code at CPL0 is emulated on some hosts and runs
 * about a thousand times slower than ring 3.
 *
 * Ring 3 talks to the VMM only through the message port, an unbacked MMIO
 * page: port I/O from ring 3 is not reliable on every host.
 */
#ifndef KVMSNAP_GUEST_ABI_H
#define KVMSNAP_GUEST_ABI_H

#include <stdint.h>

#define KVMSNAP_BOOTINFO_MAGIC	 0x4f4f42534e534b56ULL /* "VKSNSBOO" */
#define KVMSNAP_BOOTINFO_VERSION 1

/* Parameters of the dirtier (struct kvmsnap_bootinfo.params[]). */
#define DIRTIER_P_WS	  0 /* working set in bytes, split between the vCPUs */
#define DIRTIER_P_RATE	  1 /* pages per millisecond for the whole VM, 0 = unlimited */
#define DIRTIER_P_PATTERN 2 /* enum dirtier_pattern */
#define DIRTIER_P_PASSES  3 /* passes before exiting with status 0, 0 = forever */
#define DIRTIER_P_SEED	  4 /* seed of the random and hot patterns */
enum dirtier_pattern { DIRTIER_SEQ = 0, DIRTIER_RANDOM = 1, DIRTIER_HOT = 2 };

/* Parameters of hello. */
#define HELLO_P_CODE 0 /* value written to the exit register */

/* Parameters of pagewriter. */
#define PAGEWRITER_P_MAILBOX 0 /* GPA of struct pagewriter_mailbox, 0 = free_start */

#define KVMSNAP_MAX_PARAMS 8

/* Little-endian, at BOOT_INFO_GPA. Offsets are part of the ABI. */
struct kvmsnap_bootinfo {
	uint64_t magic;	      /* 0x00 KVMSNAP_BOOTINFO_MAGIC */
	uint32_t version;     /* 0x08 */
	uint32_t nr_cpus;     /* 0x0c */
	uint64_t ram_size;    /* 0x10 bytes of pc.ram */
	uint64_t low_ram_end; /* 0x18 end of RAM below 4 GiB */
	uint64_t free_start;  /* 0x20 first GPA above the guest image, 2 MiB aligned */
	uint64_t free_end;    /* 0x28 end of the free RAM usable from free_start */
	uint64_t tsc_khz;     /* 0x30 TSC frequency, for pacing */
	uint64_t vga_text;    /* 0x38 GPA of the 80x25 text buffer */
	uint64_t msgport;     /* 0x40 GPA of the message port */
	uint64_t params[KVMSNAP_MAX_PARAMS]; /* 0x48 guest-specific, see above */
	char cmdline[256];		     /* 0x88 the raw NAME:k=v,... string */
};

/*
 * Message port registers: 8 bytes apart, written with 8-byte stores. The
 * vCPU that writes is known to the VMM, so per-vCPU registers need no index.
 */
#define MSGPORT_PUTC	   0x00 /* W: low byte goes to the serial sink */
#define MSGPORT_EXIT	   0x08 /* W: v ends the VM with status (v << 1) | 1, as debug-exit */
#define MSGPORT_PROGRESS   0x10 /* W: this vCPU's total of pages written */
#define MSGPORT_PASS	   0x18 /* W: this vCPU's completed passes */
#define MSGPORT_FAIL	   0x20 /* W: self-check failed at this GPA; the VM ends with status 3 */
#define MSGPORT_PUTS	   0x28 /* W: GPA of a NUL-terminated string (< 256 bytes) for the serial sink */
#define MSGPORT_FAULT	   0x30			 /* W: GPA of a struct kvmsnap_fault; the VM ends */
#define MSGPORT_READY	   0x38			 /* W: this vCPU reached ring 3 */
#define MSGPORT_ID	   0x00			 /* R: KVMSNAP_MSGPORT_ID */
#define MSGPORT_CPU	   0x08			 /* R: index of the reading vCPU */
#define KVMSNAP_MSGPORT_ID 0x54524f50474d534bULL /* "KSMGPORT" */

/*
 * The dirtier built as a Multiboot kernel (tools/guests/multiboot/): where no
 * message port answers (QEMU), the runtime's register writes land in this
 * page of its image instead, so a host can read PROGRESS and PASS there.
 */
#define DIRTIER_MB_SCRATCH_GPA 0x101000ULL

/* What a CPL0 exception handler reports through MSGPORT_FAULT. */
struct kvmsnap_fault {
	uint64_t vector;
	uint64_t error_code;
	uint64_t rip;
	uint64_t cs;
	uint64_t rflags;
	uint64_t rsp;
	uint64_t cr2;
};

/*
 * The stamp the dirtier writes at the start of each page it dirties. check
 * lets the guest (and a host reading a snapshot) tell a real stamp from noise.
 */
#define DIRTIER_STAMP_MAGIC 0x504d415453524944ULL /* "DIRSTAMP" */
struct dirtier_stamp {
	uint64_t magic;
	uint64_t pass;	/* pass in which the page was last written, from 1 */
	uint64_t page;	/* page index within the working set */
	uint64_t check; /* dirtier_stamp_check(pass, page) */
};

static inline uint64_t dirtier_stamp_check(uint64_t pass, uint64_t page)
{
	uint64_t x = pass * 0x9e3779b97f4a7c15ULL ^ (page + 0x632be59bd9b4e019ULL);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x;
}

/*
 * The pagewriter's mailbox, one page of guest RAM that the host reads and
 * writes directly (no exits). A round: the host fills nr and gpa[], then
 * stores the round number (never 0, never the previous one) in go; vCPU 0
 * stores the round number as 8 bytes at each gpa[i] in order, then sets
 * done = go. Nothing else in guest memory is written in a round but the
 * mailbox itself, vCPU 0's stack and the CPU's accessed/dirty bits.
 */
#define PAGEWRITER_READY    0x5944414552574750ULL /* "PGWREADY" */
#define PAGEWRITER_MAX_GPAS 508
struct pagewriter_mailbox {
	uint64_t ready; /* 0x00 guest: PAGEWRITER_READY once it waits for rounds */
	uint64_t go;	/* 0x08 host: the round to run */
	uint64_t done;	/* 0x10 guest: the last round finished */
	uint64_t nr;	/* 0x18 host: entries of gpa[] this round, <= PAGEWRITER_MAX_GPAS */
	uint64_t gpa[PAGEWRITER_MAX_GPAS]; /* 0x20 host: 8-byte aligned, RAM or device memory */
};
_Static_assert(sizeof(struct pagewriter_mailbox) == 4096, "one page");

#endif
