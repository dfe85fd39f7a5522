import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

/// Regression metrics, Gaussian interval calibration and conformal regression against scikit-learn,
/// torch, uncertainty-toolbox and MAPIE 1.6 (scripts/fixtures/make_regression_fixtures.py), closed
/// forms and coverage simulations.
@Suite("regression")
struct RegressionTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/regression.npz").map { ($0.name, $0.tensor) })
    static func values(_ key: String) -> [Double] { arrays[key]!.values(as: Double.self) }
    static func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-12) -> Bool {
        a == b || abs(a - b) <= tolerance * max(1, abs(b))
    }

    /// MAE, MSE, RMSE, R², median and max error (sklearn), Gaussian NLL (torch full and not, and
    /// uncertainty-toolbox), pinball losses at three levels, on n = 1, 2, 3, 7 (ties), constant
    /// targets, a perfect fit and 1000 heteroscedastic rows.
    @Test func metricsMatchScikitLearnTorchAndUncertaintyToolbox() throws {
        var i = 0
        while Self.arrays["m\(i)_ref"] != nil {
            let p = Self.values("m\(i)_pred"), y = Self.values("m\(i)_y"), s = Self.values("m\(i)_sigma"), ref = Self.values("m\(i)_ref")
            let m = try RegressionMetrics(predictions: p, targets: y)
            let ours = [m.meanAbsoluteError, m.meanSquaredError, m.rootMeanSquaredError, m.r2, m.medianAbsoluteError, m.maxError,
                        try RegressionMetrics.gaussianNLL(mean: p, sigma: s, targets: y, full: true),
                        try RegressionMetrics.gaussianNLL(mean: p, sigma: s, targets: y, full: false),
                        try RegressionMetrics.gaussianNLL(mean: p, sigma: s, targets: y)]
                + (try [0.1, 0.5, 0.9].map { try RegressionMetrics.pinballLoss(quantiles: p, targets: y, level: $0) })
            for (j, (a, b)) in zip(ours, ref).enumerated() where !b.isNaN {  // sklearn's R² of one sample is NaN
                #expect(Self.close(a, b, 1e-11), "case \(i), metric \(j): \(a) vs \(b)")
            }
            i += 1
        }
        #expect(i == 6)
        // torch clamps the variance at eps: a tiny variance counts as 1e-6.
        let tiny = try RegressionMetrics.gaussianNLL(mean: [0], variance: [1e-12], targets: [1e-3], full: false)
        #expect(Self.close(tiny, 0.5 * (log(1e-6) + 1e-6 / 1e-6)))
        #expect(throws: ReliabilityError.self) { try RegressionMetrics(predictions: [], targets: []) }
        #expect(throws: ReliabilityError.self) { try RegressionMetrics(predictions: [1, .nan], targets: [1, 2]) }
        #expect(throws: ReliabilityError.self) { try RegressionMetrics(predictions: [1], targets: [1, 2]) }
        #expect(throws: ReliabilityError.self) { try RegressionMetrics.gaussianNLL(mean: [1], sigma: [0], targets: [1]) }
        #expect(throws: ReliabilityError.self) { try RegressionMetrics.gaussianNLL(mean: [1], sigma: [-1], targets: [1]) }
        #expect(throws: ReliabilityError.self) { try RegressionMetrics.pinballLoss(quantiles: [1], targets: [1], level: 1.5) }
    }

    /// MACE, RMSCE and the miscalibration area of uncertainty-toolbox 0.1.1 (100 expected proportions,
    /// central intervals) for calibrated, over-confident, under-confident and biased predictions.
    @Test func intervalCalibrationMatchesUncertaintyToolbox() throws {
        for i in 0..<4 {
            let c = try GaussianIntervalCalibration(mean: Self.values("u\(i)_mean"), sigma: Self.values("u\(i)_sigma"), targets: Self.values("u\(i)_y"))
            let ref = Self.values("u\(i)_ref")
            #expect(Self.close(c.meanAbsoluteCalibrationError, ref[0]), "case \(i) MACE \(c.meanAbsoluteCalibrationError) vs \(ref[0])")
            #expect(Self.close(c.rootMeanSquaredCalibrationError, ref[1]), "case \(i) RMSCE \(c.rootMeanSquaredCalibrationError) vs \(ref[1])")
            #expect(Self.close(c.miscalibrationArea, ref[2]), "case \(i) area \(c.miscalibrationArea) vs \(ref[2])")
            #expect(c.pitHistogram.reduce(0, +) == 500)
        }
    }

    /// Calibrated Gaussian predictions by simulation: observed coverage within 4 binomial standard errors
    /// of every nominal level, a flat PIT histogram; over-confident ones (σ halved) undercover and give a
    /// U-shaped PIT histogram.
    @Test func calibratedPredictionsCoverTheirNominalLevels() throws {
        var rng = Philox(seed: 31)
        let n = 20_000
        let mu = (0..<n).map { _ in rng.normal() * 3 }, sigma = (0..<n).map { _ in 0.3 + 2 * rng.uniform() }
        let y = (0..<n).map { mu[$0] + sigma[$0] * rng.normal() }
        let c = try GaussianIntervalCalibration(mean: mu, sigma: sigma, targets: y)
        for level in c.levels {
            let se = (level.nominal * (1 - level.nominal) / Double(n)).squareRoot()
            #expect(abs(level.observed - level.nominal) <= 4 * se + 1e-12, "\(level)")
        }
        let expected = Double(n) / 10, se = (Double(n) * 0.1 * 0.9).squareRoot()
        #expect(c.pitHistogram.allSatisfy { abs(Double($0) - expected) <= 4.5 * se }, "\(c.pitHistogram)")
        let over = try GaussianIntervalCalibration(mean: mu, sigma: sigma.map { $0 / 2 }, targets: y)
        #expect(over.levels.allSatisfy { $0.observed < $0.nominal })
        #expect(over.pitHistogram[0] > 2 * over.pitHistogram[5] && over.pitHistogram[9] > 2 * over.pitHistogram[4])
        #expect(over.meanAbsoluteError > 10 * c.meanAbsoluteError)
        // Closed form on three points: |z| = 0, 1, 3 → inside the 0.6827 interval (z ≤ 1.0002): 2 of 3.
        let small = try GaussianIntervalCalibration(mean: [0, 0, 0], sigma: [1, 1, 1], targets: [0, 1, -3], levels: [0, 0.6827, 1])
        let expectedShares: [Double] = [1.0 / 3, 2.0 / 3, 1]
        #expect(small.levels.map(\.observed) == expectedShares)
        #expect(throws: ReliabilityError.self) { try GaussianIntervalCalibration(mean: [0], sigma: [1], targets: [0], levels: [1.5]) }
        #expect(throws: ReliabilityError.self) { try GaussianIntervalCalibration(mean: [0], sigma: [0], targets: [0]) }
    }

    /// The area between a curve and the diagonal, closed forms: a constant offset d gives d; a curve
    /// crossing in the middle of a segment gives two triangles.
    @Test func miscalibrationAreaClosedForms() {
        #expect(Self.close(GaussianIntervalCalibration.areaBetween(expected: [0, 0.5, 1], observed: [0.1, 0.6, 1.1]), 0.1))
        // (0, +0.2) to (1, −0.2): crossing at 0.5, two triangles of ½·0.2·0.5.
        #expect(Self.close(GaussianIntervalCalibration.areaBetween(expected: [0, 1], observed: [0.2, 0.8]), 0.1))
        #expect(GaussianIntervalCalibration.areaBetween(expected: [0], observed: [0]) == 0)
    }

    @Test func intervalCoverageCountsAndRejectsCrossedBounds() throws {
        let c = try IntervalCoverage(lower: [0, 0, 0, -.infinity], upper: [1, 1, 1, .infinity], targets: [0.5, -1, 1, 7])
        #expect(c.coverage == 0.75 && c.below == 0.25 && c.above == 0 && c.unbounded == 1 && c.meanWidth == .infinity && c.medianWidth == 1)
        #expect(throws: ReliabilityError.self) { try IntervalCoverage(lower: [2], upper: [1], targets: [0]) }
        #expect(throws: ReliabilityError.self) { try IntervalCoverage(lower: [.nan], upper: [1], targets: [0]) }
        #expect(throws: ReliabilityError.self) { try IntervalCoverage(lower: [], upper: [], targets: []) }
    }

    /// 352 MAPIE 1.6 cases: 4 methods × n ∈ {1, 2, 3, 5, 9, 10, 19, 20, 37, 100, 200} × 8 levels α, a third
    /// with tied (rounded) values. Finite intervals equal MAPIE's within 1e-12; where MAPIE raises
    /// because k = ⌈(n + 1)(1 − α)⌉ > n, Faultline throws too, and with `allowInfinite` gives (−∞, ∞).
    /// MAPIE's CQR also refuses n < max(1/α, 1/(1 − α)) (in floating point: n = 10 at α = 0.9) when k ≤ n:
    /// Faultline calibrates those.
    @Test func conformalIntervalsMatchMAPIE() throws {
        var i = 0, compared = 0, infinite = 0, stricter = 0
        while Self.arrays["c\(i)_meta"] != nil {
            let meta = Self.values("c\(i)_meta"), cal = Self.values("c\(i)_cal"), test = Self.values("c\(i)_test"), out = Self.values("c\(i)_out")
            let (code, n, alpha, status) = (Int(meta[0]), Int(meta[1]), meta[2], Int(meta[3]))
            let a = (0..<n).map { cal[3 * $0] }, b = (0..<n).map { cal[3 * $0 + 1] }, y = (0..<n).map { cal[3 * $0 + 2] }
            let ta = (0..<20).map { test[2 * $0] }, tb = (0..<20).map { test[2 * $0 + 1] }
            func make(_ allowInfinite: Bool) throws -> ConformalRegression {
                switch code {
                case 0: return try ConformalRegression(predictions: a, targets: y, alpha: alpha, allowInfinite: allowInfinite)
                case 1: return try ConformalRegression(predictions: a, scales: b, targets: y, alpha: alpha, allowInfinite: allowInfinite)
                default: return try ConformalRegression(lower: a, upper: b, targets: y, alpha: alpha, symmetric: code == 2, allowInfinite: allowInfinite)
                }
            }
            let side = code == 3 ? alpha / 2 : alpha
            let exceeds = SplitConformal.rank(n: n, alpha: side) > n
            if status == 0 {
                #expect(!exceeds, "case \(i)")
                let cp = try make(false)
                for j in 0..<20 {
                    let (lo, hi): (Double, Double)
                    switch code {
                    case 0: (lo, hi) = (ta[j] - cp.quantile, ta[j] + cp.quantile)
                    case 1: (lo, hi) = (ta[j] - cp.quantile * tb[j], ta[j] + cp.quantile * tb[j])
                    default: (lo, hi) = (ta[j] - cp.lowerQuantile, tb[j] + cp.upperQuantile)
                    }
                    #expect(Self.close(lo, out[2 * j]) && Self.close(hi, out[2 * j + 1]), "case \(i) (method \(code), n \(n), α \(alpha)) row \(j): [\(lo), \(hi)] vs [\(out[2 * j]), \(out[2 * j + 1])]")
                    let r = try cp.intervals([ta[j]], code == 0 ? nil : [tb[j]])
                    if lo <= hi { #expect(r.lower[0] == lo && r.upper[0] == hi) } else { #expect(r.lower[0] == (lo + hi) / 2 && r.upper[0] == r.lower[0]) }
                }
                compared += 1
            } else if exceeds {
                #expect(throws: ReliabilityError.self, "case \(i)") { try make(false) }
                let cp = try make(true)
                let r = try cp.intervals(ta, code == 0 ? nil : tb)
                #expect(r.lower.allSatisfy { $0 == -.infinity } && r.upper.allSatisfy { $0 == .infinity }, "case \(i)")
                infinite += 1
            } else {
                #expect(code >= 2 && Double(n) < max(1 / alpha, 1 / (1 - alpha), 1 / side, 1 / (1 - side)), "case \(i): MAPIE raised for method \(code), n \(n), α \(alpha)")
                _ = try make(false)
                stricter += 1
            }
            i += 1
        }
        #expect(i == 352 && compared == 215 && infinite == 118 && stricter == 19, "\(i) cases: \(compared) compared, \(infinite) infinite, \(stricter) MAPIE-stricter")
    }

    /// The selection returns the k-th smallest for every k of a family of arrays (sizes 1…40, ties,
    /// all equal, sorted and reversed).
    @Test func quantileSelectionEqualsSorting() throws {
        var rng = Philox(seed: 5)
        for n in 1...40 {
            let families: [[Double]] = [
                (0..<n).map { _ in rng.normal() }, (0..<n).map { _ in Double(Int(rng.uniform() * 3)) }, [Double](repeating: 2, count: n),
                (0..<n).map(Double.init), (0..<n).map { Double(n - $0) },
            ]
            for v in families {
                for alpha in [0.01, 0.1, 0.25, 0.5, 0.9, 0.99] {
                    let k = SplitConformal.rank(n: n, alpha: alpha)
                    guard k <= n else { continue }
                    #expect(try ConformalRegression.quantile(v, alpha: alpha).value == v.sorted()[k - 1])
                }
            }
        }
        #expect(throws: ReliabilityError.self) { try ConformalRegression.quantile([1, 2], alpha: 0) }
        #expect(throws: ReliabilityError.self) { try ConformalRegression.quantile([1, 2], alpha: 1) }
        #expect(throws: ReliabilityError.self) { try ConformalRegression.quantile([], alpha: 0.5) }
        #expect(throws: ReliabilityError.self) { try ConformalRegression(predictions: [1, 2], scales: [1, 0], targets: [1, 2], alpha: 0.5) }
    }

    /// Coverage by simulation over 1000 seeds (50 test points each) on continuous heteroscedastic data:
    /// the mean coverage lies in [1 − α, 1 − α + 1/(n + 1)] (asymmetric CQR: + 2/(n + 1)) within 4
    /// standard errors, for every method, n ∈ {19, 50} and α ∈ {0.1, 0.2}.
    @Test func coverageHoldsBySimulation() throws {
        for method in ConformalRegression.Method.allCases {
            for n in [19, 50] {
                for alpha in [0.1, 0.2] {
                    var perSeed: [Double] = []
                    for seed in 0..<1000 {
                        var rng = Philox(seed: UInt64(seed), stream: UInt64(n))
                        let m = n + 50
                        let x = (0..<m).map { _ in rng.uniform() * 4 - 2 }
                        let scale = x.map { 0.2 + 0.6 * abs($0) }
                        let y = (0..<m).map { sin(x[$0]) + scale[$0] * rng.normal() }
                        let pred = x.map { sin($0) + 0.1 }  // a slightly biased model
                        let cal = 0..<n, test = n..<m
                        let cp: ConformalRegression
                        let first: [Double], second: [Double]?
                        switch method {
                        case .absoluteResidual:
                            cp = try ConformalRegression(predictions: Array(pred[cal]), targets: Array(y[cal]), alpha: alpha)
                            (first, second) = (Array(pred[test]), nil)
                        case .normalizedResidual:
                            cp = try ConformalRegression(predictions: Array(pred[cal]), scales: Array(scale[cal]), targets: Array(y[cal]), alpha: alpha)
                            (first, second) = (Array(pred[test]), Array(scale[test]))
                        case .cqr, .cqrAsymmetric:
                            let lo = pred.indices.map { pred[$0] - 0.8 * scale[$0] }, hi = pred.indices.map { pred[$0] + 1.2 * scale[$0] }
                            cp = try ConformalRegression(lower: Array(lo[cal]), upper: Array(hi[cal]), targets: Array(y[cal]), alpha: alpha, symmetric: method == .cqr)
                            (first, second) = (Array(lo[test]), Array(hi[test]))
                        }
                        let r = try cp.intervals(first, second)
                        perSeed.append(try IntervalCoverage(lower: r.lower, upper: r.upper, targets: Array(y[test])).coverage)
                    }
                    let mean = perSeed.reduce(0, +) / Double(perSeed.count)
                    let sd = (perSeed.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(perSeed.count - 1)).squareRoot()
                    let se = sd / Double(perSeed.count).squareRoot()
                    let slack = (method == .cqrAsymmetric ? 2.0 : 1.0) / Double(n + 1)
                    #expect(mean >= 1 - alpha - 4 * se, "\(method) n \(n) α \(alpha): coverage \(mean) ± \(se)")
                    #expect(mean <= 1 - alpha + slack + 4 * se, "\(method) n \(n) α \(alpha): coverage \(mean) ± \(se)")
                }
            }
        }
    }
}
