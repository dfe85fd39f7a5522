import FaultlineLinalg
import Foundation
import Testing

/// The AVX2+FMA kernels of the C shim against Double references, at every tail length (skipped on
/// CPUs without AVX2/FMA).
@Suite("AVX2 vector-math kernels", .enabled(if: Linalg.hasAVX2Kernels))
struct VectorMathKernelTests {
    @Test(arguments: [1, 7, 8, 9, 16, 17, 100])
    func xlogxAndScale(count n: Int) {
        var rng = Philox(seed: UInt64(n))
        var p = (0..<n).map { _ in Float(rng.uniform()) }
        if n > 1 { p[0] = 0 }  // 0·log 0 = 0
        let s = p.reduce(0, +)
        p = p.map { $0 / s }
        var sum = [Float](repeating: 1, count: n)
        let r = Linalg.xlogxAccumulate(p, into: &sum, count: n)
        let reference = p.reduce(0.0) { $0 + ($1 > 0 ? Double($1) * log(Double($1)) : 0) }
        #expect(abs(r.xlogx - reference) <= 1e-6 * max(1, abs(reference)) && abs(r.total - 1) < 1e-5 && !r.invalid)
        #expect(zip(sum, p).allSatisfy { $0 == 1 + $1 })
        var bad = p
        bad[n - 1] = n > 1 ? .nan : 1.5
        var scratch = [Float](repeating: 0, count: n)
        #expect(Linalg.xlogxAccumulate(bad, into: &scratch, count: n).invalid)
        var values = p.map { $0 * 3 }
        let h = Linalg.xlogxScale(&values, count: n, scale: 1.0 / 3)
        #expect(abs(h - reference) <= 1e-5 * max(1, abs(reference)))
    }

    @Test(arguments: [3, 8, 10, 13, 64])
    func shiftedExpAndArgmax(count n: Int) {
        var rng = Philox(seed: 99 &+ UInt64(n))
        var z = (0..<n).map { _ in Float(rng.normal() * 4) }
        z[n / 2] = -200  // underflows to 0
        let m = z.max()!
        var e = [Float](repeating: -1, count: n)
        let (sum, squares) = Linalg.expShifted(z, count: n, shift: m, into: &e)
        let exact = z.map { Foundation.exp(Double($0 - m)) }
        #expect(zip(e, exact).allSatisfy { abs(Double($0) - $1) <= 3e-7 * $1 + 1e-38 })
        #expect(abs(sum - exact.reduce(0, +)) <= 1e-6 * sum && abs(squares - exact.reduce(0) { $0 + $1 * $1 }) <= 1e-6 * squares)
        var row = z
        row[n - 1] = m  // a tie with the first maximum: the first one wins
        let mean = [Float](repeating: 0.5, count: n)
        let (d, arg) = Linalg.squaredDifferenceAndArgmax(row, mean, count: n)
        #expect(arg == row.firstIndex(of: row.max()!)!)
        #expect(abs(d - row.reduce(0.0) { $0 + Double($1 - 0.5) * Double($1 - 0.5) }) <= 1e-5 * d)
    }
}
