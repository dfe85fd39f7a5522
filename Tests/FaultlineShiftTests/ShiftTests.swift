import FaultlineIO
import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing
import _TestSupport

@Suite("shift: Gaussian fit, Mahalanobis, detection metrics")
struct ShiftTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let f = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/shift.npz").map { ($0.name, $0.tensor) })
    static var fitX: Matrix<Float> { try! f["fit_x"]!.matrix(Float.self) }
    static var fitY: [Int] { f["fit_y"]!.values(as: Double.self).map { Int($0) } }

    /// Both accumulations equal scikit-learn; chunked fits and merged fits equal the whole fit (to
    /// rounding in float64, to the float32 block error otherwise).
    @Test(arguments: GaussianFit.Accumulation.allCases)
    func covarianceEqualsScikitLearnAndChunksMerge(accumulation: GaussianFit.Accumulation) throws {
        let chunkTolerance = accumulation == .float64 ? 1e-12 : 1e-6
        var whole = GaussianFit(dimension: 6, classes: 3, accumulation: accumulation)
        try whole.update(Self.fitX, labels: Self.fitY)
        let expected = f64("covariance")
        let got = whole.covariance.elements
        let scale = expected.map(abs).max()!
        #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-6 * scale })
        #expect(zip(whole.means.elements, f64("means")).allSatisfy { abs($0 - $1) <= 1e-9 })
        // Fit on chunks = fit at once; merged fits = fit on the union.
        var a = GaussianFit(dimension: 6, classes: 3, accumulation: accumulation), b = GaussianFit(dimension: 6, classes: 3, accumulation: accumulation)
        try a.update(Self.fitX.sliceRows(0..<400), labels: Array(Self.fitY[0..<400]))
        try b.update(Self.fitX.sliceRows(400..<900), labels: Array(Self.fitY[400..<900]))
        let merged = try a.merged(with: b)
        #expect(zip(merged.covariance.elements, got).allSatisfy { abs($0 - $1) <= chunkTolerance * scale })
        var chunked = GaussianFit(dimension: 6, classes: 3, accumulation: accumulation)
        chunked.blockRows = 50  // several SYRK blocks per class inside each chunk
        for start in stride(from: 0, to: 900, by: 128) {
            let end = min(start + 128, 900)
            try chunked.update(Self.fitX.sliceRows(start..<end), labels: Array(Self.fitY[start..<end]))
        }
        #expect(zip(chunked.covariance.elements, got).allSatisfy { abs($0 - $1) <= chunkTolerance * scale })
        #expect(zip(chunked.means.elements, whole.means.elements).allSatisfy { abs($0 - $1) <= 1e-12 })
    }

    /// Per-class covariances equal scikit-learn's EmpiricalCovariance of each class, also when fitted
    /// in chunks; the tied covariance of the same fit is unchanged.
    @Test func perClassCovariancesEqualScikitLearn() throws {
        var fit = GaussianFit(dimension: 6, classes: 3, perClassCovariance: true)
        for start in stride(from: 0, to: 900, by: 200) {
            let end = min(start + 200, 900)
            try fit.update(Self.fitX.sliceRows(start..<end), labels: Array(Self.fitY[start..<end]))
        }
        let expected = f64("class_covariances")
        for k in 0..<3 {
            let got = try fit.classCovariance(k).elements, want = Array(expected[(k * 36)..<((k + 1) * 36)])
            let scale = want.map(abs).max()!
            #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-9 * scale }, "class \(k)")
        }
        let tied = f64("covariance"), scale = tied.map(abs).max()!
        #expect(zip(fit.covariance.elements, tied).allSatisfy { abs($0 - $1) <= 1e-9 * scale })
        var tiedOnly = GaussianFit(dimension: 6, classes: 3)
        try tiedOnly.update(Self.fitX, labels: Self.fitY)
        #expect(throws: ShiftError.self) { try tiedOnly.classCovariance(0) }
        #expect(throws: ShiftError.self) { try tiedOnly.merged(with: fit) }
    }

    /// The untied Mahalanobis score and the Gaussian score (+ log det Σ_k) against scikit-learn's
    /// per-class `mahalanobis`, and through a saved file.
    @Test func perClassMahalanobisEqualsScikitLearn() throws {
        var fit = GaussianFit(dimension: 6, classes: 3, perClassCovariance: true)
        try fit.update(Self.fitX, labels: Self.fitY)
        let x = try Self.f["score_x"]!.matrix(Float.self)
        for (logDet, key) in [(false, "per_class_mahalanobis"), (true, "per_class_gaussian")] {
            let detector = try PerClassMahalanobisDetector(fit, includeLogDeterminant: logDet)
            let scores = try detector.score(x, blockRows: 64)
            for (s, r) in zip(scores, f64(key)) { #expect(abs(Double(s) - r) <= 1e-4 * max(abs(r), 1), "\(key): \(s) vs \(r)") }
            let path = TestScratch.root.appendingPathComponent("perclass-\(logDet).safetensors").path
            try DetectorFile.save(.perClassMahalanobis(detector), to: path)
            #expect(try DetectorFile.load(path).score(x) == scores)
        }
    }

    /// A class with fewer samples than dimensions: the error names the class and the fix.
    @Test func singularClassCovarianceNamesTheClass() throws {
        var fit = GaussianFit(dimension: 6, classes: 3, perClassCovariance: true)
        var labels = Self.fitY
        for i in labels.indices where labels[i] == 2 { labels[i] = 1 }
        for i in 0..<4 { labels[i] = 2 }  // class 2: 4 samples in 6 dimensions
        try fit.update(Self.fitX, labels: labels)
        let error = try #require(throws: ShiftError.self) { try PerClassMahalanobisDetector(fit) }
        #expect(error.description.contains("class 2") && error.description.contains("shrinkage"))
        #expect(try PerClassMahalanobisDetector(fit, shrinkage: 0.1).score(Self.fitX).allSatisfy { $0.isFinite && $0 >= 0 })
    }

    @Test func mahalanobisEqualsTheFloat64Reference() throws {
        var fit = GaussianFit(dimension: 6, classes: 3)
        try fit.update(Self.fitX, labels: Self.fitY)
        let detector = try MahalanobisDetector(fit)
        let scores = try detector.score(try Self.f["score_x"]!.matrix(Float.self), blockRows: 64)
        let reference = f64("mahalanobis")
        for (s, r) in zip(scores, reference) { #expect(abs(Double(s) - r) <= 1e-4 * max(r, 1), "\(s) vs \(r)") }
    }

    @Test func detectionMetricsEqualScikitLearnWithTies() throws {
        let scores = f64("rounded_scores").map(Float.init), ood = f64("is_ood")
        let id = zip(scores, ood).filter { $0.1 == 0 }.map(\.0), out = zip(scores, ood).filter { $0.1 == 1 }.map(\.0)
        let m = try DetectionMetrics.compute(inDistribution: id, outOfDistribution: out)
        #expect(abs(m.auroc - Self.f["auroc"]!.double(at: 0)) <= 1e-12)
        #expect(abs(m.auprOut - Self.f["ap_out"]!.double(at: 0)) <= 1e-12)
        #expect(abs(m.auprIn - Self.f["ap_in"]!.double(at: 0)) <= 1e-12)
        // Closed forms: perfect separation, and all-equal scores (AUROC ½).
        let perfect = try DetectionMetrics.compute(inDistribution: [1, 2, 3], outOfDistribution: [4, 5])
        #expect(perfect.auroc == 1 && perfect.auprOut == 1 && perfect.fprAt95TPR == 0)
        #expect(try DetectionMetrics.compute(inDistribution: [1, 1], outOfDistribution: [1, 1, 1]).auroc == 0.5)
        #expect(throws: ShiftError.self) { try DetectionMetrics.compute(inDistribution: [], outOfDistribution: [1]) }
    }

    @Test func singularCovarianceNamesTheFix() throws {
        var fit = GaussianFit(dimension: 3, classes: 1)
        try fit.update(try Matrix([[1, 2, 3], [2, 4, 6], [3, 6, 9]]), labels: [0, 0, 0])  // rank 1
        let error = try #require(throws: ShiftError.self) { try MahalanobisDetector(fit) }
        #expect(error.description.contains("shrinkage"))
        #expect(try MahalanobisDetector(fit, shrinkage: 0.1).score(try Matrix([[1, 2, 3]]))[0] >= 0)
        #expect(throws: ShiftError.self) { try fit.update(Matrix(rows: 1, columns: 4), labels: [0]) }
    }

    /// NaN or ±∞ anywhere in the features is an error naming the row, in the fit and in both scores.
    @Test func nonFiniteFeaturesAreRejected() throws {
        var fit = GaussianFit(dimension: 6, classes: 3, perClassCovariance: true)
        try fit.update(Self.fitX, labels: Self.fitY)
        let tied = try MahalanobisDetector(fit), untied = try PerClassMahalanobisDetector(fit)
        for bad in [Float.nan, .infinity, -.infinity] {
            var x = Self.fitX.sliceRows(0..<20)
            x[13, 4] = bad
            var fresh = GaussianFit(dimension: 6, classes: 3)
            let error = try #require(throws: ShiftError.self) { try fresh.update(x, labels: Array(Self.fitY[0..<20])) }
            #expect(error.description.contains("row 13"), "\(error)")
            #expect(fresh.total == 0)
            for score in [{ try tied.score(x) }, { try untied.score(x) }] {
                let scoreError = try #require(throws: ShiftError.self) { try score() }
                #expect(scoreError.description.contains("row 13"), "\(scoreError)")
            }
        }
    }

    func f64(_ name: String) -> [Double] { Self.f[name]!.values(as: Double.self) }
}

