import FaultlineLinalg
import FaultlineNN

/// Lipschitz-margin certificates (Tsuzuku, Sato & Sugiyama 2018): if the logit map has L2 Lipschitz
/// constant L and the margin is M = z_y − max_{j≠y} z_j, no L2 perturbation of norm < M/(√2·L)
/// changes the prediction.
///
/// L is bounded by the product of per-layer constants: the spectral norm of each linear layer
/// (Dense, Conv2d, average pooling), 1 for ReLU, tanh and Flatten, max(1, |slope|) for leaky ReLU,
/// ¼ for sigmoid, 1.1289 (max Φ(x) + xφ(x)) for GELU, and ⌈k/s⌉ for max pooling (each input lies in at
/// most ⌈k/s⌉² windows). Spectral norms are exact — the square root of the largest eigenvalue of the
/// smaller Gram matrix, in Double — when the layer's smaller side is at most `exactLimit`; beyond it
/// they come from power iteration and the certificate is marked an estimate (power iteration
/// approaches σ_max from below).
public struct LipschitzCertificate: Sendable {
    /// One layer's Lipschitz constant.
    public struct LayerBound: Sendable, Codable {
        /// The layer's index in the model.
        public var layer: Int
        /// The layer's spec.
        public var spec: String
        /// Its L2 Lipschitz constant (an upper bound when `exact`).
        public var constant: Double
        /// Whether `constant` is an upper bound (false: a power-iteration estimate, from below).
        public var exact: Bool
    }

    /// Per-layer constants in order, and their product.
    public let layers: [LayerBound]
    /// L, the product of the layers' constants.
    public var constant: Double { layers.reduce(1) { $0 * $1.constant } }
    /// True when every constant is an upper bound (no power-iteration estimate).
    public var isSound: Bool { layers.allSatisfy(\.exact) }

    /// Bounds every layer of `model`. Throws `CertificationError.unsupportedLayer` for a layer without a bound (softmax).
    public init(_ model: Sequential, exactLimit: Int = 2048, powerIterations: Int = 200, seed: UInt64 = 0) throws {
        var bounds: [LayerBound] = []
        for (index, layer) in model.layers.enumerated() {
            var constant = 1.0, exact = true
            switch layer {
            case let dense as Dense:
                (constant, exact) = try LipschitzCertificate.spectralNorm(dense.weight.converted(to: Double.self), exactLimit: exactLimit,
                                                                           iterations: powerIterations, seed: seed)
            case var conv as Conv2d:
                conv.bias = Matrix(rows: 1, columns: conv.bias.columns)
                (constant, exact) = try LipschitzCertificate.spectralNorm(LinearizedNetwork.materialise(conv), exactLimit: exactLimit,
                                                                           iterations: powerIterations, seed: seed)
            case let pool as Pool2d where pool.kind == .average:
                (constant, exact) = try LipschitzCertificate.spectralNorm(LinearizedNetwork.materialise(pool), exactLimit: exactLimit,
                                                                           iterations: powerIterations, seed: seed)
            case let pool as Pool2d:
                constant = Double((pool.kernel + pool.stride - 1) / pool.stride)
            case let activation as Activation:
                switch activation.kind {
                case .relu, .tanh: constant = 1
                case .leakyReLU(let s): constant = max(1, Double(abs(s)))
                case .sigmoid: constant = 0.25
                case .gelu: constant = 1.1289
                }
            case is Flatten, is Dropout:
                constant = 1  // identities at inference
            default:
                throw CertificationError.unsupportedLayer("layer \(index) '\(layer.spec)' has no Lipschitz bound (softmax layers must be removed: certificates are on logits)")
            }
            bounds.append(LayerBound(layer: index, spec: layer.spec, constant: constant, exact: exact))
        }
        layers = bounds
    }

    /// Certified L2 radius margin/(√2·L) per row (0 for rows misclassified at x).
    public func radii(_ model: Sequential, _ x: Matrix<Float>, labels: [Int]) throws -> [Double] {
        guard labels.count == x.rows else { throw CertificationError.invalidInput("\(x.rows) rows but \(labels.count) labels") }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= model.outputFeatures }) {
            throw CertificationError.invalidInput("label \(labels[bad]) at row \(bad) is outside 0..<\(model.outputFeatures)")
        }
        let z = try model.logits(x)
        let scale = 1 / (2.0.squareRoot() * constant)
        return (0..<x.rows).map { i in
            var other = -Double.infinity
            for j in 0..<z.columns where j != labels[i] { other = max(other, Double(z[i, j])) }
            return max(0, Double(z[i, labels[i]]) - other) * scale
        }
    }

    /// σ_max(W): exact from the smaller Gram matrix when min(rows, columns) ≤ `exactLimit`, else by
    /// power iteration (returned with exact = false).
    static func spectralNorm(_ w: Matrix<Double>, exactLimit: Int, iterations: Int, seed: UInt64) throws -> (Double, Bool) {
        let wide = w.rows < w.columns
        if min(w.rows, w.columns) <= exactLimit {
            let gram = try Linalg.matmul(w, w, transA: wide ? .none : .transposed, transB: wide ? .transposed : .none)
            let top = try Linalg.symmetricEigen(gram).values.max() ?? 0
            return (max(top, 0).squareRoot(), true)
        }
        var rng = Philox(seed: seed)
        var v: Matrix<Double> = rng.matrix(rows: w.columns, columns: 1, .normal(mean: 0, sd: 1))
        var estimate = 0.0
        for _ in 0..<iterations {
            let u = try Linalg.matmul(w, v)
            v = try Linalg.matmul(w, u, transA: .transposed)
            let norm = v.elements.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { return (0, false) }
            estimate = norm.squareRoot()  // ‖WᵀW v‖ with ‖v‖ = 1 → σ²
            v = v.map { $0 / norm }
        }
        return (estimate, false)
    }
}
