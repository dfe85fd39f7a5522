import FaultlineLinalg

/// Temperature scaling (Guo et al. 2017): logits are divided by one scalar T > 0 fitted to minimise the
/// negative log-likelihood on a calibration set.
///
/// The NLL is convex in the inverse temperature s = 1/T (its second derivative is the mean variance of
/// the logits under softmax(s·z)), so the fit is Newton's method on s with a bracketing safeguard: a
/// step that leaves the current bracket or fails to decrease the derivative's magnitude is replaced by
/// bisection. Everything is accumulated in Double. Converges to |dNLL/ds| ≤ 1e-12·(1 + scale), i.e. the
/// float64 optimum; cost O(N·C) exponentials per iteration, typically 5–8 iterations.
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
        func evaluate(_ s: Double) -> (nll: Double, gradient: Double, curvature: Double) {
            var nll = 0.0, gradient = 0.0, curvature = 0.0
            logits.withUnsafeBufferPointer { z in
                for i in 0..<n {
                    let row = z.baseAddress! + i * c
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
                    nll += m + Double.log(sum) - s * Double(row[labels[i]])
                    gradient += mean - Double(row[labels[i]])
                    curvature += second / sum - mean * mean
                }
            }
            return (nll / Double(n), gradient / Double(n), curvature / Double(n))
        }
        let atOne = evaluate(1)
        // Bracket the root of the derivative in s: it is increasing (convexity).
        var lo = 0.0, hi = 1.0
        while evaluate(hi).gradient < 0 && hi < 1e6 { lo = hi; hi *= 2 }
        var s = min(max(1.0, lo), hi)
        var iterations = 0
        var current = atOne
        for _ in 0..<100 {
            iterations += 1
            current = evaluate(s)
            if current.gradient > 0 { hi = min(hi, s) } else { lo = max(lo, s) }
            if abs(current.gradient) <= 1e-12 * (1 + abs(current.nll)) || hi - lo <= 1e-15 * hi { break }
            var next = current.curvature > 0 ? s - current.gradient / current.curvature : .nan
            if !(next > lo && next < hi) { next = 0.5 * (lo + hi) }
            if abs(next - s) <= 1e-15 * s { s = next; break }
            s = next
        }
        guard s > 0 && s.isFinite else {
            throw ReliabilityError.invalidInput("the NLL keeps decreasing as T → 0 (the logits separate the classes perfectly); temperature scaling is undefined")
        }
        return TemperatureScaling(temperature: 1 / s, nllBefore: atOne.nll, nllAfter: evaluate(s).nll, iterations: iterations)
    }

    /// Logits divided by the fitted temperature.
    public func apply(_ logits: Matrix<Float>) -> Matrix<Float> {
        let inverse = Float(1 / temperature)
        return logits.map { $0 * inverse }
    }
}
