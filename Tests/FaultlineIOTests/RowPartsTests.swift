import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// RowParts: parts written for every even split of a whole (K = 1…5, including empty parts) join back to
/// the whole bit for bit in any order; missing, repeated, overlapping or mismatched parts are typed errors
/// naming a part, and nothing is returned.
@Suite("per-rank row parts")
struct RowPartsTests {
    static func whole(_ n: Int) -> [(name: String, tensor: Tensor)] {
        var a = Matrix<Float>(rows: n, columns: 3), b = Matrix<Double>(rows: n, columns: 1)
        for i in 0..<n { for j in 0..<3 { a[i, j] = Float(i) - 0.25 * Float(j) }; b[i, 0] = Double(i) / 7 }
        let c = Tensor(shape: [n, 2, 2], values: (0..<(4 * n)).map { Int64($0) - 9 })
        return [("logits", Tensor(a)), ("p", Tensor(b)), ("features_x", c)]
    }

    static func slice(_ arrays: [(name: String, tensor: Tensor)], _ rows: Range<Int>) -> [(name: String, tensor: Tensor)] {
        arrays.map { name, t in
            let perRow = t.bytes.count / max(t.shape[0], 1)
            return (name, Tensor(shape: [rows.count] + t.shape.dropFirst(), dtype: t.dtype, bytes: Array(t.bytes[(rows.lowerBound * perRow)..<(rows.upperBound * perRow)])))
        }
    }

    static func folder() -> String {
        let path = TestScratch.root.appendingPathComponent("parts-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func everySplitJoinsToTheWhole() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for n in [0, 1, 2, 7, 13] {
            let whole = Self.whole(n)
            for k in 1...5 {
                let paths = try (0..<k).map { r -> String in
                    let rows = RowSplit.even(rows: n, rank: r, size: k), path = RowParts.partPath(dir + "/out.npz", rank: r, size: k)
                    try RowParts.write(Self.slice(whole, rows), rows: rows, total: n, to: path)
                    return path
                }
                #expect(paths.last!.hasSuffix("/out.rank\(k - 1)-of-\(k).npz"))
                for order in [paths, paths.reversed(), paths.shuffled()] {
                    let joined = try RowParts.concatenate(order)
                    #expect(joined.map(\.name) == whole.map(\.name) && joined.map(\.tensor) == whole.map(\.tensor), "n \(n), k \(k)")
                }
            }
        }
    }

    @Test func badPartSetsAreRefusedNamingAPart() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let whole = Self.whole(10)
        var paths: [String] = []
        for r in 0..<3 {
            let rows = RowSplit.even(rows: 10, rank: r, size: 3)
            paths.append(RowParts.partPath(dir + "/p", rank: r, size: 3))
            try RowParts.write(Self.slice(whole, rows), rows: rows, total: 10, to: paths[r])
        }
        func message(_ parts: [String]) -> String {
            do { _ = try RowParts.concatenate(parts); return "" } catch let e as IOError { return "\(e)" } catch { return "untyped \(error)" }
        }
        #expect(message([paths[0], paths[2]]).contains("a part is missing"))
        #expect(message([paths[0], paths[1]]).contains("a part is missing"))
        #expect(message(paths + [paths[1]]).contains("repeated"))
        #expect(message([]).contains("give the part files"))
        // A part of another whole, other arrays, another dtype, a plain .npz without __rows__.
        let other = dir + "/other.npz", renamed = dir + "/renamed.npz", plain = dir + "/plain.npz"
        try RowParts.write(Self.slice(Self.whole(11), 4..<7), rows: 4..<7, total: 11, to: other)
        try RowParts.write(Self.slice(whole, 4..<7).map { ($0.name + "2", $0.tensor) }, rows: 4..<7, total: 10, to: renamed)
        try NPZ.write(whole, to: plain)
        #expect(message([paths[0], other, paths[2]]).contains("a part of 11 rows"))
        #expect(message([paths[0], renamed, paths[2]]).contains("holds arrays"))
        #expect(message([plain]).contains("no __rows__"))
        // Writing refuses arrays of the wrong row count, the reserved name and rows outside the whole.
        #expect(throws: IOError.self) { try RowParts.write(whole, rows: 0..<3, total: 10, to: dir + "/x.npz") }
        #expect(throws: IOError.self) { try RowParts.write([(RowParts.rowsArray, Tensor(shape: [0], values: [Int64]()))], rows: 0..<0, total: 0, to: dir + "/y.npz") }
        #expect(throws: IOError.self) { try RowParts.write(Self.slice(whole, 8..<10), rows: 8..<10, total: 9, to: dir + "/z.npz") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.npz"))
    }
}
