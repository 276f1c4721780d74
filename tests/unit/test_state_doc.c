// SPDX-License-Identifier: GPL-2.0
/*
 * Documentation/state-records.md against the codecs' field tables
 * (vmm/state/field.h): every record type the code knows has its section,
 * every field of a table is in the doc at its offset and width, and every
 * field the doc lists is in the table. The bytes are the truth: when this
 * fails after a code change, the doc is what to fix.
 *
 * The doc's tables are read as they are written: "| offset | width | field |"
 * rows under "### NAME (0xTYPE)". An offset "0x10" is from the payload start,
 * "+0x10" is inside the section's repeated element (segment, PIT channel),
 * "0x08 + 16 i" is inside entry i of a variable-size record. A width is
 * u8/bool/u16/u32/u64/s64, a byte count, "K × W", or a letter for the byte
 * area of a variable-size record. A field's name is its text up to the first
 * ':', ',', '(' or '['.
 */
#include "../harness.h"

#include <ctype.h>
#include <limits.h>

#include "vmm/state/field.h"
#include "vmm/state/state.h"

#define DOC	     "Documentation/state-records.md"
#define MAX_SECTIONS 32
#define MAX_ROWS     64

enum row_kind { ROW_ABS, ROW_ELEM, ROW_ENTRY };

struct row {
	enum row_kind kind;
	uint32_t off, stride;	     /* stride: of the entries, for ROW_ENTRY */
	uint32_t width;		     /* bytes; 0 for the variable byte area */
	bool is_bool;		     /* the doc says bool */
	const struct state_field *f; /* the code's field, for expected rows */
	char name[64];
};

struct section {
	uint32_t types[2];
	unsigned int ntypes;
	char size[40]; /* "0x90", "8 + N", "8 + 16 × n" */
	struct row rows[MAX_ROWS];
	unsigned int nrows;
};

struct doc {
	char *text;
	struct section sec[MAX_SECTIONS];
	unsigned int nsec;
	struct row types[MAX_ROWS];   /* the "Record types" table: off = type, name */
	char type_size[MAX_ROWS][40]; /* its "payload bytes" */
	unsigned int ntypes;
	unsigned int unreadable; /* rows of a record section that parse_row() cannot read */
};

/* The doc from the tree root: $KVMSNAP_BUILD/.., the cwd, or three up from this program. */
static char *read_doc(void)
{
	char path[PATH_MAX], exe[PATH_MAX];
	const char *build = getenv("KVMSNAP_BUILD");
	const char *tries[3] = {NULL, DOC, NULL};
	char bpath[PATH_MAX], epath[PATH_MAX];
	ssize_t n;
	unsigned int i;

	if (build) {
		snprintf(bpath, sizeof(bpath), "%s/../%s", build, DOC);
		tries[0] = bpath;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		snprintf(epath, sizeof(epath), "%.*s/../../../%s", (int)(strrchr(exe, '/') - exe),
			 exe, DOC);
		tries[2] = epath;
	}
	for (i = 0; i < 3; i++) {
		FILE *f = tries[i] ? fopen(tries[i], "r") : NULL;
		char *text;
		long len;

		if (!f)
			continue;
		snprintf(path, sizeof(path), "%s", tries[i]);
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		rewind(f);
		text = calloc(1, len + 1);
		if (text && fread(text, 1, len, f) != (size_t)len)
			text[0] = '\0';
		fclose(f);
		return text;
	}
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Split "| a | b | c |" into its cells (in place); the count, or 0 for another line. */
static unsigned int cells(char *line, char **c, unsigned int max)
{
	unsigned int n = 0;
	char *p, *bar;

	if (line[0] != '|')
		return 0;
	for (p = line + 1; n < max && (bar = strchr(p, '|')); p = bar + 1) {
		*bar = '\0';
		c[n++] = trim(p);
	}
	return n;
}

/* Bytes of a width cell, 0 for a letter (the variable area); -1 if unreadable. */
static long parse_width(const char *s, bool *is_bool)
{
	static const struct {
		const char *name;
		long bytes;
	} types[] = {{"u8", 1}, {"bool", 1}, {"u16", 2}, {"u32", 4}, {"u64", 8}, {"s64", 8}};
	const char *times = strstr(s, "×");
	unsigned int i;
	bool dummy;
	char *end;
	long k, w;

	*is_bool = !strcmp(s, "bool");
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(s, types[i].name))
			return types[i].bytes;
	if (times) { /* "K × W" */
		times += strlen("×");
		k = strtol(s, NULL, 0);
		w = parse_width(times + strspn(times, " "), &dummy);
		return k > 0 && w > 0 ? k * w : -1;
	}
	k = strtol(s, &end, 0);
	if (end != s && !*end)
		return k;
	return isalpha((unsigned char)s[0]) && !s[1] ? 0 : -1;
}

/* A "| offset | width | field |" row of a record section; false if it is none. */
static bool parse_row(char **c, struct row *r)
{
	char *end, *name = c[2];
	long w;

	memset(r, 0, sizeof(*r));
	r->kind = c[0][0] == '+' ? ROW_ELEM : ROW_ABS;
	r->off = strtoul(c[0] + (r->kind == ROW_ELEM), &end, 0);
	if (end == c[0] + (r->kind == ROW_ELEM))
		return false;
	end = trim(end);
	if (*end == '+') {
		r->kind = ROW_ENTRY;
		r->stride = strtoul(end + 1, NULL, 0);
	}
	w = parse_width(c[1], &r->is_bool);
	if (w < 0)
		return false;
	r->width = w;
	if (name[0] == '`')
		name++;
	snprintf(r->name, sizeof(r->name), "%.*s", (int)strcspn(name, ":,([`"), name);
	trim(r->name);
	return true;
}

/* "### REGS (0x0101), 0x90 bytes": the types in parentheses and the size text. */
static void parse_heading(const char *h, struct section *x)
{
	const char *p = h, *sz, *end;

	while ((p = strstr(p, "(0x")) && x->ntypes < 2)
		x->types[x->ntypes++] = strtoul(++p, NULL, 16);
	sz = strrchr(h, ')');
	end = sz ? strstr(sz, " bytes") : NULL;
	if (end && !strncmp(sz, "), ", 3))
		snprintf(x->size, sizeof(x->size), "%.*s", (int)(end - sz - 3), sz + 3);
}

static void parse_doc(struct doc *d)
{
	struct section *x = NULL;
	bool in_types = false;
	char *line, *save = NULL, *c[8];
	unsigned int n;

	for (line = strtok_r(d->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "## ", 3)) {
			x = NULL;
			in_types = !strcmp(trim(line + 3), "Record types");
		} else if (!strncmp(line, "### ", 4) && d->nsec < MAX_SECTIONS) {
			x = &d->sec[d->nsec++];
			parse_heading(line + 4, x);
		} else if ((n = cells(line, c, 8)) == 0 || c[0][0] == '-' ||
			   !strcmp(c[0], "offset") || !strcmp(c[0], "type")) {
			continue;
		} else if (in_types && n >= 4 && d->ntypes < MAX_ROWS) {
			d->types[d->ntypes].off = strtoul(c[0], NULL, 16);
			snprintf(d->types[d->ntypes].name, sizeof(d->types[0].name), "%s", c[1]);
			snprintf(d->type_size[d->ntypes++], sizeof(d->type_size[0]), "%s", c[3]);
		} else if (x && n == 3 && x->nrows < MAX_ROWS &&
			   !parse_row(c, &x->rows[x->nrows++])) {
			TH_LOG("%s: cannot read the row \"%s | %s | %s\"", DOC, c[0], c[1], c[2]);
			x->nrows--;
			d->unreadable++;
		}
	}
}

static bool load_doc(struct doc *d)
{
	memset(d, 0, sizeof(*d));
	d->text = read_doc();
	if (!d->text) {
		TH_LOG(
		    "no %s in $KVMSNAP_BUILD/.., the current directory or ../../.. of this program",
		    DOC);
		return false;
	}
	parse_doc(d);
	return true;
}

static const struct section *find_section(const struct doc *d, uint32_t type)
{
	unsigned int i, j;

	for (i = 0; i < d->nsec; i++)
		for (j = 0; j < d->sec[i].ntypes; j++)
			if (d->sec[i].types[j] == type)
				return &d->sec[i];
	return NULL;
}

/*
 * A size as the doc writes it ("0x90", "8 + N", "8 + 16 × n", "8 + area")
 * against the layout: the fixed size, or the head, and the entry stride.
 */
static bool size_matches(const char *s, const struct vm_state_layout *l)
{
	char *end;
	unsigned long a = strtoul(s, &end, 0);

	end += strspn(end, " ");
	if (!*end)
		return !l->entry && !l->tail && a == l->fixed->size;
	if (*end != '+' || a != l->fixed->size)
		return false;
	if (l->entry)
		return strstr(end, "×") && strtoul(end + 1, NULL, 0) == l->entry->size;
	return l->tail && !strstr(end, "×");
}

static void add_row(struct section *x, enum row_kind kind, uint32_t off, uint32_t stride,
		    uint32_t width, const char *a, const char *b, const struct state_field *f)
{
	struct row *r = &x->rows[x->nrows++];

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->off = off;
	r->stride = stride;
	r->width = width;
	r->f = f;
	snprintf(r->name, sizeof(r->name), "%s%s%s", a, b ? " " : "", b ? b : "");
}

/*
 * The rows the doc should have for table t: a one-element nested table
 * (gdt) is spelled out field by field ("gdt base"), a repeated one (the
 * segments) is one row plus its element's rows ("+0x08").
 */
static void expect_table(struct section *x, const struct state_table *t, enum row_kind kind,
			 uint32_t base, uint32_t stride)
{
	const struct state_field *f, *g;

	for (f = t->f; f < t->f + t->n; f++) {
		if (f->kind == SF_TABLE && f->count == 1) {
			for (g = f->sub->f; g < f->sub->f + f->sub->n; g++)
				add_row(x, kind, base + f->off + g->off, stride,
					g->width * g->count,
					g->kind == SF_RESERVED ? g->name : f->name,
					g->kind == SF_RESERVED ? NULL : g->name, g);
			continue;
		}
		add_row(x, kind, base + f->off, stride, f->width * f->count, f->name, NULL, f);
		if (f->kind == SF_TABLE)
			expect_table(x, f->sub, ROW_ELEM, 0, 0);
	}
}

static void expect_layout(struct section *x, const struct vm_state_layout *l)
{
	memset(x, 0, sizeof(*x));
	expect_table(x, l->fixed, ROW_ABS, 0, 0);
	if (l->entry)
		expect_table(x, l->entry, ROW_ENTRY, l->fixed->size, l->entry->size);
	if (l->tail)
		add_row(x, ROW_ABS, l->fixed->size, 0, 0, l->tail, NULL, NULL);
}

static bool same_row(const struct row *a, const struct row *b)
{
	return a->kind == b->kind && a->off == b->off && a->stride == b->stride &&
	       a->width == b->width && !strcmp(a->name, b->name);
}

/* The offset as the doc writes it: "0x10", "+0x10", "0x08 + 16 i". */
static const char *where(const struct row *r, char *buf)
{
	if (r->kind == ROW_ENTRY)
		sprintf(buf, "0x%02x + %u i", r->off, r->stride);
	else
		sprintf(buf, "%s0x%02x", r->kind == ROW_ELEM ? "+" : "", r->off);
	return buf;
}

/* Rows of a that are not in b; for each, one line. The count. */
static unsigned int missing(const char *rec, const struct section *a, const struct section *b,
			    const char *what)
{
	unsigned int i, j, n = 0;
	char at[32];

	for (i = 0; i < a->nrows; i++) {
		for (j = 0; j < b->nrows && !same_row(&a->rows[i], &b->rows[j]); j++)
			;
		if (j < b->nrows)
			continue;
		TH_LOG("%s: %s %s, %u bytes, \"%s\"", rec, what, where(&a->rows[i], at),
		       a->rows[i].width, a->rows[i].name);
		n++;
	}
	return n;
}

/* A doc "bool" is a u8 that the decoder limits to 1. */
static unsigned int bad_bools(const char *rec, const struct section *doc,
			      const struct section *code)
{
	unsigned int i, j, n = 0;

	for (i = 0; i < doc->nrows; i++) {
		for (j = 0; j < code->nrows && !same_row(&doc->rows[i], &code->rows[j]); j++)
			;
		if (j == code->nrows || !doc->rows[i].is_bool)
			continue;
		if (code->rows[j].f->kind != SF_UINT || code->rows[j].f->max != 1) {
			TH_LOG("%s: %s is a bool in the doc, the decoder does not limit it to 1",
			       rec, doc->rows[i].name);
			n++;
		}
	}
	return n;
}

TEST(every_record_type_is_documented)
{
	static struct doc d;
	const struct vm_state_layout *l;
	unsigned int i, j, n;

	ASSERT_TRUE(load_doc(&d));
	l = vm_state__layouts(&n);
	ASSERT_EQ(d.ntypes, n);
	for (i = 0; i < n; i++) {
		for (j = 0; j < d.ntypes && d.types[j].off != l[i].type; j++)
			;
		ASSERT_LT(j, d.ntypes);
		EXPECT_STREQ(d.types[j].name, l[i].name);
		if (!size_matches(d.type_size[j], &l[i])) {
			TH_LOG("%s: payload bytes \"%s\" in the doc", l[i].name, d.type_size[j]);
			_r->failed = 1;
		}
		if (!find_section(&d, l[i].type)) {
			TH_LOG("%s: no section \"### %s (0x%04x)\"", l[i].name, l[i].name,
			       l[i].type);
			_r->failed = 1;
		}
	}
	free(d.text);
}

TEST(doc_fields_match_the_tables)
{
	static struct doc d;
	static struct section want;
	const struct vm_state_layout *l;
	const struct section *x;
	unsigned int i, n, bad = 0;

	ASSERT_TRUE(load_doc(&d));
	l = vm_state__layouts(&n);
	for (i = 0; i < n; i++) {
		x = find_section(&d, l[i].type);
		if (!x)
			continue; /* every_record_type_is_documented says so */
		expect_layout(&want, &l[i]);
		bad += missing(l[i].name, &want, x, "the code has, the doc lacks");
		bad += missing(l[i].name, x, &want, "the doc has, the code lacks");
		bad += bad_bools(l[i].name, x, &want);
		if (!size_matches(x->size, &l[i])) {
			TH_LOG("%s: \"%s bytes\" in the heading", l[i].name, x->size);
			bad++;
		}
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(d.unreadable, 0);
	free(d.text);
}

TEST_HARNESS_MAIN
