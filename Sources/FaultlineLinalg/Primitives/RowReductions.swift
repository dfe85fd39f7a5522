extension Linalg {
    /// Row-wise reductions of an m×n matrix, the building blocks of softmax outputs, losses and
    /// scores. The `blas` backend runs the `simd` code (BLAS has no such routines).
    ///
    /// NaN propagates: a row with a NaN has NaN sum, max, log-sum-exp and softmax row, and its argmax
    /// is the index of its first NaN (NumPy's rule). `rowMax`, `rowArgmax` and `rowLogSumExp` need
    /// n ≥ 1 and throw `invalidShape` on a matrix with rows but no columns.
    /// Accuracy (float32, simd): sums to ~n·u relative; log-sum-exp and softmax to a few ulp (the
    /// vector exp is ≤ 2 ulp). Each is O(m·n) and bandwidth bound.
    public enum RowReduction: Sendable {
        /// Σ x, Σ x², max x, log Σ eˣ (max-shifted) of each row.
        case sum, squaredNorm, max, logSumExp
    }

    /// One value per row: Σⱼ a_ij, Σⱼ a_ij², maxⱼ a_ij, or log Σⱼ exp(a_ij) (computed stably).
    public static func reduceRows<T: LinalgScalar>(
        _ a: Matrix<T>, _ reduction: RowReduction, backend: Backend? = nil
    ) throws -> [T] {
        if reduction == .max || reduction == .logSumExp { try requireColumns(a, "\(reduction)") }
        let backend = run(backend)
        var out = [T](repeating: 0, count: a.rows)
        if a.rows == 0 { return out }
        a.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                let v = MatrixPointer(pa.baseAddress!, rows: a.rows, columns: a.columns)
                let o = po.baseAddress!
                switch (backend, reduction) {
                case (.reference, .sum): ReferenceReductions.rowSums(v, o)
                case (.reference, .squaredNorm): ReferenceReductions.rowSquaredNorms(v, o)
                case (.reference, .max): ReferenceReductions.rowMax(v, o)
                case (.reference, .logSumExp): ReferenceReductions.rowLogSumExp(v, o)
                case (_, .sum): SIMDReductions.rowSums(v, o)
                case (_, .squaredNorm): SIMDReductions.rowSquaredNorms(v, o)
                case (_, .max): SIMDReductions.rowMax(v, o)
                case (_, .logSumExp): SIMDReductions.rowLogSumExp(v, o)
                }
            }
        }
        return out
    }

    /// Index of the largest element of each row (first occurrence; first NaN if any).
    public static func rowArgmax<T: LinalgScalar>(_ a: Matrix<T>, backend: Backend? = nil) throws -> [Int] {
        try requireColumns(a, "rowArgmax")
        let backend = run(backend)
        var out = [Int](repeating: 0, count: a.rows)
        if a.rows == 0 { return out }
        a.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                let v = MatrixPointer(pa.baseAddress!, rows: a.rows, columns: a.columns)
                if backend == .reference { ReferenceReductions.rowArgmax(v, po.baseAddress!) } else {
                    SIMDReductions.rowArgmax(v, po.baseAddress!)
                }
            }
        }
        return out
    }

    /// Row-wise softmax: out_ij = exp(a_ij − max_j a_ij) / Σ_j exp(a_ij − max_j a_ij). Rows sum to 1
    /// within a few ulp; an all-(−∞) row or a row with +∞ gives NaN.
    public static func softmaxRows<T: LinalgScalar>(_ a: Matrix<T>, backend: Backend? = nil) throws -> Matrix<T> {
        try requireColumns(a, "softmaxRows")
        let backend = run(backend)
        var out = Matrix<T>(uninitializedRows: a.rows, columns: a.columns)
        if a.count == 0 { return out }
        a.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                let v = MatrixPointer(pa.baseAddress!, rows: a.rows, columns: a.columns)
                let o = MutableMatrixPointer(po.baseAddress!, rows: a.rows, columns: a.columns)
                if backend == .reference { ReferenceReductions.softmaxRows(v, o) } else { SIMDReductions.softmaxRows(v, o) }
            }
        }
        return out
    }

    private static func requireColumns<T>(_ a: Matrix<T>, _ operation: String) throws {
        if a.rows > 0 && a.columns == 0 {
            throw LinalgError.invalidShape(detail: "\(operation) of \(a.rows) empty rows is undefined")
        }
    }
}
