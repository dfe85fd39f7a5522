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
}

extension Linalg {
    /// AVX2: xⱼ ← exp(xⱼ·scale) in place for arguments xⱼ·scale ≤ 0 (≤ 2 ulp; below −87.3 gives 0), e.g. an
    /// RBF kernel from squared distances; returns Σ of the new values (float lanes, one Double per call).
    /// Precondition: `hasAVX2Kernels`.
    public static func expScaledInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float) -> Double {
        precondition(hasAVX2Kernels, "expScaledInPlace needs the AVX2 kernels")
        return fl_exp_scaled_f32(x, Int64(count), scale)
    }

    /// AVX2, float64 with one row per lane: over rows first, first + stride, … (`count` rows) of the
    /// row-major logits `z` (`classes` columns) at inverse temperature s, the sums of the softmax NLL,
    /// its derivative E_p[z] − z_y and its second derivative Var_p[z] in s. exp to ~2e-16 relative;
    /// Σ log as the log of a renormalised running product. Precondition: `hasAVX2Kernels`.
    public static func temperatureMoments(_ z: UnsafePointer<Float>, labels: UnsafePointer<Int>, first: Int, count: Int, stride: Int,
                                          classes: Int, inverseTemperature s: Double) -> (nll: Double, gradient: Double, curvature: Double) {
        precondition(hasAVX2Kernels, "temperatureMoments needs the AVX2 kernels")
        var out = [0.0, 0.0, 0.0]
        labels.withMemoryRebound(to: Int64.self, capacity: 1) { y in
            fl_temperature_moments_f64(z, y, Int64(first), Int64(count), Int64(stride), Int64(classes), s, &out)
        }
        return (out[0], out[1], out[2])
    }

    /// The bin rule of `softmaxCalibrationSums`: equal width with the top edge in the last bin,
    /// torchmetrics' (confidence 1 in an extra slot), or right-closed bins.
    public enum CalibrationBinRule: Int32, Sendable { case equalWidth = 0, torchmetrics = 1, rightClosed = 2 }

    /// AVX2, float32 with one row per lane: for rows [first, first + count) of the logits, the top-label
    /// confidence 1/Σ exp(z − max) (float exps, Double division) binned by `rule` into the per-bin
    /// count, Σ confidence and Σ correct arrays (length `bins`, or `bins + 1` for torchmetrics), and
    /// Σ NLL and Σ Brier added to `totals`. Returns nil, or the first row with NaN/±∞.
    /// Precondition: `hasAVX2Kernels`; labels in range.
    public static func softmaxCalibrationSums(_ z: UnsafePointer<Float>, labels: UnsafePointer<Int>, first: Int, count: Int, classes: Int,
                                              rule: CalibrationBinRule, bins: Int, count binCount: UnsafeMutablePointer<Double>,
                                              confidence: UnsafeMutablePointer<Double>, correct: UnsafeMutablePointer<Double>,
                                              totals: UnsafeMutablePointer<Double>) -> Int? {
        precondition(hasAVX2Kernels, "softmaxCalibrationSums needs the AVX2 kernels")
        let bad = labels.withMemoryRebound(to: Int64.self, capacity: 1) { y in
            fl_softmax_calibration_f32(z, y, Int64(first), Int64(count), Int64(classes), rule.rawValue, Int64(bins), binCount, confidence, correct, totals)
        }
        return bad < 0 ? nil : Int(bad)
    }
}
