import CFaultline
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Publishes a directory of files under a path atomically, by swapping a symbolic link.
///
/// `path` becomes a symbolic link to a hidden sibling version directory `.NAME.v-<id>`. A new version is
/// written in full and flushed (every file and the directory `fsync`ed), then one `rename(2)` replaces
/// the link; a real directory at `path` (a report written by an older Faultline) is swapped for the link
/// with `renameat2(RENAME_EXCHANGE)` and then removed.
///
/// Guarantee: at every instant — also after a crash or `kill -9` at any point — `path` is absent (before
/// the first publish), the previous complete directory, or the new complete one. While a version is
/// written its writer holds an exclusive `flock` on `.NAME.v-<id>.lock` (taken before the lock file gets
/// that name, and released by the kernel when the writer dies); every publish then removes the
/// versions and links that `path` does not point to and no live writer holds (and the `.NAME.tmp-*` /
/// `.NAME.old-*` directories older Faultline versions could leave), so a crash's leftovers go with the
/// next run. Concurrent writers never delete each other's work: the last rename wins and every reader
/// sees one complete directory. A regular file (or anything else but a directory or a link) at `path` is
/// never replaced: that is an error.
public enum AtomicDirectory {
    /// The points of a publish a test can stop at (to kill the process there).
    public enum Stage: String, Sendable {
        /// The lock is held; the version directory is written; `path` links to it; the old versions are removed.
        case locked, written, linked, published
    }

    /// Writes `files` (name → contents; plain names, no `/`) as the new directory at `path`. Throws
    /// `IOError(.unwritable)` naming `path` on any failure, leaving `path` as it was. `stage` is called
    /// at each `Stage` (for crash tests; nil in normal use).
    public static func publish(_ files: [String: Data], at path: String, stage: ((Stage) -> Void)? = nil) throws {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard !trimmed.isEmpty else { throw IOError(.unwritable, file: path, "an empty path cannot hold a directory") }
        for name in files.keys where name.isEmpty || name.contains("/") || name == "." || name == ".." {
            throw IOError(.unwritable, file: path, "'\(name)' is not a plain file name")
        }
        let url = URL(fileURLWithPath: trimmed)
        let parent = url.deletingLastPathComponent().path, base = url.lastPathComponent
        func fail(_ what: String, _ code: Int32 = errno) -> IOError {
            IOError(.unwritable, file: path, "\(what): \(String(cString: strerror(code)))")
        }
        var info = stat()
        if lstat(trimmed, &info) == 0 {
            let kind = info.st_mode & S_IFMT
            guard kind == S_IFDIR || kind == S_IFLNK else {
                throw IOError(.unwritable, file: path, "exists and is not a directory; choose another --out or remove it")
            }
        }
        let id = UUID().uuidString
        let versionName = ".\(base).v-\(id)", version = parent + "/" + versionName, link = parent + "/.\(base).link-\(id)"
        // The lock is taken under a private name and then renamed into place, so no cleaner ever finds the
        // lock path of a live version unlocked.
        let lockPath = version + ".lock", lockTemporary = parent + "/.\(base).lock-tmp-\(id)"
        let lock = open(lockTemporary, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw fail("cannot create \(lockTemporary)") }
        guard flock(lock, LOCK_EX) == 0, rename(lockTemporary, lockPath) == 0 else {
            let code = errno
            close(lock)
            unlink(lockTemporary)
            throw fail("cannot lock \(lockPath)", code)
        }
        stage?(.locked)
        var published = false
        defer {
            if !published {
                try? FileManager.default.removeItem(atPath: version)
                unlink(link)
            }
            close(lock)
            unlink(lockPath)
            cleanUp(parent: parent, base: base, target: trimmed)
        }
        guard mkdir(version, 0o755) == 0 else { throw fail("cannot create \(version)") }
        for (name, data) in files { try writeFlushed(data, to: version + "/" + name, reporting: path) }
        try flushDirectory(version, reporting: path)
        stage?(.written)
        guard symlink(versionName, link) == 0 else { throw fail("cannot create the link \(link)") }
        stage?(.linked)
        if lstat(trimmed, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR {
            // A real directory from an older Faultline: exchange it with the link in one step, then remove it.
            let exchanged = fl_rename_exchange(link, trimmed)
            if exchanged == 0 {
                try? FileManager.default.removeItem(atPath: link)  // now the old directory
            } else {
                // No RENAME_EXCHANGE on this file system: the old two renames (not atomic in between).
                let aside = parent + "/.\(base).old-\(id)"
                guard rename(trimmed, aside) == 0 else { throw fail("cannot move the old directory aside") }
                guard rename(link, trimmed) == 0 else { _ = rename(aside, trimmed); throw fail("cannot publish") }
                try? FileManager.default.removeItem(atPath: aside)
            }
        } else {
            guard rename(link, trimmed) == 0 else { throw fail("cannot publish the link") }
        }
        published = true
        stage?(.published)
        try flushDirectory(parent, reporting: path)
    }

    /// Where `path` points: the version directory's name, or nil.
    static func currentVersion(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Removes what no live writer holds and `target` does not point to: version directories and their
    /// lock files, links, and older Faultline's temporaries. A version whose lock is held is in progress;
    /// a version is removed only while this process holds its lock and after re-reading the link, so a
    /// writer that published it a moment ago (and then released its lock) keeps it.
    static func cleanUp(parent: String, base: String, target: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        let versionPrefix = ".\(base).v-", linkPrefix = ".\(base).link-"
        /// Runs `body` holding the lock of version `name` if no writer holds it; false when one does.
        func whileAbandoned(_ name: String, _ body: () -> Void) -> Bool {
            let fd = open(parent + "/" + name + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
            body()
            return true
        }
        for entry in entries {
            let full = parent + "/" + entry
            if entry.hasPrefix(versionPrefix) {
                let version = entry.hasSuffix(".lock") ? String(entry.dropLast(5)) : entry
                if entry.hasSuffix(".lock") && entries.contains(version) { continue }  // handled with its directory
                if currentVersion(target) == version { continue }  // the published one: not even a lock file is made for it
                _ = whileAbandoned(version) {
                    guard currentVersion(target) != version else { return }
                    try? FileManager.default.removeItem(atPath: parent + "/" + version)
                    unlink(parent + "/" + version + ".lock")
                }
            } else if entry.hasPrefix(".\(base).lock-tmp-") {
                let fd = open(full, O_RDWR | O_CLOEXEC)
                if fd >= 0 {
                    if flock(fd, LOCK_EX | LOCK_NB) == 0 { unlink(full) }  // its writer died before renaming it
                    close(fd)
                }
            } else if entry.hasPrefix(linkPrefix) {
                var info = stat()
                if lstat(full, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR {
                    // An older real directory exchanged for the link by a writer that died before removing it.
                    try? FileManager.default.removeItem(atPath: full)
                    continue
                }
                // A link lives only while its writer holds the lock of the version it names.
                guard let pointee = currentVersion(full) else { unlink(full); continue }
                _ = whileAbandoned(pointee) { unlink(full) }
            } else if entry.hasPrefix(".\(base).tmp-") || entry.hasPrefix(".\(base).old-") {
                var info = stat()
                if lstat(full, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR { try? FileManager.default.removeItem(atPath: full) }
            }
        }
    }

    static func writeFlushed(_ data: Data, to file: String, reporting path: String) throws {
        let fd = open(file, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError(.unwritable, file: path, "cannot create \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw IOError(.unwritable, file: path, "cannot write \(file): \(String(cString: strerror(errno)))") }
                offset += n
            }
        }
        guard fsync(fd) == 0 else { throw IOError(.unwritable, file: path, "cannot flush \(file): \(String(cString: strerror(errno)))") }
    }

    static func flushDirectory(_ directory: String, reporting path: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError(.unwritable, file: path, "cannot open \(directory): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw IOError(.unwritable, file: path, "cannot flush \(directory): \(String(cString: strerror(errno)))") }
    }
}
