/// Invalid certification requests. Each message says what to change.
public enum CertificationError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A parameter out of range (ε, σ, sample counts, α); the message names it.
    case invalidParameter(String)
    /// Inputs that do not fit the model or the request (widths, labels, non-finite values); the message names the row.
    case invalidInput(String)
    /// A layer the chosen bound method cannot handle (names the layer).
    case unsupportedLayer(String)

    public var description: String {
        switch self {
        case .invalidParameter(let s): return "invalid certification parameter: \(s)"
        case .invalidInput(let s): return "invalid certification input: \(s)"
        case .unsupportedLayer(let s): return "unsupported layer for certification: \(s)"
        }
    }
}
