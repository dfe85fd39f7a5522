import CFaultline
import Foundation

/// OpenBLAS's thread count is one process-wide setting; this is the only code that changes it after
/// load, so that `NativeBLAS.withSingleThread` scopes on different threads nest safely.
///
/// The first scope to open records the configured count and sets OpenBLAS to one thread; the last one
/// to close restores it. A count set while a scope is open (`NativeBLAS.threads`, `Linalg.setThreads`)
/// is recorded and applied when the last scope closes, so a scope never runs with more than one thread.
/// A BLAS call already running on another thread keeps the thread count it started with (OpenBLAS reads
/// it once per call); changing it never changes a result, only how a later call is split.
final class BLASThreads: @unchecked Sendable {  // state guarded by `lock`
    static let shared = BLASThreads()
    private let lock = NSLock()
    private var scopes = 0
    private var configured = 0

    /// The count calls outside the single-thread scopes run with (0 when unknown, e.g. not OpenBLAS).
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return scopes > 0 ? configured : Int(fl_blas_get_num_threads())
    }

    func set(_ n: Int) {
        lock.lock()
        defer { lock.unlock() }
        if scopes > 0 { configured = n } else { fl_blas_set_num_threads(Int32(clamping: n)) }
    }

    func withSingleThread<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        if scopes == 0 {
            configured = Int(fl_blas_get_num_threads())
            if configured > 1 { fl_blas_set_num_threads(1) }
        }
        scopes += 1
        lock.unlock()
        defer {
            lock.lock()
            scopes -= 1
            if scopes == 0 && configured > 1 { fl_blas_set_num_threads(Int32(clamping: configured)) }
            lock.unlock()
        }
        return try body()
    }
}
