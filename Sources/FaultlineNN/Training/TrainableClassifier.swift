import FaultlineLinalg

/// A classifier `train(on:validation:options:progress:)` can fit: its trainable tensors as a flat,
/// named list of matrices, and one primitive that back-propagates a logit gradient into their gradients.
///
/// `Sequential` conforms (tensors named as PyTorch's state_dict: `0.weight`, `0.bias`, …) and so does
/// `GraphModel` (an imported ONNX graph: `NODE.weight`, `NODE.bias` per dense, convolution and
/// channel-affine node, in schedule order; a batch-normalisation folded at import trains as the
/// convolution it was folded into). The defences of FaultlineRobustness (PGD-AT, fast AT, noise and
/// corruption training, TRADES, the overfitting check) take any conforming model.
public protocol TrainableClassifier: DifferentiableClassifier {
    /// Every trainable tensor, in a fixed order (the order of gradients, optimiser state and `setParameters`).
    var namedParameters: [(name: String, value: Matrix<Float>)] { get }
    /// Gives `body` each tensor's elements (index in `namedParameters`) to modify in place, then makes
    /// the model use them. Throws when the model refuses the new values (a graph refuses NaN or ±∞).
    mutating func updateParameters(_ body: (Int, UnsafeMutableBufferPointer<Float>) -> Void) throws
    /// Replaces every tensor (`namedParameters` order and shapes). Throws as `updateParameters`.
    mutating func setParameters(_ values: [Matrix<Float>]) throws
    /// One forward pass of the `x.rows ≤ workspace.capacity` rows of `x` in `context`; `logitGradient(z,
    /// dz)` writes d(objective)/dz for the logits z; one backward pass then **adds** d(objective)/dθ
    /// into `gradients` (`namedParameters` order and shapes).
    func accumulateParameterGradients(_ x: MatrixPointer<Float>, into gradients: inout [Matrix<Float>], workspace: Workspace,
                                      context: ForwardContext, logitGradient: (MatrixPointer<Float>, MutableMatrixPointer<Float>) -> Void)
}

extension TrainableClassifier {
    /// Adds `scale`·d(Σ losses)/dθ into `gradients` for the per-row `loss` of `labels`, and returns the
    /// sum of the rows' losses (in Double). `losses` holds at least `x.rows` values (scratch).
    public func accumulateParameterGradients(_ x: MatrixPointer<Float>, labels: UnsafePointer<Int>, loss: Loss, scale: Float,
                                             losses: UnsafeMutablePointer<Float>, into gradients: inout [Matrix<Float>],
                                             workspace: Workspace, context: ForwardContext) -> Double {
        let rows = x.rows, classes = outputFeatures
        var total = 0.0
        accumulateParameterGradients(x, into: &gradients, workspace: workspace, context: context) { z, dz in
            loss.evaluate(z, labels: labels, targets: nil, losses: losses, gradient: dz)
            for i in 0..<rows { total += Double(losses[i]) }
            for i in 0..<rows { for j in 0..<classes { dz.base[i * dz.rowStride + j] *= scale } }
        }
        return total
    }

    /// Zero matrices shaped like `namedParameters` (a gradient accumulator).
    public func zeroGradients() -> [Matrix<Float>] {
        namedParameters.map { Matrix<Float>(rows: $0.value.rows, columns: $0.value.columns) }
    }
}

extension Sequential: TrainableClassifier {}

extension GraphModel: TrainableClassifier {
    /// `NODE.weight` and `NODE.bias` of every trainable node, in `parameters` order (the bias as 1 × n).
    public var namedParameters: [(name: String, value: Matrix<Float>)] {
        parameters.flatMap { p in
            [(p.node + ".weight", p.weight), (p.node + ".bias", try! Matrix(rows: 1, columns: p.bias.count, elements: p.bias))]
        }
    }

    /// Applies `body` to copies of the tensors, then `setParameters` (which re-derives convolution
    /// kernels): O(parameters) copies per call.
    public mutating func updateParameters(_ body: (Int, UnsafeMutableBufferPointer<Float>) -> Void) throws {
        var values = namedParameters.map(\.value)
        for k in values.indices { values[k].withUnsafeMutableBufferPointer { body(k, $0) } }
        try setParameters(values)
    }

    /// Throws `GraphError(.invalidParameter)` for a count or shape that does not fit, or values that are
    /// not finite (naming the node); the model is unchanged then.
    public mutating func setParameters(_ values: [Matrix<Float>]) throws {
        let current = parameters
        guard values.count == 2 * current.count else {
            throw GraphError(.invalidParameter, node: name, "\(values.count) tensors for \(current.count) trainable nodes (weight and bias each)")
        }
        try setParameters(current.indices.map { k in
            Parameters(node: current[k].node, weight: values[2 * k], bias: values[2 * k + 1].elements)
        })
    }

    public func accumulateParameterGradients(_ x: MatrixPointer<Float>, into gradients: inout [Matrix<Float>], workspace: Workspace,
                                             context: ForwardContext, logitGradient: (MatrixPointer<Float>, MutableMatrixPointer<Float>) -> Void) {
        let rows = x.rows
        precondition(x.columns == inputFeatures && x.rowStride == inputFeatures, "x must be contiguous with \(inputFeatures) columns")
        precondition(gradients.count == 2 * trainableSteps.count, "one gradient per weight and bias")
        workspace.resetParameterGradients()
        let z = logits(x.base, rows: rows, workspace: workspace, context: context)
        let dz = MutableMatrixPointer(workspace.logitGradient.pointer, rows: rows, columns: outputFeatures)
        logitGradient(z, dz)
        backward(logitGradient: dz.readOnly, workspace: workspace, context: context, inputGradient: nil, parameters: true)
        for slot in trainableSteps.indices {
            workspace.withParameterGradient(slot: slot) { w, b in
                gradients[2 * slot].withUnsafeMutableBufferPointer { g in
                    precondition(g.count == w.count, "gradient shapes must match namedParameters")
                    for k in 0..<w.count { g[k] += w[k] }
                }
                gradients[2 * slot + 1].withUnsafeMutableBufferPointer { g in
                    precondition(g.count == b.count, "gradient shapes must match namedParameters")
                    for k in 0..<b.count { g[k] += b[k] }
                }
            }
        }
    }
}
