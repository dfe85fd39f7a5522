/// Errors of the statistics layer: inputs outside a function's domain, parameters out of range.
public enum StatisticsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A sample or value outside the function's domain (empty, NaN, negative counts…); the message names it.
    case invalidInput(String)
    /// A parameter out of range (α, a resample count, a quantile…); the message names it and the range.
    case invalidParameter(String)

    public var description: String {
        switch self {
        case .invalidInput(let s): return "invalid input: \(s)"
        case .invalidParameter(let s): return "invalid parameter: \(s)"
        }
    }
}
