/// Selective prediction: accept the most confident samples first and measure the error among the
/// accepted ones (the risk) as coverage grows.
///
/// Samples are sorted by confidence, highest first, ties kept in input order (so the curve is
/// deterministic); r_k = errors among the first k / k. AURC = (1/N) Σ_k r_k (Geifman et al.); the
/// oracle accepts all correct samples first, r*_k = max(0, k − N_correct)/k; E-AURC = AURC − AURC*.
/// O(N log N).
public struct RiskCoverage: Sendable, Codable {
    /// risk[k − 1] = r_k for coverage k/N.
    public var risk: [Double]
    /// AURC = (1/N) Σ_k r_k.
    public var aurc: Double
    /// E-AURC = AURC − the oracle's AURC.
    public var excessAURC: Double

    /// The curve of `confidence` (higher = more confident) against `correct`. Throws `ReliabilityError.invalidInput` for no samples, unequal lengths or a non-finite confidence.
    public static func compute(confidence: [Double], correct: [Bool]) throws -> RiskCoverage {
        let n = confidence.count
        guard n > 0 else { throw ReliabilityError.invalidInput("no samples") }
        guard correct.count == n else { throw ReliabilityError.invalidInput("\(n) confidences but \(correct.count) correctness flags") }
        if let bad = confidence.firstIndex(where: { !$0.isFinite }) { throw ReliabilityError.invalidInput("confidence[\(bad)] is \(confidence[bad])") }
        let order = confidence.indices.sorted { confidence[$0] > confidence[$1] || (confidence[$0] == confidence[$1] && $0 < $1) }
        var errors = 0
        var risk = [Double](repeating: 0, count: n)
        for (k, i) in order.enumerated() {
            if !correct[i] { errors += 1 }
            risk[k] = Double(errors) / Double(k + 1)
        }
        let nCorrect = correct.filter { $0 }.count
        let oracle = (1...n).reduce(0.0) { $0 + Double(max(0, $1 - nCorrect)) / Double($1) } / Double(n)
        let aurc = risk.reduce(0, +) / Double(n)
        return RiskCoverage(risk: risk, aurc: aurc, excessAURC: aurc - oracle)
    }

    /// The risk when the fraction `coverage` (0, 1] of most confident samples is accepted.
    public func risk(atCoverage coverage: Double) -> Double {
        let k = min(max(Int((coverage * Double(risk.count)).rounded(.up)), 1), risk.count)
        return risk[k - 1]
    }

    /// The largest coverage whose risk is at most `target` (0 when even the single most confident sample errs).
    public func coverage(atRisk target: Double) -> Double {
        guard let k = risk.lastIndex(where: { $0 <= target }) else { return 0 }
        return Double(k + 1) / Double(risk.count)
    }
}
