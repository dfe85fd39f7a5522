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
/// Cost per sample: IBP one pass of |W| products; CROWN one backward pass per ReLU layer (after the
/// first) with as many rows as that layer has neurons left unstable by the interval of its input, i.e.
/// at most O(Σₖ nₖ · Σ_{j<k} nⱼ nⱼ₋₁), products skipping dead neurons. Samples run in parallel (BLAS
/// at one thread each), so results do not depend on the thread count. Measured: 784-512-512-10 MLP,
/// 1,000 samples × 4 ε in about 45 s on 2 Zen 3 cores (docs/PERFORMANCE.md).
///
/// Graphs (`GraphModel`, e.g. imported ONNX files) get IBP through every graph operation (residual
/// adds, concat, BatchNorm, GELU, softmax…; see `init(_: GraphModel)`); CROWN on a graph throws
/// `CertificationError.unsupportedLayer` (use IBP).
public struct BoundPropagation: Sendable {
    public enum Method: String, Sendable, Codable, CaseIterable {
        case ibp
        case crown
    }

    public struct Region: Sendable {
        public var norm: PerturbationNorm
        public var epsilon: Float
        /// Intersected with the L∞ ball (ignored for L2, as auto_LiRPA): one interval, or one per channel
        /// of channel-major rows. nil: no box.
        public var box: InputBox?

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
        var identity = Matrix<Double>(rows: outputFeatures, columns: outputFeatures)
        for j in 0..<outputFeatures { identity[j, j] = 1 }
        let rows = try perSample(x.rows) { i in
            try bounds(x.row(i).map(Double.init), region: region, method: method, specification: identity)
        }
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
        let rows = try perSample(x.rows) { i in
            var spec = Matrix<Double>(rows: c - 1, columns: c)
            for (r, j) in (0..<c).filter({ $0 != labels[i] }).enumerated() {
                spec[r, labels[i]] = 1
                spec[r, j] = -1
            }
            return try bounds(x.row(i).map(Double.init), region: region, method: method, specification: spec)
        }
        var out = Matrix<Double>(rows: x.rows, columns: c - 1)
        for (i, (l, _)) in rows.enumerated() {
            for r in 0..<(c - 1) { out[i, r] = l[r] }
        }
        return out
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

    /// Bounds on `specification`·logits at one input.
    func bounds(_ x0: [Double], region: Region, method: Method, specification: Matrix<Double>) throws -> ([Double], [Double]) {
        switch method {
        case .ibp:
            if let graph {
                return graph.bounds(input: try inputInterval(x0, region), l2: region.norm == .l2 ? (x0, Double(region.epsilon)) : nil,
                                    specification: specification)
            }
            return try intervalBounds(x0, region: region, specification: specification)
        case .crown: return try crownBounds(x0, region: region, specification: specification)
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

    // MARK: IBP

    func intervalBounds(_ x0: [Double], region: Region, specification: Matrix<Double>) throws -> ([Double], [Double]) {
        let network = network!
        var (l, u) = try inputInterval(x0, region)
        let lastAffine = network.stages.lastIndex { if case .affine = $0 { return true } else { return false } }
        for (s, stage) in network.stages.enumerated() {
            switch stage {
            case .affine(var weight, var bias):
                if s == lastAffine && s == network.stages.count - 1 {
                    // Merge the specification into the last layer.
                    bias = try Linalg.matmul(specification, Matrix(rows: bias.count, columns: 1, elements: bias)).elements
                    weight = try Linalg.matmul(specification, weight)
                }
                if s == 0 && region.norm == .l2 {
                    (l, u) = try BoundPropagation.affineL2(weight, bias, x0, Double(region.epsilon))
                } else {
                    (l, u) = try BoundPropagation.affineInterval(weight, bias, l, u)
                }
            case .activation(let kind, _):
                l = l.map { BoundPropagation.apply(kind, $0) }
                u = u.map { BoundPropagation.apply(kind, $0) }
            case .maxPool(let pool, _):
                l = BoundPropagation.maxPool(pool, l)
                u = BoundPropagation.maxPool(pool, u)
            }
        }
        if case .affine = network.stages.last { return (l, u) }
        // The last stage is not affine: apply the specification to the interval.
        var lower = [Double](repeating: 0, count: specification.rows), upper = lower
        for r in 0..<specification.rows {
            for j in 0..<specification.columns {
                let c = specification[r, j]
                lower[r] += c >= 0 ? c * l[j] : c * u[j]
                upper[r] += c >= 0 ? c * u[j] : c * l[j]
            }
        }
        return (lower, upper)
    }

    static func affineInterval(_ w: Matrix<Double>, _ b: [Double], _ l: [Double], _ u: [Double]) throws -> ([Double], [Double]) {
        var lower = b, upper = b
        for i in 0..<w.rows {
            var centre = 0.0, radius = 0.0
            for j in 0..<w.columns {
                let c = 0.5 * (l[j] + u[j]), r = 0.5 * (u[j] - l[j])
                centre += w[i, j] * c
                radius += abs(w[i, j]) * r
            }
            lower[i] += centre - radius
            upper[i] += centre + radius
        }
        return (lower, upper)
    }

    static func affineL2(_ w: Matrix<Double>, _ b: [Double], _ x0: [Double], _ e: Double) throws -> ([Double], [Double]) {
        var lower = b, upper = b
        for i in 0..<w.rows {
            var centre = 0.0, norm = 0.0
            for j in 0..<w.columns {
                centre += w[i, j] * x0[j]
                norm += w[i, j] * w[i, j]
            }
            lower[i] += centre - e * norm.squareRoot()
            upper[i] += centre + e * norm.squareRoot()
        }
        return (lower, upper)
    }

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

    // MARK: CROWN

    func crownBounds(_ x0: [Double], region: Region, specification: Matrix<Double>) throws -> ([Double], [Double]) {
        let network = crownNetwork!
        // Input bounds of every ReLU stage, in order. A ReLU's relaxation depends on its bounds only for
        // unstable neurons (l < 0 < u): a stable one is the identity or zero whatever the bounds. So the
        // interval of each stage's input is carried forward from the previous ReLU's final bounds (sound,
        // cheap), and a backward pass runs only for the rows that interval leaves unstable — those get
        // CROWN's bounds, the rest are stable under CROWN's bounds too unless CROWN is looser there, when the
        // result is tighter than plain CROWN and still sound. The first ReLU after the input's affine
        // stage needs no pass at all: the interval of an affine map of the input region is exact.
        var (l, u) = try inputInterval(x0, region)
        var reluBounds: [Int: ([Double], [Double])] = [:]
        for (s, stage) in network.stages.enumerated() {
            switch stage {
            case .affine(let w, let b):
                (l, u) = s == 0 && region.norm == .l2
                    ? try BoundPropagation.affineL2(w, b, x0, Double(region.epsilon))
                    : try BoundPropagation.affineInterval(w, b, l, u)
            case .activation:
                guard s > 0, case .affine(let w, let b) = network.stages[s - 1] else { break }  // backward() says why
                let unstable = l.indices.filter { l[$0] < 0 && u[$0] > 0 }
                if s > 1 && !unstable.isEmpty {
                    let rows = try Matrix(rows: unstable.count, columns: w.columns, elements: unstable.flatMap { Array(w.row($0)) })
                    let bias = unstable.map { b[$0] }
                    let (cl, cu) = try backward(below: s - 1, lowerA: rows, upperA: rows, lowerBias: bias, upperBias: bias,
                                                x0: x0, region: region, reluBounds: reluBounds)
                    for (k, j) in unstable.enumerated() { (l[j], u[j]) = (cl[k], cu[k]) }
                }
                reluBounds[s] = (l, u)
                l = l.map { max($0, 0) }
                u = u.map { max($0, 0) }
            case .maxPool:
                break  // validate() refuses CROWN on max pooling
            }
        }
        return try backward(from: network.stages.count, start: specification, x0: x0, region: region, reluBounds: reluBounds)
    }

    /// Linear bounds of `start`·(input of stage `node`) propagated back to the input and concretised.
    func backward(from node: Int, start: Matrix<Double>, x0: [Double], region: Region,
                  reluBounds: [Int: ([Double], [Double])]) throws -> ([Double], [Double]) {
        let zero = [Double](repeating: 0, count: start.rows)
        return try backward(below: node, lowerA: start, upperA: start, lowerBias: zero, upperBias: zero, x0: x0, region: region, reluBounds: reluBounds)
    }

    /// Linear bounds lowerA·v + lowerBias ≤ (quantity) ≤ upperA·v + upperBias on the input v of stage
    /// `node`, propagated back through the stages below it to the input and concretised. While the two
    /// sides are equal (no ReLU passed yet) their products are computed once.
    func backward(below node: Int, lowerA: Matrix<Double>, upperA: Matrix<Double>, lowerBias: [Double], upperBias: [Double],
                  x0: [Double], region: Region, reluBounds: [Int: ([Double], [Double])]) throws -> ([Double], [Double]) {
        let network = crownNetwork!
        var (lowerA, upperA, lowerBias, upperBias) = (lowerA, upperA, lowerBias, upperBias)
        let rows = lowerA.rows
        var same = true
        // After the first ReLU passed from equal sides, the sides differ only in its unstable columns.
        var split: [Int]?
        for s in stride(from: node - 1, through: 0, by: -1) {
            switch network.stages[s] {
            case .affine(let w, let b):
                for r in 0..<rows {
                    for j in 0..<b.count {
                        lowerBias[r] += lowerA[r, j] * b[j]
                        upperBias[r] += upperA[r, j] * b[j]
                    }
                }
                if same {
                    lowerA = try Linalg.matmul(lowerA, w)
                    upperA = lowerA
                } else if let columns = split {
                    // upper = lower + (upper − lower) on `columns` only: one product of the live columns and
                    // a small one of the split columns instead of two full products.
                    let live = BoundPropagation.nonzeroColumns(lowerA, also: columns)
                    var difference = Matrix<Double>(rows: rows, columns: columns.count)
                    for r in 0..<rows { for (k, j) in columns.enumerated() { difference[r, k] = upperA[r, j] - lowerA[r, j] } }
                    lowerA = try Linalg.matmul(BoundPropagation.columns(lowerA, live), w.gatherRows(live))
                    upperA = lowerA
                    if !columns.isEmpty {
                        let correction = try Linalg.matmul(difference, w.gatherRows(columns))
                        for r in 0..<rows { for j in 0..<upperA.columns { upperA[r, j] += correction[r, j] } }
                    }
                    split = nil
                } else {
                    let live = BoundPropagation.nonzeroColumns(lowerA, also: BoundPropagation.nonzeroColumns(upperA, also: []))
                    let rowsOfW = w.gatherRows(live)
                    lowerA = try Linalg.matmul(BoundPropagation.columns(lowerA, live), rowsOfW)
                    upperA = try Linalg.matmul(BoundPropagation.columns(upperA, live), rowsOfW)
                }
            case .activation:
                guard let (l, u) = reluBounds[s] else {
                    throw CertificationError.unsupportedLayer("CROWN needs an affine layer before each ReLU (stage \(s))")
                }
                var unstable: [Int] = []
                for j in 0..<l.count {
                    let (lowSlope, upSlope, upIntercept) = BoundPropagation.reluRelaxation(l[j], u[j])
                    if lowSlope != upSlope || upIntercept != 0 { unstable.append(j) }
                    for r in 0..<rows {
                        let a = lowerA[r, j]
                        lowerA[r, j] = a >= 0 ? a * lowSlope : a * upSlope
                        if a < 0 { lowerBias[r] += a * upIntercept }
                        let c = upperA[r, j]
                        upperA[r, j] = c >= 0 ? c * upSlope : c * lowSlope
                        if c >= 0 { upperBias[r] += c * upIntercept }
                    }
                }
                split = same ? unstable : nil
                same = false
            case .maxPool:
                throw CertificationError.unsupportedLayer("CROWN has no max-pooling relaxation")
            }
        }
        var lower = lowerBias, upper = upperBias
        switch region.norm {
        case .linf:
            let (l, u) = try inputInterval(x0, region)
            for r in 0..<rows {
                for j in 0..<x0.count {
                    let c = 0.5 * (l[j] + u[j]), h = 0.5 * (u[j] - l[j])
                    lower[r] += lowerA[r, j] * c - abs(lowerA[r, j]) * h
                    upper[r] += upperA[r, j] * c + abs(upperA[r, j]) * h
                }
            }
        case .l2:
            let e = Double(region.epsilon)
            for r in 0..<rows {
                var nl = 0.0, nu = 0.0
                for j in 0..<x0.count {
                    lower[r] += lowerA[r, j] * x0[j]
                    upper[r] += upperA[r, j] * x0[j]
                    nl += lowerA[r, j] * lowerA[r, j]
                    nu += upperA[r, j] * upperA[r, j]
                }
                lower[r] -= e * nl.squareRoot()
                upper[r] += e * nu.squareRoot()
            }
        }
        return (lower, upper)
    }

    /// The columns of `a` holding a nonzero value, merged with `also`, ascending (a dead ReLU's column is
    /// zero in every row: the products skip it).
    static func nonzeroColumns(_ a: Matrix<Double>, also: [Int]) -> [Int] {
        var used = [Bool](repeating: false, count: a.columns)
        for j in also { used[j] = true }
        for r in 0..<a.rows { for j in 0..<a.columns where a[r, j] != 0 { used[j] = true } }
        return used.indices.filter { used[$0] }
    }

    /// The sub-matrix of `a` with these columns, in order.
    static func columns(_ a: Matrix<Double>, _ columns: [Int]) -> Matrix<Double> {
        var out = Matrix<Double>(rows: a.rows, columns: columns.count)
        for r in 0..<a.rows { for (k, j) in columns.enumerated() { out[r, k] = a[r, j] } }
        return out
    }

    /// (lower slope, upper slope, upper intercept) of the ReLU relaxation on [l, u].
    static func reluRelaxation(_ l: Double, _ u: Double) -> (Double, Double, Double) {
        if l >= 0 { return (1, 1, 0) }
        if u <= 0 { return (0, 0, 0) }
        let slope = u / (u - l)
        return (u > -l ? 1 : 0, slope, -l * slope)
    }
}
