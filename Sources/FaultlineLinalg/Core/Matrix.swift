/// A dense row-major matrix of `Float` or `Double`.
///
/// Storage is contiguous (`rows × columns`, no padding), 64-byte aligned and shared copy-on-write:
/// copies are O(1) until one of them is mutated. Element `(i, j)` lives at offset `i * columns + j`.
/// `Matrix` is `Sendable`; mutation of a shared copy first makes its storage unique.
public struct Matrix<Scalar: LinalgScalar>: Sendable {
    /// The number of rows.
    public let rows: Int
    /// The number of columns.
    public let columns: Int
    @usableFromInline var storage: AlignedBuffer<Scalar>

    /// `rows × columns` filled with `value`. Traps on negative dimensions or an overflowing count.
    public init(rows: Int, columns: Int, repeating value: Scalar = 0) {
        let count = Matrix.elementCount(rows, columns)
        self.rows = rows
        self.columns = columns
        storage = AlignedBuffer(repeating: value, count: count)
    }

    /// `rows × columns` with uninitialised contents, for kernels that overwrite every element.
    public init(uninitializedRows rows: Int, columns: Int) {
        let count = Matrix.elementCount(rows, columns)
        self.rows = rows
        self.columns = columns
        storage = AlignedBuffer(uninitializedCount: count)
    }

    /// A matrix over existing storage (e.g. a file mapping adopted by an `AlignedBuffer`), no copy.
    public init(rows: Int, columns: Int, storage: AlignedBuffer<Scalar>) {
        precondition(storage.count == Matrix.elementCount(rows, columns), "Matrix: storage of \(storage.count) for \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.storage = storage
    }

    /// A matrix from row-major elements. Throws `LinalgError.invalidShape` when
    /// `elements.count != rows * columns` or a dimension is negative.
    public init<C: Collection>(rows: Int, columns: Int, elements: C) throws where C.Element == Scalar {
        guard rows >= 0, columns >= 0 else {
            throw LinalgError.invalidShape(detail: "negative dimension \(rows)×\(columns)")
        }
        let (count, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, count == elements.count else {
            throw LinalgError.invalidShape(
                detail: "\(rows)×\(columns) needs \(overflow ? "too many" : String(count)) elements, got \(elements.count)")
        }
        self.init(uninitializedRows: rows, columns: columns)
        _ = storage.buffer.initialize(from: elements)
    }

    /// A matrix from an array of rows. Throws `LinalgError.invalidShape` on ragged rows.
    public init(_ rowArrays: [[Scalar]]) throws {
        let columns = rowArrays.first?.count ?? 0
        if let bad = rowArrays.firstIndex(where: { $0.count != columns }) {
            throw LinalgError.invalidShape(
                detail: "ragged rows: row 0 has \(columns) elements, row \(bad) has \(rowArrays[bad].count)")
        }
        try self.init(rows: rowArrays.count, columns: columns, elements: rowArrays.joined())
    }

    /// The n×n identity.
    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, columns: n)
        for i in 0..<n { m[i, i] = 1 }
        return m
    }

    @usableFromInline static func elementCount(_ rows: Int, _ columns: Int) -> Int {
        precondition(rows >= 0 && columns >= 0, "Matrix: negative dimension \(rows)×\(columns)")
        let (count, overflow) = rows.multipliedReportingOverflow(by: columns)
        precondition(!overflow, "Matrix: \(rows)×\(columns) overflows Int")
        return count
    }

    /// rows × columns.
    public var count: Int { rows * columns }
    /// (rows, columns).
    public var shape: (rows: Int, columns: Int) { (rows, columns) }
    /// Whether rows == columns.
    public var isSquare: Bool { rows == columns }

    /// Element access; traps when out of bounds.
    @inlinable
    public subscript(row: Int, column: Int) -> Scalar {
        get {
            precondition(row >= 0 && row < rows && column >= 0 && column < columns,
                         "Matrix index (\(row), \(column)) out of bounds for \(rows)×\(columns)")
            return storage.pointer[row * columns + column]
        }
        set {
            precondition(row >= 0 && row < rows && column >= 0 && column < columns,
                         "Matrix index (\(row), \(column)) out of bounds for \(rows)×\(columns)")
            makeUnique()
            storage.pointer[row * columns + column] = newValue
        }
    }

    /// A read-only view of row `i` (no copy; keeps the storage alive).
    public func row(_ i: Int) -> MatrixRow<Scalar> {
        precondition(i >= 0 && i < rows, "Matrix row \(i) out of bounds for \(rows) rows")
        return MatrixRow(storage: storage, offset: i * columns, count: columns)
    }

    /// Row-major elements as an array.
    public var elements: [Scalar] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// Rows as arrays.
    public var rowArrays: [[Scalar]] { (0..<rows).map { Array(row($0)) } }

    /// Read access to the contiguous row-major elements.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// Write access to the contiguous row-major elements (makes the storage unique first).
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Scalar>) throws -> R
    ) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    @inlinable
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = AlignedBuffer<Scalar>(uninitializedCount: count)
            copy.pointer.initialize(from: storage.pointer, count: count)
            storage = copy
        }
    }

    /// The same elements viewed as `rows` × `columns` (rows · columns must equal `count`), sharing the
    /// storage: no copy (e.g. an M × (N·C) array viewed as (M·N) × C). O(1).
    public func reshaped(rows newRows: Int, columns newColumns: Int) -> Matrix {
        Matrix(rows: newRows, columns: newColumns, storage: storage)
    }

    /// A copy of the rows at `indices`, in that order (repeats allowed). Traps on an index outside
    /// 0..<rows (a programming error: callers validate user-supplied indices first).
    public func gatherRows(_ indices: [Int]) -> Matrix {
        var out = Matrix(uninitializedRows: indices.count, columns: columns)
        withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                guard let src = p.baseAddress, let dst = o.baseAddress else { return }
                for (r, i) in indices.enumerated() {
                    precondition(i >= 0 && i < rows, "gatherRows: index \(i) is outside 0..<\(rows)")
                    (dst + r * columns).update(from: src + i * columns, count: columns)
                }
            }
        }
        return out
    }

    /// A copy of the rows in `range` (a contiguous block of the row-major storage).
    public func sliceRows(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "sliceRows: \(range) is outside 0..<\(rows)")
        var out = Matrix(uninitializedRows: range.count, columns: columns)
        withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                guard let src = p.baseAddress, let dst = o.baseAddress else { return }
                dst.update(from: src + range.lowerBound * columns, count: range.count * columns)
            }
        }
        return out
    }

    /// The transpose (a copy).
    public func transposed() -> Matrix {
        let t = Matrix(uninitializedRows: columns, columns: rows)
        let src = storage.pointer
        let dst = t.storage.pointer
        // Blocked to stay in cache for large matrices.
        let block = 32
        for i0 in stride(from: 0, to: rows, by: block) {
            for j0 in stride(from: 0, to: columns, by: block) {
                for i in i0..<min(i0 + block, rows) {
                    for j in j0..<min(j0 + block, columns) { dst[j * rows + i] = src[i * columns + j] }
                }
            }
        }
        return t
    }

    /// Element-wise conversion to another scalar type (rounding to nearest).
    public func converted<Other: LinalgScalar>(to _: Other.Type = Other.self) -> Matrix<Other> {
        let out = Matrix<Other>(uninitializedRows: rows, columns: columns)
        let src = storage.pointer
        let dst = out.storage.pointer
        for i in 0..<count { dst[i] = Other(src[i]) }
        return out
    }

    /// A new matrix with `transform` applied to every element.
    public func map(_ transform: (Scalar) throws -> Scalar) rethrows -> Matrix {
        let out = Matrix(uninitializedRows: rows, columns: columns)
        let src = storage.pointer
        let dst = out.storage.pointer
        for i in 0..<count { dst[i] = try transform(src[i]) }
        return out
    }

    /// True when no element is NaN or infinite (a vectorised scan: x − x is 0 exactly when x is finite).
    public var isFinite: Bool {
        withUnsafeBufferPointer { SIMDReductions.allFinite($0) }
    }
}

extension Matrix: Equatable {
    /// Equal shapes and element-wise `==` (so a NaN makes two matrices unequal).
    public static func == (lhs: Matrix, rhs: Matrix) -> Bool {
        lhs.rows == rhs.rows && lhs.columns == rhs.columns
            && lhs.withUnsafeBufferPointer { a in rhs.withUnsafeBufferPointer { b in a.elementsEqual(b) } }
    }
}

extension Matrix: CustomStringConvertible {
    public var description: String {
        let shown = min(rows, 6)
        var lines = (0..<shown).map { i in
            "[" + row(i).prefix(8).map { "\($0)" }.joined(separator: ", ") + (columns > 8 ? ", …" : "") + "]"
        }
        if rows > shown { lines.append("…") }
        return "Matrix<\(Scalar.dtypeName)>(\(rows)×\(columns))\n" + lines.joined(separator: "\n")
    }
}
