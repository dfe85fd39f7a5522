import FaultlineIO
import FaultlineLinalg
import FaultlineRobustness
import Foundation
import Testing

@Suite("shift: Gaussian fit, Mahalanobis, detection metrics")
struct ShiftTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let f = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/shift.npz").map { ($0.name, $0.tensor) })
    static var fitX: Matrix<Float> { try! f["fit_x"]!.matrix(Float.self) }
    static var fitY: [Int] { f["fit_y"]!.values(as: Double.self).map { Int($0) } }

    @Test func covarianceEqualsScikitLearnAndChunksMerge() throws {
        var whole = GaussianFit(dimension: 6, classes: 3)
        try whole.update(Self.fitX, labels: Self.fitY)
        let expected = f64("covariance")
        let got = whole.covariance.elements
        let scale = expected.map(abs).max()!
        #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-6 * scale })
        #expect(zip(whole.means.elements, f64("means")).allSatisfy { abs($0 - $1) <= 1e-9 })
        // Fit on chunks = fit at once; merged fits = fit on the union.
        var a = GaussianFit(dimension: 6, classes: 3), b = GaussianFit(dimension: 6, classes: 3)
        try a.update(Self.fitX.rowsSlice(0..<400), labels: Array(Self.fitY[0..<400]))
        try b.update(Self.fitX.rowsSlice(400..<900), labels: Array(Self.fitY[400..<900]))
        let merged = try a.merged(with: b)
        #expect(zip(merged.covariance.elements, got).allSatisfy { abs($0 - $1) <= 1e-12 * scale })
        var chunked = GaussianFit(dimension: 6, classes: 3)
        for start in stride(from: 0, to: 900, by: 128) {
            let end = min(start + 128, 900)
            try chunked.update(Self.fitX.rowsSlice(start..<end), labels: Array(Self.fitY[start..<end]))
        }
        #expect(zip(chunked.covariance.elements, got).allSatisfy { abs($0 - $1) <= 1e-12 * scale })
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

    func f64(_ name: String) -> [Double] { Self.f[name]!.values(as: Double.self) }
}

extension Matrix where Scalar == Float {
    func rowsSlice(_ r: Range<Int>) -> Matrix<Float> {
        try! Matrix(rows: r.count, columns: columns, elements: r.flatMap { Array(row($0)) })
    }
}
