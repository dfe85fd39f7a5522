/// The `reference` backend for the BLAS-like primitives: the obvious loops, every sum accumulated in
/// `Double`. It is the oracle the `simd` and `blas` backends are tested against, so it favours
/// plainness over speed. Shapes were checked by the caller.
enum ReferenceBLAS {
    @inline(__always)
    static func element<T>(_ m: MatrixPointer<T>, _ t: Transpose, _ i: Int, _ j: Int) -> Double {
        Double(t == .none ? m.base[i * m.rowStride + j] : m.base[j * m.rowStride + i])
    }

    /// C = alpha·op(A)·op(B) + beta·C, C is m×n, the inner dimension k. `beta == 0` does not read C.
    static func gemm<T: LinalgScalar>(
        _ ta: Transpose, _ a: MatrixPointer<T>, _ tb: Transpose, _ b: MatrixPointer<T>,
        alpha: T, beta: T, _ c: MutableMatrixPointer<T>, k: Int
    ) {
        for i in 0..<c.rows {
            for j in 0..<c.columns {
                var sum = 0.0
                for p in 0..<k { sum += element(a, ta, i, p) * element(b, tb, p, j) }
                let out = c.base + i * c.rowStride + j
                let scaled = Double(alpha) * sum
                out.pointee = T(beta == 0 ? scaled : scaled + Double(beta) * Double(out.pointee))
            }
        }
    }

    /// y = alpha·op(A)·x + beta·y.
    static func gemv<T: LinalgScalar>(
        _ t: Transpose, _ a: MatrixPointer<T>, _ x: UnsafePointer<T>, alpha: T, beta: T, _ y: UnsafeMutablePointer<T>
    ) {
        let (rows, columns) = a.shape(t)
        for i in 0..<rows {
            var sum = 0.0
            for j in 0..<columns { sum += element(a, t, i, j) * Double(x[j]) }
            let scaled = Double(alpha) * sum
            y[i] = T(beta == 0 ? scaled : scaled + Double(beta) * Double(y[i]))
        }
    }

    static func dot<T: LinalgScalar>(_ n: Int, _ x: UnsafePointer<T>, _ y: UnsafePointer<T>) -> T {
        var sum = 0.0
        for i in 0..<n { sum += Double(x[i]) * Double(y[i]) }
        return T(sum)
    }

    static func axpy<T: LinalgScalar>(_ n: Int, _ alpha: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
        for i in 0..<n { y[i] = T(Double(alpha) * Double(x[i]) + Double(y[i])) }
    }

    /// Full symmetric C = alpha·op(A)·op(A)ᵀ + beta·C, with op(A) n×k.
    static func syrk<T: LinalgScalar>(
        _ t: Transpose, _ a: MatrixPointer<T>, alpha: T, beta: T, _ c: MutableMatrixPointer<T>
    ) {
        let (n, k) = a.shape(t)
        for i in 0..<n {
            for j in 0...i where n > 0 {
                var sum = 0.0
                for p in 0..<k { sum += element(a, t, i, p) * element(a, t, j, p) }
                let lower = c.base + i * c.rowStride + j
                let scaled = Double(alpha) * sum
                let value = T(beta == 0 ? scaled : scaled + Double(beta) * Double(lower.pointee))
                lower.pointee = value
                c.base[j * c.rowStride + i] = value
            }
        }
    }
}
