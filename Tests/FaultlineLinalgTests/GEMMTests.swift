import FaultlineLinalg
import _TestSupport
import Testing

/// simd and blas against the reference backend, and every backend against the float64 triple loop.
@Suite("gemm agreement")
struct GEMMTests {
    static let sizes = [0, 1, 7, 15, 16, 17, 63, 64, 65, 257]
    static let transposes: [(Transpose, Transpose)] = [(.none, .none), (.transposed, .none), (.none, .transposed), (.transposed, .transposed)]

    /// op(A) m×k, op(B) k×n, with m, n, k all derived from `s` so every edge case of the micro-kernel
    /// (6-row and vector-width tiles) and of the k blocking is hit.
    static func shapes(_ s: Int) -> [(m: Int, n: Int, k: Int)] {
        [(s, s, s), (s, max(s - 1, 0) + 2, s + 3), (s + 5, s, max(s / 2, 1))]
    }

    func check<T: LinalgScalar>(_: T.Type, size s: Int, backend: Backend) throws {
        for (m, n, k) in Self.shapes(s) {
            for (ta, tb) in Self.transposes {
                let a: Matrix<T> = ta == .none ? Oracle.random(m, k, seed: 1) : Oracle.random(k, m, seed: 1)
                let b: Matrix<T> = tb == .none ? Oracle.random(k, n, seed: 2) : Oracle.random(n, k, seed: 2)
                let c0: Matrix<T> = Oracle.random(m, n, seed: 3)
                let alpha: T = 0.75, beta: T = -0.5
                var c = c0
                try Linalg.gemm(a, b, transA: ta, transB: tb, alpha: alpha, beta: beta, into: &c, backend: backend)
                var expected = Oracle.product(a, b, transA: ta, transB: tb)
                let c0d = Oracle.lift(c0)
                for i in 0..<m { for j in 0..<n { expected[i][j] = 0.75 * expected[i][j] - 0.5 * c0d[i][j] } }
                let error = Oracle.relativeError(c, expected)
                let tolerance = Tolerance.accumulated(T.self, k: k)
                #expect(error <= tolerance, "\(backend) \(T.dtypeName) m=\(m) n=\(n) k=\(k) \(ta)/\(tb): error \(error) > \(tolerance)")
            }
        }
    }

    @Test(arguments: sizes)
    func simdFloat(size: Int) throws { try check(Float.self, size: size, backend: .simd) }

    @Test(arguments: sizes)
    func simdDouble(size: Int) throws { try check(Double.self, size: size, backend: .simd) }

    @Test(arguments: sizes)
    func blasFloat(size: Int) throws { try check(Float.self, size: size, backend: .blas) }

    @Test(arguments: sizes)
    func blasDouble(size: Int) throws { try check(Double.self, size: size, backend: .blas) }

    @Test(arguments: [0, 1, 7, 17, 64])
    func referenceAgainstTripleLoop(size: Int) throws {
        try check(Double.self, size: size, backend: .reference)
        try check(Float.self, size: size, backend: .reference)
    }

    @Test(arguments: [Backend.simd, .blas])
    func simdAndBlasAgreeWithReference(backend: Backend) throws {
        let a: Matrix<Float> = Oracle.random(65, 129, seed: 7)
        let b: Matrix<Float> = Oracle.random(129, 33, seed: 8)
        let ref = try Linalg.matmul(a, b, backend: .reference)
        let got = try Linalg.matmul(a, b, backend: backend)
        #expect(Oracle.relativeError(got, ref) <= Tolerance.accumulated(Float.self, k: 129))
    }

    /// Large sizes: the residual C·t against alpha·A·(B·t) + beta·C0·t, computed in Double with
    /// matrix–vector products only (O(n²) instead of the O(n³) oracle).
    @Test(arguments: [Backend.simd, .blas])
    func largeResidual(backend: Backend) throws {
        let n = 1024, k = 1031
        for (ta, tb) in Self.transposes {
            let a: Matrix<Float> = Oracle.random(ta == .none ? n : k, ta == .none ? k : n, seed: 11)
            let b: Matrix<Float> = Oracle.random(tb == .none ? k : n + 1, tb == .none ? n + 1 : k, seed: 12)
            let c0: Matrix<Float> = Oracle.random(n, n + 1, seed: 13)
            var c = c0
            try Linalg.gemm(a, b, transA: ta, transB: tb, alpha: 2, beta: 0.5, into: &c, backend: backend)
            var rng = Philox(seed: 14)
            let t = (0..<(n + 1)).map { _ in rng.uniform() - 0.5 }
            let bt = apply(b, tb, t)
            let abt = apply(a, ta, bt)
            let c0t = apply(c0, .none, t)
            let expected = zip(abt, c0t).map { 2 * $0 + 0.5 * $1 }
            let got = apply(c, .none, t)
            let num = zip(got, expected).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            let den = expected.map { $0 * $0 }.reduce(0, +).squareRoot()
            #expect(num / den < 1e-5, "\(backend) \(ta)/\(tb): residual \(num / den)")
        }
    }

    private func apply(_ m: Matrix<Float>, _ t: Transpose, _ x: [Double]) -> [Double] {
        let rows = t == .none ? m.rows : m.columns, cols = t == .none ? m.columns : m.rows
        precondition(cols == x.count)
        var y = [Double](repeating: 0, count: rows)
        for i in 0..<m.rows {
            for j in 0..<m.columns {
                if t == .none { y[i] += Double(m[i, j]) * x[j] } else { y[j] += Double(m[i, j]) * x[i] }
            }
        }
        return y
    }

    @Test func shapeMismatchThrows() {
        let a = Matrix<Float>(rows: 3, columns: 4)
        let b = Matrix<Float>(rows: 5, columns: 2)
        var c = Matrix<Float>(rows: 3, columns: 2)
        #expect(throws: LinalgError.self) { try Linalg.gemm(a, b, into: &c) }
        #expect(throws: LinalgError.self) { try Linalg.matmul(a, a) }
    }

    @Test(arguments: [Backend.reference, .simd, .blas])
    func nanPropagatesAndBetaZeroIgnoresC(backend: Backend) throws {
        var a: Matrix<Float> = Oracle.random(9, 9, seed: 1)
        a[2, 3] = .nan
        let b: Matrix<Float> = Oracle.random(9, 9, seed: 2)
        var c = Matrix<Float>(rows: 9, columns: 9, repeating: .nan)
        try Linalg.gemm(a, b, into: &c, backend: backend)
        for j in 0..<9 { #expect(c[2, j].isNaN) }
        for i in 0..<9 where i != 2 { for j in 0..<9 { #expect(c[i, j].isFinite) } }
    }
}
