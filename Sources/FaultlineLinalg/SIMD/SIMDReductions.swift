/// The `simd` backend's row-wise reductions, also used by the `blas` backend (BLAS has none).
/// Sums accumulate in `T` over four vector accumulators. NaN propagates as in the reference: a row
/// with NaN has NaN max, log-sum-exp and softmax, and its argmax is its first NaN.
enum SIMDReductions {
    typealias K = SIMDVectorKernels

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func rowSums<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<T>) {
        for i in 0..<a.rows { out[i] = sum(a.base + i * a.rowStride, a.columns) }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func rowSquaredNorms<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<T>) {
        for i in 0..<a.rows {
            let row = a.base + i * a.rowStride
            out[i] = K.dot(a.columns, row, row)
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func rowMax<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<T>) {
        for i in 0..<a.rows { out[i] = max(a.base + i * a.rowStride, a.columns) }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func rowArgmax<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<Int>) {
        for i in 0..<a.rows {
            let row = a.base + i * a.rowStride
            let m = max(row, a.columns)
            var j = 0
            if m.isNaN {
                while !row[j].isNaN { j += 1 }
            } else {
                while row[j] != m { j += 1 }
            }
            out[i] = j
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func rowLogSumExp<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<T>) {
        for i in 0..<a.rows {
            let row = a.base + i * a.rowStride
            let m = max(row, a.columns)
            if !m.isFinite { out[i] = m; continue }  // NaN, +∞, or an all −∞ row
            out[i] = m + T.log(sumExp(row, a.columns, shift: m, store: nil))
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func softmaxRows<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: MutableMatrixPointer<T>) {
        let n = a.columns
        for i in 0..<a.rows {
            let row = a.base + i * a.rowStride
            let dst = out.base + i * out.rowStride
            let m = max(row, n)
            if m.isNaN { dst.update(repeating: .nan, count: n); continue }
            let s = sumExp(row, n, shift: m, store: dst)
            let inv = 1 / s
            for j in 0..<n { dst[j] *= inv }
        }
    }

    /// Σ exp(x_j − shift), optionally storing each exp into `store`.
    @inline(__always)
    static func sumExp<T: LinalgScalar>(_ x: UnsafePointer<T>, _ n: Int, shift: T, store: UnsafeMutablePointer<T>?) -> T {
        let w = T.Vector.scalarCount
        let vm = T.Vector(repeating: shift)
        var acc = T.Vector()
        var j = 0
        while j + w <= n {
            let e = VectorExp.exp(K.load(x + j) - vm, T.self)
            if let store { K.store(e, store + j) }
            acc = acc + e
            j += w
        }
        var s = acc.sum()
        while j < n {
            let e = T.exp(x[j] - shift)
            store?[j] = e
            s += e
            j += 1
        }
        return s
    }

    @inline(__always)
    static func sum<T: LinalgScalar>(_ x: UnsafePointer<T>, _ n: Int) -> T {
        let w = T.Vector.scalarCount
        var s0 = T.Vector(), s1 = T.Vector()
        var j = 0
        while j + 2 * w <= n { s0 = s0 + K.load(x + j); s1 = s1 + K.load(x + j + w); j += 2 * w }
        var s = (s0 + s1).sum()
        while j < n { s += x[j]; j += 1 }
        return s
    }

    /// Whether every element is finite. Specialised so callers in other modules do not pay for generic
    /// dispatch per element (measured 24 ns/element unspecialised).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func allFinite<T: LinalgScalar>(_ x: UnsafeBufferPointer<T>) -> Bool {
        guard let base = x.baseAddress else { return true }
        let w = T.Vector.scalarCount
        var acc = T.Vector()
        var i = 0
        while i + w <= x.count {
            let v = K.load(base + i)
            acc = acc + (v - v)  // 0 for finite lanes, NaN otherwise; NaN is sticky
            i += w
        }
        var tail: T = 0
        while i < x.count { tail += base[i] - base[i]; i += 1 }
        return (acc.sum() + tail) == 0
    }

    /// Maximum of x[0..<n] (n ≥ 1), NaN when any element is NaN.
    @inline(__always)
    static func max<T: LinalgScalar>(_ x: UnsafePointer<T>, _ n: Int) -> T {
        let w = T.Vector.scalarCount
        var best = T.Vector(repeating: -.infinity)
        var nan = SIMDMask<T.Vector.MaskStorage>()
        var j = 0
        while j + w <= n {
            let v = K.load(x + j)
            nan = nan .| (v .!= v)
            best.replace(with: v, where: v .> best)
            j += w
        }
        if any(nan) { return .nan }
        var m = best.max()
        while j < n {
            if x[j].isNaN { return .nan }
            if x[j] > m { m = x[j] }
            j += 1
        }
        return m
    }
}
