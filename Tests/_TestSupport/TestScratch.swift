import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one place tests put temporary files: `$TMPDIR/faultline-tests-<pid>-<uuid>/`, created on first
/// use and removed with everything under it when the test process exits normally (`atexit`), so a test
/// run leaves nothing behind in /tmp however many files its tests write (a crashed run leaves its one
/// folder). Every test that needs a path uses `TestScratch.root.appendingPathComponent(…)`.
public enum TestScratch {
    /// The process's scratch folder (created, and registered for removal at exit, on first use).
    public static var root: URL { folder.url }

    private final class Folder: Sendable {
        let url: URL
        init() {
            url = FileManager.default.temporaryDirectory
                .appendingPathComponent("faultline-tests-\(getpid())-\(UUID().uuidString)", isDirectory: true)
            try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            scratchPath = strdup(url.path)
            atexit {
                if let path = scratchPath { try? FileManager.default.removeItem(atPath: String(cString: path)) }
            }
        }
    }

    private static let folder = Folder()
}

/// The scratch path for the `atexit` handler, which cannot capture context.
nonisolated(unsafe) private var scratchPath: UnsafeMutablePointer<CChar>?
