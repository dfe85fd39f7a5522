import FaultlineLinalg

/// Shrinkage of a covariance towards μ·I (μ = tr Σ/d) as scikit-learn computes it:
/// Σ' = (1 − s)·Σ + s·μ·I with s from Ledoit–Wolf or OAS (`sklearn.covariance`, 1.9). Both work from
/// sufficient statistics — Σ, n, and for Ledoit–Wolf Σᵢ‖xᵢ‖⁴ of the centred rows — so they apply to
/// the tied covariance of a `GaussianFit` as well as to a plain data matrix.
public enum CovarianceShrinkage {
    /// Ledoit–Wolf: β = min((Σᵢ‖xᵢ‖⁴/n − ‖Σ‖²_F)/(d·n), δ), δ = ‖Σ − μI‖²_F/d, s = β/δ (0 when β = 0).
    /// `fourthMoment` = Σᵢ‖xᵢ‖⁴ over the n centred rows that give Σ = XᵀX/n.
    public static func ledoitWolf(covariance sigma: Matrix<Double>, samples n: Int, fourthMoment: Double) -> Double {
        let d = sigma.rows, nn = Double(n)
        let trace = (0..<d).reduce(0.0) { $0 + sigma[$1, $1] }, mu = trace / Double(d)
        let frobenius = sigma.elements.reduce(0.0) { $0 + $1 * $1 }
        var beta = (fourthMoment / nn - frobenius) / (Double(d) * nn)
        let delta = (frobenius - 2 * mu * trace + Double(d) * mu * mu) / Double(d)
        beta = min(beta, delta)
        return beta == 0 ? 0 : beta / delta
    }

    /// OAS (scikit-learn's form, which omits the 2/d factor): s = min((ᾱ + μ²)/((n + 1)(ᾱ − μ²/d)), 1),
    /// ᾱ the mean of Σ's squared entries; 1 when the denominator is 0.
    public static func oas(covariance sigma: Matrix<Double>, samples n: Int) -> Double {
        let d = sigma.rows
        if d == 1 { return 0 }
        let alpha = sigma.elements.reduce(0.0) { $0 + $1 * $1 } / Double(d * d)
        let mu = (0..<d).reduce(0.0) { $0 + sigma[$1, $1] } / Double(d)
        let denominator = Double(n + 1) * (alpha - mu * mu / Double(d))
        return denominator == 0 ? 1 : min((alpha + mu * mu) / denominator, 1)
    }

    /// (1 − s)·Σ + s·(tr Σ/d)·I.
    public static func shrunk(_ sigma: Matrix<Double>, by s: Double) -> Matrix<Double> {
        let d = sigma.rows
        let mu = (0..<d).reduce(0.0) { $0 + sigma[$1, $1] } / Double(d)
        var out = sigma.map { $0 * (1 - s) }
        for i in 0..<d { out[i, i] += s * mu }
        return out
    }

    /// The estimators on a data matrix, as `LedoitWolf(assume_centered:)` / `OAS(assume_centered:)`:
    /// rows centred by their mean unless `assumeCentered`, Σ = XᵀX/n. Returns the shrunk covariance
    /// and the shrinkage. Throws for empty or non-finite data.
    public static func estimate(_ x: Matrix<Float>, method: Method, assumeCentered: Bool = false) throws -> (covariance: Matrix<Double>, shrinkage: Double) {
        guard x.rows > 0, x.columns > 0 else { throw ShiftError.invalidInput("no data to estimate a covariance from") }
        guard x.isFinite else { throw ShiftError.invalidInput("data contain NaN or infinite values") }
        var centred = x.converted(to: Double.self)
        let n = x.rows, d = x.columns
        if !assumeCentered {
            var mean = [Double](repeating: 0, count: d)
            for i in 0..<n { for j in 0..<d { mean[j] += centred[i, j] } }
            centred.withUnsafeMutableBufferPointer { p in for i in 0..<n { for j in 0..<d { p[i * d + j] -= mean[j] / Double(n) } } }
        }
        let sigma = try Linalg.matmul(centred, centred, transA: .transposed).map { $0 / Double(n) }
        let s: Double
        switch method {
        case .ledoitWolf:
            var fourth = 0.0
            for i in 0..<n {
                let norm = centred.row(i).reduce(0.0) { $0 + $1 * $1 }
                fourth += norm * norm
            }
            s = d == 1 ? 0 : ledoitWolf(covariance: sigma, samples: n, fourthMoment: fourth)
        case .oas:
            s = oas(covariance: sigma, samples: n)
        }
        return (shrunk(sigma, by: s), s)
    }

    /// Which shrinkage intensity to estimate from the data.
    public enum Method: String, Sendable, Codable {
        /// Ledoit–Wolf (scikit-learn's `ledoit_wolf`); Oracle Approximating Shrinkage (scikit-learn's `oas`).
        case ledoitWolf = "ledoit-wolf", oas
    }
}
