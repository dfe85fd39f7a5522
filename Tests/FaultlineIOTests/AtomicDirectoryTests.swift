import FaultlineIO
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
import _TestSupport
#endif

/// `AtomicDirectory.publish`: the target is always a complete directory, crash leftovers go with the next
/// publish, a live writer's version is never touched, older real directories are replaced, files are not.
@Suite("atomic report directory")
struct AtomicDirectoryTests {
    static func folder() -> String {
        let path = TestScratch.root.appendingPathComponent("atomic-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func files(_ tag: String) -> [String: Data] {
        ["report.json": Data("{\"tag\": \"\(tag)\"}".utf8), "report.html": Data("<p>\(tag)</p>".utf8)]
    }

    static func hidden(_ parent: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(".") }.sorted()) ?? []
    }

    @Test func replacesAndLeavesOnlyTheCurrentVersion() throws {
        let parent = Self.folder(), out = parent + "/out"
        for tag in ["a", "b", "c"] {
            try AtomicDirectory.publish(Self.files(tag), at: out)
            #expect(try String(contentsOfFile: out + "/report.html", encoding: .utf8) == "<p>\(tag)</p>")
            #expect(Self.hidden(parent).count == 1, "\(Self.hidden(parent))")
        }
        // A trailing slash names the same target.
        try AtomicDirectory.publish(Self.files("d"), at: out + "/")
        #expect(try String(contentsOfFile: out + "/report.html", encoding: .utf8) == "<p>d</p>" && Self.hidden(parent).count == 1)
    }

    /// What a crash at each stage leaves behind (an unreferenced version, its lock file, a link, the
    /// older Faultline's .tmp/.old folders) is removed by the next publish; the report stays complete.
    @Test func crashLeftoversGoWithTheNextPublish() throws {
        let parent = Self.folder(), out = parent + "/out", fm = FileManager.default
        try AtomicDirectory.publish(Self.files("a"), at: out)
        try fm.createDirectory(atPath: parent + "/.out.v-DEAD", withIntermediateDirectories: false)
        try Data("x".utf8).write(to: URL(fileURLWithPath: parent + "/.out.v-DEAD/report.json"))
        _ = fm.createFile(atPath: parent + "/.out.v-DEAD.lock", contents: nil)
        _ = fm.createFile(atPath: parent + "/.out.v-GONE.lock", contents: nil)
        try fm.createSymbolicLink(atPath: parent + "/.out.link-DEAD", withDestinationPath: ".out.v-DEAD")
        try fm.createDirectory(atPath: parent + "/.out.link-EXCHANGED", withIntermediateDirectories: false)  // an old directory swapped out
        try fm.createDirectory(atPath: parent + "/.out.tmp-OLD", withIntermediateDirectories: false)
        try fm.createDirectory(atPath: parent + "/.out.old-OLD", withIntermediateDirectories: false)
        try fm.createDirectory(atPath: parent + "/.other.v-KEEP", withIntermediateDirectories: false)  // another target's: untouched
        try AtomicDirectory.publish(Self.files("b"), at: out)
        #expect(Self.hidden(parent).filter { $0.hasPrefix(".out.") }.count == 1, "\(Self.hidden(parent))")
        #expect(fm.fileExists(atPath: parent + "/.other.v-KEEP"))
        #expect(try String(contentsOfFile: out + "/report.html", encoding: .utf8) == "<p>b</p>")
    }

    /// A version whose writer still holds its lock (another process or thread mid-write) survives a
    /// publish; once the lock is released, the next publish removes it.
    @Test func aLiveWritersVersionIsNeverRemoved() throws {
        let parent = Self.folder(), out = parent + "/out", fm = FileManager.default
        try fm.createDirectory(atPath: parent + "/.out.v-LIVE", withIntermediateDirectories: false)
        let fd = open(parent + "/.out.v-LIVE.lock", O_CREAT | O_RDWR, 0o644)
        #expect(fd >= 0 && flock(fd, LOCK_EX) == 0)
        try AtomicDirectory.publish(Self.files("a"), at: out)
        #expect(fm.fileExists(atPath: parent + "/.out.v-LIVE"))
        close(fd)
        try AtomicDirectory.publish(Self.files("b"), at: out)
        #expect(!fm.fileExists(atPath: parent + "/.out.v-LIVE"))
    }

    /// Concurrent writers: every publish succeeds, the result is one of them, whole, and nothing is left.
    @Test func concurrentWritersLeaveOneCompleteDirectory() throws {
        let parent = Self.folder(), out = parent + "/out"
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 8) { k in
            do { try AtomicDirectory.publish(Self.files("w\(k)"), at: out) } catch { errors.add("\(error)") }
        }
        #expect(errors.messages.isEmpty, "\(errors.messages)")
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8), json = try String(contentsOfFile: out + "/report.json", encoding: .utf8)
        let tag = html.dropFirst(3).dropLast(4)
        #expect(json == "{\"tag\": \"\(tag)\"}", "files of different writers mixed: \(html) / \(json)")
        try AtomicDirectory.publish(Self.files("last"), at: out)
        #expect(Self.hidden(parent).count == 1, "\(Self.hidden(parent))")
    }

    @Test func anOlderRealDirectoryIsReplacedAndAFileIsRefused() throws {
        let parent = Self.folder(), out = parent + "/out", fm = FileManager.default
        try fm.createDirectory(atPath: out, withIntermediateDirectories: false)
        try Data("old".utf8).write(to: URL(fileURLWithPath: out + "/report.html"))
        try AtomicDirectory.publish(Self.files("new"), at: out)
        #expect(try fm.destinationOfSymbolicLink(atPath: out).hasPrefix(".out.v-"))
        #expect(try String(contentsOfFile: out + "/report.html", encoding: .utf8) == "<p>new</p>" && Self.hidden(parent).count == 1)
        let file = parent + "/file"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: file))
        #expect(throws: IOError.self) { try AtomicDirectory.publish(Self.files("x"), at: file) }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep" && Self.hidden(parent).count == 1)
        #expect(throws: IOError.self) { try AtomicDirectory.publish(["a/b": Data()], at: parent + "/other") }
    }
}

/// Messages collected from concurrent closures.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ m: String) { lock.lock(); list.append(m); lock.unlock() }
    var messages: [String] { lock.lock(); defer { lock.unlock() }; return list }
}

/// Compressed members are inflated one at a time and only within the documented limit.
@Suite("decompression limits")
struct DecompressionLimitTests {
    @Test func onlyTheNamedMemberIsReadAndTheLimitHolds() throws {
        let path = AtomicDirectoryTests.folder() + "/a.npz"
        let small = Tensor(shape: [4], values: [Float](repeating: 1, count: 4)), large = Tensor(shape: [4096], values: [Float](repeating: 2, count: 4096))
        for compressed in [false, true] {
            try NPZ.write([("small", small), ("large", large)], to: path, compressed: compressed)
            #expect(try NPZ.read(path, array: nil) == small)
            #expect(try NPZ.read(path, array: "small", limit: 1024) == small, "the large member must not be inflated for the small one")
            let error = try #require(throws: IOError.self) { try NPZ.read(path, array: "large", limit: 1024) }
            #expect(error.description.contains("1024-byte limit") && error.description.contains("FAULTLINE_MAX_DECOMPRESSED_BYTES"))
            #expect(try ArrayFile.tensor(path + ":large") == large)
        }
        #expect(IOLimits.decompressedBytes >= 1 << 20 && IOLimits.decompressedBytes <= 1 << 34)
    }
}
