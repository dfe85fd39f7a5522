import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reading whole files (memory-mapped) and writing them atomically.
public enum FileAccess {
    /// The file's bytes, memory-mapped when possible so large files are not copied up front.
    /// Throws `IOError(.notFound)` or `.unreadable` naming the path and what it is (see
    /// `checkRegularFile`).
    ///
    /// The mapping is made by `MappedFile` and handed to `Data` without a copy (unmapped when the last
    /// `Data` sharing it goes), so no read goes through Foundation's file APIs, whose failed-read path
    /// leaks a 4 KiB buffer per failure (which made LeakSanitizer runs fail).
    public static func read(_ path: String) throws -> Data {
        try checkRegularFile(path)
        var info = stat()
        if stat(path, &info) == 0 && info.st_size == 0 { return Data() }
        guard let mapping = MappedFile(path) else {
            // Rare after the check (a race, an I/O error): say what the system says.
            let reason = access(path, R_OK) == 0 ? "the file could not be mapped" : String(cString: strerror(errno))
            throw IOError(.unreadable, file: path, "cannot read: \(reason)")
        }
        return Data(bytesNoCopy: mapping.base, count: mapping.size, deallocator: .custom { _, _ in withExtendedLifetime(mapping) {} })
    }

    /// Throws unless `path` names a readable regular file (symbolic links followed), with a message
    /// that says what the path is instead: an empty path, a missing file, a dangling symbolic link,
    /// a symbolic-link loop, a directory, a FIFO, a device or a socket, or a permission problem.
    /// Reading a FIFO or a device such as `/dev/zero` could block or never end, so they are refused.
    public static func checkRegularFile(_ path: String) throws {
        guard !path.isEmpty else { throw IOError(.notFound, file: "(empty path)", "the file name is empty; give the path of a file") }
        var info = stat()
        if stat(path, &info) != 0 {
            let code = errno
            var linkInfo = stat()
            switch code {
            case ENOENT where lstat(path, &linkInfo) == 0:
                throw IOError(.notFound, file: path, "a symbolic link to a file that does not exist")
            case ENOENT: throw IOError(.notFound, file: path, "no such file")
            case ELOOP: throw IOError(.unreadable, file: path, "too many levels of symbolic links (a symbolic-link loop?)")
            case ENOTDIR: throw IOError(.notFound, file: path, "a component of the path is not a directory")
            case EACCES: throw IOError(.unreadable, file: path, "permission denied (a directory on the path cannot be searched)")
            default: throw IOError(.unreadable, file: path, "cannot read: \(String(cString: strerror(code)))")
            }
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw IOError(.unreadable, file: path, "is a directory, not a file")
        case S_IFIFO: throw IOError(.unreadable, file: path, "is a FIFO (named pipe), not a regular file; write the data to a file first")
        case S_IFCHR, S_IFBLK: throw IOError(.unreadable, file: path, "is a device, not a regular file")
        case S_IFSOCK: throw IOError(.unreadable, file: path, "is a socket, not a regular file")
        default: throw IOError(.unreadable, file: path, "is not a regular file")
        }
        guard access(path, R_OK) == 0 else {
            throw IOError(.unreadable, file: path, "permission denied: \(String(cString: strerror(errno)))")
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
