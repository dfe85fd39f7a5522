import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

/// Weighted split conformal (Tibshirani et al. 2019) against its definition, against `SplitConformal`
/// with equal weights, and by simulation: coverage under a known label shift over 40 seeds.
@Suite("weighted conformal prediction under shift")
struct WeightedConformalTests {
    /// inf{s ∈ scores ∪ {+∞} : Σ_{i: Sᵢ ≤ s} pᵢ ≥ 1 − α}, pᵢ = wᵢ / (W + w_test), by an O(n²) scan.
    static func bruteQuantile(_ s: [Double], _ w: [Double], _ wTest: Double, _ alpha: Double) -> Double {
        let total = w.reduce(0, +) + wTest
        for candidate in s.sorted() {
            let mass = zip(s, w).filter { $0.0 <= candidate }.reduce(0.0) { $0 + $1.1 } / total
            if mass >= 1 - alpha - 1e-9 { return candidate }
        }
        return .infinity
    }

    @Test func equalWeightsGiveTheSplitConformalOrderStatistic() throws {
        var rng = Philox(seed: 1)
        for n in Array(1...40) + [99, 100, 999] {
            let s = (0..<n).map { _ in (rng.uniform() * 20).rounded() / 20 }  // ties
            for alpha in [0.01, 0.05, 0.1, 0.2, 0.5, 0.9] {
                let k = SplitConformal.rank(n: n, alpha: alpha)
                let want = k > n ? Double.infinity : s.sorted()[k - 1]
                for w in [1.0, 0.37, 1e6] {
                    let got = try WeightedConformal.quantile(scores: s, weights: [Double](repeating: w, count: n), testWeight: w, alpha: alpha)
                    #expect(got == want, "n=\(n) α=\(alpha) w=\(w): \(got) vs \(want)")
                }
            }
        }
    }

    @Test func weightedQuantileEqualsItsDefinition() throws {
        var rng = Philox(seed: 2)
        for n in [1, 2, 3, 5, 8, 33] {
            for _ in 0..<30 {
                let s = (0..<n).map { _ in (rng.uniform() * 5).rounded() }
                let w = (0..<n).map { _ in rng.uniform() < 0.2 ? 0 : rng.uniform() * 3 }
                guard w.reduce(0, +) > 0 else { continue }
                let wTest = rng.uniform() < 0.2 ? 0 : rng.uniform() * 3
                for alpha in [0.05, 0.1, 0.3] {
                    let got = try WeightedConformal.quantile(scores: s, weights: w, testWeight: wTest, alpha: alpha)
                    #expect(got == Self.bruteQuantile(s, w, wTest, alpha), "n=\(n) s=\(s) w=\(w) wTest=\(wTest) α=\(alpha)")
                }
            }
        }
        #expect(try WeightedConformal.quantile(scores: [0.1, 0.2], weights: [1, 1], testWeight: .infinity, alpha: 0.1) == .infinity)
        #expect(throws: ReliabilityError.self) { try WeightedConformal.quantile(scores: [], weights: [], testWeight: 1, alpha: 0.1) }
        #expect(throws: ReliabilityError.self) { try WeightedConformal.quantile(scores: [0.1], weights: [1, 2], testWeight: 1, alpha: 0.1) }
        #expect(throws: ReliabilityError.self) { try WeightedConformal.quantile(scores: [0.1], weights: [-1], testWeight: 1, alpha: 0.1) }
        #expect(throws: ReliabilityError.self) { try WeightedConformal.quantile(scores: [0.1], weights: [0], testWeight: 1, alpha: 0.1) }
        #expect(throws: ReliabilityError.self) { try WeightedConformal.quantile(scores: [.nan], weights: [1], testWeight: 1, alpha: 0.1) }
        #expect(throws: ReliabilityError.self) { try WeightedConformal.quantile(scores: [0.1], weights: [1], testWeight: .nan, alpha: 0.1) }
        #expect(throws: ReliabilityError.self) { try WeightedConformal.quantile(scores: [0.1], weights: [1], testWeight: 1, alpha: 1) }
    }

    /// Source priors p, class means on a line, unit variance: the Bayes posterior under p is the model.
    static let p = [0.7, 0.2, 0.1], q = [0.1, 0.3, 0.6], means = [-1.5, 0, 1.5]

    static func sample(_ priors: [Double], _ n: Int, _ rng: inout Philox) -> (Matrix<Float>, [Int]) {
        var rows: [[Float]] = [], labels: [Int] = []
        for _ in 0..<n {
            let u = rng.uniform()
            var y = 0, acc = priors[0]
            while u > acc && y < priors.count - 1 { y += 1; acc += priors[y] }
            let x = means[y] + rng.normal()
            let a = zip(p, means).map { $0 * Foundation.exp(-0.5 * ($1 - x) * ($1 - x)) }
            let s = a.reduce(0, +)
            rows.append(a.map { Float($0 / s) })
            labels.append(y)
        }
        return (try! Matrix(rows), labels)
    }

    @Test func labelShiftCoverageOverFortySeeds() throws {
        let alpha = 0.1, w = zip(Self.q, Self.p).map { $0 / $1 }
        var weighted = 0.0, unweighted = 0.0
        for seed in 0..<40 {
            var rng = Philox(seed: UInt64(seed), stream: 77)
            let (calibration, labels) = Self.sample(Self.p, 1000, &rng)
            let (test, testLabels) = Self.sample(Self.q, 2000, &rng)
            let sets = try WeightedConformal.LabelShiftSets(calibration: calibration, labels: labels, alpha: alpha, classWeights: w).predict(test)
            weighted += SplitConformal.evaluate(sets: sets, labels: testLabels).coverage / 40
            let plain = try SplitConformal(calibration: calibration, labels: labels, alpha: alpha).predict(test)
            unweighted += SplitConformal.evaluate(sets: plain, labels: testLabels).coverage / 40
        }
        print("label shift, 40 seeds, α = \(alpha): weighted coverage \(weighted), unweighted \(unweighted)")
        #expect(weighted >= 1 - alpha - 0.01, "weighted coverage \(weighted)")
        #expect(weighted <= 1 - alpha + 0.03, "weighted coverage \(weighted) (not trivially large sets)")
        #expect(unweighted < 1 - alpha - 0.05, "unweighted coverage \(unweighted) should fall short under the shift")
    }

    /// Covariate shift (Tibshirani et al.'s setting): a feature z ~ N(0, 1) in the source and N(1, 1) in
    /// the target, likelihood ratio w(z) = exp(z − ½) known; the model's probabilities p̂(1|z) = σ(2z)
    /// are right near 0 and overconfident for large z, where labels turn noisy (true P(1|z) shrinks to ½).
    /// Over 40 seeds weighted sets cover ≥ 1 − α − 0.01 on the target; unweighted ones fall short.
    @Test func covariateShiftCoverageOverFortySeeds() throws {
        let alpha = 0.1
        func draw(_ n: Int, mean: Double, _ rng: inout Philox) -> (Matrix<Float>, [Int], [Double]) {
            var probabilities = Matrix<Float>(rows: n, columns: 2)
            var labels = [Int](), weights = [Double]()
            for i in 0..<n {
                let z = mean + rng.normal()
                let model = 1 / (1 + exp(-2 * z))
                let truth = 0.5 + (model - 0.5) * exp(-max(z, 0) * max(z, 0) / 2)
                probabilities[i, 0] = Float(1 - model)
                probabilities[i, 1] = Float(model)
                labels.append(rng.uniform() < truth ? 1 : 0)
                weights.append(exp(z - 0.5))
            }
            return (probabilities, labels, weights)
        }
        var weighted = 0.0, unweighted = 0.0
        for seed in 0..<40 {
            var rng = Philox(seed: UInt64(seed), stream: 91)
            let (calibration, labels, calibrationWeights) = draw(1000, mean: 0, &rng)
            let (test, testLabels, testWeights) = draw(2000, mean: 1, &rng)
            let sets = try WeightedConformal.covariateShiftSets(calibration: calibration, labels: labels, calibrationWeights: calibrationWeights,
                                                                test: test, testWeights: testWeights, alpha: alpha)
            weighted += SplitConformal.evaluate(sets: sets, labels: testLabels).coverage / 40
            let plain = try SplitConformal(calibration: calibration, labels: labels, alpha: alpha).predict(test)
            unweighted += SplitConformal.evaluate(sets: plain, labels: testLabels).coverage / 40
        }
        print("covariate shift, 40 seeds, α = \(alpha): weighted coverage \(weighted), unweighted \(unweighted)")
        #expect(weighted >= 1 - alpha - 0.01, "weighted coverage \(weighted)")
        #expect(unweighted < 1 - alpha - 0.02, "unweighted coverage \(unweighted) should fall short under the shift")
    }

    @Test func unitWeightsReproduceSplitConformalSets() throws {
        var rng = Philox(seed: 3)
        let (calibration, labels) = Self.sample(Self.p, 301, &rng)
        let (test, _) = Self.sample(Self.q, 200, &rng)
        for score in [SplitConformal.Score.lac, .aps(randomized: false), .topK] {
            let plain = try SplitConformal(calibration: calibration, labels: labels, alpha: 0.1, score: score)
            let weighted = try WeightedConformal.LabelShiftSets(calibration: calibration, labels: labels, alpha: 0.1, classWeights: [1, 1, 1], score: score)
            #expect(weighted.thresholds == [Double](repeating: plain.threshold, count: 3))
            #expect(try weighted.predict(test) == plain.predict(test))
            let covariate = try WeightedConformal.covariateShiftSets(calibration: calibration, labels: labels, calibrationWeights: [Double](repeating: 2, count: 301),
                                                                    test: test, testWeights: [Double](repeating: 2, count: 200), alpha: 0.1, score: score)
            #expect(try covariate == plain.predict(test))
        }
    }

    @Test func covariateShiftSetsUseEachRowsOwnWeight() throws {
        var rng = Philox(seed: 4)
        let (calibration, labels) = Self.sample(Self.p, 50, &rng)
        let (test, _) = Self.sample(Self.p, 30, &rng)
        let cw = (0..<50).map { _ in rng.uniform() * 2 }, tw = (0..<30).map { _ in rng.uniform() * 10 }
        let sets = try WeightedConformal.covariateShiftSets(calibration: calibration, labels: labels, calibrationWeights: cw, test: test, testWeights: tw, alpha: 0.2)
        let scores = (0..<50).map { 1 - Double(calibration[$0, labels[$0]]) }
        for j in 0..<30 {
            let t = Self.bruteQuantile(scores, cw, tw[j], 0.2)
            #expect(sets[j] == (0..<3).filter { 1 - Double(test[j, $0]) <= t }, "row \(j)")
        }
        #expect(throws: ReliabilityError.self) {
            try WeightedConformal.covariateShiftSets(calibration: calibration, labels: labels, calibrationWeights: cw, test: test, testWeights: [1], alpha: 0.2)
        }
        #expect(throws: ReliabilityError.self) {
            try WeightedConformal.LabelShiftSets(calibration: calibration, labels: labels, alpha: 0.1, classWeights: [1, 1])
        }
        #expect(throws: ReliabilityError.self) {
            try WeightedConformal.LabelShiftSets(calibration: calibration, labels: labels, alpha: 0.1, classWeights: [1, .infinity, 1])
        }
    }
}
