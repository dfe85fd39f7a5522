import FaultlineLinalg

/// An n-dimensional array as read from a file: its shape, its element type on disk, and the elements
/// in row-major (C) order, stored as raw little-endian bytes of `dtype`.
///
/// Conversion to `Float`/`Double` matrices is explicit (`matrix(_:)`), exact for every integer up to
/// 2²⁴ (Float) or 2⁵³ (Double), and exact for float16 and bfloat16 → Float.
public struct Tensor: Sendable, Equatable {
    /// The dimensions, outermost first (empty for a scalar).
    public var shape: [Int]
    /// The element type of `bytes`.
    public var dtype: DType
    /// Row-major element bytes, little-endian, `count × dtype.size` bytes.
    public var bytes: [UInt8]

    /// The number of elements: the product of `shape` (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The element count of `shape`, or nil when a dimension is negative or the product of its
    /// non-zero dimensions overflows `Int`. Readers check shapes with this, so an empty array with
    /// huge other dimensions (e.g. 0 × 2⁴⁰ × 2⁴⁰) is refused up front instead of trapping later when
    /// a per-sample size (the product of the trailing dimensions) is formed.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var nonZero = 1
        for d in shape where d != 0 {
            guard d > 0 else { return nil }
            let (p, overflow) = nonZero.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            nonZero = p
        }
        if shape.contains(0) { return 0 }
        return nonZero
    }

    /// A tensor from raw little-endian bytes; `bytes` must hold `count × dtype.size` bytes and no dimension may be negative (preconditions: readers check both first).
    public init(shape: [Int], dtype: DType, bytes: [UInt8]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        precondition(bytes.count == shape.reduce(1, *) * dtype.size, "Tensor: \(bytes.count) bytes for \(shape) \(dtype)")
        self.shape = shape
        self.dtype = dtype
        self.bytes = bytes
    }

    /// A float32/float64 tensor from a matrix (shape [rows, columns]).
    public init<T: LinalgScalar>(_ matrix: Matrix<T>) {
        let dtype: DType = T.self == Float.self ? .float32 : .float64
        let bytes = matrix.withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) }
        self.init(shape: [matrix.rows, matrix.columns], dtype: dtype, bytes: bytes)
    }

    /// A tensor of any element type from values.
    public init<T: TensorElement>(shape: [Int], values: [T]) {
        precondition(values.count == shape.reduce(1, *), "Tensor: \(values.count) values for shape \(shape)")
        self.init(shape: shape, dtype: T.dtype, bytes: values.withUnsafeBytes { Array($0) })
    }

    /// Element `i` (flat row-major index) converted to Double.
    public func double(at i: Int) -> Double {
        bytes.withUnsafeBytes { raw in ElementConversion.double(raw, dtype, i) }
    }

    /// All elements converted to `T` (rounding to nearest).
    public func values<T: LinalgScalar>(as _: T.Type = T.self) -> [T] {
        bytes.withUnsafeBytes { raw in ElementConversion.convert(raw, dtype, count, to: T.self) }
    }

    /// The tensor as a matrix: rank 2 as is, rank 1 as one column (n×1), rank 0 as 1×1, higher ranks
    /// flattened to [shape[0], product of the rest]. `name` is used in the error message.
    public func matrix<T: LinalgScalar>(_: T.Type = T.self, name: String = "array") throws -> Matrix<T> {
        let (rows, columns): (Int, Int)
        switch rank {
        case 0: (rows, columns) = (1, 1)
        case 1: (rows, columns) = (shape[0], 1)
        default:
            guard let perSample = Self.elementCount(Array(shape.dropFirst())) else {
                throw IOError(.shapeMismatch, file: name, "shape \(shape) overflows the element count")
            }
            (rows, columns) = (shape[0], perSample)
        }
        if dtype == (T.self == Float.self ? .float32 : .float64) {
            var m = Matrix<T>(uninitializedRows: rows, columns: columns)
            m.withUnsafeMutableBufferPointer { dst in
                bytes.withUnsafeBytes { src in UnsafeMutableRawBufferPointer(dst).copyMemory(from: src) }
            }
            return m
        }
        return try Matrix(rows: rows, columns: columns, elements: values(as: T.self))
    }
}

/// Swift types that map to a `DType`.
public protocol TensorElement: Sendable {
    /// The `DType` of this Swift type.
    static var dtype: DType { get }
}
extension Float: TensorElement {
    /// `.float32`.
    public static var dtype: DType { .float32 }
}
extension Double: TensorElement {
    /// `.float64`.
    public static var dtype: DType { .float64 }
}
extension Float16: TensorElement {
    /// `.float16`.
    public static var dtype: DType { .float16 }
}
extension Int8: TensorElement {
    /// `.int8`.
    public static var dtype: DType { .int8 }
}
extension Int16: TensorElement {
    /// `.int16`.
    public static var dtype: DType { .int16 }
}
extension Int32: TensorElement {
    /// `.int32`.
    public static var dtype: DType { .int32 }
}
extension Int64: TensorElement {
    /// `.int64`.
    public static var dtype: DType { .int64 }
}
extension UInt8: TensorElement {
    /// `.uint8`.
    public static var dtype: DType { .uint8 }
}
extension UInt16: TensorElement {
    /// `.uint16`.
    public static var dtype: DType { .uint16 }
}
extension UInt32: TensorElement {
    /// `.uint32`.
    public static var dtype: DType { .uint32 }
}
extension UInt64: TensorElement {
    /// `.uint64`.
    public static var dtype: DType { .uint64 }
}
extension Bool: TensorElement {
    /// `.bool`.
    public static var dtype: DType { .bool }
}

/// Reads little-endian elements of any `DType` as floating point.
enum ElementConversion {
    @inline(__always)
    static func double(_ raw: UnsafeRawBufferPointer, _ dtype: DType, _ i: Int) -> Double {
        let o = i * dtype.size
        switch dtype {
        case .float16: return Double(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
        case .bfloat16: return Double(Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)) << 16))
        case .float32: return Double(raw.loadUnaligned(fromByteOffset: o, as: Float.self))
        case .float64: return raw.loadUnaligned(fromByteOffset: o, as: Double.self)
        case .int8: return Double(raw.loadUnaligned(fromByteOffset: o, as: Int8.self))
        case .int16: return Double(raw.loadUnaligned(fromByteOffset: o, as: Int16.self))
        case .int32: return Double(raw.loadUnaligned(fromByteOffset: o, as: Int32.self))
        case .int64: return Double(raw.loadUnaligned(fromByteOffset: o, as: Int64.self))
        case .uint8: return Double(raw[o])
        case .uint16: return Double(raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))
        case .uint32: return Double(raw.loadUnaligned(fromByteOffset: o, as: UInt32.self))
        case .uint64: return Double(raw.loadUnaligned(fromByteOffset: o, as: UInt64.self))
        case .bool: return raw[o] != 0 ? 1 : 0
        }
    }

    /// `count` elements of `raw` in either byte order, converted to T.
    static func convert<T: LinalgScalar>(_ raw: UnsafeRawBufferPointer, _ dtype: DType, _ count: Int, bigEndian: Bool, to _: T.Type) -> [T] {
        guard bigEndian && dtype.size > 1 else { return convert(raw, dtype, count, to: T.self) }
        let size = dtype.size
        let swapped = [UInt8](unsafeUninitializedCapacity: count * size) { buffer, initialized in
            for e in 0..<count { for b in 0..<size { buffer[e * size + b] = raw[e * size + size - 1 - b] } }
            initialized = count * size
        }
        return swapped.withUnsafeBytes { convert($0, dtype, count, to: T.self) }
    }

    static func convert<T: LinalgScalar>(_ raw: UnsafeRawBufferPointer, _ dtype: DType, _ count: Int, to _: T.Type) -> [T] {
        switch dtype {
        case .float32 where T.self == Float.self, .float64 where T.self == Double.self:
            return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(count * dtype.size)]))
                initialized = count
            }
        case .float32 where T.self == Double.self:
            // Fast, specialised paths for the common conversions (the generic path costs ~100 ns per element).
            let out = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count { buffer[i] = Double(raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)) }
                initialized = count
            }
            return out as! [T]
        case .float64 where T.self == Float.self:
            let out = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count { buffer[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
                initialized = count
            }
            return out as! [T]
        case .float16 where T.self == Float.self:
            return (0..<count).map { T(Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
        case .float32:
            return (0..<count).map { T(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self)) }
        default:
            return (0..<count).map { T(double(raw, dtype, $0)) }
        }
    }
}
