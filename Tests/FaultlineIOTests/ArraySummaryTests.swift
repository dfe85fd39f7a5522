import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing

/// `ArraySummary` (what `faultline inspect` prints): the streamed `.npy` path and the whole-file path give
/// the same numbers as a float64 scan written here, NaN and ±∞ are counted and kept out of min/max/mean,
/// and `LabeledDataset.write` round-trips.
@Suite("array summaries and dataset export")
struct ArraySummaryTests {
    @Test(arguments: [(1, 1), (3, 7), (5_000, 300)])
    func streamedAndWholeFileAgreeWithAScan(shape: (rows: Int, columns: Int)) throws {
        var rng = Philox(seed: UInt64(shape.rows))
        var m: Matrix<Double> = rng.matrix(rows: shape.rows, columns: shape.columns, .normal(mean: 1, sd: 3))
        if shape.rows * shape.columns >= 3 { (m[0, 0], m[shape.rows - 1, shape.columns - 1]) = (.nan, -.infinity) }
        let npy = Fixtures.temporaryPath("summary.npy"), npz = Fixtures.temporaryPath("summary.npz")
        try NPY.write(m, to: npy)
        try NPZ.write([("features", Tensor(m))], to: npz)
        let finite = m.elements.filter(\.isFinite)
        for summary in [try ArraySummary.summaries(of: npy), try ArraySummary.summaries(of: npz)].map({ $0[0] }) {
            #expect(summary.shape == [shape.rows, shape.columns] && summary.count == m.elements.count && summary.dtype == "float64")
            #expect(summary.nan == m.elements.filter(\.isNaN).count && summary.infinite == m.elements.filter(\.isInfinite).count)
            #expect(summary.min == finite.min() && summary.max == finite.max())
            #expect(summary.mean == (finite.isEmpty ? nil : finite.reduce(0, +) / Double(finite.count)))
        }
        #expect(try ArraySummary.summaries(of: npz)[0].name == "features")
        #expect(throws: IOError.self) { try ArraySummary.summaries(of: npy + ".unknown") }
    }

    @Test func datasetExportRoundTrips() throws {
        var rng = Philox(seed: 3)
        let set = try LabeledDataset(name: "d", features: rng.matrix(rows: 9, columns: 4), labels: (0..<9).map { $0 % 3 }, classCount: 3)
        let dir = Fixtures.temporaryPath("export")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try set.write(to: dir, name: "train")
        #expect(try NPY.readMatrix(dir + "/train_x.npy", as: Float.self) == set.features)
        #expect(try NPY.read(dir + "/train_y.npy").values(as: Double.self).map { Int($0) } == set.labels)
    }
}
