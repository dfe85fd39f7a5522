/// The `reference` backend for row-wise reductions, in `Double`. NaN propagates: a row containing NaN
/// has NaN sum, max, log-sum-exp and softmax, and its argmax is the first NaN (NumPy's rule).
enum ReferenceReductions {
    static func rowSums<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<T>) {
        for i in 0..<a.rows {
            var s = 0.0
            for j in 0..<a.columns { s += Double(a.base[i * a.rowStride + j]) }
            out[i] = T(s)
        }
    }

    static func rowSquaredNorms<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<T>) {
        for i in 0..<a.rows {
            var s = 0.0
            for j in 0..<a.columns { let x = Double(a.base[i * a.rowStride + j]); s += x * x }
            out[i] = T(s)
        }
    }

    /// Index of the first maximum (first NaN if any). Rows must be non-empty.
    static func rowArgmax<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<Int>) {
        for i in 0..<a.rows {
            let row = a.base + i * a.rowStride
            var best = 0
            for j in 0..<a.columns {
                if row[j].isNaN { best = j; break }
                if row[j] > row[best] { best = j }
            }
            out[i] = best
        }
    }

    static func rowMax<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<T>) {
        let index = UnsafeMutablePointer<Int>.allocate(capacity: max(a.rows, 1))
        defer { index.deallocate() }
        rowArgmax(a, index)
        for i in 0..<a.rows { out[i] = a.base[i * a.rowStride + index[i]] }
    }

    static func rowLogSumExp<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: UnsafeMutablePointer<T>) {
        for i in 0..<a.rows {
            let row = a.base + i * a.rowStride
            var m = -Double.infinity
            var nan = false
            for j in 0..<a.columns { let x = Double(row[j]); nan = nan || x.isNaN; m = Swift.max(m, x) }
            if nan { out[i] = .nan; continue }
            if m == -.infinity || m == .infinity { out[i] = T(m); continue }
            var s = 0.0
            for j in 0..<a.columns { s += Double.exp(Double(row[j]) - m) }
            out[i] = T(m + Double.log(s))
        }
    }

    static func softmaxRows<T: LinalgScalar>(_ a: MatrixPointer<T>, _ out: MutableMatrixPointer<T>) {
        for i in 0..<a.rows {
            let row = a.base + i * a.rowStride
            let dst = out.base + i * out.rowStride
            var m = -Double.infinity
            var nan = false
            for j in 0..<a.columns { let x = Double(row[j]); nan = nan || x.isNaN; m = Swift.max(m, x) }
            var s = 0.0
            for j in 0..<a.columns { s += Double.exp(Double(row[j]) - m) }
            for j in 0..<a.columns { dst[j] = nan ? .nan : T(Double.exp(Double(row[j]) - m) / s) }
        }
    }
}
