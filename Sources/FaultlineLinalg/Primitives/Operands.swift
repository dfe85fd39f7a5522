/// Whether a primitive uses a matrix operand as stored or transposed: `op(A) = A` or `Aᵀ`.
public enum Transpose: Sendable {
    /// op(A) = A.
    case none
    /// op(A) = Aᵀ.
    case transposed
}

/// Which side a triangular factor multiplies from in `Linalg.solveTriangular` and
/// `Linalg.multiplyTriangular`.
public enum TriangularSide: Sendable {
    /// Solve op(L)·X = B, or form op(L)·B.
    case left
    /// Solve X·op(L) = B, or form B·op(L).
    case right
}

/// A read-only view of a row-major matrix in memory someone else owns: `rows × columns` elements,
/// row `i` starting at `base + i * rowStride` (`rowStride ≥ columns`). For kernels that work in
/// preallocated workspaces; the caller guarantees the memory is valid for the duration of the call.
public struct MatrixPointer<Scalar: LinalgScalar> {
    /// The first element of row 0.
    public var base: UnsafePointer<Scalar>
    /// The number of rows.
    public var rows: Int
    /// The number of columns.
    public var columns: Int
    /// Elements from the start of one row to the start of the next (≥ `columns`).
    public var rowStride: Int

    /// A view; `rowStride` defaults to `columns` (preconditions: non-negative sizes, stride ≥ columns).
    public init(_ base: UnsafePointer<Scalar>, rows: Int, columns: Int, rowStride: Int? = nil) {
        let stride = rowStride ?? columns
        precondition(rows >= 0 && columns >= 0 && stride >= columns,
                     "MatrixPointer: invalid layout \(rows)×\(columns), row stride \(stride)")
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = max(stride, 1)
    }

    /// Shape of op(self).
    func shape(_ t: Transpose) -> (rows: Int, columns: Int) { t == .none ? (rows, columns) : (columns, rows) }
}

/// A mutable counterpart of `MatrixPointer`.
public struct MutableMatrixPointer<Scalar: LinalgScalar> {
    /// The first element of row 0.
    public var base: UnsafeMutablePointer<Scalar>
    /// The number of rows.
    public var rows: Int
    /// The number of columns.
    public var columns: Int
    /// Elements from the start of one row to the start of the next (≥ `columns`).
    public var rowStride: Int

    /// A view; `rowStride` defaults to `columns` (preconditions: non-negative sizes, stride ≥ columns).
    public init(_ base: UnsafeMutablePointer<Scalar>, rows: Int, columns: Int, rowStride: Int? = nil) {
        let stride = rowStride ?? columns
        precondition(rows >= 0 && columns >= 0 && stride >= columns,
                     "MutableMatrixPointer: invalid layout \(rows)×\(columns), row stride \(stride)")
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = max(stride, 1)
    }

    /// The same memory as a read-only view.
    public var readOnly: MatrixPointer<Scalar> {
        MatrixPointer(UnsafePointer(base), rows: rows, columns: columns, rowStride: rowStride)
    }
}
