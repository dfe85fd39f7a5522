import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import FaultlineStatistics
import Foundation
import Testing

/// Randomized smoothing against closed forms, Lipschitz certificates against known spectra, and the
/// two-sided soundness check between our attacks and our certificates.
@Suite("certification", .serialized)
struct CertificationTests {
    /// attacks.md §2.10: SciPy 1.17 values for α = 0.001.
    @Test func smoothingRadiusMatchesTheReferenceTable() {
        let table: [(Int, Int, Double, Double)] = [
            (100_000, 100_000, 0.99993092, 3.811457), (100_000, 99_000, 0.98898934, 2.290000),
            (100_000, 60_000, 0.59520105, 0.240945), (1_000, 1_000, 0.99311605, 2.463263), (1_000, 990, 0.97603619, 1.978010),
        ]
        for (n, nA, pA, radius) in table {
            let bound = RandomizedSmoothing.lowerConfidenceBound(successes: nA, trials: n, alpha: 0.001)
            #expect(abs(bound - pA) <= 1e-8, "p_A(\(nA)/\(n)) = \(bound), expected \(pA)")
            #expect(abs(RandomizedSmoothing.radius(sigma: 1, pALower: bound) - radius) <= 1e-6)
        }
        #expect(abs(Distributions.binomialTestPValue(successes: 60, trials: 100) - 0.0569) < 5e-5)
        #expect(Distributions.binomialTestPValue(successes: 50, trials: 100) == 1)
    }

    /// For a binary linear classifier, P(f(x + σz) = 1) = Φ((w·x + b)/(σ‖w‖)) exactly: the count of the
    /// selected class must match it (4 standard errors; near p = ½ the selection may pick either class), and the certified radius must not exceed the true distance
    /// |w·x + b|/‖w‖ to the boundary (the smoothed classifier of a linear one is itself).
    @Test func smoothingOfALinearClassifierMatchesTheClosedForm() throws {
        var rng = Philox(seed: 21)
        let d = 30
        let w: [Float] = (0..<d).map { _ in Float(rng.normal()) }
        let layer = Dense(weight: try Matrix(rows: 2, columns: d, elements: w.map { -$0 / 2 } + w.map { $0 / 2 }), bias: try Matrix(rows: 1, columns: 2, elements: [-0.1, 0.1]))
        let model = try Sequential([layer])
        let x: Matrix<Float> = rng.matrix(rows: 4, columns: d, .uniform(-0.1, 0.1))
        var smoothing = RandomizedSmoothing(sigma: 0.25, selectionSamples: 100, estimationSamples: 20_000)
        smoothing.seed = 3
        let certificates = try smoothing.certify(model, x)
        let norm = w.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        for i in 0..<x.rows {
            let score = zip(w, x.row(i)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } + 0.2
            let p1 = Distributions.normalCDF(score / (0.25 * norm))
            let top = score >= 0 ? 1 : 0
            let c = certificates[i], p = c.selectedClass == 1 ? p1 : 1 - p1
            #expect(abs(Double(c.topCount) / 20_000 - p) <= 4 * (p * (1 - p) / 20_000).squareRoot() + 1e-4, "row \(i)")
            if let prediction = c.prediction {
                #expect(prediction == top)
                #expect(c.radius <= abs(score) / norm + 1e-9, "certified \(c.radius) beyond the true distance \(abs(score) / norm)")
            }
        }
    }

    @Test func smoothingIsReproducibleAndIndependentOfTheNoiseBatch() throws {
        let model = APGDTests.model
        let x = APGDTests.matrix("x")
        let rows = try Matrix(rows: 5, columns: 64, elements: (0..<5).flatMap { Array(x.row($0)) })
        var results: [[RandomizedSmoothing.Certificate]] = []
        for batch in [1, 7, 1000, 1000] {
            var s = RandomizedSmoothing(sigma: 0.25, selectionSamples: 50, estimationSamples: 400)
            s.noiseBatch = batch
            s.backend = .simd
            s.seed = 9
            results.append(try s.certify(model, rows))
        }
        #expect(results.allSatisfy { $0 == results[0] })
        #expect(results[0].contains { $0.prediction != nil })
        var bad = RandomizedSmoothing(sigma: 0, estimationSamples: 100)
        #expect(throws: CertificationError.self) { try bad.certify(model, rows) }
        bad = RandomizedSmoothing(sigma: 0.1, selectionSamples: 100, estimationSamples: 100)
        #expect(throws: CertificationError.self) { try bad.certify(model, rows) }
        bad = RandomizedSmoothing(sigma: 0.1, estimationSamples: 1000, alpha: 1)
        #expect(throws: CertificationError.self) { try bad.certify(model, rows) }
    }

    /// W = H_u · diag(s) · H_v with Householder reflections H has singular values s exactly.
    @Test func spectralNormIsExactForKnownSpectra() throws {
        var rng = Philox(seed: 4)
        let m = 12, n = 20
        let s: [Double] = (0..<m).map { Double($0 + 1) * 0.3 }
        func householder(_ k: Int) -> Matrix<Double> {
            var v: [Double] = (0..<k).map { _ in rng.normal() }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / norm }
            var h = Matrix<Double>(rows: k, columns: k)
            for i in 0..<k { for j in 0..<k { h[i, j] = (i == j ? 1 : 0) - 2 * v[i] * v[j] } }
            return h
        }
        var diagonal = Matrix<Double>(rows: m, columns: n)
        for i in 0..<m { diagonal[i, i] = s[i] }
        let w = try Linalg.matmul(Linalg.matmul(householder(m), diagonal), householder(n))
        let model = try Sequential([Dense(weight: w.converted(to: Float.self), bias: Matrix(rows: 1, columns: m)), Activation(.relu, features: m)])
        let certificate = try LipschitzCertificate(model)
        #expect(abs(certificate.constant - s.max()!) <= 1e-5 * s.max()!)
        #expect(certificate.isSound)
        let estimate = try LipschitzCertificate(model, exactLimit: 0, powerIterations: 500)
        #expect(!estimate.isSound && abs(estimate.constant - s.max()!) <= 1e-3 && estimate.constant <= s.max()! * (1 + 1e-6))
    }

    /// Zero inconsistencies between attacks and certificates on the digits MLP over a range of ε:
    /// CROWN and IBP (L∞) against APGD-CE, Lipschitz radii (L2) against PGD-L2.
    @Test func attacksNeverBreakCertifiedSamples() throws {
        let model = APGDTests.model
        let (x, y) = APGDTests.sample
        let bounds = try BoundPropagation(model)
        for method in BoundPropagation.Method.allCases {
            let rows = try TwoSidedEvaluation.evaluate(model, x, labels: y, epsilons: [0, 0.005, 0.01, 0.02, 0.04],
                certified: { try bounds.certify(x, labels: y, region: .init(norm: .linf, epsilon: $0), method: method) },
                attack: { APGDAttack(epsilon: $0, steps: 50) })
            for row in rows {
                #expect(row.inconsistencies.isEmpty, "\(method) ε = \(row.epsilon): \(row.inconsistencies)")
                #expect(row.certifiedAccuracy <= row.attackAccuracy)
            }
            #expect(rows[0].certifiedAccuracy == rows[0].attackAccuracy, "at ε = 0 certified = clean accuracy")
            #expect(rows[1].certifiedAccuracy > 0, "\(method) certifies something at ε = 0.005")
        }
        let lipschitz = try LipschitzCertificate(model)
        let radii = try lipschitz.radii(model, x, labels: y)
        let rows = try TwoSidedEvaluation.evaluate(model, x, labels: y, epsilons: [0.01, 0.05, 0.1, 0.3],
            certified: { e in radii.map { $0 > Double(e) } },
            attack: { GradientAttack.pgd(epsilon: $0, stepSize: $0 / 4, steps: 20, norm: .l2) })
        for row in rows { #expect(row.inconsistencies.isEmpty && row.certifiedAccuracy <= row.attackAccuracy) }
    }
}
