/* The float exp shared by the AVX2 kernel files (private to the C target). */
#ifndef FL_VECMATH_EXP_H
#define FL_VECMATH_EXP_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* exp x for x ≤ 0 down to −87 (softmax arguments z − max; NaN gives NaN): Cody–Waite reduction and the degree-6
 * Cephes polynomial of the Swift `Linalg.exp8`, with FMA; arguments below −87.3 flush to 0. */
__attribute__((target("avx2,fma"))) static inline __m256 fl_exp256_nonpositive(__m256 x) {
    const __m256 lower = _mm256_set1_ps(-87.3f);
    __m256 underflow = _mm256_cmp_ps(x, lower, _CMP_LT_OQ);
    x = _mm256_max_ps(lower, x);  /* NaN in the second operand propagates */
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

#endif
#endif
