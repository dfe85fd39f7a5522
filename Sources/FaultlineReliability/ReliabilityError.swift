/// Invalid inputs to the reliability kernels; each message names the input and what to change.
public enum ReliabilityError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Data that are not what the kernel needs (not probabilities, labels out of range, empty, non-finite); the message names the row.
    case invalidInput(String)
    /// A parameter out of range (α, bins, iterations); the message names it.
    case invalidParameter(String)
    /// The data do not determine the quantity asked for (e.g. a temperature on separable logits).
    case notIdentifiable(String)

    public var description: String {
        switch self {
        case .invalidInput(let s): return "invalid input: \(s)"
        case .invalidParameter(let s): return "invalid parameter: \(s)"
        case .notIdentifiable(let s): return "not identifiable: \(s)"
        }
    }
}

/// Shared validation of (probabilities, labels) pairs.
enum Check {
    /// Rows are probability vectors: finite, in [0, 1], summing to 1 within `tolerance`.
    static func probabilities(_ p: UnsafeBufferPointer<Float>, rows: Int, classes: Int, name: String, tolerance: Double = 1e-3) throws {
        guard rows > 0, classes > 0 else { throw ReliabilityError.invalidInput("\(name) is empty (\(rows)×\(classes))") }
        for i in 0..<rows {
            var sum = 0.0
            for j in 0..<classes {
                let v = p[i * classes + j]
                guard v.isFinite, v >= 0, v <= 1 else {
                    throw ReliabilityError.invalidInput("\(name)[\(i), \(j)] = \(v) is not a probability (pass logits to the logits API)")
                }
                sum += Double(v)
            }
            guard abs(sum - 1) <= tolerance else {
                throw ReliabilityError.invalidInput("\(name) row \(i) sums to \(sum), off by \(abs(sum - 1)) (tolerance \(tolerance)); normalise or pass logits")
            }
        }
    }

    static func labels(_ labels: [Int], rows: Int, classes: Int, name: String = "labels") throws {
        guard labels.count == rows else { throw ReliabilityError.invalidInput("\(rows) rows but \(labels.count) \(name)") }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw ReliabilityError.invalidInput("\(name)[\(bad)] = \(labels[bad]) is outside 0..<\(classes)")
        }
    }
}
