/* AVX2+FMA kernels for the streaming reductions that are bound by log/exp throughput on the default
 * SSE2 Swift target: Σ p·log p with validation (entropies of ensemble members and their mean).
 * Compiled for AVX2 through target attributes only (no global flags); callers check
 * fl_vecmath_avx2_available() first, and the pure-Swift kernels remain the fallback and the oracle.
 * The sums Σ p·ln p use a table-driven log (fl_log256_table, ≤ 1.5e-7·max(1, |ln x|)); the normals keep
 * the Cephes logf scheme of the Swift `Linalg.log8` (≤ 2 ulp, evaluated with FMA), so their values do not
 * move. */
#include "CFaultline.h"
#include "vecmath_exp.h"
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

/* ln x for positive normal floats, table-driven (the AVX2 counterpart of vecmath512.c's fl_log512), for
 * the sums Σ p·ln p: x = 2^e·m, m ∈ [1, 2); the top three mantissa bits pick c = 1 + (i + ½)/8 from an
 * 8-entry table held in one register (vpermps), ln x = e·ln 2 + ln c + ln(1 + r), r = m/c − 1 formed with
 * one FMA against float 1/c, |r| ≤ 1/17, ln(1 + r) ≈ r + r²·(c₂ + c₃r + c₄r²) with c₂…c₄ minimax for the
 * absolute error on [−1/17, 1/17] (1.9e-8 in exact arithmetic; Benchmarks/logerror/fit_log_polynomial.py).
 * e reaches float through the 2²³ trick (exponent bits or-ed into 2²³'s mantissa, then 2²³ + 127
 * subtracted, both exact), which keeps it off the FMA ports that the rest of the loop needs. 15 vector
 * operations against the 25 of fl_log256; error ≤ 1.5e-7·max(1, |ln x|) on [FLT_MIN, 1] (measured over
 * every float there against float64: 9.6e-8, Benchmarks/logerror/run.sh; VectorTierTests checks the
 * bound through the rounded product p·ln p). 0 and subnormals need no clamp:
 * they read as exponent −127. The table holds float 1/c and ln c = −ln(float(1/c)), so that m·(1/c) − 1
 * and ln c agree. fl_log256 stays for the normals, whose values must not move. */
__attribute__((target("avx2,fma"))) static inline __m256 fl_log256_table(__m256 x) {
    const __m256 inverse = _mm256_setr_ps(0x1.e1e1e2p-1f, 0x1.af286cp-1f, 0x1.861862p-1f, 0x1.642c86p-1f,
                                          0x1.47ae14p-1f, 0x1.2f684cp-1f, 0x1.1a7b96p-1f, 0x1.084210p-1f);
    const __m256 logC = _mm256_setr_ps(0x1.f0a30ap-5f, 0x1.5ff306p-3f, 0x1.1675cap-2f, 0x1.739d7ep-2f,
                                       0x1.c8ff7ep-2f, 0x1.0be72ep-1f, 0x1.307d74p-1f, 0x1.52a2d4p-1f);
    __m256i bits = _mm256_castps_si256(x);
    __m256 e = _mm256_sub_ps(_mm256_castsi256_ps(_mm256_or_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0x4B000000))),
                             _mm256_set1_ps(8388608.0f + 127.0f));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F800000)));
    __m256i i = _mm256_srli_epi32(bits, 20);  /* vpermps reads the low three bits */
    __m256 r = _mm256_fmsub_ps(m, _mm256_permutevar8x32_ps(inverse, i), _mm256_set1_ps(1.0f));
    __m256 q = _mm256_fmadd_ps(r, _mm256_set1_ps(-0x1.00e6c0p-2f), _mm256_set1_ps(0x1.55f35cp-2f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(-0x1.ffffbap-2f));
    __m256 y = _mm256_fmadd_ps(q, _mm256_mul_ps(r, r), r);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693147180559945309f), _mm256_add_ps(_mm256_permutevar8x32_ps(logC, i), y));
}

__attribute__((target("avx2,fma"))) static inline double fl_hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    return (double)_mm_cvtss_f32(s);
}

/* Lanes 0..<count set (count in 1...8). */
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
        h = _mm256_fmadd_ps(v, fl_log256_table(_mm256_max_ps(v, tiny)), h);
        h2 = _mm256_fmadd_ps(w, fl_log256_table(_mm256_max_ps(w, tiny)), h2);
        _mm256_storeu_ps(sum + j, _mm256_add_ps(_mm256_loadu_ps(sum + j), v));
        _mm256_storeu_ps(sum + j + 8, _mm256_add_ps(_mm256_loadu_ps(sum + j + 8), w));
    }
    h = _mm256_add_ps(h, h2);
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(p + j);
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(v, zero, _CMP_NGE_UQ), _mm256_cmp_ps(v, one, _CMP_GT_OQ)));
        s = _mm256_add_ps(s, v);
        h = _mm256_fmadd_ps(v, fl_log256_table(_mm256_max_ps(v, tiny)), h);
        _mm256_storeu_ps(sum + j, _mm256_add_ps(_mm256_loadu_ps(sum + j), v));
    }
    if (j < n) {  /* the tail through a masked load: absent lanes read 0 and add 0·ln(FLT_MIN) = 0 */
        __m256i mask = fl_tail_mask(n - j);
        __m256 v = _mm256_maskload_ps(p + j, mask);
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(v, zero, _CMP_NGE_UQ), _mm256_cmp_ps(v, one, _CMP_GT_OQ)));
        s = _mm256_add_ps(s, v);
        h = _mm256_fmadd_ps(v, fl_log256_table(_mm256_max_ps(v, tiny)), h);
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
        h = _mm256_fmadd_ps(v, fl_log256_table(_mm256_max_ps(v, tiny)), h);
    }
    if (j < n) {
        __m256i mask = fl_tail_mask(n - j);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(values + j, mask), k);
        _mm256_maskstore_ps(values + j, mask, v);
        h = _mm256_fmadd_ps(v, fl_log256_table(_mm256_max_ps(v, tiny)), h);
    }
    return fl_hsum256(h);
}
__attribute__((target("avx2,fma")))
double fl_exp_scaled_f32(float *x, int64_t n, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    __m256 s = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256 v = fl_exp256_nonpositive(_mm256_mul_ps(_mm256_loadu_ps(x + j), vs));
        __m256 w = fl_exp256_nonpositive(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), vs));
        _mm256_storeu_ps(x + j, v);
        _mm256_storeu_ps(x + j + 8, w);
        s = _mm256_add_ps(s, v);
        s2 = _mm256_add_ps(s2, w);
    }
    s = _mm256_add_ps(s, s2);
    for (; j + 8 <= n; j += 8) {
        __m256 v = fl_exp256_nonpositive(_mm256_mul_ps(_mm256_loadu_ps(x + j), vs));
        _mm256_storeu_ps(x + j, v);
        s = _mm256_add_ps(s, v);
    }
    double total = fl_hsum256(s);
    for (; j < n; j++) { x[j] = expf(x[j] * scale); total += x[j]; }
    return total;
}

/* The first-maximum chain, one vector step: a lane moves only on a strictly greater value (NaN never wins,
 * a NaN start never moves), as in the reference. The index of a lane's latest move is its largest, so
 * max_epi32 over (move ? index : 0) replaces a blend (vblendvps is 3 µops on recent Intel cores), and
 * max_ps(v, best) returns best on NaN and on ties. Indices must fit in int32 (the Swift wrappers send longer
 * rows to the simd tier). */
__attribute__((target("avx2,fma"))) static inline void fl_argmax_step256(__m256 v, __m256i index, __m256 *best, __m256i *bestIndex) {
    __m256 g = _mm256_cmp_ps(v, *best, _CMP_GT_OQ);
    *best = _mm256_max_ps(v, *best);
    *bestIndex = _mm256_max_epi32(*bestIndex, _mm256_and_si256(_mm256_castps_si256(g), index));
}

/* The same step for a tail vector whose lanes outside `mask` hold no element. */
__attribute__((target("avx2,fma"))) static inline void fl_argmax_tail256(__m256 v, __m256i mask, __m256i index, __m256 *best, __m256i *bestIndex) {
    __m256 g = _mm256_and_ps(_mm256_cmp_ps(v, *best, _CMP_GT_OQ), _mm256_castsi256_ps(mask));
    *best = _mm256_blendv_ps(*best, v, g);
    *bestIndex = _mm256_max_epi32(*bestIndex, _mm256_and_si256(_mm256_castps_si256(g), index));
}

/* The first maximum over 8 lanes that all started from row[0] with index 0: the smallest index among the
 * lanes holding the largest value; 0 when row[0] is NaN (then every lane is, and nothing moved).
 * Branch-free (the scalar loop it replaces mispredicted on the lanes' values). */
__attribute__((target("avx2,fma"))) static inline int64_t fl_argmax_lanes256(__m256 best, __m256i bestIndex) {
    __m256 top = _mm256_max_ps(best, _mm256_permute2f128_ps(best, best, 1));
    top = _mm256_max_ps(top, _mm256_permute_ps(top, 0x4E));
    top = _mm256_max_ps(top, _mm256_permute_ps(top, 0xB1));
    __m256i c = _mm256_blendv_epi8(_mm256_set1_epi32(INT32_MAX), bestIndex, _mm256_castps_si256(_mm256_cmp_ps(best, top, _CMP_EQ_OQ)));
    c = _mm256_min_epi32(c, _mm256_permute2x128_si256(c, c, 1));
    c = _mm256_min_epi32(c, _mm256_shuffle_epi32(c, 0x4E));
    c = _mm256_min_epi32(c, _mm256_shuffle_epi32(c, 0xB1));
    int first = _mm256_cvtsi256_si32(c);
    return first == INT32_MAX ? 0 : first;
}

__attribute__((target("avx2,fma")))
int64_t fl_sqdiff_argmax_f32(const float *row, const float *mean, int64_t n, double *sqdiff) {
    if (n <= 0) { *sqdiff = 0; return 0; }
    __m256 acc = _mm256_setzero_ps();
    /* The reference's rule: start from row[0] and move only on strictly greater (NaN never wins). */
    __m256 best = _mm256_set1_ps(row[0]);
    __m256i bestIndex = _mm256_setzero_si256(), index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i eight = _mm256_set1_epi32(8);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(row + j), d = _mm256_sub_ps(v, _mm256_loadu_ps(mean + j));
        acc = _mm256_fmadd_ps(d, d, acc);
        fl_argmax_step256(v, index, &best, &bestIndex);
        index = _mm256_add_epi32(index, eight);
    }
    double s = fl_hsum256(acc);
    int64_t arg = fl_argmax_lanes256(best, bestIndex);
    float top = row[arg];
    for (; j < n; j++) {
        float d = row[j] - mean[j];
        s += (double)d * d;
        if (row[j] > top) { top = row[j]; arg = j; }
    }
    *sqdiff = s;
    return arg;
}

/* The accumulators of one member row (Σ p ln p, Σ (p − anchor)², Σ p in lanes, the lanes' first maxima,
 * the invalid-value lanes), shared by the member-row and the sample kernels. */
typedef struct { __m256 h, q, s, best, low; __m256i index; } fl_member_row256;

/* One read of a member row: the accumulators above and p added into sum (stored when `first`),
 * prefetching the member's next rows (FL_ENSEMBLE_PREFETCH_FLOATS ahead). One chain per accumulator
 * (at most 8 cycles of latency per 16 floats, under the loop's throughput): AVX2 has 16 vector registers,
 * and a second chain per accumulator made the compiler spill them on every iteration. */
__attribute__((target("avx2,fma"), always_inline)) static inline fl_member_row256 fl_member_row_pass256(const float *p, const float *anchor, float *sum,
                                                                                         int64_t n, int first) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi32(8);
    __m256 h = zero, s = zero, q = zero;
    __m256 best = _mm256_set1_ps(p[0]), low = best;
    __m256i bestIndex = _mm256_setzero_si256(), index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        _mm_prefetch((const char *)(p + j + FL_ENSEMBLE_PREFETCH_FLOATS), _MM_HINT_T0);
        __m256 v = _mm256_loadu_ps(p + j), w = _mm256_loadu_ps(p + j + 8);
        low = _mm256_min_ps(low, _mm256_min_ps(v, w));
        s = _mm256_add_ps(s, _mm256_add_ps(v, w));
        h = _mm256_fmadd_ps(w, fl_log256_table(w), _mm256_fmadd_ps(v, fl_log256_table(v), h));
        __m256 dv = _mm256_sub_ps(v, _mm256_loadu_ps(anchor + j)), dw = _mm256_sub_ps(w, _mm256_loadu_ps(anchor + j + 8));
        q = _mm256_fmadd_ps(dw, dw, _mm256_fmadd_ps(dv, dv, q));
        fl_argmax_step256(v, index, &best, &bestIndex);
        index = _mm256_add_epi32(index, eight);
        fl_argmax_step256(w, index, &best, &bestIndex);
        index = _mm256_add_epi32(index, eight);
        if (first) {  /* + 0 makes −0.0 +0.0, as the other tiers' 0 + p does */
            _mm256_storeu_ps(sum + j, _mm256_add_ps(v, zero));
            _mm256_storeu_ps(sum + j + 8, _mm256_add_ps(w, zero));
        } else {
            _mm256_storeu_ps(sum + j, _mm256_add_ps(_mm256_loadu_ps(sum + j), v));
            _mm256_storeu_ps(sum + j + 8, _mm256_add_ps(_mm256_loadu_ps(sum + j + 8), w));
        }
    }
    for (; j < n; j += 8) {
        if (!(j & 15)) _mm_prefetch((const char *)(p + j + FL_ENSEMBLE_PREFETCH_FLOATS), _MM_HINT_T0);  /* short rows too */
        __m256i mask = fl_tail_mask(n - j < 8 ? n - j : 8);
        __m256 v = _mm256_maskload_ps(p + j, mask);
        low = _mm256_min_ps(low, v);
        s = _mm256_add_ps(s, v);
        h = _mm256_fmadd_ps(v, fl_log256_table(v), h);
        __m256 dv = _mm256_sub_ps(v, _mm256_maskload_ps(anchor + j, mask));
        q = _mm256_fmadd_ps(dv, dv, q);
        fl_argmax_tail256(v, mask, index, &best, &bestIndex);
        index = _mm256_add_epi32(index, eight);
        _mm256_maskstore_ps(sum + j, mask, _mm256_add_ps(first ? zero : _mm256_maskload_ps(sum + j, mask), v));
    }
    fl_member_row256 r = { h, q, s, best, low, bestIndex };
    return r;
}

/* Whether the row held a value outside [0, 1] or NaN: its smallest value below 0 (−∞ included), its largest
 * above 1 (+∞ included; the lanes' maxima are the argmax's), or a NaN, which no min/max keeps but every
 * sum does. */
__attribute__((target("avx2,fma"))) static inline int fl_member_row_invalid256(fl_member_row256 r) {
    __m256 bad = _mm256_or_ps(_mm256_cmp_ps(r.low, _mm256_setzero_ps(), _CMP_LT_OQ), _mm256_cmp_ps(r.best, _mm256_set1_ps(1.0f), _CMP_GT_OQ));
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(r.s, r.s, _CMP_UNORD_Q));
    return _mm256_movemask_ps(bad) != 0;
}

__attribute__((target("avx2,fma")))
int64_t fl_ensemble_member_row_f32(const float *p, const float *anchor, float *sum, int64_t n, double out[3], int *invalid) {
    if (n <= 0) { out[0] = out[1] = out[2] = 0; *invalid = 0; return 0; }
    fl_member_row256 r = fl_member_row_pass256(p, anchor, sum, n, 0);
    out[0] = fl_hsum256(r.h);
    out[1] = fl_hsum256(r.s);
    out[2] = fl_hsum256(r.q);
    *invalid = fl_member_row_invalid256(r);
    return fl_argmax_lanes256(r.best, r.index);
}

/* Adds the 8 float lanes of v into the 4 double lanes of *acc (no horizontal step). */
__attribute__((target("avx2,fma"))) static inline void fl_widen_add256(__m256d *acc, __m256 v) {
    *acc = _mm256_add_pd(*acc, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

__attribute__((target("avx2,fma"))) static inline double fl_hsum256d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

__attribute__((target("avx2,fma")))
int64_t fl_ensemble_mean_row_f32(float *values, const float *anchor, int64_t n, float scale, double out[2]) {
    if (n <= 0) { out[0] = out[1] = 0; return 0; }
    const __m256 tiny = _mm256_set1_ps(1.17549435e-38f), k = _mm256_set1_ps(scale);
    const __m256i eight = _mm256_set1_epi32(8);
    __m256 h = _mm256_setzero_ps(), q = _mm256_setzero_ps();
    __m256 best = _mm256_set1_ps(values[0] * scale);
    __m256i bestIndex = _mm256_setzero_si256(), index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(values + j), k);
        _mm256_storeu_ps(values + j, v);
        h = _mm256_fmadd_ps(v, fl_log256_table(_mm256_max_ps(v, tiny)), h);
        __m256 d = _mm256_sub_ps(v, _mm256_loadu_ps(anchor + j));
        q = _mm256_fmadd_ps(d, d, q);
        fl_argmax_step256(v, index, &best, &bestIndex);
        index = _mm256_add_epi32(index, eight);
    }
    if (j < n) {
        __m256i mask = fl_tail_mask(n - j);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(values + j, mask), k);
        _mm256_maskstore_ps(values + j, mask, v);
        h = _mm256_fmadd_ps(v, fl_log256_table(_mm256_max_ps(v, tiny)), h);
        __m256 d = _mm256_sub_ps(v, _mm256_maskload_ps(anchor + j, mask));
        q = _mm256_fmadd_ps(d, d, q);
        fl_argmax_tail256(v, mask, index, &best, &bestIndex);
    }
    out[0] = fl_hsum256(h);
    out[1] = fl_hsum256(q);
    return fl_argmax_lanes256(best, bestIndex);
}

/* One sample of the ensemble pass (see CFaultline.h): every member row, then the mean row, in one call. */
__attribute__((target("avx2,fma")))
int64_t fl_ensemble_sample_f32(const float *const *members, int64_t offset, int64_t m, int64_t n, float scale, float *mean,
                               int64_t *argmax, double out[4], double *total, int *invalid) {
    *total = 0; *invalid = 0;
    if (n <= 0 || m <= 0) { out[0] = out[1] = out[2] = out[3] = 0; for (int64_t k = 0; k <= m; k++) argmax[k] = 0; return -1; }
    const float *anchor = members[0] + offset;
    __m256d h = _mm256_setzero_pd(), q = _mm256_setzero_pd();
    for (int64_t k = 0; k < m; k++) {
        /* Two inlined copies, so that neither loop tests `first`: the test split the loop body, and the
         * compiler then spilled accumulators on every iteration. */
        fl_member_row256 r = k == 0 ? fl_member_row_pass256(members[k] + offset, anchor, mean, n, 1)
                                    : fl_member_row_pass256(members[k] + offset, anchor, mean, n, 0);
        double s = fl_hsum256(r.s);
        int bad = fl_member_row_invalid256(r);
        if (bad || fabs(s - 1) > FL_ENSEMBLE_SUM_TOLERANCE) { *total = s; *invalid = bad; return k; }
        fl_widen_add256(&h, r.h);
        fl_widen_add256(&q, r.q);
        argmax[k] = fl_argmax_lanes256(r.best, r.index);
    }
    double meanOut[2];
    argmax[m] = fl_ensemble_mean_row_f32(mean, anchor, n, scale, meanOut);
    out[0] = fl_hsum256d(h);
    out[1] = fl_hsum256d(q);
    out[2] = meanOut[0];
    out[3] = meanOut[1];
    return -1;
}

/* ---- Philox4x32-10 normals (the layout and definition of the Swift `Philox.fillNormals`) ---- */

__attribute__((target("avx2,fma"))) static inline void fl_mulhilo(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(a, m);                       /* 64-bit products of lanes 0, 2, 4, 6 */
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m); /* lanes 1, 3, 5, 7 */
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

__attribute__((target("avx2,fma"))) static inline void fl_box_muller(__m256i a, __m256i b, __m256 *z0, __m256 *z1) {
    const __m256 two = _mm256_set1_ps(2.0f);
    __m256 u1 = _mm256_sub_ps(two, _mm256_castsi256_ps(_mm256_or_si256(_mm256_srli_epi32(a, 9), _mm256_set1_epi32(0x3F800000))));
    __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), fl_log256(u1)));
    __m256i m = _mm256_srli_epi32(b, 9);
    __m256i q = _mm256_srli_epi32(_mm256_add_epi32(m, _mm256_set1_epi32(1 << 20)), 21);
    __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(m, _mm256_slli_epi32(q, 21))), _mm256_set1_ps(6.28318530717958647692f / 8388608.0f));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 s = _mm256_fmadd_ps(x2, _mm256_set1_ps(1.0f / 362880.0f), _mm256_set1_ps(-1.0f / 5040.0f));
    s = _mm256_fmadd_ps(x2, s, _mm256_set1_ps(1.0f / 120.0f));
    s = _mm256_fmadd_ps(x2, s, _mm256_set1_ps(-1.0f / 6.0f));
    s = _mm256_fmadd_ps(_mm256_mul_ps(x, x2), s, x);
    __m256 c = _mm256_fmadd_ps(x2, _mm256_set1_ps(1.0f / 40320.0f), _mm256_set1_ps(-1.0f / 720.0f));
    c = _mm256_fmadd_ps(x2, c, _mm256_set1_ps(1.0f / 24.0f));
    c = _mm256_fmadd_ps(x2, c, _mm256_set1_ps(-0.5f));
    c = _mm256_fmadd_ps(x2, c, _mm256_set1_ps(1.0f));
    __m256i quadrant = _mm256_and_si256(q, _mm256_set1_epi32(3));
    __m256 swap = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(quadrant, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
    __m256 cosine = _mm256_blendv_ps(c, s, swap), sine = _mm256_blendv_ps(s, c, swap);
    __m256i cosFlip = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(_mm256_add_epi32(q, _mm256_set1_epi32(1)), 1), _mm256_set1_epi32(1)), 31);
    __m256i sinFlip = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(q, 1), _mm256_set1_epi32(1)), 31);
    *z0 = _mm256_mul_ps(r, _mm256_xor_ps(cosine, _mm256_castsi256_ps(cosFlip)));
    *z1 = _mm256_mul_ps(r, _mm256_xor_ps(sine, _mm256_castsi256_ps(sinFlip)));
}

/* The 32 normals of blocks 8g … 8g+7 into z[0..32): output k of block 8g + l at z[8k + l]. */
__attribute__((target("avx2,fma"))) static inline void fl_normal_group(int64_t g, uint32_t k0, uint32_t k1, uint32_t s0, uint32_t s1, float *z) {
    uint64_t first = (uint64_t)g * 8;
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)first), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i c1 = _mm256_set1_epi32((int)(uint32_t)(first >> 32));
    if ((uint32_t)first > UINT32_MAX - 7) {  /* carry into the high word for lanes that wrapped */
        for (int l = 0; l < 8; l++) if ((uint32_t)first + (uint32_t)l < (uint32_t)first) ((uint32_t *)&c1)[l] += 1;
    }
    __m256i c2 = _mm256_set1_epi32((int)s0), c3 = _mm256_set1_epi32((int)s1);
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53), m1 = _mm256_set1_epi32((int)0xCD9E8D57);
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        __m256i hi0, lo0, hi1, lo1;
        fl_mulhilo(c0, m0, &hi0, &lo0);
        fl_mulhilo(c2, m1, &hi1, &lo1);
        __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    }
    __m256 z0, z1, z2, z3;
    fl_box_muller(c0, c1, &z0, &z1);
    fl_box_muller(c2, c3, &z2, &z3);
    _mm256_storeu_ps(z, z0);
    _mm256_storeu_ps(z + 8, z1);
    _mm256_storeu_ps(z + 16, z2);
    _mm256_storeu_ps(z + 24, z3);
}

__attribute__((target("avx2,fma")))
void fl_fill_normals_f32(float *out, int64_t start, int64_t count, uint64_t seed, uint64_t stream) {
    if (count <= 0) return;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32), s0 = (uint32_t)stream, s1 = (uint32_t)(stream >> 32);
    int64_t end = start + count, t = start;
    float group[32];
    while (t < end) {
        int64_t g = t / 32, lo = t - 32 * g, hi = end - 32 * g < 32 ? end - 32 * g : 32;
        if (lo == 0 && hi == 32) {
            fl_normal_group(g, k0, k1, s0, s1, out + (32 * g - start));
        } else {
            fl_normal_group(g, k0, k1, s0, s1, group);
            memcpy(out + (32 * g + lo - start), group + lo, (size_t)(hi - lo) * sizeof(float));
        }
        t = 32 * g + hi;
    }
}
#else
int64_t fl_ensemble_member_row_f32(const float *p, const float *anchor, float *sum, int64_t n, double out[3], int *invalid) {
    (void)p; (void)anchor; (void)sum; (void)n; out[0] = out[1] = out[2] = 0; *invalid = 1; return 0;
}
int64_t fl_ensemble_sample_f32(const float *const *members, int64_t offset, int64_t m, int64_t n, float scale, float *mean,
                               int64_t *argmax, double out[4], double *total, int *invalid) {
    (void)members; (void)offset; (void)n; (void)scale; (void)mean; out[0] = out[1] = out[2] = out[3] = 0;
    for (int64_t k = 0; k <= m; k++) argmax[k] = 0;
    *total = 0; *invalid = 1; return 0;
}
int64_t fl_ensemble_mean_row_f32(float *values, const float *anchor, int64_t n, float scale, double out[2]) {
    (void)values; (void)anchor; (void)n; (void)scale; out[0] = out[1] = 0; return 0;
}
void fl_fill_normals_f32(float *out, int64_t start, int64_t count, uint64_t seed, uint64_t stream) { (void)out; (void)start; (void)count; (void)seed; (void)stream; }
int64_t fl_sqdiff_argmax_f32(const float *row, const float *mean, int64_t n, double *sqdiff) { (void)row; (void)mean; (void)n; *sqdiff = 0; return 0; }
double fl_exp_scaled_f32(float *x, int64_t n, float scale) { (void)x; (void)n; (void)scale; return 0; }
void fl_xlogx_accumulate_f32(const float *p, float *sum, int64_t n, double *xlogx, double *total, int *invalid) {
    (void)p; (void)sum; (void)n; *xlogx = 0; *total = 0; *invalid = 1;
}
double fl_xlogx_scale_f32(float *values, int64_t n, float scale) { (void)values; (void)n; (void)scale; return 0; }
#endif
