/* hc_main.c — main of every generated program: reads PNG/NPY, runs the model (tiling large images), writes PNG/NPY. */
/*
 * usage: PROGRAM INPUT OUTPUT [--threads N] [--repeat N] [--profile] [--json FILE] [--trace FILE] [--recalibrate]
 *                              [--overlap N] [--weights FILE]
 *
 * INPUT and OUTPUT are .png or .npy (case-insensitive).  Image models (info.image = 1) take planar float
 * images in [0,1]; images larger than the compiled maximum are cut into overlapping tiles whose seams are
 * blended with linear ramps.  Tensor models (info.image = 0, kernel tests) take exactly in_shape as .npy.
 *
 * Exit codes: 0 ok, 2 usage error, 3 I/O error (file, format, channels, shape), 4 model error, 5 this CPU lacks
 * the instruction set the program was built for (x86 targets: checked before main, with a message naming it).
 *
 * Compiled with -DHC_WRAP_TEST and linked with hc_wrap_test.c (and -Wl,--wrap=...), the program counts
 * malloc/calloc/realloc/pthread_create/fopen calls made inside model_run and fails with exit 4 if any.
 */
#define _POSIX_C_SOURCE 200809L

#include "model.h"

#include <png.h>

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HC_WRAP_TEST
void hc_wrap_arm(int on);
int hc_wrap_calls(void);
#endif

enum { EXIT_USAGE = 2, EXIT_IO = 3, EXIT_MODEL = 4, EXIT_CPU = 5 };
enum { KIND_PNG = 1, KIND_NPY = 2 };

#define MAX_ELEMENTS ((size_t)1 << 36) /* refuse arrays above 256 GiB of floats before allocating */

static const char *g_prog = "model";

#if defined(__x86_64__) && (defined(HC_TARGET_AVX512) || defined(HC_TARGET_AVX2))
/* Before main (whose code may already use the target's registers): a clear error instead of SIGILL when the CPU
 * lacks an extension the program was built for.  Nothing here is vectorisable, so it runs on any x86-64. */
__attribute__((constructor)) static void hc_check_cpu(void)
{
    __builtin_cpu_init();
#if defined(HC_TARGET_AVX512)
    const char *need = "AVX-512 F/DQ/VL and FMA (target x86-64-avx512; build with --target x86-64-avx2 instead)";
    const int ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    const char *need = "AVX2 and FMA (target x86-64-avx2; build with --target generic instead)";
    const int ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    if (!ok) {
        fprintf(stderr, "error: this CPU lacks %s\n", need);
        exit(EXIT_CPU);
    }
}
#endif

/* ------------------------------------------------------------------ small helpers */

static void usage_line(FILE *f)
{
    fprintf(f, "usage: %s INPUT OUTPUT [--threads N] [--repeat N] [--profile] [--json FILE] [--trace FILE.json]\n"
               "       [--recalibrate] [--overlap N] [--weights FILE]\n"
               "  --profile      print per kernel: time, GFLOP/s, GB/s, fraction of the roofline, compute/memory bound\n"
               "  --json FILE    also write that table as JSON (implies --profile)\n"
               "  --trace FILE   write a Chrome trace, one slice per kernel per thread (implies --profile)\n"
               "  --recalibrate  measure the machine's peaks again (also HC_RECALIBRATE=1); they are cached in\n"
               "                 $HC_CALIBRATION_DIR or ~/.cache/hybridc\n",
            g_prog);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    usage_line(stderr);
    return EXIT_USAGE;
}

static int lower_ascii(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m) return 0;
    for (size_t i = 0; i < m; i++)
        if (lower_ascii((unsigned char)s[n - m + i]) != lower_ascii((unsigned char)suffix[i])) return 0;
    return 1;
}

static int file_kind(const char *path)
{
    if (ends_with_ci(path, ".png")) return KIND_PNG;
    if (ends_with_ci(path, ".npy")) return KIND_NPY;
    return 0;
}

/* Strict decimal integer in [lo, hi]; returns 0 on success. */
static int parse_int(const char *s, long lo, long hi, int *out)
{
    if (s == NULL || *s == '\0') return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* a * b into *r, 0 on success, -1 on size_t overflow. */
static int mul_size(size_t a, size_t b, size_t *r)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *r = a * b;
    return 0;
}

/* Deletes a partly written output, but only a regular file (never e.g. /dev/full or a device node). */
static void remove_partial(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) remove(path);
}

static void *alloc_floats(size_t count)
{
    size_t bytes;
    if (mul_size(count, sizeof(float), &bytes) != 0) return NULL;
    return malloc(bytes ? bytes : 1);
}

static void format_shape(char *buf, size_t cap, int rank, const int *shape)
{
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, cap - used, "(");
    for (int i = 0; i < rank && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%d", i ? ", " : "", shape[i]);
    if (used < cap) used += (size_t)snprintf(buf + used, cap - used, rank == 1 ? ",)" : ")");
}

/* ------------------------------------------------------------------ NPY */

typedef struct {
    float *data;
    int rank;
    int shape[8];
    size_t count;
} npy_array;

typedef struct {
    const char *s;
    const char *end;
} hdr_cursor;

static void hdr_skip(hdr_cursor *c)
{
    while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r')) c->s++;
}

static int hdr_expect(hdr_cursor *c, char ch)
{
    hdr_skip(c);
    if (c->s < c->end && *c->s == ch) {
        c->s++;
        return 0;
    }
    return -1;
}

/* A Python string literal in single or double quotes (no escapes needed for npy headers). */
static int hdr_string(hdr_cursor *c, char *out, size_t cap)
{
    hdr_skip(c);
    if (c->s >= c->end || (*c->s != '\'' && *c->s != '"')) return -1;
    char q = *c->s++;
    size_t n = 0;
    while (c->s < c->end && *c->s != q) {
        if (n + 1 >= cap) return -1;
        out[n++] = *c->s++;
    }
    if (c->s >= c->end) return -1;
    c->s++;
    out[n] = '\0';
    return 0;
}

/* Replaces bytes that are not printable ASCII, so messages never echo binary junk from a file. */
static void make_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) *s = '?';
}

static int hdr_word(hdr_cursor *c, const char *w)
{
    hdr_skip(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->s) >= n && memcmp(c->s, w, n) == 0) {
        c->s += n;
        return 0;
    }
    return -1;
}

/* A tuple of non-negative ints: "()", "(5,)", "(1, 3, 64, 64)". */
static int hdr_shape(hdr_cursor *c, int *rank, int shape[8], char *why, size_t whycap)
{
    if (hdr_expect(c, '(') != 0) return -1;
    *rank = 0;
    for (;;) {
        hdr_skip(c);
        if (c->s < c->end && *c->s == ')') {
            c->s++;
            return 0;
        }
        if (c->s >= c->end || *c->s < '0' || *c->s > '9') return -1;
        long long v = 0;
        while (c->s < c->end && *c->s >= '0' && *c->s <= '9') {
            v = v * 10 + (*c->s - '0');
            if (v > INT_MAX) {
                snprintf(why, whycap, "a dimension is too large");
                return -1;
            }
            c->s++;
        }
        while (c->s < c->end && (*c->s == 'L' || *c->s == 'l')) c->s++; /* Python 2 longs */
        if (*rank >= 8) {
            snprintf(why, whycap, "more than 8 dimensions");
            return -1;
        }
        shape[(*rank)++] = (int)v;
        hdr_skip(c);
        if (c->s < c->end && *c->s == ',') {
            c->s++;
            continue;
        }
        if (c->s < c->end && *c->s == ')') {
            c->s++;
            return 0;
        }
        return -1;
    }
}

static uint32_t load_le32(const unsigned char *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

/* Reads a float32 little-endian C-order .npy (versions 1, 2, 3).  Prints a message and returns -1 on error. */
static int read_npy(const char *path, npy_array *arr)
{
    memset(arr, 0, sizeof *arr);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char pre[12];
    char *header = NULL;
    const char *problem = NULL;
    char why[160] = "";
    int rc = -1;

    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        problem = "not an .npy file (bad magic)";
        goto done;
    }
    int major = pre[6];
    size_t hlen;
    if (major == 1) {
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            problem = "truncated header";
            goto done;
        }
        hlen = (size_t)load_le32(pre + 8);
    } else {
        snprintf(why, sizeof why, "unsupported .npy version %d.%d", major, pre[7]);
        goto done;
    }
    if (hlen == 0 || hlen > ((size_t)1 << 20)) {
        problem = "implausible header length";
        goto done;
    }
    header = (char *)malloc(hlen + 1);
    if (header == NULL) {
        problem = "out of memory";
        goto done;
    }
    if (fread(header, 1, hlen, f) != hlen) {
        problem = "truncated header";
        goto done;
    }
    header[hlen] = '\0';

    /* Parse the dict: {'descr': '<f4', 'fortran_order': False, 'shape': (..), } in any key order. */
    {
        hdr_cursor c = {header, header + hlen};
        char key[32], descr[32] = "";
        int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
        if (hdr_expect(&c, '{') != 0) {
            problem = "malformed header (expected a dict)";
            goto done;
        }
        for (;;) {
            hdr_skip(&c);
            if (c.s < c.end && *c.s == '}') break;
            if (hdr_string(&c, key, sizeof key) != 0 || hdr_expect(&c, ':') != 0) {
                problem = "malformed header";
                goto done;
            }
            if (strcmp(key, "descr") == 0) {
                if (hdr_string(&c, descr, sizeof descr) != 0) {
                    problem = "malformed header ('descr' is not a simple dtype string)";
                    goto done;
                }
                have_descr = 1;
            } else if (strcmp(key, "fortran_order") == 0) {
                if (hdr_word(&c, "False") == 0) fortran = 0;
                else if (hdr_word(&c, "True") == 0) fortran = 1;
                else {
                    problem = "malformed header ('fortran_order')";
                    goto done;
                }
                have_order = 1;
            } else if (strcmp(key, "shape") == 0) {
                if (hdr_shape(&c, &arr->rank, arr->shape, why, sizeof why) != 0) {
                    if (why[0] == '\0') problem = "malformed header ('shape')";
                    goto done;
                }
                have_shape = 1;
            } else {
                make_printable(key);
                snprintf(why, sizeof why, "unexpected header key '%s'", key);
                goto done;
            }
            hdr_skip(&c);
            if (c.s < c.end && *c.s == ',') c.s++;
        }
        if (!have_descr || !have_order || !have_shape) {
            problem = "header lacks 'descr', 'fortran_order' or 'shape'";
            goto done;
        }
        if (strcmp(descr, "<f4") != 0) {
            make_printable(descr);
            snprintf(why, sizeof why, "dtype is '%s', expected little-endian float32 '<f4' (use a.astype('<f4'))",
                     descr);
            goto done;
        }
        if (fortran) {
            problem = "array is in Fortran order; save a C-ordered array (np.ascontiguousarray)";
            goto done;
        }
    }

    size_t count = 1;
    for (int i = 0; i < arr->rank; i++) {
        if (mul_size(count, (size_t)arr->shape[i], &count) != 0 || count > MAX_ELEMENTS) {
            problem = "array is too large";
            goto done;
        }
    }
    arr->count = count;
    {   /* compare with the file size before allocating, when the size is known */
        struct stat st;
        size_t offset = (major == 1 ? 10 : 12) + hlen;
        if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
            size_t have = (size_t)st.st_size > offset ? (size_t)st.st_size - offset : 0;
            if (have < count * 4) {
                snprintf(why, sizeof why, "truncated: the header's shape needs %zu bytes of data, the file has %zu",
                         count * 4, have);
                goto done;
            }
            if (have > count * 4) {
                problem = "unexpected bytes after the array data (shape in header too small?)";
                goto done;
            }
        }
    }
    arr->data = (float *)alloc_floats(count);
    if (arr->data == NULL) {
        problem = "out of memory";
        goto done;
    }
    size_t got = fread(arr->data, 4, count, f);
    if (got != count) {
        snprintf(why, sizeof why, "truncated: the header's shape needs %zu bytes of data, the file has %zu",
                 count * 4, got * 4);
        goto done;
    }
    if (fgetc(f) != EOF) {
        problem = "unexpected bytes after the array data (shape in header too small?)";
        goto done;
    }
    unsigned char *bytes = (unsigned char *)arr->data;
    for (size_t i = 0; i < count; i++) {
        uint32_t u = load_le32(bytes + 4 * i);
        memcpy(&arr->data[i], &u, 4);
    }
    rc = 0;

done:
    if (rc != 0) {
        if (ferror(f)) fprintf(stderr, "error: cannot read %s: %s\n", path, strerror(errno));
        else fprintf(stderr, "error: %s: %s\n", path, problem ? problem : why);
        free(arr->data);
        arr->data = NULL;
    }
    free(header);
    fclose(f);
    return rc;
}

/* Writes a float32 '<f4' C-order .npy version 1.0.  Prints a message and returns -1 on error. */
static int write_npy(const char *path, const float *data, int rank, const int *shape)
{
    char dims[200], header[256];
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= (size_t)shape[i];
    format_shape(dims, sizeof dims, rank, shape);
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", dims);
    size_t len = (size_t)n, total = 10 + len + 1;
    size_t padded = (total + 63) / 64 * 64;
    while (len < padded - 10 - 1) header[len++] = ' ';
    header[len++] = '\n';

    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff),
                             (unsigned char)(len >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, len, f) == len;
    unsigned char buf[4096];
    size_t i = 0;
    while (ok && i < count) {
        size_t k = 0;
        for (; k < sizeof buf && i < count; k += 4, i++) {
            uint32_t u;
            memcpy(&u, &data[i], 4);
            buf[k] = (unsigned char)u;
            buf[k + 1] = (unsigned char)(u >> 8);
            buf[k + 2] = (unsigned char)(u >> 16);
            buf[k + 3] = (unsigned char)(u >> 24);
        }
        ok = fwrite(buf, 1, k, f) == k;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        remove_partial(path);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ PNG */

typedef struct {
    float *data;        /* planar colour channels (1 grey or 3 RGB), values in [0,1] */
    uint16_t *alpha;    /* height*width raw alpha samples at bit_depth, or NULL        */
    int channels;       /* colour channels: 1 or 3                                     */
    int height, width;
    int bit_depth;      /* 8 or 16 (low depths and palettes are expanded to 8)         */
} png_data;

typedef struct {
    char msg[200];
} png_err;

static void png_error_cb(png_structp png, png_const_charp msg)
{
    png_err *e = (png_err *)png_get_error_ptr(png);
    if (e != NULL) snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* warnings (e.g. unknown chunks, bad iCCP profiles) do not stop reading */
}

static int read_png(const char *path, png_data *img)
{
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fprintf(stderr, "error: %s is not a PNG file\n", path);
        fclose(f);
        return -1;
    }
    png_err err;
    err.msg[0] = '\0';
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        fprintf(stderr, "error: cannot read %s: out of memory\n", path);
        png_destroy_read_struct(&png, NULL, NULL);
        fclose(f);
        return -1;
    }
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    float *volatile data = NULL;
    uint16_t *volatile alpha = NULL;

    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "error: cannot read PNG %s: %s\n", path, err.msg[0] ? err.msg : "libpng error");
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        free(data);
        free(alpha);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);

    int color_type = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int out_depth = png_get_bit_depth(png, info);
    int nch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info), total, pixels_n;
    if (w == 0 || h == 0 || w > INT_MAX || h > INT_MAX || (out_depth != 8 && out_depth != 16) || nch < 1 ||
        nch > 4 || mul_size(rowbytes, h, &total) != 0 || mul_size(w, h, &pixels_n) != 0 ||
        pixels_n > MAX_ELEMENTS / 3)
        png_error(png, "unsupported image dimensions or format");

    pixels = (unsigned char *)malloc(total);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
    int cc = nch >= 3 ? 3 : 1, has_alpha = (nch == 2 || nch == 4);
    data = (float *)alloc_floats(pixels_n * (size_t)cc);
    if (has_alpha) alpha = (uint16_t *)malloc(pixels_n * sizeof(uint16_t));
    if (pixels == NULL || rows == NULL || data == NULL || (has_alpha && alpha == NULL))
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    /* Interleaved 8/16-bit (big-endian) samples to planar floats, alpha kept raw. */
    float scale = out_depth == 16 ? 65535.0f : 255.0f;
    int bps = out_depth / 8;
    for (size_t y = 0; y < h; y++) {
        const unsigned char *row = pixels + y * rowbytes;
        for (size_t x = 0; x < w; x++) {
            const unsigned char *px = row + x * (size_t)(nch * bps);
            for (int c = 0; c < nch; c++) {
                unsigned v = bps == 2 ? ((unsigned)px[2 * c] << 8 | px[2 * c + 1]) : px[c];
                if (has_alpha && c == nch - 1) alpha[y * w + x] = (uint16_t)v;
                else data[((size_t)c * h + y) * w + x] = (float)v / scale;
            }
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(rows);
    fclose(f);
    img->data = data;
    img->alpha = alpha;
    img->channels = cc;
    img->height = (int)h;
    img->width = (int)w;
    img->bit_depth = out_depth;
    return 0;
}

/* Writes planar floats (1 or 3 channels, clamped to [0,1] and rounded) plus optional raw alpha. */
static int write_png(const char *path, const float *data, int channels, int height, int width, int depth,
                     const uint16_t *alpha)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    png_err err;
    err.msg[0] = '\0';
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        fprintf(stderr, "error: cannot write %s: out of memory\n", path);
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        remove_partial(path);
        return -1;
    }
    unsigned char *volatile row = NULL;
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "error: cannot write PNG %s: %s\n", path, err.msg[0] ? err.msg : "libpng error");
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(f);
        remove_partial(path);
        return -1;
    }
    png_init_io(png, f);
    int nch = channels + (alpha ? 1 : 0);
    int type = channels == 3 ? (alpha ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB)
                             : (alpha ? PNG_COLOR_TYPE_GRAY_ALPHA : PNG_COLOR_TYPE_GRAY);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, depth, type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);

    int bps = depth / 8;
    float maxv = depth == 16 ? 65535.0f : 255.0f;
    row = (unsigned char *)malloc((size_t)width * (size_t)(nch * bps));
    if (row == NULL) png_error(png, "out of memory");
    for (size_t y = 0; y < (size_t)height; y++) {
        for (size_t x = 0; x < (size_t)width; x++) {
            unsigned char *px = row + x * (size_t)(nch * bps);
            for (int c = 0; c < nch; c++) {
                unsigned v;
                if (c < channels) {
                    float s = data[((size_t)c * (size_t)height + y) * (size_t)width + x];
                    if (!(s > 0.0f)) s = 0.0f; /* also maps NaN to 0 */
                    if (s > 1.0f) s = 1.0f;
                    v = (unsigned)(s * maxv + 0.5f);
                } else {
                    v = alpha[y * (size_t)width + x];
                }
                if (bps == 2) {
                    px[2 * c] = (unsigned char)(v >> 8);
                    px[2 * c + 1] = (unsigned char)v;
                } else {
                    px[c] = (unsigned char)v;
                }
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(f) != 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        remove_partial(path);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ running the model */

typedef struct {
    model_ctx *ctx;
    hc_model_info info;
    int sy, sx;                  /* output / input spatial scale (image mode)       */
    void *ws;                    /* workspace, 64-byte aligned, for (ws_h, ws_w)    */
    int ws_h, ws_w;
    /* tiling buffers, allocated once */
    float *tile_in, *tile_out, *wsum, *wy, *wx;
} runner;

#ifdef HC_WRAP_TEST
static long g_wrap_runs; /* model_run calls checked by the wrap counters */
#endif

static int model_call(runner *r, const float *in, float *out, int h, int w)
{
#ifdef HC_WRAP_TEST
    g_wrap_runs++;
    hc_wrap_arm(1);
#endif
    int rc = model_run(r->ctx, in, out, h, w, r->ws);
#ifdef HC_WRAP_TEST
    hc_wrap_arm(0);
    if (hc_wrap_calls() != 0) {
        fprintf(stderr, "error: %d forbidden calls (malloc/calloc/realloc/pthread_create/fopen) inside model_run\n",
                hc_wrap_calls());
        exit(EXIT_MODEL);
    }
#endif
    return rc;
}

/* Workspace for one run size; kept for as long as the size does not change. */
static int ensure_workspace(runner *r, int h, int w)
{
    if (r->ws != NULL && r->ws_h == h && r->ws_w == w) return 0;
    free(r->ws);
    r->ws = NULL;
    size_t n = model_workspace_size(r->ctx, h, w);
    if (n == 0) {
        fprintf(stderr, "error: the model does not accept a %d x %d input\n", h, w);
        return -1;
    }
    if (n > SIZE_MAX - 63) {
        fprintf(stderr, "error: workspace for %d x %d is too large\n", h, w);
        return -1;
    }
    r->ws = aligned_alloc(64, (n + 63) / 64 * 64);
    if (r->ws == NULL) {
        fprintf(stderr, "error: out of memory allocating a %zu-byte workspace\n", n);
        return -1;
    }
    r->ws_h = h;
    r->ws_w = w;
    return 0;
}

static int tile_count(int len, int tile, int overlap)
{
    if (len <= tile) return 1;
    int step = tile - overlap; /* >= 1 because overlap <= tile / 2 */
    return 1 + (len - tile + step - 1) / step;
}

/* Evenly spread tile starts: first at 0, last flush with the border, consecutive tiles overlap >= overlap. */
static int tile_pos(int i, int n, int len, int tile)
{
    if (n <= 1) return 0;
    return (int)(((long long)i * (len - tile) + (n - 1) / 2) / (n - 1));
}

/* Linear ramp weights of one tile along one axis (output pixels): rising over the overlap with the
 * previous tile, falling over the overlap with the next one, 1 elsewhere, always > 0. */
static void ramp(float *wt, int len, int lo, int hi)
{
    for (int j = 0; j < len; j++) {
        float a = j < lo ? ((float)j + 0.5f) / (float)lo : 1.0f;
        float b = j >= len - hi ? ((float)(len - j) - 0.5f) / (float)hi : 1.0f;
        wt[j] = a < b ? a : b;
    }
}

/* One full inference of an image (C,H,W) into out (Cout, H*sy, W*sx), tiling if it exceeds the maximum. */
static int run_image(runner *r, const float *in, float *out, int H, int W, int overlap_req)
{
    const hc_model_info *mi = &r->info;
    if (H <= mi->max_height && W <= mi->max_width) return model_call(r, in, out, H, W);

    int th = H < mi->max_height ? H : mi->max_height, tw = W < mi->max_width ? W : mi->max_width;
    int oy = overlap_req < th / 2 ? overlap_req : th / 2, ox = overlap_req < tw / 2 ? overlap_req : tw / 2;
    int ny = tile_count(H, th, oy), nx = tile_count(W, tw, ox);
    int cin = mi->in_channels, cout = mi->out_channels, sy = r->sy, sx = r->sx;
    size_t Ho = (size_t)H * (size_t)sy, Wo = (size_t)W * (size_t)sx;
    int toh = th * sy, tow = tw * sx;

    memset(r->wsum, 0, Ho * Wo * sizeof(float));
    for (int ty = 0; ty < ny; ty++) {
        int y0 = tile_pos(ty, ny, H, th);
        int up = ty > 0 ? tile_pos(ty - 1, ny, H, th) + th - y0 : 0;
        int down = ty < ny - 1 ? y0 + th - tile_pos(ty + 1, ny, H, th) : 0;
        ramp(r->wy, toh, up * sy, down * sy);
        for (int tx = 0; tx < nx; tx++) {
            int x0 = tile_pos(tx, nx, W, tw);
            int left = tx > 0 ? tile_pos(tx - 1, nx, W, tw) + tw - x0 : 0;
            int right = tx < nx - 1 ? x0 + tw - tile_pos(tx + 1, nx, W, tw) : 0;
            ramp(r->wx, tow, left * sx, right * sx);

            for (int c = 0; c < cin; c++)
                for (int y = 0; y < th; y++)
                    memcpy(r->tile_in + ((size_t)c * th + y) * tw,
                           in + ((size_t)c * H + (size_t)(y0 + y)) * W + x0, (size_t)tw * sizeof(float));
            int rc = model_call(r, r->tile_in, r->tile_out, th, tw);
            if (rc != HC_OK) return rc;

            /* Running weighted mean per pixel: a pixel's first tile is copied exactly, later tiles move it by
             * w / (sum of weights); equal tile values therefore blend to exactly that value. */
            size_t oy0 = (size_t)y0 * sy, ox0 = (size_t)x0 * sx;
            for (int y = 0; y < toh; y++) {
                float *wrow = r->wsum + (oy0 + y) * Wo + ox0;
                for (int c = 0; c < cout; c++) {
                    const float *src = r->tile_out + ((size_t)c * toh + y) * tow;
                    float *dst = out + ((size_t)c * Ho + oy0 + y) * Wo + ox0;
                    for (int x = 0; x < tow; x++) {
                        float w = r->wy[y] * r->wx[x];
                        if (wrow[x] == 0.0f) dst[x] = src[x];
                        else dst[x] += (src[x] - dst[x]) * (w / (wrow[x] + w));
                    }
                }
                for (int x = 0; x < tow; x++) wrow[x] += r->wy[y] * r->wx[x];
            }
        }
    }
    return HC_OK;
}

/* ------------------------------------------------------------------ profile: peaks */
/*
 * The roofline's two roofs: vector-FMA throughput at the run's thread count and streaming copy bandwidth (bytes
 * read + written), measured by the runtime in well under a second and cached per machine and SIMD target in
 * $HC_CALIBRATION_DIR, else $XDG_CACHE_HOME/hybridc, else ~/.cache/hybridc, as
 * calibration-<cpu model>-<target>.txt with lines "fma_gflops THREADS VALUE" and "copy_gbps THREADS VALUE".
 * --recalibrate or HC_RECALIBRATE=1 measures again.
 */

typedef struct {
    double fma1, fma, copy; /* GFLOP/s on 1 thread and on the run's threads; GB/s on the run's threads */
    int threads;
    int cached;             /* 1: read from the cache file, 0: measured now */
    char cpu[128];
    char file[1200];
} peaks;

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown-cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) return;
    char line[512];
    const char *keys[] = {"model name", "Hardware", "CPU part"};
    char found[3][256] = {"", "", ""};
    while (fgets(line, sizeof line, f)) {
        for (int k = 0; k < 3; k++) {
            if (found[k][0] == '\0' && strncmp(line, keys[k], strlen(keys[k])) == 0) {
                const char *v = strchr(line, ':');
                if (v == NULL) continue;
                v++;
                while (*v == ' ' || *v == '\t') v++;
                snprintf(found[k], sizeof found[k], "%s", v);
            }
        }
    }
    fclose(f);
    const char *v = found[0][0] ? found[0] : found[1][0] ? found[1] : found[2][0] ? found[2] : NULL;
    if (v == NULL) return;
    size_t n = 0;
    int dash = 0;
    for (const char *c = v; *c && *c != '\n' && n + 1 < cap; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_';
        if (ok) {
            out[n++] = *c;
            dash = 0;
        } else if (!dash && n > 0) {
            out[n++] = '-';
            dash = 1;
        }
    }
    while (n > 0 && out[n - 1] == '-') n--;
    out[n] = '\0';
    if (n == 0) snprintf(out, cap, "unknown-cpu");
}

static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc != 0 && errno != EEXIST) return -1;
    }
    return (mkdir(path, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}

static int cache_dir(char *out, size_t cap)
{
    const char *d = getenv("HC_CALIBRATION_DIR");
    if (d && *d) return snprintf(out, cap, "%s", d) < (int)cap ? 0 : -1;
    d = getenv("XDG_CACHE_HOME");
    if (d && *d) return snprintf(out, cap, "%s/hybridc", d) < (int)cap ? 0 : -1;
    d = getenv("HOME");
    if (d && *d) return snprintf(out, cap, "%s/.cache/hybridc", d) < (int)cap ? 0 : -1;
    return -1;
}

/* Looks up "key threads value" in the cache file; 0 on success. */
static int cache_get(const char *file, const char *key, int threads, double *v)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) return -1;
    char line[256], k[64];
    int t, found = -1;
    double x;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %d %lf", k, &t, &x) == 3 && strcmp(k, key) == 0 && t == threads && x > 0) {
            *v = x;
            found = 0;
        }
    fclose(f);
    return found;
}

static void measure_peaks(peaks *pk, int threads, int recalibrate)
{
    memset(pk, 0, sizeof *pk);
    pk->threads = threads;
    cpu_model(pk->cpu, sizeof pk->cpu);
    char dir[900];
    int have_dir = cache_dir(dir, sizeof dir) == 0;
    if (have_dir) snprintf(pk->file, sizeof pk->file, "%s/calibration-%s-%s.txt", dir, pk->cpu, hc_simd_target());
    if (!recalibrate && have_dir && cache_get(pk->file, "fma_gflops", 1, &pk->fma1) == 0 &&
        cache_get(pk->file, "fma_gflops", threads, &pk->fma) == 0 && cache_get(pk->file, "copy_gbps", threads, &pk->copy) == 0) {
        pk->cached = 1;
        return;
    }
    fprintf(stderr, "profile: calibrating this machine's peaks (FMA throughput, copy bandwidth)...\n");
    hc_pool *pool = NULL;
    if (hc_pool_create(&pool, threads) != HC_OK) pool = NULL;
    pk->fma1 = hc_measure_fma_gflops(pool, 1, 0.12);
    pk->fma = threads == 1 ? pk->fma1 : hc_measure_fma_gflops(pool, threads, 0.12);
    const size_t floats = (size_t)16 << 20; /* 64 MiB per buffer: far past the caches */
    float *a = (float *)malloc(floats * sizeof(float)), *b = (float *)malloc(floats * sizeof(float));
    if (a && b) {
        memset(a, 0, floats * sizeof(float));
        pk->copy = hc_measure_copy_gbps(pool, a, b, floats, 0.2);
    }
    free(a);
    free(b);
    hc_pool_destroy(pool);
    if (!have_dir || pk->fma <= 0 || pk->copy <= 0) return;
    /* more threads giving less FMA throughput than one means another process took a core meanwhile: do not keep it */
    if (threads > 1 && pk->fma < pk->fma1) return;
    /* rewrite the file: the other thread counts' lines, then this run's */
    char path[sizeof pk->file];
    snprintf(path, sizeof path, "%s", dir);
    if (make_dirs(path) != 0) return;
    char keep[64][128];
    int nkeep = 0;
    FILE *f = fopen(pk->file, "r");
    if (f) {
        char line[256], k[64];
        int t;
        double x;
        while (nkeep < 64 && fgets(line, sizeof line, f))
            if (sscanf(line, "%63s %d %lf", k, &t, &x) == 3 && !(t == threads || (t == 1 && strcmp(k, "fma_gflops") == 0)))
                snprintf(keep[nkeep++], sizeof keep[0], "%s %d %.6g\n", k, t, x);
        fclose(f);
    }
    char tmp[sizeof pk->file + 48];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", pk->file, (long)getpid());
    f = fopen(tmp, "w");
    if (f == NULL) return;
    fprintf(f, "# hybridc calibration: cpu %s, target %s (peaks: vector FMA GFLOP/s, copy GB/s read+written)\n",
            pk->cpu, hc_simd_target());
    for (int i = 0; i < nkeep; i++) fputs(keep[i], f);
    fprintf(f, "fma_gflops 1 %.6g\n", pk->fma1);
    if (threads != 1) fprintf(f, "fma_gflops %d %.6g\n", threads, pk->fma);
    fprintf(f, "copy_gbps %d %.6g\n", threads, pk->copy);
    if (fclose(f) == 0) rename(tmp, pk->file);
    else remove(tmp);
}

/* ------------------------------------------------------------------ profile table */

typedef struct {
    int index;
    double seconds, flops, bytes;
    long calls;
    double gflops, gbps, intensity, roof_fraction;
    int compute_bound;
} prof_row;

static int prof_cmp(const void *a, const void *b)
{
    const prof_row *x = (const prof_row *)a, *y = (const prof_row *)b;
    if (x->seconds != y->seconds) return x->seconds < y->seconds ? 1 : -1;
    return x->index - y->index;
}

/* The rows, slowest first; NULL when out of memory.  Each kernel's roof is min(FMA peak, intensity x copy
 * bandwidth); it is compute-bound when its intensity (FLOP/byte) is at least the ridge point peak/bandwidth. */
static prof_row *profile_rows(const model_ctx *ctx, const peaks *pk, int *count)
{
    int n = model_kernel_count();
    prof_row *rows = (prof_row *)calloc(n > 0 ? (size_t)n : 1, sizeof *rows);
    if (rows == NULL) return NULL;
    double ridge = pk->copy > 0 ? pk->fma / pk->copy : 0;
    for (int i = 0; i < n; i++) {
        prof_row *r = &rows[i];
        r->index = i;
        r->seconds = model_kernel_seconds(ctx, i);
        r->calls = model_kernel_calls(ctx, i);
        r->flops = model_kernel_flop_total(ctx, i);
        r->bytes = model_kernel_byte_total(ctx, i);
        r->gflops = r->seconds > 0 ? r->flops / r->seconds * 1e-9 : 0;
        r->gbps = r->seconds > 0 ? r->bytes / r->seconds * 1e-9 : 0;
        r->intensity = r->bytes > 0 ? r->flops / r->bytes : 0;
        r->compute_bound = r->intensity >= ridge && r->flops > 0;
        r->roof_fraction = r->compute_bound ? (pk->fma > 0 ? r->gflops / pk->fma : 0)
                                            : (pk->copy > 0 ? r->gbps / pk->copy : 0);
    }
    qsort(rows, (size_t)n, sizeof *rows, prof_cmp);
    *count = n;
    return rows;
}

static void print_profile(const model_ctx *ctx, const peaks *pk)
{
    int n = 0;
    prof_row *rows = profile_rows(ctx, pk, &n);
    if (rows == NULL) return;
    double total = 0, flops = 0, bytes = 0;
    long calls = 0;
    int kw = (int)strlen("kernel"), ow = (int)strlen("ops");
    for (int i = 0; i < n; i++) {
        total += rows[i].seconds;
        calls += rows[i].calls;
        flops += rows[i].flops;
        bytes += rows[i].bytes;
        const char *name = model_kernel_name(rows[i].index), *ops = model_kernel_ops(rows[i].index);
        if (name && (int)strlen(name) > kw) kw = (int)strlen(name);
        if (ops && (int)strlen(ops) > ow) ow = (int)strlen(ops);
    }
    if (kw > 60) kw = 60;
    if (ow > 40) ow = 60;
    printf("peaks: %.1f GFLOP/s vector FMA at %d thread%s (%.1f at 1), %.1f GB/s copy; ridge %.2f FLOP/byte (%s %s)\n",
           pk->fma, pk->threads, pk->threads == 1 ? "" : "s", pk->fma1, pk->copy, pk->copy > 0 ? pk->fma / pk->copy : 0.0,
           pk->cached ? "cached in" : "measured now", pk->file[0] ? pk->file : "(no cache directory)");
    if (pk->threads > 1 && pk->fma < pk->fma1)
        printf("note: %d threads measured less FMA throughput than 1 thread: the machine was busy, so the roof %% column is "
               "too generous (%s)\n",
               pk->threads, pk->cached ? "run with --recalibrate when it is quiet" : "not cached");
    printf("%-*s  %-*s  %8s  %11s  %7s  %8s  %7s  %6s  %s\n", kw, "kernel", ow, "ops", "calls", "total ms", "share %",
           "GFLOP/s", "GB/s", "roof %", "bound");
    for (int i = 0; i < n; i++) {
        const prof_row *r = &rows[i];
        const char *name = model_kernel_name(r->index), *ops = model_kernel_ops(r->index);
        printf("%-*s  %-*.*s  %8ld  %11.3f  %7.1f  %8.2f  %7.2f  %6.1f  %s\n", kw, name ? name : "?", ow, ow, ops ? ops : "",
               r->calls, r->seconds * 1e3, total > 0 ? 100.0 * r->seconds / total : 0.0, r->gflops, r->gbps,
               100.0 * r->roof_fraction, r->compute_bound ? "compute" : "memory");
    }
    printf("%-*s  %-*s  %8ld  %11.3f  %7.1f  %8.2f  %7.2f  %6s  %s\n", kw, "total", ow, "", calls, total * 1e3,
           total > 0 ? 100.0 : 0.0, total > 0 ? flops / total * 1e-9 : 0.0, total > 0 ? bytes / total * 1e-9 : 0.0, "", "");
    free(rows);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

/* Finite numbers only (JSON has no inf or nan). */
static void json_number(FILE *f, double v)
{
    if (v != v || v > 1e300 || v < -1e300) v = 0;
    fprintf(f, "%.6g", v);
}

static int write_profile_json(const char *path, const model_ctx *ctx, const peaks *pk, int H, int W, int repeat,
                              double median_s)
{
    int n = 0;
    prof_row *rows = profile_rows(ctx, pk, &n);
    if (rows == NULL) return -1;
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        free(rows);
        return -1;
    }
    double total = 0;
    for (int i = 0; i < n; i++) total += rows[i].seconds;
    fprintf(f, "{\n  \"program\": ");
    json_string(f, g_prog);
    fprintf(f, ",\n  \"target\": ");
    json_string(f, hc_simd_target());
    fprintf(f, ",\n  \"threads\": %d,\n  \"repeat\": %d,\n  \"height\": %d,\n  \"width\": %d,\n  \"run_ms_median\": ",
            pk->threads, repeat, H, W);
    json_number(f, median_s * 1e3);
    fprintf(f, ",\n  \"total_ms\": ");
    json_number(f, total * 1e3);
    fprintf(f, ",\n  \"peaks\": {\"fma_gflops\": ");
    json_number(f, pk->fma);
    fprintf(f, ", \"fma_gflops_1_thread\": ");
    json_number(f, pk->fma1);
    fprintf(f, ", \"copy_gbps\": ");
    json_number(f, pk->copy);
    fprintf(f, ", \"ridge_flops_per_byte\": ");
    json_number(f, pk->copy > 0 ? pk->fma / pk->copy : 0);
    fprintf(f, ", \"cpu\": ");
    json_string(f, pk->cpu);
    fprintf(f, ", \"cached\": %s, \"file\": ", pk->cached ? "true" : "false");
    json_string(f, pk->file);
    fprintf(f, "},\n  \"kernels\": [");
    for (int i = 0; i < n; i++) {
        const prof_row *r = &rows[i];
        fprintf(f, "%s\n    {\"index\": %d, \"name\": ", i ? "," : "", r->index);
        json_string(f, model_kernel_name(r->index));
        fprintf(f, ", \"ops\": ");
        json_string(f, model_kernel_ops(r->index));
        fprintf(f, ", \"scope\": ");
        json_string(f, model_kernel_scope(r->index));
        fprintf(f, ", \"calls\": %ld, \"total_ms\": ", r->calls);
        json_number(f, r->seconds * 1e3);
        fprintf(f, ", \"share\": ");
        json_number(f, total > 0 ? r->seconds / total : 0);
        fprintf(f, ", \"flops\": ");
        json_number(f, r->flops);
        fprintf(f, ", \"bytes\": ");
        json_number(f, r->bytes);
        fprintf(f, ", \"gflops\": ");
        json_number(f, r->gflops);
        fprintf(f, ", \"gbps\": ");
        json_number(f, r->gbps);
        fprintf(f, ", \"intensity\": ");
        json_number(f, r->intensity);
        fprintf(f, ", \"roof_fraction\": ");
        json_number(f, r->roof_fraction);
        fprintf(f, ", \"peak_fraction\": ");
        json_number(f, pk->fma > 0 ? r->gflops / pk->fma : 0);
        fprintf(f, ", \"bound\": \"%s\"}", r->compute_bound ? "compute" : "memory");
    }
    fprintf(f, "\n  ]\n}\n");
    free(rows);
    if (fclose(f) != 0) {
        fprintf(stderr, "error: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* Chrome trace format (Perfetto, chrome://tracing): one complete ("X") slice per kernel per thread per pool run,
 * ts and dur in microseconds from the first event, pid the process, tid the pool thread; args.cpu_us is the
 * thread's CPU time in the slice (dur minus the time it was preempted). */
static int write_trace(const char *path, const hc_trace_event *ev, long n, long recorded)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    double t0 = n > 0 ? ev[0].t0 : 0;
    for (long i = 1; i < n; i++)
        if (ev[i].t0 < t0) t0 = ev[i].t0;
    long pid = (long)getpid();
    fprintf(f, "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"dropped_events\": %ld}, \"traceEvents\": [\n",
            recorded > n ? recorded - n : 0);
    fprintf(f, "  {\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %ld, \"tid\": 0, \"args\": {\"name\": ", pid);
    json_string(f, g_prog);
    fprintf(f, "}}");
    for (long i = 0; i < n; i++) {
        fprintf(f, ",\n  {\"name\": ");
        json_string(f, model_kernel_name(ev[i].tag));
        fprintf(f, ", \"cat\": \"kernel\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, \"pid\": %ld, \"tid\": %d, \"args\": {\"ops\": ",
                (ev[i].t0 - t0) * 1e6, (ev[i].t1 - ev[i].t0) * 1e6, pid, ev[i].tid);
        json_string(f, model_kernel_ops(ev[i].tag));
        fprintf(f, ", \"kernel\": %d, \"cpu_us\": %.3f}}", ev[i].tag, ev[i].cpu * 1e6);
    }
    fprintf(f, "\n]}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "error: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ main */

typedef struct {
    const char *input, *output, *weights, *json, *trace;
    int threads, repeat, repeat_given, profile, overlap, recalibrate;
} options;

static int parse_args(int argc, char **argv, options *o)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
    o->repeat = 1;
    o->overlap = 32;
    int npos = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (npos == 0) o->input = a;
            else if (npos == 1) o->output = a;
            else return usage_error("unexpected argument '%s'", a);
            npos++;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage_line(stdout);
            exit(0);
        }
        if (strcmp(a, "--profile") == 0) {
            o->profile = 1;
            continue;
        }
        if (strcmp(a, "--recalibrate") == 0) {
            o->recalibrate = 1;
            continue;
        }
        const char *names[] = {"--threads", "--repeat", "--overlap", "--weights", "--json", "--trace"};
        int which = -1;
        const char *val = NULL;
        for (int k = 0; k < 6; k++) {
            size_t n = strlen(names[k]);
            if (strncmp(a, names[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                which = k;
                if (a[n] == '=') val = a + n + 1;
                else if (i + 1 < argc) val = argv[++i];
                else return usage_error("%s needs a value", names[k]);
                break;
            }
        }
        switch (which) {
        case 0:
            if (parse_int(val, 1, HC_MAX_THREADS, &o->threads) != 0)
                return usage_error("--threads takes an integer from 1 to 256, not '%s'", val);
            break;
        case 1:
            if (parse_int(val, 1, 1000000, &o->repeat) != 0)
                return usage_error("--repeat takes a positive integer, not '%s'", val);
            o->repeat_given = 1;
            break;
        case 2:
            if (parse_int(val, 0, 1 << 20, &o->overlap) != 0)
                return usage_error("--overlap takes a non-negative integer, not '%s'", val);
            break;
        case 3:
            if (val[0] == '\0') return usage_error("--weights needs a file name%s", "");
            o->weights = val;
            break;
        case 4:
        case 5:
            if (val[0] == '\0') return usage_error("%s needs a file name", names[which]);
            if (which == 4) o->json = val;
            else o->trace = val;
            o->profile = 1;
            break;
        default:
            return usage_error("unknown option '%s'", a);
        }
    }
    if (npos < 2) return usage_error("expected INPUT and OUTPUT files%s", "");
    if (!file_kind(o->input)) return usage_error("input '%s' must end in .png or .npy", o->input);
    if (!file_kind(o->output)) return usage_error("output '%s' must end in .png or .npy", o->output);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') g_prog = argv[0];
    options opt;
    memset(&opt, 0, sizeof opt);
    int rc = parse_args(argc, argv, &opt);
    if (rc != 0) return rc;

    runner r;
    memset(&r, 0, sizeof r);
    model_get_info(&r.info);
    const hc_model_info *mi = &r.info;
    int in_kind = file_kind(opt.input), out_kind = file_kind(opt.output);
    int status = EXIT_IO;

    float *in = NULL, *out = NULL;
    uint16_t *alpha = NULL;
    double *times = NULL;
    hc_trace_event *trace = NULL;
    long trace_capacity = 0;
    peaks pk;
    memset(&pk, 0, sizeof pk);
    int H = 0, W = 0, Ho = 0, Wo = 0, png_depth = 8, out_rank = 4, out_shape[8];
    size_t out_count = 0;

    /* ---- check the request against the model, then read the input ---- */
    if (!mi->image) {
        if (in_kind != KIND_NPY || out_kind != KIND_NPY) {
            fprintf(stderr, "error: this model takes and returns tensors: use .npy for INPUT and OUTPUT\n");
            usage_line(stderr);
            return EXIT_USAGE;
        }
        npy_array a;
        if (read_npy(opt.input, &a) != 0) return EXIT_IO;
        int same = a.rank == mi->in_rank;
        for (int i = 0; same && i < a.rank; i++) same = a.shape[i] == mi->in_shape[i];
        if (!same) {
            char got[200], want[200];
            format_shape(got, sizeof got, a.rank, a.shape);
            format_shape(want, sizeof want, mi->in_rank, mi->in_shape);
            fprintf(stderr, "error: %s has shape %s, the model takes %s\n", opt.input, got, want);
            free(a.data);
            return EXIT_IO;
        }
        in = a.data;
        H = mi->in_rank >= 2 ? mi->in_shape[mi->in_rank - 2] : 1;
        W = mi->in_rank >= 1 ? mi->in_shape[mi->in_rank - 1] : 1;
        out_rank = mi->out_rank;
        out_count = 1;
        for (int i = 0; i < out_rank; i++) {
            out_shape[i] = mi->out_shape[i];
            out_count *= (size_t)mi->out_shape[i];
        }
    } else {
        /* image mode: output spatial scale from the compiled shapes */
        int ihm = mi->max_height, iwm = mi->max_width;
        int ohm = mi->out_rank >= 2 ? mi->out_shape[mi->out_rank - 2] : 0;
        int owm = mi->out_rank >= 1 ? mi->out_shape[mi->out_rank - 1] : 0;
        if (ihm < 1 || iwm < 1 || ohm < ihm || owm < iwm || ohm % ihm || owm % iwm || mi->in_channels < 1 ||
            mi->out_channels < 1) {
            fprintf(stderr, "error: inconsistent model description (sizes %dx%d -> %dx%d)\n", ihm, iwm, ohm, owm);
            return EXIT_MODEL;
        }
        r.sy = ohm / ihm;
        r.sx = owm / iwm;
        if (out_kind == KIND_PNG && mi->out_channels != 1 && mi->out_channels != 3) {
            fprintf(stderr, "error: cannot write %s: the model returns %d channels, PNG takes 1 (grey) or 3 (RGB); "
                            "use .npy\n", opt.output, mi->out_channels);
            return EXIT_IO;
        }
        if (in_kind == KIND_PNG) {
            if (mi->in_channels != 1 && mi->in_channels != 3) {
                fprintf(stderr, "error: cannot use %s: the model takes %d channels, PNG gives 1 (grey) or 3 (RGB); "
                                "use .npy\n", opt.input, mi->in_channels);
                return EXIT_IO;
            }
            png_data p;
            if (read_png(opt.input, &p) != 0) return EXIT_IO;
            if (p.channels != mi->in_channels) {
                fprintf(stderr, "error: %s has %d colour channel%s (%s) but the model takes %d (%s)\n", opt.input,
                        p.channels, p.channels == 1 ? "" : "s", p.channels == 1 ? "grey" : "RGB", mi->in_channels,
                        mi->in_channels == 1 ? "grey" : "RGB");
                free(p.data);
                free(p.alpha);
                return EXIT_IO;
            }
            in = p.data;
            alpha = p.alpha;
            H = p.height;
            W = p.width;
            png_depth = p.bit_depth;
            out_rank = 4;
        } else {
            npy_array a;
            if (read_npy(opt.input, &a) != 0) return EXIT_IO;
            int ok = (a.rank == 4 && a.shape[0] == 1) || a.rank == 3;
            int c = ok ? a.shape[a.rank - 3] : 0;
            if (!ok || c != mi->in_channels || a.shape[a.rank - 2] < 1 || a.shape[a.rank - 1] < 1) {
                char got[200];
                format_shape(got, sizeof got, a.rank, a.shape);
                fprintf(stderr, "error: %s has shape %s, the model takes (1, %d, H, W) or (%d, H, W)\n", opt.input,
                        got, mi->in_channels, mi->in_channels);
                free(a.data);
                return EXIT_IO;
            }
            in = a.data;
            H = a.shape[a.rank - 2];
            W = a.shape[a.rank - 1];
            out_rank = a.rank;
        }
        size_t px;
        if ((size_t)H > SIZE_MAX / (size_t)r.sy || (size_t)W > SIZE_MAX / (size_t)r.sx ||
            (long long)H * r.sy > INT_MAX || (long long)W * r.sx > INT_MAX ||
            mul_size((size_t)H * r.sy, (size_t)W * r.sx, &px) != 0 ||
            mul_size(px, (size_t)mi->out_channels, &out_count) != 0 || out_count > MAX_ELEMENTS) {
            fprintf(stderr, "error: %s is too large\n", opt.input);
            status = EXIT_IO;
            goto cleanup;
        }
        Ho = H * r.sy;
        Wo = W * r.sx;
        if (out_rank == 4) {
            out_shape[0] = 1;
            out_shape[1] = mi->out_channels;
            out_shape[2] = Ho;
            out_shape[3] = Wo;
        } else {
            out_shape[0] = mi->out_channels;
            out_shape[1] = Ho;
            out_shape[2] = Wo;
        }
        if (alpha != NULL && (out_kind != KIND_PNG || r.sy != 1 || r.sx != 1)) {
            free(alpha); /* alpha only passes through to a PNG of the same size */
            alpha = NULL;
        }
    }

    /* ---- create the model ---- */
    status = EXIT_MODEL;
    if (opt.weights != NULL) {
        rc = model_create_from_file(opt.weights, opt.threads, &r.ctx);
        if (rc != HC_OK) {
            fprintf(stderr, "error: cannot load weights %s: %s\n", opt.weights, model_error_message(rc));
            if (rc == HC_ERR_IO) status = EXIT_IO;
            goto cleanup;
        }
    } else {
        size_t blob_size = (size_t)(model_weights_blob_end - model_weights_blob);
        rc = model_create(model_weights_blob, blob_size, opt.threads, &r.ctx);
        if (rc != HC_OK) {
            fprintf(stderr, "error: cannot create the model: %s\n", model_error_message(rc));
            goto cleanup;
        }
    }
    if (opt.profile) {
        /* the peaks first, on a pool of our own, before the model's threads have work */
        const char *env = getenv("HC_RECALIBRATE");
        measure_peaks(&pk, opt.threads, opt.recalibrate || (env && *env && strcmp(env, "0") != 0));
        model_set_profiling(r.ctx, 1);
    }

    /* ---- buffers, allocated once for all repeats ---- */
    out = (float *)alloc_floats(out_count);
    times = (double *)calloc((size_t)opt.repeat, sizeof(double));
    if (out == NULL || times == NULL) {
        fprintf(stderr, "error: out of memory\n");
        goto cleanup;
    }
    if (mi->image && (H > mi->max_height || W > mi->max_width)) {
        int th = H < mi->max_height ? H : mi->max_height, tw = W < mi->max_width ? W : mi->max_width;
        size_t tin = (size_t)mi->in_channels * th * tw;
        size_t tout = (size_t)mi->out_channels * th * r.sy * tw * r.sx;
        r.tile_in = (float *)alloc_floats(tin);
        r.tile_out = (float *)alloc_floats(tout);
        r.wsum = (float *)alloc_floats((size_t)Ho * Wo);
        r.wy = (float *)alloc_floats((size_t)th * r.sy);
        r.wx = (float *)alloc_floats((size_t)tw * r.sx);
        if (!r.tile_in || !r.tile_out || !r.wsum || !r.wy || !r.wx) {
            fprintf(stderr, "error: out of memory\n");
            goto cleanup;
        }
        if (ensure_workspace(&r, th, tw) != 0) goto cleanup;
    } else {
        if (ensure_workspace(&r, H, W) != 0) goto cleanup;
    }

    /* ---- the trace buffer: every pool run of every kernel (at most 4 phases each) on every thread ---- */
    if (opt.trace != NULL) {
        long tiles = 1;
        if (mi->image && (H > mi->max_height || W > mi->max_width)) {
            int th = H < mi->max_height ? H : mi->max_height, tw = W < mi->max_width ? W : mi->max_width;
            int oy = opt.overlap < th / 2 ? opt.overlap : th / 2, ox = opt.overlap < tw / 2 ? opt.overlap : tw / 2;
            tiles = (long)tile_count(H, th, oy) * tile_count(W, tw, ox);
        }
        double want = 4.0 * model_kernel_count() * opt.threads * opt.repeat * (double)tiles;
        trace_capacity = want > 8e6 ? 8000000L : (long)want;
        trace = (hc_trace_event *)calloc((size_t)(trace_capacity > 0 ? trace_capacity : 1), sizeof *trace);
        if (trace == NULL) {
            fprintf(stderr, "error: out of memory\n");
            goto cleanup;
        }
        model_set_trace(r.ctx, trace, trace_capacity);
    }

    /* ---- run ---- */
    for (int i = 0; i < opt.repeat; i++) {
        double t0 = hc_now();
        rc = mi->image ? run_image(&r, in, out, H, W, opt.overlap) : model_call(&r, in, out, H, W);
        times[i] = hc_now() - t0;
        if (rc != HC_OK) {
            fprintf(stderr, "error: model run failed on %s: %s\n", opt.input, model_error_message(rc));
            goto cleanup;
        }
    }
    double median = 0;
    if (opt.repeat_given || opt.profile) {
        double sum = 0;
        for (int i = 0; i < opt.repeat; i++) sum += times[i];
        qsort(times, (size_t)opt.repeat, sizeof(double), cmp_double);
        median = opt.repeat % 2 ? times[opt.repeat / 2] : 0.5 * (times[opt.repeat / 2 - 1] + times[opt.repeat / 2]);
        fprintf(stderr, "run: %d x %.3f ms (median %.3f ms)\n", opt.repeat, 1e3 * sum / opt.repeat, 1e3 * median);
    }
    if (opt.profile) print_profile(r.ctx, &pk);
    if (opt.json != NULL && write_profile_json(opt.json, r.ctx, &pk, H, W, opt.repeat, median) != 0) {
        status = EXIT_IO;
        goto cleanup;
    }
    if (opt.trace != NULL) {
        long recorded = model_trace_count(r.ctx);
        long stored = recorded < trace_capacity ? recorded : trace_capacity;
        model_set_trace(r.ctx, NULL, 0);
        if (recorded > stored) fprintf(stderr, "warning: the trace kept %ld of %ld events\n", stored, recorded);
        if (write_trace(opt.trace, trace, stored, recorded) != 0) {
            status = EXIT_IO;
            goto cleanup;
        }
    }
#ifdef HC_WRAP_TEST
    fprintf(stderr, "wrap: 0 forbidden calls in %ld model_run calls\n", g_wrap_runs);
#endif

    /* ---- write ---- */
    status = EXIT_IO;
    if (out_kind == KIND_PNG) {
        if (write_png(opt.output, out, mi->out_channels, Ho, Wo, png_depth, alpha) != 0) goto cleanup;
    } else {
        if (write_npy(opt.output, out, out_rank, out_shape) != 0) goto cleanup;
    }
    status = 0;

cleanup:
    if (r.ctx != NULL) model_destroy(r.ctx);
    free(r.ws);
    free(r.tile_in);
    free(r.tile_out);
    free(r.wsum);
    free(r.wy);
    free(r.wx);
    free(in);
    free(out);
    free(alpha);
    free(times);
    free(trace);
    fflush(stdout);
    return status;
}
