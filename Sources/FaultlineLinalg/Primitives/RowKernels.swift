import CFaultline
import Foundation

/// The fused row kernels: entropy accumulation, scaling with entropy, squared differences with argmax,
/// a scaled exponential with its sum, softmax temperature moments and calibration sums (and Philox
/// normals, in `PhiloxNormals.swift`). Each has four tiers, chosen by `kernelTier(_:)` — the one place
/// that looks at the CPU — and every kernel built on them takes a `backend:` that selects the tier:
///
/// - `reference`: scalar loops in Double (exp and log from libm): the oracle.
/// - `simd`: pure Swift over `SIMD8<Float>` with `Linalg.exp8`/`log8` (Cephes polynomials, ≤ 2 ulp),
///   compiled for Swift's default x86-64 target (SSE2, no FMA): 4-wide in hardware.
/// - `avx2`: the C shim's AVX2+FMA kernels (vecmath.c, softmax_rows.c): the same exp polynomial with
///   FMA, and for the Σ p·ln p sums a table-driven log (8 cells; error ≤ 1.5e-7·max(1, |ln x|)).
/// - `avx512`: the C shim's AVX-512 kernels (vecmath512.c): 16 lanes, mask-register tails, and for the
///   Σ p·ln p sums a table-driven log (32 cells; error ≤ 1.5e-7·max(1, |ln x|)).
///
/// A C tier the CPU cannot run steps down (`avx512` → `avx2` → `simd`), so any request is safe. Both
/// C tiers are compiled with per-function target attributes (no global flags) and chosen at run time
/// by cpuid. The tiers agree to float32 rounding (tested side by side at every tail length), not bit
/// for bit; the element-wise outputs (exp, normals) of `avx2` and `avx512` are bit-identical.
extension Linalg {
    /// Which implementation of the fused row kernels runs.
    public enum KernelTier: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Scalar Double loops (the oracle); Swift `SIMD8<Float>`; C kernels for AVX2+FMA; C kernels for AVX-512.
        case reference, simd, avx2, avx512
        public var description: String { rawValue }

        /// Whether this tier runs a C kernel (`avx2`, `avx512`).
        public var isNative: Bool { self == .avx2 || self == .avx512 }

        /// A tier named by `FAULTLINE_VECTOR_TIER`: reference (or scalar), simd (or sse2), avx2, avx512;
        /// nil for auto, empty or anything else.
        public init?(environment value: String) {
            switch value.lowercased() {
            case "reference", "scalar": self = .reference
            case "simd", "sse2", "swift": self = .simd
            case "avx2": self = .avx2
            case "avx512", "avx-512": self = .avx512
            default: return nil
            }
        }
    }

    /// Whether the C shim's AVX2+FMA kernels can run here (cpuid: AVX2 and FMA, and the OS saves YMM
    /// state). Swift's default x86-64 target is SSE2 without FMA, where the vectorised log and exp are
    /// 3–4× slower.
    public static let hasAVX2Kernels: Bool = fl_vecmath_avx2_available() != 0

    /// Whether the AVX-512 kernels can run here (cpuid: AVX-512 F, BW, VL, DQ and FMA, and the OS
    /// saves ZMM state).
    public static let hasAVX512Kernels: Bool = fl_vecmath_avx512_available() != 0

    /// The ISA the package is compiled for without target attributes — what the `simd` tier and the
    /// Swift fallback GEMM run on: "x86-64 baseline (SSE2, no FMA)" with SwiftPM's default flags.
    public static let compiledBaselineISA: String = String(cString: fl_compiled_baseline_isa())

    /// The best tier this CPU runs: avx512, else avx2, else simd.
    public static var bestTier: KernelTier { hasAVX512Kernels ? .avx512 : hasAVX2Kernels ? .avx2 : .simd }

    /// The value of `FAULTLINE_VECTOR_TIER` at start-up ("" when unset), and the tier it names (nil for
    /// unset, `auto` or a value not understood — `faultline info` shows the raw value).
    public static let vectorTierSetting: String = ProcessInfo.processInfo.environment["FAULTLINE_VECTOR_TIER"] ?? ""
    /// The tier `FAULTLINE_VECTOR_TIER` names, or nil (unset, `auto`, or not understood).
    public static let vectorTierOverride: KernelTier? = KernelTier(environment: vectorTierSetting)

    /// The tier a backend request runs, with the environment's override:
    /// `kernelTier(backend, override: vectorTierOverride)`.
    public static func kernelTier(_ backend: Backend? = nil) -> KernelTier {
        kernelTier(backend, override: vectorTierOverride)
    }

    /// The one dispatch rule. `reference` → reference always. Without an override: `simd` → simd,
    /// `blas` (the default when BLAS loads) → the best tier of this CPU (`bestTier`). With an override
    /// (`FAULTLINE_VECTOR_TIER`) the `simd` and `blas` backends run that tier, stepped down to what the
    /// CPU can run — so `FAULTLINE_BACKEND=simd FAULTLINE_VECTOR_TIER=avx2` (or `avx512`) opts the
    /// pure-Swift backend into the C kernels for these primitives while its GEMMs stay in Swift.
    public static func kernelTier(_ backend: Backend?, override: KernelTier?) -> KernelTier {
        switch Backend.resolve(backend) {
        case .reference: return .reference
        case .simd: return runnable(override ?? .simd)
        case .blas: return runnable(override ?? .avx512)
        }
    }

    /// `tier` as it can run here: `avx512` without AVX-512 runs `avx2`, `avx2` without AVX2+FMA runs `simd`.
    @inline(__always)
    public static func runnable(_ tier: KernelTier) -> KernelTier {
        switch tier {
        case .avx512: return hasAVX512Kernels ? .avx512 : hasAVX2Kernels ? .avx2 : .simd
        case .avx2: return hasAVX2Kernels ? .avx2 : .simd
        default: return tier
        }
    }

    /// `runnable(tier)` for a kernel that returns a position in a row of `count` floats: the C tiers keep
    /// positions in 32-bit vector lanes, so longer rows (over 2³¹ − 64 floats, 8 GB) run the `simd` tier.
    @inline(__always)
    static func runnable(_ tier: KernelTier, indexing count: Int) -> KernelTier {
        count > Int(Int32.max) - 64 && (tier == .avx2 || tier == .avx512) ? .simd : runnable(tier)
    }

    /// The fused kernels and the C tiers each has (for `faultline info`: which tier each one runs).
    public static let fusedKernels: [(name: String, tiers: Set<KernelTier>)] = [
        ("entropy accumulation (xlogx)", [.avx2, .avx512]), ("entropy of the mean (xlogx scale)", [.avx2, .avx512]),
        ("squared differences + argmax", [.avx2, .avx512]), ("ensemble member and mean rows (W4)", [.avx2, .avx512]),
        ("scaled exp (MMD kernel)", [.avx2, .avx512]),
        ("Philox normals", [.avx2, .avx512]), ("softmax temperature moments", [.avx2, .avx512]),
        ("softmax calibration sums", [.avx2, .avx512]),
    ]

    /// The tier each fused kernel runs for `backend` here (a kernel without the chosen C tier runs the
    /// best one it has below it).
    public static func fusedKernelTiers(_ backend: Backend? = nil) -> [(name: String, tier: KernelTier)] {
        let tier = kernelTier(backend)
        return fusedKernels.map { kernel in
            guard tier.isNative, !kernel.tiers.contains(tier) else { return (kernel.name, tier) }
            return (kernel.name, kernel.tiers.contains(.avx2) && hasAVX2Kernels ? .avx2 : .simd)
        }
    }

    /// Σ pⱼ·ln max(pⱼ, FLT_MIN) and Σ pⱼ over `count` floats (one Double sum per call), adding p into
    /// `sum`; `invalid` when a value is outside [0, 1] or NaN.
    public static func xlogxAccumulate(_ p: UnsafePointer<Float>, into sum: UnsafeMutablePointer<Float>, count c: Int, tier: KernelTier)
        -> (xlogx: Double, total: Double, invalid: Bool) {
        switch runnable(tier) {
        case .avx512:
            var h = 0.0, t = 0.0, bad: Int32 = 0
            fl_xlogx_accumulate_f32_avx512(p, sum, Int64(c), &h, &t, &bad)
            return (h, t, bad != 0)
        case .avx2:
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
        case .avx512:
            return fl_xlogx_scale_f32_avx512(values, Int64(c), scale)
        case .avx2:
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
        switch runnable(tier, indexing: c) {
        case .avx512:
            var s = 0.0
            let arg = fl_sqdiff_argmax_f32_avx512(row, mean, Int64(c), &s)
            return (s, Int(arg))
        case .avx2:
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

    /// One member row of the ensemble pass, one read of the row: Σ pⱼ·ln max(pⱼ, FLT_MIN), Σ pⱼ and the
    /// spread Σ (pⱼ − anchorⱼ)² about an anchor row (Double per call), p added into `sum`, `invalid` as in
    /// `xlogxAccumulate`, and the first maximum of p (from p[0], moving only on strictly greater, so NaN
    /// never wins). The spread about a fixed anchor (a member's own row) gives the variance across
    /// members as Σₘ spreadₘ − M·spread(mean) without the cancellation of Σ p² − M·p̄².
    public static func ensembleMemberRow(_ p: UnsafePointer<Float>, anchor: UnsafePointer<Float>, into sum: UnsafeMutablePointer<Float>,
                                         count c: Int, tier: KernelTier)
        -> (xlogx: Double, total: Double, spread: Double, argmax: Int, invalid: Bool) {
        switch runnable(tier, indexing: c) {
        case .avx512, .avx2:
            var out = (0.0, 0.0, 0.0), bad: Int32 = 0
            let arg = withUnsafeMutableBytes(of: &out) { raw in
                let o = raw.baseAddress!.assumingMemoryBound(to: Double.self)
                return runnable(tier, indexing: c) == .avx512
                    ? fl_ensemble_member_row_f32_avx512(p, anchor, sum, Int64(c), o, &bad)
                    : fl_ensemble_member_row_f32(p, anchor, sum, Int64(c), o, &bad)
            }
            return (out.0, out.1, out.2, Int(arg), bad != 0)
        case .reference, .simd:
            let r = xlogxAccumulate(p, into: sum, count: c, tier: tier)
            var spread = 0.0, top = 0
            for j in 0..<c {
                let d = Double(p[j]) - Double(anchor[j])
                spread += d * d
                if p[j] > p[top] { top = j }
            }
            return (r.xlogx, r.total, spread, top, r.invalid)
        }
    }

    /// One sample of the ensemble pass in one call: the member rows `members[k] + offset` (k < M, `count`
    /// classes each) through `ensembleMemberRow` with member 0's row as the anchor, their sum into
    /// `mean` (overwritten), then `ensembleMeanRow` on it with `scale`. `argmax` receives M + 1 indices:
    /// each member's first maximum, then the mean's. On the C tiers the members' Σ p ln p and spreads
    /// stay in vector lanes (widened to double per member) with one horizontal sum per sample, and each
    /// member's stream is prefetched `FL_ENSEMBLE_PREFETCH_FLOATS` ahead (one line per 16 floats read), so
    /// the sample-major walk over M streams runs at memory speed; the simd and reference tiers compose
    /// the two row kernels. The mean row is bit-identical on every tier (−0.0 sums to +0.0 everywhere).
    /// `failure` names the first member whose row holds a value outside [0, 1] or NaN, or sums to
    /// more than 1e-3 from 1; the other results are then incomplete. No members or no classes give
    /// zeros and no failure. Cost: one read of the M·count floats, O(M·count).
    public static func ensembleSample(_ members: UnsafePointer<UnsafePointer<Float>>, memberCount m: Int, offset: Int, count c: Int,
                                      scale: Float, mean: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int>,
                                      tier: KernelTier) -> EnsembleSample {
        guard m > 0, c > 0 else {
            for k in 0...max(m, 0) { argmax[k] = 0 }
            return EnsembleSample(xlogx: 0, spread: 0, meanXlogx: 0, meanSpread: 0, failure: nil)
        }
        switch runnable(tier, indexing: c) {
        case .avx512, .avx2:
            var out = (0.0, 0.0, 0.0, 0.0), total = 0.0, bad: Int32 = 0
            let failed = withUnsafeMutableBytes(of: &out) { raw in
                let o = raw.baseAddress!.assumingMemoryBound(to: Double.self)
                return argmax.withMemoryRebound(to: Int64.self, capacity: m + 1) { a in
                    members.withMemoryRebound(to: UnsafePointer<Float>?.self, capacity: m) { rows in
                        runnable(tier, indexing: c) == .avx512
                            ? fl_ensemble_sample_f32_avx512(rows, Int64(offset), Int64(m), Int64(c), scale, mean, a, o, &total, &bad)
                            : fl_ensemble_sample_f32(rows, Int64(offset), Int64(m), Int64(c), scale, mean, a, o, &total, &bad)
                    }
                }
            }
            return EnsembleSample(xlogx: out.0, spread: out.1, meanXlogx: out.2, meanSpread: out.3,
                                  failure: failed < 0 ? nil : .init(member: Int(failed), total: total, invalid: bad != 0))
        case .reference, .simd:
            var xlogx = 0.0, spread = 0.0
            mean.update(repeating: 0, count: c)
            let anchor = members[0] + offset
            for k in 0..<m {
                let r = ensembleMemberRow(members[k] + offset, anchor: anchor, into: mean, count: c, tier: tier)
                if r.invalid || abs(r.total - 1) > ensembleSumTolerance {
                    return EnsembleSample(xlogx: xlogx, spread: spread, meanXlogx: 0, meanSpread: 0,
                                          failure: .init(member: k, total: r.total, invalid: r.invalid))
                }
                xlogx += r.xlogx
                spread += r.spread
                argmax[k] = r.argmax
            }
            let r = ensembleMeanRow(mean, anchor: anchor, count: c, scale: scale, tier: tier)
            argmax[m] = r.argmax
            return EnsembleSample(xlogx: xlogx, spread: spread, meanXlogx: r.xlogx, meanSpread: r.spread, failure: nil)
        }
    }

    /// How far a member row's Σ p may be from 1 in the ensemble pass: 1e-3, the C kernels'
    /// `FL_ENSEMBLE_SUM_TOLERANCE` (defined once, in CFaultline.h).
    public static let ensembleSumTolerance: Double = FL_ENSEMBLE_SUM_TOLERANCE

    /// The result of `ensembleSample`: Σ over members of Σ p ln p and of the spread about member 0's
    /// row, the same two sums of the mean row, and the first invalid member if any.
    public struct EnsembleSample: Sendable, Equatable {
        /// The first member row that failed validation.
        public struct Failure: Sendable, Equatable {
            /// The member whose row failed, its Σ p, and whether it holds a value outside [0, 1] or NaN
            /// (else the sum is off).
            public var member: Int, total: Double, invalid: Bool
        }
        /// Σ over members of Σⱼ pⱼ·ln max(pⱼ, FLT_MIN) (minus M times the expected entropy).
        public var xlogx: Double
        /// Σ over members of Σⱼ (pⱼ − anchorⱼ)², the anchor being member 0's row.
        public var spread: Double
        /// Σⱼ p̄ⱼ·ln max(p̄ⱼ, FLT_MIN) of the mean row (minus the predictive entropy).
        public var meanXlogx: Double
        /// Σⱼ (p̄ⱼ − anchorⱼ)² of the mean row.
        public var meanSpread: Double
        /// The first member whose row is invalid, or nil.
        public var failure: Failure?
    }

    /// The mean row of the ensemble pass: `values` scaled in place by `scale` (Σ → mean), then
    /// Σ v·ln max(v, FLT_MIN), the spread Σ (v − anchor)² and the first maximum of the scaled values.
    public static func ensembleMeanRow(_ values: UnsafeMutablePointer<Float>, anchor: UnsafePointer<Float>, count c: Int, scale: Float,
                                       tier: KernelTier) -> (xlogx: Double, spread: Double, argmax: Int) {
        switch runnable(tier, indexing: c) {
        case .avx512, .avx2:
            var out = (0.0, 0.0)
            let arg = withUnsafeMutableBytes(of: &out) { raw in
                let o = raw.baseAddress!.assumingMemoryBound(to: Double.self)
                return runnable(tier, indexing: c) == .avx512
                    ? fl_ensemble_mean_row_f32_avx512(values, anchor, Int64(c), scale, o)
                    : fl_ensemble_mean_row_f32(values, anchor, Int64(c), scale, o)
            }
            return (out.0, out.1, Int(arg))
        case .reference, .simd:
            let h = xlogxScale(values, count: c, scale: scale, tier: tier)
            var spread = 0.0, top = 0
            for j in 0..<c {
                let d = Double(values[j]) - Double(anchor[j])
                spread += d * d
                if values[j] > values[top] { top = j }
            }
            return (h, spread, top)
        }
    }

    /// xⱼ ← exp(xⱼ·scale) in place for arguments xⱼ·scale ≤ 0 (e.g. an RBF kernel from squared
    /// distances; ≤ 2 ulp, below −87.3 gives 0 on the simd and native tiers); returns Σ of the new values.
    public static func expScaledInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float, tier: KernelTier) -> Double {
        switch runnable(tier) {
        case .avx512:
            return fl_exp_scaled_f32_avx512(x, Int64(count), scale)
        case .avx2:
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
        let tier = runnable(tier)
        if tier.isNative {
            var out = [0.0, 0.0, 0.0]
            labels.withMemoryRebound(to: Int64.self, capacity: 1) { y in
                if tier == .avx512 {
                    fl_temperature_moments_f64_avx512(z, y, Int64(first), Int64(count), Int64(stride), Int64(c), s, &out)
                } else {
                    fl_temperature_moments_f64(z, y, Int64(first), Int64(count), Int64(stride), Int64(c), s, &out)
                }
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
        /// Equal width, confidence 1 in the last bin; torchmetrics' (1 in an extra slot); right-closed (lo, hi].
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
        if tier.isNative {
            let bad = labels.withMemoryRebound(to: Int64.self, capacity: 1) { y in
                tier == .avx512
                    ? fl_softmax_calibration_f32_avx512(z, y, Int64(first), Int64(count), Int64(c), rule.rawValue, Int64(bins), binCount, binConfidence, binCorrect, totals)
                    : fl_softmax_calibration_f32(z, y, Int64(first), Int64(count), Int64(c), rule.rawValue, Int64(bins), binCount, binConfidence, binCorrect, totals)
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
