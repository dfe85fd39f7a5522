#if canImport(Glibc)
import Glibc
#endif

/// The `simd` backend's symmetric eigendecomposition: Householder reduction to tridiagonal form
/// followed by the implicit QL algorithm with Wilkinson-style shifts (the EISPACK tred2/tql2 pair, as
/// in JAMA), in `Double`, O(n³). The plane rotations of the QL phase act on rows of the transposed
/// eigenvector matrix, i.e. on contiguous memory. An algorithm independent of the reference backend's
/// Jacobi iteration, so each checks the other.
///
/// Output: eigenvalues ascending; eigenvectors as the columns of an n×n row-major array.
enum SIMDSymmetricEigen {
    static func decompose(_ a: [Double], n: Int) throws -> (values: [Double], vectors: [Double]) {
        if n == 0 { return ([], []) }
        var v = a  // v[i*n+j] = V[i][j]
        var d = [Double](repeating: 0, count: n)
        var e = [Double](repeating: 0, count: n)
        tridiagonalize(&v, &d, &e, n)
        var vt = [Double](repeating: 0, count: n * n)  // vt[j*n+k] = V[k][j]: rotations touch rows
        for i in 0..<n { for j in 0..<n { vt[j * n + i] = v[i * n + j] } }
        try diagonalize(&vt, &d, &e, n)
        let order = (0..<n).sorted { d[$0] < d[$1] }
        var vectors = [Double](repeating: 0, count: n * n)
        for (column, old) in order.enumerated() {
            for k in 0..<n { vectors[k * n + column] = vt[old * n + k] }
        }
        return (order.map { d[$0] }, vectors)
    }

    /// Householder reduction (tred2): on exit d is the diagonal, e[1...] the sub-diagonal, and v the
    /// accumulated orthogonal transformation.
    private static func tridiagonalize(_ v: inout [Double], _ d: inout [Double], _ e: inout [Double], _ n: Int) {
        for j in 0..<n { d[j] = v[(n - 1) * n + j] }
        for i in stride(from: n - 1, to: 0, by: -1) {
            var scale = 0.0, h = 0.0
            for k in 0..<i { scale += abs(d[k]) }
            if scale == 0 {
                e[i] = d[i - 1]
                for j in 0..<i {
                    d[j] = v[(i - 1) * n + j]
                    v[i * n + j] = 0
                    v[j * n + i] = 0
                }
            } else {
                for k in 0..<i { d[k] /= scale; h += d[k] * d[k] }
                var f = d[i - 1]
                var g = h.squareRoot()
                if f > 0 { g = -g }
                e[i] = scale * g
                h -= f * g
                d[i - 1] = f - g
                for j in 0..<i { e[j] = 0 }
                for j in 0..<i {
                    f = d[j]
                    v[j * n + i] = f
                    g = e[j] + v[j * n + j] * f
                    var k = j + 1
                    while k <= i - 1 {
                        g += v[k * n + j] * d[k]
                        e[k] += v[k * n + j] * f
                        k += 1
                    }
                    e[j] = g
                }
                f = 0
                for j in 0..<i { e[j] /= h; f += e[j] * d[j] }
                let hh = f / (h + h)
                for j in 0..<i { e[j] -= hh * d[j] }
                for j in 0..<i {
                    f = d[j]
                    g = e[j]
                    for k in j...(i - 1) { v[k * n + j] -= f * e[k] + g * d[k] }
                    d[j] = v[(i - 1) * n + j]
                    v[i * n + j] = 0
                }
            }
            d[i] = h
        }
        for i in 0..<(n - 1) {
            v[(n - 1) * n + i] = v[i * n + i]
            v[i * n + i] = 1
            let h = d[i + 1]
            if h != 0 {
                for k in 0...i { d[k] = v[k * n + i + 1] / h }
                for j in 0...i {
                    var g = 0.0
                    for k in 0...i { g += v[k * n + i + 1] * v[k * n + j] }
                    for k in 0...i { v[k * n + j] -= g * d[k] }
                }
            }
            for k in 0...i { v[k * n + i + 1] = 0 }
        }
        for j in 0..<n { d[j] = v[(n - 1) * n + j]; v[(n - 1) * n + j] = 0 }
        v[(n - 1) * n + n - 1] = 1
        e[0] = 0
    }

    /// Implicit QL on the tridiagonal (tql2). `vt` holds the eigenvectors as rows.
    private static func diagonalize(_ vt: inout [Double], _ d: inout [Double], _ e: inout [Double], _ n: Int) throws {
        for i in 1..<max(n, 1) { e[i - 1] = e[i] }
        e[n - 1] = 0
        var f = 0.0, tst1 = 0.0
        let eps = Double.ulpOfOne
        for l in 0..<n {
            tst1 = max(tst1, abs(d[l]) + abs(e[l]))
            var m = l
            while m < n - 1 && abs(e[m]) > eps * tst1 { m += 1 }
            if m > l {
                var iterations = 0
                repeat {
                    iterations += 1
                    if iterations > 60 {
                        throw LinalgError.didNotConverge(operation: "symmetricEigen", detail: "QL iteration on eigenvalue \(l)")
                    }
                    var g = d[l]
                    var p = (d[l + 1] - g) / (2 * e[l])
                    var r = hypot(p, 1)
                    if p < 0 { r = -r }
                    d[l] = e[l] / (p + r)
                    d[l + 1] = e[l] * (p + r)
                    let dl1 = d[l + 1]
                    var h = g - d[l]
                    for i in (l + 2)..<max(n, l + 2) { d[i] -= h }
                    f += h
                    p = d[m]
                    var c = 1.0, c2 = 1.0, c3 = 1.0, s = 0.0, s2 = 0.0
                    let el1 = e[l + 1]
                    for i in stride(from: m - 1, through: l, by: -1) {
                        c3 = c2; c2 = c; s2 = s
                        g = c * e[i]
                        h = c * p
                        r = hypot(p, e[i])
                        e[i + 1] = s * r
                        s = e[i] / r
                        c = p / r
                        p = c * d[i] - s * g
                        d[i + 1] = h + s * (c * g + s * d[i])
                        vt.withUnsafeMutableBufferPointer { rotate($0.baseAddress!, rowA: i, rowB: i + 1, n: n, c: c, s: s) }
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1
                    e[l] = s * p
                    d[l] = c * p
                } while abs(e[l]) > eps * tst1
            }
            d[l] += f
            e[l] = 0
        }
    }

    /// (rowB, rowA) ← (s·rowA + c·rowB, c·rowA − s·rowB), vectorised over contiguous rows.
    @inline(__always)
    private static func rotate(_ vt: UnsafeMutablePointer<Double>, rowA: Int, rowB: Int, n: Int, c: Double, s: Double) {
        let a = vt + rowA * n, b = vt + rowB * n
        let vc = SIMD4<Double>(repeating: c), vs = SIMD4<Double>(repeating: s)
        var k = 0
        while k + 4 <= n {
            let x = SIMDVectorKernels.load(UnsafePointer(a + k)), y = SIMDVectorKernels.load(UnsafePointer(b + k))
            SIMDVectorKernels.store(vs * x + vc * y, b + k)
            SIMDVectorKernels.store(vc * x - vs * y, a + k)
            k += 4
        }
        while k < n {
            let x = a[k], y = b[k]
            b[k] = s * x + c * y
            a[k] = c * x - s * y
            k += 1
        }
    }
}
