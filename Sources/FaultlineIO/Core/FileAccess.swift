import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reading whole files (memory-mapped) and writing them atomically.
public enum FileAccess {
    /// The file's bytes, memory-mapped when possible so large files are not copied up front.
    /// Throws `IOError(.notFound)` or `.unreadable` naming the path.
    public static func read(_ path: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw IOError(.notFound, file: path, "no such file")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw IOError(.unreadable, file: path, "cannot read: \(error.localizedDescription)")
        }
    }

    /// Writes `bytes` to a temporary file in the same directory, flushes it to disk and renames it
    /// over `path`: a crash or a full disk never leaves a partial file under the target name.
    public static func writeAtomically(_ bytes: some Collection<UInt8>, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let template = directory + "/." + url.lastPathComponent + ".tmp-XXXXXX"
        var name = Array(template.utf8CString)
        let fd = name.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw IOError(.unwritable, file: path, "cannot create a temporary file in \(directory): \(String(cString: strerror(errno)))")
        }
        let temporary = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        let contiguous = Array(bytes)
        var written = 0
        while written < contiguous.count {
            let n = contiguous.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, contiguous.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                throw IOError(.unwritable, file: path, "write failed: \(reason)")
            }
            written += n
        }
        fchmod(fd, 0o644)
        guard fsync(fd) == 0, close(fd) == 0 else {
            throw IOError(.unwritable, file: path, "flush failed: \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            throw IOError(.unwritable, file: path, "rename failed: \(String(cString: strerror(errno)))")
        }
        ok = true
    }
}
