// SPDX-License-Identifier: GPL-2.0
/*
 * mbhello: report what the Multiboot boot loader handed over on COM1, then
 * leave through the isa-debug-exit port (status = code * 2 + 1). Written as
 * any Multiboot kernel would be: no libc, no headers of the boot loader.
 * Everything here runs at CPL0, so it prints little and touches little.
 */
#include <stdint.h>

#define COM1	      0x3f8
#define DEBUG_EXIT    0xf4
#define EXIT_OK	      0x10 /* exit status 33 */
#define EXIT_BADMAGIC 0x11 /* exit status 35 */

#define MB_BOOT_MAGIC 0x2badb002
#define MBI_MEM	      (1u << 0)
#define MBI_CMDLINE   (1u << 2)
#define MBI_MODS      (1u << 3)
#define MBI_MMAP      (1u << 6)
#define MBI_LOADER    (1u << 9)

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
};

struct mb_module {
	uint32_t mod_start, mod_end;
	uint32_t string;
	uint32_t reserved;
};

struct mb_mmap_entry {
	uint32_t size; /* of the rest of the entry */
	uint64_t base_addr, length;
	uint32_t type;
} __attribute__((packed));

void kmain(uint32_t magic, const struct mb_info *mbi);

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

static void puthex(uint64_t v)
{
	int shift = 60;

	puts("0x");
	while (shift > 0 && !(v >> shift))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

static void __attribute__((noreturn)) leave(uint8_t code)
{
	outb(DEBUG_EXIT, code);
	for (;;)
		__asm__ volatile("hlt");
}

static void print_mmap(const struct mb_info *mbi)
{
	uint32_t p = mbi->mmap_addr, end = mbi->mmap_addr + mbi->mmap_length;

	while (p < end) {
		const struct mb_mmap_entry *e = (const struct mb_mmap_entry *)p;

		puts("mmap: ");
		puthex(e->base_addr);
		putc(' ');
		puthex(e->length);
		putc(' ');
		putdec(e->type);
		putc('\n');
		p += e->size + 4;
	}
}

static void print_modules(const struct mb_info *mbi)
{
	const struct mb_module *m = (const struct mb_module *)mbi->mods_addr;
	uint32_t i;

	puts("modules: ");
	putdec(mbi->mods_count);
	putc('\n');
	for (i = 0; i < mbi->mods_count; i++) {
		puts("module: ");
		puts((const char *)m[i].string);
		putc(' ');
		putdec(m[i].mod_end - m[i].mod_start);
		puts(" bytes\n");
	}
}

void kmain(uint32_t magic, const struct mb_info *mbi)
{
	serial_init();
	if (magic != MB_BOOT_MAGIC) {
		puts("mbhello: bad boot magic\n");
		leave(EXIT_BADMAGIC);
	}
	puts("mbhello: booted\n");
	if (mbi->flags & MBI_LOADER) {
		puts("loader: ");
		puts((const char *)mbi->boot_loader_name);
		putc('\n');
	}
	if (mbi->flags & MBI_CMDLINE) {
		puts("cmdline: ");
		puts((const char *)mbi->cmdline);
		putc('\n');
	}
	if (mbi->flags & MBI_MEM) {
		puts("mem_lower: ");
		putdec(mbi->mem_lower);
		puts(" KiB\nmem_upper: ");
		putdec(mbi->mem_upper);
		puts(" KiB\n");
	}
	if (mbi->flags & MBI_MMAP)
		print_mmap(mbi);
	if (mbi->flags & MBI_MODS)
		print_modules(mbi);
	leave(EXIT_OK);
}
