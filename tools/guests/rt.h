/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ring-3 runtime of the built-in guests. crt0.S enters every vCPU at
 * rt_entry() in ring 3, which calls the guest's guest_main(). Everything
 * here runs at CPL3: the VMM is reached only through the message port.
 *
 * The first block is shared with crt0.S, so it holds only #defines.
 */
#ifndef KVMSNAP_GUEST_RT_H
#define KVMSNAP_GUEST_RT_H

/* Exit codes of the runtime itself (the VM ends with status (code << 1) | 1). */
#define RT_EXIT_MAIN_RETURNED 0x70 /* guest_main() returned */
#define RT_EXIT_TOO_MANY_CPUS 0x71 /* vCPU index >= RT_MAX_CPUS */
#define RT_EXIT_BAD_BOOTINFO  0x72 /* wrong boot info magic or version */
#define RT_EXIT_NO_TSC	      0x73 /* pacing asked for but tsc_khz is 0 */
#define RT_EXIT_BAD_PARAMS    0x74 /* a guest parameter makes no sense */

#define RT_MAX_CPUS	64
#define RT_USTACK_SHIFT 14 /* 16 KiB ring-3 stack per vCPU */
#define RT_USTACK_SIZE	(1 << RT_USTACK_SHIFT)

/*
 * Offsets that crt0.S needs from guest-abi.h, which it cannot include (C
 * types). rt.c checks each against the real structure.
 */
#define RT_BI_MSGPORT	    0x40 /* struct kvmsnap_bootinfo.msgport */
#define RT_FAULT_VECTOR	    0x00 /* struct kvmsnap_fault fields */
#define RT_FAULT_ERROR_CODE 0x08
#define RT_FAULT_RIP	    0x10
#define RT_FAULT_CS	    0x18
#define RT_FAULT_RFLAGS	    0x20
#define RT_FAULT_RSP	    0x28
#define RT_FAULT_CR2	    0x30
#define RT_FAULT_SIZE	    0x38
#define RT_MSGPORT_EXIT	    0x08 /* MSGPORT_EXIT */
#define RT_MSGPORT_PUTS	    0x28 /* MSGPORT_PUTS */
#define RT_MSGPORT_FAULT    0x30 /* MSGPORT_FAULT */

#ifndef __ASSEMBLER__

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "guest-abi.h"

#define RT_PAGE_SIZE 4096UL
#define RT_PUTS_MAX  256 /* MSGPORT_PUTS strings, NUL included */

#define VGA_COLS	80
#define VGA_ROWS	25
#define VGA_ATTR_NORMAL 0x07 /* light grey on black */
#define VGA_ATTR_TITLE	0x1f /* white on blue */

#define __noreturn     __attribute__((noreturn))
#define __printf(a, b) __attribute__((format(printf, a, b)))

/* Set by crt0.S before it drops to ring 3. */
extern const struct kvmsnap_bootinfo *rt_bootinfo;
extern uint64_t rt_msgport;

/* Each built-in guest defines this; it must not return. */
void guest_main(unsigned int cpu, const struct kvmsnap_bootinfo *bi);
__noreturn void rt_entry(unsigned int cpu, const struct kvmsnap_bootinfo *bi);

/* Message port registers take 8-byte stores; each access is one VM exit. */
static inline void rt_msg_write(unsigned int reg, uint64_t val)
{
	*(volatile uint64_t *)(uintptr_t)(rt_msgport + reg) = val;
}

static inline uint64_t rt_msg_read(unsigned int reg)
{
	return *(volatile uint64_t *)(uintptr_t)(rt_msgport + reg);
}

static inline void rt_pause(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline uint64_t rt_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* xorshift64: state must not be 0. */
static inline uint64_t rt_xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/* A uniform value in [0, n) for n < 2^32, without a division. */
static inline uint64_t rt_rand_below(uint64_t *state, uint64_t n)
{
	return ((rt_xorshift64(state) >> 32) * n) >> 32;
}

/* A non-zero xorshift64 state from any seed (one splitmix64 step). */
uint64_t rt_seed(uint64_t seed);

/* Cross-vCPU counters in shared memory. */
static inline uint32_t rt_atomic_inc(uint32_t *p)
{
	return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}

static inline uint32_t rt_atomic_load(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

__noreturn void rt_exit(uint64_t code);
__noreturn void rt_fail(uint64_t gpa);
__noreturn void rt_halt(void);

/* Serial output: one MSGPORT_PUTS exit per call (per 255 bytes). */
void rt_puts(const char *s);
__printf(1, 2) void rt_printf(const char *fmt, ...);

/*
 * A small vsnprintf: %d %i %u %x %X %p %s %c %%, flags '0' and '-', a width,
 * and the length modifiers l, ll, z. Returns the length it wanted to write.
 */
int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
__printf(3, 4) int rt_snprintf(char *buf, size_t size, const char *fmt, ...);

/* Write s at (row, col) of the 80x25 text buffer; clipped at the line end. */
void rt_vga_write(unsigned int row, unsigned int col, uint8_t attr, const char *s);
/* Blank cols [col, VGA_COLS) of row. */
void rt_vga_clear(unsigned int row, unsigned int col, uint8_t attr);

size_t rt_strlen(const char *s);

/* The compiler may emit calls to these. */
void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif /* __ASSEMBLER__ */
#endif
