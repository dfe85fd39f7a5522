/// Invalid attack requests. Each message says what to change.
public enum AttackError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A parameter out of range (ε, step size, steps, restarts, queries); the message names it.
    case invalidParameter(String)
    /// Inputs that do not fit (a row outside the box, a label outside the classes, mismatched counts); the message names the row.
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidParameter(let s): return "invalid attack parameter: \(s)"
        case .invalidInput(let s): return "invalid attack input: \(s)"
        }
    }
}
