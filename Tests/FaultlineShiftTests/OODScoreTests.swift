import FaultlineIO
import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing
import _TestSupport

/// OOD scores, covariance shrinkage and drift tests against pytorch-ood, scikit-learn and SciPy
/// (scripts/fixtures/make_ood_fixtures.py).
@Suite("OOD scores and drift tests")
struct OODScoreTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/ood.npz").map { ($0.name, $0.tensor) })
    static func matrix(_ key: String) -> Matrix<Float> { try! arrays[key]!.matrix(Float.self) }
    static func values(_ key: String) -> [Double] { arrays[key]!.values(as: Double.self) }

    static func close(_ ours: [Float], _ key: String, relative: Double) -> Bool {
        zip(ours, values(key)).allSatisfy { abs(Double($0) - $1) <= relative * max(1, abs($1)) }
    }

    @Test func logitScoresMatchPytorchOOD() throws {
        let z = Self.matrix("logits")
        #expect(Self.close(try LogitScores.maxSoftmax(z), "msp", relative: 1e-6))
        #expect(Self.close(try LogitScores.maxLogit(z), "maxlogit", relative: 1e-7))
        #expect(Self.close(try LogitScores.energy(z), "energy1", relative: 1e-6))
        #expect(Self.close(try LogitScores.energy(z, temperature: 2), "energy2", relative: 1e-6))
        #expect(Self.close(try LogitScores.entropy(z), "entropy_exact", relative: 1e-6))
        #expect(throws: ShiftError.self) { try LogitScores.energy(z, temperature: 0) }
    }

    @Test func knnAndViMMatchPytorchOOD() throws {
        let train = Self.matrix("train"), test = Self.matrix("test")
        #expect(Self.close(try KNNDetector(reference: train, k: 7).score(test, blockRows: 16, tileRows: 64), "knn7", relative: 1e-5))
        let vim = try ViMDetector(features: train, weight: Self.matrix("w"), bias: Self.values("b").map(Float.init), principal: 4)
        #expect(Self.close(try vim.score(test), "vim4", relative: 1e-4))
        #expect(throws: ShiftError.self) { try KNNDetector(reference: train, k: 0) }
        #expect(throws: ShiftError.self) { try vim.score(Matrix(rows: 2, columns: 3)) }
    }

    @Test func shrinkageMatchesScikitLearn() throws {
        let x = Self.matrix("cov_x")
        for (method, key) in [(CovarianceShrinkage.Method.ledoitWolf, "lw"), (.oas, "oas")] {
            let (cov, s) = try CovarianceShrinkage.estimate(x, method: method)
            #expect(abs(s - Self.values("\(key)_shrinkage")[0]) <= 1e-9)
            #expect(zip(cov.elements, Self.values("\(key)_cov")).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
        }
        // The tied covariance of a Gaussian fit, shrunk as scikit-learn shrinks the class-centred rows.
        let train = Self.matrix("train"), labels = Self.values("train_y").map { Int($0) }
        var fit = GaussianFit(dimension: 12, classes: 5)
        try fit.update(train, labels: labels)
        for (detector, key) in [(try MahalanobisDetector.ledoitWolf(fit, x: train, labels: labels), "tied_lw"), (try MahalanobisDetector.oas(fit), "tied_oas")] {
            #expect(abs(detector.shrinkage - Self.values("\(key)_shrinkage")[0]) <= 1e-9, "\(key)")
            let cov = CovarianceShrinkage.shrunk(fit.covariance, by: detector.shrinkage)
            #expect(zip(cov.elements, Self.values("\(key)_cov")).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) }, "\(key)")
        }
    }

    /// Relative Mahalanobis = class score − background score, each against a float64 reference.
    @Test func relativeMahalanobisAgainstADoubleReference() throws {
        let train = Self.matrix("train"), test = Self.matrix("test"), labels = Self.values("train_y").map { Int($0) }
        var fit = GaussianFit(dimension: 12, classes: 5)
        try fit.update(train, labels: labels)
        let scores = try RelativeMahalanobisDetector(fit).score(test)
        // Background Gaussian in Double: mean and covariance (by n) of all rows.
        let n = Double(train.rows)
        let mean = (0..<12).map { j in (0..<train.rows).reduce(0.0) { $0 + Double(train[$1, j]) } / n }
        var cov = Matrix<Double>(rows: 12, columns: 12)
        for i in 0..<train.rows { for a in 0..<12 { for b in 0..<12 { cov[a, b] += (Double(train[i, a]) - mean[a]) * (Double(train[i, b]) - mean[b]) / n } } }
        let classScores = try MahalanobisDetector(fit).score(test)
        let l = try Linalg.cholesky(cov)
        for i in 0..<test.rows {
            let diff = try Matrix<Double>(rows: 12, columns: 1, elements: (0..<12).map { Double(test[i, $0]) - mean[$0] })
            let w = try Linalg.solveTriangular(l, diff)
            let background = w.elements.reduce(0) { $0 + $1 * $1 }
            let expected = Double(classScores[i]) - background
            #expect(abs(Double(scores[i]) - expected) <= 1e-4 * max(1, abs(background)), "row \(i)")
        }
    }

    @Test func driftTestsMatchSciPy() throws {
        let ks = try DriftTests.kolmogorovSmirnov(Self.values("ks_a"), Self.values("ks_b"), method: .limiting)
        #expect(abs(ks.statistic - Self.values("ks")[0]) <= 1e-12 && abs(ks.pValue - Self.values("ks")[1]) <= 1e-8)
        let reference = Self.values("chi_ref").map { Int($0) }, test = Self.values("chi_test").map { Int($0) }
        let chi = try DriftTests.chiSquare(reference: reference, test: test, classes: 4)
        #expect(abs(chi.statistic - Self.values("chi")[0]) <= 1e-9 && abs(chi.pValue - Self.values("chi")[1]) <= 1e-10)
        let binary = try DriftTests.chiSquare(reference: reference.map { $0 % 2 }, test: test.map { $0 % 2 }, classes: 2)
        #expect(abs(binary.statistic - Self.values("chi_binary")[0]) <= 1e-9 && abs(binary.pValue - Self.values("chi_binary")[1]) <= 1e-10)
        // Bonferroni vs Benjamini–Hochberg where they differ: p = (0.02, 0.03, 0.04), α = 0.05 (BH: 0.03 < 0.05·2/3).
        #expect(!DriftTests.drift(pValues: [0.04, 0.02, 0.03], alpha: 0.05, correction: .bonferroni))
        #expect(DriftTests.drift(pValues: [0.04, 0.02, 0.03], alpha: 0.05, correction: .benjaminiHochberg) == true)
        #expect(throws: ShiftError.self) { try DriftTests.kolmogorovSmirnov([], [1]) }
    }

    @Test func mmdMatchesTheFloat64Pipeline() throws {
        let perms = Self.arrays["mmd_perms"]!.values(as: Double.self).map { Int($0) }
        let splits = (0..<40).map { Array(perms[($0 * 55)..<(($0 + 1) * 55)]) }
        let r = try MMDTest.run(Self.matrix("mmd_x"), Self.matrix("mmd_y"), permutations: splits)
        let expected = Self.values("mmd"), null = Self.values("mmd_null")
        #expect(abs(r.sigma2 - expected[0]) <= 1e-5 * expected[0])
        #expect(abs(r.mmd2 - expected[1]) <= 1e-5)
        #expect(zip(r.null, null).allSatisfy { abs($0 - $1) <= 1e-5 })
        #expect(r.pValue == expected[2])
        let drawn = try MMDTest.run(Self.matrix("mmd_x"), Self.matrix("mmd_y"), count: 50, seed: 3)
        #expect(drawn.null.count == 50 && drawn.mmd2 == r.mmd2)
    }

    /// Several kernel blocks (650 rows: blocks of 512 and 138): the bandwidth, the statistic and every
    /// permutation's statistic against a direct float64 evaluation of the unbiased MMD².
    @Test func mmdOverSeveralBlocksEqualsADirectFloat64Evaluation() throws {
        var rng = Philox(seed: 21)
        let x: Matrix<Float> = rng.matrix(rows: 300, columns: 5, .normal(mean: 0, sd: 1))
        let y: Matrix<Float> = rng.matrix(rows: 350, columns: 5, .normal(mean: 0.2, sd: 1))
        let r = try MMDTest.run(x, y, count: 6, seed: 4)
        let z = (0..<300).map { i in (0..<5).map { Double(x[i, $0]) } } + (0..<350).map { i in (0..<5).map { Double(y[i, $0]) } }
        func distance(_ a: Int, _ b: Int) -> Double { zip(z[a], z[b]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
        var all: [Double] = []
        for a in 0..<650 { for b in (a + 1)..<650 { all.append(distance(a, b)) } }
        all.sort()
        let median = (all[all.count / 2 - 1] + all[all.count / 2]) / 2
        #expect(abs(r.sigma2 - median) <= 1e-5 * median)
        let kernel = (0..<650).map { a in (0..<650).map { b in Foundation.exp(-distance(a, b) / (2 * r.sigma2)) } }
        func mmd2(_ group: [Int]) -> Double {
            var inX = [Bool](repeating: false, count: 650)
            for a in group { inX[a] = true }
            var sxx = 0.0, syy = 0.0, sxy = 0.0
            for a in 0..<650 {
                for b in 0..<650 where a != b {
                    switch (inX[a], inX[b]) {
                    case (true, true): sxx += kernel[a][b]
                    case (false, false): syy += kernel[a][b]
                    case (true, false): sxy += kernel[a][b]
                    case (false, true): break
                    }
                }
            }
            return sxx / (300 * 299) + syy / (350 * 349) - 2 * sxy / (300 * 350)
        }
        #expect(abs(r.mmd2 - mmd2(Array(0..<300))) <= 1e-6)
        let splits = MMDTest.permutations(count: 6, samples: 650, seed: 4)
        for (p, order) in splits.enumerated() { #expect(abs(r.null[p] - mmd2(Array(order.prefix(300)))) <= 1e-6, "permutation \(p)") }
        // The biased V-statistic: every pair including i = j (k(x, x) = 1), over n², m² and n·m.
        let biased = try MMDTest.run(x, y, count: 6, seed: 4, estimator: .biased)
        func biasedMMD2(_ group: [Int]) -> Double {
            let (n, m) = (300.0, 350.0)
            var inX = [Bool](repeating: false, count: 650)
            for a in group { inX[a] = true }
            var bxx = 0.0, byy = 0.0, bxy = 0.0
            for a in 0..<650 {
                for b in 0..<650 {
                    switch (inX[a], inX[b]) {
                    case (true, true): bxx += kernel[a][b]
                    case (false, false): byy += kernel[a][b]
                    case (true, false): bxy += kernel[a][b]
                    case (false, true): break
                    }
                }
            }
            return bxx / (n * n) + byy / (m * m) - 2 * bxy / (n * m)
        }
        #expect(biased.sigma2 == r.sigma2)
        #expect(abs(biased.mmd2 - biasedMMD2(Array(0..<300))) <= 1e-6)
        #expect(biased.mmd2 > r.mmd2, "the V-statistic carries a positive O(1/n) bias")
        for (p, order) in splits.enumerated() { #expect(abs(biased.null[p] - biasedMMD2(Array(order.prefix(300)))) <= 1e-6, "biased, permutation \(p)") }
    }

    @Test func labelShiftRecoversAKnownShift() throws {
        // Validation: a noisy but invertible confusion; target: labels drawn with q = (0.6, 0.3, 0.1).
        var rng = Philox(seed: 2)
        func predict(_ y: Int) -> Int { rng.uniform() < 0.8 ? y : (y + 1) % 3 }
        let labels = (0..<30_000).map { $0 % 3 }
        let predicted = labels.map(predict)
        let targetLabels = (0..<30_000).map { i -> Int in i % 10 < 6 ? 0 : (i % 10 < 9 ? 1 : 2) }
        let estimate = try LabelShiftEstimate(validationPredictions: predicted, validationLabels: labels,
                                              targetPredictions: targetLabels.map(predict), classes: 3)
        for (q, expected) in zip(estimate.targetDistribution, [0.6, 0.3, 0.1]) { #expect(abs(q - expected) <= 0.02) }
        #expect(throws: ShiftError.self) {
            try LabelShiftEstimate(validationPredictions: [0, 0, 0], validationLabels: [0, 1, 2], targetPredictions: [0], classes: 3)
        }
    }

    @Test func savedDetectorsScoreIdentically() throws {
        let train = Self.matrix("train"), test = Self.matrix("test"), labels = Self.values("train_y").map { Int($0) }
        var fit = GaussianFit(dimension: 12, classes: 5)
        try fit.update(train, labels: labels)
        let detectors: [DetectorFile.Detector] = [
            .mahalanobis(try MahalanobisDetector.oas(fit)), .relativeMahalanobis(try RelativeMahalanobisDetector(fit, shrinkage: 0.01)),
            .knn(try KNNDetector(reference: train, k: 5)),
            .vim(try ViMDetector(features: train, weight: Self.matrix("w"), bias: Self.values("b").map(Float.init), principal: 4)),
        ]
        let dir = TestScratch.root.appendingPathComponent("faultline-detectors-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (k, detector) in detectors.enumerated() {
            let path = dir + "/d\(k).safetensors"
            try DetectorFile.save(detector, to: path)
            #expect(try DetectorFile.load(path).score(test) == detector.score(test), "detector \(k)")
        }
        try SafeTensors.write(SafeTensors.File(tensors: [("x", Tensor(shape: [1], values: [Float(1)]))]), to: dir + "/other.safetensors")
        #expect(throws: ShiftError.self) { try DetectorFile.load(dir + "/other.safetensors") }
    }

    /// Two "layers": one informative about the shift, one pure noise. The fitted combination puts
    /// its weight on the informative layer and separates at least as well as it alone.
    @Test func multiLayerMahalanobisLearnsWhichLayerMatters() throws {
        var rng = Philox(seed: 4)
        func gaussian(_ n: Int, _ d: Int, shift: Float) -> Matrix<Float> { rng.matrix(rows: n, columns: d, .normal(mean: Double(shift), sd: 1)) }
        let labels = (0..<400).map { $0 % 2 }
        let trainA = gaussian(400, 5, shift: 0), trainB = gaussian(400, 5, shift: 0)
        var fitA = GaussianFit(dimension: 5, classes: 2), fitB = GaussianFit(dimension: 5, classes: 2)
        try fitA.update(trainA, labels: labels)
        try fitB.update(trainB, labels: labels)
        var combined = try MultiLayerMahalanobis(detectors: [MahalanobisDetector(fitA), MahalanobisDetector(fitB)])
        // Validation: OOD shifted in layer A only; layer B carries no signal.
        try combined.fitWeights(inDistribution: [gaussian(200, 5, shift: 0), gaussian(200, 5, shift: 0)],
                                outOfDistribution: [gaussian(200, 5, shift: 1), gaussian(200, 5, shift: 0)])
        #expect(combined.weights[0] > 5 * abs(combined.weights[1]), "weights \(combined.weights)")
        let testIn = [gaussian(300, 5, shift: 0), gaussian(300, 5, shift: 0)], testOut = [gaussian(300, 5, shift: 1), gaussian(300, 5, shift: 0)]
        let auroc = try DetectionMetrics.compute(inDistribution: combined.score(testIn), outOfDistribution: combined.score(testOut)).auroc
        let layerA = try DetectionMetrics.compute(inDistribution: combined.detectors[0].score(testIn[0]), outOfDistribution: combined.detectors[0].score(testOut[0])).auroc
        #expect(auroc >= layerA - 0.02, "combined \(auroc) vs layer A alone \(layerA)")
        #expect(throws: ShiftError.self) { try combined.score([testIn[0]]) }
    }
}
