/* AVX2+FMA kernels for the streaming reductions that are bound by log/exp throughput on the default
 * SSE2 Swift target: Σ p·log p with validation (entropies of ensemble members and their mean).
 * Compiled for AVX2 through target attributes only (no global flags); callers check
 * fl_vecmath_avx2_available() first, and the pure-Swift kernels remain the fallback and the oracle.
 * The log is the Cephes logf scheme used by the Swift `Linalg.log8` (≤ 2 ulp), evaluated with FMA. */
#include "CFaultline.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FL_VEC_X86 1
#endif

int fl_vecmath_avx2_available(void) {
    static int cached = -1;
    if (cached < 0) {
        fl_cpu_features f;
        fl_cpu_features_get(&f);
        cached = f.avx2 && f.fma && f.os_saves_ymm;
    }
    return cached;
}

#ifdef FL_VEC_X86
/* ln x for positive normal floats. */
__attribute__((target("avx2,fma"))) static inline __m256 fl_log256(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256i bits = _mm256_castps_si256(x);
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F000000)));
    __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.70710678118654752f), _CMP_LT_OQ);
    e = _mm256_sub_epi32(e, _mm256_and_si256(_mm256_castps_si256(small), _mm256_set1_epi32(1)));
    m = _mm256_add_ps(m, _mm256_and_ps(small, m));
    __m256 t = _mm256_sub_ps(m, one);
    __m256 p = _mm256_set1_ps(7.0376836292e-2f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.1514610310e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.1676998740e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.2420140846e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.4249322787e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.6668057665e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(2.0000714765e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-2.4999993993e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(3.3333331174e-1f));
    __m256 t2 = _mm256_mul_ps(t, t);
    __m256 ef = _mm256_cvtepi32_ps(e);
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, t), t2);
    y = _mm256_fmadd_ps(ef, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), t2, y);
    y = _mm256_add_ps(y, t);
    return _mm256_fmadd_ps(ef, _mm256_set1_ps(0.693359375f), y);
}

__attribute__((target("avx2,fma"))) static inline double fl_hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    return (double)_mm_cvtss_f32(s);
}

/* Lanes 0..<count set (count in 1...7). */
__attribute__((target("avx2,fma"))) static inline __m256i fl_tail_mask(int64_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma")))
void fl_xlogx_accumulate_f32(const float *p, float *sum, int64_t n, double *xlogx, double *total, int *invalid) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), tiny = _mm256_set1_ps(1.17549435e-38f);
    __m256 h = zero, s = zero, bad = zero, h2 = zero;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {  /* two independent vectors per iteration: the log is latency-bound */
        __m256 v = _mm256_loadu_ps(p + j), w = _mm256_loadu_ps(p + j + 8);
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(v, zero, _CMP_NGE_UQ), _mm256_cmp_ps(v, one, _CMP_GT_OQ)));
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(w, zero, _CMP_NGE_UQ), _mm256_cmp_ps(w, one, _CMP_GT_OQ)));
        s = _mm256_add_ps(s, _mm256_add_ps(v, w));
        h = _mm256_fmadd_ps(v, fl_log256(_mm256_max_ps(v, tiny)), h);
        h2 = _mm256_fmadd_ps(w, fl_log256(_mm256_max_ps(w, tiny)), h2);
        _mm256_storeu_ps(sum + j, _mm256_add_ps(_mm256_loadu_ps(sum + j), v));
        _mm256_storeu_ps(sum + j + 8, _mm256_add_ps(_mm256_loadu_ps(sum + j + 8), w));
    }
    h = _mm256_add_ps(h, h2);
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(p + j);
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(v, zero, _CMP_NGE_UQ), _mm256_cmp_ps(v, one, _CMP_GT_OQ)));
        s = _mm256_add_ps(s, v);
        h = _mm256_fmadd_ps(v, fl_log256(_mm256_max_ps(v, tiny)), h);
        _mm256_storeu_ps(sum + j, _mm256_add_ps(_mm256_loadu_ps(sum + j), v));
    }
    if (j < n) {  /* the tail through a masked load: absent lanes read 0 and add 0·ln(FLT_MIN) = 0 */
        __m256i mask = fl_tail_mask(n - j);
        __m256 v = _mm256_maskload_ps(p + j, mask);
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(v, zero, _CMP_NGE_UQ), _mm256_cmp_ps(v, one, _CMP_GT_OQ)));
        s = _mm256_add_ps(s, v);
        h = _mm256_fmadd_ps(v, fl_log256(_mm256_max_ps(v, tiny)), h);
        _mm256_maskstore_ps(sum + j, mask, _mm256_add_ps(_mm256_maskload_ps(sum + j, mask), v));
    }
    double hs = fl_hsum256(h), ts = fl_hsum256(s);
    int wrong = _mm256_movemask_ps(bad) != 0;
    *xlogx = hs;
    *total = ts;
    *invalid = wrong;
}

__attribute__((target("avx2,fma")))
double fl_xlogx_scale_f32(float *values, int64_t n, float scale) {
    const __m256 tiny = _mm256_set1_ps(1.17549435e-38f), k = _mm256_set1_ps(scale);
    __m256 h = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(values + j), k);
        _mm256_storeu_ps(values + j, v);
        h = _mm256_fmadd_ps(v, fl_log256(_mm256_max_ps(v, tiny)), h);
    }
    if (j < n) {
        __m256i mask = fl_tail_mask(n - j);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(values + j, mask), k);
        _mm256_maskstore_ps(values + j, mask, v);
        h = _mm256_fmadd_ps(v, fl_log256(_mm256_max_ps(v, tiny)), h);
    }
    return fl_hsum256(h);
}
/* exp x for x ≤ 0 down to −87 (softmax arguments z − max): Cody–Waite reduction and the degree-6
 * Cephes polynomial of the Swift `Linalg.exp8`, with FMA; arguments below −87.3 flush to 0. */
__attribute__((target("avx2,fma"))) static inline __m256 fl_exp256_nonpositive(__m256 x) {
    const __m256 lower = _mm256_set1_ps(-87.3f);
    __m256 underflow = _mm256_cmp_ps(x, lower, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lower);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 er = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(er, _mm256_castsi256_ps(scale)));
}

__attribute__((target("avx2,fma")))
double fl_exp_shifted_f32(const float *row, int64_t n, float shift, float *e, double *squares) {
    const __m256 m = _mm256_set1_ps(shift);
    __m256 s = _mm256_setzero_ps(), q = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = fl_exp256_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(row + j), m));
        _mm256_storeu_ps(e + j, v);
        s = _mm256_add_ps(s, v);
        q = _mm256_fmadd_ps(v, v, q);
    }
    if (j < n) {
        __m256i mask = fl_tail_mask(n - j);
        __m256 v = _mm256_and_ps(fl_exp256_nonpositive(_mm256_sub_ps(_mm256_maskload_ps(row + j, mask), m)), _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(e + j, mask, v);
        s = _mm256_add_ps(s, v);
        q = _mm256_fmadd_ps(v, v, q);
    }
    *squares = fl_hsum256(q);
    return fl_hsum256(s);
}

__attribute__((target("avx2,fma")))
int64_t fl_sqdiff_argmax_f32(const float *row, const float *mean, int64_t n, double *sqdiff) {
    __m256 acc = _mm256_setzero_ps();
    __m256 best = _mm256_set1_ps(-INFINITY);
    __m256i bestIndex = _mm256_setzero_si256(), index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i eight = _mm256_set1_epi32(8);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(row + j), d = _mm256_sub_ps(v, _mm256_loadu_ps(mean + j));
        acc = _mm256_fmadd_ps(d, d, acc);
        __m256 greater = _mm256_cmp_ps(v, best, _CMP_GT_OQ);  /* strictly greater: the first maximum per lane wins */
        best = _mm256_blendv_ps(best, v, greater);
        bestIndex = _mm256_blendv_epi8(bestIndex, index, _mm256_castps_si256(greater));
        index = _mm256_add_epi32(index, eight);
    }
    float lanes[8];
    int idx[8];
    _mm256_storeu_ps(lanes, best);
    _mm256_storeu_si256((__m256i *)idx, bestIndex);
    double s = fl_hsum256(acc);
    int64_t arg = -1;
    float top = -INFINITY;
    for (int l = 0; l < 8; l++) {
        if (lanes[l] > top || (lanes[l] == top && arg >= 0 && idx[l] < arg)) { top = lanes[l]; arg = idx[l]; }
    }
    for (; j < n; j++) {
        float d = row[j] - mean[j];
        s += (double)d * d;
        if (row[j] > top || arg < 0) { top = row[j]; arg = j; }
    }
    *sqdiff = s;
    return arg < 0 ? 0 : arg;
}
#else
double fl_exp_shifted_f32(const float *row, int64_t n, float shift, float *e, double *squares) { (void)row; (void)n; (void)shift; (void)e; *squares = 0; return 0; }
int64_t fl_sqdiff_argmax_f32(const float *row, const float *mean, int64_t n, double *sqdiff) { (void)row; (void)mean; (void)n; *sqdiff = 0; return 0; }
void fl_xlogx_accumulate_f32(const float *p, float *sum, int64_t n, double *xlogx, double *total, int *invalid) {
    (void)p; (void)sum; (void)n; *xlogx = 0; *total = 0; *invalid = 1;
}
double fl_xlogx_scale_f32(float *values, int64_t n, float scale) { (void)values; (void)n; (void)scale; return 0; }
#endif
