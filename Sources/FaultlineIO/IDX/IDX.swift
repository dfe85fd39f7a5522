/// The IDX format of MNIST and its relatives (plain or gzip-compressed): a 4-byte magic
/// `0x00 0x00 type rank`, `rank` big-endian UInt32 dimensions, then big-endian elements.
/// Types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
public enum IDX {
    /// Reads an IDX file (gzip-compressed when it starts with the gzip magic). Throws `IOError` naming the file and the field.
    public static func read(_ path: String) throws -> Tensor {
        let data = try FileAccess.read(path)
        return try data.withUnsafeBytes { raw in
            if raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B {
                let inflated = try Zlib.gunzip(raw, file: path)
                return try inflated.withUnsafeBytes { try decode($0, name: path) }
            }
            return try decode(raw, name: path)
        }
    }

    /// Parses uncompressed IDX bytes held in memory; `file` names them in errors. Throws `IOError`.
    public static func decode(_ raw: UnsafeRawBufferPointer, name file: String) throws -> Tensor {
        let r = ByteReader(bytes: raw, file: file)
        let zero = try r.bigEndian(UInt16.self, at: 0, "magic")
        let type = try r.bigEndian(UInt8.self, at: 2, "type code")
        let rank = Int(try r.bigEndian(UInt8.self, at: 3, "rank"))
        guard zero == 0 else { throw IOError(.badMagic, file: file, "not an IDX file (the first two bytes must be zero)") }
        let dtypes: [UInt8: DType] = [0x08: .uint8, 0x09: .int8, 0x0B: .int16, 0x0C: .int32, 0x0D: .float32, 0x0E: .float64]
        guard let dtype = dtypes[type] else {
            throw IOError(.unsupportedDType, file: file, "IDX type code 0x\(String(type, radix: 16)) is not one of 08, 09, 0B, 0C, 0D, 0E")
        }
        guard rank >= 1 else { throw IOError(.badHeader, file: file, "rank 0 IDX file") }
        var shape: [Int] = []
        var count = 1
        for d in 0..<rank {
            let dim = Int(try r.bigEndian(UInt32.self, at: 4 + 4 * d, "dimension \(d)"))
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw IOError(.badHeader, file: file, "dimensions overflow the element count") }
            count = product
            shape.append(dim)
        }
        // Checked over the non-zero dimensions too: an empty array's other dimensions must still fit.
        guard Tensor.elementCount(shape) != nil else { throw IOError(.badHeader, file: file, "dimensions \(shape) overflow the element count") }
        let start = 4 + 4 * rank
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, raw.count - start == bytes else {
            throw IOError(raw.count - start < bytes || overflow ? .truncated : .shapeMismatch, file: file,
                          "shape \(shape) of \(dtype) needs \(bytes) data bytes, the file has \(raw.count - start)")
        }
        var out = Array(raw[start..<(start + bytes)])
        if dtype.size > 1 {  // big-endian on disk, little-endian in a Tensor
            for e in 0..<count { out[(e * dtype.size)..<((e + 1) * dtype.size)].reverse() }
        }
        return Tensor(shape: shape, dtype: dtype, bytes: out)
    }
}
