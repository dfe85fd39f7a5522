extension Communicator {
    /// The rows of every rank's matrix, concatenated in rank order, on `root` (nil on the other ranks).
    /// Ranks may hold any number of rows, including none; all must have the same column count.
    /// Bytes moved: each rank sends its own rows once; root receives them all (O(N/K) per sender).
    /// - Throws: `CommunicatorError`, or `LinalgError.shapeMismatch` on every rank when the column counts differ.
    public func gatherRows<T: LinalgScalar>(_ m: Matrix<T>, root: Int = 0) throws -> Matrix<T>? {
        let columns = try checkedColumns(m)
        let values = m.withUnsafeBufferPointer { Array($0) }
        guard let all: [T] = try gatherv(values, root: root) else { return nil }
        return Self.matrix(all, columns: columns)
    }

    /// The rows of every rank's matrix, concatenated in rank order, on every rank.
    public func allgatherRows<T: LinalgScalar>(_ m: Matrix<T>) throws -> Matrix<T> {
        let columns = try checkedColumns(m)
        return Self.matrix(try allgatherv(m.withUnsafeBufferPointer { Array($0) }), columns: columns)
    }

    private func checkedColumns<T: LinalgScalar>(_ m: Matrix<T>) throws -> Int {
        let columns = try allgatherv([m.columns])
        guard let first = columns.first, columns.allSatisfy({ $0 == first }) else {
            throw LinalgError.shapeMismatch(operation: "gatherRows", detail: "the ranks' matrices have different column counts \(columns)")
        }
        return first
    }

    private static func matrix<T: LinalgScalar>(_ values: [T], columns: Int) -> Matrix<T> {
        let rows = columns == 0 ? 0 : values.count / columns
        var out = Matrix<T>(uninitializedRows: rows, columns: columns)
        out.withUnsafeMutableBufferPointer { dst in values.withUnsafeBufferPointer { src in _ = dst.initialize(from: src) } }
        return out
    }
}
