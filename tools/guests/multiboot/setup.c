// SPDX-License-Identifier: GPL-2.0
/*
 * The Multiboot dirtier's one piece of 64-bit CPL0 C: turn the Multiboot
 * information into the struct kvmsnap_bootinfo that kvmsnap gives its
 * built-in guests, so the unchanged dirtier runs on it. Short and loop-free
 * but for the command line, the memory map and the PIT calibration: CPL0 may
 * be emulated.
 *
 * Command line (after the kernel's name): ws, rate, pattern, passes and seed
 * as in `--guest dirtier:...`, plus tsc_khz; separated by spaces or commas.
 *
 * The TSC frequency comes from tsc_khz= if given, else from the hypervisor
 * timing leaf CPUID 0x40000010 (EAX = TSC kHz) if the hypervisor's leaf
 * range holds it, else from a 50 ms count of PIT channel 2.
 *
 * The message port is probed: a read of its ID register returns
 * KVMSNAP_MSGPORT_ID under kvmsnap. Anywhere else the boot info points the
 * runtime at a scratch page of the image instead, so its register writes
 * land in memory: PROGRESS and PASS can be read there (guest-abi.h), and an
 * exit or a failure report leaves the vCPU spinning in ring 3.
 *
 * What this finds goes to COM1 as one line; ring 3 cannot do port I/O, so
 * the dirtier's own lines reach only kvmsnap's message port.
 */
#include "rt.h"
#include "layout.h"

#define MB_BOOT_MAGIC 0x2badb002u
#define MBI_MEM	      (1u << 0)
#define MBI_CMDLINE   (1u << 2)
#define MBI_MMAP      (1u << 6)
#define MB_MMAP_RAM   1
#define FREE_ALIGN    (2ULL << 20) /* as kvmsnap: free RAM starts 2 MiB aligned */

#define PORT_COM1     0x3f8
#define COM1_LSR      5
#define LSR_THRE      0x20
#define PORT_PIT_CH2  0x42
#define PORT_PIT_CMD  0x43
#define PORT_SPEAKER  0x61
#define SPEAKER_GATE2 0x01
#define SPEAKER_DATA  0x02
#define SPEAKER_OUT2  0x20
#define PIT_CH2_MODE0 0xb0 /* channel 2, low then high byte, mode 0, binary */
#define PIT_HZ	      1193182ULL
#define PIT_MS	      50
#define PIT_GIVE_UP   (1ULL << 37) /* TSC ticks: a PIT that never fires */
#define TSC_KHZ_MIN   1000

#define CPUID_HV_BIT	(1u << 31) /* CPUID.1:ECX: running under a hypervisor */
#define CPUID_HV_BASE	0x40000000u
#define CPUID_HV_TIMING 0x40000010u

#define RATE_MAX   100000000ULL /* the limits of `--guest dirtier:...` */
#define PASSES_MAX 0xffffffffULL

/* The parts of the Multiboot information used here. */
struct mb_info {
	uint32_t flags;
	uint32_t mem_lower;
	uint32_t mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;
	uint32_t mmap_addr;
} __attribute__((packed));

struct mb_mmap_entry {
	uint32_t size; /* of the rest, not counting this field */
	uint64_t base;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));

struct kvmsnap_bootinfo *mb_setup(uint32_t magic, uint32_t info);

extern char _end[];
extern char mb_scratch[];

static struct kvmsnap_bootinfo mb_bootinfo;

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

/* COM1 from CPL0: ring 3 has no port I/O, so only these lines reach it. */
static void com1_puts(const char *s)
{
	for (; *s; s++) {
		unsigned int spins = 0;

		while (!(inb(PORT_COM1 + COM1_LSR) & LSR_THRE) && ++spins < 100000)
			rt_pause();
		outb(PORT_COM1, (uint8_t)*s);
	}
}

/* kvmsnap sends COM1 to --serial as well: one path for both. */
__printf(1, 2) static void say(const char *fmt, ...)
{
	char buf[RT_PUTS_MAX];
	va_list ap;

	va_start(ap, fmt);
	rt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	com1_puts(buf);
}

static __noreturn void stop(uint64_t code)
{
	if (mb_bootinfo.msgport == MSGPORT_GPA)
		*(volatile uint64_t *)(uintptr_t)(MSGPORT_GPA + MSGPORT_EXIT) = code;
	for (;;)
		__asm__ volatile("cli; hlt");
}

static int parse_uint(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!n)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Digits with an optional K, M, G or T suffix, either case. */
static int parse_size(const char *s, size_t n, uint64_t *out)
{
	unsigned int shift = 0;
	uint64_t v;

	if (n > 1) {
		switch (s[n - 1] | 0x20) {
		case 'k':
			shift = 10;
			break;
		case 'm':
			shift = 20;
			break;
		case 'g':
			shift = 30;
			break;
		case 't':
			shift = 40;
			break;
		}
	}
	if (parse_uint(s, shift ? n - 1 : n, &v) || (shift && v > UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

static int word_is(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n && word[i]; i++)
		if (s[i] != word[i])
			return 0;
	return i == n && !word[i];
}

/* One key=value; 0, or -1 if the key is unknown or the value bad. */
static int parse_pair(const char *k, size_t kn, const char *v, size_t vn, uint64_t *tsc_khz)
{
	static const char *const patterns[] = {"seq", "random", "hot"};
	uint64_t *p = mb_bootinfo.params;
	unsigned int i;

	if (word_is(k, kn, "ws"))
		return parse_size(v, vn, &p[DIRTIER_P_WS]) || p[DIRTIER_P_WS] % RT_PAGE_SIZE ? -1
											     : 0;
	if (word_is(k, kn, "rate"))
		return parse_uint(v, vn, &p[DIRTIER_P_RATE]) || p[DIRTIER_P_RATE] > RATE_MAX ? -1
											     : 0;
	if (word_is(k, kn, "passes"))
		return parse_uint(v, vn, &p[DIRTIER_P_PASSES]) || p[DIRTIER_P_PASSES] > PASSES_MAX
			   ? -1
			   : 0;
	if (word_is(k, kn, "seed"))
		return parse_uint(v, vn, &p[DIRTIER_P_SEED]);
	if (word_is(k, kn, "tsc_khz"))
		return parse_uint(v, vn, tsc_khz);
	if (word_is(k, kn, "pattern")) {
		for (i = 0; i < 3; i++) {
			if (word_is(v, vn, patterns[i])) {
				p[DIRTIER_P_PATTERN] = i;
				return 0;
			}
		}
	}
	return -1;
}

/*
 * The command line is the kernel's name, then the arguments: words without
 * '=' (the name) are skipped. Those after the first word are kept in
 * bi->cmdline, as kvmsnap keeps the --guest string.
 */
static void parse_cmdline(const char *s, uint64_t *tsc_khz)
{
	struct kvmsnap_bootinfo *bi = &mb_bootinfo;
	size_t i = 0, n;

	bi->params[DIRTIER_P_SEED] = 1; /* the default of --guest dirtier */
	while (*s && *s != ' ')
		s++;
	while (*s == ' ')
		s++;
	for (n = 0; s[n] && n < sizeof(bi->cmdline) - 1; n++)
		bi->cmdline[n] = s[n];

	while (s[i]) {
		const char *w = s + i, *eq = NULL;

		for (n = 0; w[n] && w[n] != ' ' && w[n] != ','; n++)
			if (w[n] == '=' && !eq)
				eq = w + n;
		i += n;
		if (s[i])
			i++;
		if (!n || !eq)
			continue;
		if (parse_pair(w, (size_t)(eq - w), eq + 1, n - (size_t)(eq - w) - 1, tsc_khz)) {
			char word[64];

			rt_snprintf(word, n < sizeof(word) ? n + 1 : sizeof(word), "%s", w);
			say("dirtier-mb: error: bad parameter '%s' (ws=SIZE in 4K units, rate, "
			    "pattern=seq|random|hot, passes, seed, tsc_khz)\n",
			    word);
			stop(RT_EXIT_BAD_PARAMS);
		}
	}
}

/* RAM size, the end of RAM below 4 GiB and the RAM range holding free_start. */
static void scan_memory(const struct mb_info *mbi)
{
	struct kvmsnap_bootinfo *bi = &mb_bootinfo;
	uint64_t start = bi->free_start;
	uintptr_t p, end;

	if (!(mbi->flags & MBI_MMAP)) {
		if (mbi->flags & MBI_MEM) {
			bi->ram_size = HIGH_RAM_START + (uint64_t)mbi->mem_upper * 1024;
			bi->low_ram_end = bi->free_end = bi->ram_size;
		}
		return;
	}
	p = mbi->mmap_addr;
	end = p + mbi->mmap_length;
	while (p + sizeof(struct mb_mmap_entry) <= end) {
		const struct mb_mmap_entry *e = (const struct mb_mmap_entry *)p;
		uint64_t lo = e->base, hi = e->base + e->len;

		p += e->size + sizeof(e->size);
		if (e->type != MB_MMAP_RAM)
			continue;
		bi->ram_size += e->len;
		if (hi > HIGH_MEM_START)
			hi = HIGH_MEM_START;
		if (lo < HIGH_MEM_START && hi > bi->low_ram_end)
			bi->low_ram_end = hi;
		if (lo <= start && start < hi)
			bi->free_end = hi & ~(RT_PAGE_SIZE - 1);
	}
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static uint64_t cpuid_tsc_khz(void)
{
	uint32_t a, b, c, d;

	cpuid(1, &a, &b, &c, &d);
	if (!(c & CPUID_HV_BIT))
		return 0;
	cpuid(CPUID_HV_BASE, &a, &b, &c, &d);
	if (a < CPUID_HV_TIMING || a >= CPUID_HV_BASE + 0x10000)
		return 0;
	cpuid(CPUID_HV_TIMING, &a, &b, &c, &d);
	return a;
}

/* TSC ticks while PIT channel 2 counts PIT_MS down in mode 0 (OUT rises at 0). */
static uint64_t pit_tsc_khz(void)
{
	uint16_t count = (uint16_t)(PIT_HZ * PIT_MS / 1000);
	uint8_t saved = inb(PORT_SPEAKER);
	uint64_t t0, t;

	outb(PORT_SPEAKER, (uint8_t)((saved & ~SPEAKER_DATA) | SPEAKER_GATE2));
	outb(PORT_PIT_CMD, PIT_CH2_MODE0);
	outb(PORT_PIT_CH2, (uint8_t)count);
	outb(PORT_PIT_CH2, (uint8_t)(count >> 8));
	t0 = rdtsc();
	do
		t = rdtsc() - t0;
	while (!(inb(PORT_SPEAKER) & SPEAKER_OUT2) && t < PIT_GIVE_UP);
	outb(PORT_SPEAKER, saved);
	t /= PIT_MS;
	return t >= TSC_KHZ_MIN ? t : 0; /* port 0x61 absent: OUT reads as 1 at once */
}

struct kvmsnap_bootinfo *mb_setup(uint32_t magic, uint32_t info)
{
	const struct mb_info *mbi = (const struct mb_info *)(uintptr_t)info;
	struct kvmsnap_bootinfo *bi = &mb_bootinfo;
	const char *tsc_from = "tsc_khz=";
	uint64_t tsc_khz = 0;

	bi->msgport =
	    *(volatile uint64_t *)(uintptr_t)(MSGPORT_GPA + MSGPORT_ID) == KVMSNAP_MSGPORT_ID
		? MSGPORT_GPA
		: (uintptr_t)mb_scratch;
	if (magic != MB_BOOT_MAGIC) {
		say("dirtier-mb: error: not entered by a Multiboot loader (EAX 0x%x)\n", magic);
		stop(RT_EXIT_BAD_BOOTINFO);
	}

	bi->magic = KVMSNAP_BOOTINFO_MAGIC;
	bi->version = KVMSNAP_BOOTINFO_VERSION;
	bi->nr_cpus = 1;
	bi->vga_text = VGA_TEXT_GPA;
	/*
	 * The Multiboot information may lie above the image (QEMU puts it
	 * there), but it is read here, before anything dirties free RAM.
	 */
	bi->free_start = ((uintptr_t)_end + FREE_ALIGN - 1) & ~(FREE_ALIGN - 1);
	if (mbi->flags & MBI_CMDLINE)
		parse_cmdline((const char *)(uintptr_t)mbi->cmdline, &tsc_khz);
	else
		bi->params[DIRTIER_P_SEED] = 1;
	scan_memory(mbi);

	if (!tsc_khz) {
		tsc_from = "CPUID 0x40000010";
		tsc_khz = cpuid_tsc_khz();
	}
	if (!tsc_khz) {
		tsc_from = "the PIT";
		tsc_khz = pit_tsc_khz();
	}
	bi->tsc_khz = tsc_khz;

	say("dirtier-mb: tsc_khz %lu from %s, message port %s, free RAM 0x%lx-0x%lx\n", tsc_khz,
	    tsc_from, bi->msgport == MSGPORT_GPA ? "kvmsnap" : "none (scratch page)",
	    bi->free_start, bi->free_end);
	if (bi->params[DIRTIER_P_WS] >
	    (bi->free_end > bi->free_start ? bi->free_end - bi->free_start : 0)) {
		say("dirtier-mb: error: ws=%lu does not fit in free RAM\n",
		    bi->params[DIRTIER_P_WS]);
		stop(RT_EXIT_BAD_PARAMS);
	}
	return bi;
}
