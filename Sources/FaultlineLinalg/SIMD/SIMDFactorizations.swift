/// The `simd` backend's Cholesky and triangular solves. Both are written so the innermost loop runs
/// over contiguous memory (rows of a row-major matrix) as a SIMD dot product or axpy.
enum SIMDFactorizations {
    /// Lower Cholesky in place, row by row (the Cholesky–Crout order):
    /// L[i][j] = (A[i][j] − ⟨L[i][0..<j], L[j][0..<j]⟩) / L[j][j], with contiguous row dots.
    /// O(n³/3) flops. The strict upper triangle is zeroed. Accuracy: backward stable like LAPACK's potrf.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func cholesky<T: LinalgScalar>(_ a: MutableMatrixPointer<T>) throws {
        let n = a.rows, ld = a.rowStride
        for i in 0..<n {
            let rowI = a.base + i * ld
            for j in 0..<i {
                let rowJ = a.base + j * ld
                rowI[j] = (rowI[j] - SIMDVectorKernels.dot(j, rowI, rowJ)) / rowJ[j]
            }
            let d = rowI[i] - SIMDVectorKernels.dot(i, rowI, rowI)
            guard d > 0 else {
                if d.isNaN { throw LinalgError.nonFinite(operation: "cholesky", detail: "NaN reached pivot \(i + 1)") }
                throw LinalgError.notPositiveDefinite(operation: "cholesky", order: i + 1)
            }
            rowI[i] = d.squareRoot()
            if i + 1 < n { (rowI + i + 1).update(repeating: 0, count: n - i - 1) }
        }
    }

    /// In place: B ← op(L)·B (left) or B ← B·op(L) (right), L lower triangular (n×n). Each case runs
    /// in the order that reads inputs before they are overwritten, with contiguous dots or axpys.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func multiplyTriangular<T: LinalgScalar>(
        _ l: MatrixPointer<T>, _ side: TriangularSide, _ t: Transpose, _ b: MutableMatrixPointer<T>
    ) {
        let n = l.rows, ldl = l.rowStride, ldb = b.rowStride
        switch (side, t) {
        case (.left, .none):
            // Row i of L·B = Σ_{j≤i} L[i,j]·B[j,:]: from the last row up, rows above are still inputs.
            for i in stride(from: n - 1, through: 0, by: -1) {
                let bi = b.base + i * ldb
                scaleRow(bi, b.columns, by: l.base[i * ldl + i])
                for j in 0..<i { SIMDVectorKernels.axpy(b.columns, l.base[i * ldl + j], UnsafePointer(b.base + j * ldb), bi) }
            }
        case (.left, .transposed):
            // Row i of Lᵀ·B = Σ_{j≥i} L[j,i]·B[j,:]: from the first row down; row j adds L[j,i]·B[j,:] to rows i < j.
            for j in 0..<n {
                let bj = b.base + j * ldb
                for i in 0..<j { SIMDVectorKernels.axpy(b.columns, l.base[j * ldl + i], UnsafePointer(bj), b.base + i * ldb) }
                scaleRow(bj, b.columns, by: l.base[j * ldl + j])
            }
        case (.right, .transposed):
            // x·Lᵀ: entry i = ⟨L[i, 0...i], x[0...i]⟩, from the last entry down.
            for r in 0..<b.rows {
                let x = b.base + r * ldb
                for i in stride(from: n - 1, through: 0, by: -1) { x[i] = SIMDVectorKernels.dot(i + 1, l.base + i * ldl, UnsafePointer(x)) }
            }
        case (.right, .none):
            // x·L = Σ_i x[i]·L[i, 0...i]: entry j needs x[j...]; x[i] is still an input when
            // step i scatters it into the entries before it.
            for r in 0..<b.rows {
                let x = b.base + r * ldb
                for i in 0..<n {
                    let xi = x[i]
                    SIMDVectorKernels.axpy(i, xi, l.base + i * ldl, x)
                    x[i] = xi * l.base[i * ldl + i]
                }
            }
        }
    }

    /// In place: B ← op(L)⁻¹·B (left) or B ← B·op(L)⁻¹ (right), L lower triangular (n×n).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func solveTriangular<T: LinalgScalar>(
        _ l: MatrixPointer<T>, _ side: TriangularSide, _ t: Transpose, _ b: MutableMatrixPointer<T>
    ) {
        let n = l.rows, ldl = l.rowStride, ldb = b.rowStride
        switch (side, t) {
        case (.left, .none):
            // L X = B: X[i,:] = (B[i,:] − Σ_{j<i} L[i,j] X[j,:]) / L[i,i]
            for i in 0..<n {
                let xi = b.base + i * ldb
                for j in 0..<i { SIMDVectorKernels.axpy(b.columns, -l.base[i * ldl + j], UnsafePointer(b.base + j * ldb), xi) }
                scaleRow(xi, b.columns, by: 1 / l.base[i * ldl + i])
            }
        case (.left, .transposed):
            // Lᵀ X = B, backwards: X[i,:] = (B[i,:] − Σ_{j>i} L[j,i] X[j,:]) / L[i,i]; done column-oriented:
            // once X[i,:] is final, subtract L[i,j]·X[i,:] from rows j < i (row i of L is contiguous).
            for i in stride(from: n - 1, through: 0, by: -1) {
                let xi = b.base + i * ldb
                scaleRow(xi, b.columns, by: 1 / l.base[i * ldl + i])
                for j in 0..<i { SIMDVectorKernels.axpy(b.columns, -l.base[i * ldl + j], UnsafePointer(xi), b.base + j * ldb) }
            }
        case (.right, .transposed):
            // X Lᵀ = B ⇔ for each row x of X: L xᵀ = bᵀ, forward substitution with contiguous dots.
            for r in 0..<b.rows {
                let x = b.base + r * ldb
                for i in 0..<n {
                    let li = l.base + i * ldl
                    x[i] = (x[i] - SIMDVectorKernels.dot(i, li, UnsafePointer(x))) / li[i]
                }
            }
        case (.right, .none):
            // X L = B ⇔ Lᵀ xᵀ = bᵀ per row: backwards, subtracting x_i·L[i, 0..<i] (contiguous) from x[0..<i].
            for r in 0..<b.rows {
                let x = b.base + r * ldb
                for i in stride(from: n - 1, through: 0, by: -1) {
                    let li = l.base + i * ldl
                    x[i] /= li[i]
                    SIMDVectorKernels.axpy(i, -x[i], li, x)
                }
            }
        }
    }

    @inline(__always)
    static func scaleRow<T: LinalgScalar>(_ x: UnsafeMutablePointer<T>, _ n: Int, by s: T) {
        for j in 0..<n { x[j] *= s }
    }
}
