/// Invalid inputs to the shift kernels.
public enum ShiftError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Empty or non-finite data, mismatched widths or lengths, a class without samples, a parameter out of range; the message names it.
    case invalidInput(String)
    /// A covariance (or Gram matrix) that is not positive definite; the message names it and suggests shrinkage.
    case singular(String)

    public var description: String {
        switch self {
        case .invalidInput(let s): return "invalid input: \(s)"
        case .singular(let s): return "singular matrix: \(s)"
        }
    }
}
