// SPDX-License-Identifier: GPL-2.0
/*
 * porthammer: a hostile Multiboot kernel. With a xorshift PRNG seeded from
 * the last all-digit word of the command line (else a constant) it makes
 * random port accesses of random size and direction, string I/O on random
 * ports, and random MMIO to unbacked physical addresses, then reports on
 * COM1 and leaves through the isa-debug-exit port. It stays away only from
 * the debug-exit port (that would end the run) and COM1 (the log).
 *
 * All of this runs at CPL0, which may be emulated: keep the loops short.
 */
#include <stdint.h>

#define COM1	      0x3f8
#define COM1_END      0x400
#define DEBUG_EXIT    0xf4
#define EXIT_OK	      0x21 /* exit status 67 */
#define EXIT_BADMAGIC 0x22 /* exit status 69 */

#define NR_PORT	     3000 /* single port accesses */
#define NR_STRING    16	  /* rep outs / rep ins */
#define NR_MMIO	     200
#define STRING_BUF   64
#define SEED_DEFAULT 0x2545f491u

#define MB_BOOT_MAGIC 0x2badb002
#define MBI_CMDLINE   (1u << 2)

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
};

/* Unbacked physical space: no RAM, VGA, BIOS, ACPI, message port or APIC. */
static const struct {
	uint32_t base, len;
} mmio_ranges[] = {
    {0xc0000000u, 0x20000000u}, /* 3G..3.5G: above low RAM, below the VGA LFB */
    {0xfe001000u, 0x00bff000u}, /* after the message port, up to the IOAPIC */
};

void kmain(uint32_t magic, const struct mb_info *mbi);

static uint32_t rng_state;

static uint32_t rnd(void)
{
	uint32_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return rng_state = x;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB: set the divisor */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0xc7); /* FIFO on and cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void putc(char c)
{
	while (!(inb(COM1 + 5) & 0x20)) /* transmitter holding register empty */
		;
	outb(COM1, c);
}

static void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

static void putdec(uint32_t v)
{
	char buf[11];
	int i = sizeof(buf) - 1;

	buf[i] = '\0';
	do {
		buf[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	puts(buf + i);
}

static void __attribute__((noreturn)) leave(uint8_t code)
{
	outb(DEBUG_EXIT, code);
	for (;;)
		__asm__ volatile("hlt");
}

/* The value of the last all-digit word of s (mod 2^32), or 0. */
static uint32_t cmdline_seed(const char *s)
{
	uint32_t seed = 0, v;
	const char *w;

	while (*s) {
		while (*s == ' ')
			s++;
		for (w = s, v = 0; *s >= '0' && *s <= '9'; s++)
			v = v * 10 + (uint32_t)(*s - '0');
		if (s > w && (*s == ' ' || !*s))
			seed = v;
		while (*s && *s != ' ')
			s++;
	}
	return seed;
}

/* A random port such that [port, port + size) misses debug-exit and COM1. */
static uint16_t pick_port(uint32_t size)
{
	uint32_t p;

	do {
		p = rnd() & 0xffff;
	} while ((p <= DEBUG_EXIT && p + size > DEBUG_EXIT) || (p < COM1_END && p + size > COM1));
	return (uint16_t)p;
}

static void port_access(void)
{
	uint32_t r = rnd(), size = 1u << (r % 3), v = rnd();
	uint16_t port = pick_port(size);

	if (r & 0x100) {
		if (size == 1)
			__asm__ volatile("outb %b0, %w1" : : "a"(v), "d"(port));
		else if (size == 2)
			__asm__ volatile("outw %w0, %w1" : : "a"(v), "d"(port));
		else
			__asm__ volatile("outl %0, %w1" : : "a"(v), "d"(port));
	} else {
		if (size == 1)
			__asm__ volatile("inb %w1, %b0" : "=a"(v) : "d"(port));
		else if (size == 2)
			__asm__ volatile("inw %w1, %w0" : "=a"(v) : "d"(port));
		else
			__asm__ volatile("inl %w1, %0" : "=a"(v) : "d"(port));
	}
}

static void string_io(uint8_t *buf)
{
	uint32_t r = rnd(), size = 1u << (r % 3), count = 1 + (rnd() % (STRING_BUF / size));
	uint16_t port = pick_port(size);
	void *p = buf;

	if (r & 0x100) {
		if (size == 1)
			__asm__ volatile("rep outsb" : "+S"(p), "+c"(count) : "d"(port) : "memory");
		else if (size == 2)
			__asm__ volatile("rep outsw" : "+S"(p), "+c"(count) : "d"(port) : "memory");
		else
			__asm__ volatile("rep outsl" : "+S"(p), "+c"(count) : "d"(port) : "memory");
	} else {
		if (size == 1)
			__asm__ volatile("rep insb" : "+D"(p), "+c"(count) : "d"(port) : "memory");
		else if (size == 2)
			__asm__ volatile("rep insw" : "+D"(p), "+c"(count) : "d"(port) : "memory");
		else
			__asm__ volatile("rep insl" : "+D"(p), "+c"(count) : "d"(port) : "memory");
	}
}

/* One random MMIO access; returns 1 for a read that did not float high. */
static uint32_t mmio_access(void)
{
	uint32_t r = rnd(), size = 1u << (r % 3), v = rnd(), i = (r >> 8) & 1;
	uint32_t addr = mmio_ranges[i].base + rnd() % (mmio_ranges[i].len - size + 1);

	if (r & 0x200) {
		if (size == 1)
			*(volatile uint8_t *)addr = (uint8_t)v;
		else if (size == 2)
			*(volatile uint16_t *)addr = (uint16_t)v;
		else
			*(volatile uint32_t *)addr = v;
		return 0;
	}
	if (size == 1)
		return *(volatile uint8_t *)addr != 0xff;
	if (size == 2)
		return *(volatile uint16_t *)addr != 0xffff;
	return *(volatile uint32_t *)addr != 0xffffffffu;
}

void kmain(uint32_t magic, const struct mb_info *mbi)
{
	uint8_t buf[STRING_BUF];
	uint32_t i, seed = 0, bad = 0;

	serial_init();
	if (magic != MB_BOOT_MAGIC) {
		puts("porthammer: bad boot magic\n");
		leave(EXIT_BADMAGIC);
	}
	if (mbi->flags & MBI_CMDLINE)
		seed = cmdline_seed((const char *)mbi->cmdline);
	rng_state = seed ? seed : SEED_DEFAULT;
	puts("porthammer: seed ");
	putdec(rng_state);
	putc('\n');

	for (i = 0; i < NR_PORT; i++)
		port_access();
	for (i = 0; i < STRING_BUF; i++)
		buf[i] = (uint8_t)rnd();
	for (i = 0; i < NR_STRING; i++)
		string_io(buf);
	for (i = 0; i < NR_MMIO; i++)
		bad += mmio_access();

	puts("porthammer: unbacked MMIO reads not all ones: ");
	putdec(bad);
	puts("\nporthammer: survived ");
	putdec(NR_PORT + NR_STRING + NR_MMIO);
	puts(" accesses\n");
	leave(EXIT_OK);
}
