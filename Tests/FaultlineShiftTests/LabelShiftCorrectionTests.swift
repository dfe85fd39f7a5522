import FaultlineIO
import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing

/// BBSE against exact confusion matrices, MLLS/EM against its fixed-point equations, a float64
/// bisection reference and SciPy's BFGS maximiser (scripts/fixtures/make_labelshift_fixtures.py),
/// and the prior correction against the Bayes posterior under the target priors.
@Suite("label shift: BBSE, MLLS/EM, prior correction")
struct LabelShiftCorrectionTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/labelshift.npz").map { ($0.name, $0.tensor) })

    /// Validation pairs with exactly the counts `c[i][j]` (prediction i, label j), and target predictions
    /// with exactly the counts `t[i]`.
    static func pairs(_ c: [[Int]]) -> (predicted: [Int], labels: [Int]) {
        var p: [Int] = [], y: [Int] = []
        for i in c.indices { for j in c[i].indices { p += [Int](repeating: i, count: c[i][j]); y += [Int](repeating: j, count: c[i][j]) } }
        return (p, y)
    }

    @Test func bbseIsExactForAKnownConfusionMatrix() throws {
        var rng = Philox(seed: 5)
        for k in [2, 3, 4, 6] {
            for _ in 0..<10 {
                // Diagonally dominant even counts, weights in {0.5, 1, 1.5, 2}: target counts are integers.
                let c = (0..<k).map { i in (0..<k).map { j in 2 * (i == j ? 20 + Int(rng.uniform() * 20) : Int(rng.uniform() * 4)) } }
                let w = (0..<k).map { _ in 0.5 * Double(1 + Int(rng.uniform() * 4)) }
                let t = c.map { row in Int(zip(row, w).reduce(0.0) { $0 + Double($1.0) * $1.1 }) }
                let (p, y) = Self.pairs(c)
                let target = t.enumerated().flatMap { [Int](repeating: $0.offset, count: $0.element) }
                let e = try LabelShiftEstimate(validationPredictions: p, validationLabels: y, targetPredictions: target, classes: k)
                // C w = μ with C = counts/n and μ = t/m: w = w* · n/m.
                let n = Double(p.count), m = Double(target.count)
                for j in 0..<k { #expect(abs(e.weights[j] - w[j] * n / m) <= 1e-12 * max(1, w[j] * n / m), "k=\(k): \(e.weights) vs \(w)") }
                #expect(abs(e.targetDistribution.reduce(0, +) - 1) <= 1e-12)
            }
        }
    }

    /// The EM fixed point q_y = (1/m) Σᵢ w_y f_y(xᵢ) / Σ_k w_k f_k(xᵢ), in Double, and the KKT condition of
    /// the concave likelihood: the gradient component (1/m) Σᵢ (f_y/p_y) / Σ_k w_k f_k is 1 where q_y > 0.
    static func residuals(_ f: Matrix<Float>, _ e: LabelShift.MaximumLikelihoodEstimate) -> (fixedPoint: Double, gradient: Double) {
        let k = f.columns, m = f.rows
        var next = [Double](repeating: 0, count: k), grad = [Double](repeating: 0, count: k)
        for i in 0..<m {
            let d = (0..<k).reduce(0.0) { $0 + e.weights[$1] * Double(f[i, $1]) }
            for y in 0..<k {
                next[y] += e.weights[y] * Double(f[i, y]) / d / Double(m)
                grad[y] += Double(f[i, y]) / e.sourceDistribution[y] / d / Double(m)
            }
        }
        let fixed = zip(next, e.targetDistribution).map { abs($0 - $1) }.max()!
        let g = zip(grad, e.targetDistribution).filter { $0.1 > 1e-6 }.map { abs($0.0 - 1) }.max() ?? 0
        return (fixed, g)
    }

    @Test func mllsEqualsTheSciPyMaximiserAndSatisfiesItsEquations() throws {
        let probs = try Self.arrays["mlls_probs"]!.matrix(Float.self, name: "mlls_probs")
        let priors = Self.arrays["mlls_priors"]!.values(as: Double.self), reference = Self.arrays["mlls_q"]!.values(as: Double.self)
        let e = try LabelShift.maximumLikelihood(targetProbabilities: probs, sourcePriors: priors, tolerance: 1e-13)
        #expect(e.converged)
        for (q, r) in zip(e.targetDistribution, reference) { #expect(abs(q - r) <= 1e-7, "\(e.targetDistribution) vs SciPy \(reference)") }
        let r = Self.residuals(probs, e)
        #expect(r.fixedPoint <= 1e-11 && r.gradient <= 1e-8, "\(r)")
        #expect(e.logLikelihoodGain > 0)
        for (w, (q, p)) in zip(e.weights, zip(e.targetDistribution, priors)) { #expect(abs(w - q / p) <= 1e-15 * w) }
    }

    /// Two classes: L(a) = Σᵢ log(a g₀ᵢ + (1 − a) g₁ᵢ) is concave in a; its maximiser by bisection on L′.
    static func bisection(_ f: Matrix<Float>, _ p: [Double]) -> Double {
        let g = (0..<f.rows).map { (Double(f[$0, 0]) / p[0], Double(f[$0, 1]) / p[1]) }
        func derivative(_ a: Double) -> Double { g.reduce(0.0) { $0 + ($1.0 - $1.1) / (a * $1.0 + (1 - a) * $1.1) } }
        if derivative(0) <= 0 { return 0 }
        if derivative(1) >= 0 { return 1 }
        var lo = 0.0, hi = 1.0
        for _ in 0..<200 { let mid = (lo + hi) / 2; if derivative(mid) > 0 { lo = mid } else { hi = mid } }
        return (lo + hi) / 2
    }

    @Test(arguments: [1, 2, 3, 7, 50, 501])
    func mllsEqualsABisectionReferenceForTwoClasses(_ m: Int) throws {
        var rng = Philox(seed: UInt64(m))
        for trial in 0..<6 {
            let p0 = [0.5, 0.2, 0.8, 0.35, 0.6, 0.05][trial]
            let rows = (0..<m).map { _ -> [Float] in let a = Float(rng.uniform()); return [a, 1 - a] }
            let f = try Matrix<Float>(rows)
            let e = try LabelShift.maximumLikelihood(targetProbabilities: f, sourcePriors: [p0, 1 - p0], tolerance: 1e-14, maxIterations: 200_000)
            let a = Self.bisection(f, [p0, 1 - p0])
            // At an interior optimum EM converges linearly; at a vertex only geometrically slowly.
            let tolerance = (a > 1e-6 && a < 1 - 1e-6) ? 1e-8 : 1e-4
            #expect(abs(e.targetDistribution[0] - a) <= tolerance, "m=\(m) trial \(trial): EM \(e.targetDistribution[0]) vs bisection \(a)")
        }
    }

    /// 1-D Gaussian classes: the Bayes posterior under the source priors is a calibrated model.
    static func simulate(priors: [Double], means: [Double], count: Int, sourcePriors: [Double], seed: UInt64) -> (Matrix<Float>, [Int], [[Double]]) {
        var rng = Philox(seed: seed)
        var labels: [Int] = [], rows: [[Float]] = [], xs: [Double] = []
        for _ in 0..<count {
            let u = rng.uniform()
            var y = 0, acc = priors[0]
            while u > acc && y < priors.count - 1 { y += 1; acc += priors[y] }
            let x = means[y] + rng.normal()
            labels.append(y)
            xs.append(x)
            rows.append(posterior(x, sourcePriors, means).map(Float.init))
        }
        return (try! Matrix(rows), labels, xs.map { [$0] })
    }

    static func posterior(_ x: Double, _ priors: [Double], _ means: [Double]) -> [Double] {
        let a = zip(priors, means).map { $0 * Foundation.exp(-0.5 * ($1 - x) * ($1 - x)) }
        let s = a.reduce(0, +)
        return a.map { $0 / s }
    }

    @Test func bothEstimatorsRecoverAKnownShiftAndTheCorrectionIsBayes() throws {
        let p = [0.5, 0.3, 0.2], q = [0.1, 0.3, 0.6], means = [-2.0, 0, 2]
        let (source, sourceLabels, _) = Self.simulate(priors: p, means: means, count: 20_000, sourcePriors: p, seed: 1)
        let (target, targetLabels, xs) = Self.simulate(priors: q, means: means, count: 20_000, sourcePriors: p, seed: 2)
        let em = try LabelShift.maximumLikelihood(targetProbabilities: target, sourcePriors: p)
        for (a, b) in zip(em.targetDistribution, q) { #expect(abs(a - b) <= 0.02, "MLLS \(em.targetDistribution)") }
        let bbse = try LabelShiftEstimate(validationPredictions: try Linalg.rowArgmax(source), validationLabels: sourceLabels,
                                          targetPredictions: try Linalg.rowArgmax(target), classes: 3)
        for (a, b) in zip(bbse.targetDistribution, q) { #expect(abs(a - b) <= 0.03, "BBSE \(bbse.targetDistribution)") }
        // With the true weights, the corrected probabilities are the posterior under q.
        let corrected = try LabelShift.correct(target, weights: zip(q, p).map { $0 / $1 })
        for i in stride(from: 0, to: 20_000, by: 97) {
            let bayes = Self.posterior(xs[i][0], q, means)
            for y in 0..<3 { #expect(abs(Double(corrected[i, y]) - bayes[y]) <= 2e-6, "row \(i)") }
        }
        // And the corrected argmax is more accurate on the target.
        func accuracy(_ m: Matrix<Float>) throws -> Double { Double(zip(try Linalg.rowArgmax(m), targetLabels).filter { $0 == $1 }.count) / 20_000 }
        let before = try accuracy(target), after = try accuracy(try LabelShift.correct(target, weights: em.weights))
        #expect(after > before + 0.02, "accuracy \(before) → \(after)")
    }

    @Test func correctionClosedFormsAndEdges() throws {
        let f = try Matrix<Float>([[0.2, 0.8], [1, 0], [0.5, 0.5]])
        #expect(try LabelShift.correct(f, weights: [1, 1]) == f)
        let c = try LabelShift.correct(f, weights: [3, 1])
        #expect(abs(c[0, 0] - 0.6 / 1.4) <= 1e-7 && abs(c[2, 0] - 0.75) <= 1e-7 && c[1, 0] == 1)
        // A row whose mass is all on weight-0 classes is unchanged.
        #expect(try LabelShift.correct(f, weights: [0, 1]).row(1).elementsEqual([1, 0]))
        #expect(throws: ShiftError.self) { try LabelShift.correct(f, weights: [1]) }
        #expect(throws: ShiftError.self) { try LabelShift.correct(f, weights: [1, .nan]) }
        #expect(throws: ShiftError.self) { try LabelShift.correct(f, weights: [1, -1]) }
        #expect(throws: ShiftError.self) { try LabelShift.maximumLikelihood(targetProbabilities: f, sourcePriors: [1, 0]) }
        #expect(throws: ShiftError.self) { try LabelShift.maximumLikelihood(targetProbabilities: f, sourcePriors: [0.5, 0.3]) }
        #expect(throws: ShiftError.self) { try LabelShift.maximumLikelihood(targetProbabilities: f, sourcePriors: [1]) }
        #expect(throws: ShiftError.self) { try LabelShift.maximumLikelihood(targetProbabilities: try Matrix<Float>([[Float.nan, 1]]), sourcePriors: [0.5, 0.5]) }
        #expect(throws: ShiftError.self) { try LabelShift.maximumLikelihood(targetProbabilities: Matrix<Float>(rows: 0, columns: 2), sourcePriors: [0.5, 0.5]) }
        #expect(try LabelShift.priors(labels: [0, 1, 1, 2], classes: 4) == [0.25, 0.5, 0.25, 0])
        #expect(throws: ShiftError.self) { try LabelShift.priors(labels: [0, 5], classes: 4) }
        // With the source's mean probabilities as priors, EM on the source rows stops at once at w = 1.
        let (rows, _, _) = Self.simulate(priors: [0.6, 0.4], means: [-1, 1], count: 501, sourcePriors: [0.5, 0.5], seed: 3)
        let implied = try LabelShift.priors(probabilities: rows)
        let still = try LabelShift.maximumLikelihood(targetProbabilities: rows, sourcePriors: implied)
        #expect(still.iterations <= 3 && still.weights.allSatisfy { abs($0 - 1) <= 1e-6 }, "\(still)")  // float32 rows sum to 1 ± 1e-7
        #expect(throws: ShiftError.self) { try LabelShift.priors(probabilities: Matrix<Float>(rows: 0, columns: 2)) }
        // No shift: EM leaves the priors where they are (weights ≈ 1) on source-distributed rows.
        let p = [0.3, 0.7]
        let (source, _, _) = Self.simulate(priors: p, means: [-1, 1], count: 40_000, sourcePriors: p, seed: 8)
        let e = try LabelShift.maximumLikelihood(targetProbabilities: source, sourcePriors: p)
        for w in e.weights { #expect(abs(w - 1) <= 0.05, "\(e.weights)") }
    }
}

/// RLLS against the optimality conditions of its convex objective and against random perturbations.
@Suite("label shift: RLLS")
struct RLLSTests {
    static func objective(_ c: [[Double]], _ b: [Double], _ rho: Double, _ t: [Double]) -> Double {
        let r = c.indices.map { i in zip(c[i], t).reduce(0) { $0 + $1.0 * $1.1 } - b[i] }
        return r.reduce(0) { $0 + $1 * $1 }.squareRoot() + rho * t.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }

    @Test(arguments: [0.0, 0.001, 0.01, 0.05, 0.2, 1.0, 10.0])
    func minimisesItsObjective(_ rho: Double) throws {
        var rng = Philox(seed: UInt64(rho * 1000) + 1)
        for k in [2, 3, 5] {
            for _ in 0..<5 {
                let labels = (0..<400).map { _ in Int(rng.uniform() * Double(k)) }
                let predicted = labels.map { rng.uniform() < 0.7 ? $0 : Int(rng.uniform() * Double(k)) }
                let target = (0..<300).map { _ in Int(rng.uniform() * rng.uniform() * Double(k)) }
                let e = try LabelShift.regularized(validationPredictions: predicted, validationLabels: labels, targetPredictions: target,
                                                   classes: k, regularization: rho)
                var c = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
                for (p, y) in zip(predicted, labels) { c[p][y] += 1.0 / 400 }
                var b = [Double](repeating: 0, count: k)
                for p in target { b[p] += 1.0 / 300 }
                for i in 0..<k { b[i] -= c[i].reduce(0, +) }
                let best = Self.objective(c, b, rho, e.theta)
                for _ in 0..<300 {
                    let step = [0.1, 0.01, 1e-4][Int(rng.uniform() * 3)]
                    let t = e.theta.map { $0 + step * (rng.uniform() - 0.5) }
                    #expect(best <= Self.objective(c, b, rho, t) + 1e-10, "k=\(k) ρ=\(rho): a perturbation does better")
                }
                #expect(e.regularization == rho)
                for y in 0..<k { #expect(abs(e.rawWeights[y] - 1 - e.theta[y]) <= 1e-15) }
                let mass = zip(e.rawWeights, e.sourceDistribution).reduce(0.0) { $0 + max($1.0, 0) * $1.1 }
                for y in 0..<k { #expect(abs(e.weights[y] - max(e.rawWeights[y], 0) / mass) <= 1e-12) }
                #expect(abs(e.targetDistribution.reduce(0, +) - 1) <= 1e-12)
                if rho == 0 {
                    // ρ = 0 is BBSE.
                    let bbse = try LabelShiftEstimate(validationPredictions: predicted, validationLabels: labels, targetPredictions: target, classes: k)
                    for y in 0..<k { #expect(abs(e.rawWeights[y] - bbse.rawWeights[y]) <= 1e-9, "\(e.rawWeights) vs \(bbse.rawWeights)") }
                }
            }
        }
    }

    @Test func defaultRegularisationAndEdges() throws {
        let e = try LabelShift.regularized(validationPredictions: [0, 1, 1, 0], validationLabels: [0, 1, 1, 0], targetPredictions: [0, 0, 0, 1], classes: 2)
        let log2k = Foundation.log(4 / 0.01)
        #expect(abs(e.regularization - 3 * (2 * log2k / 12 + (2 * log2k / 4).squareRoot())) <= 1e-12)
        // A huge ρ on four rows: θ = 0, w = 1.
        #expect(e.theta == [0, 0] && e.weights == [1, 1])
        // No shift: b = 0 and θ = 0 for any ρ.
        let none = try LabelShift.regularized(validationPredictions: [0, 1, 1, 0], validationLabels: [0, 1, 0, 1], targetPredictions: [0, 1], classes: 2,
                                              regularization: 0.001)
        #expect(none.theta == [0, 0])
        #expect(throws: ShiftError.self) { try LabelShift.regularized(validationPredictions: [0], validationLabels: [3], targetPredictions: [0], classes: 2) }
        #expect(throws: ShiftError.self) { try LabelShift.regularized(validationPredictions: [], validationLabels: [], targetPredictions: [0], classes: 2) }
        #expect(throws: ShiftError.self) {
            try LabelShift.regularized(validationPredictions: [0], validationLabels: [0], targetPredictions: [0], classes: 2, regularization: -1)
        }
    }
}
