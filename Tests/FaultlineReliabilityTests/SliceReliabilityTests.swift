import FaultlineLinalg
import FaultlineReliability
import FaultlineStatistics
import Foundation
import Testing

/// Per-class and per-slice failure rates against brute-force counts and the statistics layer's bounds,
/// the worst slice on a planted example, and the bootstrap intervals.
@Suite("reliability per slice")
struct SliceReliabilityTests {
    /// n rows of 3 classes; the rows of slice `bad` are wrong with probability 0.5, the others 0.05.
    static func data(_ n: Int, seed: UInt64, bad: Int = 2) -> (Matrix<Float>, [Int], [Int]) {
        var rng = Philox(seed: seed)
        var rows: [[Float]] = [], labels: [Int] = [], slices: [Int] = []
        for i in 0..<n {
            let slice = i % 4, y = (i / 4) % 3
            let wrong = rng.uniform() < (slice == bad ? 0.5 : 0.05)
            let predicted = wrong ? (y + 1) % 3 : y
            let top = Float(0.4 + 0.6 * rng.uniform())
            var row = [Float](repeating: (1 - top) / 2, count: 3)
            row[predicted] = top
            rows.append(row)
            labels.append(y)
            slices.append(slice * 10)  // ids need not be contiguous
        }
        return (try! Matrix(rows), labels, slices)
    }

    @Test(arguments: [1, 2, 3, 13, 400])
    func tablesEqualBruteForceCounts(_ n: Int) throws {
        let (p, y, s) = Self.data(n, seed: UInt64(n))
        let r = try SliceReliability.compute(probabilities: p, labels: y, slices: s, sliceNames: [20: "night"], resamples: 50)
        let predicted = (0..<n).map { i in (0..<3).max { p[i, $0] < p[i, $1] || (p[i, $0] == p[i, $1] && $0 > $1) }! }
        let wrong = zip(predicted, y).map { $0 != $1 }
        #expect(r.overall.samples == n && r.overall.errors == wrong.filter { $0 }.count)
        for (table, groups, name) in [(r.classes, y, { "class \($0)" }), (r.slices!, s, { $0 == 20 ? "night" : "slice \($0)" })] as [(SliceReliability.Table, [Int], (Int) -> String)] {
            let ids = Set(groups).sorted()
            #expect(table.rows.map(\.slice) == ids.map(name))
            for (row, g) in zip(table.rows, ids) {
                let members = groups.indices.filter { groups[$0] == g }
                let k = members.filter { wrong[$0] }.count
                #expect(row.samples == members.count && row.errors == k)
                #expect(row.clopperPearson == (try BinomialBounds.clopperPearson(errors: k, samples: members.count)))
                #expect(row.wilson == (try BinomialBounds.wilson(errors: k, samples: members.count)))
                #expect(row.upperBound == (try BinomialBounds.clopperPearsonUpper(errors: k, samples: members.count)))
                if k == 0 { #expect(abs(row.zeroFailureBound! - (1 - Foundation.pow(0.05, 1 / Double(members.count)))) <= 1e-15) } else { #expect(row.zeroFailureBound == nil) }
                #expect(row.pValue == (try ExactTests.fisherGreater(groupErrors: k, groupSize: members.count, totalErrors: r.overall.errors, total: n)))
            }
            #expect(table.rows.map(\.adjustedPValue) == (try MultipleTesting.adjust(table.rows.map(\.pValue), .holm)))
            // The worst: the largest Clopper–Pearson lower bound.
            let lowest = table.rows.map(\.clopperPearson.lower).max()
            #expect(table.rows.first { $0.slice == table.worst }?.clopperPearson.lower == lowest)
        }
    }

    @Test func thePlantedSliceIsNamedWorstAndSignificant() throws {
        let (p, y, s) = Self.data(2000, seed: 9)
        for correction in MultipleTesting.Correction.allCases {
            let r = try SliceReliability.compute(probabilities: p, labels: y, slices: s, sliceNames: [20: "night"], correction: correction, resamples: 100)
            #expect(r.slices?.worst == "night")
            #expect(r.slices!.rows.filter(\.worse).map(\.slice) == ["night"], "\(correction): \(r.slices!.rows.map(\.adjustedPValue))")
            #expect(r.classes.rows.allSatisfy { !$0.worse }, "classes are balanced across slices")
        }
    }

    @Test func zeroErrorSliceGetsTheZeroFailureBound() throws {
        let p = try Matrix<Float>([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.7, 0.3]])
        let r = try SliceReliability.compute(probabilities: p, labels: [0, 0, 1, 1, 1], slices: [0, 0, 0, 1, 1], resamples: 20)
        let clean = r.slices!.rows[0]
        #expect(clean.errors == 0 && clean.samples == 3)
        #expect(abs(clean.zeroFailureBound! - (1 - Foundation.pow(0.05, 1.0 / 3))) <= 1e-15)
        #expect(r.slices!.rows[1].errors == 2 && r.slices!.worst == "slice 1")
        // AUROC of the confidence: right rows (0.9, 0.8, 0.7) against wrong rows (0.6, 0.7), by pairs.
        var pairs = 0.0
        for a in [0.9, 0.8, 0.7] { for b in [0.6, 0.7] { pairs += a > b ? 1 : (a == b ? 0.5 : 0) } }
        #expect(abs(r.errorDetectionAUROC!.estimate - pairs / 6) <= 1e-7)
        #expect(r.errorDetectionAUROC!.lower <= r.errorDetectionAUROC!.upper)
    }

    @Test func robustAccuracyInterval() throws {
        let (p, y, _) = Self.data(400, seed: 3)
        var rng = Philox(seed: 5)
        let robust = (0..<400).map { _ in rng.uniform() < 0.3 }
        let r = try SliceReliability.compute(probabilities: p, labels: y, robustCorrect: robust, resamples: 400)
        let a = r.robustAccuracy!
        #expect(a.estimate == Double(robust.filter { $0 }.count) / 400)
        // A percentile interval of a mean of 400 coin flips: about ±1.96·√(p(1−p)/n).
        let half = 1.96 * (a.estimate * (1 - a.estimate) / 400).squareRoot()
        #expect(abs((a.upper - a.lower) / 2 - half) <= 0.3 * half, "\(a)")
        #expect(r.errorDetectionAUROC != nil && r.slices == nil)
    }

    @Test func badInputsThrow() throws {
        let p = try Matrix<Float>([[0.9, 0.1], [0.2, 0.8]])
        #expect(throws: ReliabilityError.self) { try SliceReliability.compute(probabilities: p, labels: [0]) }
        #expect(throws: ReliabilityError.self) { try SliceReliability.compute(probabilities: p, labels: [0, 2]) }
        #expect(throws: ReliabilityError.self) { try SliceReliability.compute(probabilities: p, labels: [0, 1], slices: [1]) }
        #expect(throws: ReliabilityError.self) { try SliceReliability.compute(probabilities: p, labels: [0, 1], robustCorrect: [true]) }
        #expect(throws: ReliabilityError.self) { try SliceReliability.compute(probabilities: p, labels: [0, 1], alpha: 0.7) }
        #expect(throws: ReliabilityError.self) { try SliceReliability.compute(probabilities: p, labels: [0, 1], resamples: 0) }
        // Every prediction right: no AUROC, no crash.
        #expect(try SliceReliability.compute(probabilities: p, labels: [0, 1], resamples: 5).errorDetectionAUROC == nil)
    }
}
