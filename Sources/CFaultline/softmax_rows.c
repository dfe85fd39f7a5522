/* AVX2+FMA softmax statistics with one row per vector lane (4 rows in double, 8 in float): for the few
 * classes of a calibration problem (C = 10 in W5) a row is too short to vectorise across its classes,
 * so each vector holds one column of several rows and the per-row reductions stay in registers.
 * Compiled through target attributes; callers check fl_vecmath_avx2_available() first, and the Swift
 * kernels remain the fallback (simd backend) and the oracle in the tests. */
#include "CFaultline.h"
#include "vecmath_exp.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* exp x for x ≤ 0 in double: Cody–Waite reduction by ln 2 (fdlibm's split), degree-12 Taylor polynomial
 * on |r| ≤ ln2/2 (truncation < 2e-16 relative), scaling by 2^n through the exponent bits. Arguments
 * below −708 give 0. */
__attribute__((target("avx2,fma"))) static inline __m256d fl_exp256d_nonpositive(__m256d x) {
    const __m256d lower = _mm256_set1_pd(-708.0);
    __m256d underflow = _mm256_cmp_pd(x, lower, _CMP_LT_OQ);
    x = _mm256_max_pd(x, lower);
    __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);
    static const double inverse_factorial[13] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040,
                                                 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600};
    __m256d p = _mm256_set1_pd(inverse_factorial[12]);
    for (int k = 11; k >= 0; k--) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(inverse_factorial[k]));
    const __m256d magic = _mm256_set1_pd(6755399441055744.0); /* 1.5·2^52: n + magic holds n in its low bits */
    __m256i ni = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(n, magic)), _mm256_castpd_si256(magic));
    __m256d scale = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(ni, _mm256_set1_epi64x(1023)), 52));
    return _mm256_andnot_pd(underflow, _mm256_mul_pd(p, scale));
}

/* Splits positive normal doubles into mantissa in [1, 2) (returned) and the unbiased exponent (added to *e). */
__attribute__((target("avx2,fma"))) static inline __m256d fl_split_exponent_pd(__m256d x, __m256i *e) {
    __m256i bits = _mm256_castpd_si256(x);
    *e = _mm256_add_epi64(*e, _mm256_sub_epi64(_mm256_srli_epi64(bits, 52), _mm256_set1_epi64x(1023)));
    bits = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFLL)), _mm256_set1_epi64x(0x3FF0000000000000LL));
    return _mm256_castsi256_pd(bits);
}

__attribute__((target("avx2,fma"))) static inline double fl_hsum256d(__m256d v) {
    double lanes[4];
    _mm256_storeu_pd(lanes, v);
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

/* One row in scalar double (the tail of a block): the same three sums. */
static void fl_temperature_row(const float *row, int64_t label, int64_t c, double s, double *log_sum, double *rest, double *gradient, double *curvature) {
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

__attribute__((target("avx2,fma")))
void fl_temperature_moments_f64(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t stride, int64_t c,
                                double s, double out[3]) {
    const __m256d vs = _mm256_set1_pd(s);
    __m256d rest = _mm256_setzero_pd(), gradient = _mm256_setzero_pd(), curvature = _mm256_setzero_pd();
    __m256d product = _mm256_set1_pd(1.0);
    __m256i exponent = _mm256_setzero_si256();
    int64_t g = 0;
    for (; g + 4 <= count; g += 4) {
        const float *r0 = z + (first + (g + 0) * stride) * c, *r1 = z + (first + (g + 1) * stride) * c;
        const float *r2 = z + (first + (g + 2) * stride) * c, *r3 = z + (first + (g + 3) * stride) * c;
        __m256d m = _mm256_set1_pd(-INFINITY);
        for (int64_t j = 0; j < c; j++) {
            __m256d zj = _mm256_cvtps_pd(_mm_setr_ps(r0[j], r1[j], r2[j], r3[j]));
            m = _mm256_max_pd(m, _mm256_mul_pd(vs, zj));
        }
        __m256d sum = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd();
        for (int64_t j = 0; j < c; j++) {
            __m256d zj = _mm256_cvtps_pd(_mm_setr_ps(r0[j], r1[j], r2[j], r3[j]));
            __m256d e = fl_exp256d_nonpositive(_mm256_fmsub_pd(vs, zj, m));
            sum = _mm256_add_pd(sum, e);
            __m256d ez = _mm256_mul_pd(e, zj);
            s1 = _mm256_add_pd(s1, ez);
            s2 = _mm256_fmadd_pd(ez, zj, s2);
        }
        const int64_t *y = labels + first;
        __m256d zy = _mm256_cvtps_pd(_mm_setr_ps(r0[y[(g + 0) * stride]], r1[y[(g + 1) * stride]], r2[y[(g + 2) * stride]], r3[y[(g + 3) * stride]]));
        __m256d mean = _mm256_div_pd(s1, sum);
        gradient = _mm256_add_pd(gradient, _mm256_sub_pd(mean, zy));
        curvature = _mm256_add_pd(curvature, _mm256_fnmadd_pd(mean, mean, _mm256_div_pd(s2, sum)));
        rest = _mm256_add_pd(rest, _mm256_fnmadd_pd(vs, zy, m));
        /* Σ log(sum) as the log of a running product, renormalised every row to keep it in [1, 2). */
        product = fl_split_exponent_pd(_mm256_mul_pd(product, sum), &exponent);
    }
    double log_sum = 0, rest_total = fl_hsum256d(rest), gradient_total = fl_hsum256d(gradient), curvature_total = fl_hsum256d(curvature);
    double lanes[4];
    int64_t exponents[4];
    _mm256_storeu_pd(lanes, product);
    _mm256_storeu_si256((__m256i *)exponents, exponent);
    for (int k = 0; k < 4; k++) log_sum += log(lanes[k]) + (double)exponents[k] * 0.69314718055994530942;
    for (; g < count; g++) {
        int64_t i = first + g * stride;
        fl_temperature_row(z + i * c, labels[i], c, s, &log_sum, &rest_total, &gradient_total, &curvature_total);
    }
    out[0] = log_sum + rest_total;
    out[1] = gradient_total;
    out[2] = curvature_total;
}

static inline int64_t fl_bin_index(double confidence, int mode, int64_t bins) {
    double scaled = confidence * (double)bins;
    int64_t k;
    switch (mode) {
    case 1: k = (int64_t)scaled; return k < bins ? k : bins; /* torchmetrics: bins + 1 slots */
    case 2: k = (int64_t)ceil(scaled) - 1; k = k < 0 ? 0 : k; return k < bins - 1 ? k : bins - 1;
    default: k = (int64_t)scaled; return k < bins - 1 ? k : bins - 1;
    }
}

__attribute__((target("avx2,fma")))
int64_t fl_softmax_calibration_f32(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t c, int mode, int64_t bins,
                                   double *bin_count, double *bin_confidence, double *bin_correct, double *nll_brier) {
    double nll = 0, brier = 0;
    int64_t g = 0;
    for (; g + 8 <= count; g += 8) {
        const float *rows[8];
        for (int k = 0; k < 8; k++) rows[k] = z + (first + g + k) * c;
        const int64_t *y = labels + first + g;
        __m256 m = _mm256_setr_ps(rows[0][0], rows[1][0], rows[2][0], rows[3][0], rows[4][0], rows[5][0], rows[6][0], rows[7][0]);
        __m256 best = _mm256_setzero_ps(), bad = _mm256_sub_ps(m, m); /* x − x is NaN for ±∞ and NaN */
        for (int64_t j = 1; j < c; j++) {
            __m256 v = _mm256_setr_ps(rows[0][j], rows[1][j], rows[2][j], rows[3][j], rows[4][j], rows[5][j], rows[6][j], rows[7][j]);
            bad = _mm256_add_ps(bad, _mm256_sub_ps(v, v));
            __m256 greater = _mm256_cmp_ps(v, m, _CMP_GT_OQ); /* the first maximum wins ties */
            best = _mm256_blendv_ps(best, _mm256_set1_ps((float)j), greater);
            m = _mm256_max_ps(v, m);
        }
        if (_mm256_movemask_ps(_mm256_cmp_ps(bad, bad, _CMP_UNORD_Q)) != 0) {
            for (int k = 0; k < 8; k++)
                for (int64_t j = 0; j < c; j++)
                    if (!isfinite(rows[k][j])) return first + g + k;
        }
        __m256 sum = _mm256_setzero_ps(), squares = _mm256_setzero_ps(), ey = _mm256_setzero_ps();
        __m256i yi = _mm256_setr_epi32((int)y[0], (int)y[1], (int)y[2], (int)y[3], (int)y[4], (int)y[5], (int)y[6], (int)y[7]);
        for (int64_t j = 0; j < c; j++) {
            __m256 v = _mm256_setr_ps(rows[0][j], rows[1][j], rows[2][j], rows[3][j], rows[4][j], rows[5][j], rows[6][j], rows[7][j]);
            __m256 e = fl_exp256_nonpositive(_mm256_sub_ps(v, m));
            sum = _mm256_add_ps(sum, e);
            squares = _mm256_fmadd_ps(e, e, squares);
            ey = _mm256_blendv_ps(ey, e, _mm256_castsi256_ps(_mm256_cmpeq_epi32(yi, _mm256_set1_epi32((int)j))));
        }
        float sums[8], sq[8], eys[8], bests[8], maxima[8];
        _mm256_storeu_ps(sums, sum);
        _mm256_storeu_ps(sq, squares);
        _mm256_storeu_ps(eys, ey);
        _mm256_storeu_ps(bests, best);
        _mm256_storeu_ps(maxima, m);
        for (int k = 0; k < 8; k++) {
            double total = sums[k], confidence = 1.0 / total, py = eys[k] / total;
            nll += log(total) - ((double)rows[k][y[k]] - (double)maxima[k]);
            brier += sq[k] / (total * total) - 2 * py + 1;
            int64_t b = fl_bin_index(confidence, mode, bins);
            bin_count[b] += 1;
            bin_confidence[b] += confidence;
            if ((int64_t)bests[k] == y[k]) bin_correct[b] += 1;
        }
    }
    for (; g < count; g++) {
        const float *row = z + (first + g) * c;
        int64_t label = labels[first + g], best = 0;
        float m = row[0];
        int finite = isfinite(row[0]);
        for (int64_t j = 1; j < c; j++) {
            finite = finite && isfinite(row[j]);
            if (row[j] > m) { m = row[j]; best = j; }
        }
        if (!finite) return first + g;
        double total = 0, squares = 0, ey = 0;
        for (int64_t j = 0; j < c; j++) {
            double e = expf(row[j] - m);
            total += e; squares += e * e;
            if (j == label) ey = e;
        }
        double confidence = 1.0 / total;
        nll += log(total) - ((double)row[label] - (double)m);
        brier += squares / (total * total) - 2 * ey / total + 1;
        int64_t b = fl_bin_index(confidence, mode, bins);
        bin_count[b] += 1;
        bin_confidence[b] += confidence;
        if (best == label) bin_correct[b] += 1;
    }
    nll_brier[0] += nll;
    nll_brier[1] += brier;
    return -1;
}
#else
void fl_temperature_moments_f64(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t stride, int64_t c,
                                double s, double out[3]) {
    (void)z; (void)labels; (void)first; (void)count; (void)stride; (void)c; (void)s;
    out[0] = out[1] = out[2] = 0;
}
int64_t fl_softmax_calibration_f32(const float *z, const int64_t *labels, int64_t first, int64_t count, int64_t c, int mode, int64_t bins,
                                   double *bin_count, double *bin_confidence, double *bin_correct, double *nll_brier) {
    (void)z; (void)labels; (void)first; (void)count; (void)c; (void)mode; (void)bins;
    (void)bin_count; (void)bin_confidence; (void)bin_correct; (void)nll_brier;
    return -1;
}
#endif
