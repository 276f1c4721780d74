// SPDX-License-Identifier: GPL-2.0
/*
 * The ACPI tables of the acpi.tables region: RSDP, XSDT and RSDT, FADT, MADT
 * and a DSDT. The machine is hardware-reduced ACPI: there are no PM1 or GPE
 * blocks and no SCI, so there is no FACS either. Power-off and reset go
 * through the FADT's sleep control and reset registers (devices/power.c),
 * with the S5 sleep type in the DSDT's \_S5 package. Every table is written
 * byte-wise at fixed offsets from the ACPI 6.x specification.
 */
#include <errno.h>
#include <string.h>

#include "acpi/acpi.h"
#include "acpi/aml.h"
#include "layout.h"
#include "util/util.h"

#define ACPI_OEM_ID	      "KVMSNP"
#define ACPI_OEM_TABLE_ID     "KVMSNAP "
#define ACPI_CREATOR_ID	      "KVMS"
#define ACPI_OEM_REVISION     1
#define ACPI_CREATOR_REVISION 1
#define ACPI_TABLE_ALIGN      16
/* xAPIC ids 0..254 fit a type-0 MADT entry, and the I/O APIC takes the next. */
#define ACPI_MAX_CPUS 254

/* System description table header. */
#define HDR_LENGTH	     4
#define HDR_REVISION	     8
#define HDR_CHECKSUM	     9
#define HDR_OEM_ID	     10
#define HDR_OEM_TABLE_ID     16
#define HDR_OEM_REVISION     24
#define HDR_CREATOR_ID	     28
#define HDR_CREATOR_REVISION 32
#define HDR_LEN		     36

/* Root System Description Pointer, revision 2. */
#define RSDP_CHECKSUM	  8
#define RSDP_OEM_ID	  9
#define RSDP_REVISION	  15
#define RSDP_RSDT	  16
#define RSDP_LENGTH	  20
#define RSDP_XSDT	  24
#define RSDP_EXT_CHECKSUM 32
#define RSDP_V1_LEN	  20
#define RSDP_LEN	  36

/* FADT, revision 6 (ACPI 6.0). */
#define FADT_REVISION	    6
#define FADT_MINOR	    0 /* ACPI 6.0 */
#define FADT_DSDT	    40
#define FADT_SCI_INT	    46
#define FADT_RESET_REG	    116 /* Generic Address Structure, 12 bytes */
#define FADT_RESET_VALUE    128
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS	    112
#define FADT_MINOR_VERSION  131
#define FADT_X_DSDT	    140
#define FADT_SLEEP_CONTROL  244 /* GAS */
#define FADT_SLEEP_STATUS   256 /* GAS */
#define FADT_LEN	    276
#define FADT_SCI_IRQ	    9 /* unused: there is no SCI */

#define IAPC_LEGACY_DEVICES (1u << 0) /* the 16550 UART, the PIC and the PIT */

#define FADT_WBINVD	     (1u << 0)
#define FADT_PROC_C1	     (1u << 2)
#define FADT_PWR_BUTTON	     (1u << 4) /* set: no fixed-feature power button */
#define FADT_SLP_BUTTON	     (1u << 5)
#define FADT_RESET_REG_SUP   (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)

/* Generic Address Structure: one byte in system I/O space. */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_8  1

/* MADT, revision 4 (ACPI 6.0), and its interrupt controller structures. */
#define MADT_REVISION	   4
#define MADT_PCAT_COMPAT   (1u << 0)
#define MADT_LAPIC	   0
#define MADT_IOAPIC	   1
#define MADT_ISO	   2
#define MADT_LAPIC_NMI	   4
#define MADT_LAPIC_LEN	   8
#define MADT_IOAPIC_LEN	   12
#define MADT_ISO_LEN	   10
#define MADT_LAPIC_NMI_LEN 6
#define MADT_LAPIC_ENABLED (1u << 0)
#define MADT_ALL_CPUS	   0xff

#define DSDT_REVISION 2 /* 64-bit AML integers */
#define COM1_IRQ      4
#define ISA_PIT_IRQ   0
#define ISA_PIT_GSI   2

uint8_t acpi__checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

/* Start a table, aligned, with its header; returns its offset. */
static size_t acpi_table_begin(struct acpi_buf *b, const char *sig, uint8_t revision)
{
	uint8_t *h;

	acpi_buf__align(b, ACPI_TABLE_ALIGN);
	h = acpi_buf__reserve(b, HDR_LEN);
	if (!h)
		return 0;
	memcpy(h, sig, 4);
	h[HDR_REVISION] = revision;
	memcpy(h + HDR_OEM_ID, ACPI_OEM_ID, 6);
	memcpy(h + HDR_OEM_TABLE_ID, ACPI_OEM_TABLE_ID, 8);
	put_le32(h + HDR_OEM_REVISION, ACPI_OEM_REVISION);
	memcpy(h + HDR_CREATOR_ID, ACPI_CREATOR_ID, 4);
	put_le32(h + HDR_CREATOR_REVISION, ACPI_CREATOR_REVISION);
	return (size_t)(h - b->base);
}

/* The body is complete: fill in the length and the checksum. */
static void acpi_table_end(struct acpi_buf *b, size_t off)
{
	uint8_t *h = b->base + off;
	size_t len = b->pos - off;

	if (b->full)
		return;
	put_le32(h + HDR_LENGTH, (uint32_t)len);
	h[HDR_CHECKSUM] = acpi__checksum(h, len);
}

/* One Device (Cnnn) { _HID "ACPI0007", _UID n } per CPU, matching the MADT UIDs. */
static void acpi_dsdt_cpus(struct acpi_buf *b, unsigned int nr_cpus)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned int i;
	size_t dev;

	for (i = 0; i < nr_cpus; i++) {
		char name[5] = {'C', hex[(i >> 8) & 0xf], hex[(i >> 4) & 0xf], hex[i & 0xf], 0};

		dev = aml__device_begin(b, name);
		aml__name(b, "_HID");
		aml__string(b, "ACPI0007");
		aml__name(b, "_UID");
		aml__integer(b, i);
		aml__pkg_end(b, dev);
	}
}

static void acpi_dsdt_com1(struct acpi_buf *b)
{
	uint8_t res[16];
	struct acpi_buf crs = {.base = res, .size = sizeof(res)};
	size_t dev;

	aml__res_io16(&crs, PORT_COM1, PORT_COM1, 1, 8);
	aml__res_irq_noflags(&crs, 1u << COM1_IRQ);
	aml__res_end(&crs);

	dev = aml__device_begin(b, "COM1");
	aml__name(b, "_HID");
	aml__eisaid(b, "PNP0501");
	aml__name(b, "_UID");
	aml__integer(b, 1);
	aml__name(b, "_CRS");
	aml__buffer(b, res, crs.pos);
	aml__pkg_end(b, dev);
}

/* Name (\_S5, Package () { SLP_TYPa, SLP_TYPb }): the value written for S5. */
static void acpi_dsdt_s5(struct acpi_buf *b)
{
	size_t pkg;

	aml__name(b, "\\_S5");
	pkg = aml__package_begin(b, 2);
	aml__integer(b, ACPI_SLP_TYP_S5);
	aml__integer(b, ACPI_SLP_TYP_S5);
	aml__pkg_end(b, pkg);
}

/*
 * The CMOS RTC (devices/rtc.c), without an interrupt: a hardware-reduced
 * kernel has no legacy IRQ 8 to give it, and probes the RTC as this PNP
 * device or not at all.
 */
static void acpi_dsdt_rtc(struct acpi_buf *b)
{
	uint8_t res[16];
	struct acpi_buf crs = {.base = res, .size = sizeof(res)};
	size_t dev;

	aml__res_io16(&crs, PORT_CMOS, PORT_CMOS, 1, 2);
	aml__res_end(&crs);

	dev = aml__device_begin(b, "RTC");
	aml__name(b, "_HID");
	aml__eisaid(b, "PNP0B00");
	aml__name(b, "_CRS");
	aml__buffer(b, res, crs.pos);
	aml__pkg_end(b, dev);
}

static size_t acpi_build_dsdt(struct acpi_buf *b, const struct acpi_config *cfg)
{
	size_t off = acpi_table_begin(b, "DSDT", DSDT_REVISION);
	size_t scope = aml__scope_begin(b, "\\_SB");

	acpi_dsdt_cpus(b, cfg->nr_cpus);
	acpi_dsdt_com1(b);
	acpi_dsdt_rtc(b);
	aml__pkg_end(b, scope);
	acpi_dsdt_s5(b);
	acpi_table_end(b, off);
	return off;
}

static void put_gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = 8; /* bit width */
	p[2] = 0; /* bit offset */
	p[3] = GAS_ACCESS_8;
	put_le64(p + 4, port);
}

static size_t acpi_build_fadt(struct acpi_buf *b, uint64_t dsdt, bool low)
{
	size_t off = acpi_table_begin(b, "FACP", FADT_REVISION);
	uint8_t *t;

	if (!acpi_buf__reserve(b, FADT_LEN - HDR_LEN))
		return 0;
	t = b->base + off;
	/* Both DSDT pointers, equal, as Linux warns when they differ. */
	if (low)
		put_le32(t + FADT_DSDT, (uint32_t)dsdt);
	put_le64(t + FADT_X_DSDT, dsdt);
	put_le16(t + FADT_SCI_INT, FADT_SCI_IRQ);
	/* The CMOS RTC is there (devices/rtc.c); no 8042 (the bit is not set). */
	put_le16(t + FADT_IAPC_BOOT_ARCH, IAPC_LEGACY_DEVICES);
	put_le32(t + FADT_FLAGS, FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON |
				     FADT_RESET_REG_SUP | FADT_HW_REDUCED_ACPI);
	put_gas_io8(t + FADT_RESET_REG, PORT_ACPI_RESET);
	t[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
	put_gas_io8(t + FADT_SLEEP_CONTROL, PORT_ACPI_SLEEP_CONTROL);
	put_gas_io8(t + FADT_SLEEP_STATUS, PORT_ACPI_SLEEP_STATUS);
	t[FADT_MINOR_VERSION] = FADT_MINOR;
	acpi_table_end(b, off);
	return off;
}

static void acpi_madt_lapic(struct acpi_buf *b, unsigned int id)
{
	acpi_buf__put_u8(b, MADT_LAPIC);
	acpi_buf__put_u8(b, MADT_LAPIC_LEN);
	acpi_buf__put_u8(b, (uint8_t)id); /* ACPI processor UID */
	acpi_buf__put_u8(b, (uint8_t)id); /* APIC id */
	acpi_buf__put_u32(b, MADT_LAPIC_ENABLED);
}

static void acpi_madt_ioapic(struct acpi_buf *b, uint8_t id, uint32_t addr)
{
	acpi_buf__put_u8(b, MADT_IOAPIC);
	acpi_buf__put_u8(b, MADT_IOAPIC_LEN);
	acpi_buf__put_u8(b, id);
	acpi_buf__put_u8(b, 0);
	acpi_buf__put_u32(b, addr);
	acpi_buf__put_u32(b, 0); /* GSI base */
}

/* An ISA IRQ that reaches another GSI; flags 0: polarity and trigger as the bus. */
static void acpi_madt_iso(struct acpi_buf *b, uint8_t irq, uint32_t gsi)
{
	acpi_buf__put_u8(b, MADT_ISO);
	acpi_buf__put_u8(b, MADT_ISO_LEN);
	acpi_buf__put_u8(b, 0); /* ISA */
	acpi_buf__put_u8(b, irq);
	acpi_buf__put_u32(b, gsi);
	acpi_buf__put_u16(b, 0);
}

/* NMI arrives on LINT1 of every CPU, as on every PC. */
static void acpi_madt_lapic_nmi(struct acpi_buf *b)
{
	acpi_buf__put_u8(b, MADT_LAPIC_NMI);
	acpi_buf__put_u8(b, MADT_LAPIC_NMI_LEN);
	acpi_buf__put_u8(b, MADT_ALL_CPUS);
	acpi_buf__put_u16(b, 0);
	acpi_buf__put_u8(b, 1);
}

static size_t acpi_build_madt(struct acpi_buf *b, const struct acpi_config *cfg)
{
	size_t off = acpi_table_begin(b, "APIC", MADT_REVISION);
	unsigned int i;

	acpi_buf__put_u32(b, (uint32_t)cfg->lapic_gpa);
	acpi_buf__put_u32(b, MADT_PCAT_COMPAT);
	for (i = 0; i < cfg->nr_cpus; i++)
		acpi_madt_lapic(b, i);
	/* The I/O APIC id follows the CPUs' so the two never clash. */
	acpi_madt_ioapic(b, (uint8_t)cfg->nr_cpus, (uint32_t)cfg->ioapic_gpa);
	acpi_madt_iso(b, ISA_PIT_IRQ, ISA_PIT_GSI);
	acpi_madt_lapic_nmi(b);
	acpi_table_end(b, off);
	return off;
}

/* XSDT (64-bit entries) or RSDT (32-bit) over tables[], offsets in b. */
static size_t acpi_build_sdt(struct acpi_buf *b, const struct acpi_config *cfg,
			     const size_t *tables, unsigned int n, bool xsdt)
{
	size_t off = acpi_table_begin(b, xsdt ? "XSDT" : "RSDT", 1);
	unsigned int i;

	for (i = 0; i < n; i++)
		acpi_buf__put_le(b, cfg->gpa + tables[i], xsdt ? 8 : 4);
	acpi_table_end(b, off);
	return off;
}

static void acpi_fill_rsdp(uint8_t *p, uint64_t rsdt, uint64_t xsdt)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + RSDP_OEM_ID, ACPI_OEM_ID, 6);
	p[RSDP_REVISION] = 2;
	put_le32(p + RSDP_RSDT, (uint32_t)rsdt);
	put_le32(p + RSDP_LENGTH, RSDP_LEN);
	put_le64(p + RSDP_XSDT, xsdt);
	p[RSDP_CHECKSUM] = acpi__checksum(p, RSDP_V1_LEN);
	p[RSDP_EXT_CHECKSUM] = acpi__checksum(p, RSDP_LEN);
}

static int acpi_check_config(const struct acpi_config *cfg, struct error *err)
{
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > ACPI_MAX_CPUS)
		return err_set(err, -EINVAL, "acpi: %u vCPUs, the tables take 1 to %u",
			       cfg->nr_cpus, ACPI_MAX_CPUS);
	/* The MADT holds 32-bit addresses. */
	if (cfg->lapic_gpa > UINT32_MAX || cfg->ioapic_gpa > UINT32_MAX)
		return err_set(err, -EINVAL, "acpi: APIC addresses must be below 4 GiB");
	if (cfg->gpa + cfg->size < cfg->gpa)
		return err_set(err, -EINVAL, "acpi: bad table area %#llx+%#llx",
			       (unsigned long long)cfg->gpa, (unsigned long long)cfg->size);
	return 0;
}

int acpi__build(void *buf, const struct acpi_config *cfg, struct error *err)
{
	struct acpi_buf b = {.base = buf, .size = (size_t)cfg->size};
	size_t tables[2], dsdt, rsdt = 0, xsdt;
	uint8_t *rsdp;
	bool low;
	int ret;

	ret = acpi_check_config(cfg, err);
	if (ret)
		return ret;
	/* 32-bit pointers (RSDT, FADT.DSDT) only when every table is below 4 GiB. */
	low = cfg->gpa + cfg->size <= (1ULL << 32);
	rsdp = acpi_buf__reserve(&b, RSDP_LEN);
	dsdt = acpi_build_dsdt(&b, cfg);
	tables[0] = acpi_build_fadt(&b, cfg->gpa + dsdt, low);
	tables[1] = acpi_build_madt(&b, cfg);
	if (low)
		rsdt = acpi_build_sdt(&b, cfg, tables, ARRAY_SIZE(tables), false);
	xsdt = acpi_build_sdt(&b, cfg, tables, ARRAY_SIZE(tables), true);
	if (b.full) {
		/* Leave no half-built tables for a guest to find. */
		memset(buf, 0, b.pos);
		return err_set(err, -ENOSPC, "acpi: the tables do not fit in %llu bytes",
			       (unsigned long long)cfg->size);
	}
	acpi_fill_rsdp(rsdp, low ? cfg->gpa + rsdt : 0, cfg->gpa + xsdt);
	return 0;
}
