/// Vectorised natural logarithm for float32 (Cephes `logf` scheme): x = m·2ᵉ with m in [√½, √2),
/// log x = e·ln2 + log m, log m from a degree-9 polynomial in t = m − 1 (evaluated by Estrin). Accuracy ≤ 2 ulp against a
/// float64 reference for positive normal inputs (tested); log 0 = −∞, log of a negative number or NaN
/// is NaN, log(+∞) = +∞; subnormal inputs are treated as 0 (callers clamp to the smallest normal).
/// No libm call: bit manipulation and separate `*`/`+` only (docs/ARCHITECTURE.md, "SIMD code").
extension Linalg {
    /// log(x) for eight floats at once: the vectorised log behind `Linalg.log`, public so streaming
    /// kernels in other modules inline it.
    @inlinable @inline(__always)
    public static func log8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias F = SIMD8<Float>
        typealias I = SIMD8<Int32>
        let bits = unsafeBitCast(x, to: I.self)
        var e = (bits &>> 23) &- 126  // exponent with the mantissa in [0.5, 1)
        var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: F.self)
        let small = m .< F(repeating: 0.70710678118654752)
        e = e.replacing(with: e &- 1, where: small)
        m = m.replacing(with: m + m, where: small)  // m in [√½, √2)
        let t = m - F(repeating: 1)
        let t2 = t * t
        // Estrin's scheme (independent pairs): with Horner's chain LLVM splits the SSE2 code into per-lane
        // scalar chains (measured 5.4 ns/element); this form keeps more of it in vector registers.
        let t4 = t2 * t2
        let a = F(repeating: 3.3333331174e-1) + F(repeating: -2.4999993993e-1) * t
        let b = F(repeating: 2.0000714765e-1) + F(repeating: -1.6668057665e-1) * t
        let c = F(repeating: 1.4249322787e-1) + F(repeating: -1.2420140846e-1) * t
        let d = F(repeating: 1.1676998740e-1) + F(repeating: -1.1514610310e-1) * t
        let p = (a + b * t2) + t4 * ((c + d * t2) + t4 * F(repeating: 7.0376836292e-2))
        let ef = F(e)
        var y = p * t * t2 + ef * F(repeating: -2.12194440e-4) - F(repeating: 0.5) * t2 + t + ef * F(repeating: 0.693359375)
        y.replace(with: -.infinity, where: x .== 0 .| (x .> 0 .& x .< F(repeating: .leastNormalMagnitude)))
        y.replace(with: .nan, where: x .< 0 .| x .!= x)
        y.replace(with: .infinity, where: x .== .infinity)
        return y
    }
}
