/*
 * Run-time loading of OpenBLAS and LAPACKE (the libblastrampoline / FlexiBLAS approach).
 * See include/CFaultline.h for the contract and docs/ARCHITECTURE.md ("The BLAS/LAPACK shim") for why.
 */
#define _GNU_SOURCE
#include "CFaultline.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define FL_X86 1
#endif

/* ---- CBLAS / LAPACKE constants and prototypes (declared here so no -dev headers are needed) ---- */
enum { CBLAS_ROW = 101, CBLAS_NOTRANS = 111, CBLAS_TRANS = 112, CBLAS_UPPER = 121, CBLAS_LOWER = 122,
       CBLAS_NONUNIT = 131, CBLAS_LEFT = 141, CBLAS_RIGHT = 142 };
enum { LAPACK_COL_MAJOR = 102 };

typedef void (*sgemm_fn)(int, int, int, int32_t, int32_t, int32_t, float, const float *, int32_t,
                         const float *, int32_t, float, float *, int32_t);
typedef void (*dgemm_fn)(int, int, int, int32_t, int32_t, int32_t, double, const double *, int32_t,
                         const double *, int32_t, double, double *, int32_t);
typedef void (*sgemv_fn)(int, int, int32_t, int32_t, float, const float *, int32_t, const float *, int32_t,
                         float, float *, int32_t);
typedef void (*dgemv_fn)(int, int, int32_t, int32_t, double, const double *, int32_t, const double *,
                         int32_t, double, double *, int32_t);
typedef float (*sdot_fn)(int32_t, const float *, int32_t, const float *, int32_t);
typedef double (*ddot_fn)(int32_t, const double *, int32_t, const double *, int32_t);
typedef void (*saxpy_fn)(int32_t, float, const float *, int32_t, float *, int32_t);
typedef void (*daxpy_fn)(int32_t, double, const double *, int32_t, double *, int32_t);
typedef void (*ssyrk_fn)(int, int, int, int32_t, int32_t, float, const float *, int32_t, float, float *, int32_t);
typedef void (*dsyrk_fn)(int, int, int, int32_t, int32_t, double, const double *, int32_t, double, double *,
                         int32_t);
typedef void (*strsm_fn)(int, int, int, int, int, int32_t, int32_t, float, const float *, int32_t, float *,
                         int32_t);
typedef void (*dtrsm_fn)(int, int, int, int, int, int32_t, int32_t, double, const double *, int32_t, double *,
                         int32_t);
typedef void (*strmm_fn)(int, int, int, int, int, int32_t, int32_t, float, const float *, int32_t, float *,
                         int32_t);
typedef void (*dtrmm_fn)(int, int, int, int, int, int32_t, int32_t, double, const double *, int32_t, double *,
                         int32_t);
typedef int32_t (*spotrf_fn)(int, char, int32_t, float *, int32_t);
typedef int32_t (*dpotrf_fn)(int, char, int32_t, double *, int32_t);
typedef int32_t (*ssyevd_fn)(int, char, char, int32_t, float *, int32_t, float *);
typedef int32_t (*dsyevd_fn)(int, char, char, int32_t, double *, int32_t, double *);
typedef char *(*str_fn)(void);
typedef int (*getint_fn)(void);
typedef void (*setint_fn)(int);

static struct {
    sgemm_fn sgemm; dgemm_fn dgemm; sgemv_fn sgemv; dgemv_fn dgemv; sdot_fn sdot; ddot_fn ddot;
    saxpy_fn saxpy; daxpy_fn daxpy; ssyrk_fn ssyrk; dsyrk_fn dsyrk; strsm_fn strsm; dtrsm_fn dtrsm;
    strmm_fn strmm; dtrmm_fn dtrmm;
    spotrf_fn spotrf; dpotrf_fn dpotrf; ssyevd_fn ssyevd; dsyevd_fn dsyevd;
    str_fn corename; str_fn config; getint_fn get_threads; setint_fn set_threads;
} fn;

static fl_blas_status status;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t call_count;

static inline void counted(void) { atomic_fetch_add_explicit(&call_count, 1, memory_order_relaxed); }
uint64_t fl_blas_call_count(void) { return atomic_load_explicit(&call_count, memory_order_relaxed); }

/* ---- CPU detection ---- */

void fl_cpu_features_get(fl_cpu_features *out) {
    memset(out, 0, sizeof *out);
#ifdef FL_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned max_leaf = a;
    memcpy(out->vendor + 0, &b, 4);
    memcpy(out->vendor + 4, &d, 4);
    memcpy(out->vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    int base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    out->family = base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family;
    out->model = (base_family == 0x6 || base_family == 0xf) ? (base_model | (((a >> 16) & 0xf) << 4)) : base_model;
    out->stepping = a & 0xf;
    out->sse42 = (c >> 20) & 1;
    out->fma = (c >> 12) & 1;
    out->avx = (c >> 28) & 1;
    int osxsave = (c >> 27) & 1;
    if (osxsave) {
        unsigned xcr0_lo, xcr0_hi;
        __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
        out->os_saves_ymm = (xcr0_lo & 0x6) == 0x6;
        out->os_saves_zmm = (xcr0_lo & 0xe6) == 0xe6;
    }
    if (max_leaf >= 7) {
        __get_cpuid_count(7, 0, &a, &b, &c, &d);
        out->avx2 = (b >> 5) & 1;
        out->avx512f = (b >> 16) & 1;
        out->avx512dq = (b >> 17) & 1;
        out->avx512bw = (b >> 30) & 1;
        out->avx512vl = (b >> 31) & 1;
    }
    unsigned brand[12];
    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
        memcpy(out->brand, brand, 48);
        out->brand[48] = 0;
    }
#endif
}

const char *fl_cpuid_recommended_coretype(void) {
    fl_cpu_features f;
    fl_cpu_features_get(&f);
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.os_saves_zmm) return "SkylakeX";
    if (f.avx2 && f.fma && f.os_saves_ymm) return "Haswell";
    return "";
}

/* ---- Loading ---- */

static void choose_coretype(void) {
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && *user) {
        status.coretype_source = FL_CORETYPE_USER;
        snprintf(status.coretype_requested, sizeof status.coretype_requested, "%s", user);
        return;
    }
    const char *named = getenv("FAULTLINE_CORETYPE");
    if (named && *named) {
        if (strcmp(named, "auto") == 0 || strcmp(named, "openblas") == 0) {
            status.coretype_source = FL_CORETYPE_OPENBLAS_AUTO;
            return;
        }
        status.coretype_source = FL_CORETYPE_FAULTLINE_ENV;
        snprintf(status.coretype_requested, sizeof status.coretype_requested, "%s", named);
        setenv("OPENBLAS_CORETYPE", named, 1);
        return;
    }
    const char *pick = fl_cpuid_recommended_coretype();
    if (*pick) {
        status.coretype_source = FL_CORETYPE_CPUID;
        snprintf(status.coretype_requested, sizeof status.coretype_requested, "%s", pick);
        setenv("OPENBLAS_CORETYPE", pick, 1);
    } else {
        status.coretype_source = FL_CORETYPE_OPENBLAS_AUTO;
    }
}

static void append_error(const char *what, const char *detail) {
    size_t used = strlen(status.error);
    snprintf(status.error + used, sizeof status.error - used, "%s%s: %s", used ? "; " : "", what,
             detail ? detail : "unknown error");
}

static void record_path(void *handle, void *symbol, char *dst, size_t cap, const char *fallback) {
    Dl_info info;
    if (symbol && dladdr(symbol, &info) && info.dli_fname) {
        snprintf(dst, cap, "%s", info.dli_fname);
        return;
    }
    (void)handle;
    snprintf(dst, cap, "%s", fallback);
}

#define RESOLVE(handle, field, name)                                     \
    do {                                                                 \
        *(void **)(&fn.field) = dlsym(handle, name);                     \
        if (!fn.field) { append_error("missing symbol", name); ok = 0; } \
    } while (0)

static void load_libraries(void) {
    choose_coretype();

    const char *blas_name = getenv("FAULTLINE_BLAS");
    if (!blas_name || !*blas_name) blas_name = "libopenblas.so.0";
    void *blas = dlopen(blas_name, RTLD_NOW | RTLD_LOCAL);
    if (!blas) {
        append_error(blas_name, dlerror());
    } else {
        int ok = 1;
        RESOLVE(blas, sgemm, "cblas_sgemm"); RESOLVE(blas, dgemm, "cblas_dgemm");
        RESOLVE(blas, sgemv, "cblas_sgemv"); RESOLVE(blas, dgemv, "cblas_dgemv");
        RESOLVE(blas, sdot, "cblas_sdot"); RESOLVE(blas, ddot, "cblas_ddot");
        RESOLVE(blas, saxpy, "cblas_saxpy"); RESOLVE(blas, daxpy, "cblas_daxpy");
        RESOLVE(blas, ssyrk, "cblas_ssyrk"); RESOLVE(blas, dsyrk, "cblas_dsyrk");
        RESOLVE(blas, strsm, "cblas_strsm"); RESOLVE(blas, dtrsm, "cblas_dtrsm");
        RESOLVE(blas, strmm, "cblas_strmm"); RESOLVE(blas, dtrmm, "cblas_dtrmm");
        /* Optional OpenBLAS extras. */
        *(void **)(&fn.corename) = dlsym(blas, "openblas_get_corename");
        *(void **)(&fn.config) = dlsym(blas, "openblas_get_config");
        *(void **)(&fn.get_threads) = dlsym(blas, "openblas_get_num_threads");
        *(void **)(&fn.set_threads) = dlsym(blas, "openblas_set_num_threads");
        status.blas_loaded = ok;
        record_path(blas, (void *)fn.sgemm, status.blas_path, sizeof status.blas_path, blas_name);
    }

    if (status.blas_loaded) {
        /* LAPACKE may live in the BLAS library itself (MKL, some OpenBLAS builds) or beside it. */
        void *lapack = blas;
        if (!dlsym(lapack, "LAPACKE_spotrf")) {
            const char *lapack_name = getenv("FAULTLINE_LAPACKE");
            if (!lapack_name || !*lapack_name) lapack_name = "liblapacke.so.3";
            lapack = dlopen(lapack_name, RTLD_NOW | RTLD_LOCAL);
            if (!lapack) append_error(lapack_name, dlerror());
        }
        if (lapack) {
            int ok = 1;
            RESOLVE(lapack, spotrf, "LAPACKE_spotrf"); RESOLVE(lapack, dpotrf, "LAPACKE_dpotrf");
            RESOLVE(lapack, ssyevd, "LAPACKE_ssyevd"); RESOLVE(lapack, dsyevd, "LAPACKE_dsyevd");
            status.lapack_loaded = ok;
            record_path(lapack, (void *)fn.spotrf, status.lapack_path, sizeof status.lapack_path, "");
        }
        const char *threads = getenv("FAULTLINE_THREADS");
        if (threads && *threads && fn.set_threads) {
            int n = atoi(threads);
            if (n > 0) fn.set_threads(n);
        }
    }
}

const fl_blas_status *fl_blas_load(void) {
    pthread_once(&load_once, load_libraries);
    return &status;
}

const char *fl_openblas_corename(void) { return fl_blas_load()->blas_loaded && fn.corename ? fn.corename() : NULL; }
const char *fl_openblas_config(void) { return fl_blas_load()->blas_loaded && fn.config ? fn.config() : NULL; }
int fl_blas_get_num_threads(void) {
    return fl_blas_load()->blas_loaded && fn.get_threads ? fn.get_threads() : 0;
}
void fl_blas_set_num_threads(int n) {
    if (fl_blas_load()->blas_loaded && fn.set_threads && n > 0) fn.set_threads(n);
}

/* ---- Entry points. The Swift side only calls these after fl_blas_load() reported success. ---- */

static inline int tr(int t) { return t ? CBLAS_TRANS : CBLAS_NOTRANS; }

void fl_sgemm(int ta, int tb, int32_t m, int32_t n, int32_t k, float alpha, const float *a, int32_t lda,
              const float *b, int32_t ldb, float beta, float *c, int32_t ldc) {
    counted();
    fn.sgemm(CBLAS_ROW, tr(ta), tr(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void fl_dgemm(int ta, int tb, int32_t m, int32_t n, int32_t k, double alpha, const double *a, int32_t lda,
              const double *b, int32_t ldb, double beta, double *c, int32_t ldc) {
    counted();
    fn.dgemm(CBLAS_ROW, tr(ta), tr(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void fl_sgemv(int t, int32_t m, int32_t n, float alpha, const float *a, int32_t lda, const float *x, float beta,
              float *y) {
    counted();
    fn.sgemv(CBLAS_ROW, tr(t), m, n, alpha, a, lda, x, 1, beta, y, 1);
}
void fl_dgemv(int t, int32_t m, int32_t n, double alpha, const double *a, int32_t lda, const double *x,
              double beta, double *y) {
    counted();
    fn.dgemv(CBLAS_ROW, tr(t), m, n, alpha, a, lda, x, 1, beta, y, 1);
}
float fl_sdot(int32_t n, const float *x, const float *y) { counted(); return fn.sdot(n, x, 1, y, 1); }
double fl_ddot(int32_t n, const double *x, const double *y) { counted(); return fn.ddot(n, x, 1, y, 1); }
void fl_saxpy(int32_t n, float alpha, const float *x, float *y) { counted(); fn.saxpy(n, alpha, x, 1, y, 1); }
void fl_daxpy(int32_t n, double alpha, const double *x, double *y) { counted(); fn.daxpy(n, alpha, x, 1, y, 1); }
void fl_ssyrk(int uplo, int t, int32_t n, int32_t k, float alpha, const float *a, int32_t lda, float beta,
              float *c, int32_t ldc) {
    counted();
    fn.ssyrk(CBLAS_ROW, uplo ? CBLAS_UPPER : CBLAS_LOWER, tr(t), n, k, alpha, a, lda, beta, c, ldc);
}
void fl_dsyrk(int uplo, int t, int32_t n, int32_t k, double alpha, const double *a, int32_t lda, double beta,
              double *c, int32_t ldc) {
    counted();
    fn.dsyrk(CBLAS_ROW, uplo ? CBLAS_UPPER : CBLAS_LOWER, tr(t), n, k, alpha, a, lda, beta, c, ldc);
}
void fl_strsm(int side, int t, int32_t m, int32_t n, float alpha, const float *l, int32_t ldl, float *b,
              int32_t ldb) {
    counted();
    fn.strsm(CBLAS_ROW, side ? CBLAS_RIGHT : CBLAS_LEFT, CBLAS_LOWER, tr(t), CBLAS_NONUNIT, m, n, alpha, l, ldl,
             b, ldb);
}
void fl_dtrsm(int side, int t, int32_t m, int32_t n, double alpha, const double *l, int32_t ldl, double *b,
              int32_t ldb) {
    counted();
    fn.dtrsm(CBLAS_ROW, side ? CBLAS_RIGHT : CBLAS_LEFT, CBLAS_LOWER, tr(t), CBLAS_NONUNIT, m, n, alpha, l, ldl,
             b, ldb);
}

void fl_strmm(int side, int t, int32_t m, int32_t n, float alpha, const float *l, int32_t ldl, float *b,
              int32_t ldb) {
    counted();
    fn.strmm(CBLAS_ROW, side ? CBLAS_RIGHT : CBLAS_LEFT, CBLAS_LOWER, tr(t), CBLAS_NONUNIT, m, n, alpha, l, ldl,
             b, ldb);
}
void fl_dtrmm(int side, int t, int32_t m, int32_t n, double alpha, const double *l, int32_t ldl, double *b,
              int32_t ldb) {
    counted();
    fn.dtrmm(CBLAS_ROW, side ? CBLAS_RIGHT : CBLAS_LEFT, CBLAS_LOWER, tr(t), CBLAS_NONUNIT, m, n, alpha, l, ldl,
             b, ldb);
}

/* Row-major lower == column-major upper of the same memory: no transposing copy inside LAPACKE. */
int32_t fl_spotrf_lower(int32_t n, float *a, int32_t lda) { counted(); return fn.spotrf(LAPACK_COL_MAJOR, 'U', n, a, lda); }
int32_t fl_dpotrf_lower(int32_t n, double *a, int32_t lda) { counted(); return fn.dpotrf(LAPACK_COL_MAJOR, 'U', n, a, lda); }
/* A symmetric matrix is its own transpose; column-major eigenvectors read row-major are rows. */
int32_t fl_ssyevd(int32_t n, float *a, int32_t lda, float *w) {
    counted();
    return fn.ssyevd(LAPACK_COL_MAJOR, 'V', 'L', n, a, lda, w);
}
int32_t fl_dsyevd(int32_t n, double *a, int32_t lda, double *w) {
    counted();
    return fn.dsyevd(LAPACK_COL_MAJOR, 'V', 'L', n, a, lda, w);
}
