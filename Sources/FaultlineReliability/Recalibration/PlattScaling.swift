#if canImport(Glibc)
import Glibc
#endif

/// Platt scaling for a binary score f: P(y = 1 | f) = 1/(1 + exp(A·f + B)), fitted as scikit-learn's
/// `_sigmoid_calibration`: cross-entropy against Platt's smoothed targets t₊ = (N₊ + 1)/(N₊ + 2) and
/// t₋ = 1/(N₋ + 2), minimised by Newton's method with backtracking in Double from
/// (A, B) = (0, log((N₋ + 1)/(N₊ + 1))). The problem is convex, so this is the optimum scikit-learn's
/// L-BFGS approaches (it stops at gradient 1e-6).
public struct PlattScaling: Sendable, Codable, Equatable {
    /// A in 1/(1 + exp(A·f + B)).
    public var a: Double
    /// B in 1/(1 + exp(A·f + B)).
    public var b: Double

    /// Throws for empty or mismatched inputs, non-finite scores, or labels other than 0/1.
    public init(scores f: [Double], labels y: [Int]) throws {
        guard !f.isEmpty, f.count == y.count else { throw ReliabilityError.invalidInput("Platt scaling needs as many labels as scores (got \(f.count) and \(y.count))") }
        guard f.allSatisfy(\.isFinite) else { throw ReliabilityError.invalidInput("scores contain NaN or infinite values") }
        guard y.allSatisfy({ $0 == 0 || $0 == 1 }) else { throw ReliabilityError.invalidInput("Platt scaling is binary: labels must be 0 or 1") }
        let positives = Double(y.filter { $0 == 1 }.count), negatives = Double(y.count) - positives
        let target = y.map { $0 == 1 ? (positives + 1) / (positives + 2) : 1 / (negatives + 2) }
        // Loss L(A, B) = Σ −t log p − (1 − t) log(1 − p) with p = σ(−(A f + B)).
        func loss(_ a: Double, _ b: Double) -> Double {
            zip(f, target).reduce(0.0) { s, e in
                let u = -(a * e.0 + b)  // log-odds of y = 1
                let softplus = u > 0 ? u + log1p(exp(-u)) : log1p(exp(u))
                return s + softplus - e.1 * u
            }
        }
        var (a, b) = (0.0, log((negatives + 1) / (positives + 1)))
        var current = loss(a, b)
        for _ in 0..<100 {
            var ga = 0.0, gb = 0.0, haa = 0.0, hab = 0.0, hbb = 0.0
            for (fi, ti) in zip(f, target) {
                let u = -(a * fi + b), p = 1 / (1 + exp(-u))
                let r = p - ti, h = p * (1 - p)
                ga += -r * fi; gb += -r
                haa += h * fi * fi; hab += h * fi; hbb += h
            }
            let det = haa * hbb - hab * hab
            guard det > 0 else { break }
            var da = -(hbb * ga - hab * gb) / det, db = -(haa * gb - hab * ga) / det
            var step = 1.0, next = loss(a + da, b + db)
            while next > current && step > 1e-10 { step /= 2; da /= 2; db /= 2; next = loss(a + da, b + db) }
            if next > current { break }
            (a, b) = (a + da, b + db)
            let improvement = current - next
            current = next
            if abs(ga) + abs(gb) < 1e-12 || improvement <= 1e-15 * max(1, current) { break }
        }
        self.a = a
        self.b = b
    }

    /// P(y = 1 | f).
    public func callAsFunction(_ f: Double) -> Double { 1 / (1 + exp(a * f + b)) }
}
