import FaultlineLinalg

/// Temperature scaling (Guo et al. 2017): logits are divided by one scalar T > 0 fitted to minimise the
/// negative log-likelihood on a calibration set.
///
/// The NLL is convex in the inverse temperature s = 1/T (its second derivative is the mean variance of
/// the logits under softmax(s·z)), so the fit is Newton's method on s with a bracketing safeguard: a
/// step that leaves the current bracket or fails to decrease the derivative's magnitude is replaced by
/// bisection. The first iterations use float32 vectorised exponentials (sums per row promoted to
/// Double), the last ones float64 throughout, so the result is the float64 optimum (|dNLL/ds| ≤
/// 1e-12·(1 + NLL)). Rows are split into blocks over `Linalg.simdThreads` threads and merged in block
/// order. Cost O(N·C) exponentials per iteration, typically 6–10 iterations.
public struct TemperatureScaling: Sendable, Codable, Equatable {
    public var temperature: Double
    /// NLL at T = 1 and at the fitted T, and the Newton iterations used.
    public var nllBefore: Double
    public var nllAfter: Double
    public var iterations: Int

    /// Fits T on (logits, labels). Throws `ReliabilityError` on non-finite logits, bad labels or empty input.
    public static func fit(logits: Matrix<Float>, labels: [Int]) throws -> TemperatureScaling {
        let n = logits.rows, c = logits.columns
        guard n > 0, c >= 2 else { throw ReliabilityError.invalidInput("need at least one row and two classes, got \(n)×\(c)") }
        guard logits.isFinite else { throw ReliabilityError.invalidInput("logits contain NaN or infinite values") }
        try Check.labels(labels, rows: n, classes: c)
        func evaluate(_ s: Double, precise: Bool) -> Moments {
            let blocks = min(n, Linalg.simdThreads * 4)
            var partial = [Moments](repeating: Moments(), count: blocks)
            logits.withUnsafeBufferPointer { z in
                labels.withUnsafeBufferPointer { y in
                    partial.withUnsafeMutableBufferPointer { out in
                        let (zp, yp, op) = (z.baseAddress!, y.baseAddress!, out.baseAddress!)
                        Linalg.parallelForEach(blocks) { b in
                            let rows = (b * n / blocks)..<((b + 1) * n / blocks)
                            op[b] = precise ? moments64(zp, yp, rows, c, s) : moments32(zp, yp, rows, c, Float(s))
                        }
                    }
                }
            }
            var total = Moments()
            for m in partial { total.add(m) }  // block order: independent of the thread count
            return total.mean(over: n)
        }
        let atOne = evaluate(1, precise: true)
        // Bracket the root of the derivative in s: it is increasing (convexity).
        var lo = 0.0, hi = 1.0
        while evaluate(hi, precise: false).gradient < 0 && hi < 1e6 { lo = hi; hi *= 2 }
        var s = min(max(1.0, lo), hi)
        var iterations = 0
        // Newton steps on the float32-vectorised moments get close; the last steps use float64 moments,
        // so the result is the float64 optimum.
        var precise = false
        var last = atOne
        for _ in 0..<100 {
            iterations += 1
            let current = evaluate(s, precise: precise)
            last = current
            if current.gradient > 0 { hi = min(hi, s) } else { lo = max(lo, s) }
            let converged = abs(current.gradient) <= 1e-12 * (1 + abs(current.nll)) || hi - lo <= 1e-15 * hi
            var next = current.curvature > 0 ? s - current.gradient / current.curvature : .nan
            if !(next > lo && next < hi) { next = 0.5 * (lo + hi) }
            let small = abs(next - s) <= (precise ? 1e-13 : 1e-6) * s
            if !precise && (converged || small) {
                precise = true
                lo = 0; hi = .infinity  // float32 moments may have misplaced the bracket by rounding
                s = next
                continue
            }
            if converged || small { s = next; break }
            s = next
        }
        guard s > 0 && s.isFinite else {
            throw ReliabilityError.invalidInput("the NLL keeps decreasing as T → 0 (the logits separate the classes perfectly); temperature scaling is undefined")
        }
        // The last float64 step moved s by ≤ 1e-13 relative: its NLL is the optimum's to ~1e-26.
        return TemperatureScaling(temperature: 1 / s, nllBefore: atOne.nll, nllAfter: last.nll, iterations: iterations)
    }

    /// Σ over rows of the NLL at inverse temperature s and its first two derivatives in s.
    struct Moments: Sendable {
        var nll = 0.0, gradient = 0.0, curvature = 0.0
        mutating func add(_ o: Moments) { nll += o.nll; gradient += o.gradient; curvature += o.curvature }
        func mean(over n: Int) -> Moments { Moments(nll: nll / Double(n), gradient: gradient / Double(n), curvature: curvature / Double(n)) }
    }

    static func moments64(_ z: UnsafePointer<Float>, _ y: UnsafePointer<Int>, _ rows: Range<Int>, _ c: Int, _ s: Double) -> Moments {
        var out = Moments()
        for i in rows {
            let row = z + i * c
            var m = -Double.infinity
            for j in 0..<c { m = max(m, s * Double(row[j])) }
            var sum = 0.0, first = 0.0, second = 0.0
            for j in 0..<c {
                let zj = Double(row[j]), e = Double.exp(s * zj - m)
                sum += e
                first += e * zj
                second += e * zj * zj
            }
            let mean = first / sum
            out.nll += m + Double.log(sum) - s * Double(row[y[i]])
            out.gradient += mean - Double(row[y[i]])
            out.curvature += second / sum - mean * mean
        }
        return out
    }

    static func moments32(_ z: UnsafePointer<Float>, _ y: UnsafePointer<Int>, _ rows: Range<Int>, _ c: Int, _ s: Float) -> Moments {
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
