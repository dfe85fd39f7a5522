import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// NPY.readRows: any row range of any C-order fixture (every dtype, both byte orders) equals those rows of
/// readMatrix, bit for bit; bad ranges and Fortran order are typed errors.
@Suite("NPY row shards")
struct NPYShardTests {
    static let files = Fixtures.expected.keys.filter { $0.hasPrefix("npy/") && !$0.contains("rank0") }.sorted()

    @Test func everyRangeOfEveryFixtureMatchesTheWholeRead() throws {
        var checked = 0
        for name in Self.files {
            let path = Fixtures.path(name)
            guard let whole = try? NPY.readMatrix(path, as: Double.self) else { continue }
            let shape = try NPY.read(path, headerOnly: true).shape
            let fortran = name.contains("_F") && shape.filter { $0 > 1 }.count >= 2  // NumPy writes fortran_order only when not also C-contiguous
            #expect(try NPY.rowCount(path) == whole.rows)
            for lower in 0...whole.rows {
                for upper in lower...whole.rows {
                    if fortran {
                        #expect(throws: IOError.self) { try NPY.readRows(path, rows: lower..<upper, as: Double.self) }
                        continue
                    }
                    let shard = try NPY.readRows(path, rows: lower..<upper, as: Double.self)
                    let expected = whole.gatherRows(Array(lower..<upper))
                    #expect(shard.rows == upper - lower && shard.columns == whole.columns, "\(name) \(lower)..<\(upper)")
                    #expect(shard.withUnsafeBufferPointer { $0.map(\.bitPattern) } == expected.withUnsafeBufferPointer { $0.map(\.bitPattern) }, "\(name)")
                    checked += 1
                }
            }
            #expect(throws: IOError.self) { try NPY.readRows(path, rows: 0..<(whole.rows + 1), as: Float.self) }
        }
        #expect(checked > 100)
    }

    /// Float32 shards of a float32 file are the file's bits; a missing file names the file.
    @Test func float32ShardsAndMissingFiles() throws {
        let path = TestScratch.root.appendingPathComponent("shard-\(UUID().uuidString).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var m = Matrix<Float>(rows: 37, columns: 5)
        for i in 0..<37 { for j in 0..<5 { m[i, j] = Float(i) * 0.1 + Float(j) } }
        try NPY.write(m, to: path)
        for k in 1...4 {
            let parts = (0..<k).map { try! NPY.readRows(path, rows: Linalg.partition(37, parts: k, part: $0), as: Float.self) }
            let joined = parts.flatMap { p in p.withUnsafeBufferPointer { Array($0) } }
            #expect(joined == m.withUnsafeBufferPointer { Array($0) })
        }
        #expect(throws: IOError.self) { try NPY.readRows(path + ".missing", rows: 0..<1, as: Float.self) }
    }

    /// Rows of 16 float32 or 8 float64 values (64 bytes) start 64-byte aligned, so the shard adopts the file's
    /// private mapping: it holds the rows, and writing into it changes neither the file nor a later read.
    @Test func alignedShardsAdoptThePrivateMapping() throws {
        let path = TestScratch.root.appendingPathComponent("aligned-\(UUID().uuidString).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var m = Matrix<Float>(rows: 9, columns: 16)
        for i in 0..<9 { for j in 0..<16 { m[i, j] = Float(i * 16 + j) * 0.25 } }
        try NPY.write(m, to: path)
        for range in [0..<9, 2..<7, 8..<9, 4..<4] {
            var shard = try NPY.readRows(path, rows: range, as: Float.self)
            #expect(shard == m.sliceRows(range), "\(range)")
            if shard.rows > 0 { shard[0, 3] = -1 }
            #expect(try NPY.readMatrix(path, as: Float.self) == m)
            #expect(try NPY.readRows(path, rows: range, as: Float.self) == m.sliceRows(range))
        }
        let wide = m.converted(to: Double.self).sliceRows(0..<8)
        try NPY.write(try Matrix(rows: 16, columns: 8, elements: wide.elements), to: path)
        #expect(try NPY.readRows(path, rows: 3..<11, as: Double.self).elements == Array(wide.elements[24..<88]))
    }
}
