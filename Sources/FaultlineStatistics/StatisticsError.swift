/// Errors of the statistics layer: inputs outside a function's domain, parameters out of range.
public enum StatisticsError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidInput(String)
    case invalidParameter(String)

    public var description: String {
        switch self {
        case .invalidInput(let s): return "invalid input: \(s)"
        case .invalidParameter(let s): return "invalid parameter: \(s)"
        }
    }
}
