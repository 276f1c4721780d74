// SPDX-License-Identifier: GPL-2.0
/*
 * kvmsnap image screen: the 80x25 VGA text screen saved in an image. The
 * text cells are the first 80 x 25 x 2 bytes of vga.vram (character, then
 * attribute), which the guest sees at 0xb8000.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "snapshot/image.h"
#include "util/util.h"

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
		return err_set(err, -ENOENT, "image %s: no %s region with a text screen",
				img->path, VRAM_REGION);
	return snap_image_pread(img, buf, SCREEN_BYTES, s->data_off, err);
}

int image__screen(const char *path, bool ansi)
{
	uint8_t buf[SCREEN_BYTES];
	struct snap_image img;
	struct error err;
	unsigned int row;
	int ret;

	ret = snap_image_open(path, SNAP_OPEN_RDONLY, NULL, &img, &err);
	if (!ret) {
		ret = read_screen(&img, buf, &err);
		snap_image_close(&img);
	}
	if (ret) {
		pr_err("%s", err.msg);
		return 1;
	}
	for (row = 0; row < SCREEN_ROWS; row++)
		print_row(buf + row * SCREEN_COLS * 2, ansi);
	return 0;
}
