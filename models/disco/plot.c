/* plot.c — the toy experiment's figures without Python: a small RGB rasteriser (frames, ticks,
 * dots, clipped and optionally dashed lines) and PNG output through libpng, written atomically:
 * scatter plots coloured by latent code, ODE trajectories of two models side by side, and line
 * plots (W2 against the number of Heun steps with its floor). */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"

#define MARGIN 16           /* pixels between the image edge and a panel's frame */
#define MIN_SIZE 64
#define MAX_SIZE 8192
#define GRID_GAP 2          /* pixels between the images of a grid */
#define DASH 6              /* pixels on, then off, of a dashed line */
#define FRAME_RGB 0x000000u
#define TICK_LEN 4

/* A fixed palette of 10 well-separated colours, label mod 10. */
static const uint32_t palette[10] = {
    0x2f6fb0, 0xe8822a, 0x3a9a3a, 0xc83232, 0x7d55b5,
    0x8a5a3c, 0xd65fae, 0x5f5f5f, 0xa8a820, 0x20a8b8,
};

uint32_t dc_plot_color(int label) { return palette[((label % 10) + 10) % 10]; }

typedef struct {
    int w, h;
    unsigned char *rgb;     /* [h][w][3] */
} canvas;

/* A panel: the pixel box [x0, x1] x [y0, y1] (inside its frame) showing view. */
typedef struct {
    int x0, y0, x1, y1;
    dc_plot_view view;
} panel;

static canvas canvas_new(int w, int h) {
    canvas c = { w, h, malloc((size_t)w * (size_t)h * 3) };
    if (!c.rgb) abort();
    memset(c.rgb, 0xff, (size_t)w * (size_t)h * 3);
    return c;
}

static void put(canvas *c, int x, int y, uint32_t rgb) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    unsigned char *p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = (unsigned char)(rgb >> 16), p[1] = (unsigned char)(rgb >> 8), p[2] = (unsigned char)rgb;
}

/* data -> pixel (y up), as doubles */
static void to_pixel(const panel *p, double x, double y, double *px, double *py) {
    *px = p->x0 + (x - p->view.xmin) / (p->view.xmax - p->view.xmin) * (p->x1 - p->x0);
    *py = p->y1 - (y - p->view.ymin) / (p->view.ymax - p->view.ymin) * (p->y1 - p->y0);
}

/* Liang-Barsky: clips the segment a-b to the panel's pixel box; false if nothing is left. */
static bool clip(const panel *p, double *ax, double *ay, double *bx, double *by) {
    double dx = *bx - *ax, dy = *by - *ay, lo = 0.0, hi = 1.0;
    const double q[4] = { *ax - p->x0, p->x1 - *ax, *ay - p->y0, p->y1 - *ay };
    const double pp[4] = { -dx, dx, -dy, dy };
    for (int k = 0; k < 4; k++) {
        if (pp[k] == 0.0) {
            if (q[k] < 0.0) return false;
            continue;
        }
        double r = q[k] / pp[k];
        if (pp[k] < 0.0) lo = fmax(lo, r);
        else hi = fmin(hi, r);
        if (lo > hi) return false;
    }
    double x0 = *ax, y0 = *ay;
    *ax = x0 + lo * dx, *ay = y0 + lo * dy;
    *bx = x0 + hi * dx, *by = y0 + hi * dy;
    return true;
}

/* Bresenham from (x0,y0) to (x1,y1); with dash != NULL, pixels are drawn only in the "on"
 * half of the running DASH pattern, *dash counting drawn-or-skipped pixels across calls. */
static void line_px(canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb, int *dash) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        if (!dash || (*dash)++ % (2 * DASH) < DASH) put(c, x0, y0, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

/* the data segment a-b, clipped to the panel */
static void segment(canvas *c, const panel *p, double ax, double ay, double bx, double by, uint32_t rgb,
                    int *dash) {
    if (!isfinite(ax) || !isfinite(ay) || !isfinite(bx) || !isfinite(by)) return;
    double pax, pay, pbx, pby;
    to_pixel(p, ax, ay, &pax, &pay);
    to_pixel(p, bx, by, &pbx, &pby);
    if (!clip(p, &pax, &pay, &pbx, &pby)) return;
    line_px(c, (int)lround(pax), (int)lround(pay), (int)lround(pbx), (int)lround(pby), rgb, dash);
}

/* a 3x3 dot at data point (x, y) if it lies in the view */
static void dot(canvas *c, const panel *p, double x, double y, uint32_t rgb) {
    if (!(x >= p->view.xmin && x <= p->view.xmax && y >= p->view.ymin && y <= p->view.ymax)) return;
    double px, py;
    to_pixel(p, x, y, &px, &py);
    int cx = (int)lround(px), cy = (int)lround(py);
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) put(c, cx + dx, cy + dy, rgb);
}

/* a tick mark at v on the x axis (bottom edge) or the y axis (left edge) */
static void tick_at(canvas *c, const panel *p, bool x_axis, double v) {
    double px, py;
    to_pixel(p, x_axis ? v : p->view.xmin, x_axis ? p->view.ymin : v, &px, &py);
    int k = (int)lround(x_axis ? px : py);
    for (int d = 1; d <= TICK_LEN; d++) {
        if (x_axis) put(c, k, p->y1 + 1 - d, FRAME_RGB);
        else put(c, p->x0 - 1 + d, k, FRAME_RGB);
    }
}

/* tick marks at the multiples of `step` inside [lo, hi] along one axis (at most 40) */
static void ticks(canvas *c, const panel *p, bool x_axis, double lo, double hi, double step) {
    if (!(step > 0.0) || (hi - lo) / step > 40.0) return;
    for (double k = ceil(lo / step); k * step <= hi; k += 1.0) tick_at(c, p, x_axis, k * step);
}

/* The panel in the pixel rectangle [left, left+w) x [0, h): frame one pixel outside the box,
 * ticks at the integers of the view. */
static panel panel_at(canvas *c, int left, int w, int h, dc_plot_view view, double tick) {
    panel p = { left + MARGIN + 1, MARGIN + 1, left + w - MARGIN - 2, h - MARGIN - 2, view };
    for (int x = p.x0 - 1; x <= p.x1 + 1; x++) put(c, x, p.y0 - 1, FRAME_RGB), put(c, x, p.y1 + 1, FRAME_RGB);
    for (int y = p.y0 - 1; y <= p.y1 + 1; y++) put(c, p.x0 - 1, y, FRAME_RGB), put(c, p.x1 + 1, y, FRAME_RGB);
    ticks(c, &p, true, view.xmin, view.xmax, tick);
    ticks(c, &p, false, view.ymin, view.ymax, tick);
    return p;
}

/* ---- PNG output ---------------------------------------------------------------------- */

static bool png_fill(FILE *f, void *ctx) {
    const canvas *c = ctx;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) abort();
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        errno = EIO;
        return false;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++) png_write_row(png, c->rgb + (size_t)y * (size_t)c->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return !ferror(f);
}

static bool write_png(const char *path, canvas *c, char *err, size_t len) {
    bool ok = dc_file_write_atomic(path, png_fill, c, err, len);
    free(c->rgb);
    return ok;
}

static bool check_size(const char *what, int w, int h, char *err, size_t len) {
    if (w < MIN_SIZE || h < MIN_SIZE || w > MAX_SIZE || h > MAX_SIZE) {
        snprintf(err, len, "%s: image size %dx%d outside %d..%d", what, w, h, MIN_SIZE, MAX_SIZE);
        return false;
    }
    return true;
}

static bool check_view(const char *what, dc_plot_view v, char *err, size_t len) {
    if (!(v.xmax > v.xmin) || !(v.ymax > v.ymin) || !isfinite(v.xmax - v.xmin) ||
        !isfinite(v.ymax - v.ymin)) {
        snprintf(err, len, "%s: bad view [%g, %g] x [%g, %g]", what, v.xmin, v.xmax, v.ymin, v.ymax);
        return false;
    }
    return true;
}

/* ---- the plots ---------------------------------------------------------------------- */

bool dc_plot_scatter(const char *path, const float *pts, const int32_t *label, int64_t n,
                     dc_plot_view view, int width, int height, char *err, size_t len) {
    if (!check_size("scatter", width, height, err, len) || !check_view("scatter", view, err, len))
        return false;
    if (n < 0 || (n > 0 && !pts)) {
        snprintf(err, len, "scatter: no points (n %lld)", (long long)n);
        return false;
    }
    canvas c = canvas_new(width, height);
    panel p = panel_at(&c, 0, width, height, view, 1.0);
    for (int64_t i = 0; i < n; i++) dot(&c, &p, pts[2 * i], pts[2 * i + 1], dc_plot_color(label ? label[i] : 0));
    return write_png(path, &c, err, len);
}

static bool check_paths(const dc_plot_paths *a, char *err, size_t len) {
    if (!a || a->steps < 1 || a->n < 0 || a->draw < 0 || a->draw > a->n || (a->n > 0 && !a->traj)) {
        snprintf(err, len, "trajectories: need steps >= 1, 0 <= draw <= n and a trajectory");
        return false;
    }
    return true;
}

/* paths 0..draw-1 of a as polylines through x_0..x_N, end points as dots */
static void draw_paths(canvas *c, const panel *p, const dc_plot_paths *a) {
    for (int64_t i = 0; i < a->draw; i++) {
        uint32_t rgb = dc_plot_color(a->label ? a->label[i] : 0);
        for (int s = 0; s < a->steps; s++) {
            const float *u = a->traj + ((size_t)s * (size_t)a->n + (size_t)i) * 2;
            const float *v = u + (size_t)a->n * 2;
            segment(c, p, u[0], u[1], v[0], v[1], rgb, NULL);
        }
        const float *e = a->traj + ((size_t)a->steps * (size_t)a->n + (size_t)i) * 2;
        dot(c, p, e[0], e[1], rgb);
    }
}

bool dc_plot_trajectories(const char *path, const dc_plot_paths *left, const dc_plot_paths *right,
                          dc_plot_view view, int panel_w, int panel_h, char *err, size_t len) {
    if (!check_size("trajectories", panel_w, panel_h, err, len) ||
        !check_size("trajectories", 2 * panel_w, panel_h, err, len) ||
        !check_view("trajectories", view, err, len) || !check_paths(left, err, len) ||
        !check_paths(right, err, len))
        return false;
    canvas c = canvas_new(2 * panel_w, panel_h);
    panel pl = panel_at(&c, 0, panel_w, panel_h, view, 1.0);
    panel pr = panel_at(&c, panel_w, panel_w, panel_h, view, 1.0);
    draw_paths(&c, &pl, left);
    draw_paths(&c, &pr, right);
    return write_png(path, &c, err, len);
}

/* 1, 2 or 5 times a power of ten, giving 4 to 10 ticks over range */
static double nice_step(double range) {
    double base = pow(10.0, floor(log10(range / 4.0))), r = range / base;
    return base * (r >= 20.0 ? 5.0 : r >= 8.0 ? 2.0 : 1.0);
}

/* The view covering every finite point of the series (x through log10 when log_x), padded
 * by 5%, with y starting at 0 when all y are >= 0. */
static bool lines_view(const dc_plot_series *s, int n_series, bool log_x, dc_plot_view *v) {
    *v = (dc_plot_view){ INFINITY, -INFINITY, INFINITY, -INFINITY };
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = log_x ? log10(s[k].x[i]) : s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            v->xmin = fmin(v->xmin, x), v->xmax = fmax(v->xmax, x);
            v->ymin = fmin(v->ymin, y), v->ymax = fmax(v->ymax, y);
        }
    if (!isfinite(v->xmin)) return false;
    if (v->ymin >= 0.0) v->ymin = 0.0;
    if (v->xmax == v->xmin) v->xmin -= 1.0, v->xmax += 1.0;
    if (v->ymax == v->ymin) v->ymax += 1.0;
    double px = 0.05 * (v->xmax - v->xmin), py = 0.05 * (v->ymax - v->ymin);
    v->xmin -= px, v->xmax += px, v->ymax += py;
    if (v->ymin < 0.0) v->ymin -= py;
    return true;
}

bool dc_plot_lines(const char *path, const dc_plot_series *series, int n_series, bool log_x,
                   int width, int height, char *err, size_t len) {
    if (!check_size("lines", width, height, err, len)) return false;
    for (int k = 0; k < n_series; k++)
        if (series[k].n < 0 || (series[k].n > 0 && (!series[k].x || !series[k].y))) {
            snprintf(err, len, "lines: series %d has no data", k);
            return false;
        }
    dc_plot_view view;
    if (n_series < 1 || !series || !lines_view(series, n_series, log_x, &view)) {
        snprintf(err, len, "lines: no finite point to plot%s", log_x ? " (log x needs x > 0)" : "");
        return false;
    }
    canvas c = canvas_new(width, height);
    panel p = panel_at(&c, 0, width, height, view, 0.0);
    ticks(&c, &p, false, view.ymin, view.ymax, nice_step(view.ymax - view.ymin));
    for (int i = 0; i < series[0].n; i++) {
        double x = log_x ? log10(series[0].x[i]) : series[0].x[i];
        if (isfinite(x)) tick_at(&c, &p, true, x);
    }
    for (int k = 0; k < n_series; k++) {
        int dash = 0;
        for (int i = 0; i + 1 < series[k].n; i++) {
            double ax = log_x ? log10(series[k].x[i]) : series[k].x[i];
            double bx = log_x ? log10(series[k].x[i + 1]) : series[k].x[i + 1];
            segment(&c, &p, ax, series[k].y[i], bx, series[k].y[i + 1], series[k].rgb,
                    series[k].dashed ? &dash : NULL);
        }
        for (int i = 0; i < series[k].n && !series[k].dashed; i++)
            dot(&c, &p, log_x ? log10(series[k].x[i]) : series[k].x[i], series[k].y[i], series[k].rgb);
    }
    return write_png(path, &c, err, len);
}

/* ---- image grids ---------------------------------------------------------------------- */

bool dc_plot_image_grid(const char *path, const float *images, int side, int rows, int cols, int scale,
                        char *err, size_t len) {
    if (side < 1 || rows < 1 || cols < 1 || scale < 1 || !images) {
        snprintf(err, len, "image grid: bad layout (side %d, %d x %d, scale %d)", side, rows, cols, scale);
        return false;
    }
    int cell = side * scale + GRID_GAP;
    int64_t w = (int64_t)cols * cell + GRID_GAP, h = (int64_t)rows * cell + GRID_GAP;
    if (w > MAX_SIZE || h > MAX_SIZE) {
        snprintf(err, len, "image grid: %lldx%lld pixels is over %d a side", (long long)w, (long long)h, MAX_SIZE);
        return false;
    }
    canvas c = canvas_new((int)w, (int)h);
    for (int r = 0; r < rows; r++)
        for (int q = 0; q < cols; q++) {
            const float *img = images + ((int64_t)r * cols + q) * side * side;
            for (int y = 0; y < side * scale; y++)
                for (int x = 0; x < side * scale; x++) {
                    float v = img[(y / scale) * side + x / scale];
                    float g = isfinite(v) ? (v + 1.0f) * 127.5f : 0.0f;
                    uint32_t k = (uint32_t)lrintf(g < 0 ? 0 : g > 255 ? 255 : g);
                    put(&c, GRID_GAP + q * cell + x, GRID_GAP + r * cell + y, k << 16 | k << 8 | k);
                }
        }
    return write_png(path, &c, err, len);
}
