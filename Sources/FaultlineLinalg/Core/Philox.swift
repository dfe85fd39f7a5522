/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
/// counter-based generator behind every random choice in Faultline.
///
/// A draw is a pure function of (key, counter): `Philox.block(key:counter:)` gives four 32-bit words
/// for any 128-bit counter, so results keyed by (seed, sample index, step) do not depend on batch size,
/// thread count or order. The sequential interface (`next()`) walks the counter for code that needs a
/// plain stream.
public struct Philox: Sendable {
    /// The 64-bit key (the seed's two halves).
    public let key: (UInt32, UInt32)
    /// The next counter block to encrypt.
    public private(set) var counter: (UInt32, UInt32, UInt32, UInt32)
    private var buffer: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var used = 4

    /// A stream for `seed`, starting at counter (0, 0, stream low, stream high).
    public init(seed: UInt64, stream: UInt64 = 0) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        counter = (0, 0, UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32))
    }

    /// The ten-round Philox4x32 bijection of `counter` under `key`.
    public static func block(
        key: (UInt32, UInt32), counter: (UInt32, UInt32, UInt32, UInt32)
    ) -> (UInt32, UInt32, UInt32, UInt32) {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for round in 0..<10 {
            if round > 0 {
                k0 &+= 0x9E37_79B9
                k1 &+= 0xBB67_AE85
            }
            let p0 = UInt64(0xD251_1F53) * UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) * UInt64(c2)
            let hi0 = UInt32(p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }

    /// The next 32 random bits of the stream.
    public mutating func next() -> UInt32 {
        if used == 4 {
            buffer = Philox.block(key: key, counter: counter)
            counter.0 &+= 1
            if counter.0 == 0 { counter.1 &+= 1 }
            used = 0
        }
        defer { used += 1 }
        switch used {
        case 0: return buffer.0
        case 1: return buffer.1
        case 2: return buffer.2
        default: return buffer.3
        }
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        let hi = UInt64(next()) >> 5, lo = UInt64(next()) >> 6  // 27 + 26 bits
        return Double(hi << 26 | lo) * 0x1.0p-53
    }

    /// Standard normal by the Box–Muller transform (one of the pair; uses two uniforms).
    public mutating func normal() -> Double {
        let u1 = 1 - uniform()  // (0, 1]: log is finite
        let u2 = uniform()
        return (-2 * Double.log(u1)).squareRoot() * cosine(2 * Double.pi * u2)
    }

    /// A matrix of independent draws from `distribution`, filled row by row.
    public mutating func matrix<T: LinalgScalar>(
        rows: Int, columns: Int, _ distribution: Distribution = .uniform(-0.5, 0.5), as _: T.Type = T.self
    ) -> Matrix<T> {
        var m = Matrix<T>(uninitializedRows: rows, columns: columns)
        m.withUnsafeMutableBufferPointer { p in
            for i in p.indices {
                switch distribution {
                case let .uniform(lo, hi): p[i] = T(lo + (hi - lo) * uniform())
                case let .normal(mean, sd): p[i] = T(mean + sd * normal())
                }
            }
        }
        return m
    }

    /// The distributions `matrix(rows:columns:_:as:)` draws from.
    public enum Distribution: Sendable {
        /// Uniform on [lower, upper).
        case uniform(Double, Double)
        /// Normal with the given mean and standard deviation (Box–Muller).
        case normal(mean: Double, sd: Double)
    }
}

#if canImport(Glibc)
import Glibc
private func cosine(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Foundation
private func cosine(_ x: Double) -> Double { Foundation.cos(x) }
#endif
