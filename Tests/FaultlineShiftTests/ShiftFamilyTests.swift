import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing
import _TestSupport

/// Shift detectors over families of inputs, against float64 oracles written out in the test: Mahalanobis
/// distances far from the origin (translation invariance), KNN on duplicates and near duplicates, the
/// Gaussian fit on every small row count (partitions), and the partition policy itself.
@Suite("shift families")
struct ShiftFamilyTests {
    /// Class-conditional Gaussian data: `classes` means spread by `separation` around `offset`, with
    /// per-dimension scales in [0.5, 2] and a random rotation-like mixing, so Σ is well conditioned but
    /// not diagonal.
    static func gaussianData(rows: Int, dimension d: Int, classes: Int, offset: Double, separation: Double, seed: UInt64)
        -> (x: Matrix<Float>, y: [Int]) {
        var rng = Philox(seed: seed)
        let means = (0..<classes).map { _ in (0..<d).map { _ in offset + separation * (rng.uniform() * 2 - 1) } }
        let mixing = (0..<d).map { _ in (0..<d).map { _ in (rng.uniform() * 2 - 1) * 0.3 } }
        let scales = (0..<d).map { _ in 0.5 + 1.5 * rng.uniform() }
        var x = Matrix<Float>(rows: rows, columns: d)
        var y = [Int](repeating: 0, count: rows)
        for i in 0..<rows {
            y[i] = i % classes
            let e = (0..<d).map { scales[$0] * rng.normal() }
            for j in 0..<d {
                var v = e[j]
                for k in 0..<d { v += mixing[j][k] * e[k] }
                x[i, j] = Float(means[y[i]][j] + v)
            }
        }
        return (x, y)
    }

    /// min_k (x − μ_k)ᵀ Σ⁻¹ (x − μ_k) in float64 from the float32 inputs: means and the within-class
    /// covariance (÷ n) by two passes, Σ⁻¹(x − μ) by Gaussian elimination with partial pivoting.
    /// `perClass`: one covariance per class (÷ n_k).
    static func oracleScores(fitX: Matrix<Float>, fitY: [Int], classes: Int, perClass: Bool, queries: Matrix<Float>) -> [Double] {
        let d = fitX.columns
        var means = [[Double]](repeating: [Double](repeating: 0, count: d), count: classes), counts = [Double](repeating: 0, count: classes)
        for i in 0..<fitX.rows { counts[fitY[i]] += 1; for j in 0..<d { means[fitY[i]][j] += Double(fitX[i, j]) } }
        for k in 0..<classes { for j in 0..<d { means[k][j] /= counts[k] } }
        let groups = perClass ? classes : 1
        var sigma = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: d), count: d), count: groups)
        for i in 0..<fitX.rows {
            let k = fitY[i], g = perClass ? k : 0
            let r = (0..<d).map { Double(fitX[i, $0]) - means[k][$0] }
            for a in 0..<d { for b in 0..<d { sigma[g][a][b] += r[a] * r[b] } }
        }
        for g in 0..<groups {
            let n = perClass ? counts[g] : Double(fitX.rows)
            for a in 0..<d { for b in 0..<d { sigma[g][a][b] /= n } }
        }
        func solve(_ m: [[Double]], _ v: [Double]) -> [Double] {
            var a = m, b = v
            for col in 0..<d {
                let pivot = (col..<d).max { abs(a[$0][col]) < abs(a[$1][col]) }!
                a.swapAt(col, pivot); b.swapAt(col, pivot)
                for row in (col + 1)..<d {
                    let f = a[row][col] / a[col][col]
                    for c in col..<d { a[row][c] -= f * a[col][c] }
                    b[row] -= f * b[col]
                }
            }
            var out = [Double](repeating: 0, count: d)
            for row in stride(from: d - 1, through: 0, by: -1) {
                var s = b[row]
                for c in (row + 1)..<d { s -= a[row][c] * out[c] }
                out[row] = s / a[row][row]
            }
            return out
        }
        return (0..<queries.rows).map { i in
            (0..<classes).map { k -> Double in
                let r = (0..<d).map { Double(queries[i, $0]) - means[k][$0] }
                return zip(r, solve(sigma[perClass ? k : 0], r)).reduce(0) { $0 + $1.0 * $1.1 }
            }.min()!
        }
    }

    /// The tied, per-class and relative detectors are translation invariant: at offsets 0, 10, 100 and
    /// 1000 (features far from the origin, means ≫ spread as post-ReLU features are) the scores stay
    /// within the documented 1e-4 of the float64 oracle. The old ‖z‖² − 2⟨z, m⟩ + ‖m‖² form erred by
    /// 0.77 % at offset 100.
    @Test(arguments: [0.0, 10, 100, 1000])
    func mahalanobisIsTranslationInvariant(offset: Double) throws {
        let (x, y) = Self.gaussianData(rows: 1200, dimension: 37, classes: 4, offset: offset, separation: 3, seed: 7)
        let fitX = x.sliceRows(0..<1000), fitY = Array(y[0..<1000]), test = x.sliceRows(1000..<1200)
        var fit = GaussianFit(dimension: 37, classes: 4, perClassCovariance: true)
        try fit.update(fitX, labels: fitY)
        let tied = try MahalanobisDetector(fit).score(test), untied = try PerClassMahalanobisDetector(fit).score(test)
        let oracleTied = Self.oracleScores(fitX: fitX, fitY: fitY, classes: 4, perClass: false, queries: test)
        let oracleUntied = Self.oracleScores(fitX: fitX, fitY: fitY, classes: 4, perClass: true, queries: test)
        let tiedError = zip(tied, oracleTied).map { abs(Double($0) - $1) / $1 }.max()!
        let untiedError = zip(untied, oracleUntied).map { abs(Double($0) - $1) / $1 }.max()!
        #expect(tiedError <= 1e-4, "offset \(offset): tied relative error \(tiedError)")
        #expect(untiedError <= 1e-4, "offset \(offset): per-class relative error \(untiedError)")
        // Relative Mahalanobis: the same shift of fit and query data leaves the scores unchanged.
        let (x0, _) = Self.gaussianData(rows: 1200, dimension: 37, classes: 4, offset: 0, separation: 3, seed: 7)
        var fit0 = GaussianFit(dimension: 37, classes: 4)
        try fit0.update(x0.sliceRows(0..<1000), labels: fitY)
        let relative = try RelativeMahalanobisDetector(fit).score(test), relative0 = try RelativeMahalanobisDetector(fit0).score(x0.sliceRows(1000..<1200))
        let scale = relative0.map { abs(Double($0)) }.max()!
        let relativeError = zip(relative, relative0).map { abs(Double($0) - Double($1)) }.max()! / scale
        #expect(relativeError <= 1e-3, "offset \(offset): relative Mahalanobis moved by \(relativeError) of its range")
    }

    /// Well-separated classes (means 40 spreads apart): the expansion would cancel; the recomputed
    /// nearest distance does not. Also after a save/load round trip.
    @Test func mahalanobisWithSeparatedClassesAndRoundTrip() throws {
        let (x, y) = Self.gaussianData(rows: 900, dimension: 12, classes: 3, offset: 50, separation: 40, seed: 11)
        let fitX = x.sliceRows(0..<800), fitY = Array(y[0..<800]), test = x.sliceRows(800..<900)
        var fit = GaussianFit(dimension: 12, classes: 3, perClassCovariance: true)
        try fit.update(fitX, labels: fitY)
        let oracle = Self.oracleScores(fitX: fitX, fitY: fitY, classes: 3, perClass: false, queries: test)
        let path = TestScratch.root.appendingPathComponent("maha-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try DetectorFile.save(.mahalanobis(try MahalanobisDetector(fit)), to: path)
        for scores in [try MahalanobisDetector(fit).score(test), try DetectorFile.load(path).score(test)] {
            let error = zip(scores, oracle).map { abs(Double($0) - $1) / $1 }.max()!
            #expect(error <= 1e-4, "relative error \(error)")
        }
        let perClassOracle = Self.oracleScores(fitX: fitX, fitY: fitY, classes: 3, perClass: true, queries: test)
        try DetectorFile.save(.perClassMahalanobis(try PerClassMahalanobisDetector(fit)), to: path)
        let loaded = try DetectorFile.load(path).score(test)
        #expect(zip(loaded, perClassOracle).map { abs(Double($0) - $1) / $1 }.max()! <= 1e-4)
    }

    /// KNN: a query that duplicates a reference row scores exactly 0 at k = 1; the k-th distance of every
    /// query equals a float64 brute force over the normalised rows (to float32 rounding of the inputs),
    /// with near duplicates (1e-4 apart) and exact ties in the reference.
    @Test(arguments: [1, 3, 10])
    func knnMatchesBruteForceOnDuplicatesAndNearNeighbours(k: Int) throws {
        var rng = Philox(seed: UInt64(30 + k))
        var reference: Matrix<Float> = rng.matrix(rows: 300, columns: 16, .normal(mean: 5, sd: 1))
        for i in 200..<230 { for j in 0..<16 { reference[i, j] = reference[i - 100, j] + Float(1e-4 * rng.normal()) } }
        for i in 230..<240 { for j in 0..<16 { reference[i, j] = reference[i - 130, j] } }  // exact duplicates
        var queries: Matrix<Float> = rng.matrix(rows: 60, columns: 16, .normal(mean: 5, sd: 1))
        for i in 0..<30 { for j in 0..<16 { queries[i, j] = reference[3 * i, j] } }  // duplicates of references
        let detector = try KNNDetector(reference: reference, k: k)
        let scores = try detector.score(queries, blockRows: 7, tileRows: 50)
        func unit(_ m: Matrix<Float>, _ i: Int) -> [Double] {
            let row = (0..<16).map { Double(m[i, $0]) }, norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return row.map { $0 / norm }
        }
        for i in 0..<60 {
            let q = unit(queries, i)
            let distances = (0..<300).map { r in zip(q, unit(reference, r)).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }.sorted()
            let expected = distances[k - 1]
            #expect(abs(Double(scores[i]) - expected) <= 1e-6, "query \(i), k = \(k): \(scores[i]) vs \(expected)")
            if k == 1 && i < 30 { #expect(scores[i] == 0, "a duplicate of a reference row must score exactly 0, got \(scores[i])") }
        }
    }

    /// Every partition of n items into k parts covers 0..<n once, in order, balanced within one item.
    @Test func partitionsCoverEveryCountExactlyOnce() {
        for parts in 1...9 {
            for n in 0...300 {
                var next = 0
                for part in 0..<parts {
                    let r = Linalg.partition(n, parts: parts, part: part)
                    #expect(r.lowerBound == next && r.count >= n / parts && r.count <= n / parts + 1, "n = \(n), parts = \(parts), part \(part): \(r)")
                    next = r.upperBound
                }
                #expect(next == n)
            }
        }
        #expect(Linalg.partition(Int.max, parts: 7, part: 6).upperBound == Int.max)
    }

    /// The Gaussian fit on every small row count (the fixed task count made the last task's range run
    /// backwards for 1, 2 and 5 rows) and on counts ≡ 1, 2, 5 (mod 4096), tied and per class, equals the
    /// float64 oracle's means and covariance.
    @Test func gaussianFitOnEverySmallRowCount() throws {
        let (x, _) = Self.gaussianData(rows: 8200, dimension: 3, classes: 1, offset: 1, separation: 0, seed: 5)
        for n in Array(1...40) + [4097, 4098, 4101, 8193] {
            let rows = x.sliceRows(0..<n), labels = (0..<n).map { $0 % 2 }
            for perClass in [false, true] {
                var fit = GaussianFit(dimension: 3, classes: 2, perClassCovariance: perClass)
                try fit.update(rows, labels: labels)
                #expect(fit.counts == [(n + 1) / 2, n / 2])
                let mean0 = (0..<3).map { j in stride(from: 0, to: n, by: 2).reduce(0.0) { $0 + Double(x[$1, j]) } / Double((n + 1) / 2) }
                #expect(zip(Array(fit.means.row(0)), mean0).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) }, "n = \(n)")
            }
        }
    }
}
