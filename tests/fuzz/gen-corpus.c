// SPDX-License-Identifier: GPL-2.0
/*
 * Write the seed corpora of the fuzz targets into DIR/<target>/ (make
 * fuzz-corpus: tests/fuzz/corpus/). Every seed is made by the real encoders
 * or written field by field below, and checked here with the same function
 * its target calls: a seed that the code refuses is a bug in this file, and
 * the program fails. Blocks whose checksum the target can store itself
 * (first byte bit 7) are cut after their last nonzero byte before the
 * checksum, to keep the corpus small.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "devices/uart.h"
#include "kvm.h"
#include "live-snapshot/begin.h"
#include "loader/loader.h"
#include "pc.h"
#include "snapshot/snapshot.h"
#include "snapshot/state.h"
#include "snapshot/stream.h"
#include "state/state.h"

static const char *top;
static int failures;

static void put(const char *target, const char *name, const void *a, size_t alen, const void *b,
		size_t blen)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", top, target, name);
	f = fopen(path, "w");
	if (!f || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen) ||
	    fclose(f)) {
		fprintf(stderr, "gen-corpus: cannot write %s\n", path);
		exit(1);
	}
}

static void expect(int ret, const char *what, const struct error *err)
{
	if (ret < 0) {
		fprintf(stderr, "gen-corpus: seed %s is refused: %s\n", what, err->msg);
		failures++;
	}
}

/* Bytes up to the last nonzero one before the block checksum. */
static size_t trimmed(const uint8_t *block)
{
	size_t n = 0xff8;

	while (n && !block[n - 1])
		n--;
	return n;
}

static void w16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void w32(uint8_t *p, uint32_t v)
{
	w16(p, (uint16_t)v);
	w16(p + 2, (uint16_t)(v >> 16));
}

static void w64(uint8_t *p, uint64_t v)
{
	w32(p, (uint32_t)v);
	w32(p + 4, (uint32_t)(v >> 32));
}

/* ---- image ---- */

static void add_region(struct snap_config *c, const char *id, uint64_t size)
{
	struct snap_region_desc *r = &c->regions[c->nr_regions++];

	snprintf(r->id, sizeof(r->id), "%s", id);
	r->size = size;
}

static void config(struct snap_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->machine, sizeof(c->machine), "%s", SNAP_MACHINE_PC);
	c->vcpus = 1;
	c->ram_size = 2 << 20;
	c->vram_size = 64 << 10;
	add_region(c, "pc.ram", 2 << 20);
	add_region(c, "vga.vram", 64 << 10);
	add_region(c, "pc.bios", 64 << 10);
}

/*
 * A state area that restore accepts: nr_cpus vCPUs (with XSAVE and XCRS if
 * xsave, else FPU), irqchip, PIT, clock and, if uart, a UART.
 */
static size_t state_area(uint8_t *buf, size_t cap, unsigned int nr_cpus, bool xsave, bool with_uart)
{
	struct snap_state_writer w;
	struct kvm_regs regs = {.rflags = 2};
	struct cpu_sregs sregs = {0};
	struct kvm_fpu fpu = {0};
	struct kvm_lapic_state lapic = {0};
	struct kvm_vcpu_events ev = {0};
	struct kvm_mp_state mp = {0};
	struct kvm_debugregs dr = {0};
	struct cpu_progress prog = {0};
	struct kvm_pic_state pic = {0};
	struct kvm_ioapic_state ioapic = {0};
	struct kvm_pit_state2 pit = {0};
	struct vm_clock clock = {0};
	struct kvm_msr_entry msrs[2] = {{.index = MSR_IA32_TSC_NR, .data = 12345},
					{.index = 0xc0000080, .data = 0x500}};
	struct kvm_xcrs xcrs = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = 7}}};
	uint8_t area[VM_STATE_XSAVE_MIN] = {0};
	struct uart u;
	struct error err;
	size_t used = 0;
	unsigned int c;

	snap_state_init(&w, buf, cap);
	for (c = 0; c < nr_cpus; c++) {
		regs.rip = 0x100000 + c;
		cpu_state__encode_regs(&regs,
				       snap_state_add(&w, VM_STATE_REGS, c, VM_STATE_REGS_SIZE));
		cpu_state__encode_sregs(&sregs,
					snap_state_add(&w, VM_STATE_SREGS, c, VM_STATE_SREGS_SIZE));
		if (xsave) {
			cpu_state__encode_xsave(
			    area, sizeof(area),
			    snap_state_add(&w, VM_STATE_XSAVE, c,
					   cpu_state__xsave_size(sizeof(area))));
			cpu_state__encode_xcrs(&xcrs, snap_state_add(&w, VM_STATE_XCRS, c,
								     cpu_state__xcrs_size(&xcrs)));
		} else {
			cpu_state__encode_fpu(
			    &fpu, snap_state_add(&w, VM_STATE_FPU, c, VM_STATE_FPU_SIZE));
		}
		cpu_state__encode_msrs(
		    msrs, 2, snap_state_add(&w, VM_STATE_MSRS, c, cpu_state__msrs_size(2)));
		cpu_state__encode_lapic(&lapic,
					snap_state_add(&w, VM_STATE_LAPIC, c, VM_STATE_LAPIC_SIZE));
		cpu_state__encode_events(
		    &ev, snap_state_add(&w, VM_STATE_EVENTS, c, VM_STATE_EVENTS_SIZE));
		cpu_state__encode_mp_state(
		    &mp, snap_state_add(&w, VM_STATE_MP_STATE, c, VM_STATE_MP_STATE_SIZE));
		cpu_state__encode_debugregs(
		    &dr, snap_state_add(&w, VM_STATE_DEBUGREGS, c, VM_STATE_DEBUGREGS_SIZE));
		cpu_state__encode_progress(
		    &prog, snap_state_add(&w, VM_STATE_PROGRESS, c, VM_STATE_PROGRESS_SIZE));
	}
	vm_state__encode_pic(&pic, snap_state_add(&w, VM_STATE_PIC_MASTER, 0, VM_STATE_PIC_SIZE));
	vm_state__encode_pic(&pic, snap_state_add(&w, VM_STATE_PIC_SLAVE, 0, VM_STATE_PIC_SIZE));
	vm_state__encode_ioapic(&ioapic,
				snap_state_add(&w, VM_STATE_IOAPIC, 0, VM_STATE_IOAPIC_SIZE));
	vm_state__encode_pit(&pit, snap_state_add(&w, VM_STATE_PIT, 0, VM_STATE_PIT_SIZE));
	vm_state__encode_clock(&clock, snap_state_add(&w, VM_STATE_CLOCK, 0, VM_STATE_CLOCK_SIZE));
	if (with_uart) {
		memset(&u, 0, sizeof(u));
		pthread_mutex_init(&u.lock, NULL);
		u.r.iir = 1;
		u.r.lsr = 0x60;
		uart__save(&u, snap_state_add(&w, VM_STATE_UART, 0, UART_STATE_SIZE));
		pthread_mutex_destroy(&u.lock);
	}
	if (snap_state_finish(&w, &used, &err)) {
		fprintf(stderr, "gen-corpus: state area: %s\n", err.msg);
		exit(1);
	}
	return used;
}

static void gen_image(void)
{
	static uint8_t hdr[SNAP_HEADER_SIZE], start[SNAP_START_SIZE], foot[SNAP_FOOTER_SIZE];
	static uint8_t descs[SNAP_MAX_REGIONS * SNAP_SECTION_DESC], state[16384];
	uint8_t mode;
	struct snap_config cfg, cfg2;
	struct snap_layout l, l1;
	struct snap_header h, h1, h2;
	struct snap_footer f, f2;
	struct error err;
	unsigned int k;
	size_t used;

	config(&cfg);
	expect(snap_layout_compute(&cfg, 0, &l, &err), "layout", &err);
	memset(&h, 0, sizeof(h));
	h.version = SNAP_FORMAT_VERSION;
	memcpy(h.uuid, "fuzz-seed-uuid-0", 16);
	h.state = SNAP_STATE_COMPLETE;
	h.generation = 3;
	h.write_id = 0x5eed5eed5eed5eedULL;
	snap_header_set_layout(&h, &l);
	snap_metadata_build(&cfg, "fuzz", h.metadata, sizeof(h.metadata));
	h.metadata_len = (uint32_t)strlen(h.metadata);
	h.state_used = 0x100;
	snap_header_encode(&h, hdr);
	expect(snap_header_decode(hdr, &h2, &err), "image/header", &err);
	mode = 0x80;
	put("image", "header", &mode, 1, hdr, trimmed(hdr));
	/* Slot 1 of a two-slot image: its own offsets, all absolute. */
	expect(snap_layout_compute_slot(&cfg, 0, 2, 1, &l1, &err), "layout/slot 1", &err);
	h1 = h;
	snap_header_set_layout(&h1, &l1);
	snap_header_encode(&h1, hdr);
	expect(snap_header_decode(hdr, &h2, &err), "image/header-slot1", &err);
	put("image", "header-slot1", &mode, 1, hdr, trimmed(hdr));
	snap_header_encode(&h, hdr);

	snap_start_encode(&cfg, start);
	expect(snap_start_decode(start, &cfg2, &err), "image/start", &err);
	mode = 0x81;
	put("image", "start", &mode, 1, start, trimmed(start));

	memset(&f, 0, sizeof(f));
	f.generation = 3;
	f.write_id = 0x5eed5eed5eed5eedULL;
	f.nr_regions = cfg.nr_regions;
	f.digest_algo = SNAP_DIGEST_XXH3_TREE;
	f.passes = 2;
	f.flags = SNAP_FOOTER_CONVERGED;
	for (k = 0; k < cfg.nr_regions; k++) {
		f.digest[k] = 0x1111111111111111ULL * (k + 1);
		f.region_size[k] = cfg.regions[k].size;
	}
	snap_footer_encode(&f, foot);
	expect(snap_footer_decode(foot, &f2, &err), "image/footer", &err);
	mode = 0x82;
	put("image", "footer", &mode, 1, foot, trimmed(foot));

	for (k = 0; k < l.nr_sections; k++) {
		const struct snap_section *s = &l.sections[k];

		snap_section_desc_encode(s, &cfg.regions[s->region], descs + k * SNAP_SECTION_DESC);
		expect(snap_section_desc_check(descs + k * SNAP_SECTION_DESC, s,
					       &cfg.regions[s->region], &err),
		       "image/sections", &err);
	}
	{
		static uint8_t all[1 + 2 * 4096 + sizeof(descs)];
		size_t n = 0;

		all[n++] = 0x83;
		memcpy(all + n, hdr, sizeof(hdr));
		n += sizeof(hdr);
		memcpy(all + n, start, sizeof(start));
		n += sizeof(start);
		memcpy(all + n, descs, l.nr_sections * SNAP_SECTION_DESC);
		n += l.nr_sections * SNAP_SECTION_DESC;
		put("image", "sections", all, n, NULL, 0);
	}

	used = state_area(state, sizeof(state), 1, false, true);
	{
		struct snap_state_reader r;
		struct snap_state_record rec;
		int ret;

		ret = snap_state_open(&r, state, used, &err);
		while (!ret && (ret = snap_state_next(&r, &rec, &err)) > 0)
			ret = 0;
		expect(ret, "image/state", &err);
	}
	mode = 0x04;
	put("image", "state", &mode, 1, state, used);
}

static void gen_vm_state(void)
{
	static uint8_t state[65536];
	struct error err;
	uint8_t vm;
	size_t used;

	used = state_area(state, sizeof(state), 1, false, true);
	expect(vm_state__check(state, used, 1, true, &err), "vm_state/one-cpu-uart", &err);
	vm = 0x04; /* one vCPU, a UART; the checksum as it is */
	put("vm_state", "one-cpu-uart", &vm, 1, state, used);
	used = state_area(state, sizeof(state), 2, true, false);
	expect(vm_state__check(state, used, 2, false, &err), "vm_state/two-cpus-xsave", &err);
	vm = 0x01; /* two vCPUs, no UART */
	put("vm_state", "two-cpus-xsave", &vm, 1, state, used);
}

/* ---- begin ---- */

static void gen_begin(void)
{
	uint64_t state_cap = snap_state_area_size(1), state_off = 4096;
	struct snapshot_fd_info fds[3];
	struct snapshot_begin *out = malloc(sizeof(*out));
	struct json_object *o;
	uint8_t head[1 + SNAP_MAX_REGIONS + 2];
	char reply[1024];
	struct error err;
	unsigned int i;

	snprintf(reply, sizeof(reply),
		 "{\"ok\":true,\"machine\":\"%s\",\"metadata\":\"machine=%s\\nvcpus=1\\n\","
		 "\"vcpus\":1,\"mem\":%u,\"vram\":%u,\"shm_size\":%llu,\"state_off\":%llu,"
		 "\"state_cap\":%llu,\"regions\":["
		 "{\"id\":\"pc.ram\",\"size\":%u,\"bitmap_off\":0},"
		 "{\"id\":\"vga.vram\",\"size\":%u,\"bitmap_off\":64}]}",
		 SNAP_MACHINE_PC, SNAP_MACHINE_PC, 2 << 20, 64 << 10,
		 (unsigned long long)(state_off + state_cap), (unsigned long long)state_off,
		 (unsigned long long)state_cap, 2 << 20, 64 << 10);
	memset(head, 0, sizeof(head));
	head[0] = 3;
	head[1] = 5 << 3 | 3;  /* shared area: 64 KiB, regular, sealed */
	head[2] = 10 << 3 | 3; /* pc.ram: 2 MiB */
	head[3] = 5 << 3 | 3;  /* vga.vram: 64 KiB */
	for (i = 0; i < 3; i++) {
		uint8_t n = head[1 + i] >> 3;

		fds[i] = (struct snapshot_fd_info){
		    .regular = true, .size_sealed = true, .size = 1ULL << (11 + n)};
	}
	o = json_tokener_parse(reply);
	if (!o || !out)
		exit(1);
	expect(snapshot_begin__check(o, fds, 3, out, &err), "begin/reply", &err);
	json_object_put(o);
	free(out);
	put("begin", "reply", head, sizeof(head), reply, strlen(reply));
	head[0] = 2;
	put("begin", "too-few-fds", head, sizeof(head), reply, strlen(reply));
}

/* ---- control ---- */

static void gen_control(void)
{
	static const char *const lines[][2] = {
	    {"status", "{\"cmd\":\"status\"}"},
	    {"digest", "{\"cmd\":\"digest\"}"},
	    {"stats", "{\"cmd\":\"stats\"}"},
	    {"pause", "{\"cmd\":\"pause\"}"},
	    {"resume", "{\"cmd\":\"resume\"}"},
	    {"quit", "{\"cmd\":\"quit\"}"},
	    {"dirty-log-on", "{\"cmd\":\"dirty-log\",\"enable\":true}"},
	    {"dirty-log-off", "{\"cmd\":\"dirty-log\",\"enable\":false}"},
	    {"unknown", "{\"cmd\":\"snapshot-begin\",\"extra\":[1,2.5,null,\"x\"]}"},
	    {"not-an-object", "[\"status\"]"},
	};
	unsigned int i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		put("control", lines[i][0], lines[i][1], strlen(lines[i][1]), NULL, 0);
}

/* ---- loader ---- */

#define TEXT_GPA 0x100000u
#define MB_MAGIC 0x1badb002u

static void put_mb_header(uint8_t *p, uint32_t flags)
{
	w32(p, MB_MAGIC);
	w32(p + 4, flags);
	w32(p + 8, -(MB_MAGIC + flags));
}

static void load(const char *name, const uint8_t *img, size_t len)
{
	struct pc_config cfg = {.ram_size = 16 << 20, .vram_size = 64 << 10, .nr_cpus = 1};
	struct kernel_args args = {.path = name};
	struct mem_registry reg;
	struct boot_state boot;
	struct error err;

	mem__init(&reg);
	if (pc__setup_memory(&reg, &cfg, &err))
		expect(-1, "loader memory", &err);
	else
		expect(loader__load_image(&reg, &args, img, len, &boot, &err), name, &err);
	mem__exit(&reg);
	put("loader", name, img, len, NULL, 0);
}

static void gen_loader(void)
{
	uint8_t img[0x200];
	unsigned int i;

	/* ELF64: one PT_LOAD of text at 1 MiB + 0x100 (file offset 0x100), entered there. */
	memset(img, 0, sizeof(img));
	memcpy(img, "\177ELF", 4);
	img[4] = 2; /* ELFCLASS64 */
	img[5] = 1;
	img[6] = 1;
	w16(img + 16, 2);  /* ET_EXEC */
	w16(img + 18, 62); /* EM_X86_64 */
	w32(img + 20, 1);
	w64(img + 24, TEXT_GPA + 0x100);
	w64(img + 32, 64); /* e_phoff */
	w16(img + 52, 64);
	w16(img + 54, 56);
	w16(img + 56, 1);
	w32(img + 64, 1);     /* PT_LOAD */
	w32(img + 68, 5);     /* R X */
	w64(img + 72, 0x100); /* p_offset */
	w64(img + 80, TEXT_GPA + 0x100);
	w64(img + 88, TEXT_GPA + 0x100);
	w64(img + 96, 0x100);	/* p_filesz */
	w64(img + 104, 0x1000); /* p_memsz */
	w64(img + 112, 0x100);
	for (i = 0x100; i < 0x200; i++)
		img[i] = 0xf4; /* hlt */
	load("elf64", img, sizeof(img));

	/* Multiboot ELF32: the same, 32-bit, with the Multiboot header at the start of the text. */
	memset(img, 0, sizeof(img));
	memcpy(img, "\177ELF", 4);
	img[4] = 1; /* ELFCLASS32 */
	img[5] = 1;
	img[6] = 1;
	w16(img + 16, 2); /* ET_EXEC */
	w16(img + 18, 3); /* EM_386 */
	w32(img + 20, 1);
	w32(img + 24, TEXT_GPA + 0x10c);
	w32(img + 28, 52); /* e_phoff */
	w16(img + 40, 52);
	w16(img + 42, 32);
	w16(img + 44, 1);
	w32(img + 52, 1);     /* PT_LOAD */
	w32(img + 56, 0x100); /* p_offset */
	w32(img + 60, TEXT_GPA + 0x100);
	w32(img + 64, TEXT_GPA + 0x100);
	w32(img + 68, 0x100);  /* p_filesz */
	w32(img + 72, 0x1000); /* p_memsz */
	w32(img + 76, 5);
	w32(img + 80, 0x100);
	for (i = 0x100; i < 0x200; i++)
		img[i] = 0xf4;
	put_mb_header(img + 0x100, 0x3); /* page-aligned modules, memory information */
	load("multiboot-elf32", img, sizeof(img));

	/* Multiboot a.out kludge: the file at 1 MiB, header at 0x10, some bss. */
	for (i = 0; i < sizeof(img); i++)
		img[i] = 0xf4;
	put_mb_header(img + 0x10, 0x10003);
	w32(img + 0x10 + 12, TEXT_GPA + 0x10);	      /* header_addr */
	w32(img + 0x10 + 16, TEXT_GPA);		      /* load_addr */
	w32(img + 0x10 + 20, TEXT_GPA + sizeof(img)); /* load_end_addr */
	w32(img + 0x10 + 24, TEXT_GPA + 0x2000);      /* bss_end_addr */
	w32(img + 0x10 + 28, TEXT_GPA + 0x40);	      /* entry_addr */
	load("multiboot-aout", img, sizeof(img));
}

/* A whole small stream: PASS, one page, a state, END. */
static void gen_stream(void)
{
	static uint8_t buf[SNAP_REC_SIZE * 4 + 4096 + 64 + SNAP_REC_END_SIZE];
	struct snap_rec recs[] = {{SNAP_REC_PASS, 0, 1, 0},
				  {SNAP_REC_PAGES, 1, 18, 1},
				  {SNAP_REC_STATE, 0, 0, 64},
				  {SNAP_REC_END, 0, 0, 0}};
	struct snap_report rep = {
	    .nr_passes = 2, .converged = true, .stop_reason = "dirty set below threshold"};
	size_t n = 0;

	snap_rec_encode(&recs[0], buf + n);
	n += SNAP_REC_SIZE;
	snap_rec_encode(&recs[1], buf + n);
	n += SNAP_REC_SIZE + 4096;
	snap_rec_encode(&recs[2], buf + n);
	n += SNAP_REC_SIZE + 64;
	snap_rec_encode(&recs[3], buf + n);
	n += SNAP_REC_SIZE;
	snap_rec_end_encode(&rep, buf + n);
	n += SNAP_REC_END_SIZE;
	put("stream", "whole", buf, n, NULL, 0);
	put("stream", "pages-only", buf, 2 * SNAP_REC_SIZE + 4096, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-corpus DIR\n");
		return 2;
	}
	top = argv[1];
	mkdir(top, 0755);
	gen_image();
	gen_vm_state();
	gen_begin();
	gen_control();
	gen_loader();
	gen_stream();
	return failures ? 1 : 0;
}
