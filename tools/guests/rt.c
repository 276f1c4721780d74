// SPDX-License-Identifier: GPL-2.0
/*
 * Ring-3 runtime of the built-in guests: entry, message port, formatting,
 * VGA text and the string functions the compiler may call.
 */
#include "rt.h"
#include "layout.h"

/* crt0.S hard-codes these; keep them in step with guest-abi.h. */
_Static_assert(__builtin_offsetof(struct kvmsnap_bootinfo, msgport) == RT_BI_MSGPORT, "bi");
_Static_assert(__builtin_offsetof(struct kvmsnap_fault, vector) == RT_FAULT_VECTOR, "fault");
_Static_assert(__builtin_offsetof(struct kvmsnap_fault, error_code) == RT_FAULT_ERROR_CODE,
	       "fault");
_Static_assert(__builtin_offsetof(struct kvmsnap_fault, rip) == RT_FAULT_RIP, "fault");
_Static_assert(__builtin_offsetof(struct kvmsnap_fault, cs) == RT_FAULT_CS, "fault");
_Static_assert(__builtin_offsetof(struct kvmsnap_fault, rflags) == RT_FAULT_RFLAGS, "fault");
_Static_assert(__builtin_offsetof(struct kvmsnap_fault, rsp) == RT_FAULT_RSP, "fault");
_Static_assert(__builtin_offsetof(struct kvmsnap_fault, cr2) == RT_FAULT_CR2, "fault");
_Static_assert(sizeof(struct kvmsnap_fault) == RT_FAULT_SIZE, "fault");
_Static_assert(MSGPORT_EXIT == RT_MSGPORT_EXIT, "msgport");
_Static_assert(MSGPORT_PUTS == RT_MSGPORT_PUTS, "msgport");
_Static_assert(MSGPORT_FAULT == RT_MSGPORT_FAULT, "msgport");
_Static_assert(RT_MAX_CPUS == VCPUS_MAX, "the VMM may start up to VCPUS_MAX vCPUs");

__noreturn void rt_entry(unsigned int cpu, const struct kvmsnap_bootinfo *bi)
{
	if (bi->magic != KVMSNAP_BOOTINFO_MAGIC || bi->version != KVMSNAP_BOOTINFO_VERSION) {
		/* bi->msgport cannot be trusted: use the fixed address. */
		rt_msgport = MSGPORT_GPA;
		rt_exit(RT_EXIT_BAD_BOOTINFO);
	}
	guest_main(cpu, bi);
	rt_puts("kvmsnap guest: guest_main returned\n");
	rt_exit(RT_EXIT_MAIN_RETURNED);
}

__noreturn void rt_halt(void)
{
	for (;;)
		rt_pause();
}

__noreturn void rt_exit(uint64_t code)
{
	rt_msg_write(MSGPORT_EXIT, code);
	rt_halt();
}

__noreturn void rt_fail(uint64_t gpa)
{
	rt_msg_write(MSGPORT_FAIL, gpa);
	rt_halt();
}

uint64_t rt_seed(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 0x2545f4914f6cdd1dULL;
}

size_t rt_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/*
 * The string is copied to a buffer on this vCPU's stack: the VMM reads it
 * during the exit, and it must be NUL-terminated and shorter than
 * RT_PUTS_MAX whatever the caller passed.
 */
void rt_puts(const char *s)
{
	char buf[RT_PUTS_MAX];
	size_t n;

	do {
		for (n = 0; n < sizeof(buf) - 1 && s[n]; n++)
			buf[n] = s[n];
		buf[n] = '\0';
		s += n;
		rt_msg_write(MSGPORT_PUTS, (uintptr_t)buf);
	} while (*s);
}

void rt_printf(const char *fmt, ...)
{
	char buf[RT_PUTS_MAX];
	va_list ap;

	va_start(ap, fmt);
	rt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rt_msg_write(MSGPORT_PUTS, (uintptr_t)buf);
}

struct fmt_out {
	char *buf;
	size_t size;
	size_t len;
};

static void fmt_putc(struct fmt_out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void fmt_pad(struct fmt_out *o, char c, int n)
{
	while (n-- > 0)
		fmt_putc(o, c);
}

static void fmt_str(struct fmt_out *o, const char *s, int width, int left)
{
	int n = (int)rt_strlen(s);

	if (!left)
		fmt_pad(o, ' ', width - n);
	while (*s)
		fmt_putc(o, *s++);
	if (left)
		fmt_pad(o, ' ', width - n);
}

static void fmt_num(struct fmt_out *o, uint64_t v, int neg, unsigned int base, int upper, int width,
		    int zero, int left)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, len;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	len = n + neg;
	if (!left && !zero)
		fmt_pad(o, ' ', width - len);
	if (neg)
		fmt_putc(o, '-');
	if (!left && zero)
		fmt_pad(o, '0', width - len);
	while (n)
		fmt_putc(o, tmp[--n]);
	if (left)
		fmt_pad(o, ' ', width - len);
}

int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct fmt_out o = {.buf = buf, .size = size};

	for (; *fmt; fmt++) {
		int zero = 0, left = 0, width = 0, lng = 0;
		uint64_t u;
		int64_t s;

		if (*fmt != '%') {
			fmt_putc(&o, *fmt);
			continue;
		}
		for (fmt++; *fmt == '0' || *fmt == '-'; fmt++) {
			if (*fmt == '0')
				zero = 1;
			else
				left = 1;
		}
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			width = width * 10 + (*fmt - '0');
		for (; *fmt == 'l' || *fmt == 'z'; fmt++)
			lng = 1;

		switch (*fmt) {
		case 'd':
		case 'i':
			s = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			u = s < 0 ? -(uint64_t)s : (uint64_t)s;
			fmt_num(&o, u, s < 0, 10, 0, width, zero, left);
			break;
		case 'u':
		case 'x':
		case 'X':
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			fmt_num(&o, u, 0, *fmt == 'u' ? 10 : 16, *fmt == 'X', width, zero, left);
			break;
		case 'p':
			fmt_str(&o, "0x", 0, 0);
			fmt_num(&o, (uintptr_t)va_arg(ap, void *), 0, 16, 0, width, zero, left);
			break;
		case 's':
			fmt_str(&o, va_arg(ap, const char *), width, left);
			break;
		case 'c':
			fmt_putc(&o, (char)va_arg(ap, int));
			break;
		case '\0':
			fmt--; /* a lone '%' at the end */
			break;
		default:
			fmt_putc(&o, *fmt);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int rt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = rt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static volatile uint16_t *vga_cell(unsigned int row, unsigned int col)
{
	return (volatile uint16_t *)(uintptr_t)rt_bootinfo->vga_text + row * VGA_COLS + col;
}

void rt_vga_write(unsigned int row, unsigned int col, uint8_t attr, const char *s)
{
	volatile uint16_t *cell;

	if (row >= VGA_ROWS)
		return;
	cell = vga_cell(row, col);
	for (; col < VGA_COLS && *s; col++)
		*cell++ = (uint16_t)(attr << 8 | (uint8_t)*s++);
}

void rt_vga_clear(unsigned int row, unsigned int col, uint8_t attr)
{
	volatile uint16_t *cell;

	if (row >= VGA_ROWS)
		return;
	cell = vga_cell(row, col);
	for (; col < VGA_COLS; col++)
		*cell++ = (uint16_t)(attr << 8 | ' ');
}

/*
 * GCC may turn these loops into calls to the very function they implement;
 * no_loop_idioms stops it.
 */
#define no_loop_idioms __attribute__((optimize("no-tree-loop-distribute-patterns")))

no_loop_idioms void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

no_loop_idioms void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

no_loop_idioms void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d < s)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++) {
		if (*x != *y)
			return *x - *y;
	}
	return 0;
}
