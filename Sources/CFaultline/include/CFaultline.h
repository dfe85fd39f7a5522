/*
 * CFaultline: the only place where Faultline touches native BLAS and LAPACK.
 *
 * The libraries are not linked. On first use the shim:
 *   1. chooses an OpenBLAS core type from cpuid when the user has not set OPENBLAS_CORETYPE
 *      (OpenBLAS reads it in its load-time constructor, so it must be set before dlopen);
 *   2. dlopens libopenblas.so.0 (or $FAULTLINE_BLAS) and liblapacke.so.3 (or $FAULTLINE_LAPACKE);
 *   3. resolves the routines below into a table of function pointers.
 * Building therefore needs no -dev headers: every prototype used is declared in shim.c.
 *
 * All matrices are row-major. Integer dimensions are int32_t (BLAS `blasint`, LAPACK `lapack_int`);
 * the Swift caller converts from Int with a trapping conversion.
 */
#ifndef CFAULTLINE_H
#define CFAULTLINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where the OpenBLAS core type in force came from. */
typedef enum {
    FL_CORETYPE_OPENBLAS_AUTO = 0, /* not set: OpenBLAS detects the CPU itself */
    FL_CORETYPE_USER = 1,          /* OPENBLAS_CORETYPE was set by the user */
    FL_CORETYPE_CPUID = 2,         /* chosen by Faultline from cpuid */
    FL_CORETYPE_FAULTLINE_ENV = 3  /* FAULTLINE_CORETYPE named it */
} fl_coretype_source;

typedef struct {
    int blas_loaded;                /* 1 when every BLAS routine resolved */
    int lapack_loaded;              /* 1 when every LAPACKE routine resolved */
    int coretype_source;            /* fl_coretype_source */
    char coretype_requested[64];    /* the OPENBLAS_CORETYPE value in force at load ("" if none) */
    char blas_path[512];            /* library actually opened (dlinfo path when available) */
    char lapack_path[512];
    char error[1024];               /* why loading failed, "" when it did not */
} fl_blas_status;

typedef struct {
    char vendor[16];
    char brand[64];
    int family, model, stepping;
    int sse42, avx, avx2, fma, avx512f, avx512bw, avx512vl, avx512dq;
    int os_saves_ymm, os_saves_zmm;
} fl_cpu_features;

/* Loads the libraries once (thread safe) and returns the status. Never aborts. */
const fl_blas_status *fl_blas_load(void);
/* The core type Faultline would request for this CPU, or "" when it would leave it to OpenBLAS. */
const char *fl_cpuid_recommended_coretype(void);
void fl_cpu_features_get(fl_cpu_features *out);

/* OpenBLAS extras; each returns 0/NULL when the library lacks the symbol or is not loaded. */
const char *fl_openblas_corename(void);
const char *fl_openblas_config(void);
int fl_blas_get_num_threads(void);
void fl_blas_set_num_threads(int n);

/* Number of BLAS/LAPACK calls made through this shim (for tests that prove which path ran). */
uint64_t fl_blas_call_count(void);

/* Row-major BLAS. trans: 0 = no transpose, 1 = transpose. uplo: 0 = lower, 1 = upper. */
void fl_sgemm(int transA, int transB, int32_t m, int32_t n, int32_t k, float alpha,
              const float *a, int32_t lda, const float *b, int32_t ldb, float beta, float *c, int32_t ldc);
void fl_dgemm(int transA, int transB, int32_t m, int32_t n, int32_t k, double alpha,
              const double *a, int32_t lda, const double *b, int32_t ldb, double beta, double *c, int32_t ldc);
void fl_sgemv(int trans, int32_t m, int32_t n, float alpha, const float *a, int32_t lda,
              const float *x, float beta, float *y);
void fl_dgemv(int trans, int32_t m, int32_t n, double alpha, const double *a, int32_t lda,
              const double *x, double beta, double *y);
float fl_sdot(int32_t n, const float *x, const float *y);
double fl_ddot(int32_t n, const double *x, const double *y);
void fl_saxpy(int32_t n, float alpha, const float *x, float *y);
void fl_daxpy(int32_t n, double alpha, const double *x, double *y);
/* C (n x n) = alpha * op(A) op(A)^T + beta * C, writing the `uplo` triangle only. */
void fl_ssyrk(int uplo, int trans, int32_t n, int32_t k, float alpha, const float *a, int32_t lda,
              float beta, float *c, int32_t ldc);
void fl_dsyrk(int uplo, int trans, int32_t n, int32_t k, double alpha, const double *a, int32_t lda,
              double beta, double *c, int32_t ldc);
/* Solves op(L) X = alpha B (side 0) or X op(L) = alpha B (side 1), L lower triangular, non-unit. */
void fl_strsm(int side, int transL, int32_t m, int32_t n, float alpha, const float *l, int32_t ldl,
              float *b, int32_t ldb);
void fl_dtrsm(int side, int transL, int32_t m, int32_t n, double alpha, const double *l, int32_t ldl,
              double *b, int32_t ldb);
/** In place: B <- op(L) B (side 0) or B op(L) (side 1), L lower triangular, non-unit diagonal. */
void fl_strmm(int side, int transL, int32_t m, int32_t n, float alpha, const float *l, int32_t ldl,
              float *b, int32_t ldb);
void fl_dtrmm(int side, int transL, int32_t m, int32_t n, double alpha, const double *l, int32_t ldl,
              double *b, int32_t ldb);

/* LAPACK on row-major matrices. Return LAPACK's info (0 ok, >0 numerical failure, <0 bad argument). */
/* Lower Cholesky factor in place; the strict upper triangle is left untouched (the caller zeroes it). */
int32_t fl_spotrf_lower(int32_t n, float *a, int32_t lda);
int32_t fl_dpotrf_lower(int32_t n, double *a, int32_t lda);
/* Symmetric eigendecomposition: eigenvalues ascending into w; eigenvectors overwrite a as ROWS. */
int32_t fl_ssyevd(int32_t n, float *a, int32_t lda, float *w);
int32_t fl_dsyevd(int32_t n, double *a, int32_t lda, double *w);

/* ---- files (files.c) ---- */

/* Atomically exchanges two paths (renameat2 with RENAME_EXCHANGE, Linux ≥ 3.15): 0, or −errno
 * (−ENOSYS or −EINVAL where the kernel or file system lacks it). */
int fl_rename_exchange(const char *from, const char *to);

/* ---- zlib, loaded at run time from libz.so.1 (zlib.c) ---- */

/* 1 when libz.so.1 loaded; otherwise fl_zlib_error() says why. */
int fl_zlib_available(void);
const char *fl_zlib_error(void);
/* Inflates `in` into `out` (whose size must be the exact uncompressed size).
 * format: 0 = raw deflate (zip members), 1 = gzip or zlib (auto-detected header).
 * Returns 0 on success, -1 when the data is corrupt or does not fill `out` exactly, -2 when zlib is
 * unavailable. Never reads or writes outside the buffers. */
int fl_inflate(int format, const uint8_t *in, uint64_t in_size, uint8_t *out, uint64_t out_size);
/* Inflates a gzip stream of unknown size: calls `sink(context, chunk, n)` for each output chunk;
 * a sink returning nonzero aborts. Returns 0 ok, -1 corrupt, -2 unavailable, -3 aborted by sink. */
int fl_gunzip_stream(const uint8_t *in, uint64_t in_size, void *context,
                     int (*sink)(void *context, const uint8_t *chunk, uint64_t n));
/* Raw-deflates `in` (level 1..9) into `out` (capacity `out_capacity`); returns the compressed size,
 * or -1 if it did not fit, -2 when zlib is unavailable. */
int64_t fl_deflate_raw(int level, const uint8_t *in, uint64_t in_size, uint8_t *out, uint64_t out_capacity);
/* CRC-32 as zip and gzip use it (computed in C; no zlib needed). */
uint32_t fl_crc32(uint32_t crc, const uint8_t *data, uint64_t n);

/* ---- AVX2+FMA vector math (vecmath.c); call only when fl_vecmath_avx2_available() is 1 ---- */
int fl_vecmath_avx2_available(void);
/* Σ p_j·ln max(p_j, FLT_MIN) over n floats (float lanes, summed to double per call) into *xlogx, Σ p_j into
 * *total, p added into sum[0..n); *invalid = 1 if any p_j is outside [0, 1] or NaN. The xlogx and ensemble
 * kernels of this tier use a table-driven log (8 cells), error ≤ 1.5e-7·max(1, |ln x|). */
void fl_xlogx_accumulate_f32(const float *p, float *sum, int64_t n, double *xlogx, double *total, int *invalid);
/* values *= scale in place; returns Σ v·ln max(v, FLT_MIN) of the scaled values. */
double fl_xlogx_scale_f32(float *values, int64_t n, float scale);
/* Standard normals t ∈ [start, start + count) of Philox stream (seed, stream), as Philox.fillNormals defines them. */
void fl_fill_normals_f32(float *out, int64_t start, int64_t count, uint64_t seed, uint64_t stream);
/* x_j ← exp(x_j·scale) in place for x_j·scale ≤ 0 (kernel matrices from distances); returns Σ of the results. */
double fl_exp_scaled_f32(float *x, int64_t n, float scale);
/* Σ (row_j − mean_j)² into *sqdiff (double per call); returns the index of the first maximum of row. */
int64_t fl_sqdiff_argmax_f32(const float *row, const float *mean, int64_t n, double *sqdiff);
/* The ensemble pass (W4), one read of each member row: Σ p·ln max(p, FLT_MIN) → out[0], Σ p → out[1],
 * Σ (p − anchor)² → out[2] (the spread about an anchor row, for a variance without cancellation), p added
 * into sum, *invalid as fl_xlogx_accumulate_f32; returns the first maximum of p (the reference's rule:
 * from p[0], strictly greater; a subnormal p adds within 1e-38 of p·ln FLT_MIN). Per 16 floats read (and
 * once for a shorter row) it prefetches p[j + FL_ENSEMBLE_PREFETCH_FLOATS]: the caller walks a member's
 * rows contiguously, and the hardware streamer alone left the kernel waiting on memory (W4 at 2 threads
 * on a Xeon: 0.047 → 0.034 s). Prefetches never fault, so the distance may pass the end of the data. */
#define FL_ENSEMBLE_PREFETCH_FLOATS 512
/* One sample of the ensemble pass: the rows members[k] + offset (k < m, n classes each) through the
 * member-row pass above with anchor = member 0's row, their sum into mean (overwritten: no clearing
 * needed), then the mean row (fl_ensemble_mean_row_f32 with `scale`, in place). out[0] = Σ_k Σ_j p ln p,
 * out[1] = Σ_k Σ_j (p − anchor)² (each member's lanes widened to double, one horizontal sum per
 * sample), out[2] = Σ v ln v and out[3] = Σ (v − anchor)² of the mean row; argmax[k] (k < m) each
 * member's first maximum, argmax[m] the mean's. Returns −1, or the first member k whose row holds a
 * value outside [0, 1] or NaN (*invalid = 1) or sums (*total, double from float lanes) to more than
 * FL_ENSEMBLE_SUM_TOLERANCE from 1 (*invalid = 0); the outputs are then incomplete. */
#define FL_ENSEMBLE_SUM_TOLERANCE 1e-3
int64_t fl_ensemble_sample_f32(const float *const *members, int64_t offset, int64_t m, int64_t n, float scale, float *mean,
                               int64_t *argmax, double out[4], double *total, int *invalid);
int64_t fl_ensemble_member_row_f32(const float *p, const float *anchor, float *sum, int64_t n, double out[3], int *invalid);
/* The mean row: values *= scale in place; Σ v·ln max(v, FLT_MIN) → out[0], Σ (v − anchor)² → out[1];
 * returns the first maximum of the scaled values. */
int64_t fl_ensemble_mean_row_f32(float *values, const float *anchor, int64_t n, float scale, double out[2]);
/* Rows first, first + stride, … (count of them) of the n×c logits z at inverse temperature s, in double with
 * one row per lane: out[0] = Σ NLL_i(s), out[1] = Σ dNLL_i/ds, out[2] = Σ d²NLL_i/ds² (softmax_rows.c). */
void fl_temperature_moments_f64(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t stride, int64_t c,
                                double s, double out[3]);
/* Rows [first, first + count) of the logits z (c classes): per-bin count, Σ confidence and Σ correct of the
 * top-label confidence 1/Σ exp(z − max) (mode 0: bins equal-width, 1: torchmetrics' bins + 1 slots, 2: right-
 * closed), and Σ NLL, Σ Brier added to nll_brier[0], [1]. Returns −1, or the first row with NaN/±∞ (the sums
 * are then incomplete). */
int64_t fl_softmax_calibration_f32(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t c, int mode, int64_t bins,
                                   double *bin_count, double *bin_confidence, double *bin_correct, double *nll_brier);

/* ---- The AVX-512 tier of the kernels above (vecmath512.c): the same contracts, 16 float lanes, mask
 * tails; call only when fl_vecmath_avx512_available() is 1 (AVX-512 F/BW/VL/DQ, FMA, OS saves ZMM).
 * The xlogx and ensemble-row kernels use a table-driven log, error ≤ 1.5e-7·max(1, |ln x|) (the sums
 * Σ p·ln p need absolute, not relative, accuracy); the normals and the exps are bit-identical to AVX2. */
int fl_vecmath_avx512_available(void);
/* The ISA the package's C (and, with the same default flags, Swift) code is compiled for: "x86-64 baseline (SSE2, no FMA)". */
const char *fl_compiled_baseline_isa(void);
void fl_xlogx_accumulate_f32_avx512(const float *p, float *sum, int64_t n, double *xlogx, double *total, int *invalid);
double fl_xlogx_scale_f32_avx512(float *values, int64_t n, float scale);
void fl_fill_normals_f32_avx512(float *out, int64_t start, int64_t count, uint64_t seed, uint64_t stream);
double fl_exp_scaled_f32_avx512(float *x, int64_t n, float scale);
int64_t fl_ensemble_member_row_f32_avx512(const float *p, const float *anchor, float *sum, int64_t n, double out[3], int *invalid);
int64_t fl_ensemble_sample_f32_avx512(const float *const *members, int64_t offset, int64_t m, int64_t n, float scale, float *mean,
                                      int64_t *argmax, double out[4], double *total, int *invalid);
int64_t fl_ensemble_mean_row_f32_avx512(float *values, const float *anchor, int64_t n, float scale, double out[2]);
int64_t fl_sqdiff_argmax_f32_avx512(const float *row, const float *mean, int64_t n, double *sqdiff);
void fl_temperature_moments_f64_avx512(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t stride, int64_t c,
                                       double s, double out[3]);
int64_t fl_softmax_calibration_f32_avx512(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t c, int mode, int64_t bins,
                                          double *bin_count, double *bin_confidence, double *bin_correct, double *nll_brier);

#ifdef __cplusplus
}
#endif

/* Run-time loaded Open MPI (mpi.c). */
#include "fl_mpi.h"

#endif
