/// The `simd` backend's level-1 and level-2 kernels (dot, axpy, gemv) on `T.Vector`, with four
/// independent accumulators to hide add latency. Sums accumulate in `T`.
enum SIMDVectorKernels {
    @inline(__always)
    static func load<T: LinalgScalar>(_ p: UnsafePointer<T>) -> T.Vector {
        UnsafeRawPointer(p).loadUnaligned(as: T.Vector.self)
    }

    @inline(__always)
    static func store<T: LinalgScalar>(_ v: T.Vector, _ p: UnsafeMutablePointer<T>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: T.Vector.self)
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func dot<T: LinalgScalar>(_ n: Int, _ x: UnsafePointer<T>, _ y: UnsafePointer<T>) -> T {
        typealias V = T.Vector
        let w = V.scalarCount
        var s0 = V(), s1 = V(), s2 = V(), s3 = V()
        var i = 0
        while i + 4 * w <= n {
            s0 = s0 + load(x + i) * load(y + i)
            s1 = s1 + load(x + i + w) * load(y + i + w)
            s2 = s2 + load(x + i + 2 * w) * load(y + i + 2 * w)
            s3 = s3 + load(x + i + 3 * w) * load(y + i + 3 * w)
            i += 4 * w
        }
        while i + w <= n {
            s0 = s0 + load(x + i) * load(y + i)
            i += w
        }
        var sum = ((s0 + s1) + (s2 + s3)).sum()
        while i < n { sum += x[i] * y[i]; i += 1 }
        return sum
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func axpy<T: LinalgScalar>(_ n: Int, _ alpha: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
        let w = T.Vector.scalarCount
        let va = T.Vector(repeating: alpha)
        var i = 0
        while i + w <= n {
            store(load(UnsafePointer(y + i)) + va * load(x + i), y + i)
            i += w
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// y = alpha·op(A)·x + beta·y. No transpose: one dot per row; transposed: one axpy per row of A.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func gemv<T: LinalgScalar>(
        _ t: Transpose, _ a: MatrixPointer<T>, _ x: UnsafePointer<T>, alpha: T, beta: T, _ y: UnsafeMutablePointer<T>
    ) {
        if t == .none {
            for i in 0..<a.rows {
                let d = alpha * dot(a.columns, a.base + i * a.rowStride, x)
                y[i] = beta == 0 ? d : d + beta * y[i]
            }
        } else {
            let n = a.columns
            if beta == 0 { y.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { y[j] *= beta } }
            for i in 0..<a.rows { axpy(n, alpha * x[i], a.base + i * a.rowStride, y) }
        }
    }
}
