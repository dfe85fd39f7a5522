import FaultlineIO
import FaultlineLinalg
import Foundation

/// A classifier given as a directed acyclic graph of tensor operations (what an ONNX file holds):
/// residual `add`s, `concat`s, several consumers per tensor, named intermediate tensors.
///
/// Tensors are batches of samples; every shape here is **per sample** (the batch dimension is
/// implicit and any batch size runs), stored row-major, one row per sample. The graph is compiled once
/// when built: nodes are put in a topological schedule, every shape is inferred and checked,
/// `identity`/`reshape` nodes become aliases of their input (no copy), and constants of elementwise
/// operations are expanded to the tensor's shape. Running needs a `Workspace` (all activations and
/// gradients preallocated for a capacity), so a warm forward or backward pass allocates nothing.
///
/// Errors: `GraphError` naming the node (cycle, missing input, duplicate output, shape mismatch,
/// invalid parameters).
///
/// Contract for attacks (`DifferentiableClassifier`): every operation acts on each sample alone (there
/// are no batch statistics), so a row's logits do not depend on the other rows of the batch.
public struct GraphModel: Sendable {
    /// A node: `operation` applied to the tensors named `inputs`, producing the tensor named `output`.
    public struct Node: Sendable {
        /// The node's name (the ONNX node name), used in errors.
        public var name: String
        /// What the node computes, with its parameters.
        public var operation: GraphOperation
        /// The names of the tensors it reads, in the operation's order.
        public var inputs: [String]
        /// The name of the tensor it writes (unique in the graph).
        public var output: String
        /// A node; `GraphModel.init` checks the names, the order and the shapes.
        public init(name: String, operation: GraphOperation, inputs: [String], output: String) {
            self.name = name
            self.operation = operation
            self.inputs = inputs
            self.output = output
        }
    }

    /// One tensor of the compiled graph: its storage (tensors aliased by `identity`/`reshape` share one).
    struct Value: Sendable {
        var name: String
        var shape: [Int]
        var features: Int
        var storage: Int
    }

    /// One scheduled operation, with everything precomputed that its kernels need.
    struct Step: Sendable {
        var name: String
        var operation: GraphOperation
        var inputs: [Int]  // storage ids
        var output: Int  // storage id
        var inputShapes: [[Int]]
        var outputShape: [Int]
        /// For `.binary`: per input, the source index of each output element (nil: same shape).
        var broadcast: [[Int32]?] = []
        /// For `.constantBinary`: the constant expanded to the output shape.
        var expandedConstant: [Float] = []
        /// For a `.convolution`: its sizes, unfold offsets and weights resolved once (`prepare`), so that
        /// a pass allocates nothing.
        var convolution: ConvolutionGeometry?
        /// For a stride-1 `.convolution`: the convolution whose forward pass is this one's input
        /// gradient (flipped, transposed weights), so backward is unfold + GEMM without a col2im fold.
        var adjoint: ConvolutionGeometry?
        /// Index of the node in `nodes`.
        var node = 0
        /// For dense, convolution and channelAffine steps: the index of their parameters in
        /// `parameters` (and of their gradient buffer in a workspace).
        var parameterSlot: Int?
    }

    /// The most elements one tensor may hold per sample (2²⁶): a bound on what a graph built from an
    /// untrusted file can make a workspace allocate per row.
    public static let maximumTensorElements = 1 << 26

    /// A name for messages and `spec` (e.g. the graph name of an ONNX file).
    public let name: String
    /// The name of the graph's input tensor.
    public let inputName: String
    /// Per-sample shape of the input (e.g. [3, 32, 32]).
    public let inputShape: [Int]
    /// The name of the tensor returned as the logits.
    public let outputName: String
    /// Per-sample shape of the output (the logits).
    public let outputShape: [Int]
    /// The nodes as given (the source of the compiled schedule); `setParameters` updates their parameters.
    public internal(set) var nodes: [Node]

    let values: [Value]
    let valueIndex: [String: Int]
    var steps: [Step]
    /// The steps with trainable parameters (dense, convolution, channelAffine), in schedule order.
    let trainableSteps: [Int]
    /// Features per storage id (storage 0 is the model input).
    let storageFeatures: [Int]
    let outputStorage: Int
    let fingerprint: UInt64

    /// Builds and compiles the graph. Throws `GraphError` naming the first offending node.
    public init(name: String = "graph", inputName: String, inputShape: [Int], nodes: [Node], outputName: String) throws {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }), let count = Tensor.elementCount(inputShape), count <= Self.maximumTensorElements else {
            throw GraphError(.shapeMismatch, node: inputName, "the input needs a per-sample shape of positive sizes "
                             + "and at most \(Self.maximumTensorElements) elements, got \(inputShape)")
        }
        self.name = name
        self.inputName = inputName
        self.inputShape = inputShape
        self.outputName = outputName
        self.nodes = nodes

        // Producers; duplicate outputs are refused.
        var producer: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            guard node.output != inputName, producer[node.output] == nil else {
                throw GraphError(.duplicateOutput, node: node.name, "tensor '\(node.output)' is produced twice")
            }
            producer[node.output] = i
        }
        // Kahn's algorithm, stable (ready nodes in file order).
        var pending = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, node) in nodes.enumerated() {
            for input in node.inputs where input != inputName {
                guard let p = producer[input] else {
                    throw GraphError(.missingInput, node: node.name, "reads tensor '\(input)', which no node produces")
                }
                pending[i] += 1
                consumers[p].append(i)
            }
        }
        var order: [Int] = []
        var ready = (0..<nodes.count).filter { pending[$0] == 0 }
        var head = 0
        while head < ready.count {
            let i = ready[head]
            head += 1
            order.append(i)
            for c in consumers[i] {
                pending[c] -= 1
                if pending[c] == 0 { ready.append(c) }
            }
        }
        if order.count < nodes.count {
            let stuck = nodes.indices.first { pending[$0] > 0 }!
            throw GraphError(.cycle, node: nodes[stuck].name, "is on a cycle: its inputs depend on its own output")
        }

        // Shapes, aliases and storage.
        var values = [Value(name: inputName, shape: inputShape, features: inputShape.reduce(1, *), storage: 0)]
        var index = [inputName: 0]
        var storageFeatures = [values[0].features]
        var steps: [Step] = []
        for i in order {
            let node = nodes[i]
            let inputIds = node.inputs.map { index[$0]! }
            let inputShapes = inputIds.map { values[$0].shape }
            let shape: [Int]
            do { shape = try node.operation.outputShape(inputShapes) } catch let error as GraphShapeProblem {
                throw GraphError(error.kind, node: node.name, "\(node.operation.kind): \(error.detail)")
            }
            guard let features = Tensor.elementCount(shape), features <= Self.maximumTensorElements else {
                throw GraphError(.shapeMismatch, node: node.name, "\(node.operation.kind): output \(shape) has more than \(Self.maximumTensorElements) elements per sample")
            }
            let storage: Int
            if node.operation.isAlias {
                storage = values[inputIds[0]].storage
            } else {
                storage = storageFeatures.count
                storageFeatures.append(features)
                var step = Step(name: node.name, operation: node.operation, inputs: inputIds.map { values[$0].storage }, output: storage,
                                inputShapes: inputShapes, outputShape: shape)
                step.prepare()
                step.node = i
                steps.append(step)
            }
            index[node.output] = values.count
            values.append(Value(name: node.output, shape: shape, features: features, storage: storage))
        }
        guard let out = index[outputName] else {
            throw GraphError(.missingInput, node: outputName, "the graph output '\(outputName)' is not produced by any node")
        }
        guard values[out].storage != 0 else {
            throw GraphError(.shapeMismatch, node: outputName, "the graph output is the input itself")
        }
        var trainable: [Int] = []
        for s in steps.indices where steps[s].operation.isTrainable {
            steps[s].parameterSlot = trainable.count
            trainable.append(s)
        }
        self.trainableSteps = trainable
        self.values = values
        self.valueIndex = index
        self.steps = steps
        self.storageFeatures = storageFeatures
        self.outputStorage = values[out].storage
        self.outputShape = values[out].shape
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (steps.map { "\($0.operation.kind)\($0.inputShapes)\($0.outputShape)\($0.inputs)" }.joined()).utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        fingerprint = hash
    }

    /// Features per input row.
    public var inputFeatures: Int { storageFeatures[0] }
    /// Logits per row.
    public var outputFeatures: Int { storageFeatures[outputStorage] }
    /// The names of every tensor (input, node outputs), in schedule order: all are feature taps.
    public var tensorNames: [String] { values.map(\.name) }
    /// Per-sample shape of the tensor `name`, nil when the graph has none of that name.
    public func shape(of name: String) -> [Int]? { valueIndex[name].map { values[$0].shape } }
    /// Number of scheduled operations (aliases excluded).
    public var operationCount: Int { steps.count }
    /// Number of stored parameters (weights, biases, constants).
    public var parameterCount: Int { nodes.reduce(0) { $0 + $1.operation.parameterCount } }
}

/// Errors building a `GraphModel`: which node, and what is wrong with it.
public struct GraphError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    /// What is wrong with the node.
    public enum Kind: String, Sendable {
        /// A cycle through the node, an input no node produces, a tensor produced twice, shapes that do not fit the operation, or a parameter out of range.
        case cycle, missingInput, duplicateOutput, shapeMismatch, invalidParameter
    }
    /// What is wrong.
    public var kind: Kind
    /// The node (or tensor) the error is about.
    public var node: String
    /// The details: shapes, names or values, and what was expected.
    public var detail: String
    /// An error about `node`.
    public init(_ kind: Kind, node: String, _ detail: String) {
        self.kind = kind
        self.node = node
        self.detail = detail
    }
    public var description: String { "node '\(node)': \(detail)" }
    public var errorDescription: String? { description }
}

/// A shape problem found by `GraphOperation.outputShape`; `GraphModel` adds the node name.
struct GraphShapeProblem: Error {
    var kind: GraphError.Kind
    var detail: String
    init(_ detail: String, _ kind: GraphError.Kind = .shapeMismatch) {
        self.kind = kind
        self.detail = detail
    }
}

extension GraphModel {
    /// The tensor feeding the graph's classifier head — the input of its last dense (Gemm/MatMul,
    /// `nn.Linear`) node when that is the last node with parameters — by name (a `features(_:taps:)`
    /// tap), with its width; nil when the graph ends otherwise (e.g. a convolution). For a Sequential
    /// made into a graph this is the activation before the last linear layer: the "penultimate
    /// features" OOD detectors such as Mahalanobis (Lee et al. 2018) use.
    public var penultimateTap: (name: String, features: Int)? {
        guard let last = steps.last(where: { $0.parameterSlot != nil }), case .dense = last.operation, let input = last.inputs.first,
              let value = values.last(where: { $0.storage == input }) else { return nil }
        return (value.name, value.features)
    }
}
