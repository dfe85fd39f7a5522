extension Linalg {
    /// Element-wise natural exponential.
    ///
    /// `simd`/`blas` (float32): the vectorised exp, ≤ 2 ulp from the correctly rounded result for
    /// normal outputs; +∞ above 88.7228, 0 below −103.98, NaN for NaN. float64 and `reference` use libm.
    public static func exp<T: LinalgScalar>(_ a: Matrix<T>, backend: Backend? = nil) -> Matrix<T> {
        map(a, backend: backend, vector: { VectorExp.exp($0, T.self) }, scalar: T.exp)
    }

    /// Element-wise natural logarithm. `simd`/`blas` (float32): the vectorised log, ≤ 2 ulp for positive
    /// normal inputs, subnormals treated as 0 (−∞); float64 and `reference` use libm.
    public static func log<T: LinalgScalar>(_ a: Matrix<T>, backend: Backend? = nil) -> Matrix<T> {
        map(a, backend: backend, vector: { v in
            T.self == Float.self ? unsafeBitCast(log8(unsafeBitCast(v, to: SIMD8<Float>.self)), to: T.Vector.self) : v.lanewise(T.log)
        }, scalar: T.log)
    }

    /// `vector` over whole SIMD vectors (not on the reference backend), `scalar` on the tail.
    private static func map<T: LinalgScalar>(_ a: Matrix<T>, backend: Backend?, vector: (T.Vector) -> T.Vector,
                                             scalar: (T) -> T) -> Matrix<T> {
        let backend = run(backend)
        var out = Matrix<T>(uninitializedRows: a.rows, columns: a.columns)
        let n = a.count
        a.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var i = 0
                if backend != .reference {
                    let w = T.Vector.scalarCount
                    while i + w <= n {
                        SIMDVectorKernels.store(vector(SIMDVectorKernels.load(src.baseAddress! + i)), dst.baseAddress! + i)
                        i += w
                    }
                }
                while i < n { dst[i] = scalar(src[i]); i += 1 }
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

    /// How many parts a reduction documented as independent of the thread count splits its rows into:
    /// fixed, so the partial sums, and the order they are added in, never depend on `FAULTLINE_THREADS`
    /// or the machine (only on the row count, through `partition`).
    public static let reductionParts = 64

    /// Part `part` of `count` items split into `parts` contiguous, balanced ranges: the first
    /// `count % parts` parts hold ⌈count/parts⌉ items, the others ⌊count/parts⌋. For every count ≥ 0 and
    /// parts ≥ 1 the ranges are ascending, never reversed, and cover 0..<count exactly once (parts beyond
    /// `count` are empty). No intermediate product, so no overflow for any `count`. O(1).
    @inline(__always)
    public static func partition(_ count: Int, parts: Int, part: Int) -> Range<Int> {
        precondition(count >= 0 && parts >= 1 && part >= 0 && part < parts, "partition(\(count), parts: \(parts), part: \(part))")
        let (q, r) = count.quotientAndRemainder(dividingBy: parts)
        let lower = part * q + Swift.min(part, r)
        return lower..<(lower + q + (part < r ? 1 : 0))
    }
}

extension SIMD {
    /// `f` applied lane by lane.
    func lanewise(_ f: (Scalar) -> Scalar) -> Self {
        var out = self
        for i in indices { out[i] = f(self[i]) }
        return out
    }
}
