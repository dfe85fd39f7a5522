import FaultlineLinalg
import _TestSupport
import Testing

@Suite("Cholesky, triangular solves, symmetric eigen")
struct FactorizationTests {
    static let sizes = [0, 1, 7, 15, 16, 17, 63, 64, 65, 257]

    @Test(arguments: sizes)
    func choleskyReconstructsAndAgrees(n: Int) throws {
        let a: Matrix<Double> = Oracle.spd(n, seed: UInt64(n) + 1)
        let reference = try Linalg.cholesky(a, backend: .reference)
        for backend in Backend.allCases {
            let l = try Linalg.cholesky(a, backend: backend)
            for i in 0..<n { for j in (i + 1)..<max(n, i + 1) { #expect(l[i, j] == 0) } }
            let llt = Oracle.product(l, l, transB: .transposed)
            #expect(Oracle.relativeError(llt, Oracle.lift(a)) < 1e-13, "\(backend) n=\(n)")
            #expect(Oracle.relativeError(l, reference) < 1e-10, "\(backend) vs reference n=\(n)")
        }
        let af = a.converted(to: Float.self)
        for backend in Backend.allCases {
            let l = try Linalg.cholesky(af, backend: backend)
            #expect(Oracle.relativeError(Oracle.product(l, l, transB: .transposed), Oracle.lift(af)) < 1e-5)
        }
    }

    @Test(arguments: Backend.allCases)
    func choleskyNamesTheFailingPivot(backend: Backend) throws {
        var a = Matrix<Double>.identity(6)
        a[3, 3] = -1
        #expect(throws: LinalgError.notPositiveDefinite(operation: "cholesky", order: 4)) {
            try Linalg.cholesky(a, backend: backend)
        }
        var b = Matrix<Float>.identity(4)
        b[2, 1] = .nan
        #expect(throws: LinalgError.self) { try Linalg.cholesky(b, backend: backend) }
        #expect(throws: LinalgError.self) { try Linalg.cholesky(Matrix<Float>(rows: 2, columns: 3), backend: backend) }
    }

    /// Σ = L·Lᵀ at a large size: L·(Lᵀ·x) against Σ·x, matrix–vector products only.
    @Test(arguments: [Backend.simd, .blas])
    func largeCholeskyResidual(backend: Backend) throws {
        let n = 700
        let sigma: Matrix<Float> = Oracle.spd(n, seed: 99)
        let l = try Linalg.cholesky(sigma, backend: backend)
        var rng = Philox(seed: 5)
        let x = (0..<n).map { _ in rng.uniform() - 0.5 }
        let ld = Oracle.lift(l), sd = Oracle.lift(sigma)
        let ltx = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + ld[$1][i] * x[$1] } }
        let lltx = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + ld[i][$1] * ltx[$1] } }
        let sx = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + sd[i][$1] * x[$1] } }
        #expect(Oracle.maxRelativeDifference(lltx, sx, floor: 1e-2) < 1e-4)
    }

    @Test(arguments: [1, 7, 16, 17, 65, 257])
    func triangularSolvesSatisfyTheirEquation(n: Int) throws {
        let l = try Linalg.cholesky(Oracle.spd(n, seed: 3) as Matrix<Double>)
        for side in [TriangularSide.left, .right] {
            for t in [Transpose.none, .transposed] {
                let b: Matrix<Double> = side == .left ? Oracle.random(n, 5, seed: 4) : Oracle.random(6, n, seed: 4)
                for backend in Backend.allCases {
                    let x = try Linalg.solveTriangular(l, b, side: side, transL: t, backend: backend)
                    let back = side == .left ? Oracle.product(l, x, transA: t) : Oracle.product(x, l, transB: t)
                    #expect(Oracle.relativeError(back, Oracle.lift(b)) < 1e-11, "\(backend) \(side) \(t) n=\(n)")
                }
            }
        }
        #expect(throws: LinalgError.self) { try Linalg.solveTriangular(l, Matrix<Double>(rows: n + 1, columns: 2)) }
    }

    /// The triangular product against the float64 product of the lower triangle, every backend and
    /// case; the strict upper triangle of the factor is garbage and must not be read.
    @Test(arguments: [1, 7, 16, 17, 65, 257])
    func triangularProductsEqualTheDenseProduct(n: Int) throws {
        var l: Matrix<Double> = Oracle.random(n, n, seed: 8)
        var lower = l
        for i in 0..<n { for j in (i + 1)..<max(n, i + 1) { lower[i, j] = 0; l[i, j] = .nan } }
        for side in [TriangularSide.left, .right] {
            for t in [Transpose.none, .transposed] {
                let b: Matrix<Double> = side == .left ? Oracle.random(n, 5, seed: 9) : Oracle.random(6, n, seed: 9)
                let expected = side == .left ? Oracle.product(lower, b, transA: t) : Oracle.product(b, lower, transB: t)
                for backend in Backend.allCases {
                    let got = try Linalg.multiplyTriangular(l, b, side: side, transL: t, backend: backend)
                    #expect(Oracle.relativeError(got, expected) < 1e-13, "\(backend) \(side) \(t) n=\(n)")
                }
                let single = try Linalg.multiplyTriangular(lower.converted(to: Float.self), b.converted(to: Float.self), side: side, transL: t)
                #expect(Oracle.relativeError(single.converted(to: Double.self), expected) < 1e-5, "float \(side) \(t) n=\(n)")
            }
        }
        #expect(throws: LinalgError.self) { try Linalg.multiplyTriangular(l, Matrix<Double>(rows: n + 1, columns: 2)) }
    }

    @Test func choleskySolve() throws {
        let a: Matrix<Double> = Oracle.spd(40, seed: 8)
        let b: Matrix<Double> = Oracle.random(40, 3, seed: 9)
        for backend in Backend.allCases {
            let x = try Linalg.choleskySolve(Linalg.cholesky(a, backend: backend), b, backend: backend)
            #expect(Oracle.relativeError(Oracle.product(a, x), Oracle.lift(b)) < 1e-11)
        }
    }

    @Test func eigenClosedForms() throws {
        let a = try Matrix<Double>([[2, 1], [1, 2]])
        for backend in Backend.allCases {
            let e = try Linalg.symmetricEigen(a, backend: backend)
            #expect(abs(e.values[0] - 1) < 1e-14 && abs(e.values[1] - 3) < 1e-14, "\(backend)")
            #expect(abs(abs(e.vectors[0, 1]) - 0.5.squareRoot()) < 1e-14)
        }
        var d = Matrix<Float>(rows: 4, columns: 4)
        for (i, v) in [3, -1, 2, 0.5].enumerated() { d[i, i] = Float(v) }
        for backend in Backend.allCases {
            #expect(try Linalg.symmetricEigen(d, backend: backend).values == [-1, 0.5, 2, 3])
        }
    }

    @Test(arguments: [0, 1, 7, 16, 17, 64, 65, 130])
    func eigenResidualOrthogonalityAgreement(n: Int) throws {
        var a: Matrix<Double> = Oracle.random(n, n, seed: 21)
        a = a.map { $0 }
        for i in 0..<n { for j in 0..<i { a[i, j] = a[j, i] } }  // symmetric, indefinite
        let reference = try Linalg.symmetricEigen(a, backend: .reference)
        for backend in Backend.allCases {
            let e = try Linalg.symmetricEigen(a, backend: backend)
            #expect(Oracle.maxRelativeDifference(e.values, reference.values, floor: 1) < 1e-12, "\(backend) n=\(n)")
            let av = Oracle.product(a, e.vectors)
            var vl = Oracle.lift(e.vectors)
            for i in 0..<n { for j in 0..<n { vl[i][j] *= e.values[j] } }
            #expect(Oracle.relativeError(av, vl) < 1e-12 || n == 0, "\(backend) residual n=\(n)")
            let vtv = Oracle.product(e.vectors, e.vectors, transA: .transposed)
            #expect(Oracle.relativeError(vtv, Oracle.lift(Matrix<Double>.identity(n))) < 1e-12 || n == 0)
        }
        let af = a.converted(to: Float.self)
        let ef = try Linalg.symmetricEigen(af, backend: .blas)
        #expect(Oracle.maxRelativeDifference(ef.values.map(Double.init), reference.values, floor: 1) < 1e-4)
    }

    @Test func eigenRejectsNonFiniteAndNonSquare() {
        var a = Matrix<Double>.identity(3)
        a[2, 0] = .infinity
        for backend in Backend.allCases {
            #expect(throws: LinalgError.self) { try Linalg.symmetricEigen(a, backend: backend) }
            #expect(throws: LinalgError.self) { try Linalg.symmetricEigen(Matrix<Double>(rows: 2, columns: 3), backend: backend) }
        }
    }
}
