import FaultlineLinalg
import _TestSupport
import Testing

@Suite("row reductions, softmax, exp")
struct ReductionTests {
    static let widths = [1, 7, 15, 16, 17, 63, 64, 65, 257]

    @Test(arguments: widths)
    func agreeWithReference(n: Int) throws {
        var a: Matrix<Float> = Oracle.random(9, n, seed: UInt64(n))
        a = a.map { $0 * 30 }  // wide range: exercises the max shift in log-sum-exp and softmax
        for backend in [Backend.simd, .blas] {
            for reduction in [Linalg.RowReduction.sum, .squaredNorm, .max, .logSumExp] {
                let ref = try Linalg.reduceRows(a, reduction, backend: .reference).map(Double.init)
                let got = try Linalg.reduceRows(a, reduction, backend: backend).map(Double.init)
                #expect(Oracle.maxRelativeDifference(got, ref, floor: 1) < 2e-6, "\(backend) \(reduction) n=\(n)")
            }
            #expect(try Linalg.rowArgmax(a, backend: backend) == Linalg.rowArgmax(a, backend: .reference))
            let s = try Linalg.softmaxRows(a, backend: backend)
            let r = try Linalg.softmaxRows(a, backend: .reference)
            #expect(Oracle.relativeError(s, r) < 1e-6)
            for sum in try Linalg.reduceRows(s, .sum, backend: .reference) { #expect(abs(sum - 1) < 1e-6) }
        }
    }

    @Test func closedForms() throws {
        let a = try Matrix<Double>([[0, Double.log(3)], [1, 1], [-5, 2]])
        for backend in Backend.allCases {
            let lse = try Linalg.reduceRows(a, .logSumExp, backend: backend)
            #expect(abs(lse[0] - Double.log(4)) < 1e-15)
            #expect(abs(lse[1] - (1 + Double.log(2))) < 1e-15)
            let s = try Linalg.softmaxRows(a, backend: backend)
            #expect(abs(s[0, 0] - 0.25) < 1e-15 && abs(s[0, 1] - 0.75) < 1e-15)
            #expect(try Linalg.rowArgmax(a, backend: backend) == [1, 0, 1])
            let maxima = try Linalg.reduceRows(a, .max, backend: backend)
            let sums = try Linalg.reduceRows(a, .sum, backend: backend)
            #expect(maxima == [Double.log(3), 1, 2])
            #expect(sums == [Double.log(3), 2, -3])
        }
    }

    @Test(arguments: Backend.allCases)
    func nanPropagatesAndArgmaxFindsFirstNaN(backend: Backend) throws {
        var a: Matrix<Float> = Oracle.random(3, 20, seed: 4)
        a[1, 11] = .nan
        a[1, 17] = .nan
        #expect(try Linalg.rowArgmax(a, backend: backend)[1] == 11)
        for reduction in [Linalg.RowReduction.sum, .max, .logSumExp] {
            let r = try Linalg.reduceRows(a, reduction, backend: backend)
            #expect(r[1].isNaN && r[0].isFinite && r[2].isFinite, "\(reduction)")
        }
        let s = try Linalg.softmaxRows(a, backend: backend)
        #expect(s.row(1).allSatisfy { $0.isNaN })
        #expect(s.row(0).allSatisfy { $0.isFinite })
    }

    @Test func emptyInputs() throws {
        #expect(try Linalg.reduceRows(Matrix<Float>(rows: 0, columns: 4), .logSumExp).isEmpty)
        #expect(throws: LinalgError.self) { try Linalg.reduceRows(Matrix<Float>(rows: 2, columns: 0), .max) }
        #expect(throws: LinalgError.self) { try Linalg.rowArgmax(Matrix<Float>(rows: 2, columns: 0)) }
        #expect(try Linalg.reduceRows(Matrix<Float>(rows: 2, columns: 0), .sum) == [0, 0])
    }

    /// The vectorised float32 exp against float64 exp rounded to float32, across its whole range.
    @Test func vectorExpWithinTwoUlp() {
        var values: [Float] = []
        var x: Float = -103.9
        while x < 88.7 { values.append(x); x += 0.0137 }
        values += [0, -0, 1e-8, -1e-8, 88.72, -87.3, 0.5 * Float.log(2)]
        let m = try! Matrix(rows: 1, columns: values.count, elements: values)
        let e = Linalg.exp(m, backend: .simd)
        var worst: Float = 0
        for (i, v) in values.enumerated() {
            let exact = Float(Double.exp(Double(v)))
            guard exact.isNormal else { continue }
            worst = max(worst, abs(e[0, i] - exact) / exact.ulp)
        }
        #expect(worst <= 2, "worst error \(worst) ulp")
        let special = Linalg.exp(try! Matrix<Float>([[.nan, .infinity, -.infinity, 89, -104, 0, 1, 2]]), backend: .simd)
        #expect(special[0, 0].isNaN && special[0, 1] == .infinity && special[0, 2] == 0)
        #expect(special[0, 3] == .infinity && special[0, 4] == 0 && special[0, 5] == 1)
    }

    /// The vectorised float32 log against float64 log rounded to float32, over the normal range.
    @Test func vectorLogWithinTwoUlp() {
        var values: [Float] = []
        var x = Float.leastNormalMagnitude
        while x < 1e30 { values.append(x); x *= 1.0173 }
        values += [1, 0.5, 2, 0.70710677, 0.7071068, 1.4142135, 3e38]
        let m = try! Matrix(rows: 1, columns: values.count, elements: values)
        let l = Linalg.log(m, backend: .simd)
        var worst: Float = 0
        for (i, v) in values.enumerated() {
            let exact = Float(Double.log(Double(v)))
            worst = max(worst, abs(l[0, i] - exact) / max(exact.ulp, Float.leastNormalMagnitude))
        }
        #expect(worst <= 2, "worst error \(worst) ulp")
        let special = Linalg.log(try! Matrix<Float>([[0, -1, .infinity, .nan, Float.leastNonzeroMagnitude * 100, 1, 1, 1]]), backend: .simd)
        #expect(special[0, 0] == -.infinity && special[0, 1].isNaN && special[0, 2] == .infinity && special[0, 3].isNaN)
        #expect(special[0, 4] == -.infinity && special[0, 5] == 0)
    }
}
