import Foundation

/// Which implementation of the primitives runs.
///
/// - `reference`: scalar loops, obvious code, `Double` accumulation. The oracle the others are tested
///   against; slow.
/// - `simd`: pure Swift with SIMD vectors, packed register-blocked GEMM, multi-threaded. Needs no
///   native library.
/// - `blas`: OpenBLAS/LAPACKE loaded at run time through the C shim. Row reductions (softmax,
///   log-sum-exp, …) have no BLAS routine and run the `simd` code on this backend.
///
/// The default is `.blas` when the libraries load, otherwise `.simd` with a one-line notice on stderr.
/// `FAULTLINE_BACKEND=blas|simd|reference` overrides the default; every primitive also takes an
/// explicit backend.
public enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Scalar loops in Double (the oracle); pure-Swift SIMD kernels; OpenBLAS/LAPACKE loaded at run time.
    case reference, simd, blas

    public var description: String { rawValue }

    /// The backend used when a primitive is called without one.
    public static var `default`: Backend { BackendSelection.shared.defaultBackend }

    /// Whether this backend can run in this process.
    public var isAvailable: Bool {
        switch self {
        case .reference, .simd: return true
        case .blas: return NativeBLAS.isAvailable
        }
    }

    /// The backend that actually runs for a request: `nil` means the default; `.blas` when the
    /// library is missing falls back to `.simd` (with the one-line notice, printed once per process).
    public static func resolve(_ requested: Backend?) -> Backend {
        guard let requested else { return .default }
        if requested == .blas && !NativeBLAS.isAvailable {
            _ = BackendSelection.shared  // prints the one-line notice, once per process
            return .simd
        }
        return requested
    }
}

/// Chooses the default backend once per process from the environment and the BLAS load result.
final class BackendSelection: Sendable {
    static let shared = BackendSelection()
    let defaultBackend: Backend

    private init() {
        let environment = ProcessInfo.processInfo.environment
        let requested = environment["FAULTLINE_BACKEND"].flatMap { Backend(rawValue: $0.lowercased()) }
        if let raw = environment["FAULTLINE_BACKEND"], requested == nil {
            Self.notice("FAULTLINE_BACKEND=\(raw) is not one of blas, simd, reference; using the default")
        }
        switch requested {
        case .reference?: defaultBackend = .reference
        case .simd?: defaultBackend = .simd
        case .blas?, nil:
            if NativeBLAS.isAvailable {
                defaultBackend = .blas
            } else {
                defaultBackend = .simd
                Self.notice("BLAS unavailable (\(NativeBLAS.loadError)); using the pure-Swift simd backend")
            }
        }
    }

    private static func notice(_ message: String) {
        FileHandle.standardError.write(Data("faultline: \(message)\n".utf8))
    }
}
