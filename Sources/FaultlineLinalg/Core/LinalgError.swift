/// Errors thrown by the linear-algebra layer. Every message names the operation and what was wrong.
public enum LinalgError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Operand shapes do not agree, e.g. `gemm: A is 3×4 but B is 5×2 (inner dimensions 4 ≠ 5)`.
    case shapeMismatch(operation: String, detail: String)
    /// An initialiser got the wrong number of elements or a ragged row.
    case invalidShape(detail: String)
    /// The matrix is not (numerically) positive definite: the leading minor of this order (1-based)
    /// has a non-positive pivot.
    case notPositiveDefinite(operation: String, order: Int)
    /// A NaN or infinity where the operation cannot give a meaningful answer (e.g. a factorisation).
    case nonFinite(operation: String, detail: String)
    /// The requested backend cannot run here.
    case backendUnavailable(Backend, reason: String)
    /// An iterative algorithm did not converge.
    case didNotConverge(operation: String, detail: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, detail):
            return "\(operation): shape mismatch: \(detail)"
        case let .invalidShape(detail):
            return "invalid shape: \(detail)"
        case let .notPositiveDefinite(operation, order):
            return "\(operation): matrix is not positive definite (the leading minor of order \(order) "
                + "has a non-positive pivot); add shrinkage or a small ridge to the diagonal"
        case let .nonFinite(operation, detail):
            return "\(operation): non-finite input: \(detail)"
        case let .backendUnavailable(backend, reason):
            return "backend '\(backend.rawValue)' is unavailable: \(reason)"
        case let .didNotConverge(operation, detail):
            return "\(operation): did not converge: \(detail)"
        }
    }
}
