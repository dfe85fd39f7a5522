import FaultlineIO
import FaultlineLinalg
import FaultlineStatistics
import Foundation
import Testing

/// One-sided and zero-failure bounds, Fisher's exact test, Holm and Benjamini–Hochberg, AUROC and the
/// stratified bootstrap: against SciPy 1.17.1 / statsmodels 0.15.0 (scripts/fixtures/make_labelshift_fixtures.py)
/// and brute-force definitions.
@Suite("statistics: slice bounds, exact tests, multiple testing, AUROC")
struct SliceStatisticsTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/slices.npz").map { ($0.name, $0.tensor) })
    static func values(_ name: String) -> [Double] { arrays[name]!.values(as: Double.self) }

    @Test func oneSidedClopperPearsonEqualsSciPy() throws {
        let table = Self.values("cp_upper")
        #expect(table.count >= 4 * 100)
        for r in stride(from: 0, to: table.count, by: 4) {
            let (k, n, a) = (Int(table[r]), Int(table[r + 1]), table[r + 2])
            let u = try BinomialBounds.clopperPearsonUpper(errors: k, samples: n, alpha: a)
            #expect(abs(u - table[r + 3]) <= 1e-10, "k=\(k) n=\(n) α=\(a): \(u) vs \(table[r + 3])")
            // The one-sided bound at α is the two-sided upper end at 2α.
            if a < 0.5 && k < n {
                #expect(abs(u - (try BinomialBounds.clopperPearson(errors: k, samples: n, alpha: 2 * a)).upper) <= 1e-10)
            }
        }
    }

    @Test func zeroFailureBoundIsExactAndNearTheRuleOfThree() throws {
        for n in [1, 2, 3, 5, 10, 59, 100, 1000, 1_000_000, 1 << 40] {
            for a in [0.01, 0.05, 0.1, 0.5] {
                let b = try BinomialBounds.zeroFailureUpperBound(samples: n, alpha: a)
                // Definition: P(0 errors | rate b) = (1 − b)^n = α.
                #expect(abs(Foundation.log1p(-b) * Double(n) - Foundation.log(a)) <= 1e-12 * abs(Foundation.log(a)), "n=\(n) α=\(a)")
                #expect(b == (try BinomialBounds.clopperPearsonUpper(errors: 0, samples: n, alpha: a)))
            }
            let b = try BinomialBounds.zeroFailureUpperBound(samples: n)
            #expect(b <= 3 / Double(n) + 1e-15, "n=\(n): \(b) above 3/n")
            if n >= 100 { #expect(b >= 2.9 / Double(n)) }  // −ln α / n (1 − O(1/n))
        }
        #expect(abs((try BinomialBounds.zeroFailureUpperBound(samples: 1, alpha: 0.05)) - 0.95) <= 1e-15)
        #expect(throws: StatisticsError.self) { try BinomialBounds.zeroFailureUpperBound(samples: 0) }
        #expect(throws: StatisticsError.self) { try BinomialBounds.zeroFailureUpperBound(samples: 5, alpha: .nan) }
    }

    @Test func wilsonUpperIsTheTwoSidedEndAtTwiceAlpha() throws {
        for (k, n) in [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (50, 1000)] {
            let u = try BinomialBounds.wilsonUpper(errors: k, samples: n, alpha: 0.05)
            #expect(u == (try BinomialBounds.wilson(errors: k, samples: n, alpha: 0.1)).upper)
            #expect(u >= Double(k) / Double(n) && u <= 1)
        }
        #expect(throws: StatisticsError.self) { try BinomialBounds.wilsonUpper(errors: 1, samples: 2, alpha: 0.6) }
    }

    /// P(X ≥ k) by the textbook sum of C(K, x) C(N − K, n − x) / C(N, n) in Double (small N).
    static func bruteFisher(_ k: Int, _ n: Int, _ K: Int, _ N: Int) -> Double {
        func choose(_ a: Int, _ b: Int) -> Double {
            guard b >= 0 && b <= a else { return 0 }
            var r = 1.0
            for i in 0..<b { r = r * Double(a - i) / Double(i + 1) }
            return r
        }
        var s = 0.0
        for x in max(k, 0)...max(n, k) { s += choose(K, x) * choose(N - K, n - x) }
        return s / choose(N, n)
    }

    @Test func fisherEqualsSciPyAndTheDefinition() throws {
        let table = Self.values("fisher")
        for r in stride(from: 0, to: table.count, by: 5) {
            let (k, n, K, N) = (Int(table[r]), Int(table[r + 1]), Int(table[r + 2]), Int(table[r + 3]))
            let p = try ExactTests.fisherGreater(groupErrors: k, groupSize: n, totalErrors: K, total: N)
            #expect(abs(p - table[r + 4]) <= 1e-12 + 1e-9 * table[r + 4], "k=\(k) n=\(n) K=\(K) N=\(N): \(p) vs \(table[r + 4])")
        }
        // Every (k, n, K) of small N against the brute-force sum.
        for N in 0...9 { for K in 0...N { for n in 0...N { for k in 0...n {
            let p = try ExactTests.fisherGreater(groupErrors: k, groupSize: n, totalErrors: K, total: N)
            #expect(abs(p - Self.bruteFisher(k, n, K, N)) <= 1e-12, "k=\(k) n=\(n) K=\(K) N=\(N)")
        } } } }
        // Huge tables stay fast (the sum runs on the short side of the mode), monotone in k, and equal to
        // 40-digit mpmath sums of the hypergeometric pmf (computed once, written here; SciPy 1.17.1's
        // hypergeom.sf is off by up to 2e-7 relative at this size, e.g. 0.05610202975 at k = 1 001 500).
        let started = Date()
        var previous = 1.0
        for k in stride(from: 995_000, through: 1_005_000, by: 500) {
            let p = try ExactTests.fisherGreater(groupErrors: k, groupSize: 100_000_000, totalErrors: 10_000_000, total: 1_000_000_000)
            #expect(p >= 0 && p <= previous + 1e-12, "k=\(k): \(p) after \(previous)")
            previous = p
        }
        #expect(Date().timeIntervalSince(started) < 2)
        for (k, want) in [(995_000, 0.99999994250914461696), (1_000_000, 0.50015609525986649288), (1_001_500, 0.056102038856480126858),
                          (1_005_000, 6.0245933514455160163e-8)] {
            let p = try ExactTests.fisherGreater(groupErrors: k, groupSize: 100_000_000, totalErrors: 10_000_000, total: 1_000_000_000)
            #expect(abs(p - want) <= 1e-11 * want, "k=\(k): \(p) vs mpmath \(want)")
        }
        #expect(throws: StatisticsError.self) { try ExactTests.fisherGreater(groupErrors: 3, groupSize: 2, totalErrors: 3, total: 5) }
        #expect(throws: StatisticsError.self) { try ExactTests.fisherGreater(groupErrors: 0, groupSize: 6, totalErrors: 3, total: 5) }
    }

    @Test func holmAndBHEqualStatsmodels() throws {
        for family in ["a", "b", "c", "d"] {
            let p = Self.values("pvalues_\(family)")
            for (correction, key) in [(MultipleTesting.Correction.holm, "holm"), (.bh, "bh")] {
                let got = try MultipleTesting.adjust(p, correction), want = Self.values("\(key)_\(family)")
                for (g, w) in zip(got, want) { #expect(abs(g - w) <= 1e-14, "\(key) family \(family): \(got) vs \(want)") }
            }
        }
        #expect(try MultipleTesting.adjust([], .holm).isEmpty)
        #expect(throws: StatisticsError.self) { try MultipleTesting.adjust([0.1, .nan], .bh) }
        #expect(throws: StatisticsError.self) { try MultipleTesting.adjust([1.5], .holm) }
    }

    /// Holm and BH by their step definitions (reject sets), on random families with ties.
    @Test func adjustedPValuesRejectWhatTheProceduresReject() throws {
        var rng = Philox(seed: 9)
        for m in [1, 2, 3, 8, 31] {
            for _ in 0..<20 {
                let p = (0..<m).map { _ in (rng.uniform() * 0.2 * 100).rounded() / 100 }  // ties
                let sorted = p.sorted()
                for alpha in [0.01, 0.05, 0.1] {
                    // Holm: reject the j smallest while p_(j) ≤ α/(m − j + 1).
                    var holm = 0
                    while holm < m && sorted[holm] <= alpha / Double(m - holm) * (1 + 1e-12) { holm += 1 }
                    let holmCut = holm == 0 ? -1.0 : sorted[holm - 1]
                    // BH: the largest j with p_(j) ≤ jα/m.
                    var bh = 0
                    for j in 1...m where sorted[j - 1] <= Double(j) * alpha / Double(m) * (1 + 1e-12) { bh = j }
                    let bhCut = bh == 0 ? -1.0 : sorted[bh - 1]
                    let h = try MultipleTesting.adjust(p, .holm), b = try MultipleTesting.adjust(p, .bh)
                    for i in 0..<m {
                        #expect((h[i] <= alpha * (1 + 1e-12)) == (p[i] <= holmCut && holm > 0), "Holm m=\(m) α=\(alpha) p=\(p)")
                        #expect((b[i] <= alpha * (1 + 1e-12)) == (p[i] <= bhCut && bh > 0), "BH m=\(m) α=\(alpha) p=\(p)")
                    }
                }
            }
        }
    }

    @Test func aurocEqualsThePairwiseDefinition() throws {
        var rng = Philox(seed: 4)
        for (np, nn) in [(1, 1), (1, 2), (2, 1), (3, 5), (17, 9), (100, 40)] {
            for round in 0..<5 {
                let levels = round == 0 ? 2.0 : 10.0  // heavy ties
                let pos = (0..<np).map { _ in (rng.uniform() * levels).rounded() }, neg = (0..<nn).map { _ in (rng.uniform() * levels).rounded() }
                var pairs = 0.0
                for a in pos { for b in neg { pairs += a > b ? 1 : (a == b ? 0.5 : 0) } }
                let got = try RankStatistics.auroc(positives: pos, negatives: neg)
                #expect(abs(got - pairs / Double(np * nn)) <= 1e-12, "\(np)×\(nn)")
            }
        }
        #expect(try RankStatistics.auroc(positives: [1, 1], negatives: [1, 1, 1]) == 0.5)
        #expect(throws: StatisticsError.self) { try RankStatistics.auroc(positives: [], negatives: [1]) }
        #expect(throws: StatisticsError.self) { try RankStatistics.auroc(positives: [.nan], negatives: [1]) }
    }

    @Test func stratifiedBootstrapKeepsStrataAndIsSeeded() throws {
        var sizes: [[Int]] = []
        let a = try Bootstrap.stratifiedPercentile(strata: [3, 1, 5], resamples: 50, seed: 7) { idx in
            sizes.append(idx.map(\.count))
            for (s, i) in zip([3, 1, 5], idx) { #expect(i.allSatisfy { $0 >= 0 && $0 < s }) }
            return Double(idx[0].reduce(0, +) + idx[2].reduce(0, +))
        }
        #expect(sizes.count == 51 && sizes.allSatisfy { $0 == [3, 1, 5] })
        #expect(a.estimate == 3 + 10 && a.lower <= a.upper)
        let b = try Bootstrap.stratifiedPercentile(strata: [3, 1, 5], resamples: 50, seed: 7) { Double($0[0].reduce(0, +) + $0[2].reduce(0, +)) }
        #expect(a == b)
        #expect(throws: StatisticsError.self) { try Bootstrap.stratifiedPercentile(strata: [3, 0]) { _ in 0 } }
        #expect(throws: StatisticsError.self) { try Bootstrap.stratifiedPercentile(strata: [3], resamples: 0) { _ in 0 } }
    }
}
