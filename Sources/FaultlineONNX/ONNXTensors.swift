import Foundation
import FaultlineIO

/// Decoding ONNX `TensorProto`s (initializers, `Constant` values) into Float or Int values.
///
/// Float types float32/float16/bfloat16/float64 become Float (float64 rounded to nearest); integer
/// types int64/int32/int16/int8/uint8/bool become Int. Data may be `raw_data` (little-endian), the typed
/// fields (`float_data`, `int32_data` holding float16/bfloat16 bit patterns, `int64_data`,
/// `double_data`), or an external-data file beside the model. Every size is checked against the data
/// it describes before anything is allocated.
public struct TensorDecoder: Sendable {
    /// The model file (for messages) and the directory external-data locations are relative to.
    public let file: String
    /// The model's directory (external-data locations are relative to it); nil (not read from a file): external data is refused.
    public let directory: String?
    /// The most bytes one tensor may hold (external data included).
    public let maximumBytes: Int

    /// A decoder for tensors of `file`, each at most `maximumBytes` bytes.
    public init(file: String, directory: String?, maximumBytes: Int) {
        (self.file, self.directory, self.maximumBytes) = (file, directory, maximumBytes)
    }

    /// A decoded tensor's values.
    public enum Values: Sendable {
        /// Float types (float64 rounded to nearest).
        case floats([Float])
        /// Integer and bool types.
        case ints([Int])
    }

    static func dtype(_ code: Int32) -> DType? {
        switch Onnx_TensorProto.DataType(rawValue: Int(code)) {
        case .float: return .float32
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        case .double: return .float64
        case .int64: return .int64
        case .int32: return .int32
        case .int16: return .int16
        case .int8: return .int8
        case .uint8: return .uint8
        case .bool: return .bool
        default: return nil
        }
    }

    func fail(_ t: Onnx_TensorProto, _ detail: String) -> ONNXError {
        ONNXError(.badTensor, file: file, node: t.name.isEmpty ? nil : t.name, opType: "tensor", detail)
    }

    /// Shape (all dimensions) and values. Throws `ONNXError(.badTensor)` naming the tensor for an
    /// unsupported element type, invalid dimensions, data that does not match them, or a size above
    /// `maximumBytes`.
    public func decode(_ t: Onnx_TensorProto) throws -> (shape: [Int], values: Values) {
        guard let dtype = Self.dtype(t.dataType) else {
            throw fail(t, "element type \(t.dataType) (\(Onnx_TensorProto.DataType(rawValue: Int(t.dataType)).map { "\($0)" } ?? "unknown")) "
                       + "is not supported (float32, float16, bfloat16, float64 and integers are)")
        }
        guard t.dims.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }), let count = Tensor.elementCount(t.dims.map { Int($0) }) else {
            throw fail(t, "invalid dimensions \(t.dims)")
        }
        let shape = t.dims.map { Int($0) }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, bytes <= maximumBytes else {
            throw fail(t, "\(shape) \(dtype) would need \(overflow ? "more than Int.max" : "\(bytes)") bytes, more than the limit \(maximumBytes)")
        }
        let raw: [UInt8]
        if t.dataLocation == .external {
            raw = try external(t, bytes: bytes)
        } else if t.hasRawData {
            guard t.rawData.count == bytes else {
                throw fail(t, "raw_data has \(t.rawData.count) bytes but \(shape) \(dtype) needs \(bytes)")
            }
            raw = [UInt8](t.rawData)
        } else {
            return (shape, try typed(t, dtype: dtype, count: count))
        }
        let tensor = Tensor(shape: shape, dtype: dtype, bytes: raw)
        return (shape, dtype.isFloatingPoint ? .floats(tensor.values(as: Float.self)) : .ints(Self.integers(raw, dtype: dtype)))
    }

    /// The integers of little-endian raw data, exactly (no trip through Double: int64 values such as
    /// the INT64_MAX that exporters write for an open Slice end would round up past Int.max); uint64
    /// values above Int.max saturate there (the importer's shape checks then refuse them).
    static func integers(_ raw: [UInt8], dtype: DType) -> [Int] {
        let n = dtype.size
        return raw.withUnsafeBytes { p -> [Int] in
            (0..<(raw.count / max(n, 1))).map { i -> Int in
                let at = i * n
                switch dtype {
                case .int8: return Int(Int8(bitPattern: p[at]))
                case .uint8, .bool: return Int(p[at])
                case .int16: return Int(Int16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: Int16.self)))
                case .uint16: return Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                case .int32: return Int(Int32(littleEndian: p.loadUnaligned(fromByteOffset: at, as: Int32.self)))
                case .uint32: return Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                case .int64: return Int(Int64(littleEndian: p.loadUnaligned(fromByteOffset: at, as: Int64.self)))
                case .uint64: return Int(clamping: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
                default: return 0  // floating types never reach here
                }
            }
        }
    }

    /// Values from the typed repeated fields.
    func typed(_ t: Onnx_TensorProto, dtype: DType, count: Int) throws -> Values {
        func check(_ n: Int, _ field: String) throws {
            guard n == count else { throw fail(t, "\(field) has \(n) values but the shape \(t.dims) needs \(count)") }
        }
        switch dtype {
        case .float32:
            try check(t.floatData.count, "float_data")
            return .floats(t.floatData)
        case .float64:
            try check(t.doubleData.count, "double_data")
            return .floats(t.doubleData.map { Float($0) })
        case .float16, .bfloat16:
            try check(t.int32Data.count, "int32_data")
            let bytes = t.int32Data.flatMap { v -> [UInt8] in [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
            return .floats(Tensor(shape: [count], dtype: dtype, bytes: bytes).values(as: Float.self))
        case .int64:
            try check(t.int64Data.count, "int64_data")
            return .ints(t.int64Data.map { Int($0) })
        default:
            try check(t.int32Data.count, "int32_data")
            return .ints(t.int32Data.map { Int($0) })
        }
    }

    /// Bytes of an external-data tensor: `location` relative to the model's directory (no absolute
    /// paths, no `..`), `offset` and `length` checked against the file's size before reading.
    func external(_ t: Onnx_TensorProto, bytes: Int) throws -> [UInt8] {
        var entries: [String: String] = [:]
        for e in t.externalData { entries[e.key] = e.value }
        guard let location = entries["location"], !location.isEmpty else { throw fail(t, "external data without a location") }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw fail(t, "external data location '\(location)' must be a relative path inside the model's directory")
        }
        guard let directory else { throw fail(t, "external data '\(location)' but the model was not read from a file") }
        let offset = Int(entries["offset"] ?? "0") ?? -1
        let length = entries["length"].map { Int($0) ?? -1 } ?? bytes
        guard offset >= 0, length == bytes else {
            throw fail(t, "external data offset \(entries["offset"] ?? "0") / length \(entries["length"] ?? "-") do not describe \(bytes) bytes")
        }
        let path = directory.isEmpty ? location : directory + "/" + location
        let data: Data
        do { data = try FileAccess.read(path) } catch let error as IOError {
            throw fail(t, "external data: \(error)")
        }
        guard offset <= data.count, data.count - offset >= bytes else {
            throw fail(t, "external data file \(path) has \(data.count) bytes, too few for \(bytes) at offset \(offset)")
        }
        return [UInt8](data[data.startIndex + offset ..< data.startIndex + offset + bytes])
    }
}
