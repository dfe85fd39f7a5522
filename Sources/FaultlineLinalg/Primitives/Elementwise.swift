extension Linalg {
    /// Element-wise natural exponential.
    ///
    /// `simd`/`blas` (float32): the vectorised exp, ≤ 2 ulp from the correctly rounded result for
    /// normal outputs; +∞ above 88.7228, 0 below −103.98, NaN for NaN. float64 and `reference` use libm.
    public static func exp<T: LinalgScalar>(_ a: Matrix<T>, backend: Backend? = nil) -> Matrix<T> {
        let backend = run(backend)
        var out = Matrix<T>(uninitializedRows: a.rows, columns: a.columns)
        let n = a.count
        a.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var i = 0
                if backend != .reference {
                    let w = T.Vector.scalarCount
                    while i + w <= n {
                        let v = VectorExp.exp(SIMDVectorKernels.load(src.baseAddress! + i), T.self)
                        SIMDVectorKernels.store(v, dst.baseAddress! + i)
                        i += w
                    }
                }
                while i < n { dst[i] = T.exp(src[i]); i += 1 }
            }
        }
        return out
    }
}
