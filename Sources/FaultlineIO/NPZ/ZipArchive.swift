/// A strict reader and a small writer for the ZIP archives `.npz` files are (PKWARE APPNOTE 6.3):
/// stored (method 0) and deflated (method 8) members, ZIP64 sizes and offsets, CRC-32 checked.
/// Encrypted members, multi-disk archives and other methods are refused with a clear error.
enum ZipArchive {
    struct Entry {
        var name: String
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var localHeaderOffset: Int
    }

    /// Reads the central directory and returns the members in archive order.
    static func entries(_ r: ByteReader) throws -> [Entry] {
        let file = r.file
        // The end-of-central-directory record is in the last 22 + 65535 bytes.
        guard r.count >= 22 else { throw IOError(.truncated, file: file, "too short to be a zip archive (\(r.count) bytes)") }
        var eocd = -1
        var i = r.count - 22
        let lowest = max(0, r.count - 22 - 65535)
        while i >= lowest {
            if try r.littleEndian(UInt32.self, at: i, "EOCD signature") == 0x0605_4B50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw IOError(.badMagic, file: file, "not a zip archive (no end-of-central-directory record)") }
        let disk = try r.littleEndian(UInt16.self, at: eocd + 4, "EOCD disk number")
        guard disk == 0 || disk == 0xFFFF else { throw IOError(.unsupportedFeature, file: file, "multi-disk zip archives are not supported") }
        var count = Int(try r.littleEndian(UInt16.self, at: eocd + 10, "EOCD entry count"))
        var directorySize = Int(try r.littleEndian(UInt32.self, at: eocd + 12, "EOCD directory size"))
        var directoryOffset = Int(try r.littleEndian(UInt32.self, at: eocd + 16, "EOCD directory offset"))
        if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // ZIP64: the locator sits right before the EOCD and points at the ZIP64 EOCD record.
            let locator = eocd - 20
            guard locator >= 0, try r.littleEndian(UInt32.self, at: locator, "ZIP64 locator") == 0x0706_4B50 else {
                throw IOError(.badHeader, file: file, "ZIP64 values without a ZIP64 end-of-directory locator")
            }
            let record = try checkedInt(r.littleEndian(UInt64.self, at: locator + 8, "ZIP64 EOCD offset"), file, "ZIP64 EOCD offset")
            guard try r.littleEndian(UInt32.self, at: record, "ZIP64 EOCD signature") == 0x0606_4B50 else {
                throw IOError(.badHeader, file: file, "ZIP64 end-of-directory record has a bad signature")
            }
            count = try checkedInt(r.littleEndian(UInt64.self, at: record + 32, "ZIP64 entry count"), file, "entry count")
            directorySize = try checkedInt(r.littleEndian(UInt64.self, at: record + 40, "ZIP64 directory size"), file, "directory size")
            directoryOffset = try checkedInt(r.littleEndian(UInt64.self, at: record + 48, "ZIP64 directory offset"), file, "directory offset")
        }
        try r.require(directoryOffset, directorySize, "central directory")
        guard count <= directorySize / 46 else {
            throw IOError(.badHeader, file: file, "central directory claims \(count) entries in \(directorySize) bytes")
        }
        var entries: [Entry] = []
        var names = Set<String>()
        var p = directoryOffset
        for index in 0..<count {
            let field = "central directory entry \(index)"
            guard try r.littleEndian(UInt32.self, at: p, field) == 0x0201_4B50 else {
                throw IOError(.badHeader, file: file, "\(field) has a bad signature")
            }
            let flags = try r.littleEndian(UInt16.self, at: p + 8, field)
            let method = try r.littleEndian(UInt16.self, at: p + 10, field)
            let crc = try r.littleEndian(UInt32.self, at: p + 16, field)
            var compressed = Int(try r.littleEndian(UInt32.self, at: p + 20, field))
            var size = Int(try r.littleEndian(UInt32.self, at: p + 24, field))
            let nameLength = Int(try r.littleEndian(UInt16.self, at: p + 28, field))
            let extraLength = Int(try r.littleEndian(UInt16.self, at: p + 30, field))
            let commentLength = Int(try r.littleEndian(UInt16.self, at: p + 32, field))
            var offset = Int(try r.littleEndian(UInt32.self, at: p + 42, field))
            let nameBytes = try r.slice(p + 46, nameLength, "\(field) name")
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw IOError(.badHeader, file: file, "\(field): member name is not valid UTF-8")
            }
            let extra = try r.slice(p + 46 + nameLength, extraLength, "\(field) extra field")
            if compressed == 0xFFFF_FFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
                try applyZip64(ByteReader(bytes: extra, file: file), &size, &compressed, &offset, field)
            }
            guard flags & 1 == 0 else { throw IOError(.unsupportedFeature, file: file, "member '\(name)' is encrypted") }
            guard method == 0 || method == 8 else {
                throw IOError(.unsupportedFeature, file: file, "member '\(name)' uses compression method \(method) (supported: stored, deflate)")
            }
            guard names.insert(name).inserted else { throw IOError(.badHeader, file: file, "duplicate member '\(name)'") }
            entries.append(Entry(name: name, method: method, crc: crc, compressedSize: compressed, size: size, localHeaderOffset: offset))
            p += 46 + nameLength + extraLength + commentLength
        }
        return entries
    }

    /// The uncompressed bytes of `entry`, CRC-checked; a declared size above `limit` is refused first.
    static func contents(_ r: ByteReader, _ entry: Entry, limit: Int = IOLimits.decompressedBytes) throws -> [UInt8] {
        let file = r.file
        let field = "member '\(entry.name)'"
        guard try r.littleEndian(UInt32.self, at: entry.localHeaderOffset, "\(field) local header") == 0x0403_4B50 else {
            throw IOError(.badHeader, file: file, "\(field): local header has a bad signature")
        }
        let nameLength = Int(try r.littleEndian(UInt16.self, at: entry.localHeaderOffset + 26, field))
        let extraLength = Int(try r.littleEndian(UInt16.self, at: entry.localHeaderOffset + 28, field))
        let start = entry.localHeaderOffset + 30 + nameLength + extraLength
        let data = try r.slice(start, entry.compressedSize, "\(field) data")
        guard entry.size <= limit else {
            throw IOError(.invalidValue, file: file, "\(field) declares \(entry.size) bytes, over the \(limit)-byte limit on decompressed data "
                              + "(FAULTLINE_MAX_DECOMPRESSED_BYTES raises it)")
        }
        let bytes: [UInt8]
        if entry.method == 0 {
            guard entry.compressedSize == entry.size else {
                throw IOError(.badHeader, file: file, "\(field): stored member with different compressed and uncompressed sizes")
            }
            bytes = Array(data)
        } else {
            // Deflate cannot expand data more than ~1032:1; a larger declared size is a lie (or a bomb),
            // refused before anything is allocated.
            guard entry.size <= entry.compressedSize * 1032 + 1024 else {
                throw IOError(.invalidValue, file: file,
                              "\(field) declares \(entry.size) bytes from \(entry.compressedSize) compressed, more than deflate can produce")
            }
            bytes = try Zlib.inflate(data, format: .rawDeflate, size: entry.size, file: file, what: field)
        }
        guard bytes.withUnsafeBytes({ Zlib.crc32($0) }) == entry.crc else {
            throw IOError(.invalidValue, file: file, "\(field): CRC-32 mismatch (the archive is corrupt)")
        }
        return bytes
    }

    private static func applyZip64(_ extra: ByteReader, _ size: inout Int, _ compressed: inout Int, _ offset: inout Int, _ field: String) throws {
        var p = 0
        while p + 4 <= extra.count {
            let id = try extra.littleEndian(UInt16.self, at: p, field)
            let length = Int(try extra.littleEndian(UInt16.self, at: p + 2, field))
            if id == 0x0001 {
                var q = p + 4
                func next() throws -> Int {
                    defer { q += 8 }
                    guard q + 8 <= p + 4 + length else { throw IOError(.badHeader, file: extra.file, "\(field): short ZIP64 extra field") }
                    return try checkedInt(extra.littleEndian(UInt64.self, at: q, field), extra.file, field)
                }
                if size == 0xFFFF_FFFF { size = try next() }
                if compressed == 0xFFFF_FFFF { compressed = try next() }
                if offset == 0xFFFF_FFFF { offset = try next() }
                return
            }
            p += 4 + length
        }
        throw IOError(.badHeader, file: extra.file, "\(field): ZIP64 sizes without a ZIP64 extra field")
    }

    private static func checkedInt(_ value: UInt64, _ file: String, _ field: String) throws -> Int {
        guard value <= UInt64(Int.max / 2) else { throw IOError(.badHeader, file: file, "\(field) \(value) is out of range") }
        return Int(value)
    }

    /// Builds a zip archive (no ZIP64: every member and the archive must stay under 4 GiB).
    static func build(_ members: [(name: String, bytes: [UInt8])], compress: Bool, file: String) throws -> [UInt8] {
        var out: [UInt8] = []
        var directory: [UInt8] = []
        for (name, bytes) in members {
            let crc = bytes.withUnsafeBytes { Zlib.crc32($0) }
            let payload = compress ? try bytes.withUnsafeBytes { try Zlib.deflate($0, file: file) } : bytes
            guard bytes.count < 0xFFFF_FFFF, out.count + payload.count < 0xFFFF_FFFF else {
                throw IOError(.unsupportedFeature, file: file, "member '\(name)' makes the archive exceed 4 GiB (ZIP64 writing is not supported)")
            }
            let nameBytes = Array(name.utf8)
            let offset = out.count
            func common(_ header: inout [UInt8]) {
                header.appendLittleEndian(UInt16(20))  // version needed
                header.appendLittleEndian(UInt16(0))  // flags
                header.appendLittleEndian(UInt16(compress ? 8 : 0))
                header.appendLittleEndian(UInt16(0))  // time
                header.appendLittleEndian(UInt16(0x21))  // date 1980-01-01
                header.appendLittleEndian(crc)
                header.appendLittleEndian(UInt32(payload.count))
                header.appendLittleEndian(UInt32(bytes.count))
                header.appendLittleEndian(UInt16(nameBytes.count))
                header.appendLittleEndian(UInt16(0))  // extra length
            }
            out.appendLittleEndian(UInt32(0x0403_4B50))
            common(&out)
            out += nameBytes
            out += payload
            directory.appendLittleEndian(UInt32(0x0201_4B50))
            directory.appendLittleEndian(UInt16(20))  // version made by
            common(&directory)
            directory.appendLittleEndian(UInt16(0))  // comment length
            directory.appendLittleEndian(UInt16(0))  // disk
            directory.appendLittleEndian(UInt16(0))  // internal attributes
            directory.appendLittleEndian(UInt32(0))  // external attributes
            directory.appendLittleEndian(UInt32(offset))
            directory += nameBytes
        }
        let directoryOffset = out.count
        out += directory
        out.appendLittleEndian(UInt32(0x0605_4B50))
        out.appendLittleEndian(UInt16(0))
        out.appendLittleEndian(UInt16(0))
        out.appendLittleEndian(UInt16(members.count))
        out.appendLittleEndian(UInt16(members.count))
        out.appendLittleEndian(UInt32(directory.count))
        out.appendLittleEndian(UInt32(directoryOffset))
        out.appendLittleEndian(UInt16(0))
        return out
    }
}
