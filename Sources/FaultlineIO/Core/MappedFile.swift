#if canImport(Glibc)
import Glibc
#endif

/// A private, writable memory mapping of a whole file (`MAP_PRIVATE`): pages are read on first touch
/// and a write copies the page, never reaching the file. Lets a large row-major array become a
/// `Matrix` with no copy at all.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int

    /// Maps `path`; returns nil for an empty file, for anything but a regular file, or when mapping
    /// fails (the caller then reads through `FileAccess.read`, which names the problem). The file is
    /// opened non-blocking so a FIFO cannot hang the open.
    init?(_ path: String) {
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size > 0 else { return nil }
        let size = Int(info.st_size)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { return nil }
        _ = madvise(p, size, MADV_SEQUENTIAL)
        base = p
        self.size = size
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Drops the whole pages inside `range` from memory (MADV_DONTNEED): for a stream that has finished
    /// with them, so the resident size stays one window. Untouched pages refault from the file.
    func release(_ range: Range<Int>) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lower = (range.lowerBound + page - 1) / page * page, upper = range.upperBound / page * page
        guard upper > lower else { return }
        _ = madvise(base + lower, upper - lower, MADV_DONTNEED)
    }

    deinit { munmap(base, size) }
}
