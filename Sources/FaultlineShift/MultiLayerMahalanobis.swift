import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// Mahalanobis scores from several feature sets (e.g. several layers of a network) combined into one
/// OOD score, as Lee et al. (2018): score = b + Σₗ wₗ·dₗ(x), higher = more out-of-distribution.
///
/// The weights are given, or fitted by logistic regression on a validation split of in-distribution
/// and (real or synthetic) out-of-distribution samples: Newton's method on the mean log-loss in Double
/// with a 1e-6 ridge, from w = 0. Each layer's distances are standardised by their in-distribution
/// mean and standard deviation on that split before the fit, so the weights are comparable.
public struct MultiLayerMahalanobis: Sendable {
    /// One Mahalanobis detector per feature set, in the order of the feature sets scored.
    public let detectors: [MahalanobisDetector]
    /// Per-layer weights applied to standardised distances, and the bias.
    public private(set) var weights: [Double]
    /// b, added to the weighted sum.
    public private(set) var bias: Double
    /// Per-layer standardisation (mean, standard deviation) of in-distribution distances.
    public private(set) var scaling: [(mean: Double, deviation: Double)]

    /// Equal weights, no standardisation (scores simply add).
    public init(detectors: [MahalanobisDetector]) throws {
        guard !detectors.isEmpty else { throw ShiftError.invalidInput("no detectors to combine") }
        self.detectors = detectors
        weights = [Double](repeating: 1, count: detectors.count)
        bias = 0
        scaling = [(mean: Double, deviation: Double)](repeating: (0, 1), count: detectors.count)
    }

    /// Fits the weights on validation features, one matrix per layer for each side. Throws when the
    /// layer counts or dimensions disagree or a side is empty.
    public mutating func fitWeights(inDistribution: [Matrix<Float>], outOfDistribution: [Matrix<Float>], iterations: Int = 50) throws {
        let l = detectors.count
        guard inDistribution.count == l, outOfDistribution.count == l else {
            throw ShiftError.invalidInput("need one feature matrix per layer (\(l)) for each side")
        }
        let inside = try zip(detectors, inDistribution).map { try $0.score($1).map(Double.init) }
        let outside = try zip(detectors, outOfDistribution).map { try $0.score($1).map(Double.init) }
        guard let nIn = inside.first?.count, let nOut = outside.first?.count, nIn > 0, nOut > 0,
              inside.allSatisfy({ $0.count == nIn }), outside.allSatisfy({ $0.count == nOut }) else {
            throw ShiftError.invalidInput("every layer needs the same, non-zero number of rows on each side")
        }
        scaling = inside.map { d in
            let mean = d.reduce(0, +) / Double(d.count)
            let variance = d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(d.count - 1, 1))
            return (mean, max(variance.squareRoot(), 1e-12))
        }
        // Design matrix rows: standardised distances and 1; labels 0 (in) and 1 (out).
        var rows: [[Double]] = [], labels: [Double] = []
        for i in 0..<nIn { rows.append((0..<l).map { (inside[$0][i] - scaling[$0].mean) / scaling[$0].deviation } + [1]); labels.append(0) }
        for i in 0..<nOut { rows.append((0..<l).map { (outside[$0][i] - scaling[$0].mean) / scaling[$0].deviation } + [1]); labels.append(1) }
        var theta = [Double](repeating: 0, count: l + 1)
        let n = Double(rows.count)
        for _ in 0..<iterations {
            var gradient = [Double](repeating: 0, count: l + 1)
            var hessian = Matrix<Double>(rows: l + 1, columns: l + 1)
            for (row, y) in zip(rows, labels) {
                let z = zip(row, theta).reduce(0) { $0 + $1.0 * $1.1 }
                let p = 1 / (1 + exp(-z)), w = p * (1 - p)
                for a in 0...l {
                    gradient[a] += (p - y) * row[a] / n
                    for b in 0...l { hessian[a, b] += w * row[a] * row[b] / n }
                }
            }
            for a in 0...l { hessian[a, a] += 1e-6; gradient[a] += 1e-6 * theta[a] }
            let step = try Linalg.choleskySolve(Linalg.cholesky(hessian), Matrix(rows: l + 1, columns: 1, elements: gradient)).elements
            theta = zip(theta, step).map { $0 - $1 }
            if step.map(abs).max()! < 1e-10 { break }
        }
        weights = Array(theta.prefix(l))
        bias = theta[l]
    }

    /// The combined score of rows given as one feature matrix per layer.
    public func score(_ features: [Matrix<Float>]) throws -> [Float] {
        guard features.count == detectors.count else { throw ShiftError.invalidInput("need \(detectors.count) feature matrices, got \(features.count)") }
        let distances = try zip(detectors, features).map { try $0.score($1) }
        let n = distances[0].count
        guard distances.allSatisfy({ $0.count == n }) else { throw ShiftError.invalidInput("the layers have different row counts") }
        return (0..<n).map { i in
            Float(bias + (0..<detectors.count).reduce(0.0) { s, k in s + weights[k] * (Double(distances[k][i]) - scaling[k].mean) / scaling[k].deviation })
        }
    }
}
