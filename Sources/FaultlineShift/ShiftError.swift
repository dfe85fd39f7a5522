/// Invalid inputs to the shift kernels.
public enum ShiftError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidInput(String)
    case singular(String)

    public var description: String {
        switch self {
        case .invalidInput(let s): return "invalid input: \(s)"
        case .singular(let s): return "singular matrix: \(s)"
        }
    }
}
