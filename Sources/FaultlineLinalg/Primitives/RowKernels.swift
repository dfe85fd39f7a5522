import CFaultline

/// The fused row kernels: entropy accumulation, scaling with entropy, squared differences with argmax,
/// a scaled exponential with its sum, softmax temperature moments and calibration sums (and Philox
/// normals, in `PhiloxNormals.swift`). Each has three tiers, chosen by `kernelTier(_:)` — the one place
/// that looks at the CPU — and every kernel built on them takes a `backend:` that selects the tier:
///
/// - `reference`: scalar loops in Double (exp and log from libm): the oracle.
/// - `simd`: pure Swift over `SIMD8<Float>` with `Linalg.exp8`/`log8` (Cephes polynomials, ≤ 2 ulp).
/// - `native`: the C shim's AVX2+FMA kernels (the same polynomials with FMA); where the CPU lacks
///   AVX2 or FMA, `native` runs the `simd` code.
///
/// The tiers agree to float32 rounding (tested side by side at every tail length), not bit for bit.
extension Linalg {
    /// Which implementation of the fused row kernels runs.
    public enum KernelTier: String, Sendable, CaseIterable, CustomStringConvertible {
        case reference, simd, native
        public var description: String { rawValue }
    }

    /// Whether the C shim's AVX2+FMA kernels can run here (cpuid: AVX2 and FMA, and the OS saves YMM
    /// state). Swift's default x86-64 target is SSE2 without FMA, where the vectorised log and exp are
    /// 3–4× slower.
    public static let hasAVX2Kernels: Bool = fl_vecmath_avx2_available() != 0

    /// The tier a backend request runs: `reference` → reference, `simd` → simd, `blas` (also the
    /// default when BLAS loads) → native where the CPU has AVX2+FMA, else simd.
    public static func kernelTier(_ backend: Backend? = nil) -> KernelTier {
        switch Backend.resolve(backend) {
        case .reference: return .reference
        case .simd: return .simd
        case .blas: return hasAVX2Kernels ? .native : .simd
        }
    }

    /// `tier` as it can run here (`native` without AVX2 runs `simd`).
    @inline(__always)
    static func runnable(_ tier: KernelTier) -> KernelTier { tier == .native && !hasAVX2Kernels ? .simd : tier }

    /// Σ pⱼ·ln max(pⱼ, FLT_MIN) and Σ pⱼ over `count` floats (one Double sum per call), adding p into
    /// `sum`; `invalid` when a value is outside [0, 1] or NaN.
    public static func xlogxAccumulate(_ p: UnsafePointer<Float>, into sum: UnsafeMutablePointer<Float>, count c: Int, tier: KernelTier)
        -> (xlogx: Double, total: Double, invalid: Bool) {
        switch runnable(tier) {
        case .native:
            var h = 0.0, t = 0.0, bad: Int32 = 0
            fl_xlogx_accumulate_f32(p, sum, Int64(c), &h, &t, &bad)
            return (h, t, bad != 0)
        case .reference:
            var h = 0.0, t = 0.0, invalid = false
            for j in 0..<c {
                let v = p[j]
                if !(v >= 0 && v <= 1) { invalid = true }
                h += Double(v) * Double.log(Double(max(v, .leastNormalMagnitude)))
                t += Double(v)
                sum[j] += v
            }
            return (h, t, invalid)
        case .simd:
            typealias V = SIMD8<Float>
            let tiny = V(repeating: .leastNormalMagnitude), vectorEnd = c - c % 8
            var h = V(), rowSum = V(), bad = SIMDMask<V.MaskStorage>()
            var j = 0
            while j < vectorEnd {
                let v = UnsafeRawPointer(p + j).loadUnaligned(as: V.self)
                bad = bad .| (v .< 0) .| (v .> 1) .| (v .!= v)
                rowSum = rowSum + v
                h = h + v * log8(v.replacing(with: tiny, where: v .< tiny))
                UnsafeMutableRawPointer(sum + j).storeBytes(of: UnsafeRawPointer(sum + j).loadUnaligned(as: V.self) + v, as: V.self)
                j += 8
            }
            var hs = Double(h.sum()), s = Double(rowSum.sum()), invalid = any(bad)
            while j < c {
                let v = p[j]
                if !(v >= 0 && v <= 1) { invalid = true }
                s += Double(v)
                hs += Double(v) * Double.log(Double(max(v, .leastNormalMagnitude)))
                sum[j] += v
                j += 1
            }
            return (hs, s, invalid)
        }
    }

    /// Scales `values` by `scale` in place and returns Σ v·ln max(v, FLT_MIN) of the result.
    public static func xlogxScale(_ values: UnsafeMutablePointer<Float>, count c: Int, scale: Float, tier: KernelTier) -> Double {
        switch runnable(tier) {
        case .native:
            return fl_xlogx_scale_f32(values, Int64(c), scale)
        case .reference:
            var h = 0.0
            for j in 0..<c {
                values[j] *= scale
                h += Double(values[j]) * Double.log(Double(max(values[j], .leastNormalMagnitude)))
            }
            return h
        case .simd:
            typealias V = SIMD8<Float>
            let tiny = V(repeating: .leastNormalMagnitude), vectorEnd = c - c % 8
            var j = 0, hv = V()
            while j < vectorEnd {
                let v = UnsafeRawPointer(values + j).loadUnaligned(as: V.self) * scale
                UnsafeMutableRawPointer(values + j).storeBytes(of: v, as: V.self)
                hv = hv + v * log8(v.replacing(with: tiny, where: v .< tiny))
                j += 8
            }
            var h = Double(hv.sum())
            while j < c {
                values[j] *= scale
                h += Double(values[j]) * Double.log(Double(max(values[j], .leastNormalMagnitude)))
                j += 1
            }
            return h
        }
    }

    /// Σ (rowⱼ − meanⱼ)² (Double per call) and the index of the first maximum of `row`.
    public static func squaredDifferenceAndArgmax(_ row: UnsafePointer<Float>, _ mean: UnsafePointer<Float>, count c: Int, tier: KernelTier)
        -> (squaredDifference: Double, argmax: Int) {
        switch runnable(tier) {
        case .native:
            var s = 0.0
            let arg = fl_sqdiff_argmax_f32(row, mean, Int64(c), &s)
            return (s, Int(arg))
        case .reference:
            var s = 0.0, top = 0
            for j in 0..<c {
                let d = Double(row[j]) - Double(mean[j])
                s += d * d
                if row[j] > row[top] { top = j }
            }
            return (s, top)
        case .simd:
            typealias V = SIMD8<Float>
            let vectorEnd = c - c % 8
            var acc = V(), q = 0
            while q < vectorEnd {
                let d = UnsafeRawPointer(row + q).loadUnaligned(as: V.self) - UnsafeRawPointer(mean + q).loadUnaligned(as: V.self)
                acc = acc + d * d
                q += 8
            }
            var squares = Double(acc.sum())
            while q < c { let d = row[q] - mean[q]; squares += Double(d * d); q += 1 }
            var top = 0
            for j in 1..<max(c, 1) where row[j] > row[top] { top = j }
            return (squares, top)
        }
    }

    /// xⱼ ← exp(xⱼ·scale) in place for arguments xⱼ·scale ≤ 0 (e.g. an RBF kernel from squared
    /// distances; ≤ 2 ulp, below −87.3 gives 0 on the simd and native tiers); returns Σ of the new values.
    public static func expScaledInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float, tier: KernelTier) -> Double {
        switch runnable(tier) {
        case .native:
            return fl_exp_scaled_f32(x, Int64(count), scale)
        case .reference:
            var s = 0.0
            for j in 0..<count { x[j] = Float(Double.exp(Double(x[j] * scale))); s += Double(x[j]) }  // the float argument, as every tier forms it
            return s
        case .simd:
            let vs = SIMD8<Float>(repeating: scale)
            var j = 0, s = 0.0
            while j + 8 <= count {
                let v = exp8(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self) * vs)
                UnsafeMutableRawPointer(x + j).storeBytes(of: v, as: SIMD8<Float>.self)
                s += Double(v.sum())
                j += 8
            }
            while j < count { x[j] = Float.exp(x[j] * scale); s += Double(x[j]); j += 1 }
            return s
        }
    }

    /// Over rows first, first + stride, … (`count` rows) of the row-major logits `z` (`classes`
    /// columns) at inverse temperature s: the sums of the softmax NLL, of its derivative E_p[z] − z_y and
    /// of its second derivative Var_p[z] in s, all in float64 (native: one row per AVX2 lane, exp to
    /// ~2e-16 relative, Σ log as the log of a renormalised running product; reference and simd: libm).
    public static func temperatureMoments(_ z: UnsafePointer<Float>, labels: UnsafePointer<Int>, first: Int, count: Int, stride: Int,
                                          classes c: Int, inverseTemperature s: Double, tier: KernelTier)
        -> (nll: Double, gradient: Double, curvature: Double) {
        if runnable(tier) == .native {
            var out = [0.0, 0.0, 0.0]
            labels.withMemoryRebound(to: Int64.self, capacity: 1) { y in
                fl_temperature_moments_f64(z, y, Int64(first), Int64(count), Int64(stride), Int64(c), s, &out)
            }
            return (out[0], out[1], out[2])
        }
        var nll = 0.0, gradient = 0.0, curvature = 0.0
        for r in 0..<count {
            let i = first + r * stride, row = z + i * c, label = Double(row[labels[i]])
            var m = -Double.infinity
            for j in 0..<c { m = max(m, s * Double(row[j])) }
            var sum = 0.0, moment1 = 0.0, moment2 = 0.0
            for j in 0..<c {
                let zj = Double(row[j]), e = Double.exp(s * zj - m)
                sum += e
                moment1 += e * zj
                moment2 += e * zj * zj
            }
            let mean = moment1 / sum
            nll += m + Double.log(sum) - s * label
            gradient += mean - label
            curvature += moment2 / sum - mean * mean
        }
        return (nll, gradient, curvature)
    }

    /// The bin rule of `softmaxCalibrationSums` — the one definition of Faultline's confidence bins:
    /// equal width with the top edge in the last bin, torchmetrics' (confidence 1 in an extra slot
    /// `bins`), or right-closed (lo, hi] bins with 0 in the first.
    public enum CalibrationBinRule: Int32, Sendable {
        case equalWidth = 0, torchmetrics = 1, rightClosed = 2

        /// The bin of `confidence` among `bins` (the C kernel computes the same index).
        @inline(__always)
        public func index(_ confidence: Double, bins b: Int) -> Int {
            switch self {
            case .equalWidth: return min(Int(confidence * Double(b)), b - 1)
            case .torchmetrics: return min(Int(confidence * Double(b)), b)
            case .rightClosed: return min(max(Int((confidence * Double(b)).rounded(.up)) - 1, 0), b - 1)
            }
        }
    }

    /// For rows [first, first + count) of the logits: the top-label confidence 1/Σ exp(z − max) (float
    /// exps, Double sums) binned by `rule` into the per-bin count, Σ confidence and Σ correct arrays (length
    /// `bins`, or `bins + 1` for torchmetrics), and Σ NLL and Σ Brier added to `totals`. Returns nil, or
    /// the first row with NaN/±∞ (rows after it are still summed). Labels must be in range.
    public static func softmaxCalibrationSums(_ z: UnsafePointer<Float>, labels: UnsafePointer<Int>, first: Int, count: Int, classes c: Int,
                                              rule: CalibrationBinRule, bins: Int, count binCount: UnsafeMutablePointer<Double>,
                                              confidence binConfidence: UnsafeMutablePointer<Double>, correct binCorrect: UnsafeMutablePointer<Double>,
                                              totals: UnsafeMutablePointer<Double>, tier: KernelTier) -> Int? {
        let tier = runnable(tier)
        if tier == .native {
            let bad = labels.withMemoryRebound(to: Int64.self, capacity: 1) { y in
                fl_softmax_calibration_f32(z, y, Int64(first), Int64(count), Int64(c), rule.rawValue, Int64(bins), binCount, binConfidence, binCorrect, totals)
            }
            return bad < 0 ? nil : Int(bad)
        }
        var nonFinite: Int?
        let e = UnsafeMutablePointer<Float>.allocate(capacity: max(c, 1))
        defer { e.deallocate() }
        let vectorEnd = tier == .simd ? c - c % 8 : 0
        for i in first..<(first + count) {
            let row = z + i * c
            var m = row[0], best = 0, finite = row[0].isFinite
            for j in 1..<max(c, 1) {
                finite = finite && row[j].isFinite
                if row[j] > m { m = row[j]; best = j }
            }
            guard finite else {
                if nonFinite == nil { nonFinite = i }
                continue
            }
            var sum = 0.0, squares = 0.0, j = 0
            let vm = SIMD8<Float>(repeating: m)
            while j < vectorEnd {
                let v = exp8(UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self) - vm)
                UnsafeMutableRawPointer(e + j).storeBytes(of: v, as: SIMD8<Float>.self)
                sum += Double(v.sum())
                squares += Double((v * v).sum())
                j += 8
            }
            while j < c {
                let v = tier == .reference ? Float(Double.exp(Double(row[j]) - Double(m))) : Float.exp(row[j] - m)
                e[j] = v
                sum += Double(v)
                squares += Double(v) * Double(v)
                j += 1
            }
            let label = labels[i], confidence = 1 / sum, py = Double(e[label]) / sum
            totals[0] += Double.log(sum) - Double(row[label] - m)
            totals[1] += squares / (sum * sum) - 2 * py + 1
            let k = rule.index(confidence, bins: bins)
            binCount[k] += 1
            binConfidence[k] += confidence
            if best == label { binCorrect[k] += 1 }
        }
        return nonFinite
    }
}
