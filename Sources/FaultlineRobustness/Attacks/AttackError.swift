/// Invalid attack requests. Each message says what to change.
public enum AttackError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidParameter(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidParameter(let s): return "invalid attack parameter: \(s)"
        case .invalidInput(let s): return "invalid attack input: \(s)"
        }
    }
}
