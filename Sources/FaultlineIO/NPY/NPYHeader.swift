/// The header of a `.npy` file (format versions 1.0, 2.0, 3.0), parsed strictly.
///
/// Layout: magic `\x93NUMPY`, major and minor version bytes, header length (UInt16 LE for 1.x, UInt32
/// LE for 2.x/3.x), then a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`
/// padded with spaces and a newline. Data starts right after the header.
struct NPYHeader: Equatable {
    var dtype: DType
    /// Byte order of the data on disk.
    var bigEndian: Bool
    var fortranOrder: Bool
    var shape: [Int]
    /// Offset of the first data byte.
    var dataOffset: Int
    var version: UInt8

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
    /// Headers larger than this are refused (NumPy itself caps them at 10 kB by default).
    static let maximumHeaderLength = 1 << 20

    /// Parses the header at the start of `bytes`. `file` names the input in errors.
    static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws -> NPYHeader {
        guard bytes.count >= 10 else {
            throw IOError(.truncated, file: file, "file is \(bytes.count) bytes, shorter than the 10-byte .npy preamble")
        }
        guard Array(bytes[0..<6]) == magic else {
            throw IOError(.badMagic, file: file, "not a .npy file (the first 6 bytes are not \\x93NUMPY)")
        }
        let major = bytes[6]
        let lengthSize: Int
        switch major {
        case 1: lengthSize = 2
        case 2, 3: lengthSize = 4
        default:
            throw IOError(.unsupportedFeature, file: file, ".npy format version \(major).\(bytes[7]) (supported: 1.0, 2.0, 3.0)")
        }
        guard bytes.count >= 8 + lengthSize else {
            throw IOError(.truncated, file: file, "file ends inside the header length field")
        }
        var headerLength = 0
        for i in 0..<lengthSize { headerLength |= Int(bytes[8 + i]) << (8 * i) }
        let start = 8 + lengthSize
        guard headerLength <= maximumHeaderLength else {
            throw IOError(.badHeader, file: file, "header length \(headerLength) exceeds the \(maximumHeaderLength)-byte limit")
        }
        guard start + headerLength <= bytes.count else {
            throw IOError(.truncated, file: file,
                          "header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let headerBytes = Array(bytes[start..<(start + headerLength)])
        let text: String
        if major == 3 {
            guard let utf8 = String(validating: headerBytes, as: UTF8.self) else {
                throw IOError(.badHeader, file: file, "header is not valid UTF-8")
            }
            text = utf8
        } else {
            text = String(decoding: headerBytes.map { $0 < 0x80 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
        }
        let dict = try PythonLiteral.parseDict(text, file: file)
        guard case .string(let descr)? = dict["descr"] else {
            if case .list? = dict["descr"] {
                throw IOError(.unsupportedDType, file: file, "structured (record) dtypes are not supported; save a plain numeric array")
            }
            throw IOError(.badHeader, file: file, "header has no string 'descr' key")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw IOError(.badHeader, file: file, "header has no boolean 'fortran_order' key")
        }
        guard case .tuple(let dims)? = dict["shape"] else {
            throw IOError(.badHeader, file: file, "header has no tuple 'shape' key")
        }
        let extra = Set(dict.keys).subtracting(["descr", "fortran_order", "shape"])
        if !extra.isEmpty {
            throw IOError(.badHeader, file: file, "unexpected header keys \(extra.sorted())")
        }
        let (dtype, bigEndian) = try parseDescr(descr, file: file)
        for d in dims where d < 0 { throw IOError(.badHeader, file: file, "negative dimension \(d) in shape \(dims)") }
        // Checked over the non-zero dimensions too: an empty array's other dimensions must still fit.
        guard Tensor.elementCount(dims) != nil else { throw IOError(.badHeader, file: file, "shape \(dims) overflows the element count") }
        return NPYHeader(dtype: dtype, bigEndian: bigEndian, fortranOrder: fortran, shape: dims,
                         dataOffset: start + headerLength, version: major)
    }

    /// `'<f4'` → (.float32, little endian). Object and structured dtypes are refused.
    static func parseDescr(_ descr: String, file: String) throws -> (DType, Bool) {
        let chars = Array(descr)
        guard chars.count >= 2 else { throw IOError(.unsupportedDType, file: file, "dtype '\(descr)' is not understood") }
        var order = chars[0]
        var body = String(chars[1...])
        if !"<>|=".contains(order) { order = "|"; body = descr }
        if body.hasPrefix("O") {
            throw IOError(.unsupportedDType, file: file,
                          "object arrays (dtype '\(descr)') hold Python pickles, which Faultline never loads; save a numeric array")
        }
        let table: [String: DType] = [
            "f2": .float16, "f4": .float32, "f8": .float64, "i1": .int8, "i2": .int16, "i4": .int32, "i8": .int64,
            "u1": .uint8, "u2": .uint16, "u4": .uint32, "u8": .uint64, "b1": .bool,
        ]
        guard let dtype = table[body] else {
            throw IOError(.unsupportedDType, file: file,
                          "dtype '\(descr)' is not supported (supported: float16/32/64, int8–64, uint8–64, bool)")
        }
        return (dtype, order == ">")
    }

    /// The header bytes NumPy writes for this array (version 1.0 when it fits, else 2.0), padded so
    /// the data starts on a 64-byte boundary.
    static func encode(dtype: DType, shape: [Int], file: String) throws -> [UInt8] {
        let code: String
        switch dtype {
        case .bfloat16:
            throw IOError(.unsupportedDType, file: file, ".npy has no bfloat16 dtype; convert to float32 first")
        case .bool: code = "|b1"
        case .int8: code = "|i1"
        case .uint8: code = "|u1"
        case .float16: code = "<f2"
        case .float32: code = "<f4"
        case .float64: code = "<f8"
        case .int16: code = "<i2"
        case .int32: code = "<i4"
        case .int64: code = "<i8"
        case .uint16: code = "<u2"
        case .uint32: code = "<u4"
        case .uint64: code = "<u8"
        }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(code)', 'fortran_order': False, 'shape': \(shapeText), }"
        let v1 = (10 + dict.utf8.count + 1) <= 65535 + 10
        let preamble = v1 ? 10 : 12
        let padding = (64 - (preamble + dict.utf8.count + 1) % 64) % 64
        dict += String(repeating: " ", count: padding) + "\n"
        let length = dict.utf8.count
        var out = magic + [v1 ? 1 : 2, 0]
        if v1 {
            out += [UInt8(length & 0xff), UInt8(length >> 8)]
        } else {
            out += (0..<4).map { UInt8((length >> (8 * $0)) & 0xff) }
        }
        return out + Array(dict.utf8)
    }
}
