import FaultlineIO
import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing
import _TestSupport

/// Saved drift references and windows: the KS on sorted samples equals the unsorted two-sample test,
/// checks equal FeatureDrift and the BH/Bonferroni decisions, adjusted p-values equal their float64
/// definitions, files round-trip and hostile ones are refused by name, and streamed windows over a
/// .npy equal the windows of the matrix in memory for every window/stride/block size.
@Suite("drift references, adjusted p-values and windows")
struct DriftReferenceTests {
    static func data(rows: Int, columns: Int, seed: UInt64, shift: Float = 0, round: Bool = false) -> Matrix<Float> {
        var rng = Philox(seed: seed)
        var m = rng.matrix(rows: rows, columns: columns, .normal(mean: 0, sd: 1), as: Float.self)
        m.withUnsafeMutableBufferPointer { p in
            for i in p.indices {
                p[i] += shift * Float(i % columns) / Float(max(columns - 1, 1))
                if round { p[i] = (p[i] * 2).rounded() / 2 }  // ties
            }
        }
        return m
    }

    static func column(_ m: Matrix<Float>, _ f: Int) -> [Double] { m.rowArrays.map { Double($0[f]) } }

    /// Sizes 1, 2, 3, odd, equal, with ties: D and p equal the unsorted test for every method.
    @Test func sortedKSEqualsTwoSampleTest() throws {
        for (n1, n2) in [(1, 1), (1, 2), (2, 3), (3, 7), (17, 17), (40, 25), (101, 63), (300, 1000)] {
            for round in [false, true] {
                let a = Self.column(Self.data(rows: n1, columns: 1, seed: UInt64(n1), round: round), 0)
                let b = Self.column(Self.data(rows: n2, columns: 1, seed: UInt64(n2 + 1000), shift: 0, round: round), 0).map { $0 + 0.3 }
                for method in DriftTests.KolmogorovSmirnovMethod.allCases {
                    let want = try DriftTests.kolmogorovSmirnov(a, b, method: method)
                    let x = a.map(Float.init).sorted(), y = b.map(Float.init).sorted()
                    let got = x.withUnsafeBufferPointer { px in y.withUnsafeBufferPointer { DriftTests.kolmogorovSmirnovSorted(px, $0, method: method) } }
                    #expect(got == want, "\(n1)×\(n2) round \(round) \(method)")
                }
            }
        }
    }

    /// Adjusted p-values equal the float64 definitions (brute force over j ≥ i), for random p with ties
    /// and sizes 0…40, and q < α picks out the features `rejected` returns (continuous p).
    @Test func adjustedPValuesMatchDefinitions() {
        var rng = Philox(seed: 77)
        for size in [0, 1, 2, 3, 5, 8, 13, 40] {
            for trial in 0..<20 {
                let p = (0..<size).map { _ in trial % 3 == 0 ? Double(Int(rng.uniform() * 6)) / 100 : pow(rng.uniform(), 3) }
                let f = Double(size)
                let bh = DriftTests.adjustedPValues(p, correction: .benjaminiHochberg)
                let bonf = DriftTests.adjustedPValues(p, correction: .bonferroni)
                let sorted = p.sorted()
                for i in 0..<size {
                    let rank = sorted.firstIndex(of: p[i])!  // ties: the smallest rank; the min over j ≥ rank covers them all
                    let want = min(1, (rank..<size).map { sorted[$0] * f / Double($0 + 1) }.min()!)
                    #expect(abs(bh[i] - want) <= 1e-15, "size \(size) trial \(trial) i \(i)")
                    #expect(bonf[i] == min(1, p[i] * f))
                }
                // The decisions agree away from exact boundary ties (the grid trials put p on them).
                for alpha in [0.01, 0.05, 0.2] where trial % 3 != 0 {
                    #expect(p.indices.filter { bh[$0] < alpha } == DriftTests.rejected(pValues: p, alpha: alpha, correction: .benjaminiHochberg))
                    #expect(p.indices.filter { bonf[$0] < alpha } == DriftTests.rejected(pValues: p, alpha: alpha, correction: .bonferroni))
                }
            }
        }
    }

    /// A check equals FeatureDrift's KS statistics, p-values and BH decisions on the same data.
    @Test(arguments: [(1, 1, 1), (5, 3, 2), (60, 45, 7), (200, 333, 12)])
    func checkEqualsFeatureDrift(n: Int, m: Int, d: Int) throws {
        let a = Self.data(rows: n, columns: d, seed: 1), b = Self.data(rows: m, columns: d, seed: 2, shift: 0.8)
        let ref = try DriftReference(reference: a)
        let c = try ref.check(b)
        let fd = try FeatureDrift(reference: a, current: b)
        #expect(c.features.map(\.statistic) == fd.ksStatistics)
        #expect(c.features.map(\.pValue) == fd.ksPValues)
        #expect(c.features.indices.filter { c.features[$0].drifted } == fd.driftedFeatures)
        #expect(c.features.map(\.name) == (0..<d).map(String.init))
        #expect(c.rows == m && c.referenceRows == n)
        #expect(throws: ShiftError.self) { try ref.check(Self.data(rows: 4, columns: d + 1, seed: 3)) }
        var bad = b
        bad.withUnsafeMutableBufferPointer { $0[$0.count - 1] = .nan }
        #expect(throws: ShiftError.self) { try ref.check(bad) }
    }

    static func temporary(_ name: String) -> String {
        TestScratch.root.appendingPathComponent("faultline-driftref-\(UUID().uuidString)-\(name)").path
    }

    /// Save → load gives the same reference; every damaged part is refused with the file named.
    @Test func fileRoundTripAndHostileFiles() throws {
        let ref = try DriftReference(reference: Self.data(rows: 30, columns: 4, seed: 9), names: ["age", "income", "a,b", "ünï"], alpha: 0.01,
                                     correction: .bonferroni, method: .asymptotic)
        let path = Self.temporary("ref.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ref.save(to: path)
        #expect(try DriftReference.load(path) == ref)
        let good = try SafeTensors.read(path)
        func refused(_ change: (inout SafeTensors.File) -> Void, _ label: String) {
            var f = good
            change(&f)
            do {
                _ = try DriftReference.load(f, name: "bad.safetensors")
                Issue.record("accepted: \(label)")
            } catch let e as ShiftError {
                #expect(e.description.contains("bad.safetensors"), "\(label): \(e)")
            } catch {
                Issue.record("\(label): \(error)")
            }
        }
        refused({ $0.metadata["faultline_drift_reference"] = nil }, "no version")
        refused({ $0.metadata["faultline_drift_reference"] = "2" }, "later version")
        refused({ $0.metadata["faultline_drift_reference"] = "x" }, "version not a number")
        refused({ $0.metadata["detector"] = "mmd" }, "detector")
        refused({ $0.metadata["alpha"] = "1.5" }, "alpha")
        refused({ $0.metadata["alpha"] = "nan" }, "alpha nan")
        refused({ $0.metadata["correction"] = "holm" }, "correction")
        refused({ $0.metadata["ks_method"] = nil }, "method")
        refused({ $0.metadata["feature_names"] = "[\"a\"]" }, "names count")
        refused({ $0.metadata["feature_names"] = "{" }, "names JSON")
        refused({ $0.metadata["feature_names"] = "[1, 2, 3, 4]" }, "names not strings")
        refused({ $0.tensors = [] }, "no tensor")
        refused({ $0.tensors = [("sorted_reference", Tensor(shape: [4, 30], values: [Double](repeating: 0, count: 120)))] }, "float64")
        refused({ $0.tensors = [("sorted_reference", Tensor(shape: [120], values: [Float](repeating: 0, count: 120)))] }, "rank 1")
        refused({ $0.tensors = [("sorted_reference", Tensor(shape: [4, 0], values: [Float]()))] }, "no values")
        refused({ $0.tensors = [("sorted_reference", Tensor(shape: [4, 30], values: (0..<120).map { Float(-$0) }))] }, "unsorted")
        refused({ $0.tensors = [("sorted_reference", Tensor(shape: [4, 30], values: (0..<120).map { $0 == 7 ? Float.nan : Float($0) }))] }, "NaN")
        // Truncated and foreign files: IOError / ShiftError naming the file, never a trap.
        let bytes = try SafeTensors.encode(good)
        for cut in [0, 7, 8, 40, bytes.count / 2, bytes.count - 1] {
            let p = Self.temporary("cut\(cut).safetensors")
            _ = FileManager.default.createFile(atPath: p, contents: Data(bytes[0..<cut]))
            defer { try? FileManager.default.removeItem(atPath: p) }
            #expect(throws: (any Error).self) { try DriftReference.load(p) }
        }
        let detector = Self.temporary("other.safetensors")
        defer { try? FileManager.default.removeItem(atPath: detector) }
        try SafeTensors.write(SafeTensors.File(tensors: [("x", Tensor(shape: [1], values: [Float(1)]))], metadata: ["faultline_detector": "knn"]), to: detector)
        #expect(throws: ShiftError.self) { try DriftReference.load(detector) }
        #expect(throws: ShiftError.self) { try DriftReference(reference: Self.data(rows: 3, columns: 2, seed: 1), names: ["a"]) }
        #expect(throws: ShiftError.self) { try DriftReference(reference: Matrix<Float>(rows: 0, columns: 2)) }
        #expect(throws: ShiftError.self) { try DriftReference(reference: Self.data(rows: 3, columns: 2, seed: 1), alpha: 0) }
    }

    /// Windows in memory equal checks of the row slices; streamed windows over a .npy (float32 and
    /// float64, blocks of 1, 3, 7 and 4096 rows) equal the windows in memory.
    @Test(arguments: [(1, 1), (5, 5), (8, 3), (10, 1), (7, 11), (40, 40), (64, 17)])
    func windowsEqualSlicesAndStream(window: Int, stride: Int) throws {
        let rows = 97, d = 3
        var x = Self.data(rows: rows, columns: d, seed: 4)
        x.withUnsafeMutableBufferPointer { p in for i in (50 * d)..<p.count where i % d == 1 { p[i] += 1.5 } }  // feature 1 drifts at row 50
        let ref = try DriftReference(reference: Self.data(rows: 80, columns: d, seed: 5), names: ["a", "b", "c"])
        let inMemory = try ref.windows(x, window: window, stride: stride)
        #expect(inMemory.count == DriftReference.windowCount(rows: rows, window: window, stride: stride))
        #expect(inMemory.count == (0..<rows).filter { $0 % stride == 0 && $0 + window <= rows }.count)
        for w in inMemory {
            let c = try ref.check(x.sliceRows(w.firstRow..<(w.firstRow + window)))
            #expect(w.firstRow == w.index * stride && w.rows == window)
            #expect(w.driftedFeatures == c.driftedCount && w.smallestAdjustedPValue == c.worst.adjustedPValue && w.worstFeature == c.worst.name)
        }
        for asDouble in [false, true] {
            let path = Self.temporary("stream.npy")
            defer { try? FileManager.default.removeItem(atPath: path) }
            if asDouble { try NPY.write(x.converted(to: Double.self), to: path) } else { try NPY.write(x, to: path) }
            for block in [1, 3, 7, 4096] {
                var streamed: [DriftWindow] = []
                let count = try ref.windows(npy: path, window: window, stride: stride, blockRows: block) { streamed.append($0) }
                #expect(count == inMemory.count)
                #expect(streamed == inMemory, "window \(window) stride \(stride) block \(block) float64 \(asDouble)")
            }
        }
    }

    @Test func windowErrors() throws {
        let ref = try DriftReference(reference: Self.data(rows: 20, columns: 2, seed: 1))
        let x = Self.data(rows: 10, columns: 2, seed: 2)
        #expect(throws: ShiftError.self) { try ref.windows(x, window: 11, stride: 1) }
        #expect(throws: ShiftError.self) { try ref.windows(x, window: 0, stride: 1) }
        #expect(throws: ShiftError.self) { try ref.windows(x, window: 2, stride: 0) }
        let path = Self.temporary("bad.npy")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var y = x
        y.withUnsafeMutableBufferPointer { $0[13] = .infinity }
        try NPY.write(y, to: path)
        do {
            try ref.windows(npy: path, window: 4, stride: 2) { _ in }
            Issue.record("accepted ∞")
        } catch let e as ShiftError {
            #expect(e.description.contains("row 6, column 1"), "\(e)")
        }
        #expect(throws: ShiftError.self) { try ref.windows(npy: path, window: 11, stride: 2) { _ in } }
        try NPY.write(Self.data(rows: 10, columns: 3, seed: 2), to: path)
        #expect(throws: ShiftError.self) { try ref.windows(npy: path, window: 2, stride: 2) { _ in } }
        #expect(DriftReference.windowCount(rows: 0, window: 1, stride: 1) == 0)
        #expect(DriftReference.windowCount(rows: 5, window: 5, stride: 100) == 1)
    }
}
