import FaultlineLinalg
import FaultlineNN

#if canImport(Glibc)
import Glibc
#endif

/// Certified bounds on a network's outputs over an input ball: interval bound propagation (IBP) and
/// CROWN's backward linear relaxation, as auto_LiRPA defines them, in Double precision.
///
/// Input region: the L∞ ball of radius ε intersected with `box` (pass the input box so certificates
/// match attack semantics), or the L2 ball of radius ε (no box). Bounds on C·logits for a
/// specification C; `marginLowerBounds` uses the rows e_y − e_j, so a sample is certified when every
/// margin lower bound is positive.
///
/// - IBP: intervals through each stage (affine: centre W c + b, radius |W| r; monotone activations
///   and max pooling elementwise). On an L2 ball the first affine stage is bounded exactly,
///   W x₀ + b ± ε‖wᵢ‖₂. C is merged into the last affine stage (tighter than bounding logits).
/// - CROWN (ReLU networks): every ReLU's input bounds come from a backward pass from that layer;
///   unstable ReLUs (l < 0 < u) use the upper line u(x − l)/(u − l) and the adaptive lower slope
///   (1 if u > −l, else 0); linear bounds are concretised at the input by the dual norm
///   (L∞ box: A c ± |A| r; L2: A x₀ ± ε‖A‖₂ per row).
///
/// Computation (`BoundEngine`): on a layer chain (a `Sequential`, or CROWN on a chain graph) the
/// interval pass runs in float64 GEMMs over blocks of samples and CROWN's backward passes in GEMMs of
/// `precision` over the rows of every sample and specification at once; in float32 every product
/// carries an a-priori bound on its rounding error, subtracted from the lower bounds and added to the
/// upper ones, so the bounds hold as if computed exactly (up to the float64 steps' round-to-nearest,
/// ~1e-16 relative). Results do not depend on the thread count or on the other rows. Cost per sample:
/// IBP two products of each layer's weights; CROWN 2 × (unstable neurons of layer k) × Σ_{j<k} nⱼ nⱼ₋₁
/// flops per ReLU layer k after the first. Measured on the 784-512-512-10 MLP: docs/PERFORMANCE.md.
///
/// Graphs (`GraphModel`, e.g. imported ONNX files) get IBP through every graph operation (residual
/// adds, concat, BatchNorm, GELU, softmax…; see `init(_: GraphModel)`); CROWN on a graph throws
/// `CertificationError.unsupportedLayer` (use IBP).
public struct BoundPropagation: Sendable {
    /// How bounds pass through the network.
    public enum Method: String, Sendable, Codable, CaseIterable {
        /// Interval bound propagation: fast, looser.
        case ibp
        /// CROWN's backward linear relaxation: tighter, needs a layer chain of ReLU networks.
        case crown
    }

    /// The precision of CROWN's backward products: float32 (the default: twice the GEMM speed, with the
    /// rounding budget above) or float64 (the reference; its budget is ~1e-13 relative).
    public enum Precision: String, Sendable, Codable, CaseIterable {
        /// float32 GEMMs with an a-priori rounding budget (sound).
        case float32
        /// float64 GEMMs (the reference).
        case float64
    }

    /// The input region to certify: an ε-ball around each row.
    public struct Region: Sendable {
        /// L∞ (intersected with `box`) or L2.
        public var norm: PerturbationNorm
        /// The ball's radius ε (≥ 0).
        public var epsilon: Float
        /// Intersected with the L∞ ball (ignored for L2, as auto_LiRPA): one interval, or one per channel
        /// of channel-major rows. nil: no box.
        public var box: InputBox?

        /// An L∞ ball in [0, 1] by default.
        public init(norm: PerturbationNorm = .linf, epsilon: Float, box: InputBox? = .unit) {
            self.norm = norm
            self.epsilon = epsilon
            self.box = box
        }
    }

    /// The layer chain of a Sequential model (IBP and CROWN), or nil for a graph.
    let network: LinearizedNetwork?
    /// The interval rules of a graph (IBP), or nil for a Sequential model.
    let graph: GraphIntervals?
    /// A graph's layer chain for CROWN, built on first use (nil for a Sequential model).
    let layerChain: LazyLayerChain?
    let inputFeatures: Int
    let outputFeatures: Int
    /// The image layout of the input when the model has one (how a per-channel box splits a row).
    var inputImage: ImageShape?
    /// The precision of CROWN's backward products (the interval pass is always float64).
    public var precision: Precision = .float32

    /// Prepares `model` for bound propagation. Throws `CertificationError.unsupportedLayer` for layers
    /// without a rule (GELU is not monotone; softmax layers must be removed).
    public init(_ model: Sequential) throws {
        let network = try LinearizedNetwork(model)
        (self.network, graph, inputFeatures, outputFeatures) = (network, nil, network.inputFeatures, network.outputFeatures)
        (inputImage, layerChain) = (model.inputImageShape, nil)
        for stage in network.stages {
            if case .activation(.gelu, let layer) = stage {
                throw CertificationError.unsupportedLayer("layer \(layer) is GELU, which is not monotone: no interval rule; use ReLU")
            }
        }
    }

    /// Prepares a graph for interval bound propagation: every `GraphOperation` has a sound interval rule
    /// (dense/convolution by centre and |W|·radius; channelAffine and constants by sign; interval
    /// arithmetic for add/sub/mul/div of two tensors; monotone activations at the ends; GELU's exact
    /// range; pooling, concat, aliases; softmax/log-softmax by monotonicity in each logit), computed in
    /// Double. When the output comes from a dense node the specification is merged into it, so a graph
    /// built from a Sequential (`GraphModel(sequential:)`) gets the Sequential's IBP bounds (equal up to
    /// Double rounding); on an L2 ball the first dense/convolution nodes are bounded exactly, others
    /// reading the input see the enclosing box. Cost per sample: about two forward passes in Double.
    ///
    /// CROWN (`method: .crown`) runs when the graph is a chain of affine nodes and ReLUs (see
    /// `LinearizedNetwork.chain`: an exported `nn.Sequential`, input normalisation included), on its
    /// layer chain built at the first CROWN call; on any other graph (residual `add`s, `concat`, GELU)
    /// it throws `CertificationError.unsupportedLayer` saying which node stops it.
    /// Throws `CertificationError.invalidInput` for an inconsistent graph.
    public init(_ model: GraphModel) throws {
        (network, graph, inputFeatures, outputFeatures) = (nil, try GraphIntervals(model), model.inputFeatures, model.outputFeatures)
        (inputImage, layerChain) = (model.inputImageShape, LazyLayerChain(model))
    }

    /// Prepares a `Sequential` or a normalised one (`LayerStackConvertible`: IBP, CROWN), or a `GraphModel`
    /// with or without an input normalisation (IBP). Throws
    /// `CertificationError.unsupportedLayer` for any other kind of model, and what those initialisers throw.
    public init(classifier: any DifferentiableClassifier) throws {
        if let stack = classifier as? any LayerStackConvertible {  // a Sequential, or one behind an input normalisation
            try self.init(stack.layerStack())
        } else if let g = classifier as? GraphModel {
            try self.init(g)
        } else if let n = classifier as? NormalizedClassifier<GraphModel> {
            try self.init(n.base.normalizingInput(n.normalization))
        } else {
            throw CertificationError.unsupportedLayer("\(classifier.spec) is neither a Sequential nor a GraphModel: no bound propagation rules")
        }
    }

    /// The layer chain CROWN runs on: a Sequential's, or a chain graph's (built on first use).
    var crownNetwork: LinearizedNetwork? { network ?? layerChain?.value.network }

    /// Whether CROWN is available: a Sequential model, or a graph that is a chain of affine nodes and
    /// activations (asking builds that chain). IBP is available for every model it was built from.
    public var supportsCROWN: Bool { crownNetwork != nil }

    /// Why CROWN is not available for this model, or nil when it is.
    public var crownUnavailableReason: String? {
        guard crownNetwork == nil else { return nil }
        return "CROWN needs a Sequential model or a graph that is a chain of affine nodes and activations: "
            + (layerChain?.value.reason ?? "no layer chain")
    }

    /// Lower and upper bounds on every logit for every row of `x` (N × classes each).
    public func logitBounds(_ x: Matrix<Float>, region: Region, method: Method) throws -> (lower: Matrix<Double>, upper: Matrix<Double>) {
        try validate(x, region, method)
        let identity = Matrix<Double>.identity(outputFeatures)
        let rows = try sampleBounds(x, region: region, method: method) { _ in identity }
        var lower = Matrix<Double>(rows: x.rows, columns: outputFeatures), upper = lower
        for (i, (l, u)) in rows.enumerated() {
            for j in 0..<outputFeatures { (lower[i, j], upper[i, j]) = (l[j], u[j]) }
        }
        return (lower, upper)
    }

    /// Lower bounds on logit_y − logit_j for j ≠ y in increasing j (N × (classes − 1)).
    public func marginLowerBounds(_ x: Matrix<Float>, labels: [Int], region: Region, method: Method) throws -> Matrix<Double> {
        try validate(x, region, method)
        let c = outputFeatures
        guard labels.count == x.rows else { throw CertificationError.invalidInput("\(x.rows) rows but \(labels.count) labels") }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= c }) {
            throw CertificationError.invalidInput("label \(labels[bad]) at row \(bad) is outside 0..<\(c)")
        }
        let rows = try sampleBounds(x, region: region, method: method) { i in
            var spec = Matrix<Double>(rows: c - 1, columns: c)
            for (r, j) in (0..<c).filter({ $0 != labels[i] }).enumerated() {
                spec[r, labels[i]] = 1
                spec[r, j] = -1
            }
            return spec
        }
        var out = Matrix<Double>(rows: x.rows, columns: c - 1)
        for (i, (l, _)) in rows.enumerated() {
            for r in 0..<(c - 1) { out[i, r] = l[r] }
        }
        return out
    }

    /// Bounds on `specification(i)`·logits for every row i of `x`: on a layer chain (a Sequential, or CROWN
    /// on a chain graph) by `BoundEngine` in blocks of `blockSamples` rows, every specification row of a
    /// block in the same products; on a graph (IBP) sample by sample.
    func sampleBounds(_ x: Matrix<Float>, region: Region, method: Method, specification: (Int) -> Matrix<Double>) throws
        -> [([Double], [Double])] {
        if let graph, method == .ibp {
            return try perSample(x.rows) { i in
                let x0 = x.row(i).map(Double.init)
                return graph.bounds(input: try inputInterval(x0, region), l2: region.norm == .l2 ? (x0, Double(region.epsilon)) : nil,
                                    specification: specification(i))
            }
        }
        let chain = method == .crown ? crownNetwork! : network!
        switch precision {
        case .float32:
            return try chainBounds(BoundEngine<Float>(network: chain, region: region, image: inputImage), x, method, specification)
        case .float64:
            return try chainBounds(BoundEngine<Double>(network: chain, region: region, image: inputImage), x, method, specification)
        }
    }

    /// Samples per block of the interval pass (the backward passes group their rows by memory, not by
    /// sample).
    static let blockSamples = 128

    func chainBounds<T>(_ engine: BoundEngine<T>, _ x: Matrix<Float>, _ method: Method, _ specification: (Int) -> Matrix<Double>) throws
        -> [([Double], [Double])] {
        var results: [([Double], [Double])] = []
        results.reserveCapacity(x.rows)
        for range in BoundEngine<T>.groups(x.rows, width: 1, budget: BoundPropagation.blockSamples) {
            let block = try engine.forward(x.sliceRows(range).converted(to: Double.self), crown: method == .crown)
            let specs = range.map(specification)
            let stacked = try Matrix(rows: specs.reduce(0) { $0 + $1.rows }, columns: outputFeatures, elements: specs.lazy.flatMap(\.elements))
            let sampleOf = specs.enumerated().flatMap { k, spec in [Int](repeating: k, count: spec.rows) }
            let (lower, upper) = try engine.specificationBounds(stacked, sampleOf: sampleOf, block: block, method: method)
            var offset = 0
            for spec in specs {
                results.append((Array(lower[offset..<(offset + spec.rows)]), Array(upper[offset..<(offset + spec.rows)])))
                offset += spec.rows
            }
        }
        return results
    }

    /// `body(i)` for every sample i, the samples in parallel (`Linalg.parallelForEach`) with BLAS held at one
    /// thread: each sample's bounds are computed by one thread in a fixed order, so the results are
    /// bit-identical for any thread count. Rethrows the error of the lowest failing sample.
    func perSample(_ n: Int, _ body: (Int) throws -> ([Double], [Double])) throws -> [([Double], [Double])] {
        var results = [([Double], [Double])](repeating: ([], []), count: n)
        var errors = [(any Error)?](repeating: nil, count: n)
        results.withUnsafeMutableBufferPointer { out in
            errors.withUnsafeMutableBufferPointer { failed in
                let (out, failed) = (out.baseAddress, failed.baseAddress)
                NativeBLAS.withSingleThread {
                    Linalg.parallelForEach(n) { i in
                        do { out![i] = try body(i) } catch { failed![i] = error }
                    }
                }
            }
        }
        if let error = errors.lazy.compactMap({ $0 }).first { throw error }
        return results
    }

    /// Whether each row is certified: every margin lower bound > 0 (a sample misclassified at x is
    /// never certified).
    public func certify(_ x: Matrix<Float>, labels: [Int], region: Region, method: Method) throws -> [Bool] {
        let margins = try marginLowerBounds(x, labels: labels, region: region, method: method)
        return (0..<x.rows).map { i in margins.row(i).allSatisfy { $0 > 0 } }
    }

    func validate(_ x: Matrix<Float>, _ region: Region, _ method: Method) throws {
        guard region.epsilon.isFinite, region.epsilon >= 0 else { throw CertificationError.invalidParameter("ε = \(region.epsilon) must be finite and ≥ 0") }
        guard x.columns == inputFeatures else {
            throw CertificationError.invalidInput("x has \(x.columns) features, the model takes \(inputFeatures)")
        }
        guard x.isFinite else { throw CertificationError.invalidInput("x contains NaN or infinite values") }
        if let box = region.box {
            guard box.isFinite else { throw CertificationError.invalidParameter("the input box must be finite, got \(box)") }
            do { _ = try box.perFeature(features: inputFeatures, image: inputImage) } catch ModelError.shapeMismatch(let message) {
                throw CertificationError.invalidParameter(message)
            }
        }
        if method == .crown {
            guard let network = crownNetwork else {
                throw CertificationError.unsupportedLayer("\(crownUnavailableReason ?? "CROWN is unavailable"); use IBP (--method ibp)")
            }
            for stage in network.stages {
                switch stage {
                case .activation(.relu, _), .affine: continue
                case .activation(let kind, let layer): throw CertificationError.unsupportedLayer("CROWN here needs ReLU activations; layer \(layer) is \(kind); use IBP")
                case .maxPool(_, let layer): throw CertificationError.unsupportedLayer("CROWN here has no max-pooling relaxation (layer \(layer)); use IBP or average pooling")
                }
            }
        }
    }

    /// The input box of the region (for L2, the enclosing box x₀ ± ε), intersected with the region's
    /// box per feature for L∞. Throws `ModelError.shapeMismatch` when the box does not fit the input
    /// (`validate` checks this first).
    func inputInterval(_ x0: [Double], _ region: Region) throws -> ([Double], [Double]) {
        let e = Double(region.epsilon)
        var l = x0.map { $0 - e }, u = x0.map { $0 + e }
        if region.norm == .linf, let box = region.box {
            let bounds = try box.perFeature(features: x0.count, image: inputImage)
            for j in l.indices {
                l[j] = max(l[j], Double(bounds.lower[j]))
                u[j] = min(u[j], Double(bounds.upper[j]))
            }
        }
        return (l, u)
    }

    // MARK: Interval rules

    static func apply(_ kind: Activation.Kind, _ v: Double) -> Double {
        switch kind {
        case .relu: return max(v, 0)
        case .leakyReLU(let s): return v > 0 ? v : Double(s) * v
        case .tanh: return tanh(v)
        case .sigmoid: return 1 / (1 + exp(-v))
        case .gelu: return v * 0.5 * erfc(-v / 2.0.squareRoot())  // rejected by init: not monotone
        }
    }

    static func maxPool(_ pool: Pool2d, _ v: [Double]) -> [Double] {
        let i = pool.input, o = pool.output
        var out = [Double](repeating: -.infinity, count: o.features)
        for c in 0..<o.channels {
            for y in 0..<o.height {
                for x in 0..<o.width {
                    var m = -Double.infinity
                    for dy in 0..<pool.kernel {
                        for dx in 0..<pool.kernel { m = max(m, v[(c * i.height + y * pool.stride + dy) * i.width + x * pool.stride + dx]) }
                    }
                    out[(c * o.height + y) * o.width + x] = m
                }
            }
        }
        return out
    }
}
