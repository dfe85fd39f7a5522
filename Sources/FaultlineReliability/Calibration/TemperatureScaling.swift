import FaultlineLinalg

/// Temperature scaling (Guo et al. 2017): logits are divided by one scalar T > 0 fitted to minimise the
/// negative log-likelihood on a calibration set.
///
/// The NLL is convex in the inverse temperature s = 1/T (its second derivative is the mean variance of
/// the logits under softmax(s·z)), so the fit is Newton's method on s with a bracketing safeguard: a
/// step that leaves the current bracket or fails to decrease the derivative's magnitude is replaced by
/// bisection. The first iterations use float32 vectorised exponentials (sums per row promoted to
/// Double), the last ones float64 throughout, so the result is the float64 optimum (|dNLL/ds| ≤
/// 1e-12·(1 + NLL)). Rows are split into `Linalg.reductionParts` blocks (a fixed count, so the result
/// is bit-identical for any thread count) run on `Linalg.simdThreads` threads and merged in block order.
/// Cost O(N·C) exponentials per iteration, typically 6–10 iterations.
///
/// T is identifiable only when the NLL has a minimum at a finite s > 0. Before iterating, one pass over
/// the logits checks the two ways it has none, and `fit` throws `ReliabilityError.notIdentifiable`:
/// every row's label holds a largest logit (the logits separate the calibration set, so the NLL keeps
/// decreasing as T → 0), or the NLL's slope at s = 0, mean(z̄ᵢ − z_yᵢ) with z̄ᵢ the row mean, is ≥ 0 (the
/// logits are no better than uniform, so it keeps decreasing as T → ∞). Otherwise some row's label is
/// strictly below its row's maximum, its term grows linearly in s, and the convex NLL has one minimum.
public struct TemperatureScaling: Sendable, Codable, Equatable {
    /// T > 0: the logits are divided by it.
    public var temperature: Double
    /// NLL at T = 1 and at the fitted T, and the Newton iterations used.
    public var nllBefore: Double
    /// The mean NLL on the calibration set at the fitted T.
    public var nllAfter: Double
    /// The Newton iterations used.
    public var iterations: Int

    /// Fits T on (logits, labels). Throws `ReliabilityError` on non-finite logits, bad labels or empty input.
    /// `backend` selects the tier of `Linalg.temperatureMoments` (`Linalg.kernelTier`).
    public static func fit(logits: Matrix<Float>, labels: [Int], backend: Backend? = nil) throws -> TemperatureScaling {
        let n = logits.rows, c = logits.columns
        guard n > 0, c >= 2 else { throw ReliabilityError.invalidInput("need at least one row and two classes, got \(n)×\(c)") }
        guard logits.isFinite else { throw ReliabilityError.invalidInput("logits contain NaN or infinite values") }
        try Check.labels(labels, rows: n, classes: c)
        try requireIdentifiable(logits: logits, labels: labels)
        // The native tier evaluates the float64 moments in the C shim's AVX2 kernel, fast enough to use from
        // the start; the others get close with float32-vectorised moments first.
        let tier = Linalg.kernelTier(backend), avx2 = tier.isNative
        /// Mean moments at inverse temperature s over every `stride`-th row.
        func evaluate(_ s: Double, precise: Bool, stride: Int = 1) -> Moments {
            let count = (n + stride - 1) / stride
            let blocks = min(count, Linalg.reductionParts)  // fixed: the sums' order does not depend on the thread count
            var partial = [Moments](repeating: Moments(), count: blocks)
            logits.withUnsafeBufferPointer { z in
                labels.withUnsafeBufferPointer { y in
                    partial.withUnsafeMutableBufferPointer { out in
                        let (zp, yp, op) = (z.baseAddress!, y.baseAddress!, out.baseAddress!)
                        Linalg.parallelForEach(blocks) { b in
                            let part = Linalg.partition(count, parts: blocks, part: b)
                            let (lower, upper) = (part.lowerBound, part.upperBound)
                            let rows = Swift.stride(from: lower * stride, to: upper * stride, by: stride)
                            if precise {
                                let m = Linalg.temperatureMoments(zp, labels: yp, first: lower * stride, count: upper - lower,
                                                                  stride: stride, classes: c, inverseTemperature: s, tier: tier)
                                op[b] = Moments(nll: m.nll, gradient: m.gradient, curvature: m.curvature)
                            } else {
                                op[b] = moments32(zp, yp, rows, c, Float(s))
                            }
                        }
                    }
                }
            }
            var total = Moments()
            for m in partial { total.add(m) }  // block order: independent of the thread count
            return total.mean(over: count)
        }
        /// Safeguarded Newton on s from `start` until the step is below `tolerance`·s (or the derivative
        /// vanishes); the bracket [lo, hi] grows from the start until it holds the root.
        var iterations = 0
        var last = Moments()
        func newton(from start: Double, precise: Bool, stride: Int, tolerance: Double) -> Double {
            var s = start, lo = 0.0, hi = Double.infinity
            for _ in 0..<100 {
                iterations += 1
                let current = evaluate(s, precise: precise, stride: stride)
                last = current
                if current.gradient > 0 { hi = min(hi, s) } else { lo = max(lo, s) }
                if abs(current.gradient) <= 1e-12 * (1 + abs(current.nll)) { return s }
                var next = current.curvature > 0 ? s - current.gradient / current.curvature : .nan
                if !(next > lo && next < hi) { next = hi.isFinite ? 0.5 * (lo + hi) : 2 * max(s, lo) }
                if abs(next - s) <= tolerance * s || next > 1e6 { return next }
                s = next
            }
            return s
        }
        let atOne = evaluate(1, precise: true)
        // A subsample of ~64k rows gets close cheaply; float64 moments on all rows finish, so the result is
        // the float64 optimum. Without the AVX2 kernel the float64 pass is libm-bound, so float32-vectorised
        // moments on all rows get closer first.
        let subsample = max(1, n / 65_536)
        var s = newton(from: 1, precise: avx2, stride: subsample, tolerance: 1e-5)
        if !avx2 { s = newton(from: s, precise: false, stride: 1, tolerance: 1e-6) }
        s = newton(from: s, precise: true, stride: 1, tolerance: 1e-13)
        guard s > 0 && s.isFinite && s < 1e6 else {
            throw ReliabilityError.invalidInput("the NLL keeps decreasing as T → 0 (the logits separate the classes perfectly); temperature scaling is undefined")
        }
        // The last float64 step moved s by ≤ 1e-13 relative: its NLL is the optimum's to ~1e-26.
        return TemperatureScaling(temperature: 1 / s, nllBefore: atOne.nll, nllAfter: last.nll, iterations: iterations)
    }

    /// Throws `ReliabilityError.notIdentifiable` when the NLL has no minimum at a finite T > 0 (see the
    /// type's documentation). One pass over the logits, in Double.
    static func requireIdentifiable(logits: Matrix<Float>, labels: [Int]) throws {
        let c = logits.columns
        var misranked = 0, slope = 0.0
        logits.withUnsafeBufferPointer { z in
            for i in 0..<logits.rows {
                let row = z.baseAddress! + i * c
                var top = row[0], sum = 0.0
                for j in 0..<c { top = max(top, row[j]); sum += Double(row[j]) }
                if row[labels[i]] < top { misranked += 1 }
                slope += sum / Double(c) - Double(row[labels[i]])
            }
        }
        if misranked == 0 {
            throw ReliabilityError.notIdentifiable(
                "temperature scaling is undefined on these calibration logits: every row's label holds its largest logit, so the NLL keeps decreasing as T → 0; use more (or held-out) calibration rows that include mistakes")
        }
        if slope >= 0 {
            throw ReliabilityError.notIdentifiable(
                "temperature scaling is undefined on these calibration logits: on average the labels' logits are not above their rows' means, so the NLL keeps decreasing as T → ∞; check that the labels belong to these logits")
        }
    }

    /// Σ over rows of the NLL at inverse temperature s and its first two derivatives in s.
    struct Moments: Sendable {
        var nll = 0.0, gradient = 0.0, curvature = 0.0
        mutating func add(_ o: Moments) { nll += o.nll; gradient += o.gradient; curvature += o.curvature }
        func mean(over n: Int) -> Moments { Moments(nll: nll / Double(n), gradient: gradient / Double(n), curvature: curvature / Double(n)) }
    }

    /// Float32-vectorised moments (sums per row promoted to Double): the cheap first stage of the fit
    /// on the reference and simd tiers.
    static func moments32(_ z: UnsafePointer<Float>, _ y: UnsafePointer<Int>, _ rows: StrideTo<Int>, _ c: Int, _ s: Float) -> Moments {
        var out = Moments()
        let vectorEnd = c - c % 8
        let vs = SIMD8<Float>(repeating: s)
        for i in rows {
            let row = z + i * c
            var m = s * row[0]
            for j in 1..<max(c, 1) { m = max(m, s * row[j]) }
            var sum: Float = 0, first: Float = 0, second: Float = 0
            var j = 0
            let vm = SIMD8<Float>(repeating: m)
            while j < vectorEnd {
                let zj = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
                let e = Linalg.exp8(vs * zj - vm)
                sum += e.sum()
                first += (e * zj).sum()
                second += (e * zj * zj).sum()
                j += 8
            }
            while j < c {
                let zj = row[j], e = Float.exp(s * zj - m)
                sum += e
                first += e * zj
                second += e * zj * zj
                j += 1
            }
            let mean = Double(first) / Double(sum)
            out.nll += Double(m) + Double.log(Double(sum)) - Double(s) * Double(row[y[i]])
            out.gradient += mean - Double(row[y[i]])
            out.curvature += Double(second) / Double(sum) - mean * mean
        }
        return out
    }

    /// Logits divided by the fitted temperature.
    public func apply(_ logits: Matrix<Float>) -> Matrix<Float> {
        let inverse = Float(1 / temperature)
        return logits.map { $0 * inverse }
    }
}
