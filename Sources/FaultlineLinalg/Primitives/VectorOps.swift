extension Linalg {
    /// Matrix–vector product `y ← alpha·op(A)·x + beta·y`. Throws `shapeMismatch` when
    /// `x.count` ≠ columns of op(A) or `y.count` ≠ its rows. `beta == 0` does not read y.
    public static func gemv<T: LinalgScalar>(
        _ a: Matrix<T>, _ x: [T], transA: Transpose = .none, alpha: T = 1, beta: T = 0, into y: inout [T],
        backend: Backend? = nil
    ) throws {
        let (rows, columns) = transA == .none ? (a.rows, a.columns) : (a.columns, a.rows)
        guard x.count == columns, y.count == rows else {
            throw LinalgError.shapeMismatch(
                operation: "gemv", detail: "op(A) is \(rows)×\(columns), x has \(x.count), y has \(y.count) elements")
        }
        let backend = run(backend)
        a.withUnsafeBufferPointer { pa in
            x.withUnsafeBufferPointer { px in
                y.withUnsafeMutableBufferPointer { py in
                    let view = MatrixPointer(pa.baseAddress!, rows: a.rows, columns: a.columns)
                    switch backend {
                    case .reference:
                        ReferenceBLAS.gemv(transA, view, px.baseAddress!, alpha: alpha, beta: beta, py.baseAddress!)
                    case .simd:
                        SIMDVectorKernels.gemv(transA, view, px.baseAddress!, alpha: alpha, beta: beta, py.baseAddress!)
                    case .blas:
                        if rows == 0 { return }
                        if columns == 0 {
                            for i in 0..<rows { py[i] = beta == 0 ? 0 : beta * py[i] }
                            return
                        }
                        NativeBLAS.gemv(transA, a.rows, a.columns, alpha, pa.baseAddress!, max(a.columns, 1),
                                        px.baseAddress!, beta, py.baseAddress!)
                    }
                }
            }
        }
    }

    /// Inner product ⟨x, y⟩. Throws `shapeMismatch` on different lengths; 0 for empty vectors.
    public static func dot<T: LinalgScalar>(_ x: [T], _ y: [T], backend: Backend? = nil) throws -> T {
        guard x.count == y.count else {
            throw LinalgError.shapeMismatch(operation: "dot", detail: "x has \(x.count), y has \(y.count) elements")
        }
        let backend = run(backend)
        return x.withUnsafeBufferPointer { px in
            y.withUnsafeBufferPointer { py in
                guard let xb = px.baseAddress, let yb = py.baseAddress, x.count > 0 else { return 0 }
                switch backend {
                case .reference: return ReferenceBLAS.dot(x.count, xb, yb)
                case .simd: return SIMDVectorKernels.dot(x.count, xb, yb)
                case .blas: return NativeBLAS.dot(x.count, xb, yb)
                }
            }
        }
    }

    /// `y ← alpha·x + y`. Throws `shapeMismatch` on different lengths.
    public static func axpy<T: LinalgScalar>(_ alpha: T, _ x: [T], _ y: inout [T], backend: Backend? = nil) throws {
        guard x.count == y.count else {
            throw LinalgError.shapeMismatch(operation: "axpy", detail: "x has \(x.count), y has \(y.count) elements")
        }
        let backend = run(backend)
        let n = x.count
        if n == 0 { return }
        x.withUnsafeBufferPointer { px in
            y.withUnsafeMutableBufferPointer { py in
                switch backend {
                case .reference: ReferenceBLAS.axpy(n, alpha, px.baseAddress!, py.baseAddress!)
                case .simd: SIMDVectorKernels.axpy(n, alpha, px.baseAddress!, py.baseAddress!)
                case .blas: NativeBLAS.axpy(n, alpha, px.baseAddress!, py.baseAddress!)
                }
            }
        }
    }

    /// Symmetric rank-k update `C ← alpha·op(A)·op(A)ᵀ + beta·C` with op(A) n×k (`transA: .transposed`
    /// gives AᵀA, the scatter matrix of the rows of A). C (n×n) is written in full: the lower triangle is
    /// computed and mirrored. With `beta ≠ 0`, C must be symmetric on entry (only its lower triangle is read).
    public static func syrk<T: LinalgScalar>(
        _ a: Matrix<T>, transA: Transpose = .none, alpha: T = 1, beta: T = 0, into c: inout Matrix<T>,
        backend: Backend? = nil
    ) throws {
        let (n, k) = transA == .none ? (a.rows, a.columns) : (a.columns, a.rows)
        guard c.rows == n, c.columns == n else {
            throw LinalgError.shapeMismatch(
                operation: "syrk", detail: "op(A) is \(n)×\(k), so C must be \(n)×\(n), got \(c.rows)×\(c.columns)")
        }
        let backend = run(backend)
        if n == 0 { return }
        a.withUnsafeBufferPointer { pa in
            c.withUnsafeMutableBufferPointer { pc in
                let view = MatrixPointer(pa.baseAddress!, rows: a.rows, columns: a.columns)
                let out = MutableMatrixPointer(pc.baseAddress!, rows: n, columns: n)
                switch backend {
                case .reference:
                    ReferenceBLAS.syrk(transA, view, alpha: alpha, beta: beta, out)
                case .simd:
                    // Full product through the packed GEMM (2× the flops of a triangular update, but the
                    // GEMM kernel is far faster than a scalar triangle); symmetrised from the lower half.
                    SIMDGEMM.gemm(transA, view, transA == .none ? .transposed : .none, view,
                                  alpha: alpha, beta: beta, out, k: k)
                case .blas:
                    if k == 0 { SIMDGEMM.scale(out, by: beta) } else {
                        NativeBLAS.syrkLower(transA, n, k, alpha, pa.baseAddress!, max(a.columns, 1), beta,
                                             pc.baseAddress!, n)
                    }
                }
                mirrorLowerToUpper(out)
            }
        }
    }

    static func mirrorLowerToUpper<T>(_ c: MutableMatrixPointer<T>) {
        for i in 0..<c.rows {
            for j in 0..<i { c.base[j * c.rowStride + i] = c.base[i * c.rowStride + j] }
        }
    }
}
