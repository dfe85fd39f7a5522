import Foundation

/// Per-rank parts of a row-wise output: under `mpirun`, each rank can write its own rows of an `.npz`
/// (`predict --per-rank`) instead of gathering them on rank 0, and the parts are joined later
/// (`faultline data concat`) into the archive rank 0 would have written.
///
/// A part is an ordinary `.npz` whose arrays all have the part's rows first, plus `__rows__` (int64
/// [first row, end row, total rows]) saying which rows of the whole it holds. `concatenate` checks that the
/// parts tile 0..<total exactly once (any order of paths), hold the same arrays with the same dtypes and
/// per-row shapes, and joins each array's bytes in row order: the result is the whole archive bit for bit.
public enum RowParts {
    /// The name of the array that records a part's rows.
    public static let rowsArray = "__rows__"

    /// The path of rank `rank`'s part of `path` among `size`: `pred.npz` → `pred.rank2-of-4.npz`.
    public static func partPath(_ path: String, rank: Int, size: Int) -> String {
        let stem = path.lowercased().hasSuffix(".npz") ? String(path.dropLast(4)) : path
        return "\(stem).rank\(rank)-of-\(size).npz"
    }

    /// Writes `arrays` (each with `rows.count` rows first) and `__rows__` to `path`, atomically.
    /// - Throws: `IOError.invalidValue` when an array does not have `rows.count` rows or is named
    ///   `__rows__`, when `rows` is not within 0...total; what `NPZ.write` throws.
    public static func write(_ arrays: [(name: String, tensor: Tensor)], rows: Range<Int>, total: Int, to path: String) throws {
        guard rows.lowerBound >= 0, rows.upperBound <= total else {
            throw IOError(.invalidValue, file: path, "rows \(rows) are not within the \(total) rows of the whole")
        }
        for (name, tensor) in arrays where name == rowsArray || tensor.shape.first != rows.count {
            throw IOError(.invalidValue, file: path, name == rowsArray
                          ? "the array name \(rowsArray) is reserved for the part's rows"
                          : "array '\(name)' has shape \(tensor.shape), not \(rows.count) rows first")
        }
        let marker = Tensor(shape: [3], values: [Int64(rows.lowerBound), Int64(rows.upperBound), Int64(total)])
        try NPZ.write(arrays + [(rowsArray, marker)], to: path)
    }

    /// The arrays of the whole, joined from the parts at `paths` (any order).
    /// - Throws: `IOError` naming the part: a part without a valid `__rows__`, parts that overlap, leave a
    ///   gap, disagree on the total, or hold different arrays, dtypes or per-row shapes; what `NPZ.read`
    ///   throws. Nothing is returned unless every row of the whole is present exactly once.
    public static func concatenate(_ paths: [String]) throws -> [(name: String, tensor: Tensor)] {
        guard !paths.isEmpty else { throw IOError(.invalidValue, file: "(no parts)", "give the part files to join") }
        var parts: [(path: String, first: Int, end: Int, total: Int, arrays: [(name: String, tensor: Tensor)])] = []
        for path in paths {
            let arrays = try NPZ.read(path)
            guard let marker = arrays.first(where: { $0.name == rowsArray })?.tensor, marker.dtype == .int64, marker.shape == [3] else {
                throw IOError(.invalidValue, file: path, "no \(rowsArray) array: not a part written by --per-rank")
            }
            let r = marker.values(as: Double.self).map { Int(exactly: $0) ?? -1 }
            guard r[0] >= 0, r[0] <= r[1], r[1] <= r[2] else {
                throw IOError(.invalidValue, file: path, "\(rowsArray) = \(r) is not [first, end, total] with 0 ≤ first ≤ end ≤ total")
            }
            parts.append((path, r[0], r[1], r[2], arrays.filter { $0.name != rowsArray }))
        }
        parts.sort { ($0.first, $0.end) < ($1.first, $1.end) }
        let total = parts[0].total, names = parts[0].arrays.map(\.name)
        var cursor = 0
        for part in parts {
            guard part.total == total else {
                throw IOError(.invalidValue, file: part.path, "a part of \(part.total) rows, but \(parts[0].path) is a part of \(total)")
            }
            guard part.first == cursor else {
                throw IOError(.invalidValue, file: part.path, part.first < cursor
                              ? "rows \(part.first)..<\(part.end) overlap rows already given (up to \(cursor)); is a part repeated?"
                              : "rows \(cursor)..<\(part.first) are in no part: a part is missing")
            }
            guard part.arrays.map(\.name) == names else {
                throw IOError(.invalidValue, file: part.path, "holds arrays \(part.arrays.map(\.name)), \(parts[0].path) holds \(names)")
            }
            for ((name, tensor), (_, reference)) in zip(part.arrays, parts[0].arrays)
            where tensor.dtype != reference.dtype || tensor.shape.first != part.end - part.first || tensor.shape.dropFirst() != reference.shape.dropFirst() {
                throw IOError(.invalidValue, file: part.path, "array '\(name)' is \(tensor.dtype) \(tensor.shape); expected \(reference.dtype) with "
                              + "\(part.end - part.first) rows of \(Array(reference.shape.dropFirst()))")
            }
            cursor = part.end
        }
        guard cursor == total else { throw IOError(.invalidValue, file: parts.last!.path, "rows \(cursor)..<\(total) are in no part: a part is missing") }
        return names.indices.map { k in
            let reference = parts[0].arrays[k].tensor
            return (names[k], Tensor(shape: [total] + reference.shape.dropFirst(), dtype: reference.dtype,
                                     bytes: parts.flatMap { $0.arrays[k].tensor.bytes }))
        }
    }
}
