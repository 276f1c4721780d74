// SPDX-License-Identifier: GPL-2.0
/* kvmsnap image size|create|info|verify|screen: size, make and inspect snapshot images. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "builtin.h"
#include "layout.h"
#include "pc.h"
#include "snapcfg.h"
#include "snapshot/image.h"
#include "util/util.h"

struct image_opts {
	struct pc_config pc;
	bool have_pc; /* --mem, --vcpus or --vram given */
	uint32_t order;
	bool have_order;
	const char *from_image;
	const char *path;
	bool json, force, deep, ansi;
	uint32_t slots; /* size, create: 1 or 2 */
	uint32_t slot;	/* info, verify, screen: with have_slot */
	bool have_slot;
};

/* What the option tables fill: one image command runs per process. */
static struct image_opts opts;

/* ---- options ---- */

/* The values of --order, in the order of enum snap_order. */
static const char *const orders[] = {"registry", "size", NULL};

#define OPT_IMAGE_ORDER()                                                     \
	OPT_ENUM(0, "order", &opts.order, "ORDER", orders,                    \
		 "section order: registry (default) or size (largest first)", \
		 .seen = &opts.have_order)
#define OPT_IMAGE_JSON() OPT_BOOL(0, "json", &opts.json, "print one JSON object")
#define OPT_IMAGE_SLOTS()                                                                    \
	OPT_UINT(0, "slots", &opts.slots, "N", 1, SNAP_MAX_SLOTS,                            \
		 "1 (default) or 2: with 2, snapshots alternate between two complete sets\n" \
		 "of sections, so that a good snapshot always survives the next one")
#define OPT_IMAGE_SLOT()                                            \
	OPT_UINT(0, "slot", &opts.slot, "N", 0, SNAP_MAX_SLOTS - 1, \
		 "the slot to read (default: the newest complete one)", .seen = &opts.have_slot)

static const struct parse_opt size_options[] = {
    PC_OPTIONS(&opts.pc, &opts.have_pc),
    OPT_IMAGE_ORDER(),
    OPT_IMAGE_SLOTS(),
    OPT_STRING(0, "from-image", &opts.from_image, "IMAGE",
	       "take the regions and vCPUs from an image's VM start section"),
    OPT_IMAGE_JSON(),
    OPT_END(),
};

static const struct parse_opt create_options[] = {
    OPT_ARG("IMAGE", &opts.path),
    PC_OPTIONS(&opts.pc, &opts.have_pc),
    OPT_IMAGE_ORDER(),
    OPT_IMAGE_SLOTS(),
    OPT_BOOL(0, "force", &opts.force,
	     "overwrite an existing file, or a device that carries a file\n"
	     "system or partition table signature"),
    OPT_IMAGE_JSON(),
    OPT_END(),
};

static const struct parse_opt info_options[] = {
    OPT_ARG("IMAGE", &opts.path),
    OPT_IMAGE_SLOT(),
    OPT_IMAGE_JSON(),
    OPT_END(),
};

static const struct parse_opt verify_options[] = {
    OPT_ARG("IMAGE", &opts.path),
    OPT_IMAGE_SLOT(),
    OPT_BOOL(0, "deep", &opts.deep,
	     "also recompute every page digest from the page data and compare\n"
	     "it with the digest tables and the footer (reads the whole slot)"),
    OPT_IMAGE_JSON(),
    OPT_END(),
};

static const struct parse_opt screen_options[] = {
    OPT_ARG("IMAGE", &opts.path),
    OPT_IMAGE_SLOT(),
    OPT_BOOL(0, "ansi", &opts.ansi, "keep the cells' colours (ANSI escape sequences)"),
    OPT_END(),
};

struct subcmd {
	const char *name; /* "size" */
	const char *cmd;  /* "image size", for messages */
	int (*fn)(struct image_opts *o);
	const char *synopsis; /* the usage line(s) */
	const char *text;     /* what the command does, before the options */
	const struct parse_opt *options;
	bool needs_image;
	const char *help; /* one line for `kvmsnap image --help` */
};

static void usage_subcmd(FILE *f, const struct parse_opt *options);

/* 0, 1 after --help, or -EINVAL (reported). */
static int parse(const struct subcmd *c, int argc, char **argv, struct image_opts *o)
{
	struct error err;
	int ret;

	o->pc.ram_size = 256 * MiB;
	o->pc.vram_size = VRAM_DEFAULT;
	o->pc.nr_cpus = 1;
	ret = builtin__parse_options(argc, argv, c->cmd, c->options, usage_subcmd);
	if (ret)
		return ret;
	if (c->needs_image && !o->path) {
		pr_err("image %s: no IMAGE given (see kvmsnap image %s --help)", c->name, c->name);
		return -EINVAL;
	}
	if (o->from_image && o->have_pc) {
		pr_err(
		    "image %s: --from-image takes the VM from the image; drop --mem, --vcpus and "
		    "--vram",
		    c->name);
		return -EINVAL;
	}
	if (o->have_pc && pc__check_config(&o->pc, &err)) {
		pr_err("%s", err.msg);
		return -EINVAL;
	}
	return 0;
}

/* ---- output helpers ---- */

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void jadd(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

static struct json_object *ju64(uint64_t v)
{
	return json_object_new_uint64(v);
}

static const char *human(uint64_t v, char *buf, size_t len)
{
	return snap_size_str(v, buf, len);
}

/* "2024-05-01T12:00:00.123456789Z", or "-" for 0 (never). */
static const char *iso_time(uint64_t ns, char *buf, size_t len)
{
	time_t s = (time_t)(ns / 1000000000ULL);
	struct tm tm;
	char base[32];

	if (!ns || !gmtime_r(&s, &tm)) {
		snprintf(buf, len, "-");
		return buf;
	}
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09uZ", base, (unsigned int)(ns % 1000000000ULL));
	return buf;
}

static struct json_object *jtime(uint64_t ns)
{
	char buf[48];

	return ns ? json_object_new_string(iso_time(ns, buf, sizeof(buf))) : NULL;
}

static const char *uuid_str(const uint8_t u[16], char *buf, size_t len)
{
	snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
	return buf;
}

static const char *hex64(uint64_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64, v);
	return buf;
}

/* Open an image read-only, on the slot --slot names if given. 0 or -errno with *err set. */
static int __open_image(const char *path, struct snap_image *img, struct error *err)
{
	int ret = snap_image_open(path, SNAP_OPEN_RDONLY, NULL, img, err);

	if (!ret && opts.have_slot) {
		ret = snap_image_select_slot(img, opts.slot, false, err);
		if (ret)
			snap_image_close(img);
	}
	return ret;
}

static int open_image(const char *path, struct snap_image *img)
{
	struct error err;

	if (__open_image(path, img, &err)) {
		pr_err("%s", err.msg);
		return -1;
	}
	return 0;
}

/* ---- size ---- */

static void size_line(const char *name, uint64_t v, const char *note)
{
	char h[32], paren[40];

	snprintf(paren, sizeof(paren), "(%s)", human(v, h, sizeof(h)));
	if (note)
		printf("%-18s %15" PRIu64 " bytes  %-12s  %s\n", name, v, paren, note);
	else
		printf("%-18s %15" PRIu64 " bytes  %s\n", name, v, paren);
}

/* One slot: its header, state area, sections and footer. */
static uint64_t slot_span(const struct snap_layout *l)
{
	return (l->image_size - l->start_size) / l->nr_slots;
}

static void size_text(const struct snap_config *cfg, const struct snap_layout *l)
{
	char note[160];
	unsigned int i;
	uint64_t pages = l->total_ram_bytes / SNAP_PAGE_SIZE;

	printf("Image for %s, %u vCPU%s, section order %s, %u slot%s\n", cfg->machine, cfg->vcpus,
	       cfg->vcpus == 1 ? "" : "s", snap_order_name(l->order), l->nr_slots,
	       l->nr_slots == 1 ? "" : "s");
	printf("regions (registry order):\n");
	for (i = 0; i < cfg->nr_regions; i++) {
		char name[40];

		snprintf(name, sizeof(name), "  %s", cfg->regions[i].id);
		snprintf(note, sizeof(note), "%" PRIu64 " pages",
			 (uint64_t)(cfg->regions[i].size / SNAP_PAGE_SIZE));
		size_line(name, cfg->regions[i].size, note);
	}
	size_line("Total_ram_bytes", l->total_ram_bytes, "sum of the region sizes");
	snprintf(note, sizeof(note),
		 "= %" PRIu64 " / 4096 \u00d7 (4096 + 8) = %" PRIu64 " \u00d7 4104",
		 l->total_ram_bytes, pages);
	size_line("TotalRAM", l->total_ram, note);
	size_line("digest tables", l->digest_tables, "8 per page + 8 per 512 pages");
	size_line("slot header", l->header_size, NULL);
	snprintf(note, sizeof(note), "= ALIGN4K(16384 + %u \u00d7 32768)", cfg->vcpus);
	size_line("VM state area", l->state_size, note);
	size_line("footer", l->footer_size, NULL);
	size_line("padding", l->padding, "section descriptors and data-area alignment");
	size_line("slot size", slot_span(l), "each term above, per slot");
	size_line("VM start section", l->start_size, "shared by the slots");
	snprintf(note, sizeof(note), "= 4096 + %u \u00d7 slot", l->nr_slots);
	size_line("image size", l->image_size, note);
}

static struct json_object *regions_json(const struct snap_config *cfg)
{
	struct json_object *a = json_object_new_array();
	unsigned int i;

	for (i = 0; i < cfg->nr_regions; i++) {
		struct json_object *r = json_object_new_object();

		jadd(r, "id", json_object_new_string(cfg->regions[i].id));
		jadd(r, "size", ju64(cfg->regions[i].size));
		jadd(r, "pages", ju64(cfg->regions[i].size / SNAP_PAGE_SIZE));
		json_object_array_add(a, r);
	}
	return a;
}

static struct json_object *sections_json(const struct snap_config *cfg, const struct snap_layout *l)
{
	struct json_object *a = json_object_new_array();
	unsigned int k;

	for (k = 0; k < l->nr_sections; k++) {
		const struct snap_section *s = &l->sections[k];
		struct json_object *o = json_object_new_object();

		jadd(o, "region", json_object_new_string(cfg->regions[s->region].id));
		jadd(o, "region_index", ju64(s->region));
		jadd(o, "section_id", ju64(s->id));
		jadd(o, "offset", ju64(s->offset));
		jadd(o, "size", ju64(s->size));
		jadd(o, "table_offset", ju64(s->table_off));
		jadd(o, "page_digest_offset", ju64(s->hash_off));
		jadd(o, "block_digest_offset", ju64(s->blocks_off));
		jadd(o, "data_offset", ju64(s->data_off));
		jadd(o, "pages", ju64(s->pages));
		json_object_array_add(a, o);
	}
	return a;
}

static void size_json(const struct snap_config *cfg, const struct snap_layout *l)
{
	struct json_object *o = json_object_new_object();

	jadd(o, "machine", json_object_new_string(cfg->machine));
	jadd(o, "vcpus", ju64(cfg->vcpus));
	jadd(o, "mem", ju64(cfg->ram_size));
	jadd(o, "vram", ju64(cfg->vram_size));
	jadd(o, "order", json_object_new_string(snap_order_name(l->order)));
	jadd(o, "regions", regions_json(cfg));
	jadd(o, "total_ram_bytes", ju64(l->total_ram_bytes));
	jadd(o, "total_ram", ju64(l->total_ram));
	jadd(o, "slots", ju64(l->nr_slots));
	jadd(o, "digest_tables", ju64(l->digest_tables));
	jadd(o, "header", ju64(l->header_size));
	jadd(o, "start_section", ju64(l->start_size));
	jadd(o, "state_area", ju64(l->state_size));
	jadd(o, "footer", ju64(l->footer_size));
	jadd(o, "padding", ju64(l->padding));
	jadd(o, "slot_size", ju64(slot_span(l)));
	jadd(o, "image_size", ju64(l->image_size));
	jadd(o, "sections", sections_json(cfg, l));
	print_json(o);
}

static int do_size(struct image_opts *o)
{
	struct snap_config cfg;
	struct snap_layout l;
	struct error err;
	struct snap_image img;
	uint32_t order = o->order, slots = o->slots ? o->slots : 1;

	if (o->from_image) {
		if (open_image(o->from_image, &img))
			return EXIT_FAILED;
		cfg = img.cfg;
		if (!o->have_order)
			order = img.hdr.order;
		snap_image_close(&img);
	} else if (snapcfg__from_pc(&o->pc, &cfg, &err)) {
		pr_err("%s", err.msg);
		return EXIT_FAILED;
	}
	if (snap_layout_compute_slot(&cfg, order, slots, 0, &l, &err)) {
		pr_err("%s", err.msg);
		return EXIT_FAILED;
	}
	if (o->json)
		size_json(&cfg, &l);
	else
		size_text(&cfg, &l);
	return 0;
}

/* ---- create ---- */

static int do_create(struct image_opts *o)
{
	struct snap_target_opts topts = {
	    .order = o->order, .force = o->force, .nr_slots = o->slots ? o->slots : 1};
	struct snap_image img = {0};
	struct snap_config cfg;
	struct error err;
	char h[32], u[40];

	if (snapcfg__from_pc(&o->pc, &cfg, &err)) {
		pr_err("%s", err.msg);
		return EXIT_FAILED;
	}
	if (snap_image_create(o->path, &cfg, &topts, &img, &err)) {
		pr_err("%s", err.msg);
		return EXIT_FAILED;
	}
	uuid_str(img.hdr.uuid, u, sizeof(u));
	if (o->json) {
		struct json_object *j = json_object_new_object();

		jadd(j, "image", json_object_new_string(o->path));
		jadd(j, "target", json_object_new_string(snap_image_kind(&img)));
		jadd(j, "image_size", ju64(img.hdr.image_size));
		jadd(j, "uuid", json_object_new_string(u));
		jadd(j, "order", json_object_new_string(snap_order_name(img.hdr.order)));
		jadd(j, "slots", ju64(img.nr_slots));
		jadd(j, "state", json_object_new_string(snap_state_name(img.hdr.state)));
		print_json(j);
	} else {
		printf("image %s: created on %s %s, %" PRIu64
		       " bytes (%s), uuid %s, order %s, %u slot%s\n",
		       o->path, img.nbd ? "an" : "a", snap_image_kind(&img), img.hdr.image_size,
		       human(img.hdr.image_size, h, sizeof(h)), u, snap_order_name(img.hdr.order),
		       img.nr_slots, img.nr_slots == 1 ? "" : "s");
	}
	snap_image_close(&img);
	return 0;
}

/* ---- info ---- */

/* Metadata is text from the image: show control bytes as '?', keep the lines. */
static void print_metadata(const char *m)
{
	const char *p;

	printf("metadata:\n");
	if (!*m)
		printf("  (none)\n");
	for (p = m; *p;) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p), i;

		printf("  ");
		for (i = 0; i < n; i++)
			putchar((unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i]);
		putchar('\n');
		p += n + (eol ? 1 : 0);
	}
}

static struct json_object *metadata_json(const char *m)
{
	struct json_object *o = json_object_new_object();
	char line[SNAP_METADATA_MAX + 1];
	const char *p;

	for (p = m; *p;) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char *eq;

		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		eq = strchr(line, '=');
		if (eq) {
			*eq = '\0';
			jadd(o, line, json_object_new_string(eq + 1));
		}
		p += n + (eol ? 1 : 0);
	}
	return o;
}

static void info_text(const struct snap_image *img, const struct snap_footer *f)
{
	const struct snap_header *h = &img->hdr;
	const struct snap_config *c = &img->cfg;
	char a[48], b[48];
	unsigned int i;

	printf("image:              %s (%s, %" PRIu64 " bytes)\n", img->path, snap_image_kind(img),
	       img->target_size);
	printf("uuid:               %s\n", uuid_str(h->uuid, a, sizeof(a)));
	printf("format version:     %u\n", h->version);
	printf("created:            %s\n", iso_time(h->created_ns, a, sizeof(a)));
	printf("slots:              %u\n", img->nr_slots);
	for (i = 0; i < img->nr_slots; i++) {
		const struct snap_slot_info *si = &img->slots[i];

		if (!si->ok) {
			printf("  slot %u:           damaged: %s\n", i, si->why);
			continue;
		}
		printf("  slot %u:           %s, generation %" PRIu64 ", completed %s%s\n", i,
		       snap_state_name(si->hdr.state), si->hdr.generation,
		       iso_time(si->hdr.completed_ns, a, sizeof(a)),
		       i == img->slot ? "  (shown below)" : "");
	}
	printf("slot %u:\n", img->slot);
	printf("write id:           %016" PRIx64 "\n", h->write_id);
	printf("state:              %s%s\n", snap_state_name(h->state),
	       h->flags & SNAP_HDR_DATA_ZERO ? " (data reads as zeros)" : "");
	printf("generation:         %" PRIu64 "\n", h->generation);
	printf("snapshot started:   %s\n", iso_time(h->started_ns, a, sizeof(a)));
	printf("snapshot completed: %s\n", iso_time(h->completed_ns, a, sizeof(a)));
	printf("image size:         %" PRIu64 " bytes (%s)\n", h->image_size,
	       human(h->image_size, a, sizeof(a)));
	printf("section order:      %s\n", snap_order_name(h->order));
	printf("machine:            %s\n", c->machine);
	printf("vcpus:              %u\n", c->vcpus);
	printf("mem:                %" PRIu64 " bytes (%s)\n", c->ram_size,
	       human(c->ram_size, a, sizeof(a)));
	printf("vram:               %" PRIu64 " bytes (%s)\n", c->vram_size,
	       human(c->vram_size, a, sizeof(a)));
	printf("VM state area:      offset %" PRIu64 ", %" PRIu64 " bytes, %" PRIu64 " used\n",
	       h->state_off, h->state_size, h->state_used);
	print_metadata(h->metadata);
	printf("sections (image order):\n");
	printf("  %-3s %-14s %6s %14s %14s %14s %14s %10s\n", "id", "region", "index", "offset",
	       "size", "table_offset", "data_offset", "pages");
	for (i = 0; i < img->layout.nr_sections; i++) {
		const struct snap_section *s = &img->layout.sections[i];

		printf("  %-3u %-14s %6u %14" PRIu64 " %14" PRIu64 " %14" PRIu64 " %14" PRIu64
		       " %10" PRIu64 "\n",
		       s->id, c->regions[s->region].id, s->region, s->offset, s->size, s->table_off,
		       s->data_off, s->pages);
	}
	printf("footer:             offset %" PRIu64 "%s\n", h->footer_off,
	       f ? "" : " (no snapshot)");
	if (!f)
		return;
	printf("  final pause:      %s\n", iso_time(f->pause_ns, a, sizeof(a)));
	printf("  passes:           %u\n", f->passes);
	printf("  converged:        %s\n", f->flags & SNAP_FOOTER_CONVERGED ? "yes" : "no");
	printf("  downtime:         %" PRIu64 " us\n", f->downtime_us);
	printf("  total time:       %" PRIu64 " us\n", f->total_us);
	printf("  bytes written:    %" PRIu64 " (%s)\n", f->bytes_written,
	       human(f->bytes_written, b, sizeof(b)));
	printf("  digests (XXH3 page tree):\n");
	for (i = 0; i < f->nr_regions; i++)
		printf("    %-14s %s  %" PRIu64 " bytes\n", c->regions[i].id,
		       hex64(f->digest[i], a, sizeof(a)), f->region_size[i]);
}

static struct json_object *footer_json(const struct snap_config *c, const struct snap_footer *f)
{
	struct json_object *o = json_object_new_object(), *d = json_object_new_array();
	char a[32];
	unsigned int i;

	jadd(o, "generation", ju64(f->generation));
	jadd(o, "pause", jtime(f->pause_ns));
	jadd(o, "pause_ns", ju64(f->pause_ns));
	jadd(o, "passes", ju64(f->passes));
	jadd(o, "converged", json_object_new_boolean(f->flags & SNAP_FOOTER_CONVERGED));
	jadd(o, "downtime_us", ju64(f->downtime_us));
	jadd(o, "total_us", ju64(f->total_us));
	jadd(o, "bytes_written", ju64(f->bytes_written));
	jadd(o, "digest_algorithm", json_object_new_string("xxh3-page-tree"));
	for (i = 0; i < f->nr_regions; i++) {
		struct json_object *r = json_object_new_object();

		jadd(r, "id", json_object_new_string(c->regions[i].id));
		jadd(r, "digest", json_object_new_string(hex64(f->digest[i], a, sizeof(a))));
		jadd(r, "size", ju64(f->region_size[i]));
		json_object_array_add(d, r);
	}
	jadd(o, "digests", d);
	return o;
}

static struct json_object *slots_json(const struct snap_image *img)
{
	struct json_object *a = json_object_new_array();
	char buf[32];
	uint32_t i;

	for (i = 0; i < img->nr_slots; i++) {
		const struct snap_slot_info *si = &img->slots[i];
		struct json_object *o = json_object_new_object();

		jadd(o, "slot", ju64(i));
		jadd(o, "ok", json_object_new_boolean(si->ok));
		if (!si->ok) {
			jadd(o, "error", json_object_new_string(si->why));
		} else {
			jadd(o, "state", json_object_new_string(snap_state_name(si->hdr.state)));
			jadd(o, "generation", ju64(si->hdr.generation));
			jadd(o, "write_id",
			     json_object_new_string(hex64(si->hdr.write_id, buf, sizeof(buf))));
			jadd(o, "completed", jtime(si->hdr.completed_ns));
		}
		json_object_array_add(a, o);
	}
	return a;
}

static void info_json(const struct snap_image *img, const struct snap_footer *f)
{
	const struct snap_header *h = &img->hdr;
	const struct snap_config *c = &img->cfg;
	struct json_object *o = json_object_new_object(), *st = json_object_new_object();
	char a[48];

	jadd(o, "image", json_object_new_string(img->path));
	jadd(o, "target", json_object_new_string(snap_image_kind(img)));
	jadd(o, "target_size", ju64(img->target_size));
	jadd(o, "uuid", json_object_new_string(uuid_str(h->uuid, a, sizeof(a))));
	jadd(o, "version", ju64(h->version));
	jadd(o, "slots", slots_json(img));
	jadd(o, "slot", ju64(img->slot));
	jadd(o, "write_id", json_object_new_string(hex64(h->write_id, a, sizeof(a))));
	jadd(o, "state", json_object_new_string(snap_state_name(h->state)));
	jadd(o, "data_zero", json_object_new_boolean(!!(h->flags & SNAP_HDR_DATA_ZERO)));
	jadd(o, "generation", ju64(h->generation));
	jadd(o, "created", jtime(h->created_ns));
	jadd(o, "started", jtime(h->started_ns));
	jadd(o, "completed", jtime(h->completed_ns));
	jadd(o, "image_size", ju64(h->image_size));
	jadd(o, "order", json_object_new_string(snap_order_name(h->order)));
	jadd(o, "machine", json_object_new_string(c->machine));
	jadd(o, "vcpus", ju64(c->vcpus));
	jadd(o, "mem", ju64(c->ram_size));
	jadd(o, "vram", ju64(c->vram_size));
	jadd(o, "regions", regions_json(c));
	jadd(st, "offset", ju64(h->state_off));
	jadd(st, "size", ju64(h->state_size));
	jadd(st, "used", ju64(h->state_used));
	jadd(o, "state_area", st);
	jadd(o, "metadata", metadata_json(h->metadata));
	jadd(o, "metadata_text", json_object_new_string(h->metadata));
	jadd(o, "sections", sections_json(c, &img->layout));
	jadd(o, "footer_offset", ju64(h->footer_off));
	jadd(o, "footer", f ? footer_json(c, f) : NULL);
	print_json(o);
}

static int do_info(struct image_opts *o)
{
	struct snap_image img;
	struct snap_footer f;
	struct error err;
	bool complete;
	int status = 0;

	if (open_image(o->path, &img))
		return EXIT_FAILED;
	complete = img.hdr.state == SNAP_STATE_COMPLETE;
	if (complete && snap_image_read_footer(&img, &f, &err)) {
		pr_err("%s", err.msg);
		status = EXIT_FAILED;
	}
	if (o->json)
		info_json(&img, complete && !status ? &f : NULL);
	else
		info_text(&img, complete && !status ? &f : NULL);
	snap_image_close(&img);
	return status;
}

/* ---- verify ---- */

static int do_verify(struct image_opts *o)
{
	struct snap_verify_result res = {0};
	struct snap_image img;
	struct error err;
	bool opened;
	int ret;

	ret = __open_image(o->path, &img, &err);
	opened = !ret;
	if (opened)
		ret = snap_image_verify(&img, o->deep, &res, &err);
	if (ret)
		pr_err("%s", err.msg);
	if (o->json) {
		struct json_object *j = json_object_new_object();

		jadd(j, "image", json_object_new_string(o->path));
		jadd(j, "ok", json_object_new_boolean(!ret));
		jadd(j, "error", ret ? json_object_new_string(err.msg) : NULL);
		jadd(j, "state",
		     opened ? json_object_new_string(snap_state_name(img.hdr.state)) : NULL);
		jadd(j, "slot", opened ? ju64(img.slot) : NULL);
		jadd(j, "generation", opened ? ju64(img.hdr.generation) : NULL);
		jadd(j, "complete", json_object_new_boolean(res.complete));
		jadd(j, "pages_checked", ju64(res.pages_checked));
		jadd(j, "bad_page_headers", ju64(res.bad_page_headers));
		jadd(j, "footer_ok", json_object_new_boolean(res.footer_ok));
		jadd(j, "state_ok", json_object_new_boolean(res.state_ok));
		jadd(j, "digests_checked", json_object_new_boolean(res.digests_checked));
		jadd(j, "bad_digests", ju64(res.bad_digests));
		jadd(j, "bad_page_digests", ju64(res.bad_page_digests));
		print_json(j);
	} else if (!ret) {
		char slot[24] = "";

		if (img.nr_slots > 1)
			snprintf(slot, sizeof(slot), "slot %u, ", img.slot);
		printf("image %s: OK (%sgeneration %" PRIu64 ", %s, %" PRIu64 " pages checked%s)\n",
		       o->path, slot, img.hdr.generation, snap_state_name(img.hdr.state),
		       res.pages_checked, res.digests_checked ? ", digests match" : "");
	}
	if (opened)
		snap_image_close(&img);
	return ret ? EXIT_FAILED : 0;
}

/* ---- screen ---- */

/*
 * The 80x25 VGA text screen saved in an image: the text cells are the first
 * 80 x 25 x 2 bytes of vga.vram (character, then attribute), which the guest
 * sees at 0xb8000.
 */
#define SCREEN_COLS  80
#define SCREEN_ROWS  25
#define SCREEN_BYTES (SCREEN_COLS * SCREEN_ROWS * 2)
#define VRAM_REGION  "vga.vram"

/* The character a terminal shows for a cell: CP437 beyond ASCII is not mapped. */
static char cell_char(uint8_t c)
{
	if (c >= 0x20 && c < 0x7f)
		return (char)c;
	return c ? '.' : ' ';
}

/* SGR for a VGA attribute: colour 1 (blue) is ANSI 4, and so on; bit 3 is bright. */
static void sgr(uint8_t attr)
{
	static const char ansi[8] = {0, 4, 2, 6, 1, 5, 3, 7};

	printf("\033[0;%d;%dm", (attr & 8 ? 90 : 30) + ansi[attr & 7], 40 + ansi[(attr >> 4) & 7]);
}

static void print_row(const uint8_t *cells, bool ansi)
{
	char line[SCREEN_COLS + 1];
	int n = SCREEN_COLS, i;
	int last = -1;

	for (i = 0; i < SCREEN_COLS; i++)
		line[i] = cell_char(cells[2 * i]);
	line[SCREEN_COLS] = '\0';
	if (!ansi) {
		while (n > 0 && line[n - 1] == ' ')
			n--;
		printf("%.*s\n", n, line);
		return;
	}
	for (i = 0; i < SCREEN_COLS; i++) {
		if (cells[2 * i + 1] != last)
			sgr(cells[2 * i + 1]);
		last = cells[2 * i + 1];
		putchar(line[i]);
	}
	printf("\033[0m\n");
}

static int read_screen(struct snap_image *img, uint8_t *buf, struct error *err)
{
	const struct snap_section *s = NULL;
	unsigned int i;

	if (img->hdr.state != SNAP_STATE_COMPLETE)
		return err_set(err, -EINVAL, "image %s: state is '%s': it holds no snapshot",
			       img->path, snap_state_name(img->hdr.state));
	for (i = 0; i < img->cfg.nr_regions; i++)
		if (!strcmp(img->cfg.regions[i].id, VRAM_REGION))
			s = snap_layout_section(&img->layout, i);
	if (!s || s->pages * SNAP_PAGE_SIZE < SCREEN_BYTES)
		return err_set(err, -ENOENT, "image %s: no %s region with a text screen", img->path,
			       VRAM_REGION);
	return snap_image_pread(img, buf, SCREEN_BYTES, s->data_off, err);
}

static int do_screen(struct image_opts *o)
{
	uint8_t buf[SCREEN_BYTES];
	struct snap_image img;
	struct error err;
	unsigned int row;
	int ret;

	ret = __open_image(o->path, &img, &err);
	if (!ret) {
		ret = read_screen(&img, buf, &err);
		snap_image_close(&img);
	}
	if (ret) {
		pr_err("%s", err.msg);
		return EXIT_FAILED;
	}
	for (row = 0; row < SCREEN_ROWS; row++)
		print_row(buf + row * SCREEN_COLS * 2, o->ansi);
	return EXIT_OK;
}

/* ---- dispatch ---- */

static const struct subcmd subcmds[] = {
    {"size", "image size", do_size,
     "size [--mem SIZE] [--vcpus N] [--vram SIZE] [--order registry|size]\n"
     "                          [--slots N] [--from-image IMAGE] [--json]",
     "Print the size of a snapshot image for a VM and every term of it: the\n"
     "memory regions, Total_ram_bytes, TotalRAM = Total_ram_bytes / 4096 x (4096 + 8),\n"
     "the digest tables, and per slot the header, VM state area, footer and padding;\n"
     "then the shared VM start section and the total, 4096 + slots x slot size.\n",
     size_options, false, "print the size of an image and every term of it"},
    {"create", "image create", do_create,
     "create IMAGE [--mem SIZE] [--vcpus N] [--vram SIZE]\n"
     "                            [--order registry|size] [--slots N] [--force] [--json]",
     "Create an empty snapshot image for a VM. IMAGE is a new file, preallocated\n"
     "in full and written with zeros once (so that no snapshot pays for first\n"
     "writes to unwritten blocks), a raw block device that is large enough\n"
     "and not in use, or an NBD export (nbd://HOST[:PORT]/EXPORT,\n"
     "nbd+unix:///EXPORT?socket=PATH) that is large enough, writable, flushes,\n"
     "and is blank or already an image, formatted in place.\n",
     create_options, true, "create an empty image on a file, block device or NBD export"},
    {"info", "image info", do_info, "info IMAGE [--slot N] [--json]",
     "Show an image's slots, then one slot's header, platform metadata, sections\n"
     "and, for a complete snapshot, its footer (digests, passes, downtime).\n",
     info_options, true, "show an image's header, sections and footer"},
    {"verify", "image verify", do_verify, "verify IMAGE [--slot N] [--deep] [--json]",
     "Check one slot of an image: structure, state, footer, VM state area and\n"
     "every page header; with --deep every page, block and region digest.\n"
     "Exit status 0 if the slot is sound (complete, or empty), 1 if not.\n",
     verify_options, true, "check an image (--deep: and its digests)"},
    {"screen", "image screen", do_screen, "screen IMAGE [--slot N] [--ansi]",
     "Print the 80x25 VGA text screen saved in a complete image, one line per\n"
     "row. Control and non-ASCII characters show as '.', empty cells as spaces.\n",
     screen_options, true, "print the VGA text screen saved in an image"},
};

/* The --help of the subcommand whose option table is options. */
static void usage_subcmd(FILE *f, const struct parse_opt *options)
{
	const struct subcmd *c = NULL;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(subcmds); i++)
		if (subcmds[i].options == options)
			c = &subcmds[i];
	if (!c)
		return;
	fprintf(f, "usage: kvmsnap image %s\n\n%s\n", c->synopsis, c->text);
	parse_options__usage(f, c->options);
	exit_status__usage(f, EXIT_STATUS_REQUEST);
}

static void usage_image(FILE *f)
{
	unsigned int i;

	fprintf(f, "usage: kvmsnap image COMMAND [ARGS...]\n\n");
	for (i = 0; i < ARRAY_SIZE(subcmds); i++)
		fprintf(f, "  %-9s %s\n", subcmds[i].name, subcmds[i].help);
	fprintf(f, "\n`kvmsnap image COMMAND --help` describes each command.\n");
	exit_status__usage(f, EXIT_STATUS_REQUEST);
}

int cmd_image(int argc, char **argv)
{
	unsigned int i;
	int ret;

	if (argc < 2) {
		usage_image(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage_image(stdout);
		return EXIT_OK;
	}
	for (i = 0; i < ARRAY_SIZE(subcmds); i++) {
		if (strcmp(argv[1], subcmds[i].name))
			continue;
		memset(&opts, 0, sizeof(opts));
		ret = parse(&subcmds[i], argc - 1, argv + 1, &opts);
		if (ret)
			return ret > 0 ? EXIT_OK : EXIT_USAGE;
		return subcmds[i].fn(&opts);
	}
	pr_err("image: '%s' is not an image command (see kvmsnap image --help)", argv[1]);
	return EXIT_USAGE;
}
