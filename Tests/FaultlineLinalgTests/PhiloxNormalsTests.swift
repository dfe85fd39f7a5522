import FaultlineLinalg
import Foundation
import Testing

/// `Philox.fillNormals` against its scalar Double definition, and range independence.
@Suite("Philox normals")
struct PhiloxNormalsTests {
    /// Normal t = 32g + 8k + l is Box–Muller output k of block 8g + l (see the doc comment).
    static func reference(_ t: Int, seed: UInt64, stream: UInt64) -> Double {
        let g = t / 32, k = (t % 32) / 8, l = t % 8, block = UInt64(8 * g + l)
        let w = Philox.block(key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)),
                             counter: (UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32),
                                       UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)))
        let (a, b) = k < 2 ? (w.0, w.1) : (w.2, w.3)
        let r = (-2 * log(1 - Double(a >> 9) * 0x1p-23)).squareRoot(), theta = 2 * Double.pi * Double(b >> 9) * 0x1p-23
        return k % 2 == 0 ? r * cos(theta) : r * sin(theta)
    }

    @Test func matchesTheScalarDefinition() {
        let n = 50_000, start = 1_000_003
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { out.deallocate() }
        Philox.fillNormals(out, start: start, count: n, seed: 0xDEAD_BEEF_1234, stream: 77)
        var worst = 0.0
        for i in 0..<n { worst = max(worst, abs(Double(out[i]) - Self.reference(start + i, seed: 0xDEAD_BEEF_1234, stream: 77))) }
        #expect(worst <= 2e-6, "max error \(worst)")
        // Across the carry of the 32-bit block counter.
        let high = 4 * (1 << 32) - 40
        Philox.fillNormals(out, start: high, count: 100, seed: 1, stream: 2)
        #expect((0..<100).allSatisfy { abs(Double(out[$0]) - Self.reference(high + $0, seed: 1, stream: 2)) <= 2e-6 })
    }

    @Test func anyRangeEqualsTheSliceOfTheWhole() {
        let n = 1000
        let whole = UnsafeMutablePointer<Float>.allocate(capacity: n), part = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { whole.deallocate(); part.deallocate() }
        Philox.fillNormals(whole, start: 0, count: n, seed: 5, stream: 1)
        for (lo, hi) in [(0, 1), (7, 45), (31, 33), (64, 96), (100, 1000), (999, 1000)] {
            Philox.fillNormals(part, start: lo, count: hi - lo, seed: 5, stream: 1)
            #expect((lo..<hi).allSatisfy { whole[$0] == part[$0 - lo] }, "range \(lo)..<\(hi)")
        }
    }

    @Test func momentsOfAMillionDraws() {
        let n = 1 << 20
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { out.deallocate() }
        Philox.fillNormals(out, start: 0, count: n, seed: 9, stream: 3)
        var s = 0.0, s2 = 0.0, s4 = 0.0
        for i in 0..<n { let v = Double(out[i]); s += v; s2 += v * v; s4 += v * v * v * v }
        let nn = Double(n)
        #expect(abs(s / nn) <= 4 / nn.squareRoot())
        #expect(abs(s2 / nn - 1) <= 4 * 2.0.squareRoot() / nn.squareRoot())
        #expect(abs(s4 / nn - 3) <= 4 * 96.0.squareRoot() / nn.squareRoot())
    }
}
