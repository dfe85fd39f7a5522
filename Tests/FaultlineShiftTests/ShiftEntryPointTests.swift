import FaultlineLinalg
import FaultlineShift
import Testing

/// The entry points the command line calls (`FeatureDrift`, `DetectorFile.Detector.fit`) give exactly
/// what composing the tests and detectors by hand gives, and refuse what the detectors cannot take.
@Suite("library entry points: feature drift, detector fit by name")
struct ShiftEntryPointTests {
    static func features(rows: Int, shift: Double, seed: UInt64) -> Matrix<Float> {
        var rng = Philox(seed: seed)
        return rng.matrix(rows: rows, columns: 5, .normal(mean: shift, sd: 1))
    }

    @Test(arguments: [0.0, 0.3, 2.0])
    func featureDriftIsTheTests(shift: Double) throws {
        let a = Self.features(rows: 80, shift: 0, seed: 1), b = Self.features(rows: 60, shift: shift, seed: 2)
        for permutations in [0, 30] {
            let d = try FeatureDrift(reference: a, current: b, alpha: 0.05, permutations: permutations, seed: 4, estimator: .biased)
            let ks = try DriftTests.kolmogorovSmirnov(reference: a, test: b)
            #expect(d.ksStatistics == ks.map(\.statistic) && d.ksPValues == ks.map(\.pValue))
            #expect(d.ksDriftBonferroni == DriftTests.drift(pValues: d.ksPValues, alpha: 0.05, correction: .bonferroni))
            #expect(d.ksDriftFDR == DriftTests.drift(pValues: d.ksPValues, alpha: 0.05, correction: .benjaminiHochberg))
            if permutations > 0 {
                let m = try MMDTest.run(a, b, count: permutations, seed: 4, estimator: .biased)
                #expect(d.mmd?.mmd2 == m.mmd2 && d.mmd?.pValue == m.pValue && d.mmd?.null == [])
                #expect(d.drift == (m.pValue < 0.05 || d.ksDriftBonferroni))
            } else {
                #expect(d.mmd == nil && d.drift == d.ksDriftBonferroni)
            }
        }
        if shift == 2 { #expect(try FeatureDrift(reference: a, current: b).drift) }
    }

    @Test func detectorFitByNameIsTheDetector() throws {
        var x = Self.features(rows: 120, shift: 0, seed: 3)
        let y = (0..<120).map { $0 % 3 }
        for i in 0..<120 { x[i, y[i]] += 3 }
        let queries = Self.features(rows: 17, shift: 1, seed: 4)
        var fit = GaussianFit(dimension: 5, classes: 3)
        try fit.update(x, labels: y)
        var perClassFit = GaussianFit(dimension: 5, classes: 3, perClassCovariance: true)
        try perClassFit.update(x, labels: y)
        let cases: [(DetectorFile.Detector, DetectorFile.Detector)] = [
            (try .fit(.mahalanobis, features: x, labels: y), .mahalanobis(try .ledoitWolf(fit, x: x, labels: y))),
            (try .fit(.mahalanobis, features: x, labels: y, shrinkage: .oas), .mahalanobis(try .oas(fit))),
            (try .fit(.mahalanobis, features: x, labels: y, shrinkage: .fixed(0.1)), .mahalanobis(try MahalanobisDetector(fit, shrinkage: 0.1))),
            (try .fit(.perClass, features: x, labels: y), .perClassMahalanobis(try PerClassMahalanobisDetector(perClassFit, shrinkage: 0))),
            (try .fit(.perClass, features: x, labels: y, shrinkage: .fixed(0.2), logDeterminant: true),
             .perClassMahalanobis(try PerClassMahalanobisDetector(perClassFit, shrinkage: 0.2, includeLogDeterminant: true))),
            (try .fit(.relative, features: x, labels: y, shrinkage: .fixed(0.05)), .relativeMahalanobis(try RelativeMahalanobisDetector(fit, shrinkage: 0.05))),
            (try .fit(.relative, features: x, labels: y, shrinkage: .oas),
             .relativeMahalanobis(try RelativeMahalanobisDetector(fit, shrinkage: min(CovarianceShrinkage.oas(covariance: fit.covariance, samples: 120), 0.999_999)))),
            (try .fit(.knn, features: x, labels: nil, k: 7), .knn(try KNNDetector(reference: x, k: 7))),
        ]
        for (k, (byName, direct)) in cases.enumerated() {
            #expect(try byName.score(queries) == direct.score(queries), "case \(k)")
        }
        for bad in [{ try DetectorFile.Detector.fit(.knn, features: x, labels: nil, k: 0) },
                    { try DetectorFile.Detector.fit(.knn, features: x, labels: nil, k: 121) },
                    { try DetectorFile.Detector.fit(.mahalanobis, features: x, labels: nil) },
                    { try DetectorFile.Detector.fit(.mahalanobis, features: x, labels: Array(y.dropLast())) },
                    { try DetectorFile.Detector.fit(.mahalanobis, features: x, labels: y, shrinkage: .fixed(1)) },
                    { try DetectorFile.Detector.fit(.mahalanobis, features: x, labels: y, shrinkage: .fixed(.nan)) },
                    { try DetectorFile.Detector.fit(.perClass, features: x, labels: y, shrinkage: .oas) },
                    { try DetectorFile.Detector.fit(.relative, features: x, labels: y, shrinkage: .ledoitWolf) }] {
            #expect(throws: ShiftError.self) { _ = try bad() }
        }
    }
}

extension ShiftEntryPointTests {
    /// The rejected features agree with the drift decision, and with a direct step-up computation on
    /// families of p-values with ties, all-null and all-drifted cases.
    @Test func rejectedFeaturesFollowTheCorrections() {
        var rng = Philox(seed: 11)
        var families: [[Double]] = [[0.001, 0.2, 0.03, 0.03, 0.9], [0.5, 0.6], [0, 0, 0], [0.04], [0.01, 0.02, 0.03, 0.04, 0.05]]
        for _ in 0..<200 { families.append((0..<Int(1 + rng.uniform() * 30)).map { _ in rng.uniform() < 0.3 ? rng.uniform() * 0.01 : rng.uniform() }) }
        for p in families {
            for correction in [DriftTests.Correction.bonferroni, .benjaminiHochberg] {
                let rejected = DriftTests.rejected(pValues: p, alpha: 0.05, correction: correction)
                #expect(rejected.isEmpty == !DriftTests.drift(pValues: p, alpha: 0.05, correction: correction), "\(p) \(correction)")
                let f = Double(p.count)
                let expected: [Int]
                if correction == .bonferroni {
                    expected = p.indices.filter { p[$0] < 0.05 / f }
                } else {
                    // Step up: the largest rank i (1-based) with p₍ᵢ₎ < α·i/F, then every p ≤ p₍ᵢ₎.
                    let order = p.indices.sorted { p[$0] < p[$1] }
                    var k = 0
                    for (i, j) in order.enumerated() where p[j] < 0.05 * Double(i + 1) / f { k = i + 1 }
                    expected = k == 0 ? [] : p.indices.filter { p[$0] <= p[order[k - 1]] }
                }
                #expect(rejected == expected, "\(p) \(correction)")
            }
        }
    }
}
