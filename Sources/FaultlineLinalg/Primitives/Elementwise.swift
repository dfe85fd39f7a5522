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

    /// Element-wise natural logarithm. `simd`/`blas` (float32): the vectorised log, ≤ 2 ulp for positive
    /// normal inputs, subnormals treated as 0 (−∞); float64 and `reference` use libm.
    public static func log<T: LinalgScalar>(_ a: Matrix<T>, backend: Backend? = nil) -> Matrix<T> {
        let backend = run(backend)
        var out = Matrix<T>(uninitializedRows: a.rows, columns: a.columns)
        let n = a.count
        a.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var i = 0
                if backend != .reference && T.self == Float.self {
                    let s = UnsafeRawPointer(src.baseAddress!).assumingMemoryBound(to: Float.self)
                    let d = UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: Float.self)
                    while i + 8 <= n {
                        let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(d + i).storeBytes(of: log8(v), as: SIMD8<Float>.self)
                        i += 8
                    }
                }
                while i < n { dst[i] = T.log(src[i]); i += 1 }
            }
        }
        return out
    }

    /// Runs `body(task)` for task in 0..<tasks on up to `Linalg.simdThreads` threads (fork–join). Each
    /// task must write memory no other task touches. For kernels outside this module that parallelise
    /// over independent row blocks.
    public static func parallelForEach(_ tasks: Int, _ body: (Int) -> Void) {
        Parallel.forEach(tasks, threads: simdThreads, body)
    }

}
