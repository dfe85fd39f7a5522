extension Linalg {
    /// The lower Cholesky factor L of a symmetric positive-definite matrix (A = L·Lᵀ), strict upper
    /// triangle zero. Only the lower triangle of `a` is read.
    ///
    /// - Throws: `notPositiveDefinite(order:)` naming the 1-based leading minor whose pivot is not
    ///   positive; `nonFinite` when NaN/∞ is in the lower triangle; `shapeMismatch` if not square.
    /// - Accuracy: backward stable (‖A − LLᵀ‖ ≲ n·u·‖A‖). Cost: n³/3 flops.
    public static func cholesky<T: LinalgScalar>(_ a: Matrix<T>, backend: Backend? = nil) throws -> Matrix<T> {
        guard a.isSquare else {
            throw LinalgError.shapeMismatch(operation: "cholesky", detail: "matrix is \(a.rows)×\(a.columns), must be square")
        }
        let n = a.rows
        for i in 0..<n {
            for j in 0...i where n > 0 && !a[i, j].isFinite {
                throw LinalgError.nonFinite(operation: "cholesky", detail: "element (\(i), \(j)) is \(a[i, j])")
            }
        }
        var l = a
        let backend = run(backend)
        try l.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress, n > 0 else { return }
            let view = MutableMatrixPointer(base, rows: n, columns: n)
            switch backend {
            case .reference: try ReferenceFactorizations.cholesky(view)
            case .simd: try SIMDFactorizations.cholesky(view)
            case .blas:
                let info = NativeBLAS.potrfLower(n, base, n)
                if info > 0 { throw LinalgError.notPositiveDefinite(operation: "cholesky", order: info) }
                precondition(info == 0, "potrf rejected argument \(-info)")
                for i in 0..<n { (base + i * n + i + 1).update(repeating: 0, count: n - i - 1) }
            }
        }
        return l
    }

    /// Solves op(L)·X = B (`side: .left`) or X·op(L) = B (`side: .right`) for X, with L lower
    /// triangular (e.g. from `cholesky`). Only the lower triangle of `l` is read.
    ///
    /// Whitening the rows of X by Σ = LLᵀ is `solveTriangular(l, x, side: .right, transL: .transposed)`
    /// (each row z solves L·zᵀ = xᵀ). Throws `shapeMismatch`. A zero on the diagonal gives ±∞/NaN.
    public static func solveTriangular<T: LinalgScalar>(
        _ l: Matrix<T>, _ b: Matrix<T>, side: TriangularSide = .left, transL: Transpose = .none,
        backend: Backend? = nil
    ) throws -> Matrix<T> {
        try requireTriangularShape(l, b, side: side, operation: "solveTriangular")
        var x = b
        let backend = run(backend)
        let n = l.rows
        if n == 0 || b.count == 0 { return x }
        l.withUnsafeBufferPointer { pl in
            x.withUnsafeMutableBufferPointer { px in
                let lv = MatrixPointer(pl.baseAddress!, rows: n, columns: n)
                let xv = MutableMatrixPointer(px.baseAddress!, rows: b.rows, columns: b.columns)
                switch backend {
                case .reference: ReferenceFactorizations.solveTriangular(lv, side, transL, xv)
                case .simd: SIMDFactorizations.solveTriangular(lv, side, transL, xv)
                case .blas: NativeBLAS.trsmLower(side, transL, b.rows, b.columns, lv.base, n, xv.base, b.columns)
                }
            }
        }
        return x
    }

    /// The triangular product op(L)·B (`side: .left`) or B·op(L) (`.right`), L lower triangular (only
    /// its lower triangle is read). Whitening rows by a precomputed W = L⁻¹ is
    /// `multiplyTriangular(w, x, side: .right, transL: .transposed)` (rows z = W·x), half the flops of
    /// a dense GEMM and, through BLAS TRMM, as fast per flop.
    ///
    /// - Throws: `shapeMismatch` when L is not square or does not match B.
    /// - Cost: n²·m multiply-adds for an n×n factor and m right-hand sides; accuracy as a GEMM.
    public static func multiplyTriangular<T: LinalgScalar>(
        _ l: Matrix<T>, _ b: Matrix<T>, side: TriangularSide = .left, transL: Transpose = .none,
        backend: Backend? = nil
    ) throws -> Matrix<T> {
        var product = b
        try multiplyTriangular(l, &product, side: side, transL: transL, backend: backend)
        return product
    }

    /// In-place form of `multiplyTriangular(_:_:side:transL:backend:)`: B is overwritten.
    public static func multiplyTriangular<T: LinalgScalar>(
        _ l: Matrix<T>, _ b: inout Matrix<T>, side: TriangularSide = .left, transL: Transpose = .none,
        backend: Backend? = nil
    ) throws {
        try requireTriangularShape(l, b, side: side, operation: "multiplyTriangular")
        let n = l.rows, rows = b.rows, columns = b.columns
        l.withUnsafeBufferPointer { pl in
            b.withUnsafeMutableBufferPointer { pb in
                multiplyTriangular(MatrixPointer(pl.baseAddress!, rows: n, columns: n),
                                   MutableMatrixPointer(pb.baseAddress!, rows: rows, columns: columns), side: side, transL: transL, backend: backend)
            }
        }
    }

    /// `multiplyTriangular` on memory the caller owns (a workspace, a block of rows with a row stride), in
    /// place: B ← op(L)·B or B·op(L). Shapes are preconditions (L square, matching B); L must not overlap B.
    public static func multiplyTriangular<T: LinalgScalar>(
        _ l: MatrixPointer<T>, _ b: MutableMatrixPointer<T>, side: TriangularSide = .left, transL: Transpose = .none,
        backend: Backend? = nil
    ) {
        let n = l.rows
        precondition(l.columns == n && n == (side == .left ? b.rows : b.columns),
                     "multiplyTriangular: L \(l.rows)×\(l.columns), B \(b.rows)×\(b.columns), side \(side)")
        let backend = run(backend)
        if n == 0 || b.rows == 0 || b.columns == 0 { return }
        switch backend {
        case .reference: ReferenceFactorizations.multiplyTriangular(l, side, transL, b)
        case .simd: SIMDFactorizations.multiplyTriangular(l, side, transL, b)
        case .blas: NativeBLAS.trmmLower(side, transL, b.rows, b.columns, l.base, l.rowStride, b.base, b.rowStride)
        }
    }

    /// Throws `shapeMismatch` unless L is square with as many rows as op(L) meets in B.
    static func requireTriangularShape<T: LinalgScalar>(_ l: Matrix<T>, _ b: Matrix<T>, side: TriangularSide, operation: String) throws {
        let needed = side == .left ? b.rows : b.columns
        guard l.isSquare, l.rows == needed else {
            throw LinalgError.shapeMismatch(
                operation: operation,
                detail: "L is \(l.rows)×\(l.columns), B is \(b.rows)×\(b.columns); L must be square with "
                    + "\(side == .left ? "rows(B)" : "columns(B)") = \(needed) rows")
        }
    }

    /// Solves A·X = B given the Cholesky factor L of A (two triangular solves). Throws `shapeMismatch`.
    public static func choleskySolve<T: LinalgScalar>(
        _ l: Matrix<T>, _ b: Matrix<T>, backend: Backend? = nil
    ) throws -> Matrix<T> {
        let y = try solveTriangular(l, b, side: .left, transL: .none, backend: backend)
        return try solveTriangular(l, y, side: .left, transL: .transposed, backend: backend)
    }
}
