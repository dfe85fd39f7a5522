extension Linalg {
    /// Eigenvalues (ascending) and orthonormal eigenvectors (the columns of `vectors`, NumPy's `eigh`
    /// convention) of a symmetric matrix, so that A·vectors[:, i] = values[i]·vectors[:, i].
    public struct SymmetricEigendecomposition<T: LinalgScalar>: Sendable {
        /// The eigenvalues in ascending order.
        public var values: [T]
        /// The orthonormal eigenvectors, one per column, in the order of `values`.
        public var vectors: Matrix<T>
    }

    /// Symmetric eigendecomposition. Only the lower triangle of `a` is read.
    ///
    /// Backends: `blas` calls LAPACK `syevd` (divide and conquer); `simd` runs Householder
    /// tridiagonalisation + implicit QL in Double; `reference` cyclic Jacobi in Double.
    /// Eigenvector signs are arbitrary (they differ between backends).
    /// - Throws: `shapeMismatch` when not square, `nonFinite` on NaN/∞, `didNotConverge` if the
    ///   iteration fails (LAPACK info > 0).
    /// - Accuracy: ‖A·V − V·Λ‖ ≲ n·u·‖A‖, eigenvalues to ~u·‖A‖ absolute. Cost: O(n³).
    public static func symmetricEigen<T: LinalgScalar>(
        _ a: Matrix<T>, backend: Backend? = nil
    ) throws -> SymmetricEigendecomposition<T> {
        guard a.isSquare else {
            throw LinalgError.shapeMismatch(operation: "symmetricEigen", detail: "matrix is \(a.rows)×\(a.columns), must be square")
        }
        let n = a.rows
        var lower = [Double](repeating: 0, count: n * n)  // symmetric copy from the lower triangle
        for i in 0..<n {
            for j in 0...i where n > 0 {
                let x = a[i, j]
                guard x.isFinite else {
                    throw LinalgError.nonFinite(operation: "symmetricEigen", detail: "element (\(i), \(j)) is \(x)")
                }
                lower[i * n + j] = Double(x)
                lower[j * n + i] = Double(x)
            }
        }
        let backend = run(backend)
        switch backend {
        case .reference, .simd:
            let (values, vectors) = backend == .reference
                ? try ReferenceFactorizations.symmetricEigen(lower, n: n)
                : try SIMDSymmetricEigen.decompose(lower, n: n)
            return SymmetricEigendecomposition(
                values: values.map { T($0) },
                vectors: try Matrix(rows: n, columns: n, elements: vectors.map { T($0) }))
        case .blas:
            var work = try Matrix(rows: n, columns: n, elements: lower.map { T($0) })
            var values = [T](repeating: 0, count: n)
            if n == 0 { return SymmetricEigendecomposition(values: [], vectors: work) }
            let info = work.withUnsafeMutableBufferPointer { pw in
                values.withUnsafeMutableBufferPointer { NativeBLAS.syevd(n, pw.baseAddress!, n, $0.baseAddress!) }
            }
            if info > 0 {
                throw LinalgError.didNotConverge(operation: "symmetricEigen", detail: "LAPACK syevd info = \(info)")
            }
            precondition(info == 0, "syevd rejected argument \(-info)")
            return SymmetricEigendecomposition(values: values, vectors: work.transposed())  // rows → columns
        }
    }
}
