#if canImport(Glibc)
import Glibc
#endif

/// The `reference` backend for Cholesky, triangular solves and the symmetric eigendecomposition, all
/// in `Double`.
enum ReferenceFactorizations {
    /// Lower Cholesky factor in place (strict upper triangle zeroed). Throws at the first pivot that
    /// is not positive (or is NaN), naming its 1-based order.
    static func cholesky<T: LinalgScalar>(_ a: MutableMatrixPointer<T>) throws {
        let n = a.rows
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var sum = Double(a.base[i * a.rowStride + j])
                for p in 0..<j { sum -= l[i * n + p] * l[j * n + p] }
                if i == j {
                    guard sum > 0 else {
                        if sum.isNaN { throw LinalgError.nonFinite(operation: "cholesky", detail: "NaN reached pivot \(i + 1)") }
                        throw LinalgError.notPositiveDefinite(operation: "cholesky", order: i + 1)
                    }
                    l[i * n + i] = sum.squareRoot()
                } else {
                    l[i * n + j] = sum / l[j * n + j]
                }
            }
        }
        for i in 0..<n {
            for j in 0..<n { a.base[i * a.rowStride + j] = T(j <= i ? l[i * n + j] : 0) }
        }
    }

    /// In place: B ← op(L)⁻¹·B (left) or B ← B·op(L)⁻¹ (right), L lower triangular.
    static func solveTriangular<T: LinalgScalar>(
        _ l: MatrixPointer<T>, _ side: TriangularSide, _ t: Transpose, _ b: MutableMatrixPointer<T>
    ) {
        let n = l.rows
        func lij(_ i: Int, _ j: Int) -> Double { ReferenceBLAS.element(l, t, i, j) }  // op(L)[i, j]
        let lowerOp = t == .none  // op(L) is lower triangular when not transposed
        switch side {
        case .left:
            // op(L) X = B, column by column of B.
            for col in 0..<b.columns {
                var x = [Double](repeating: 0, count: n)
                let order = lowerOp ? Array(0..<n) : Array((0..<n).reversed())
                for i in order {
                    var sum = Double(b.base[i * b.rowStride + col])
                    let range = lowerOp ? 0..<i : (i + 1)..<n
                    for j in range { sum -= lij(i, j) * x[j] }
                    x[i] = sum / lij(i, i)
                }
                for i in 0..<n { b.base[i * b.rowStride + col] = T(x[i]) }
            }
        case .right:
            // X op(L) = B ⇔ op(L)ᵀ xᵀ = bᵀ for each row: op(L)ᵀ is upper when op(L) is lower.
            for row in 0..<b.rows {
                var x = [Double](repeating: 0, count: n)
                let order = lowerOp ? Array((0..<n).reversed()) : Array(0..<n)
                for j in order {
                    var sum = Double(b.base[row * b.rowStride + j])
                    let range = lowerOp ? (j + 1)..<n : 0..<j
                    for i in range { sum -= x[i] * lij(i, j) }
                    x[j] = sum / lij(j, j)
                }
                for j in 0..<n { b.base[row * b.rowStride + j] = T(x[j]) }
            }
        }
    }

    /// B ← op(L)·B (left) or B·op(L) (right) in Double from the definition, reading only the lower
    /// triangle of L.
    static func multiplyTriangular<T: LinalgScalar>(
        _ l: MatrixPointer<T>, _ side: TriangularSide, _ t: Transpose, _ b: MutableMatrixPointer<T>
    ) {
        let n = l.rows
        func lij(_ i: Int, _ j: Int) -> Double {  // op(L)[i, j] with the strict upper triangle of L as zero
            let (r, c) = t == .none ? (i, j) : (j, i)
            return c <= r ? Double(l.base[r * l.rowStride + c]) : 0
        }
        func at(_ i: Int, _ j: Int) -> Double { Double(b.base[i * b.rowStride + j]) }
        let product: [Double]
        switch side {
        case .left: product = (0..<(n * b.columns)).map { e in (0..<n).reduce(0.0) { $0 + lij(e / b.columns, $1) * at($1, e % b.columns) } }
        case .right: product = (0..<(b.rows * n)).map { e in (0..<n).reduce(0.0) { $0 + at(e / n, $1) * lij($1, e % n) } }
        }
        let columns = side == .left ? b.columns : n
        for (e, v) in product.enumerated() { b.base[(e / columns) * b.rowStride + e % columns] = T(v) }
    }

    /// Cyclic Jacobi eigendecomposition of a symmetric matrix in Double. Eigenvalues ascending;
    /// eigenvectors as the columns of `vectors` (n×n row-major). Converges quadratically; stops when the
    /// off-diagonal mass is below 1e-30 relative to the Frobenius norm or after 60 sweeps.
    static func symmetricEigen(_ input: [Double], n: Int) throws -> (values: [Double], vectors: [Double]) {
        var a = input
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let total = a.reduce(0) { $0 + $1 * $1 }
        var converged = n <= 1
        for _ in 0..<60 where !converged {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i * n + j] * a[i * n + j] } }
            if off <= 1e-30 * total || off == 0 { converged = true; break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n {
                    let apq = a[p * n + q]
                    if apq == 0 { continue }
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    for k in 0..<n {  // columns p, q
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {  // rows p, q
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        guard converged else {
            throw LinalgError.didNotConverge(operation: "symmetricEigen", detail: "Jacobi sweeps exhausted (n = \(n))")
        }
        let order = (0..<n).sorted { a[$0 * n + $0] < a[$1 * n + $1] }
        let values = order.map { a[$0 * n + $0] }
        var vectors = [Double](repeating: 0, count: n * n)
        for (newColumn, old) in order.enumerated() {
            for k in 0..<n { vectors[k * n + newColumn] = v[k * n + old] }
        }
        return (values, vectors)
    }
}
