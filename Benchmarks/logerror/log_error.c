/* The AVX2 table log (vecmath.c, fl_log256_table) against float64 log over every float in [FLT_MIN, 1]:
 * prints the largest |error| / max(1, |ln x|) and where. The bound the kernels document is 1.5e-7.
 * Usage: Benchmarks/logerror/run.sh (needs an AVX2+FMA CPU; about 8 s). */
#include "../../Sources/CFaultline/vecmath.c"
#include <stdio.h>

void fl_cpu_features_get(fl_cpu_features *f) { memset(f, 0, sizeof *f); }  /* vecmath.c's dispatch is not used */

__attribute__((target("avx2,fma"))) int main(void) {
    const uint32_t lo = 0x00800000u, hi = 0x3F800000u;  /* FLT_MIN … 1.0 */
    double worst = 0;
    float at = 0, in[8], out[8];
    for (uint32_t b = lo; b <= hi; b += 8) {
        for (int l = 0; l < 8; l++) {
            uint32_t u = b + (uint32_t)l > hi ? hi : b + (uint32_t)l;
            memcpy(&in[l], &u, sizeof u);
        }
        _mm256_storeu_ps(out, fl_log256_table(_mm256_loadu_ps(in)));
        for (int l = 0; l < 8; l++) {
            double exact = log((double)in[l]), scale = fabs(exact) > 1 ? fabs(exact) : 1;
            double error = fabs((double)out[l] - exact) / scale;
            if (error > worst) { worst = error; at = in[l]; }
        }
    }
    printf("max |error|/max(1, |ln x|) over [FLT_MIN, 1]: %.3g at x = %.9g (bound 1.5e-7)\n", worst, (double)at);
    return worst <= 1.5e-7 ? 0 : 1;
}
