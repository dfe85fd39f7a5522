import FaultlineAnalysis
import Testing

@Suite("FailureAttribution")
struct FailureAttributionTests {
    /// One row per category, and the precedence rules between them.
    @Test func everyCategoryFromConstructedRows() {
        // rows: right+flipped, right+not flipped, wrong+OOD+confident, wrong+in-dist+confident, wrong+in-dist+unsure,
        // wrong exactly at the OOD threshold (in distribution), wrong exactly at the confidence threshold (confident).
        let correct = [true, true, false, false, false, false, false]
        let confidence = [0.99, 0.99, 0.95, 0.95, 0.5, 0.2, 0.9]
        let ood: [Float] = [100, 100, 11, 1, 1, 10, 1]
        let flipped = [true, false, true, true, true, false, false]
        let a = FailureAttribution(correct: correct, confidence: confidence, oodScore: ood, oodThreshold: 10, confident: 0.9,
                                   flipped: flipped, epsilon: 0.1, attack: "test")
        #expect(a.categories == [.fragile, .robust, .shift, .confidentError, .flagged, .flagged, .confidentError])
        #expect(a.count(.fragile) == 1 && a.count(.robust) == 1 && a.count(.shift) == 1 && a.count(.confidentError) == 2 && a.count(.flagged) == 2)
        #expect(a.thresholds.outOfDistributionScore == 10 && a.thresholds.confidence == 0.9 && a.thresholds.epsilon == 0.1)
    }

    /// Over random rows the counts cover every category, sum to the rows, right rows are never errors
    /// and wrong rows always are.
    @Test(arguments: [0, 1, 2, 17, 500])
    func countsPartitionTheRows(n: Int) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(n + 1)
        func next() -> Double { state = state &* 6364136223846793005 &+ 1442695040888963407; return Double(state >> 11) / Double(1 << 53) }
        let correct = (0..<n).map { _ in next() < 0.6 }
        let a = FailureAttribution(correct: correct, confidence: (0..<n).map { _ in next() }, oodScore: (0..<n).map { _ in Float(next() * 20) },
                                   oodThreshold: 10, confident: 0.8, flipped: (0..<n).map { _ in next() < 0.3 }, epsilon: 0.05, attack: "x")
        #expect(a.counts.count == FailureAttribution.Category.allCases.count)
        #expect(a.counts.values.reduce(0, +) == n)
        for i in 0..<n { #expect(a.categories[i].isError == !correct[i]) }
    }

    /// The nearest-rank quantile: the ⌈q·n⌉-th smallest score, for every n ≤ 40 and several q.
    @Test func thresholdIsTheNearestRankQuantile() throws {
        for n in 1...40 {
            let scores = (0..<n).map { Float(($0 * 7919) % n) - 3 }  // a permutation of -3 ..< n-3
            for q in [0.01, 0.5, 0.9, 0.95, 1.0] {
                let rank = Int((q * Double(n)).rounded(.up))
                #expect(try FailureAttribution.threshold(scores, quantile: q) == Double(rank - 4), "n \(n) q \(q)")
            }
        }
        // Ties and NaN: NaN is ignored, ties count with multiplicity.
        #expect(try FailureAttribution.threshold([1, 1, 1, 2, .nan], quantile: 0.75) == 1)
        #expect(throws: AnalysisError.self) { try FailureAttribution.threshold([], quantile: 0.95) }
        #expect(throws: AnalysisError.self) { try FailureAttribution.threshold([.nan], quantile: 0.95) }
        for q in [0.0, -0.1, 1.01, .nan] { #expect(throws: AnalysisError.self) { try FailureAttribution.threshold([1, 2], quantile: q) } }
    }
}
