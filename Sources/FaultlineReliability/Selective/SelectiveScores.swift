import FaultlineLinalg
import Foundation

/// Confidence scores for selective prediction (accept a prediction only when its score is high),
/// all "higher = more confident", computed in float64 from a row of class probabilities p (or logits z).
public enum ConfidenceScore: String, Sendable, Codable, CaseIterable {
    /// Maximum softmax probability, max p.
    case maxProbability = "msp"
    /// The relative predictive probability: top-1 minus top-2 probability, p₍₁₎ − p₍₂₎ (1 for one class).
    case margin
    /// Negative Shannon entropy, Σ p log p (natural log; 0·log 0 = 0).
    case negativeEntropy = "neg-entropy"
    /// Negative energy, log Σ exp z (temperature 1; Liu et al. 2020); needs logits.
    case negativeEnergy = "neg-energy"
    /// The largest logit, max z; needs logits.
    case maxLogit = "max-logit"

    /// Whether the score needs logits rather than probabilities.
    public var needsLogits: Bool { self == .negativeEnergy || self == .maxLogit }
}

/// Which confidence score ranks a classifier's errors best: every score's risk–coverage curve and
/// AURC on the same predictions (argmax, first class on ties) and labels; the smallest AURC wins.
///
/// AURC here is the expectation over random orders of tied scores (ties are common: saturated
/// probabilities, equal margins), so it depends only on the scores, never on the input order:
/// for a block of t tied samples with e errors that follows k accepted samples with E errors, the
/// risk at coverage k + j is (E + j·e/t)/(k + j). Without ties this is Geifman et al.'s AURC,
/// (1/N) Σₖ rₖ, as `RiskCoverage` computes it. E-AURC subtracts the oracle's AURC (all correct
/// samples first). O(N log N) per score, plus O(N·C) for the scores.
public struct SelectiveScoreComparison: Sendable, Codable, Equatable {
    /// One score's results.
    public struct Entry: Sendable, Codable, Equatable {
        /// The score.
        public var score: ConfidenceScore
        /// Its tie-averaged AURC.
        public var aurc: Double
        /// AURC minus the oracle's.
        public var excessAURC: Double
        /// Risk when the 50 %, 80 % and 90 % most confident samples are accepted (tie-averaged).
        public var riskAt50: Double
        /// Risk at 80 % coverage.
        public var riskAt80: Double
        /// Risk at 90 % coverage.
        public var riskAt90: Double
    }

    /// One entry per score computed, in `ConfidenceScore.allCases` order.
    public var entries: [Entry]
    /// The score with the smallest AURC (the first in case order on an exact tie).
    public var best: ConfidenceScore
    /// Rows compared.
    public var samples: Int
    /// Wrong predictions among them.
    public var errors: Int

    /// Compares the scores of `probabilities` (N × C rows, C ≥ 1) against `labels` (N, in 0..<C);
    /// with `logits` (N × C, the rows the probabilities came from) the logit scores too. Throws
    /// `ReliabilityError.invalidInput` for no rows, mismatched shapes, labels out of range or
    /// non-finite values.
    public static func compare(probabilities p: Matrix<Float>, logits: Matrix<Float>? = nil, labels: [Int]) throws -> SelectiveScoreComparison {
        let n = p.rows, c = p.columns
        guard n > 0, c > 0 else { throw ReliabilityError.invalidInput("no samples or no classes (\(n)×\(c))") }
        guard labels.count == n else { throw ReliabilityError.invalidInput("\(n) rows of probabilities but \(labels.count) labels") }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= c }) { throw ReliabilityError.invalidInput("label[\(bad)] = \(labels[bad]) is outside 0..<\(c)") }
        if let logits, logits.rows != n || logits.columns != c {
            throw ReliabilityError.invalidInput("logits are \(logits.rows)×\(logits.columns), probabilities \(n)×\(c)")
        }
        for (m, name) in [(p, "probabilities")] + (logits.map { [($0, "logits")] } ?? []) {
            if let bad = m.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
                throw ReliabilityError.invalidInput("\(name)[\(bad / c), \(bad % c)] is not finite")
            }
        }
        var correct = [Bool](repeating: false, count: n)
        var scores: [ConfidenceScore: [Double]] = [:]
        for s in ConfidenceScore.allCases where !s.needsLogits || logits != nil { scores[s] = [Double](repeating: 0, count: n) }
        p.withUnsafeBufferPointer { pp in
            for i in 0..<n {
                let row = UnsafeBufferPointer(rebasing: pp[(i * c)..<((i + 1) * c)])
                let (msp, margin, entropy, predicted) = confidence(row)
                correct[i] = predicted == labels[i]
                scores[.maxProbability]![i] = msp
                scores[.margin]![i] = margin
                scores[.negativeEntropy]![i] = entropy
            }
        }
        logits?.withUnsafeBufferPointer { zz in
            for i in 0..<n {
                let row = zz[(i * c)..<((i + 1) * c)].map(Double.init)
                let top = row.max()!
                scores[.maxLogit]![i] = top
                scores[.negativeEnergy]![i] = top + log(row.reduce(0) { $0 + exp($1 - top) })
            }
        }
        var entries: [Entry] = []
        for s in ConfidenceScore.allCases {
            guard let v = scores[s] else { continue }
            let risk = tieAveragedRisk(confidence: v, correct: correct)
            let aurc = risk.reduce(0, +) / Double(n)
            func at(_ coverage: Double) -> Double { risk[min(max(Int((coverage * Double(n)).rounded(.up)), 1), n) - 1] }
            entries.append(Entry(score: s, aurc: aurc, excessAURC: aurc - oracleAURC(correct: correct), riskAt50: at(0.5), riskAt80: at(0.8), riskAt90: at(0.9)))
        }
        let best = entries.min { $0.aurc < $1.aurc }!.score
        return SelectiveScoreComparison(entries: entries, best: best, samples: n, errors: correct.filter { !$0 }.count)
    }

    /// `compare(probabilities:logits:labels:)` from logits alone: the probabilities are their softmax
    /// (float64, max-shifted, rounded to float32), and the logit scores are included.
    public static func compare(logits z: Matrix<Float>, labels: [Int]) throws -> SelectiveScoreComparison {
        if let bad = z.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
            throw ReliabilityError.invalidInput("logits[\(bad / max(z.columns, 1)), \(bad % max(z.columns, 1))] is not finite")
        }
        var p = Matrix<Float>(rows: z.rows, columns: z.columns)
        let c = z.columns
        z.withUnsafeBufferPointer { zz in
            p.withUnsafeMutableBufferPointer { pp in
                for i in 0..<z.rows {
                    let row = zz[(i * c)..<((i + 1) * c)].map(Double.init)
                    let top = row.max() ?? 0
                    let e = row.map { exp($0 - top) }, total = e.reduce(0, +)
                    for k in 0..<c { pp[i * c + k] = Float(e[k] / total) }
                }
            }
        }
        return try compare(probabilities: p, logits: z, labels: labels)
    }

    /// MSP, margin, negative entropy and the predicted class (first on ties) of one probability row.
    static func confidence(_ row: UnsafeBufferPointer<Float>) -> (Double, Double, Double, Int) {
        var first = -Double.infinity, second = -Double.infinity, predicted = 0, entropy = 0.0
        for (k, value) in row.enumerated() {
            let v = Double(value)
            if v > first { (second, first, predicted) = (first, v, k) } else if v > second { second = v }
            if v > 0 { entropy += v * log(v) }
        }
        return (first, row.count == 1 ? 1 : first - second, entropy, predicted)
    }

    /// rₖ for k = 1…N, accepting samples by decreasing confidence and averaging over the orders of
    /// tied confidences (see the type's documentation).
    public static func tieAveragedRisk(confidence: [Double], correct: [Bool]) -> [Double] {
        let n = confidence.count
        let order = confidence.indices.sorted { confidence[$0] > confidence[$1] }
        var risk = [Double](repeating: 0, count: n)
        var k = 0, errors = 0.0
        while k < n {
            var end = k + 1
            while end < n && confidence[order[end]] == confidence[order[k]] { end += 1 }
            let t = end - k, e = Double((k..<end).filter { !correct[order[$0]] }.count)
            for j in 1...t { risk[k + j - 1] = (errors + Double(j) * e / Double(t)) / Double(k + j) }
            errors += e
            k = end
        }
        return risk
    }

    /// AURC of the oracle ordering (every correct sample before every error).
    static func oracleAURC(correct: [Bool]) -> Double {
        let n = correct.count, right = correct.filter { $0 }.count
        return (1...max(n, 1)).reduce(0.0) { $0 + Double(max(0, $1 - right)) / Double($1) } / Double(max(n, 1))
    }
}
