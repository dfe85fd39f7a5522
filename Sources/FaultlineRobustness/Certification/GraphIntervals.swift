import FaultlineLinalg
import FaultlineNN

#if canImport(Glibc)
import Glibc
#endif

/// Interval bound propagation (IBP) through a `GraphModel`, in Double precision, one sample at a time.
///
/// Every `GraphOperation` has a sound interval rule:
/// - dense and convolution (any groups, strides, pads, dilations): centre W c + b, radius |W| r; on an
///   L2 ball, a dense or convolution node reading the model input is bounded exactly, W x₀ + b ± ε‖wᵢ‖₂
///   over the weights that meet the input; every other node reading the input sees the box x₀ ± ε;
/// - channelAffine and constantBinary: by the sign of the constant (division by an interval or constant
///   that contains 0 gives (−∞, ∞)); binary add/sub/mul/div of two intervals (interval arithmetic);
/// - monotone unaries (ReLU, leaky ReLU with α ≥ 0, sigmoid, tanh, erf, softplus, clip) at the ends;
///   GELU (both forms) and leaky ReLU with α < 0 are unimodal: their exact range on [l, u] (GELU's
///   minimum ≈ −0.16997 at x ≈ −0.75179, found to Double precision at initialisation);
/// - max/average pooling, global average pooling, concat, aliases; softmax and log-softmax by
///   monotonicity in each logit (lower bound of output j from l_j and the others' upper bounds).
/// A value that interval arithmetic makes NaN (0·∞, ∞ − ∞) becomes (−∞, ∞): bounds stay sound.
/// When the graph output is produced by a dense node (possibly through aliases), the specification C
/// is merged into it (bounds on C·W·h + C·b), as `BoundPropagation` does for a Sequential's last layer.
///
/// Cost per sample: about two forward passes in Double, plus O(size) per elementwise node.
struct GraphIntervals: Sendable {
    struct Step: Sendable {
        var operation: GraphOperation
        var inputs: [Int]
        var output: Int
        var inputShapes: [[Int]]
        var outputShape: [Int]
        /// For `.binary`: per input, the source index of each output element (nil: same shape);
        /// for `.constantBinary`: the constant expanded to the output shape in `constant`.
        var broadcast: [[Int32]?] = []
        var constant: [Double] = []
        /// Dense weights in Double.
        var weight: Matrix<Double>?
    }

    let steps: [Step]
    let valueCount: Int
    let inputFeatures: Int
    let outputFeatures: Int
    let outputValue: Int
    /// The dense step producing the output (through aliases), into which the specification is merged.
    let mergeStep: Int?

    init(_ graph: GraphModel) throws {
        var producer: [String: GraphModel.Node] = [:]
        for node in graph.nodes { producer[node.output] = node }
        var id = [graph.inputName: 0], count = 1
        var steps: [Step] = []
        for name in graph.tensorNames.dropFirst() {
            guard let node = producer[name] else { throw CertificationError.invalidInput("tensor '\(name)' has no producer") }
            let inputs = node.inputs.map { id[$0]! }
            if case .identity = node.operation {
                id[name] = inputs[0]
                continue
            }
            if case .reshape = node.operation {
                id[name] = inputs[0]
                continue
            }
            var step = Step(operation: node.operation, inputs: inputs, output: count,
                            inputShapes: node.inputs.map { graph.shape(of: $0)! }, outputShape: graph.shape(of: name)!)
            switch node.operation {
            case .binary:
                step.broadcast = step.inputShapes.map { $0 == step.outputShape ? nil : GraphOperation.broadcastSourceIndices($0, to: step.outputShape) }
            case .constantBinary(_, let constant, let shape, _):
                step.constant = GraphOperation.broadcastSourceIndices(shape, to: step.outputShape).map { Double(constant[Int($0)]) }
            case .dense(let w, _):
                step.weight = w.converted(to: Double.self)
            default: break
            }
            id[name] = count
            count += 1
            steps.append(step)
        }
        self.steps = steps
        valueCount = count
        inputFeatures = graph.inputFeatures
        outputFeatures = graph.outputFeatures
        let output = id[graph.outputName]!
        outputValue = output
        if let last = steps.lastIndex(where: { $0.output == output }), case .dense = steps[last].operation {
            mergeStep = last
        } else {
            mergeStep = nil
        }
    }

    /// Bounds on `specification`·output over the region around `x0` (`input` is its box: the L∞ ball ∩
    /// box, or x₀ ± ε for L2, where `l2` gives x₀ and ε for the exact first-layer rule).
    func bounds(input: ([Double], [Double]), l2: (x0: [Double], epsilon: Double)?, specification: Matrix<Double>) -> ([Double], [Double]) {
        var lower = [[Double]](repeating: [], count: valueCount), upper = lower
        (lower[0], upper[0]) = input
        for (s, step) in steps.enumerated() {
            let ball = step.inputs[0] == 0 ? l2 : nil
            if s == mergeStep, case .dense(let w, let b) = step.operation {
                let merged = try! Linalg.matmul(specification, step.weight!)
                let bias = (0..<specification.rows).map { r in (0..<w.rows).reduce(0.0) { $0 + specification[r, $1] * Double(b[$1]) } }
                return GraphIntervals.dense(merged, bias, lower[step.inputs[0]], upper[step.inputs[0]], ball)
            }
            var (l, u) = apply(step, lower, upper, ball)
            for j in l.indices where l[j].isNaN { l[j] = -.infinity }
            for j in u.indices where u[j].isNaN { u[j] = .infinity }
            (lower[step.output], upper[step.output]) = (l, u)
        }
        let (l, u) = (lower[outputValue], upper[outputValue])
        var resultLower = [Double](repeating: 0, count: specification.rows), resultUpper = resultLower
        for r in 0..<specification.rows {
            for j in 0..<specification.columns {
                let c = specification[r, j]
                if c == 0 { continue }
                resultLower[r] += c > 0 ? c * l[j] : c * u[j]
                resultUpper[r] += c > 0 ? c * u[j] : c * l[j]
            }
        }
        return (resultLower, resultUpper)
    }

    func apply(_ step: Step, _ lower: [[Double]], _ upper: [[Double]], _ ball: (x0: [Double], epsilon: Double)?) -> ([Double], [Double]) {
        let l = lower[step.inputs[0]], u = upper[step.inputs[0]]
        switch step.operation {
        case .dense(_, let b):
            return GraphIntervals.dense(step.weight!, b.map(Double.init), l, u, ball)
        case .convolution(let c):
            return GraphIntervals.convolution(c, input: step.inputShapes[0], output: step.outputShape, l, u, ball)
        case .channelAffine(let scale, let shift):
            let spatial = l.count / scale.count
            var lo = l, hi = u
            for j in l.indices {
                let s = Double(scale[j / spatial]), t = Double(shift[j / spatial])
                (lo[j], hi[j]) = s >= 0 ? (s * l[j] + t, s * u[j] + t) : (s * u[j] + t, s * l[j] + t)
            }
            return (lo, hi)
        case .constantBinary(let op, _, _, let left):
            var lo = l, hi = u
            for j in l.indices {
                let c = step.constant[j]
                switch (op, left) {
                case (.add, _): (lo[j], hi[j]) = (l[j] + c, u[j] + c)
                case (.sub, false): (lo[j], hi[j]) = (l[j] - c, u[j] - c)
                case (.sub, true): (lo[j], hi[j]) = (c - u[j], c - l[j])
                case (.mul, _): (lo[j], hi[j]) = c >= 0 ? (c * l[j], c * u[j]) : (c * u[j], c * l[j])
                case (.div, false):
                    (lo[j], hi[j]) = c > 0 ? (l[j] / c, u[j] / c) : c < 0 ? (u[j] / c, l[j] / c) : (-.infinity, .infinity)
                case (.div, true):
                    (lo[j], hi[j]) = GraphIntervals.product(c, c, 1 / u[j], 1 / l[j], defined: l[j] > 0 || u[j] < 0)
                }
            }
            return (lo, hi)
        case .binary(let op):
            let lb = lower[step.inputs[1]], ub = upper[step.inputs[1]]
            let n = step.outputShape.reduce(1, *)
            var lo = [Double](repeating: 0, count: n), hi = lo
            for j in 0..<n {
                let a = step.broadcast[0].map { Int($0[j]) } ?? j, b = step.broadcast[1].map { Int($0[j]) } ?? j
                switch op {
                case .add: (lo[j], hi[j]) = (l[a] + lb[b], u[a] + ub[b])
                case .sub: (lo[j], hi[j]) = (l[a] - ub[b], u[a] - lb[b])
                case .mul: (lo[j], hi[j]) = GraphIntervals.product(l[a], u[a], lb[b], ub[b], defined: true)
                case .div: (lo[j], hi[j]) = GraphIntervals.product(l[a], u[a], 1 / ub[b], 1 / lb[b], defined: lb[b] > 0 || ub[b] < 0)
                }
            }
            return (lo, hi)
        case .unary(let f):
            var lo = l, hi = u
            for j in l.indices { (lo[j], hi[j]) = GraphIntervals.range(f, l[j], u[j]) }
            return (lo, hi)
        case .pool(let p):
            let (channels, height, width) = (step.inputShapes[0][0], step.inputShapes[0][1], step.inputShapes[0][2])
            let (oh, ow) = (step.outputShape[1], step.outputShape[2])
            var lo = [Double](repeating: 0, count: channels * oh * ow), hi = lo
            for ch in 0..<channels {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let w = p.window(outputY: oy, outputX: ox, inputHeight: height, inputWidth: width)
                        var a = p.kind == .max ? -Double.infinity : 0, b = a
                        for iy in w.rows {
                            for ix in w.columns {
                                let k = (ch * height + iy) * width + ix
                                if p.kind == .max { (a, b) = (max(a, l[k]), max(b, u[k])) } else { (a, b) = (a + l[k], b + u[k]) }
                            }
                        }
                        let o = (ch * oh + oy) * ow + ox
                        (lo[o], hi[o]) = p.kind == .max ? (a, b) : (a / Double(w.divisor), b / Double(w.divisor))
                    }
                }
            }
            return (lo, hi)
        case .globalAveragePool:
            let channels = step.inputShapes[0][0], spatial = l.count / channels
            var lo = [Double](repeating: 0, count: channels), hi = lo
            for ch in 0..<channels {
                for j in 0..<spatial {
                    lo[ch] += l[ch * spatial + j]
                    hi[ch] += u[ch * spatial + j]
                }
                lo[ch] /= Double(spatial)
                hi[ch] /= Double(spatial)
            }
            return (lo, hi)
        case .concat(let axis):
            let outer = step.outputShape[..<axis].reduce(1, *)
            var lo: [Double] = [], hi: [Double] = []
            lo.reserveCapacity(step.outputShape.reduce(1, *))
            hi.reserveCapacity(step.outputShape.reduce(1, *))
            for o in 0..<outer {
                for (k, v) in step.inputs.enumerated() {
                    let inner = step.inputShapes[k][axis...].reduce(1, *)
                    lo += lower[v][(o * inner)..<((o + 1) * inner)]
                    hi += upper[v][(o * inner)..<((o + 1) * inner)]
                }
            }
            return (lo, hi)
        case .softmax(let axis, let log):
            let shape = step.inputShapes[0], length = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
            let outer = l.count / (length * inner)
            var lo = l, hi = u
            for o in 0..<outer {
                for q in 0..<inner {
                    let base = o * length * inner + q
                    for j in 0..<length {
                        // Output j grows with input j and shrinks with every other input.
                        var below = 0.0, above = 0.0
                        for k in 0..<length where k != j {
                            below += exp(u[base + k * inner] - l[base + j * inner])
                            above += exp(l[base + k * inner] - u[base + j * inner])
                        }
                        (lo[base + j * inner], hi[base + j * inner]) = log ? (-log1p(below), -log1p(above)) : (1 / (1 + below), 1 / (1 + above))
                    }
                }
            }
            return (lo, hi)
        case .identity, .reshape:
            return (l, u)
        }
    }

    /// Bounds of W h + b for h in [l, u] (centre/radius), or, with `ball`, for h in the L2 ball.
    static func dense(_ w: Matrix<Double>, _ b: [Double], _ l: [Double], _ u: [Double], _ ball: (x0: [Double], epsilon: Double)?) -> ([Double], [Double]) {
        var lower = b, upper = b
        let centre = zip(l, u).map { 0.5 * ($0 + $1) }, radius = zip(l, u).map { 0.5 * ($1 - $0) }
        w.withUnsafeBufferPointer { wp in
            for i in 0..<w.rows {
                let row = wp.baseAddress! + i * w.columns
                var c = 0.0, r = 0.0
                if let ball {
                    for j in 0..<w.columns {
                        c += row[j] * ball.x0[j]
                        r += row[j] * row[j]
                    }
                    r = ball.epsilon * r.squareRoot()
                } else {
                    for j in 0..<w.columns {
                        c += row[j] * centre[j]
                        r += abs(row[j]) * radius[j]
                    }
                }
                lower[i] += c - r
                upper[i] += c + r
            }
        }
        return (lower, upper)
    }

    /// Bounds of a convolution (cross-correlation with groups, strides, pads, dilations) on [l, u] or
    /// an L2 ball: centre and |W|·radius (or ε·‖in-bounds weights‖₂) per output element.
    static func convolution(_ c: GraphOperation.Convolution, input: [Int], output: [Int], _ l: [Double], _ u: [Double],
                            _ ball: (x0: [Double], epsilon: Double)?) -> ([Double], [Double]) {
        let (height, width) = (input[1], input[2]), (oh, ow) = (output[1], output[2])
        let groupChannels = input[0] / c.groups, groupOutputs = c.outChannels / c.groups
        let (kh, kw) = c.kernel
        let centre = ball?.x0 ?? zip(l, u).map { 0.5 * ($0 + $1) }, radius = zip(l, u).map { 0.5 * ($1 - $0) }
        let weight = c.weight.elements.map(Double.init)
        var lower = [Double](repeating: 0, count: c.outChannels * oh * ow), upper = lower
        for o in 0..<c.outChannels {
            let g = o / groupOutputs, wo = o * groupChannels * kh * kw
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var m = Double(c.bias[o]), r = 0.0
                    for ch in 0..<groupChannels {
                        let plane = (g * groupChannels + ch) * height * width
                        for ky in 0..<kh {
                            let iy = oy * c.stride.height + ky * c.dilation.height - c.pads.top
                            guard iy >= 0 && iy < height else { continue }
                            for kx in 0..<kw {
                                let ix = ox * c.stride.width + kx * c.dilation.width - c.pads.left
                                guard ix >= 0 && ix < width else { continue }
                                let w = weight[wo + (ch * kh + ky) * kw + kx], k = plane + iy * width + ix
                                m += w * centre[k]
                                r += ball == nil ? abs(w) * radius[k] : w * w
                            }
                        }
                    }
                    if let ball { r = ball.epsilon * r.squareRoot() }
                    let index = (o * oh + oy) * ow + ox
                    (lower[index], upper[index]) = (m - r, m + r)
                }
            }
        }
        return (lower, upper)
    }

    /// The range of a·b for a ∈ [al, au], b ∈ [bl, bu] (or (−∞, ∞) when not `defined`).
    static func product(_ al: Double, _ au: Double, _ bl: Double, _ bu: Double, defined: Bool) -> (Double, Double) {
        guard defined else { return (-.infinity, .infinity) }
        let p = [al * bl, al * bu, au * bl, au * bu]
        if p.contains(where: \.isNaN) { return (-.infinity, .infinity) }
        return (p.min()!, p.max()!)
    }

    /// GELU's minimum: (argmin, value) for the erf form and for the tanh approximation.
    static let geluMinimum = (exact: unimodalMinimum { gelu($0, tanh: false) }, tanh: unimodalMinimum { gelu($0, tanh: true) })

    static func gelu(_ x: Double, tanh t: Bool) -> Double {
        t ? 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) : 0.5 * x * erfc(-x / 2.0.squareRoot())
    }

    /// Golden-section search on [−2, 0] (GELU's minimum lies inside); the value is lowered by 1e-12 so it
    /// stays below the true minimum despite the search's finite precision.
    static func unimodalMinimum(_ f: (Double) -> Double) -> (x: Double, value: Double) {
        var (a, b) = (-2.0, 0.0)
        let ratio = (5.0.squareRoot() - 1) / 2
        for _ in 0..<200 {
            let c = b - ratio * (b - a), d = a + ratio * (b - a)
            if f(c) < f(d) { b = d } else { a = c }
        }
        let x = 0.5 * (a + b)
        return (x, f(x) - 1e-12)
    }

    /// The exact range of a unary operation on [l, u].
    static func range(_ f: GraphOperation.ElementwiseUnary, _ l: Double, _ u: Double) -> (Double, Double) {
        func unimodal(_ g: (Double) -> Double, _ minimum: (x: Double, value: Double)) -> (Double, Double) {
            if u <= minimum.x { return (g(u), g(l)) }
            if l >= minimum.x { return (g(l), g(u)) }
            return (minimum.value, max(g(l), g(u)))
        }
        switch f {
        case .relu: return (max(l, 0), max(u, 0))
        case .leakyReLU(let alpha):
            let a = Double(alpha), g = { (v: Double) in v > 0 ? v : a * v }
            return a >= 0 ? (g(l), g(u)) : unimodal(g, (0, 0))
        case .sigmoid: return (1 / (1 + exp(-l)), 1 / (1 + exp(-u)))
        case .tanh: return (tanh(l), tanh(u))
        case .erf: return (erf(l), erf(u))
        case .softplus:
            let g = { (v: Double) in max(v, 0) + log1p(exp(-abs(v))) }  // exact and overflow-free
            return (g(l), g(u))
        case .clip(let a, let b): return (min(max(l, Double(a)), Double(b)), min(max(u, Double(a)), Double(b)))
        case .gelu(let t): return unimodal({ gelu($0, tanh: t) }, t ? geluMinimum.tanh : geluMinimum.exact)
        }
    }
}
