/// Element types of the array files Faultline reads and writes (NumPy's names).
public enum DType: String, Sendable, CaseIterable, Codable {
    /// IEEE half, bfloat16 (the top half of a float32), single and double precision.
    case float16, bfloat16, float32, float64
    /// Signed two's-complement integers of 8, 16, 32 and 64 bits.
    case int8, int16, int32, int64
    /// Unsigned integers of 8, 16, 32 and 64 bits.
    case uint8, uint16, uint32, uint64
    /// One byte, 0 or 1 (NumPy's `bool_`).
    case bool

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .int8, .uint8, .bool: return 1
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .float32, .int32, .uint32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }

    /// Whether the type is one of the four floating-point types.
    public var isFloatingPoint: Bool { self == .float16 || self == .bfloat16 || self == .float32 || self == .float64 }
}
