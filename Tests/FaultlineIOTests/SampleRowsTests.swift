import FaultlineIO
import Testing

/// `LabeledDataset.sampleRows`: a uniform sample without replacement, deterministic for a seed.
@Suite("sampleRows")
struct SampleRowsTests {
    @Test(arguments: [(0, 0), (1, 0), (1, 1), (5, 3), (10, 10), (10, 20), (1000, 1), (1000, 999), (4097, 200)])
    func sortedDistinctAndInRange(n: Int, count: Int) {
        let rows = LabeledDataset.sampleRows(count, of: n, seed: 7)
        #expect(rows.count == min(count, n))
        #expect(rows == rows.sorted() && Set(rows).count == rows.count)
        #expect(rows.allSatisfy { $0 >= 0 && $0 < n })
        #expect(rows == LabeledDataset.sampleRows(count, of: n, seed: 7))
    }

    /// Every row is drawn with probability count/n: over 2,000 seeds each of 20 rows is picked about
    /// 2,000 · 5/20 = 500 times (binomial sd ≈ 19; bound 6 sd).
    @Test func uniformOverSeeds() {
        var hits = [Int](repeating: 0, count: 20)
        for seed in 0..<2000 { for r in LabeledDataset.sampleRows(5, of: 20, seed: UInt64(seed)) { hits[r] += 1 } }
        #expect(hits.allSatisfy { abs($0 - 500) < 6 * 19 }, "\(hits)")
    }
}
