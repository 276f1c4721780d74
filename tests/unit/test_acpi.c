// SPDX-License-Identifier: GPL-2.0
/*
 * The ACPI builder: walk the tables the way a guest does (RSDP -> XSDT ->
 * each table, by guest-physical address), check them field by field against
 * offsets taken from the ACPI 6.x specification (not from acpi.c), and have
 * ACPICA's iasl disassemble every table and compile it back byte for byte.
 */
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include "../harness.h"
#include "acpi/acpi.h"
#include "acpi/aml.h"
#include "util/util.h"

#define GPA	   0xe0000ULL
#define SIZE	   (128 * 1024)
#define LAPIC_GPA  0xfee00000ULL
#define IOAPIC_GPA 0xfec00000ULL
#define HDR_LEN	   36u
#define RSDP_LEN   36u
#define FADT_LEN   276u
#define HW_REDUCED (1u << 20)

struct found {
	size_t xsdt, rsdt, fadt, madt, dsdt; /* buf offsets; rsdt 0 if absent */
	size_t end;			     /* the end of the last table */
};

static uint64_t get_le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	while (bytes--)
		v = v << 8 | p[bytes];
	return v;
}

static uint8_t sum8(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static size_t count_mem(const uint8_t *p, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	const uint8_t *q;

	while ((q = memmem(p, len, needle, nl))) {
		n++;
		len -= (size_t)(q - p) + nl;
		p = q + nl;
	}
	return n;
}

static int build(uint8_t *buf, struct acpi_config *cfg, unsigned int nr_cpus, uint64_t gpa)
{
	*cfg = (struct acpi_config){.gpa = gpa,
				    .size = SIZE,
				    .nr_cpus = nr_cpus,
				    .lapic_gpa = LAPIC_GPA,
				    .ioapic_gpa = IOAPIC_GPA};
	memset(buf, 0, SIZE);
	return acpi__build(buf, cfg, NULL);
}

/* A table at guest address gpa: its header and its Length inside the buffer. */
static void table_at(struct th_result *_r, const uint8_t *buf, const struct acpi_config *cfg,
		     uint64_t gpa, const char *sig, int rev, size_t *off)
{
	uint64_t len;

	ASSERT_GE(gpa, cfg->gpa);
	ASSERT_LE(gpa - cfg->gpa, cfg->size - HDR_LEN);
	*off = gpa - cfg->gpa;
	buf += *off;
	len = get_le(buf + 4, 4);
	ASSERT_GE(len, HDR_LEN);
	ASSERT_LE(len, cfg->size - *off);
	if (sig)
		ASSERT_EQ(memcmp(buf, sig, 4), 0);
	if (rev >= 0)
		ASSERT_EQ(buf[8], rev);
	ASSERT_EQ(sum8(buf, len), 0);
	ASSERT_EQ(memcmp(buf + 10, "KVMSNP", 6), 0);
	ASSERT_EQ(memcmp(buf + 16, "KVMSNAP ", 8), 0);
	ASSERT_EQ(memcmp(buf + 28, "KVMS", 4), 0);
}

static size_t table_len(const uint8_t *buf, size_t off)
{
	return get_le(buf + off + 4, 4);
}

static void check_rsdp(struct th_result *_r, const uint8_t *buf, const struct acpi_config *cfg)
{
	ASSERT_EQ(memcmp(buf, "RSD PTR ", 8), 0);
	ASSERT_EQ(sum8(buf, 20), 0);
	ASSERT_EQ(sum8(buf, RSDP_LEN), 0);
	ASSERT_EQ(memcmp(buf + 9, "KVMSNP", 6), 0);
	ASSERT_EQ(buf[15], 2);
	ASSERT_EQ(get_le(buf + 20, 4), RSDP_LEN);
	ASSERT_NE(get_le(buf + 24, 8), 0u);
	/* The 32-bit RSDT pointer only makes sense below 4 GiB. */
	if (cfg->gpa + cfg->size > (1ULL << 32))
		ASSERT_EQ(get_le(buf + 16, 4), 0u);
}

/* XSDT (or RSDT) entries: each resolves to a valid table, FACP and APIC once each. */
static void check_sdt(struct th_result *_r, const uint8_t *buf, const struct acpi_config *cfg,
		      size_t off, unsigned int width, struct found *f)
{
	size_t len = table_len(buf, off), i, t;
	int nfadt = 0, nmadt = 0;

	ASSERT_EQ((len - HDR_LEN) % width, 0u);
	ASSERT_EQ((len - HDR_LEN) / width, 2u);
	for (i = HDR_LEN; i < len; i += width) {
		table_at(_r, buf, cfg, get_le(buf + off + i, width), NULL, -1, &t);
		if (!memcmp(buf + t, "FACP", 4)) {
			nfadt++;
			f->fadt = t;
		} else if (!memcmp(buf + t, "APIC", 4)) {
			nmadt++;
			f->madt = t;
		} else {
			TH_LOG("unexpected table %.4s", (const char *)(buf + t));
			ASSERT_TRUE(!memcmp(buf + t, "FACP", 4) || !memcmp(buf + t, "APIC", 4));
		}
		f->end = MAX(f->end, t + table_len(buf, t));
	}
	ASSERT_EQ(nfadt, 1);
	ASSERT_EQ(nmadt, 1);
}

/* A Generic Address Structure naming one byte at an I/O port. */
static void expect_gas_io8(struct th_result *_r, const uint8_t *g, uint64_t port)
{
	EXPECT_EQ(g[0], 1); /* system I/O */
	EXPECT_EQ(g[1], 8);
	EXPECT_EQ(g[2], 0);
	EXPECT_EQ(g[3], 1); /* byte access */
	EXPECT_EQ(get_le(g + 4, 8), port);
}

static void check_fadt(struct th_result *_r, const uint8_t *buf, const struct acpi_config *cfg,
		       struct found *f)
{
	const uint8_t *t = buf + f->fadt;
	uint64_t boot = get_le(t + 109, 2), dsdt32 = get_le(t + 40, 4);

	ASSERT_EQ(table_len(buf, f->fadt), FADT_LEN);
	ASSERT_EQ(t[8], 6);
	ASSERT_TRUE(get_le(t + 112, 4) & HW_REDUCED);
	ASSERT_EQ(get_le(t + 46, 2), 9u);
	ASSERT_TRUE(boot & 1);		  /* legacy devices: UART, PIC, PIT */
	ASSERT_FALSE(boot & 2);		  /* no 8042 */
	ASSERT_FALSE(boot & 4);		  /* VGA is present */
	ASSERT_EQ(get_le(t + 36, 4), 0u); /* no FACS: hardware-reduced */
	ASSERT_FALSE(boot & 0x20);	  /* the CMOS RTC is there */
	/* Reset register (RESET_REG_SUP), sleep control and status: byte ports. */
	ASSERT_TRUE(get_le(t + 112, 4) & (1u << 10));
	expect_gas_io8(_r, t + 116, 0x602);
	ASSERT_EQ(t[128], 1);
	expect_gas_io8(_r, t + 244, 0x600);
	expect_gas_io8(_r, t + 256, 0x601);
	table_at(_r, buf, cfg, get_le(t + 140, 8), "DSDT", 2, &f->dsdt);
	if (cfg->gpa + cfg->size <= (1ULL << 32))
		ASSERT_EQ(dsdt32, get_le(t + 140, 8));
	else
		ASSERT_EQ(dsdt32, 0u);
	f->end = MAX(f->end, f->dsdt + table_len(buf, f->dsdt));
}

static void check_madt_lapic(struct th_result *_r, const uint8_t *e, const struct acpi_config *cfg,
			     uint64_t *ids, unsigned int *n)
{
	ASSERT_EQ(e[1], 8);
	ASSERT_EQ(e[2], e[3]); /* processor UID = APIC id */
	ASSERT_LT(e[3], cfg->nr_cpus);
	ASSERT_FALSE(*ids & (1ULL << e[3]));
	ASSERT_TRUE(get_le(e + 4, 4) & 1);
	*ids |= 1ULL << e[3];
	(*n)++;
}

static void check_madt(struct th_result *_r, const uint8_t *buf, const struct acpi_config *cfg,
		       const struct found *f)
{
	const uint8_t *t = buf + f->madt, *e;
	size_t len = table_len(buf, f->madt), i;
	unsigned int ncpu = 0, nioapic = 0, npit = 0;
	uint64_t ids = 0;
	int ioapic_id = -1;

	ASSERT_GE(len, 44u);
	ASSERT_EQ(get_le(t + 36, 4), cfg->lapic_gpa);
	ASSERT_TRUE(get_le(t + 40, 4) & 1); /* PCAT_COMPAT */
	for (i = 44; i < len; i += e[1]) {
		e = t + i;
		ASSERT_LE(i + 2, len);
		ASSERT_GE(e[1], 2);
		ASSERT_LE(i + e[1], len);
		switch (e[0]) {
		case 0:
			check_madt_lapic(_r, e, cfg, &ids, &ncpu);
			break;
		case 1:
			ASSERT_EQ(e[1], 12);
			ASSERT_EQ(get_le(e + 4, 4), cfg->ioapic_gpa);
			ASSERT_EQ(get_le(e + 8, 4), 0u);
			ioapic_id = e[2];
			nioapic++;
			break;
		case 2:
			ASSERT_EQ(e[1], 10);
			if (e[2] == 0 && e[3] == 0 && get_le(e + 4, 4) == 2)
				npit++;
			break;
		}
	}
	ASSERT_EQ(ncpu, cfg->nr_cpus);
	ASSERT_EQ(ids, cfg->nr_cpus == 64 ? ~0ULL : (1ULL << cfg->nr_cpus) - 1);
	ASSERT_EQ(nioapic, 1u);
	/* Its id clashes with no CPU's. */
	ASSERT_EQ(ioapic_id < 64 && (ids & (1ULL << ioapic_id)), 0);
	ASSERT_EQ(npit, 1u);
}

static void check_dsdt(struct th_result *_r, const uint8_t *buf, const struct acpi_config *cfg,
		       const struct found *f)
{
	static const uint8_t pnp0501[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
	static const uint8_t pnp0b00[] = {0x0c, 0x41, 0xd0, 0x0b, 0x00};
	static const uint8_t s5[] = {0x08, '\\', '_',  'S',  '5',  '_', 0x12,
				     0x06, 0x02, 0x0a, 0x05, 0x0a, 0x05};
	const uint8_t *t = buf + f->dsdt;
	size_t len = table_len(buf, f->dsdt);

	ASSERT_EQ(t[HDR_LEN], 0x10); /* Scope (\_SB) */
	ASSERT_NOT_NULL(memmem(t, len, pnp0501, sizeof(pnp0501)));
	ASSERT_EQ(count_mem(t, len, "COM1"), 1u);
	ASSERT_EQ(count_mem(t, len, "ACPI0007"), cfg->nr_cpus);
	/* The RTC (PNP0B00) and Name (\_S5, Package (2) { 5, 5 }). */
	ASSERT_NOT_NULL(memmem(t, len, pnp0b00, sizeof(pnp0b00)));
	ASSERT_NOT_NULL(memmem(t, len, s5, sizeof(s5)));
}

/* The whole walk a guest does; fills f with every table's offset. */
static void walk(struct th_result *_r, const uint8_t *buf, const struct acpi_config *cfg,
		 struct found *f)
{
	uint64_t rsdt = get_le(buf + 16, 4);

	memset(f, 0, sizeof(*f));
	check_rsdp(_r, buf, cfg);
	table_at(_r, buf, cfg, get_le(buf + 24, 8), "XSDT", 1, &f->xsdt);
	f->end = f->xsdt + table_len(buf, f->xsdt);
	check_sdt(_r, buf, cfg, f->xsdt, 8, f);
	if (rsdt) {
		table_at(_r, buf, cfg, rsdt, "RSDT", 1, &f->rsdt);
		f->end = MAX(f->end, f->rsdt + table_len(buf, f->rsdt));
		check_sdt(_r, buf, cfg, f->rsdt, 4, f);
	}
	check_fadt(_r, buf, cfg, f);
	check_madt(_r, buf, cfg, f);
	check_dsdt(_r, buf, cfg, f);
}

static void check_tables(struct th_result *_r, unsigned int nr_cpus, uint64_t gpa)
{
	static uint8_t buf[SIZE];
	struct acpi_config cfg;
	struct found f;

	ASSERT_EQ(build(buf, &cfg, nr_cpus, gpa), 0);
	walk(_r, buf, &cfg, &f);
}

/* Built for this many vCPUs at this address, the tables walk as ACPI says. */
FIXTURE(tables){};

FIXTURE_VARIANT(tables)
{
	unsigned int nr_cpus;
	uint64_t gpa;
};

FIXTURE_VARIANT_ADD(tables, 1_cpu){.nr_cpus = 1, .gpa = GPA};
FIXTURE_VARIANT_ADD(tables, 2_cpus){.nr_cpus = 2, .gpa = GPA};
FIXTURE_VARIANT_ADD(tables, 64_cpus){.nr_cpus = 64, .gpa = GPA};
/* Above 4 GiB there is no RSDT and FADT.DSDT is 0; XSDT and X_DSDT suffice. */
FIXTURE_VARIANT_ADD(tables, above_4g){.nr_cpus = 2, .gpa = 0x100000000ULL};

FIXTURE_SETUP(tables)
{
}

FIXTURE_TEARDOWN(tables)
{
}

TEST_F(tables, walk)
{
	check_tables(_r, variant->nr_cpus, variant->gpa);
}

/*
 * Build into size bytes followed by a canary. Returns acpi__build()'s result,
 * or 1 if it wrote past size or, failing, left anything behind.
 */
static int build_small(uint8_t *small, struct acpi_config *cfg, size_t size, struct error *err)
{
	size_t i;
	int ret;

	memset(small, 0, size);
	memset(small + size, 0xa5, 64);
	cfg->size = size;
	ret = acpi__build(small, cfg, err);
	for (i = 0; i < size + 64; i++) {
		if (i >= size ? small[i] != 0xa5 : (ret && small[i]))
			return 1;
	}
	return ret;
}

/* Every size below what the tables need fails cleanly; that size works. */
static void check_enospc(struct th_result *_r, unsigned int nr_cpus)
{
	static uint8_t buf[SIZE], small[SIZE + 64];
	struct acpi_config cfg;
	int ret = -ENOSPC;
	struct error err;
	char want[64];
	struct found f;
	size_t size;

	ASSERT_EQ(build(buf, &cfg, nr_cpus, GPA), 0);
	walk(_r, buf, &cfg, &f);
	for (size = 0; size < f.end && ret == -ENOSPC; size++)
		ret = build_small(small, &cfg, size, &err);
	if (ret != -ENOSPC)
		TH_LOG("%u vCPUs, %zu of %zu bytes", nr_cpus, size - 1, f.end);
	ASSERT_EQ(ret, -ENOSPC);
	snprintf(want, sizeof(want), "acpi: the tables do not fit in %zu bytes", size - 1);
	EXPECT_STREQ(err.msg, want);
	EXPECT_EQ(err.code, -ENOSPC);
	ASSERT_EQ(build_small(small, &cfg, f.end, NULL), 0);
	/* The smallest size that fits gives the same tables. */
	ASSERT_EQ(memcmp(small, buf, f.end), 0);
}

FIXTURE(enospc){};

FIXTURE_VARIANT(enospc)
{
	unsigned int nr_cpus;
};

FIXTURE_VARIANT_ADD(enospc, 1_cpu){.nr_cpus = 1};
FIXTURE_VARIANT_ADD(enospc, 64_cpus){.nr_cpus = 64};

FIXTURE_SETUP(enospc)
{
}

FIXTURE_TEARDOWN(enospc)
{
}

TEST_F(enospc, every_smaller_size)
{
	check_enospc(_r, variant->nr_cpus);
}

TEST(einval)
{
	static uint8_t buf[SIZE];
	struct acpi_config cfg;
	struct error err;

	ASSERT_EQ(build(buf, &cfg, 0, GPA), -EINVAL);
	ASSERT_EQ(build(buf, &cfg, 255, GPA), -EINVAL);
	ASSERT_EQ(acpi__build(buf, &cfg, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "acpi: 255 vCPUs, the tables take 1 to 254");
	cfg.nr_cpus = 1;
	cfg.lapic_gpa = 1ULL << 32;
	ASSERT_EQ(acpi__build(buf, &cfg, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "acpi: APIC addresses must be below 4 GiB");
}

TEST(checksum_known_bytes)
{
	static const uint8_t abc[] = {0x01, 0x02, 0x03};
	static const uint8_t wrap[] = {0xff, 0x01};
	uint8_t tbl[] = {'R', 'S', 'D', ' ', 0x00, 0x7f};

	ASSERT_EQ(acpi__checksum(abc, 0), 0);
	ASSERT_EQ(acpi__checksum(abc, sizeof(abc)), 0xfa);
	ASSERT_EQ(acpi__checksum(wrap, sizeof(wrap)), 0);
	/* The checksum byte, computed as zero and then stored, zeroes the sum. */
	tbl[4] = acpi__checksum(tbl, sizeof(tbl));
	ASSERT_EQ(tbl[4], 0x100 - ((0x52 + 0x53 + 0x44 + 0x20 + 0x7f) & 0xff));
	ASSERT_EQ(sum8(tbl, sizeof(tbl)), 0);
}

/* A body of len bytes in a package: the PkgLength bytes that precede it. */
static void check_pkglen(struct th_result *_r, size_t body, const uint8_t *want, size_t n)
{
	static uint8_t mem[0x2000];
	struct acpi_buf b = {.base = mem, .size = sizeof(mem)};
	size_t pkg = aml__pkg_begin(&b), i;

	for (i = 0; i < body; i++)
		acpi_buf__put_u8(&b, (uint8_t)i);
	aml__pkg_end(&b, pkg);
	ASSERT_FALSE(b.full);
	ASSERT_EQ(b.pos, body + n);
	ASSERT_EQ(memcmp(mem, want, n), 0);
	for (i = 0; i < body; i++)
		ASSERT_EQ(mem[n + i], (uint8_t)i);
}

TEST(aml_pkglen)
{
	check_pkglen(_r, 0, (const uint8_t[]){0x01}, 1);
	check_pkglen(_r, 62, (const uint8_t[]){0x3f}, 1);
	/* 63 + 1 would need bit 6: two bytes, 65 = 0x41. */
	check_pkglen(_r, 63, (const uint8_t[]){0x41, 0x04}, 2);
	check_pkglen(_r, 0xffd, (const uint8_t[]){0x4f, 0xff}, 2);
	check_pkglen(_r, 0xffe, (const uint8_t[]){0x81, 0x00, 0x01}, 3);
}

TEST(aml_integers_and_names)
{
	static const uint8_t want[] = {0x00, 0x01, 0x0a, 0x02, 0x0b, 0x00, 0x01, 0x0c, 0x00, 0x00,
				       0x01, 0x00, 0x0e, 0,    0,    0,	   0,	 1,    0,    0,
				       0,    0x0c, 0x41, 0xd0, 0x05, 0x01, '\\', '_',  'S',  'B',
				       '_',  0x2e, 'A',	 '_',  '_',  '_',  'B',	 'C',  '_',  '_'};
	uint8_t mem[64];
	struct acpi_buf b = {.base = mem, .size = sizeof(mem)};

	aml__integer(&b, 0);
	aml__integer(&b, 1);
	aml__integer(&b, 2);
	aml__integer(&b, 0x100);
	aml__integer(&b, 0x10000);
	aml__integer(&b, 1ULL << 32);
	aml__eisaid(&b, "PNP0501");
	aml__name_string(&b, "\\_SB");
	aml__name_string(&b, "A.BC");
	ASSERT_FALSE(b.full);
	ASSERT_EQ(b.pos, sizeof(want));
	ASSERT_EQ(memcmp(mem, want, sizeof(want)), 0);
}

/* iasl, run in dir with its output in log: the exit status, or -1. */
static int run_iasl(const char *dir, const char *log, const char *a1, const char *a2,
		    const char *a3, const char *a4)
{
	int status, fd;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		fd = chdir(dir) ? -1 : open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(126);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execlp("iasl", "iasl", a1, a2, a3, a4, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static bool have_iasl(void)
{
	const char *path = getenv("PATH");
	char *dirs, *d, *save = NULL, file[4096];
	bool found = false;

	dirs = strdup(path ? path : "/usr/bin:/bin");
	if (!dirs)
		return false;
	for (d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/iasl", d);
		found = access(file, X_OK) == 0;
	}
	free(dirs);
	return found;
}

/* The whole of dir/name, NUL-terminated, or NULL. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[4096], *s = NULL;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	if (!fstat(fd, &st) && (s = calloc(1, (size_t)st.st_size + 1)) &&
	    read(fd, s, (size_t)st.st_size) != st.st_size) {
		free(s);
		s = NULL;
	}
	if (s && len)
		*len = (size_t)st.st_size;
	close(fd);
	return s;
}

static void check_no_complaint(struct th_result *_r, const char *what, const char *text)
{
	static const char *const bad[] = {"Error",   "Warning",	 "**** ",    "Incorrect checksum",
					  "Invalid", "too long", "too short"};
	size_t i;

	ASSERT_NOT_NULL(text);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (strstr(text, bad[i]))
			TH_LOG("%s: iasl says \"%s\"", what, bad[i]);
		ASSERT_NULL(strstr(text, bad[i]));
	}
}

/*
 * Disassemble the table, then compile the listing back (-oa: no AML
 * optimizations) and expect our bytes but for the compiler id and checksum.
 */
static void check_iasl(struct th_result *_r, const char *dir, const uint8_t *t)
{
	char name[64], out[4096], log[64], *text, *aml;
	size_t len = get_le(t + 4, 4), alen = 0, i;
	int fd;

	snprintf(name, sizeof(name), "%.4s.dat", (const char *)t);
	snprintf(out, sizeof(out), "%s/%s", dir, name);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, t, len), (ssize_t)len);
	close(fd);

	snprintf(log, sizeof(log), "%.4s.log", (const char *)t);
	ASSERT_EQ(run_iasl(dir, log, "-d", name, NULL, NULL), 0);
	text = slurp(dir, log, NULL);
	check_no_complaint(_r, log, text);
	free(text);
	snprintf(name, sizeof(name), "%.4s.dsl", (const char *)t);
	text = slurp(dir, name, NULL);
	check_no_complaint(_r, name, text);
	free(text);

	snprintf(log, sizeof(log), "%.4s-rt.log", (const char *)t);
	snprintf(out, sizeof(out), "%.4s-rt", (const char *)t);
	ASSERT_EQ(run_iasl(dir, log, "-oa", "-p", out, name), 0);
	snprintf(out, sizeof(out), "%.4s-rt.aml", (const char *)t);
	aml = slurp(dir, out, &alen);
	ASSERT_NOT_NULL(aml);
	ASSERT_EQ(alen, len);
	for (i = 0; i < len; i++) {
		if (i != 9 && (i < 28 || i >= 36) && (uint8_t)aml[i] != t[i]) {
			TH_LOG("%.4s: iasl compiles byte %zu as %#x, we wrote %#x", (const char *)t,
			       i, (uint8_t)aml[i], t[i]);
			break;
		}
	}
	free(aml);
	ASSERT_EQ(i, len);
}

static void check_iasl_all(struct th_result *_r, const char *dir, unsigned int nr_cpus)
{
	static uint8_t buf[SIZE];
	struct acpi_config cfg;
	struct found f;

	ASSERT_EQ(build(buf, &cfg, nr_cpus, GPA), 0);
	walk(_r, buf, &cfg, &f);
	check_iasl(_r, dir, buf + f.xsdt);
	if (f.rsdt)
		check_iasl(_r, dir, buf + f.rsdt);
	check_iasl(_r, dir, buf + f.fadt);
	check_iasl(_r, dir, buf + f.madt);
	check_iasl(_r, dir, buf + f.dsdt);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The RSDP is no SDT and this iasl cannot load it: the walk checks it. */
FIXTURE(iasl)
{
	char dir[32];
};

FIXTURE_VARIANT(iasl)
{
	unsigned int nr_cpus;
};

FIXTURE_VARIANT_ADD(iasl, 1_vcpu){.nr_cpus = 1};
FIXTURE_VARIANT_ADD(iasl, 2_vcpus){.nr_cpus = 2};
FIXTURE_VARIANT_ADD(iasl, 64_vcpus){.nr_cpus = 64};

FIXTURE_SETUP(iasl)
{
	TEST_REQUIRE(have_iasl(), "iasl not found in PATH (apt-get install acpica-tools)");
	snprintf(self->dir, sizeof(self->dir), "/tmp/test_acpi.XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
}

/* iasl's files stay for a failed test. */
FIXTURE_TEARDOWN(iasl)
{
	if (!self->dir[0])
		return;
	if (_r->failed)
		TH_LOG("%u vCPUs: iasl files kept in %s", variant->nr_cpus, self->dir);
	else
		nftw(self->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

TEST_F(iasl, disassembles)
{
	check_iasl_all(_r, self->dir, variant->nr_cpus);
}

TEST_HARNESS_MAIN
