import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

/// Selective-prediction scores (MSP, margin, negative entropy, negative energy, max logit) and their
/// AURC: the tie-averaged AURC equals a float64 brute force over every order of tied scores, equals
/// RiskCoverage without ties, and the scores equal their float64 definitions.
@Suite("selective prediction: confidence scores and AURC")
struct SelectiveScoreTests {
    /// AURC averaged over every order of the samples that sorts confidence non-increasingly (all
    /// permutations filtered: only for N ≤ 7), errors among the first k counted directly.
    static func bruteForceAURC(_ confidence: [Double], _ correct: [Bool]) -> Double {
        let n = confidence.count
        var total = 0.0, orders = 0
        func visit(_ prefix: [Int], _ rest: Set<Int>) {
            if rest.isEmpty {
                orders += 1
                var aurc = 0.0
                for k in 1...n { aurc += Double(prefix[0..<k].filter { !correct[$0] }.count) / Double(k) }
                total += aurc / Double(n)
                return
            }
            for i in rest where prefix.last.map({ confidence[$0] >= confidence[i] }) ?? true { visit(prefix + [i], rest.subtracting([i])) }
        }
        visit([], Set(0..<n))
        return total / Double(orders)
    }

    static func aurc(_ risk: [Double]) -> Double { risk.reduce(0, +) / Double(risk.count) }

    /// Families of sizes 1…7, with and without ties (confidences on a coarse grid), all-correct and
    /// all-wrong included.
    @Test func tieAveragedAURCEqualsBruteForce() throws {
        var rng = Philox(seed: 8)
        for n in 1...7 {
            for trial in 0..<25 {
                let grid = trial % 2 == 0 ? 3.0 : 1e6
                let confidence = (0..<n).map { _ in (rng.uniform() * grid).rounded(.down) / grid }
                let correct: [Bool] = (0..<n).map { i in trial == 1 ? true : trial == 3 ? false : rng.uniform() < 0.6 || i < 0 }
                let got = Self.aurc(SelectiveScoreComparison.tieAveragedRisk(confidence: confidence, correct: correct))
                let want = Self.bruteForceAURC(confidence, correct)
                #expect(abs(got - want) <= 1e-14, "n \(n) trial \(trial): \(got) vs \(want)")
                if Set(confidence).count == n {
                    let rc = try RiskCoverage.compute(confidence: confidence, correct: correct)
                    #expect(abs(got - rc.aurc) <= 1e-14)
                }
            }
        }
    }

    /// The scores equal their float64 definitions; `best` is the smallest AURC; E-AURC = AURC − oracle.
    @Test(arguments: [1, 2, 3, 10])
    func scoresEqualDefinitions(classes: Int) throws {
        var rng = Philox(seed: UInt64(classes))
        let n = 200
        let z = rng.matrix(rows: n, columns: classes, .normal(mean: 0, sd: 2), as: Float.self)
        let labels = (0..<n).map { _ in Int(rng.uniform() * Double(classes)) }
        let r = try SelectiveScoreComparison.compare(logits: z, labels: labels)
        #expect(r.entries.map(\.score) == ConfidenceScore.allCases)
        let rows = z.rowArrays.map { $0.map(Double.init) }
        var correct: [Bool] = [], scores: [ConfidenceScore: [Double]] = [:]
        for (i, row) in rows.enumerated() {
            let top = row.max()!, lse = top + log(row.map { exp($0 - top) }.reduce(0, +))
            let e = row.map { exp($0 - top) }, total = e.reduce(0, +)
            let p = e.map { Double(Float($0 / total)) }  // the float32 probabilities the library ranks
            let sorted = p.sorted(by: >)
            correct.append(p.firstIndex(of: sorted[0])! == labels[i])
            scores[.maxProbability, default: []].append(sorted[0])
            scores[.margin, default: []].append(classes == 1 ? 1 : sorted[0] - sorted[1])
            scores[.negativeEntropy, default: []].append(p.reduce(0) { $0 + ($1 > 0 ? $1 * log($1) : 0) })
            scores[.negativeEnergy, default: []].append(lse)
            scores[.maxLogit, default: []].append(top)
        }
        #expect(r.errors == correct.filter { !$0 }.count)
        let right = correct.filter { $0 }.count
        let oracle = (1...n).reduce(0.0) { $0 + Double(max(0, $1 - right)) / Double($1) } / Double(n)
        for e in r.entries {
            let want = Self.aurc(SelectiveScoreComparison.tieAveragedRisk(confidence: scores[e.score]!, correct: correct))
            #expect(abs(e.aurc - want) <= 1e-9, "\(e.score): \(e.aurc) vs \(want)")
            #expect(abs(e.excessAURC - (e.aurc - oracle)) <= 1e-12)
        }
        #expect(r.entries.first { $0.score == r.best }!.aurc == r.entries.map(\.aurc).min())
    }

    /// A case where the margin ranks the error last and MSP and entropy rank it first.
    @Test func marginCanRankErrorsBest() throws {
        let p = try Matrix<Float>([[0.6, 0.4, 0.0], [0.5, 0.25, 0.25]])
        let r = try SelectiveScoreComparison.compare(probabilities: p, labels: [1, 0])
        #expect(r.best == .margin)
        #expect(r.entries.count == 3)  // no logit scores from probabilities
        let aurc = Dictionary(uniqueKeysWithValues: r.entries.map { ($0.score, $0.aurc) })
        #expect(aurc[.margin] == 0.25 && aurc[.maxProbability] == 0.75 && aurc[.negativeEntropy] == 0.75)
    }

    @Test func invalidInputs() throws {
        let p = try Matrix<Float>([[0.6, 0.4], [0.5, 0.5]])
        #expect(throws: ReliabilityError.self) { try SelectiveScoreComparison.compare(probabilities: p, labels: [0]) }
        #expect(throws: ReliabilityError.self) { try SelectiveScoreComparison.compare(probabilities: p, labels: [0, 2]) }
        #expect(throws: ReliabilityError.self) { try SelectiveScoreComparison.compare(probabilities: p, labels: [0, -1]) }
        #expect(throws: ReliabilityError.self) { try SelectiveScoreComparison.compare(probabilities: Matrix<Float>(rows: 0, columns: 2), labels: []) }
        #expect(throws: ReliabilityError.self) { try SelectiveScoreComparison.compare(logits: try Matrix<Float>([[.nan, 1]]), labels: [0]) }
        #expect(throws: ReliabilityError.self) { try SelectiveScoreComparison.compare(probabilities: p, logits: try Matrix<Float>([[1, 2]]), labels: [0, 1]) }
    }
}
