import Foundation
import Synchronization

/// The namespace of Faultline's linear-algebra primitives.
///
/// Every primitive takes an optional `backend:`; `nil` means `Backend.default`. Kernels elsewhere in
/// Faultline call these primitives, never BLAS or SIMD code directly, so speeding up one primitive
/// speeds up every kernel built on it.
public enum Linalg {
    /// Threads Faultline's own parallel loops use (the `simd` GEMM, `parallelForEach`,
    /// `blockedProduct`): `FAULTLINE_THREADS` when set at start-up, else the number of active
    /// processors; changed in-process by `setThreads`.
    public static var simdThreads: Int { ThreadCount.value.load(ordering: .relaxed) }

    /// Sets the thread count of this process, as `FAULTLINE_THREADS=count` does at start-up: Faultline's
    /// own tasks (`simdThreads`) and OpenBLAS (`NativeBLAS.threads`) both follow. For applications that
    /// embed Faultline, and for the tests that prove results documented as thread-count independent are
    /// bit-identical for 1 and 2 threads (`withThreads`). A kernel already running keeps the split it
    /// started with. `count ≥ 1` is a precondition.
    public static func setThreads(_ count: Int) {
        precondition(count >= 1, "thread count \(count) must be at least 1")
        ThreadCount.value.store(count, ordering: .relaxed)
        BLASThreads.shared.set(count)
    }

    /// Runs `body` with `setThreads(count)`, then restores both previous counts. Calls on different
    /// threads are serialised by a process-wide lock held while `body` runs, so concurrent tests cannot
    /// interleave their settings; `body` must not call `withThreads` (it would wait for itself).
    public static func withThreads<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        ThreadCount.lock.lock()
        defer { ThreadCount.lock.unlock() }
        let (ours, blas) = (simdThreads, BLASThreads.shared.count)
        setThreads(count)
        defer {
            ThreadCount.value.store(ours, ordering: .relaxed)
            if blas > 0 { BLASThreads.shared.set(blas) }
        }
        return try body()
    }

    /// How many primitive calls each backend has executed in this process (for tests and diagnostics
    /// that must prove which path ran).
    public static func callCount(_ backend: Backend) -> Int { CallCounter.shared.value(backend) }

    /// Resolves the backend and counts the call.
    @inline(__always)
    static func run(_ requested: Backend?) -> Backend {
        let backend = Backend.resolve(requested)
        CallCounter.shared.increment(backend)
        return backend
    }
}

final class CallCounter: Sendable {
    static let shared = CallCounter()
    private let reference = Atomic<Int>(0)
    private let simd = Atomic<Int>(0)
    private let blas = Atomic<Int>(0)

    func increment(_ b: Backend) {
        switch b {
        case .reference: reference.wrappingAdd(1, ordering: .relaxed)
        case .simd: simd.wrappingAdd(1, ordering: .relaxed)
        case .blas: blas.wrappingAdd(1, ordering: .relaxed)
        }
    }

    func value(_ b: Backend) -> Int {
        switch b {
        case .reference: return reference.load(ordering: .relaxed)
        case .simd: return simd.load(ordering: .relaxed)
        case .blas: return blas.load(ordering: .relaxed)
        }
    }
}

/// The process's thread count for Faultline's own tasks (`Linalg.simdThreads`).
enum ThreadCount {
    static let value = Atomic<Int>({
        if let raw = ProcessInfo.processInfo.environment["FAULTLINE_THREADS"], let n = Int(raw), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }())
    /// Serialises `Linalg.withThreads`.
    static let lock = NSLock()
}
