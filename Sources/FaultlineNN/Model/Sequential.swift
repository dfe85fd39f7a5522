import FaultlineLinalg

/// A feed-forward stack of layers, PyTorch's `nn.Sequential`, on batches of row vectors.
///
/// Shapes are checked when the model is built (each layer's input features equal the previous
/// layer's output features). Inference and gradients run in a `Workspace` sized for a batch, so a
/// warm loop allocates nothing per step.
public struct Sequential: Sendable {
    /// The layers in forward order; consecutive widths match (checked when the model is built).
    public private(set) var layers: [any Layer]

    public var inputFeatures: Int { layers.first?.inputFeatures ?? 0 }
    public var outputFeatures: Int { layers.last?.outputFeatures ?? 0 }

    /// Throws `ModelError.shapeMismatch` naming the first pair of layers that do not connect.
    public init(_ layers: [any Layer]) throws {
        guard !layers.isEmpty else { throw ModelError.invalidSpec("a model needs at least one layer") }
        for i in 1..<layers.count where layers[i].inputFeatures != layers[i - 1].outputFeatures {
            throw ModelError.shapeMismatch(
                "layer \(i) (\(layers[i].spec)) takes \(layers[i].inputFeatures) features but layer \(i - 1) "
                    + "(\(layers[i - 1].spec)) produces \(layers[i - 1].outputFeatures)")
        }
        self.layers = layers
    }

    /// The architecture in the spec syntax, e.g. `linear:64-32,relu,linear:32-10`.
    public var spec: String {
        let body = layers.map(\.spec).joined(separator: ",")
        if let conv = layers.first as? Conv2d { return "input:\(conv.input),\(body)" }
        return body
    }

    /// PyTorch state_dict shapes of `namedParameters`, in the same order.
    public var stateShapes: [[Int]] { layers.flatMap(\.stateShapes) }

    /// Number of trainable scalars.
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameters.reduce(0) { $0 + $1.value.count } } }

    /// All parameters with PyTorch state_dict names (`0.weight`, `0.bias`, `2.weight`, …).
    public var namedParameters: [(name: String, value: Matrix<Float>)] {
        layers.enumerated().flatMap { index, layer in layer.parameters.map { ("\(index).\($0.name)", $0.value) } }
    }

    /// Gives `body` every parameter's elements to modify in place (index in `namedParameters`, elements).
    public mutating func updateParameters(_ body: (Int, UnsafeMutableBufferPointer<Float>) -> Void) {
        var offset = 0
        for i in layers.indices {
            let base = offset
            layers[i].updateParameters { k, elements in body(base + k, elements) }
            offset += layers[i].parameters.count
        }
    }

    /// Replaces every parameter, in `namedParameters` order.
    public mutating func setParameters(_ values: [Matrix<Float>]) {
        var k = 0
        for i in layers.indices {
            let n = layers[i].parameters.count
            if n > 0 { layers[i].setParameters(Array(values[k..<(k + n)])) }
            k += n
        }
        precondition(k == values.count, "setParameters: \(values.count) values for \(k) parameters")
    }

    /// Preallocated activations and gradients for batches of up to `capacity` rows.
    public final class Workspace: @unchecked Sendable {
        public let capacity: Int
        /// activations[l] holds the input of layer l ≥ 1; activations[layers.count] the logits.
        let activations: [AlignedBuffer<Float>]
        let widths: [Int]
        let gradientA: AlignedBuffer<Float>
        let gradientB: AlignedBuffer<Float>
        /// Gradient of the loss w.r.t. the logits, and the per-sample losses.
        let logitGradient: AlignedBuffer<Float>
        let losses: AlignedBuffer<Float>

        /// Buffers for batches of up to `capacity` rows of `model` (a precondition: `capacity` > 0).
        public init(for model: Sequential, capacity: Int) {
            precondition(capacity > 0, "workspace capacity must be positive")
            self.capacity = capacity
            widths = [model.inputFeatures] + model.layers.map(\.outputFeatures)
            // activations[0] is unused: layer 0 reads the caller's batch in place.
            activations = widths.enumerated().map { AlignedBuffer(uninitializedCount: $0.offset == 0 ? 0 : capacity * $0.element) }
            let widest = widths.max()!
            gradientA = AlignedBuffer(uninitializedCount: capacity * widest)
            gradientB = AlignedBuffer(uninitializedCount: capacity * widest)
            logitGradient = AlignedBuffer(uninitializedCount: capacity * model.outputFeatures)
            scratch = AlignedBuffer(uninitializedCount: model.layers.map { $0.scratchCount(rows: capacity) }.max() ?? 0)
            losses = AlignedBuffer(uninitializedCount: capacity)
        }

        /// Scratch memory for the layers that need it (the largest `scratchCount`).
        let scratch: AlignedBuffer<Float>

        /// The batch being processed: layer 0 reads it in place (no copy into the workspace).
        var input: MatrixPointer<Float>?

        /// The input of layer l (l = 0: the batch itself), or the logits for l = layer count.
        func activation(_ l: Int, rows: Int) -> MatrixPointer<Float> {
            if l == 0, let input { return input }
            return MatrixPointer(activations[l].pointer, rows: rows, columns: widths[l])
        }

        /// The logits of the last forward pass in this workspace (`rows` as in that pass).
        public func logits(rows: Int) -> MatrixPointer<Float> {
            MatrixPointer(activations[widths.count - 1].pointer, rows: rows, columns: widths[widths.count - 1])
        }

        /// Where layer l − 1 writes its output (l ≥ 1).
        func output(_ l: Int, rows: Int) -> MutableMatrixPointer<Float> {
            precondition(l > 0, "the model input is read-only")
            return MutableMatrixPointer(activations[l].pointer, rows: rows, columns: widths[l])
        }
    }

    /// Forward pass of `x` (at most `workspace.capacity` rows, read in place); returns the logits (a
    /// view into the workspace, valid until the next pass).
    @discardableResult
    func forwardInWorkspace(_ x: MatrixPointer<Float>, _ workspace: Workspace, context: ForwardContext) -> MatrixPointer<Float> {
        let rows = x.rows
        precondition(rows <= workspace.capacity, "batch of \(rows) rows exceeds the workspace capacity \(workspace.capacity)")
        precondition(x.columns == inputFeatures, "input has \(x.columns) features, the model takes \(inputFeatures)")
        workspace.input = x
        for (l, layer) in layers.enumerated() {
            var c = context
            c.layerIndex = l
            c.scratch = workspace.scratch.pointer
            layer.forward(workspace.activation(l, rows: rows), into: workspace.output(l + 1, rows: rows), context: c)
        }
        return workspace.activation(layers.count, rows: rows)
    }

    /// Propagates `outputGradient` (gradient w.r.t. the logits, rows × outputFeatures) back through
    /// the layers, calling `perLayer(l, gradient w.r.t. layer l's output)` on the way (parameter
    /// gradients). The gradient w.r.t. the model input is written to `inputGradient`; when it is nil,
    /// layer 0's input gradient is never computed (parameter-gradient mode).
    func backwardInWorkspace(rows: Int, outputGradient: MatrixPointer<Float>, _ workspace: Workspace, context: ForwardContext,
                             inputGradient: MutableMatrixPointer<Float>?, perLayer: (Int, MatrixPointer<Float>) -> Void = { _, _ in }) {
        var current = outputGradient
        var useA = true
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            perLayer(l, current)
            if l == 0 && inputGradient == nil { return }
            let buffer = useA ? workspace.gradientA : workspace.gradientB
            let next = l == 0 ? inputGradient! : MutableMatrixPointer(buffer.pointer, rows: rows, columns: layers[l].inputFeatures)
            var c = context
            c.layerIndex = l
            c.scratch = workspace.scratch.pointer
            layers[l].backwardInput(outputGradient: current, input: workspace.activation(l, rows: rows),
                                    output: workspace.activation(l + 1, rows: rows), into: next, context: c)
            current = next.readOnly
            useA.toggle()
        }
    }

    /// Logits of `rows` rows at `x` (row-major, `inputFeatures` wide) computed in `workspace`: a view
    /// into the workspace, valid until its next pass. The allocation-free inference kernel.
    public func logits(_ x: UnsafePointer<Float>, rows: Int, workspace: Workspace, context: ForwardContext = .inference) -> MatrixPointer<Float> {
        forwardInWorkspace(MatrixPointer(x, rows: rows, columns: inputFeatures), workspace, context: context)
    }
}

/// Errors building, loading or running a model.
public enum ModelError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A spec that does not parse or describes an impossible model; the message names the layer.
    case invalidSpec(String)
    /// An input, weight or label array whose shape does not fit the model; the message names both shapes.
    case shapeMismatch(String)
    /// A NaN or ±∞ where finite values are needed (inputs, losses), naming the row.
    case nonFinite(String)
    /// A label outside 0..<classes, naming the row.
    case invalidLabel(String)
    /// A weight file that does not fit its spec: a missing, extra or mis-shaped tensor, naming the key.
    case weights(String)

    public var description: String {
        switch self {
        case .invalidSpec(let s): return "invalid model spec: \(s)"
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .nonFinite(let s): return "non-finite input: \(s)"
        case .invalidLabel(let s): return "invalid label: \(s)"
        case .weights(let s): return "weights: \(s)"
        }
    }
}
