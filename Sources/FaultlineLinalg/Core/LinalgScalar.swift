#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The element types Faultline's linear algebra runs on: `Float` (models, attacks) and `Double`
/// (statistics).
///
/// `Vector` is the register-sized SIMD vector the pure-Swift kernels are written in: eight `Float`s or
/// four `Double`s, i.e. 32 bytes, two SSE registers on the default x86-64 target.
public protocol LinalgScalar: BinaryFloatingPoint, SIMDScalar, Sendable, Codable, LosslessStringConvertible
where Vector.Scalar == Self {
    /// The SIMD vector type used by the `simd` backend's micro-kernels.
    associatedtype Vector: SIMD & Sendable
    /// NumPy's name for the type (`float32`, `float64`).
    static var dtypeName: String { get }
    /// Machine epsilon used to scale stated tolerances.
    static var unitRoundoff: Double { get }
    /// Loads the 16 bytes at `p` (4 floats or 2 doubles, all equal) and repeats them to fill a
    /// `Vector`: a register broadcast that costs a load, not a shuffle (used by the GEMM micro-kernel).
    static func loadBroadcast16(_ p: UnsafeRawPointer) -> Vector
    /// Natural exponential on one scalar (libm accuracy).
    static func exp(_ x: Self) -> Self
    /// Natural logarithm on one scalar (libm accuracy).
    static func log(_ x: Self) -> Self
}

extension Float: LinalgScalar {
    public typealias Vector = SIMD8<Float>
    public static var dtypeName: String { "float32" }
    @inline(__always) public static func loadBroadcast16(_ p: UnsafeRawPointer) -> SIMD8<Float> {
        let half = p.load(as: SIMD4<Float>.self)
        return SIMD8(lowHalf: half, highHalf: half)
    }
    public static var unitRoundoff: Double { Double(Float.ulpOfOne) / 2 }
    @inlinable public static func exp(_ x: Float) -> Float { expf(x) }
    @inlinable public static func log(_ x: Float) -> Float { logf(x) }
}

extension Double: LinalgScalar {
    public typealias Vector = SIMD4<Double>
    public static var dtypeName: String { "float64" }
    @inline(__always) public static func loadBroadcast16(_ p: UnsafeRawPointer) -> SIMD4<Double> {
        let half = p.load(as: SIMD2<Double>.self)
        return SIMD4(lowHalf: half, highHalf: half)
    }
    public static var unitRoundoff: Double { Double.ulpOfOne / 2 }
    @inlinable public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
    @inlinable public static func log(_ x: Double) -> Double { Glibc.log(x) }
}
