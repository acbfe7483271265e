/* test_plot.c — the PNG plots of models/disco/plot.c, read back with libpng: image sizes,
 * background, frame, dots in their label's colour where the documented mapping puts them,
 * clipped trajectory lines, solid and dashed series; bad arguments are errors, not crashes.
 * Files live in a mkdtemp directory that is removed at the end. */
#include "tests/test.h"

#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "models/disco/disco.h"

typedef struct {
    int w, h;
    unsigned char *rgb;
} image;

/* Reads an 8-bit RGB PNG; rgb NULL if it cannot. */
static image read_png(const char *path) {
    image im = { 0, 0, NULL };
    png_image p;
    memset(&p, 0, sizeof p);
    p.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&p, path)) return im;
    p.format = PNG_FORMAT_RGB;
    im.rgb = malloc(PNG_IMAGE_SIZE(p));
    if (!png_image_finish_read(&p, NULL, im.rgb, 0, NULL)) {
        free(im.rgb);
        im.rgb = NULL;
        return im;
    }
    im.w = (int)p.width, im.h = (int)p.height;
    return im;
}

static uint32_t pixel(const image *im, int x, int y) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return 0xdeadbeef;
    const unsigned char *q = im->rgb + ((size_t)y * im->w + x) * 3;
    return (uint32_t)q[0] << 16 | (uint32_t)q[1] << 8 | q[2];
}

/* The documented mapping: the box [17, left+w-18] x [17, h-18] holds the view, y up. */
static void where(int left, int w, int h, dc_plot_view v, double x, double y, int *px, int *py) {
    double x0 = left + 17, x1 = left + w - 18, y0 = 17, y1 = h - 18;
    *px = (int)floor(x0 + (x - v.xmin) / (v.xmax - v.xmin) * (x1 - x0));
    *py = (int)floor(y1 - (y - v.ymin) / (v.ymax - v.ymin) * (y1 - y0));
}

static void tmp_path(char *dir, char *path, size_t len, const char *name) {
    snprintf(path, len, "%s/%s", dir, name);
}

TEST(plot_scatter_png) {
    char dir[64] = "/tmp/disco_plot_XXXXXX", path[128], err[256] = "";
    CHECK(mkdtemp(dir) != NULL);
    tmp_path(dir, path, sizeof path, "scatter.png");
    const dc_plot_view v = { -4, 4, -4, 4 };
    const float pts[6] = { 0.0f, 0.0f, 2.0f, -2.0f, 10.0f, 0.0f /* outside: not drawn */ };
    const int32_t label[3] = { 3, 12, 5 };
    CHECK_MSG(dc_plot_scatter(path, pts, label, 3, v, 201, 161, err, sizeof err), "%s", err);
    image im = read_png(path);
    CHECK(im.rgb != NULL);
    if (im.rgb) {
        CHECK_EQ_INT(im.w, 201);
        CHECK_EQ_INT(im.h, 161);
        CHECK_EQ_INT(pixel(&im, 0, 0), 0xffffff);       /* background */
        CHECK_EQ_INT(pixel(&im, 16, 60), 0x000000);     /* left frame */
        CHECK_EQ_INT(pixel(&im, 60, 144), 0x000000);    /* bottom frame */
        int px, py;
        where(0, 201, 161, v, 0, 0, &px, &py);
        CHECK_EQ_INT(pixel(&im, px, py), dc_plot_color(3));
        where(0, 201, 161, v, 2, -2, &px, &py);
        CHECK_EQ_INT(pixel(&im, px, py), dc_plot_color(2));      /* 12 mod 10 */
        CHECK_EQ_INT(dc_plot_color(12), dc_plot_color(2));
        CHECK(dc_plot_color(-1) == dc_plot_color(9));
        /* nothing of colour 5 anywhere */
        int found = 0;
        for (int y = 0; y < im.h; y++)
            for (int x = 0; x < im.w; x++) found += pixel(&im, x, y) == dc_plot_color(5);
        CHECK_EQ_INT(found, 0);
        free(im.rgb);
    }
    /* errors: nothing written */
    tmp_path(dir, path, sizeof path, "bad.png");
    CHECK(!dc_plot_scatter(path, pts, label, 3, v, 10, 161, err, sizeof err));
    CHECK(strstr(err, "image size") != NULL);
    CHECK(!dc_plot_scatter(path, pts, label, 3, (dc_plot_view){ 1, 1, 0, 2 }, 201, 161, err, sizeof err));
    CHECK(strstr(err, "bad view") != NULL);
    CHECK(!dc_plot_scatter(path, NULL, NULL, 3, v, 201, 161, err, sizeof err));
    CHECK(access(path, F_OK) != 0);
    CHECK(!dc_plot_scatter("/nonexistent_dir/x.png", pts, label, 3, v, 201, 161, err, sizeof err));
    CHECK(strstr(err, "cannot") != NULL);
    tmp_path(dir, path, sizeof path, "scatter.png");
    unlink(path);
    rmdir(dir);
}

TEST(plot_trajectories_png) {
    char dir[64] = "/tmp/disco_plot_XXXXXX", path[128], err[256] = "";
    CHECK(mkdtemp(dir) != NULL);
    tmp_path(dir, path, sizeof path, "traj.png");
    const dc_plot_view v = { -4, 4, -4, 4 };
    /* left: path 0 along y = 1 from x = -3 to 3 (label 1); path 1 not drawn (draw = 1).
     * right: a path from (80, 80) (clipped) to (0, -2), label 4. traj [steps+1][n][2] */
    const float tl[3 * 2 * 2] = { -3, 1, 0, 0, 0, 1, 0, 0, 3, 1, 0, 0 };
    const int32_t ll[2] = { 1, 6 };
    const float tr[2 * 1 * 2] = { 80, 80, 0, -2 };
    const int32_t lr[1] = { 4 };
    dc_plot_paths left = { tl, 2, 2, 1, ll }, right = { tr, 1, 1, 1, lr };
    CHECK_MSG(dc_plot_trajectories(path, &left, &right, v, 121, 121, err, sizeof err), "%s", err);
    image im = read_png(path);
    CHECK(im.rgb != NULL);
    if (im.rgb) {
        CHECK_EQ_INT(im.w, 242);
        CHECK_EQ_INT(im.h, 121);
        int px, py, found6 = 0;
        for (double x = -2.5; x <= 2.5; x += 0.5) {
            where(0, 121, 121, v, x, 1, &px, &py);
            /* the line is at the rounded row; accept the row or the one below */
            CHECK(pixel(&im, px, py) == dc_plot_color(1) || pixel(&im, px, py + 1) == dc_plot_color(1));
        }
        for (int y = 0; y < im.h; y++)
            for (int x = 0; x < im.w; x++) found6 += pixel(&im, x, y) == dc_plot_color(6);
        CHECK_EQ_INT(found6, 0);
        /* the right panel's end point (0, -2) is a dot of colour 4, and the clipped line
         * (slope 82/80) leaves the view through its right edge x = 4 */
        where(121, 121, 121, v, 0, -2, &px, &py);
        CHECK_EQ_INT(pixel(&im, px, py), dc_plot_color(4));
        int top = 0;
        for (int y = 0; y < 121; y++) top += pixel(&im, 121 + 121 - 18, y) == dc_plot_color(4);
        CHECK(top >= 1);
        /* the left panel has no colour 4 */
        int left4 = 0;
        for (int y = 0; y < im.h; y++)
            for (int x = 0; x < 121; x++) left4 += pixel(&im, x, y) == dc_plot_color(4);
        CHECK_EQ_INT(left4, 0);
        free(im.rgb);
    }
    dc_plot_paths bad = { tl, 2, 2, 3, ll };   /* draw > n */
    CHECK(!dc_plot_trajectories(path, &bad, &right, v, 121, 121, err, sizeof err));
    CHECK(strstr(err, "draw") != NULL);
    unlink(path);
    rmdir(dir);
}

TEST(plot_lines_png) {
    char dir[64] = "/tmp/disco_plot_XXXXXX", path[128], err[256] = "";
    CHECK(mkdtemp(dir) != NULL);
    tmp_path(dir, path, sizeof path, "lines.png");
    const double steps[4] = { 5, 10, 20, 50 };
    const double w2[4] = { 2.0, 2.0, 2.0, 2.0 }, floor_x[2] = { 5, 50 }, floor_y[2] = { 1.0, 1.0 };
    const dc_plot_series s[2] = {
        { steps, w2, 4, 0x2040c0, false },
        { floor_x, floor_y, 2, 0x808080, true },
    };
    CHECK_MSG(dc_plot_lines(path, s, 2, true, 300, 200, err, sizeof err), "%s", err);
    image im = read_png(path);
    CHECK(im.rgb != NULL);
    if (im.rgb) {
        CHECK_EQ_INT(im.w, 300);
        CHECK_EQ_INT(im.h, 200);
        /* view: x log10 5 .. log10 50 padded by 5%, y 0 .. 2 padded by 5% at the top */
        dc_plot_view v = { log10(5.0) - 0.05, log10(50.0) + 0.05, 0, 2.1 };
        int px, py, solid = 0, on = 0, off = 0, n = 0;
        where(0, 300, 200, v, log10(5.0), 2.0, &px, &py);
        int row2 = py, row1;
        where(0, 300, 200, v, log10(5.0), 1.0, &px, &row1);
        int x_end;
        where(0, 300, 200, v, log10(50.0), 1.0, &x_end, &py);
        for (int x = px + 2; x < x_end - 2; x++, n++) {
            solid += pixel(&im, x, row2) == 0x2040c0 || pixel(&im, x, row2 + 1) == 0x2040c0;
            bool dash = pixel(&im, x, row1) == 0x808080 || pixel(&im, x, row1 + 1) == 0x808080;
            on += dash, off += !dash;
        }
        CHECK_EQ_INT(solid, n);
        /* 6 on, 6 off */
        CHECK(on > n / 3 && off > n / 3);
        free(im.rgb);
    }
    const double bad_x[2] = { -1, 0 };
    const dc_plot_series b = { bad_x, floor_y, 2, 0, false };
    CHECK(!dc_plot_lines(path, &b, 1, true, 300, 200, err, sizeof err));
    CHECK(strstr(err, "no finite point") != NULL);
    unlink(path);
    rmdir(dir);
}
