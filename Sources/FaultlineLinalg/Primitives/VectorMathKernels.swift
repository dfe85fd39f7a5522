import CFaultline

extension Linalg {
    /// Whether the C shim's AVX2+FMA kernels can run here (cpuid: AVX2 and FMA, and the OS saves YMM
    /// state). Swift's default x86-64 target is SSE2 without FMA, where the vectorised log and exp are
    /// 3–4× slower; callers use these kernels on the `blas` backend and keep their pure-Swift SIMD
    /// path for the `simd` backend (the tests run both).
    public static let hasAVX2Kernels: Bool = fl_vecmath_avx2_available() != 0

    /// AVX2: Σ pⱼ·ln max(pⱼ, FLT_MIN) and Σ pⱼ over `count` floats (float lanes, one Double sum per
    /// call), adding p into `sum`; `invalid` when a value is outside [0, 1] or NaN. ≤ 2 ulp per log.
    /// Precondition: `hasAVX2Kernels`.
    public static func xlogxAccumulate(_ p: UnsafePointer<Float>, into sum: UnsafeMutablePointer<Float>, count: Int)
        -> (xlogx: Double, total: Double, invalid: Bool) {
        precondition(hasAVX2Kernels, "xlogxAccumulate needs the AVX2 kernels")
        var h = 0.0, t = 0.0, bad: Int32 = 0
        fl_xlogx_accumulate_f32(p, sum, Int64(count), &h, &t, &bad)
        return (h, t, bad != 0)
    }

    /// AVX2: scales `values` by `scale` in place and returns Σ v·ln max(v, FLT_MIN) of the result.
    /// Precondition: `hasAVX2Kernels`.
    public static func xlogxScale(_ values: UnsafeMutablePointer<Float>, count: Int, scale: Float) -> Double {
        precondition(hasAVX2Kernels, "xlogxScale needs the AVX2 kernels")
        return fl_xlogx_scale_f32(values, Int64(count), scale)
    }

    /// AVX2: Σ (rowⱼ − meanⱼ)² (Double per call) and the index of the first maximum of `row`.
    /// Precondition: `hasAVX2Kernels`.
    public static func squaredDifferenceAndArgmax(_ row: UnsafePointer<Float>, _ mean: UnsafePointer<Float>, count: Int) -> (squaredDifference: Double, argmax: Int) {
        precondition(hasAVX2Kernels, "squaredDifferenceAndArgmax needs the AVX2 kernels")
        var s = 0.0
        let arg = fl_sqdiff_argmax_f32(row, mean, Int64(count), &s)
        return (s, Int(arg))
    }

    /// AVX2: eⱼ = exp(rowⱼ − shift) for a row whose maximum is `shift` (softmax numerators; ≤ 2 ulp,
    /// arguments below −87.3 give 0), written to `e`; returns Σ eⱼ and Σ eⱼ². Precondition: `hasAVX2Kernels`.
    public static func expShifted(_ row: UnsafePointer<Float>, count: Int, shift: Float, into e: UnsafeMutablePointer<Float>) -> (sum: Double, squares: Double) {
        precondition(hasAVX2Kernels, "expShifted needs the AVX2 kernels")
        var squares = 0.0
        let sum = fl_exp_shifted_f32(row, Int64(count), shift, e, &squares)
        return (sum, squares)
    }
}
