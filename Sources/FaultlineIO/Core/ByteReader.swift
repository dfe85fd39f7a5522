/// Bounds-checked reads of fixed-width integers from untrusted bytes. Every read past the end throws
/// `IOError(.truncated)` naming the file and the field, so a parser built on it cannot read out of
/// bounds.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let file: String

    var count: Int { bytes.count }

    func require(_ offset: Int, _ length: Int, _ field: String) throws {
        guard offset >= 0, length >= 0, offset <= bytes.count, length <= bytes.count - offset else {
            throw IOError(.truncated, file: file,
                          "\(field): needs bytes \(offset)..<\(offset &+ length) but the input has \(bytes.count)")
        }
    }

    func littleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int, _ field: String) throws -> T {
        try require(offset, MemoryLayout<T>.size, field)
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    func bigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int, _ field: String) throws -> T {
        try require(offset, MemoryLayout<T>.size, field)
        return T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    func slice(_ offset: Int, _ length: Int, _ field: String) throws -> UnsafeRawBufferPointer {
        try require(offset, length, field)
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
    }
}

/// Little-endian byte appends for writers.
extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
