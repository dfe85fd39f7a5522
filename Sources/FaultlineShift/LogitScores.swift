import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// Out-of-distribution scores computed from logits alone, all oriented so that **higher = more
/// out-of-distribution** (pytorch-ood's convention), in one pass over each row with Double accumulation.
///
/// | score | value | pytorch-ood |
/// |---|---|---|
/// | `maxSoftmax` | −max_c softmax(z)_c | `MaxSoftmax` |
/// | `maxLogit` | −max_c z_c | `MaxLogit` |
/// | `energy(temperature:)` | −T·log Σ_c exp(z_c/T) | `EnergyBased` |
/// | `entropy` | −Σ_c p_c log p_c, 0·log 0 = 0 | `Entropy` (which clips p at 1e-7) |
public enum LogitScores {
    /// −max_c softmax(z)_c per row (the maximum softmax probability, negated). Throws `ShiftError.invalidInput` for no columns or a non-finite logit.
    public static func maxSoftmax(_ logits: Matrix<Float>) throws -> [Float] {
        try rows(logits) { z in
            let m = z.max()!
            let s = z.reduce(0.0) { $0 + exp($1 - m) }
            return -1 / s  // the largest probability is exp(0)/s
        }
    }

    /// −max_c z_c per row. Throws `ShiftError.invalidInput` for no columns or a non-finite logit.
    public static func maxLogit(_ logits: Matrix<Float>) throws -> [Float] {
        try rows(logits) { -$0.max()! }
    }

    /// Throws for a temperature that is not finite and positive.
    public static func energy(_ logits: Matrix<Float>, temperature: Double = 1) throws -> [Float] {
        guard temperature.isFinite, temperature > 0 else { throw ShiftError.invalidInput("temperature \(temperature) must be finite and > 0") }
        return try rows(logits) { z in
            let scaled = z.map { $0 / temperature }
            let m = scaled.max()!
            return -temperature * (m + log(scaled.reduce(0.0) { $0 + exp($1 - m) }))
        }
    }

    /// The entropy of softmax(z) per row, in nats. Throws `ShiftError.invalidInput` for no columns or a non-finite logit.
    public static func entropy(_ logits: Matrix<Float>) throws -> [Float] {
        try rows(logits) { z in
            let m = z.max()!
            let e = z.map { exp($0 - m) }
            let s = e.reduce(0, +)
            return e.reduce(0.0) { h, v in
                let p = v / s
                return p > 0 ? h - p * log(p) : h
            }
        }
    }

    /// Applies `score` to each row (as Doubles). Throws for empty or non-finite logits.
    static func rows(_ logits: Matrix<Float>, _ score: ([Double]) -> Double) throws -> [Float] {
        guard logits.columns > 0 else { throw ShiftError.invalidInput("logits have no columns") }
        guard logits.isFinite else { throw ShiftError.invalidInput("logits contain NaN or infinite values") }
        return (0..<logits.rows).map { i in Float(score(logits.row(i).map(Double.init))) }
    }
}
