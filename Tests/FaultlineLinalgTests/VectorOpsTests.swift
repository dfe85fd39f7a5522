import FaultlineLinalg
import _TestSupport
import Testing

@Suite("gemv, dot, axpy, syrk")
struct VectorOpsTests {
    static let sizes = [0, 1, 7, 15, 16, 17, 63, 64, 65, 257, 2049]

    @Test(arguments: sizes)
    func dotAndAxpy(n: Int) throws {
        var rng = Philox(seed: UInt64(n))
        let x = (0..<n).map { _ in Float(rng.uniform() - 0.5) }
        let y = (0..<n).map { _ in Float(rng.uniform() - 0.5) }
        let exact = zip(x, y).map { Double($0) * Double($1) }.reduce(0, +)
        let scale = zip(x, y).map { abs(Double($0) * Double($1)) }.reduce(0, +)
        for backend in Backend.allCases {
            let d = try Linalg.dot(x, y, backend: backend)
            #expect(abs(Double(d) - exact) <= 4 * Double(n + 1).squareRoot() * Float.unitRoundoff * scale + 1e-12, "\(backend) n=\(n)")
            var z = y
            try Linalg.axpy(Float(0.3), x, &z, backend: backend)
            for i in 0..<n { #expect(abs(Double(z[i]) - (0.3 * Double(x[i]) + Double(y[i]))) <= 1e-6) }
        }
        #expect(throws: LinalgError.self) { try Linalg.dot(x, [Float](repeating: 0, count: n + 1)) }
    }

    @Test(arguments: sizes.filter { $0 <= 257 })
    func gemvAgreesWithReference(n: Int) throws {
        for t in [Transpose.none, .transposed] {
            let a: Matrix<Double> = Oracle.random(n + 2, n, seed: 5)
            let x: [Double] = t == .none ? Oracle.random(1, n, seed: 6).elements : Oracle.random(1, n + 2, seed: 6).elements
            let y0: [Double] = t == .none ? Oracle.random(1, n + 2, seed: 7).elements : Oracle.random(1, n, seed: 7).elements
            var expected = y0
            try Linalg.gemv(a, x, transA: t, alpha: 1.5, beta: 0.25, into: &expected, backend: .reference)
            let xm = try Matrix(rows: x.count, columns: 1, elements: x)
            let product = Oracle.product(a, xm, transA: t).map { $0[0] }
            let oracle = zip(product, y0).map { 1.5 * $0 + 0.25 * $1 }
            #expect(Oracle.maxRelativeDifference(expected, oracle, floor: 1) < 1e-12)
            for backend in [Backend.simd, .blas] {
                var y = y0
                try Linalg.gemv(a, x, transA: t, alpha: 1.5, beta: 0.25, into: &y, backend: backend)
                #expect(Oracle.maxRelativeDifference(y, oracle, floor: 1) < 1e-12, "\(backend) \(t) n=\(n)")
            }
        }
    }

    @Test(arguments: [0, 1, 7, 16, 17, 65, 257])
    func syrkIsSymmetricAndAgrees(n: Int) throws {
        for t in [Transpose.none, .transposed] {
            let k = n + 5
            let a: Matrix<Float> = t == .none ? Oracle.random(n, k, seed: 9) : Oracle.random(k, n, seed: 9)
            let c0: Matrix<Float> = Oracle.spd(n, seed: 10)
            var oracle = Oracle.product(a, a, transA: t, transB: t == .none ? .transposed : .none)
            let c0d = Oracle.lift(c0)
            for i in 0..<n { for j in 0..<n { oracle[i][j] = 0.5 * oracle[i][j] + 2 * c0d[i][j] } }
            for backend in Backend.allCases {
                var c = c0
                try Linalg.syrk(a, transA: t, alpha: 0.5, beta: 2, into: &c, backend: backend)
                #expect(c == c.transposed(), "\(backend) not symmetric")
                #expect(Oracle.relativeError(c, oracle) <= Tolerance.accumulated(Float.self, k: k), "\(backend) \(t) n=\(n)")
            }
        }
    }
}
