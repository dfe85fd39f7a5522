/* The AVX-512 tier of the fused kernels of vecmath.c and softmax_rows.c: the same definitions, 16 float
 * (8 double) lanes, tails through mask registers (no scalar tail loops), compiled through per-function
 * target attributes only (no global flags, so the package stays consumable). Callers check
 * fl_vecmath_avx512_available() first (cpuid AVX-512 F/BW/VL/DQ + FMA and the OS saving ZMM state);
 * the choice between the tiers is made in one place, `Linalg.kernelTier` (RowKernels.swift).
 *
 * Element-wise results (the exp of fl_exp_scaled_f32, Philox normals) are bit-identical to the AVX2
 * tier: the same operations in the same order per lane. Sums differ from it only by the order of
 * float additions (16 partial sums instead of 8).
 *
 * The logarithm here is table-driven (fl_log512): x = 2^e·m, m ∈ [1, 2); the top five mantissa bits
 * pick c = 1 + (i + ½)/32 from a 32-entry table held in two registers (one vpermt2ps), and
 * ln x = e·ln 2 + ln c + ln(1 + r), r = m/c − 1 formed with one FMA against a float 1/c, |r| < 1/64,
 * ln(1 + r) ≈ r − r²/2 + r³/3 (truncation < r⁴/4 < 1.5e-8). About 11 instructions against the
 * 24 of the Cephes polynomial; error ≤ 1.5e-7·max(1, |ln x|) on [FLT_MIN, 1] (measured 1.41e-7 against
 * float64 over 4 M points; Cephes: 1.18e-7), which the sums Σ p·ln p need: absolute, not relative. */
#include "CFaultline.h"
#include <float.h>
#include <math.h>
#include <string.h>

int fl_vecmath_avx512_available(void) {
    static int cached = -1;
    if (cached < 0) {
        fl_cpu_features f;
        fl_cpu_features_get(&f);
        cached = f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.os_saves_zmm;
    }
    return cached;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define FL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")))

/* ln c_i and 1/c_i (rounded to float) for c_i = 1 + (i + 0.5)/32; ln c_i is that of the rounded
 * inverse, −ln(float(1/c_i)), so that m·inv − 1 and the table are consistent. Filled once. */
static float fl_log_table_ln[32], fl_log_table_inv[32];
static int fl_log_table_ready;

static void fl_log_table_fill(void) {
    for (int i = 0; i < 32; i++) {
        float inv = (float)(1.0 / (1.0 + (i + 0.5) / 32.0));
        fl_log_table_inv[i] = inv;
        fl_log_table_ln[i] = (float)(-log((double)inv));
    }
    __atomic_store_n(&fl_log_table_ready, 1, __ATOMIC_RELEASE);
}

static inline void fl_log_table_once(void) {
    if (!__atomic_load_n(&fl_log_table_ready, __ATOMIC_ACQUIRE)) fl_log_table_fill();  /* idempotent: racing fills write the same values */
}

typedef struct { __m512 ln_lo, ln_hi, inv_lo, inv_hi; } fl_log_tables;

FL_AVX512 static inline fl_log_tables fl_log_tables_load(void) {
    fl_log_table_once();
    fl_log_tables t;
    t.ln_lo = _mm512_loadu_ps(fl_log_table_ln);
    t.ln_hi = _mm512_loadu_ps(fl_log_table_ln + 16);
    t.inv_lo = _mm512_loadu_ps(fl_log_table_inv);
    t.inv_hi = _mm512_loadu_ps(fl_log_table_inv + 16);
    return t;
}

/* ln x for positive normal floats (see the file comment). */
FL_AVX512 static inline __m512 fl_log512(__m512 x, const fl_log_tables *t) {
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __m512 e = _mm512_getexp_ps(x);
    __m512i i = _mm512_srli_epi32(_mm512_castps_si512(x), 18);  /* vpermt2ps reads the low five bits */
    __m512 inv = _mm512_permutex2var_ps(t->inv_lo, i, t->inv_hi);
    __m512 ln = _mm512_permutex2var_ps(t->ln_lo, i, t->ln_hi);
    __m512 r = _mm512_fmsub_ps(m, inv, _mm512_set1_ps(1.0f));
    __m512 p = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 3.0f), _mm512_set1_ps(-0.5f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693147180559945309f), _mm512_add_ps(ln, p));
}

/* The Cephes ln of vecmath.c (fl_log256), 16 lanes: for the Box–Muller radius, so that the normals
 * stay bit-identical to the AVX2 tier. */
FL_AVX512 static inline __m512 fl_log512_cephes(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512i bits = _mm512_castps_si512(x);
    __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126));
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)), _mm512_set1_epi32(0x3F000000)));
    __mmask16 small = _mm512_cmp_ps_mask(m, _mm512_set1_ps(0.70710678118654752f), _CMP_LT_OQ);
    e = _mm512_mask_sub_epi32(e, small, e, _mm512_set1_epi32(1));
    m = _mm512_mask_add_ps(m, small, m, m);
    __m512 t = _mm512_sub_ps(m, one);
    __m512 p = _mm512_set1_ps(7.0376836292e-2f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.1514610310e-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.1676998740e-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.2420140846e-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.4249322787e-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.6668057665e-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(2.0000714765e-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-2.4999993993e-1f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(3.3333331174e-1f));
    __m512 t2 = _mm512_mul_ps(t, t);
    __m512 ef = _mm512_cvtepi32_ps(e);
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, t), t2);
    y = _mm512_fmadd_ps(ef, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), t2, y);
    y = _mm512_add_ps(y, t);
    return _mm512_fmadd_ps(ef, _mm512_set1_ps(0.693359375f), y);
}

/* exp x for x ≤ 0 (fl_exp256_nonpositive of vecmath_exp.h, 16 lanes, the same operations). */
FL_AVX512 static inline __m512 fl_exp512_nonpositive(__m512 x) {
    const __m512 lower = _mm512_set1_ps(-87.3f);
    __mmask16 underflow = _mm512_cmp_ps_mask(x, lower, _CMP_LT_OQ);
    x = _mm512_max_ps(lower, x);  /* NaN in the second operand propagates */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 er = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i scale = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps((__mmask16)~underflow, er, _mm512_castsi512_ps(scale));
}

/* Σ of 16 float lanes in double, in a fixed order. */
FL_AVX512 static inline double fl_hsum512(__m512 v) {
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v)), hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

static inline __mmask16 fl_mask16(int64_t remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1u);
}

FL_AVX512
void fl_xlogx_accumulate_f32_avx512(const float *p, float *sum, int64_t n, double *xlogx, double *total, int *invalid) {
    const fl_log_tables lt = fl_log_tables_load();
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), tiny = _mm512_set1_ps(FLT_MIN);
    __m512 h = zero, h2 = zero, s = zero;
    __mmask16 bad = 0;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {  /* two independent chains per iteration */
        __m512 v = _mm512_loadu_ps(p + j), w = _mm512_loadu_ps(p + j + 16);
        bad |= _mm512_cmp_ps_mask(v, zero, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(v, one, _CMP_GT_OQ);
        bad |= _mm512_cmp_ps_mask(w, zero, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(w, one, _CMP_GT_OQ);
        s = _mm512_add_ps(s, _mm512_add_ps(v, w));
        h = _mm512_fmadd_ps(v, fl_log512(_mm512_max_ps(v, tiny), &lt), h);
        h2 = _mm512_fmadd_ps(w, fl_log512(_mm512_max_ps(w, tiny), &lt), h2);
        _mm512_storeu_ps(sum + j, _mm512_add_ps(_mm512_loadu_ps(sum + j), v));
        _mm512_storeu_ps(sum + j + 16, _mm512_add_ps(_mm512_loadu_ps(sum + j + 16), w));
    }
    h = _mm512_add_ps(h, h2);
    for (; j < n; j += 16) {  /* ≤ 2 iterations; absent lanes read 0 and add 0·ln(FLT_MIN) = 0 */
        __mmask16 k = fl_mask16(n - j);
        __m512 v = _mm512_maskz_loadu_ps(k, p + j);
        bad |= _mm512_cmp_ps_mask(v, zero, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(v, one, _CMP_GT_OQ);
        s = _mm512_add_ps(s, v);
        h = _mm512_fmadd_ps(v, fl_log512(_mm512_max_ps(v, tiny), &lt), h);
        _mm512_mask_storeu_ps(sum + j, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, sum + j), v));
    }
    *xlogx = fl_hsum512(h);
    *total = fl_hsum512(s);
    *invalid = bad != 0;
}

FL_AVX512
double fl_xlogx_scale_f32_avx512(float *values, int64_t n, float scale) {
    const fl_log_tables lt = fl_log_tables_load();
    const __m512 tiny = _mm512_set1_ps(FLT_MIN), k = _mm512_set1_ps(scale);
    __m512 h = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = fl_mask16(n - j);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, values + j), k);
        _mm512_mask_storeu_ps(values + j, m, v);
        h = _mm512_fmadd_ps(v, fl_log512(_mm512_max_ps(v, tiny), &lt), h);
    }
    return fl_hsum512(h);
}

FL_AVX512
double fl_exp_scaled_f32_avx512(float *x, int64_t n, float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    __m512 s = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 v = fl_exp512_nonpositive(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs));
        __m512 w = fl_exp512_nonpositive(_mm512_mul_ps(_mm512_loadu_ps(x + j + 16), vs));
        _mm512_storeu_ps(x + j, v);
        _mm512_storeu_ps(x + j + 16, w);
        s = _mm512_add_ps(s, v);
        s2 = _mm512_add_ps(s2, w);
    }
    s = _mm512_add_ps(s, s2);
    for (; j < n; j += 16) {
        __mmask16 k = fl_mask16(n - j);
        __m512 v = fl_exp512_nonpositive(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + j), vs));
        _mm512_mask_storeu_ps(x + j, k, v);
        s = _mm512_mask_add_ps(s, k, s, v);
    }
    return fl_hsum512(s);
}

/* Σ of the 16 lanes of a, b and c at once (float tree, shared shuffles): out[0..3). */
FL_AVX512 static inline void fl_hsum3_512(__m512 a, __m512 b, __m512 c, double out[3]) {
    /* 512 → 256: fold the upper halves, then interleave a/b/c into one 256-bit vector per pair of steps. */
    __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
    __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
    __m256 ab = _mm256_hadd_ps(a8, b8);            /* a01 a23 b01 b23 | a45 a67 b45 b67 */
    __m256 cc = _mm256_hadd_ps(c8, c8);
    __m256 abcc = _mm256_hadd_ps(ab, cc);          /* a0-3 b0-3 c0-3 c0-3 | a4-7 b4-7 c4-7 c4-7 */
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(abcc), _mm256_extractf128_ps(abcc, 1));
    float lanes[4];
    _mm_storeu_ps(lanes, r);
    out[0] = lanes[0]; out[1] = lanes[1]; out[2] = lanes[2];
}

/* Merges two (best, index) chains: the larger value, the smaller index on ties. */
FL_AVX512 static inline void fl_argmax_merge512(__m512 *best, __m512i *index, __m512 other, __m512i otherIndex) {
    __mmask16 take = _mm512_cmp_ps_mask(other, *best, _CMP_GT_OQ)
                   | (_mm512_cmp_ps_mask(other, *best, _CMP_EQ_OQ) & _mm512_cmplt_epi32_mask(otherIndex, *index));
    *best = _mm512_mask_mov_ps(*best, take, other);
    *index = _mm512_mask_mov_epi32(*index, take, otherIndex);
}

/* The first maximum over 16 lanes (lanes start from row[0] with index 0, so every lane is ≥ row[0]). */
FL_AVX512 static inline int64_t fl_argmax_lanes512(__m512 best, __m512i index) {
    float top = _mm512_reduce_max_ps(best);
    __mmask16 at = _mm512_cmp_ps_mask(best, _mm512_set1_ps(top), _CMP_EQ_OQ);
    if (at == 0) return 0;  /* row[0] is NaN, so every lane is: nothing is greater, as in the reference */
    return _mm512_mask_reduce_min_epi32(at, index);
}

/* The first maximum with the reference's rule: start from row[0], move only on strictly greater
 * (so NaN never wins, and a NaN in row[0] keeps index 0). Two independent chains per iteration. */
FL_AVX512
int64_t fl_sqdiff_argmax_f32_avx512(const float *row, const float *mean, int64_t n, double *sqdiff) {
    if (n <= 0) { *sqdiff = 0; return 0; }
    __m512 acc = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps();
    __m512 best = _mm512_set1_ps(row[0]), best2 = best;
    __m512i bestIndex = _mm512_setzero_si512(), bestIndex2 = bestIndex;
    __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16), thirtytwo = _mm512_set1_epi32(32);
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 v = _mm512_loadu_ps(row + j), w = _mm512_loadu_ps(row + j + 16);
        __m512 d = _mm512_sub_ps(v, _mm512_loadu_ps(mean + j)), e = _mm512_sub_ps(w, _mm512_loadu_ps(mean + j + 16));
        acc = _mm512_fmadd_ps(d, d, acc);
        acc2 = _mm512_fmadd_ps(e, e, acc2);
        __mmask16 gv = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ), gw = _mm512_cmp_ps_mask(w, best2, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, gv, v);
        bestIndex = _mm512_mask_mov_epi32(bestIndex, gv, index);
        best2 = _mm512_mask_mov_ps(best2, gw, w);
        bestIndex2 = _mm512_mask_mov_epi32(bestIndex2, gw, _mm512_add_epi32(index, sixteen));
        index = _mm512_add_epi32(index, thirtytwo);
    }
    acc = _mm512_add_ps(acc, acc2);
    fl_argmax_merge512(&best, &bestIndex, best2, bestIndex2);
    for (; j < n; j += 16) {
        __mmask16 k = fl_mask16(n - j);
        __m512 v = _mm512_maskz_loadu_ps(k, row + j), d = _mm512_sub_ps(v, _mm512_maskz_loadu_ps(k, mean + j));
        acc = _mm512_fmadd_ps(d, d, acc);
        __mmask16 g = _mm512_mask_cmp_ps_mask(k, v, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, g, v);
        bestIndex = _mm512_mask_mov_epi32(bestIndex, g, index);
        index = _mm512_add_epi32(index, sixteen);
    }
    *sqdiff = fl_hsum512(acc);
    return fl_argmax_lanes512(best, bestIndex);
}

/* The accumulators of one member row: Σ p ln p (h), Σ (p − anchor)² (q) and Σ p (s) as lane vectors,
 * the lanes' first maxima, and the invalid-value lanes. */
typedef struct { __m512 h, q, s, best; __m512i index; __mmask16 bad; } fl_member_row512;

/* One read of a member row: the accumulators above, and p added into sum (stored when `first`, so the
 * caller need not clear it), prefetching the member's next rows (FL_ENSEMBLE_PREFETCH_FLOATS ahead). */
FL_AVX512 static inline fl_member_row512 fl_member_row_pass512(const float *p, const float *anchor, float *sum, int64_t n, int first,
                                                               const fl_log_tables *lt) {
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), tiny = _mm512_set1_ps(FLT_MIN);
    __m512 h = zero, h2 = zero, s = zero, q = zero, q2 = zero;
    __m512 best = _mm512_set1_ps(p[0]), best2 = best;
    __m512i bestIndex = _mm512_setzero_si512(), bestIndex2 = bestIndex;
    __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16), thirtytwo = _mm512_set1_epi32(32);
    __mmask16 bad = 0;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        _mm_prefetch((const char *)(p + j + FL_ENSEMBLE_PREFETCH_FLOATS), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + j + FL_ENSEMBLE_PREFETCH_FLOATS + 16), _MM_HINT_T0);
        __m512 v = _mm512_loadu_ps(p + j), w = _mm512_loadu_ps(p + j + 16);
        bad |= _mm512_cmp_ps_mask(v, zero, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(v, one, _CMP_GT_OQ);
        bad |= _mm512_cmp_ps_mask(w, zero, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(w, one, _CMP_GT_OQ);
        s = _mm512_add_ps(s, _mm512_add_ps(v, w));
        h = _mm512_fmadd_ps(v, fl_log512(_mm512_max_ps(v, tiny), lt), h);
        h2 = _mm512_fmadd_ps(w, fl_log512(_mm512_max_ps(w, tiny), lt), h2);
        __m512 dv = _mm512_sub_ps(v, _mm512_loadu_ps(anchor + j)), dw = _mm512_sub_ps(w, _mm512_loadu_ps(anchor + j + 16));
        q = _mm512_fmadd_ps(dv, dv, q);
        q2 = _mm512_fmadd_ps(dw, dw, q2);
        __mmask16 gv = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ), gw = _mm512_cmp_ps_mask(w, best2, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, gv, v);
        bestIndex = _mm512_mask_mov_epi32(bestIndex, gv, index);
        best2 = _mm512_mask_mov_ps(best2, gw, w);
        bestIndex2 = _mm512_mask_mov_epi32(bestIndex2, gw, _mm512_add_epi32(index, sixteen));
        index = _mm512_add_epi32(index, thirtytwo);
        if (first) {  /* + 0 makes −0.0 +0.0, as the other tiers' 0 + p does */
            _mm512_storeu_ps(sum + j, _mm512_add_ps(v, zero));
            _mm512_storeu_ps(sum + j + 16, _mm512_add_ps(w, zero));
        } else {
            _mm512_storeu_ps(sum + j, _mm512_add_ps(_mm512_loadu_ps(sum + j), v));
            _mm512_storeu_ps(sum + j + 16, _mm512_add_ps(_mm512_loadu_ps(sum + j + 16), w));
        }
    }
    h = _mm512_add_ps(h, h2);
    q = _mm512_add_ps(q, q2);
    fl_argmax_merge512(&best, &bestIndex, best2, bestIndex2);
    for (; j < n; j += 16) {
        _mm_prefetch((const char *)(p + j + FL_ENSEMBLE_PREFETCH_FLOATS), _MM_HINT_T0);  /* short rows too */
        __mmask16 k = fl_mask16(n - j);
        __m512 v = _mm512_maskz_loadu_ps(k, p + j);
        bad |= _mm512_cmp_ps_mask(v, zero, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(v, one, _CMP_GT_OQ);
        s = _mm512_add_ps(s, v);
        h = _mm512_fmadd_ps(v, fl_log512(_mm512_max_ps(v, tiny), lt), h);
        __m512 dv = _mm512_sub_ps(v, _mm512_maskz_loadu_ps(k, anchor + j));
        q = _mm512_fmadd_ps(dv, dv, q);
        __mmask16 gv = _mm512_mask_cmp_ps_mask(k, v, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, gv, v);
        bestIndex = _mm512_mask_mov_epi32(bestIndex, gv, index);
        index = _mm512_add_epi32(index, sixteen);
        _mm512_mask_storeu_ps(sum + j, k, _mm512_add_ps(first ? zero : _mm512_maskz_loadu_ps(k, sum + j), v));
    }
    fl_member_row512 r = { h, q, s, best, bestIndex, bad };
    return r;
}

/* One member row of the ensemble pass (see CFaultline.h). */
FL_AVX512
int64_t fl_ensemble_member_row_f32_avx512(const float *p, const float *anchor, float *sum, int64_t n, double out[3], int *invalid) {
    if (n <= 0) { out[0] = out[1] = out[2] = 0; *invalid = 0; return 0; }
    const fl_log_tables lt = fl_log_tables_load();
    fl_member_row512 r = fl_member_row_pass512(p, anchor, sum, n, 0, &lt);
    fl_hsum3_512(r.h, r.s, r.q, out);
    *invalid = r.bad != 0;
    return fl_argmax_lanes512(r.best, r.index);
}

/* Adds the 16 float lanes of v into the 8 double lanes of *acc (no horizontal step). */
FL_AVX512 static inline void fl_widen_add512(__m512d *acc, __m512 v) {
    *acc = _mm512_add_pd(*acc, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
}

/* The mean row of the ensemble pass: values *= scale in place, Σ v ln v, Σ (v − anchor)², first argmax. */
FL_AVX512
int64_t fl_ensemble_mean_row_f32_avx512(float *values, const float *anchor, int64_t n, float scale, double out[2]) {
    if (n <= 0) { out[0] = out[1] = 0; return 0; }
    const fl_log_tables lt = fl_log_tables_load();
    const __m512 tiny = _mm512_set1_ps(FLT_MIN), k = _mm512_set1_ps(scale);
    __m512 h = _mm512_setzero_ps(), q = _mm512_setzero_ps();
    __m512 best = _mm512_set1_ps(values[0] * scale);
    __m512i bestIndex = _mm512_setzero_si512(), index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = fl_mask16(n - j);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, values + j), k);
        _mm512_mask_storeu_ps(values + j, m, v);
        h = _mm512_fmadd_ps(v, fl_log512(_mm512_max_ps(v, tiny), &lt), h);
        __m512 d = _mm512_sub_ps(v, _mm512_maskz_loadu_ps(m, anchor + j));
        q = _mm512_fmadd_ps(d, d, q);
        __mmask16 g = _mm512_mask_cmp_ps_mask(m, v, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, g, v);
        bestIndex = _mm512_mask_mov_epi32(bestIndex, g, index);
        index = _mm512_add_epi32(index, sixteen);
    }
    double three[3];
    fl_hsum3_512(h, q, q, three);
    out[0] = three[0];
    out[1] = three[1];
    return fl_argmax_lanes512(best, bestIndex);
}

/* One sample of the ensemble pass (see CFaultline.h): every member row, then the mean row, in one call;
 * each member's Σ p ln p and spread stay in lanes (widened to double per member) until the end. */
FL_AVX512
int64_t fl_ensemble_sample_f32_avx512(const float *const *members, int64_t offset, int64_t m, int64_t n, float scale, float *mean,
                                      int64_t *argmax, double out[4], double *total, int *invalid) {
    *total = 0; *invalid = 0;
    if (n <= 0 || m <= 0) { out[0] = out[1] = out[2] = out[3] = 0; for (int64_t k = 0; k <= m; k++) argmax[k] = 0; return -1; }
    const fl_log_tables lt = fl_log_tables_load();
    const float *anchor = members[0] + offset;
    __m512d h = _mm512_setzero_pd(), q = _mm512_setzero_pd();
    for (int64_t k = 0; k < m; k++) {
        fl_member_row512 r = fl_member_row_pass512(members[k] + offset, anchor, mean, n, k == 0, &lt);
        double s = fl_hsum512(r.s);
        if (r.bad || fabs(s - 1) > FL_ENSEMBLE_SUM_TOLERANCE) { *total = s; *invalid = r.bad != 0; return k; }
        fl_widen_add512(&h, r.h);
        fl_widen_add512(&q, r.q);
        argmax[k] = fl_argmax_lanes512(r.best, r.index);
    }
    double meanOut[2];
    argmax[m] = fl_ensemble_mean_row_f32_avx512(mean, anchor, n, scale, meanOut);
    out[0] = _mm512_reduce_add_pd(h);
    out[1] = _mm512_reduce_add_pd(q);
    out[2] = meanOut[0];
    out[3] = meanOut[1];
    return -1;
}

/* ---- Philox4x32-10 normals: two 8-block groups per vector (lane l holds block 8g + l) ---- */

FL_AVX512 static inline void fl_mulhilo512(__m512i a, __m512i m, __m512i *hi, __m512i *lo) {
    __m512i even = _mm512_mul_epu32(a, m);
    __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *lo = _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, _mm512_slli_epi64(odd, 32));
    *hi = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

FL_AVX512 static inline void fl_box_muller512(__m512i a, __m512i b, __m512 *z0, __m512 *z1) {
    const __m512 two = _mm512_set1_ps(2.0f);
    __m512 u1 = _mm512_sub_ps(two, _mm512_castsi512_ps(_mm512_or_si512(_mm512_srli_epi32(a, 9), _mm512_set1_epi32(0x3F800000))));
    __m512 r = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), fl_log512_cephes(u1)));
    __m512i m = _mm512_srli_epi32(b, 9);
    __m512i q = _mm512_srli_epi32(_mm512_add_epi32(m, _mm512_set1_epi32(1 << 20)), 21);
    __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(m, _mm512_slli_epi32(q, 21))), _mm512_set1_ps(6.28318530717958647692f / 8388608.0f));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 s = _mm512_fmadd_ps(x2, _mm512_set1_ps(1.0f / 362880.0f), _mm512_set1_ps(-1.0f / 5040.0f));
    s = _mm512_fmadd_ps(x2, s, _mm512_set1_ps(1.0f / 120.0f));
    s = _mm512_fmadd_ps(x2, s, _mm512_set1_ps(-1.0f / 6.0f));
    s = _mm512_fmadd_ps(_mm512_mul_ps(x, x2), s, x);
    __m512 c = _mm512_fmadd_ps(x2, _mm512_set1_ps(1.0f / 40320.0f), _mm512_set1_ps(-1.0f / 720.0f));
    c = _mm512_fmadd_ps(x2, c, _mm512_set1_ps(1.0f / 24.0f));
    c = _mm512_fmadd_ps(x2, c, _mm512_set1_ps(-0.5f));
    c = _mm512_fmadd_ps(x2, c, _mm512_set1_ps(1.0f));
    __mmask16 swap = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
    __m512 cosine = _mm512_mask_blend_ps(swap, c, s), sine = _mm512_mask_blend_ps(swap, s, c);
    __m512i cosFlip = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(_mm512_add_epi32(q, _mm512_set1_epi32(1)), 1), _mm512_set1_epi32(1)), 31);
    __m512i sinFlip = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(q, 1), _mm512_set1_epi32(1)), 31);
    *z0 = _mm512_mul_ps(r, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(cosine), cosFlip)));
    *z1 = _mm512_mul_ps(r, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sine), sinFlip)));
}

FL_AVX512 static inline void fl_store_halves(float *z, int64_t k, __m512 v) {
    _mm256_storeu_ps(z + 8 * k, _mm512_castps512_ps256(v));
    _mm256_storeu_ps(z + 32 + 8 * k, _mm512_extractf32x8_ps(v, 1));
}

/* The 64 normals of groups g and g + 1 into z[0..64). */
FL_AVX512 static inline void fl_normal_groups512(int64_t g, uint32_t k0, uint32_t k1, uint32_t s0, uint32_t s1, float *z) {
    uint64_t first = (uint64_t)g * 8;
    __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)first), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i c1 = _mm512_set1_epi32((int)(uint32_t)(first >> 32));
    if ((uint32_t)first > UINT32_MAX - 15) {  /* carry into the high word for lanes that wrapped */
        uint32_t high[16];
        _mm512_storeu_si512(high, c1);
        for (int l = 0; l < 16; l++) if ((uint32_t)first + (uint32_t)l < (uint32_t)first) high[l] += 1;
        c1 = _mm512_loadu_si512(high);
    }
    __m512i c2 = _mm512_set1_epi32((int)s0), c3 = _mm512_set1_epi32((int)s1);
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53), m1 = _mm512_set1_epi32((int)0xCD9E8D57);
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        __m512i hi0, lo0, hi1, lo1;
        fl_mulhilo512(c0, m0, &hi0, &lo0);
        fl_mulhilo512(c2, m1, &hi1, &lo1);
        __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
        __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    }
    __m512 z0, z1, z2, z3;
    fl_box_muller512(c0, c1, &z0, &z1);
    fl_box_muller512(c2, c3, &z2, &z3);
    fl_store_halves(z, 0, z0);
    fl_store_halves(z, 1, z1);
    fl_store_halves(z, 2, z2);
    fl_store_halves(z, 3, z3);
}

FL_AVX512
void fl_fill_normals_f32_avx512(float *out, int64_t start, int64_t count, uint64_t seed, uint64_t stream) {
    if (count <= 0) return;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32), s0 = (uint32_t)stream, s1 = (uint32_t)(stream >> 32);
    int64_t end = start + count, t = start;
    float groups[64];
    while (t < end) {
        int64_t g = t / 32, lo = t - 32 * g, hi = end - 32 * g < 64 ? end - 32 * g : 64;
        if (lo == 0 && hi == 64) {
            fl_normal_groups512(g, k0, k1, s0, s1, out + (32 * g - start));
        } else {
            fl_normal_groups512(g, k0, k1, s0, s1, groups);
            memcpy(out + (32 * g + lo - start), groups + lo, (size_t)(hi - lo) * sizeof(float));
        }
        t = 32 * g + hi;
    }
}

/* ---- softmax statistics, one row per lane (softmax_rows.c) ---- */

/* exp x for x ≤ 0 in double (fl_exp256d_nonpositive of softmax_rows.c, 8 lanes). */
FL_AVX512 static inline __m512d fl_exp512d_nonpositive(__m512d x) {
    const __m512d lower = _mm512_set1_pd(-708.0);
    __mmask8 underflow = _mm512_cmp_pd_mask(x, lower, _CMP_LT_OQ);
    x = _mm512_max_pd(x, lower);
    __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(6.93147180369123816490e-01), x);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.90821492927058770002e-10), r);
    static const double inverse_factorial[13] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040,
                                                 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600};
    __m512d p = _mm512_set1_pd(inverse_factorial[12]);
    for (int k = 11; k >= 0; k--) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(inverse_factorial[k]));
    const __m512d magic = _mm512_set1_pd(6755399441055744.0);
    __m512i ni = _mm512_sub_epi64(_mm512_castpd_si512(_mm512_add_pd(n, magic)), _mm512_castpd_si512(magic));
    __m512d scale = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(ni, _mm512_set1_epi64(1023)), 52));
    return _mm512_maskz_mul_pd((__mmask8)~underflow, p, scale);
}

FL_AVX512 static inline __m512d fl_split_exponent512(__m512d x, __m512i *e) {
    __m512i bits = _mm512_castpd_si512(x);
    *e = _mm512_add_epi64(*e, _mm512_sub_epi64(_mm512_srli_epi64(bits, 52), _mm512_set1_epi64(1023)));
    bits = _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi64(0x000FFFFFFFFFFFFFLL)), _mm512_set1_epi64(0x3FF0000000000000LL));
    return _mm512_castsi512_pd(bits);
}

FL_AVX512 static inline double fl_hsum512d(__m512d v) {
    double lanes[8];
    _mm512_storeu_pd(lanes, v);
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

static void fl_temperature_row512(const float *row, int64_t label, int64_t c, double s, double *log_sum, double *rest, double *gradient, double *curvature) {
    double m = -INFINITY;
    for (int64_t j = 0; j < c; j++) m = fmax(m, s * (double)row[j]);
    double sum = 0, first = 0, second = 0;
    for (int64_t j = 0; j < c; j++) {
        double zj = row[j], e = exp(s * zj - m);
        sum += e; first += e * zj; second += e * zj * zj;
    }
    double mean = first / sum;
    *log_sum += log(sum);
    *rest += m - s * (double)row[label];
    *gradient += mean - (double)row[label];
    *curvature += second / sum - mean * mean;
}

FL_AVX512
void fl_temperature_moments_f64_avx512(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t stride, int64_t c,
                                       double s, double out[3]) {
    const __m512d vs = _mm512_set1_pd(s);
    __m512d rest = _mm512_setzero_pd(), gradient = _mm512_setzero_pd(), curvature = _mm512_setzero_pd();
    __m512d product = _mm512_set1_pd(1.0);
    __m512i exponent = _mm512_setzero_si512();
    const int64_t *y = labels + first;
    int64_t g = 0;
    for (; g + 8 <= count; g += 8) {
        const float *r[8];
        for (int k = 0; k < 8; k++) r[k] = z + (first + (g + k) * stride) * c;
        __m512d m = _mm512_set1_pd(-INFINITY);
        for (int64_t j = 0; j < c; j++) {
            __m512d zj = _mm512_cvtps_pd(_mm256_setr_ps(r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j], r[6][j], r[7][j]));
            m = _mm512_max_pd(m, _mm512_mul_pd(vs, zj));
        }
        __m512d sum = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), s2 = _mm512_setzero_pd();
        for (int64_t j = 0; j < c; j++) {
            __m512d zj = _mm512_cvtps_pd(_mm256_setr_ps(r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j], r[6][j], r[7][j]));
            __m512d e = fl_exp512d_nonpositive(_mm512_fmsub_pd(vs, zj, m));
            sum = _mm512_add_pd(sum, e);
            __m512d ez = _mm512_mul_pd(e, zj);
            s1 = _mm512_add_pd(s1, ez);
            s2 = _mm512_fmadd_pd(ez, zj, s2);
        }
        float label_logit[8];
        for (int k = 0; k < 8; k++) label_logit[k] = r[k][y[(g + k) * stride]];
        __m512d zy = _mm512_cvtps_pd(_mm256_loadu_ps(label_logit));
        __m512d mean = _mm512_div_pd(s1, sum);
        gradient = _mm512_add_pd(gradient, _mm512_sub_pd(mean, zy));
        curvature = _mm512_add_pd(curvature, _mm512_fnmadd_pd(mean, mean, _mm512_div_pd(s2, sum)));
        rest = _mm512_add_pd(rest, _mm512_fnmadd_pd(vs, zy, m));
        product = fl_split_exponent512(_mm512_mul_pd(product, sum), &exponent);
    }
    double log_sum = 0, rest_total = fl_hsum512d(rest), gradient_total = fl_hsum512d(gradient), curvature_total = fl_hsum512d(curvature);
    double lanes[8];
    int64_t exponents[8];
    _mm512_storeu_pd(lanes, product);
    _mm512_storeu_si512(exponents, exponent);
    for (int k = 0; k < 8; k++) log_sum += log(lanes[k]) + (double)exponents[k] * 0.69314718055994530942;
    for (; g < count; g++) {
        int64_t i = first + g * stride;
        fl_temperature_row512(z + i * c, labels[i], c, s, &log_sum, &rest_total, &gradient_total, &curvature_total);
    }
    out[0] = log_sum + rest_total;
    out[1] = gradient_total;
    out[2] = curvature_total;
}

static inline int64_t fl_bin_index512(double confidence, int mode, int64_t bins) {
    double scaled = confidence * (double)bins;
    int64_t k;
    switch (mode) {
    case 1: k = (int64_t)scaled; return k < bins ? k : bins;
    case 2: k = (int64_t)ceil(scaled) - 1; k = k < 0 ? 0 : k; return k < bins - 1 ? k : bins - 1;
    default: k = (int64_t)scaled; return k < bins - 1 ? k : bins - 1;
    }
}

FL_AVX512 static inline __m512 fl_column16(const float *const *rows, int64_t j) {
    return _mm512_setr_ps(rows[0][j], rows[1][j], rows[2][j], rows[3][j], rows[4][j], rows[5][j], rows[6][j], rows[7][j],
                          rows[8][j], rows[9][j], rows[10][j], rows[11][j], rows[12][j], rows[13][j], rows[14][j], rows[15][j]);
}

FL_AVX512
int64_t fl_softmax_calibration_f32_avx512(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t c, int mode, int64_t bins,
                                          double *bin_count, double *bin_confidence, double *bin_correct, double *nll_brier) {
    double nll = 0, brier = 0;
    int64_t g = 0;
    for (; g + 16 <= count; g += 16) {
        const float *rows[16];
        for (int k = 0; k < 16; k++) rows[k] = z + (first + g + k) * c;
        const int64_t *y = labels + first + g;
        __m512 m = fl_column16(rows, 0);
        __m512 best = _mm512_setzero_ps(), bad = _mm512_sub_ps(m, m); /* x − x is NaN for ±∞ and NaN */
        for (int64_t j = 1; j < c; j++) {
            __m512 v = fl_column16(rows, j);
            bad = _mm512_add_ps(bad, _mm512_sub_ps(v, v));
            __mmask16 greater = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ); /* the first maximum wins ties */
            best = _mm512_mask_mov_ps(best, greater, _mm512_set1_ps((float)j));
            m = _mm512_max_ps(v, m);
        }
        if (_mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q) != 0) {
            for (int k = 0; k < 16; k++)
                for (int64_t j = 0; j < c; j++)
                    if (!isfinite(rows[k][j])) return first + g + k;
        }
        __m512 sum = _mm512_setzero_ps(), squares = _mm512_setzero_ps(), ey = _mm512_setzero_ps();
        int yl[16];
        for (int k = 0; k < 16; k++) yl[k] = (int)y[k];
        __m512i yi = _mm512_loadu_si512(yl);
        for (int64_t j = 0; j < c; j++) {
            __m512 e = fl_exp512_nonpositive(_mm512_sub_ps(fl_column16(rows, j), m));
            sum = _mm512_add_ps(sum, e);
            squares = _mm512_fmadd_ps(e, e, squares);
            ey = _mm512_mask_mov_ps(ey, _mm512_cmpeq_epi32_mask(yi, _mm512_set1_epi32((int)j)), e);
        }
        float sums[16], sq[16], eys[16], bests[16], maxima[16];
        _mm512_storeu_ps(sums, sum);
        _mm512_storeu_ps(sq, squares);
        _mm512_storeu_ps(eys, ey);
        _mm512_storeu_ps(bests, best);
        _mm512_storeu_ps(maxima, m);
        for (int k = 0; k < 16; k++) {
            double total = sums[k], confidence = 1.0 / total, py = eys[k] / total;
            nll += log(total) - ((double)rows[k][y[k]] - (double)maxima[k]);
            brier += sq[k] / (total * total) - 2 * py + 1;
            int64_t b = fl_bin_index512(confidence, mode, bins);
            bin_count[b] += 1;
            bin_confidence[b] += confidence;
            if ((int64_t)bests[k] == y[k]) bin_correct[b] += 1;
        }
    }
    if (g < count) {  /* the last rows through the AVX2 kernel (fewer than 16) */
        int64_t bad = fl_softmax_calibration_f32(z, labels, first + g, count - g, c, mode, bins, bin_count, bin_confidence, bin_correct, nll_brier);
        if (bad >= 0) return bad;
    }
    nll_brier[0] += nll;
    nll_brier[1] += brier;
    return -1;
}
#else
void fl_xlogx_accumulate_f32_avx512(const float *p, float *sum, int64_t n, double *xlogx, double *total, int *invalid) {
    (void)p; (void)sum; (void)n; *xlogx = 0; *total = 0; *invalid = 1;
}
double fl_xlogx_scale_f32_avx512(float *values, int64_t n, float scale) { (void)values; (void)n; (void)scale; return 0; }
double fl_exp_scaled_f32_avx512(float *x, int64_t n, float scale) { (void)x; (void)n; (void)scale; return 0; }
int64_t fl_sqdiff_argmax_f32_avx512(const float *row, const float *mean, int64_t n, double *sqdiff) { (void)row; (void)mean; (void)n; *sqdiff = 0; return 0; }
int64_t fl_ensemble_member_row_f32_avx512(const float *p, const float *anchor, float *sum, int64_t n, double out[3], int *invalid) {
    (void)p; (void)anchor; (void)sum; (void)n; out[0] = out[1] = out[2] = 0; *invalid = 1; return 0;
}
int64_t fl_ensemble_sample_f32_avx512(const float *const *members, int64_t offset, int64_t m, int64_t n, float scale, float *mean,
                                      int64_t *argmax, double out[4], double *total, int *invalid) {
    (void)members; (void)offset; (void)n; (void)scale; (void)mean; out[0] = out[1] = out[2] = out[3] = 0;
    for (int64_t k = 0; k <= m; k++) argmax[k] = 0;
    *total = 0; *invalid = 1; return 0;
}
int64_t fl_ensemble_mean_row_f32_avx512(float *values, const float *anchor, int64_t n, float scale, double out[2]) {
    (void)values; (void)anchor; (void)n; (void)scale; out[0] = out[1] = 0; return 0;
}
void fl_fill_normals_f32_avx512(float *out, int64_t start, int64_t count, uint64_t seed, uint64_t stream) { (void)out; (void)start; (void)count; (void)seed; (void)stream; }
void fl_temperature_moments_f64_avx512(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t stride, int64_t c,
                                       double s, double out[3]) {
    (void)z; (void)labels; (void)first; (void)count; (void)stride; (void)c; (void)s;
    out[0] = out[1] = out[2] = 0;
}
int64_t fl_softmax_calibration_f32_avx512(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t c, int mode, int64_t bins,
                                          double *bin_count, double *bin_confidence, double *bin_correct, double *nll_brier) {
    (void)z; (void)labels; (void)first; (void)count; (void)c; (void)mode; (void)bins;
    (void)bin_count; (void)bin_confidence; (void)bin_correct; (void)nll_brier;
    return -1;
}
#endif

/* The vector ISA this translation unit was compiled for by the package's flags (SwiftPM passes none:
 * the x86-64 baseline, SSE2), the same baseline as the Swift targets — what the `simd` tier runs on. */
const char *fl_compiled_baseline_isa(void) {
#if defined(__AVX512F__)
    return "x86-64 with AVX-512F (compiler flags)";
#elif defined(__AVX2__)
    return "x86-64 with AVX2 (compiler flags)";
#elif defined(__AVX__)
    return "x86-64 with AVX (compiler flags)";
#elif defined(__SSE4_2__)
    return "x86-64 with SSE4.2 (compiler flags)";
#elif defined(__x86_64__)
    return "x86-64 baseline (SSE2, no FMA)";
#elif defined(__aarch64__)
    return "AArch64 (NEON)";
#else
    return "unknown";
#endif
}
