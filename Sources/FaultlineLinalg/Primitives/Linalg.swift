import Foundation
import Synchronization

/// The namespace of Faultline's linear-algebra primitives.
///
/// Every primitive takes an optional `backend:`; `nil` means `Backend.default`. Kernels elsewhere in
/// Faultline call these primitives, never BLAS or SIMD code directly, so speeding up one primitive
/// speeds up every kernel built on it.
public enum Linalg {
    /// Threads the `simd` backend uses for GEMM: `FAULTLINE_THREADS` when set, else the number of
    /// active processors.
    public static let simdThreads: Int = {
        if let raw = ProcessInfo.processInfo.environment["FAULTLINE_THREADS"], let n = Int(raw), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

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
