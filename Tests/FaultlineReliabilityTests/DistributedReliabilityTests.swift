import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing
import _TestSupport

/// The distributed calibration summary and split conformal calibration on K simulated ranks equal the
/// one-process results: bit for bit where the documented order allows, else ≤ 1e-12 relative.
@Suite("Distributed calibration and conformal")
struct DistributedReliabilityTests {
    /// Seeded logits (N×C, a few ties and large values) and labels.
    static func data(_ n: Int, _ c: Int, seed: UInt64) -> (Matrix<Float>, [Int]) {
        var rng = Philox(seed: seed, stream: 0)
        var z = Matrix<Float>(rows: n, columns: c)
        for i in 0..<n { for j in 0..<c { z[i, j] = Float(4 * rng.uniform() - 2) * (i % 7 == 0 ? 8 : 1) } }
        if n > 3 { for j in 0..<c { z[3, j] = 0.5 } }  // a row of ties
        let y = (0..<n).map { i in Int(rng.uniform() * Double(c)) % c }
        return (z, y)
    }

    static func relative(_ a: Double, _ b: Double) -> Double { a == b ? 0 : abs(a - b) / max(abs(a), abs(b)) }

    static let sizes = [1, 2, 3, 5, 63, 64, 65, 200]

    @Test(arguments: [1, 2, 3])
    func calibrationSummaryEqualsOneProcess(ranks: Int) throws {
        for n in Self.sizes {
            for binning in [CalibrationMetrics.Binning.equalWidth(bins: 10), .equalWidthRightClosed(bins: 7), .torchmetrics(bins: 5)] {
                let (z, y) = Self.data(n, 5, seed: UInt64(n))
                let p = try Linalg.softmaxRows(z)
                for logits in [true, false] {
                    let whole: CalibrationScores = logits ? .logits(z) : .probabilities(p)
                    let one = try CalibrationSummary(whole, labels: y, binning: binning, bins: 10)
                    let results = SimulatedJob.run(ranks: ranks) { c -> CalibrationSummary in
                        let rows = RowSplit.blockAligned(rows: n, rank: c.rank, size: c.size)
                        let shard = whole.gatherRows(Array(rows))
                        return try CalibrationSummary(shard: shard, labels: Array(y[rows]), totalRows: n, binning: binning, bins: 10, communicator: c)
                    }
                    for result in results {
                        let d = try result.get()
                        let label = "n \(n) K \(ranks) \(binning) \(logits ? "logits" : "probabilities")"
                        if logits {
                            // The fused pass: bit-identical.
                            #expect(d.ece == one.ece && d.mce == one.mce && d.brier == one.brier && d.nll == one.nll && d.accuracy == one.accuracy, "\(label)")
                            #expect(d.bins == one.bins, "\(label)")
                        } else {
                            #expect(d.bins.map(\.count) == one.bins.map(\.count), "\(label)")
                        }
                        for (a, b) in zip(d.values, one.values) { #expect(Self.relative(a, b) <= 1e-12, "\(label): \(a) vs \(b)") }
                    }
                }
            }
        }
    }

    /// Wrong shards and equal-mass binning are refused on every rank; a bad row names its global index.
    @Test func badShardsFailOnEveryRank() throws {
        let (z, y) = Self.data(100, 4, seed: 9)
        var badRows = z
        badRows[80, 2] = .nan
        let bad = badRows
        let results = SimulatedJob.run(ranks: 3) { c -> CalibrationSummary in
            let rows = RowSplit.blockAligned(rows: 100, rank: c.rank, size: c.size)
            return try CalibrationSummary(shard: .logits(bad.gatherRows(Array(rows))), labels: Array(y[rows]), totalRows: 100,
                                          binning: .equalWidth(bins: 15), bins: 15, communicator: c)
        }
        for result in results {
            guard case .failure(let error as RankFailure) = result else { Issue.record("expected a RankFailure"); continue }
            #expect(error.failures.map(\.rank) == [2] && error.description.contains("row 80"), "\(error)")
        }
        let uneven = SimulatedJob.run(ranks: 2) { c -> CalibrationSummary in
            let rows = RowSplit.even(rows: 99, rank: c.rank, size: c.size)  // not the block-aligned split
            return try CalibrationSummary(shard: .logits(z.gatherRows(Array(rows))), labels: Array(y[rows]), totalRows: 99,
                                          binning: .equalWidth(bins: 15), bins: 15, communicator: c)
        }
        for result in uneven { #expect(throws: RankFailure.self) { try result.get() } }
        #expect(throws: ReliabilityError.self) {
            try CalibrationSummary(shard: .logits(z), labels: y, totalRows: 100, binning: .equalMass(bins: 5), bins: 5, communicator: SingleProcessCommunicator())
        }
    }

    /// The conformal thresholds (marginal and per class) are the one-process ones, bit for bit, for even and
    /// uneven shards (including empty ones), and every score; the sets predicted per shard are the same.
    @Test(arguments: [1, 2, 3])
    func conformalThresholdEqualsOneProcess(ranks: Int) throws {
        let scores: [SplitConformal.Score] = [.lac, .aps(randomized: false), .aps(randomized: true), .raps(lambda: 0.1, kReg: 1, randomized: true), .topK]
        for n in [2, 19, 64, 101] {
            let (z, y) = Self.data(n, 3, seed: 40 + UInt64(n))
            let p = try Linalg.softmaxRows(z)
            for score in scores {
                for classConditional in [false, true] {
                    let one: SplitConformal
                    do { one = try SplitConformal(calibration: p, labels: y, alpha: 0.34, score: score, classConditional: classConditional, seed: 5) } catch {
                        // Too few samples for α (per class): the distributed calibration must refuse it too.
                        for result in SimulatedJob.run(ranks: ranks, { c in try Self.distributed(p, y, n, score, classConditional, c) }) {
                            #expect(throws: ReliabilityError.self) { try result.get() }
                        }
                        continue
                    }
                    let sets = try one.predict(p)
                    for result in SimulatedJob.run(ranks: ranks, { c in try Self.distributed(p, y, n, score, classConditional, c) }) {
                        let (d, mySets, rows) = try result.get()
                        #expect(d.threshold.bitPattern == one.threshold.bitPattern, "n \(n) \(score) K \(ranks)")
                        #expect(d.classThresholds?.map(\.bitPattern) == one.classThresholds?.map(\.bitPattern))
                        #expect(mySets == Array(sets[rows]))
                    }
                }
            }
        }
    }

    /// Rank r's calibration: the first ranks hold nothing, the last holds most (an uneven split).
    static func distributed(_ p: Matrix<Float>, _ y: [Int], _ n: Int, _ score: SplitConformal.Score, _ classConditional: Bool,
                            _ c: any Communicator) throws -> (SplitConformal, [[Int]], Range<Int>) {
        let cut = (0...c.size).map { r in r == c.size ? n : Swift.min(n, r * r * n / (c.size * c.size)) }
        let rows = cut[c.rank]..<cut[c.rank + 1]
        let d = try SplitConformal(calibrationShard: p.gatherRows(Array(rows)), labels: Array(y[rows]), firstSample: rows.lowerBound,
                                   alpha: 0.34, score: score, classConditional: classConditional, seed: 5, communicator: c)
        // (predict refuses an empty matrix, as one process does: a rank without rows has no sets.)
        return (d, rows.isEmpty ? [] : try d.predict(p.gatherRows(Array(rows)), firstSample: rows.lowerBound), rows)
    }

    /// Shards out of rank order are refused on every rank.
    @Test func nonContiguousShardsAreRefused() throws {
        let (z, y) = Self.data(10, 3, seed: 1)
        let p = try Linalg.softmaxRows(z)
        let results = SimulatedJob.run(ranks: 2) { c -> Double in
            let rows = c.rank == 0 ? 5..<10 : 0..<5
            return try SplitConformal(calibrationShard: p.gatherRows(Array(rows)), labels: Array(y[rows]), firstSample: rows.lowerBound,
                                      alpha: 0.2, communicator: c).threshold
        }
        for result in results { #expect(throws: ReliabilityError.self) { try result.get() } }
    }
}
