import CFaultline

/// Deflate and inflate through the system zlib (`libz.so.1`, loaded at run time by the C shim).
/// The only FaultlineIO file that calls into the shim.
enum Zlib {
    enum Format { case rawDeflate, gzipOrZlib }

    static var isAvailable: Bool { fl_zlib_available() != 0 }

    /// Inflates `input` into exactly `size` bytes. Throws `IOError(.invalidValue)` naming `file` when
    /// the stream is corrupt, truncated, or does not produce exactly `size` bytes.
    static func inflate(_ input: UnsafeRawBufferPointer, format: Format, size: Int, file: String, what: String) throws -> [UInt8] {
        try requireZlib(file)
        var out = [UInt8](repeating: 0, count: size)
        let rc = out.withUnsafeMutableBytes { o in
            fl_inflate(format == .rawDeflate ? 0 : 1, input.baseAddress?.assumingMemoryBound(to: UInt8.self),
                       UInt64(input.count), o.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(size))
        }
        guard rc == 0 else {
            throw IOError(.invalidValue, file: file, "\(what): compressed data is corrupt or does not inflate to the declared \(size) bytes")
        }
        return out
    }

    /// Inflates a gzip stream of unknown length.
    static func gunzip(_ input: UnsafeRawBufferPointer, file: String, limit: Int = IOLimits.decompressedBytes) throws -> [UInt8] {
        try requireZlib(file)
        final class Sink { var bytes: [UInt8] = []; var limit = 0 }
        let sink = Sink()
        sink.limit = limit
        let rc = withExtendedLifetime(sink) {
            fl_gunzip_stream(input.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(input.count),
                             Unmanaged.passUnretained(sink).toOpaque()) { context, chunk, n in
                let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
                if sink.bytes.count + Int(n) > sink.limit { return 1 }
                sink.bytes.append(contentsOf: UnsafeBufferPointer(start: chunk, count: Int(n)))
                return 0
            }
        }
        switch rc {
        case 0: return sink.bytes
        case -3: throw IOError(.invalidValue, file: file, "gzip stream inflates to more than \(limit) bytes, the limit on decompressed data (FAULTLINE_MAX_DECOMPRESSED_BYTES raises it)")
        default: throw IOError(.invalidValue, file: file, "gzip data is corrupt or truncated")
        }
    }

    /// Raw deflate (no header), as zip members store it.
    static func deflate(_ input: UnsafeRawBufferPointer, level: Int = 6, file: String) throws -> [UInt8] {
        try requireZlib(file)
        let capacity = input.count + input.count / 1000 + 64  // deflate's worst case is ~0.03 % growth
        var out = [UInt8](repeating: 0, count: capacity)
        let n = out.withUnsafeMutableBytes { o in
            fl_deflate_raw(Int32(level), input.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(input.count),
                           o.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(capacity))
        }
        guard n >= 0 else { throw IOError(.unwritable, file: file, "deflate failed") }
        out.removeSubrange(Int(n)...)
        return out
    }

    static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        fl_crc32(0, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }

    private static func requireZlib(_ file: String) throws {
        guard isAvailable else {
            throw IOError(.unsupportedFeature, file: file,
                          "compressed data needs zlib (libz.so.1): \(String(cString: fl_zlib_error())); install zlib1g")
        }
    }
}
