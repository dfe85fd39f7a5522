import FaultlineLinalg
import FaultlineNN
import Foundation

extension LinearizedNetwork {
    /// The layer chain of a graph that is one, for CROWN: a `GraphModel` whose every node reads the
    /// tensor the previous node wrote (no residual `add` or `concat`), made of affine operations —
    /// dense, convolution (any stride, padding, dilation, groups), average and global average pooling,
    /// channelAffine, add/sub/mul/div by a constant (the input normalisation ONNX exports), reshape,
    /// identity — and ReLU, leaky ReLU, tanh or sigmoid between them.
    ///
    /// Elementwise affine nodes (channelAffine, constant add/sub/mul/div) are folded in Double into the
    /// next matrix (W·diag(a), b + W·c) or, before an activation, into the previous one (diag(a)·W,
    /// a ⊙ b + c); a dense node keeps its weights; convolution and pooling matrices are materialised
    /// with their bias apart (W e_j, exact for a convolution), as for a `Sequential`. So a graph built
    /// from a Sequential (`GraphModel(sequential:)`) gets that Sequential's CROWN bounds.
    ///
    /// Returns nil with the reason when the graph is not such a chain (CROWN then stays unavailable and
    /// interval bound propagation runs on the graph). Cost: one pass over the nodes, plus one forward
    /// pass per input feature of each convolution or pooling node to materialise it.
    static func chain(_ graph: GraphModel) -> (network: LinearizedNetwork?, reason: String?) {
        /// y = scale ⊙ x + shift, elementwise on the current tensor.
        struct Diagonal { var scale: [Double]; var shift: [Double] }
        var stages: [Stage] = []
        var current = graph.inputName
        var pending: Diagonal?
        var producer: [String: GraphModel.Node] = [:]
        for node in graph.nodes { producer[node.output] = node }

        func features(_ name: String) -> Int { graph.shape(of: name)!.reduce(1, *) }
        /// Folds `pending` into the last affine stage, or emits it as a diagonal stage (≤ 4,096 features).
        func flushPending() -> String? {
            guard let diagonal = pending else { return nil }
            pending = nil
            if case .affine(let w, let b)? = stages.last {
                var weight = w
                for i in 0..<weight.rows { for j in 0..<weight.columns { weight[i, j] *= diagonal.scale[i] } }
                stages[stages.count - 1] = .affine(weight: weight, bias: b.indices.map { diagonal.scale[$0] * b[$0] + diagonal.shift[$0] })
                return nil
            }
            let n = diagonal.scale.count
            guard n <= 4_096 else { return "an elementwise affine node on \(n) input features before any matrix" }
            var weight = Matrix<Double>(rows: n, columns: n)
            for i in 0..<n { weight[i, i] = diagonal.scale[i] }
            stages.append(.affine(weight: weight, bias: diagonal.shift))
            return nil
        }
        /// Appends W x + b after folding `pending` into it.
        func appendMatrix(_ weight: Matrix<Double>, _ bias: [Double]) {
            var (w, b) = (weight, bias)
            if let diagonal = pending {
                for i in 0..<w.rows {
                    var shifted = 0.0
                    for j in 0..<w.columns {
                        shifted += w[i, j] * diagonal.shift[j]
                        w[i, j] *= diagonal.scale[j]
                    }
                    b[i] += shifted
                }
                pending = nil
            }
            stages.append(.affine(weight: w, bias: b))
        }
        func compose(_ scale: [Double], _ shift: [Double]) {
            let old = pending ?? Diagonal(scale: [Double](repeating: 1, count: scale.count), shift: [Double](repeating: 0, count: scale.count))
            pending = Diagonal(scale: scale.indices.map { scale[$0] * old.scale[$0] }, shift: scale.indices.map { scale[$0] * old.shift[$0] + shift[$0] })
        }

        for (index, name) in graph.tensorNames.dropFirst().enumerated() {
            guard let node = producer[name] else { return (nil, "tensor '\(name)' has no producer") }
            guard node.inputs == [current] else {
                return (nil, "node '\(node.name)' (\(node.operation.kind)) reads \(node.inputs.joined(separator: ", ")), not only the previous node's output: the graph is not a chain")
            }
            let n = features(current), shape = graph.shape(of: current)!
            switch node.operation {
            case .identity, .reshape:
                break
            case .dense(let w, let b):
                appendMatrix(w.converted(to: Double.self), b.map(Double.init))
            case .convolution(var conv):
                let bias = conv.bias
                conv.bias = [Float](repeating: 0, count: bias.count)
                guard let weight = materialise(.convolution(conv), inputShape: shape) else { return (nil, "node '\(node.name)' could not be materialised") }
                let perChannel = weight.rows / max(bias.count, 1)
                appendMatrix(weight, (0..<weight.rows).map { Double(bias[$0 / perChannel]) })
            case .pool(let pool) where pool.kind == .average:
                guard let weight = materialise(node.operation, inputShape: shape) else { return (nil, "node '\(node.name)' could not be materialised") }
                appendMatrix(weight, [Double](repeating: 0, count: weight.rows))
            case .globalAveragePool:
                guard let weight = materialise(node.operation, inputShape: shape) else { return (nil, "node '\(node.name)' could not be materialised") }
                appendMatrix(weight, [Double](repeating: 0, count: weight.rows))
            case .channelAffine(let scale, let shift):
                let block = n / max(scale.count, 1)
                compose((0..<n).map { Double(scale[$0 / block]) }, (0..<n).map { Double(shift[$0 / block]) })
            case .constantBinary(let op, let constant, let constantShape, let onLeft):
                let c = GraphOperation.broadcastSourceIndices(constantShape, to: shape).map { Double(constant[Int($0)]) }
                switch (op, onLeft) {
                case (.add, _): compose([Double](repeating: 1, count: n), c)
                case (.sub, false): compose([Double](repeating: 1, count: n), c.map { -$0 })
                case (.sub, true): compose([Double](repeating: -1, count: n), c)
                case (.mul, _): compose(c, [Double](repeating: 0, count: n))
                case (.div, false):
                    guard c.allSatisfy({ $0 != 0 }) else { return (nil, "node '\(node.name)' divides by zero") }
                    compose(c.map { 1 / $0 }, [Double](repeating: 0, count: n))
                case (.div, true): return (nil, "node '\(node.name)' divides a constant by its input (not affine)")
                }
            case .unary(let unary):
                let kind: Activation.Kind
                switch unary {
                case .relu: kind = .relu
                case .leakyReLU(let alpha): kind = .leakyReLU(slope: alpha)
                case .tanh: kind = .tanh
                case .sigmoid: kind = .sigmoid
                default: return (nil, "node '\(node.name)' is \(node.operation.kind), which has no linear relaxation here")
                }
                if let reason = flushPending() { return (nil, reason) }
                stages.append(.activation(kind, layer: index))
            default:
                return (nil, "node '\(node.name)' is \(node.operation.kind), which has no linear relaxation here")
            }
            current = name
        }
        guard current == graph.outputName else { return (nil, "the last node does not write the output '\(graph.outputName)'") }
        if let reason = flushPending() { return (nil, reason) }
        guard case .affine? = stages.last else { return (nil, "the graph does not end in an affine node") }
        return (LinearizedNetwork(stages: stages, inputFeatures: graph.inputFeatures, outputFeatures: graph.outputFeatures), nil)
    }

    /// The matrix of one bias-free linear graph operation on inputs of `inputShape`: column j is the
    /// operation applied to e_j (rows of the identity in blocks of 256). Nil if the graph cannot be built.
    static func materialise(_ operation: GraphOperation, inputShape: [Int]) -> Matrix<Double>? {
        guard let graph = try? GraphModel(name: "materialise", inputName: "x", inputShape: inputShape,
                                          nodes: [.init(name: "op", operation: operation, inputs: ["x"], output: "y")], outputName: "y") else { return nil }
        let n = graph.inputFeatures, m = graph.outputFeatures
        var weight = Matrix<Double>(rows: m, columns: n)
        for first in stride(from: 0, to: n, by: 256) {
            let rows = min(256, n - first)
            var identity = Matrix<Float>(rows: rows, columns: n)
            for r in 0..<rows { identity[r, first + r] = 1 }
            guard let columns = try? graph.logits(identity) else { return nil }
            for r in 0..<rows { for i in 0..<m { weight[i, first + r] = Double(columns[r, i]) } }
        }
        return weight
    }
}

extension LinearizedNetwork {
    init(stages: [Stage], inputFeatures: Int, outputFeatures: Int) {
        (self.stages, self.inputFeatures, self.outputFeatures) = (stages, inputFeatures, outputFeatures)
    }
}

/// A graph's CROWN layer chain, built on first use (`LinearizedNetwork.chain` materialises convolution
/// matrices, which interval bound propagation never needs) and then shared by every copy of the
/// `BoundPropagation` holding it. Thread-safe.
final class LazyLayerChain: @unchecked Sendable {
    private let graph: GraphModel
    private let lock = NSLock()
    private var built: (network: LinearizedNetwork?, reason: String?)?

    init(_ graph: GraphModel) { self.graph = graph }

    /// The chain, or nil and why the graph has none.
    var value: (network: LinearizedNetwork?, reason: String?) {
        lock.lock()
        defer { lock.unlock() }
        if let built { return built }
        let result = LinearizedNetwork.chain(graph)
        built = result
        return result
    }
}
