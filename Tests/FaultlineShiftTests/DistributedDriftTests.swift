import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing
import _TestSupport

/// The drift tests over K simulated ranks (`SimulatedJob`) give the one-process results bit for bit:
/// KS statistics and p-values, the corrections' decisions, MMD² and its whole permutation null, the
/// chi-square test and the BBSE weights — for uneven shards (rank 0 empty, the last rank the most), ties,
/// a constant feature, and fewer rows than ranks.
@Suite("Distributed drift tests")
struct DistributedDriftTests {
    /// Rank r's rows of n when rank 0 holds none and the last the most (contiguous, rank order).
    static func rows(_ n: Int, rank: Int, size: Int) -> Range<Int> {
        let cut = (0...size).map { r in r == size ? n : min(n, r * r * n / (size * size)) }
        return cut[rank]..<cut[rank + 1]
    }

    /// Seeded n×d features: normal-ish values + `shift` on feature 1; `rounded` puts them on a grid of 0.5
    /// (ties) and copies rows 0..<n/4 onto the next n/4 (duplicates); feature `constant` (if any) is 3.
    static func features(_ n: Int, _ d: Int, seed: UInt64, shift: Float = 0, rounded: Bool = false, constant: Int? = nil) -> Matrix<Float> {
        driftFeatures(n, d, seed: seed, stream: 11, shift: shift, rounded: rounded, constant: constant)
    }

    static let families: [(name: String, reference: Matrix<Float>, current: Matrix<Float>, permutations: Int)] = [
        ("odd, shifted", features(101, 5, seed: 1), features(77, 5, seed: 2, shift: 0.8), 150),
        ("ties, duplicates, constant", features(63, 4, seed: 3, rounded: true, constant: 2), features(58, 4, seed: 4, rounded: true, constant: 2), 40),
        ("fewer rows than ranks", features(3, 3, seed: 5), features(2, 3, seed: 6, shift: 1), 7),
        ("two kernel blocks", features(300, 3, seed: 7), features(261, 3, seed: 8, shift: 0.2), 20),
    ]

    @Test(arguments: [1, 2, 3, 4])
    func featureDriftEqualsOneProcess(ranks: Int) throws {
        for family in Self.families {
            for estimator in MMDTest.Estimator.allCases {
                let one = try FeatureDrift(reference: family.reference, current: family.current, alpha: 0.05, permutations: family.permutations,
                                           seed: 9, estimator: estimator)
                let (a, b, p) = (family.reference, family.current, family.permutations)
                let results = SimulatedJob.run(ranks: ranks) { c -> FeatureDrift in
                    let ra = Self.rows(a.rows, rank: c.rank, size: c.size), rb = Self.rows(b.rows, rank: c.rank, size: c.size)
                    return try FeatureDrift(referenceShard: a.gatherRows(Array(ra)), currentShard: b.gatherRows(Array(rb)), alpha: 0.05,
                                            permutations: p, seed: 9, estimator: estimator, communicator: c)
                }
                for (rank, result) in results.enumerated() {
                    let got = try result.get()
                    let label = "\(family.name), \(estimator), rank \(rank) of \(ranks)"
                    #expect(got.ksStatistics == one.ksStatistics, "\(label)")
                    #expect(got.ksPValues == one.ksPValues, "\(label)")
                    #expect(got.driftedFeatures == one.driftedFeatures && got.ksDriftFDR == one.ksDriftFDR
                            && got.ksDriftBonferroni == one.ksDriftBonferroni && got.drift == one.drift, "\(label)")
                    #expect(got.mmd?.mmd2 == one.mmd?.mmd2 && got.mmd?.sigma2 == one.mmd?.sigma2 && got.mmd?.pValue == one.mmd?.pValue, "\(label)")
                }
            }
        }
        // The constant feature: D = 0, p = 1 (a closed form, not only agreement).
        let constant = try FeatureDrift(reference: Self.families[1].reference, current: Self.families[1].current)
        #expect(constant.ksStatistics[2] == 0 && constant.ksPValues[2] == 1)
    }

    /// The whole null, permutation by permutation, for tile counts below, at and above the rank count.
    @Test(arguments: [1, 2, 3, 5, 8])
    func mmdNullEqualsOneProcess(ranks: Int) throws {
        let x = Self.features(40, 6, seed: 12), y = Self.features(35, 6, seed: 13, shift: 0.3)
        for count in [1, 15, 16, 300] {
            let one = try MMDTest.run(x, y, count: count, seed: 5)
            let results = SimulatedJob.run(ranks: ranks) { c in try DistributedDrift.mmd(x, y, count: count, seed: 5, communicator: c) }
            for result in results {
                let got = try result.get()
                #expect(got.null == one.null && got.mmd2 == one.mmd2 && got.pValue == one.pValue && got.sigma2 == one.sigma2, "P \(count), \(ranks) ranks")
            }
        }
        // The p-value's definition, checked on the null itself.
        let r = try MMDTest.run(x, y, count: 300, seed: 5)
        #expect(r.pValue == Double(1 + r.null.filter { $0 >= r.mmd2 }.count) / 301)
    }

    @Test(arguments: [1, 2, 4])
    func labelTestsEqualOneProcess(ranks: Int) throws {
        var rng = Philox(seed: 21, stream: 2)
        for (n, m, classes) in [(101, 77, 4), (5, 3, 2), (4, 2, 3), (60, 61, 6)] {
            let a = (0..<n).map { _ in Int(rng.uniform() * Double(classes)) }, b = (0..<m).map { _ in Int(rng.uniform() * Double(classes)) }
            let y = (0..<n).map { $0 % classes }, p = y.enumerated().map { i, label in i % 5 == 0 ? (label + 1) % classes : label }
            let chi = try DriftTests.chiSquare(reference: a, test: b, classes: (a + b).max()! + 1)
            let bbse = try LabelShiftEstimate(validationPredictions: p, validationLabels: y, targetPredictions: b, classes: (p + y + b).max()! + 1)
            let results = SimulatedJob.run(ranks: ranks) { c -> (DriftTests.TestResult, LabelShiftEstimate) in
                let ra = Self.rows(n, rank: c.rank, size: c.size), rb = Self.rows(m, rank: c.rank, size: c.size)
                return (try DistributedDrift.chiSquare(referenceShard: Array(a[ra]), currentShard: Array(b[rb]), communicator: c),
                        try DistributedDrift.labelShift(validationPredictions: Array(p[ra]), validationLabels: Array(y[ra]), targetPredictions: Array(b[rb]),
                                                        communicator: c))
            }
            for result in results {
                let (c, l) = try result.get()
                #expect(c == chi, "n \(n) m \(m), \(ranks) ranks")
                #expect(l.rawWeights == bbse.rawWeights && l.weights == bbse.weights && l.targetDistribution == bbse.targetDistribution
                        && l.sourceDistribution == bbse.sourceDistribution && l.conditioning == bbse.conditioning, "n \(n) m \(m), \(ranks) ranks")
            }
        }
        // BBSE from counts: a perfect classifier's weights are q(y)/p(y) exactly.
        let exact = try LabelShiftEstimate(confusionCounts: [[2, 0], [0, 6]], targetPredictionCounts: [3, 1])
        #expect(exact.weights == [0.75 / 0.25, 0.25 / 0.75])
        #expect(throws: ShiftError.self) { try LabelShiftEstimate(confusionCounts: [[1, -1], [0, 1]], targetPredictionCounts: [1, 1]) }
        #expect(throws: ShiftError.self) { try LabelShiftEstimate(confusionCounts: [[Int.max, 1], [0, 1]], targetPredictionCounts: [1, 1]) }
        #expect(throws: ShiftError.self) { try LabelShiftEstimate(confusionCounts: [[1]], targetPredictionCounts: [1, 1]) }
    }

    /// A bad shard on one rank ends the call on every rank with the same `RankFailure` naming that rank;
    /// an error every rank sees alike is thrown alike; nothing waits forever (SimulatedJob's timeout).
    @Test func failuresReachEveryRank() throws {
        let results = SimulatedJob.run(ranks: 3) { c in
            try DistributedDrift.labelShift(validationPredictions: c.rank == 1 ? [0, 1] : [0], validationLabels: [0], targetPredictions: [1], communicator: c)
        }
        for result in results {
            guard case .failure(let error as RankFailure) = result else { Issue.record("expected a RankFailure, got \(result)"); continue }
            #expect(error.failures.map(\.rank) == [1] && error.description.hasPrefix("rank 1 of 3:"))
        }
        let x = Self.features(6, 2, seed: 1)
        let mmd = SimulatedJob.run(ranks: 2) { c in
            try DistributedDrift.mmd(c.rank == 0 ? x : x.gatherRows(Array(0..<5)), x, count: 3, communicator: c)
        }
        for result in mmd {
            guard case .failure(let error as RankFailure) = result else { Issue.record("expected a RankFailure, got \(result)"); continue }
            #expect(error.description.contains("differ in shape"))
        }
        let negative = SimulatedJob.run(ranks: 2) { c in
            try DistributedDrift.chiSquare(referenceShard: c.rank == 1 ? [-1] : [0, 1], currentShard: [1], communicator: c)
        }
        for result in negative {
            guard case .failure(let error as ShiftError) = result else { Issue.record("expected a ShiftError, got \(result)"); continue }
            #expect("\(error)".contains("outside 0..<2"))
        }
        let empty = SimulatedJob.run(ranks: 2) { c in
            try DistributedDrift.kolmogorovSmirnov(referenceShard: Matrix<Float>(rows: 0, columns: 2), currentShard: x, communicator: c)
        }
        for result in empty { #expect(throws: ShiftError.self) { try result.get() } }
    }
}
