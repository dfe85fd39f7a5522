import CFaultline

extension Philox {
    /// Writes the standard normals z[t], t in start..<start + count, of the stream (seed, stream).
    ///
    /// Normals come in groups of 32: normal t = 32g + 8k + l is output k of Philox4x32-10 block 8g + l
    /// (counter (block, stream)), where a block's word pairs (w₀, w₁) and (w₂, w₃) give outputs 0, 1 and
    /// 2, 3 by Box–Muller: r·cos θ and r·sin θ with r = √(−2 ln u₁), u₁ = (⌊w/2⁸⌋ + 1)·2⁻²⁴ ∈ (0, 1] and
    /// θ = 2π·⌊w/2⁸⌋·2⁻²⁴. Any range can be generated on its own, so results do not depend on how
    /// callers split draws into batches or threads. Float32 throughout: |z| ≤ 5.65 (u₁ ≥ 2⁻²³);
    /// sin/cos by exact integer quadrant reduction and degree-9 Taylor polynomials on [−π/4, π/4]
    /// (error < 2e-9 before rounding), log by `Linalg.log8`. The eight blocks of a group are computed
    /// at once in SIMD registers.
    ///
    /// Tiers (`Linalg.kernelTier`): `avx2` and `avx512` run the same definition in the C shim
    /// (`fl_fill_normals_f32`, 8-wide with FMA and a hardware square root, and its 16-wide AVX-512 twin,
    /// bit-identical to it); `simd` and `reference` run this Swift code, which is the definition (float32
    /// throughout). The C and Swift tiers agree to ~1e-6 (rounding), not bit for bit.
    public static func fillNormals(_ out: UnsafeMutablePointer<Float>, start: Int, count: Int, seed: UInt64, stream: UInt64,
                                   tier: Linalg.KernelTier = Linalg.kernelTier()) {
        guard count > 0 else { return }
        switch Linalg.runnable(tier) {
        case .avx512: fl_fill_normals_f32_avx512(out, Int64(start), Int64(count), seed, stream); return
        case .avx2: fl_fill_normals_f32(out, Int64(start), Int64(count), seed, stream); return
        case .reference, .simd: break
        }
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        let s = (UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32))
        let end = start + count
        var t = start
        while t < end {
            let g = t / 32
            let z = normalGroup(g, key: key, stream: s)
            let lo = t - 32 * g, hi = min(end - 32 * g, 32)
            let raw = UnsafeMutableRawPointer(out + (32 * g - start))
            if lo == 0 && hi == 32 {
                raw.storeBytes(of: z.0, toByteOffset: 0, as: SIMD8<Float>.self)
                raw.storeBytes(of: z.1, toByteOffset: 32, as: SIMD8<Float>.self)
                raw.storeBytes(of: z.2, toByteOffset: 64, as: SIMD8<Float>.self)
                raw.storeBytes(of: z.3, toByteOffset: 96, as: SIMD8<Float>.self)
            } else {
                for j in lo..<hi {
                    let v = j < 8 ? z.0 : j < 16 ? z.1 : j < 24 ? z.2 : z.3
                    out[32 * g + j - start] = v[j % 8]
                }
            }
            t = 32 * g + hi
        }
    }

    /// The 32 normals of blocks 8g … 8g+7: output k of block 8g + l is lane l of the k-th vector.
    /// Written with bit casts only: the standard library's lane-type conversions (UInt64 ↔ UInt32,
    /// Int32 → Float) compile to per-lane loops here and cost ten times the arithmetic.
    @inline(__always)
    static func normalGroup(_ g: Int, key: (UInt32, UInt32), stream: (UInt32, UInt32))
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let first = UInt32(truncatingIfNeeded: g * 8), high = UInt32(truncatingIfNeeded: (g * 8) >> 32)
        var c0 = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7) &+ SIMD8<UInt32>(repeating: first)
        var c1 = SIMD8<UInt32>(repeating: high)
        if first > UInt32.max - 7 {  // the low counter word wraps inside the group: carry into the high word
            c1 = c1 &+ SIMD8<UInt32>(repeating: 0).replacing(with: 1, where: c0 .< SIMD8<UInt32>(repeating: first))
        }
        var c2 = SIMD8<UInt32>(repeating: stream.0), c3 = SIMD8<UInt32>(repeating: stream.1)
        var k0 = key.0, k1 = key.1
        for round in 0..<10 {
            if round > 0 { k0 &+= 0x9E37_79B9; k1 &+= 0xBB67_AE85 }
            let (hi0, lo0) = mulHiLo(c0, 0xD251_1F53)
            let (hi1, lo1) = mulHiLo(c2, 0xCD9E_8D57)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ SIMD8(repeating: k0), lo1, hi0 ^ c3 ^ SIMD8(repeating: k1), lo0)
        }
        let (z0, z1) = boxMuller(c0, c1), (z2, z3) = boxMuller(c2, c3)
        return (z0, z1, z2, z3)
    }

    /// The high and low 32 bits of a·m per lane, from two 32×32→64 multiplies on the even and odd lanes.
    @inline(__always)
    static func mulHiLo(_ a: SIMD8<UInt32>, _ m: UInt64) -> (SIMD8<UInt32>, SIMD8<UInt32>) {
        let v = unsafeBitCast(a, to: SIMD4<UInt64>.self)
        let low = SIMD4<UInt64>(repeating: 0xFFFF_FFFF), factor = SIMD4<UInt64>(repeating: m)
        let even = (v & low) &* factor, odd = (v &>> 32) &* factor
        let lo = (even & low) | (odd &<< 32), hi = (even &>> 32) | (odd & ~low)
        return (unsafeBitCast(hi, to: SIMD8<UInt32>.self), unsafeBitCast(lo, to: SIMD8<UInt32>.self))
    }

    @inline(__always)
    static func boxMuller(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> (SIMD8<Float>, SIMD8<Float>) {
        typealias F = SIMD8<Float>
        typealias U = SIMD8<UInt32>
        // u₁ = 2 − (1.m) with 23 random mantissa bits: in (0, 1], exact.
        let u1 = F(repeating: 2) - unsafeBitCast((a &>> 9) | U(repeating: 0x3F80_0000), to: F.self)
        let r = squareRootOfNonNegative(F(repeating: -2) * logOfPositiveNormal(u1))
        // θ = 2π·m/2²³ with m = ⌊b/2⁹⌋: quadrant q = round(m/2²¹) and remainder m − q·2²¹ in [−2²⁰, 2²⁰]
        // are exact integers; the remainder becomes a float exactly through the 2²³ mantissa trick.
        let m = b &>> 9
        let q = (m &+ U(repeating: 1 << 20)) &>> 21
        let shifted = m &- (q &<< 21) &+ U(repeating: 1 << 22)  // remainder + 2²², in [2²¹, 3·2²¹]
        let remainder = unsafeBitCast(shifted | U(repeating: 0x4B00_0000), to: F.self) - F(repeating: 0x1p23 + 0x1p22)
        let x = remainder * F(repeating: 2 * Float.pi * 0x1p-23)
        let x2 = x * x
        var sinA = F(repeating: -1.0 / 5040) + x2 * F(repeating: 1.0 / 362_880)
        sinA = F(repeating: 1.0 / 120) + x2 * sinA
        sinA = F(repeating: -1.0 / 6) + x2 * sinA
        sinA = x + x * x2 * sinA
        var cosA = F(repeating: -1.0 / 720) + x2 * F(repeating: 1.0 / 40320)
        cosA = F(repeating: 1.0 / 24) + x2 * cosA
        cosA = F(repeating: -0.5) + x2 * cosA
        cosA = F(repeating: 1) + x2 * cosA
        // Rotate by q quarter turns: q mod 4 = 0: (cos, sin); 1: (−sin, cos); 2: (−cos, −sin); 3: (sin, −cos).
        // Selects and sign flips are bit operations: comparison masks compile to per-lane loops here.
        let swap = U(repeating: 0) &- (q & U(repeating: 1))  // all ones for odd quadrants
        let cosBits = unsafeBitCast(cosA, to: U.self), sinBits = unsafeBitCast(sinA, to: U.self)
        let cosineFlip = (((q &+ U(repeating: 1)) &>> 1) & U(repeating: 1)) &<< 31  // quadrants 1, 2
        let sineFlip = ((q &>> 1) & U(repeating: 1)) &<< 31  // quadrants 2, 3
        let cosine = unsafeBitCast(((cosBits & ~swap) | (sinBits & swap)) ^ cosineFlip, to: F.self)
        let sine = unsafeBitCast(((sinBits & ~swap) | (cosBits & swap)) ^ sineFlip, to: F.self)
        return (r * cosine, r * sine)
    }

    /// ln x for positive normal floats (the Cephes `logf` polynomial of `Linalg.log8`, ≤ 2 ulp) without
    /// its special-case selects, and with integer-to-float conversions done by the 2²³ mantissa trick.
    @inline(__always)
    static func logOfPositiveNormal(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias F = SIMD8<Float>
        typealias U = SIMD8<UInt32>
        let bits = unsafeBitCast(x, to: U.self)
        let mantissa = (bits & U(repeating: 0x007F_FFFF)) | U(repeating: 0x3F00_0000)  // m in [0.5, 1)
        // m < √½: use 2m and exponent − 1 (small = all ones).
        let small = unsafeBitCast(unsafeBitCast(mantissa &- U(repeating: 0x3F35_04F3), to: SIMD8<Int32>.self) &>> 31, to: U.self)
        let m = unsafeBitCast(mantissa, to: F.self) + unsafeBitCast(mantissa & small, to: F.self)
        let biased = (bits &>> 23) &- U(repeating: 126) &+ small  // e, minus one when small (small = −1)
        let e = unsafeBitCast((biased &+ U(repeating: 1 << 22)) | U(repeating: 0x4B00_0000), to: F.self) - F(repeating: 0x1p23 + 0x1p22)
        let t = m - F(repeating: 1)
        let t2 = t * t, t4 = t2 * t2
        let a = F(repeating: 3.3333331174e-1) + F(repeating: -2.4999993993e-1) * t
        let b = F(repeating: 2.0000714765e-1) + F(repeating: -1.6668057665e-1) * t
        let c = F(repeating: 1.4249322787e-1) + F(repeating: -1.2420140846e-1) * t
        let d = F(repeating: 1.1676998740e-1) + F(repeating: -1.1514610310e-1) * t
        let p = (a + b * t2) + t4 * ((c + d * t2) + t4 * F(repeating: 7.0376836292e-2))
        return p * t * t2 + e * F(repeating: -2.12194440e-4) - F(repeating: 0.5) * t2 + t + e * F(repeating: 0.693359375)
    }

    /// √x for x ≥ 0 as x·(1/√x), the reciprocal root from the bit-level estimate refined by three
    /// Newton steps (relative error < 1e-7). `SIMD8.squareRoot()` becomes eight scalar libm calls here.
    @inline(__always)
    static func squareRootOfNonNegative(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias F = SIMD8<Float>
        var y = unsafeBitCast(SIMD8<UInt32>(repeating: 0x5F37_59DF) &- (unsafeBitCast(x, to: SIMD8<UInt32>.self) &>> 1), to: F.self)
        let half = F(repeating: 0.5) * x
        for _ in 0..<3 { y = y * (F(repeating: 1.5) - half * y * y) }
        return x * y
    }
}
