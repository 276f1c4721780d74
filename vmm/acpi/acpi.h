/* SPDX-License-Identifier: GPL-2.0 */
/* Generated ACPI tables: RSDP, XSDT, FADT, MADT, DSDT. */
#ifndef KVMSNAP_ACPI_H
#define KVMSNAP_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

struct acpi_config {
	uint64_t gpa;	      /* where buf appears to the guest; the RSDP is at gpa */
	uint64_t size;	      /* bytes available in buf */
	unsigned int nr_cpus; /* one MADT processor entry each */
	uint64_t lapic_gpa;
	uint64_t ioapic_gpa;
};

/*
 * Build the tables into buf (cfg->size bytes, zeroed by the caller), with
 * the RSDP at offset 0 and every pointer a guest-physical address inside
 * [gpa, gpa + size). All checksums valid. 0, -ENOSPC if they do not fit
 * (buf is then left zeroed), or -EINVAL for nr_cpus outside 1..254 or APIC
 * addresses above 4 GiB, with *err naming the cause.
 */
int acpi__build(void *buf, const struct acpi_config *cfg, struct error *err);

/* The byte that makes the sum of len bytes zero, given the rest. */
uint8_t acpi__checksum(const void *p, size_t len);

#endif
