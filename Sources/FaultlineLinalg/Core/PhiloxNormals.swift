#if canImport(Glibc)
import Glibc
#endif

extension Philox {
    /// Writes the standard normals z[t], t in start..<start + count, of the stream (seed, stream):
    /// block ⌊t/4⌋ of Philox4x32-10 gives z[4b…4b+3] by Box–Muller on its two word pairs (both the
    /// cosine and the sine branch). Any range can be generated on its own, so results do not depend on
    /// how a caller splits the draws into batches. Float32 uniforms (24 bits, u₁ in (0, 1]) bound
    /// |z| ≤ 5.77; cost ≈ one Philox block, one log, one square root and one sin/cos pair per two normals.
    public static func fillNormals(_ out: UnsafeMutablePointer<Float>, start: Int, count: Int, seed: UInt64, stream: UInt64) {
        guard count > 0 else { return }
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        let s0 = UInt32(truncatingIfNeeded: stream), s1 = UInt32(truncatingIfNeeded: stream >> 32)
        let first = start / 4, last = (start + count - 1) / 4
        var quad = (Float(0), Float(0), Float(0), Float(0))
        for b in first...last {
            let w = block(key: key, counter: (UInt32(truncatingIfNeeded: b), UInt32(truncatingIfNeeded: b >> 32), s0, s1))
            let (z0, z1) = boxMuller(w.0, w.1), (z2, z3) = boxMuller(w.2, w.3)
            quad = (z0, z1, z2, z3)
            let lo = max(start, 4 * b), hi = min(start + count, 4 * b + 4)
            withUnsafeBytes(of: &quad) { raw in
                let q = raw.bindMemory(to: Float.self)
                for t in lo..<hi { out[t - start] = q[t - 4 * b] }
            }
        }
    }

    @inline(__always)
    static func boxMuller(_ a: UInt32, _ b: UInt32) -> (Float, Float) {
        let u1 = Float((a >> 8) + 1) * 0x1p-24, u2 = Float(b >> 8) * 0x1p-24
        let r = (-2 * logf(u1)).squareRoot(), theta = 2 * Float.pi * u2
        return (r * cosf(theta), r * sinf(theta))
    }
}
