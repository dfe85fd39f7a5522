/// Vectorised natural exponential for the `simd` backend.
///
/// `Float`: Cody–Waite reduction x = n·ln2 + r (|r| ≤ ln2/2, ln2 split in two parts), a degree-6
/// Cephes polynomial for eᴿ, and 2ⁿ built from the exponent bits in two factors so results down into
/// the subnormal range are right. Accuracy: ≤ 2 ulp against a float64 reference for normal results
/// (tested). x > 88.7228 gives +∞, x < −103.98 gives 0, NaN gives NaN. No libm call, no `rounded()`
/// (which is a libm call per lane on the default SSE2 target): rounding uses the 1.5·2²³ trick.
///
/// `Double`: lane-wise libm `exp` (a vector double exp is future work; the hot paths are Float).
enum VectorExp {
    @inline(__always)
    static func exp<T: LinalgScalar>(_ x: T.Vector, _: T.Type) -> T.Vector {
        if T.self == Float.self {
            return unsafeBitCast(expFloat(unsafeBitCast(x, to: SIMD8<Float>.self)), to: T.Vector.self)
        }
        return x.lanewise(T.exp)
    }

    @inline(__always)
    static func expFloat(_ x: SIMD8<Float>) -> SIMD8<Float> { Linalg.exp8(x) }
}

extension Linalg {
    /// exp(x) for eight floats at once: the vectorised exp behind `Linalg.exp` (see `VectorExp`),
    /// public so streaming kernels in other modules inline it.
    @inlinable @inline(__always)
    public static func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias F = SIMD8<Float>
        typealias I = SIMD8<Int32>
        let upper: Float = 88.72283905206835
        let lower: Float = -103.97208
        let xc = x.replacing(with: upper, where: x .> upper).replacing(with: lower, where: x .< lower)
        let magic: Float = 12582912  // 1.5·2²³: adding it rounds to an integer kept in the low mantissa bits
        let t = xc * F(repeating: 1.44269504088896341) + F(repeating: magic)
        let n = t - F(repeating: magic)
        var r = xc - n * F(repeating: 0.693359375)
        r = r - n * F(repeating: -2.12194440e-4)
        var p = F(repeating: 1.9875691500e-4)
        p = p * r + F(repeating: 1.3981999507e-3)
        p = p * r + F(repeating: 8.3334519073e-3)
        p = p * r + F(repeating: 4.1665795894e-2)
        p = p * r + F(repeating: 1.6666665459e-1)
        p = p * r + F(repeating: 5.0000001201e-1)
        let r2 = r * r
        let er = p * r2 + r + F(repeating: 1)
        let ni = unsafeBitCast(t, to: I.self) &- I(repeating: 0x4B40_0000)
        let n1 = ni &>> 1
        let n2 = ni &- n1
        let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: F.self)
        let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: F.self)
        var y = er * s1 * s2
        y.replace(with: .infinity, where: x .> upper)
        y.replace(with: 0, where: x .< lower)
        y.replace(with: x, where: x .!= x)
        return y
    }
}
