import FaultlineLinalg

extension Sequential {
    /// Per-sample losses and the gradient of their **sum** w.r.t. the input (so each row's gradient is
    /// its own loss's gradient, independent of the batch).
    public struct InputGradient: Sendable {
        /// The loss of each row.
        public var losses: [Float]
        /// d(Σ losses)/d(input): row i is the gradient of row i's own loss, n × inputFeatures.
        public var gradient: Matrix<Float>
    }

    /// Input gradients only (what attacks need): one forward and one backward pass; no parameter
    /// gradient is computed. Throws `ModelError` on a feature-count mismatch, non-finite input, labels
    /// outside 0..<classes, or targets equal to labels for `.targetedDLR`.
    public func inputGradient(_ x: Matrix<Float>, labels: [Int], loss: Loss = .crossEntropy, targets: [Int]? = nil,
                              batchSize: Int = 1024, context: ForwardContext = .inference) throws -> InputGradient {
        try checkInput(x, "x")
        try checkLabels(labels, rows: x.rows, loss: loss, targets: targets)
        var losses = [Float](repeating: 0, count: x.rows)
        var gradient = Matrix<Float>(uninitializedRows: x.rows, columns: inputFeatures)
        let workspace = Workspace(for: self, capacity: max(1, min(batchSize, x.rows)))
        x.withUnsafeBufferPointer { px in
            gradient.withUnsafeMutableBufferPointer { pg in
                losses.withUnsafeMutableBufferPointer { pl in
                    labels.withUnsafeBufferPointer { py in
                        let pt = targets?.withUnsafeBufferPointer { $0.baseAddress }  // arrays outlive the call below
                        for start in stride(from: 0, to: x.rows, by: workspace.capacity) {
                            let rows = min(workspace.capacity, x.rows - start)
                            var c = context
                            c.firstSample = context.firstSample + start
                            inputGradient(
                                MatrixPointer(px.baseAddress! + start * inputFeatures, rows: rows, columns: inputFeatures),
                                labels: py.baseAddress! + start, targets: pt.map { $0 + start }, loss: loss,
                                losses: pl.baseAddress! + start,
                                into: MutableMatrixPointer(pg.baseAddress! + start * inputFeatures, rows: rows, columns: inputFeatures),
                                workspace: workspace, context: c)
                        }
                    }
                }
            }
        }
        return InputGradient(losses: losses, gradient: gradient)
    }

    /// The allocation-free kernel behind `inputGradient`: `rows ≤ workspace.capacity` rows of `x`,
    /// validated labels. Writes per-sample losses and d(Σ losses)/dx.
    public func inputGradient(_ x: MatrixPointer<Float>, labels: UnsafePointer<Int>, targets: UnsafePointer<Int>?, loss: Loss,
                              losses: UnsafeMutablePointer<Float>, into gradient: MutableMatrixPointer<Float>,
                              workspace: Workspace, context: ForwardContext) {
        let rows = x.rows
        let z = forwardInWorkspace(x, workspace, context: context)
        let dz = MutableMatrixPointer(workspace.logitGradient.pointer, rows: rows, columns: outputFeatures)
        loss.evaluate(z, labels: labels, targets: targets, losses: losses, gradient: dz)
        backwardInWorkspace(rows: rows, outputGradient: dz.readOnly, workspace, context: context, inputGradient: gradient)
    }

    /// Backward pass only, for callers that build their own logit gradient (DeepFool's per-class
    /// Jacobian rows, CW's objective): writes d(Σᵢ ⟨dzᵢ, zᵢ⟩)/dx, one vector–Jacobian product per row,
    /// for the batch of the **last forward pass** in `workspace` (`logits(_:rows:workspace:context:)`).
    /// That batch's memory must still hold the same values; `dz` has its rows and the logit width.
    /// Several backward passes may follow one forward pass. Cost: one backward pass.
    public func inputGradient(logitGradient dz: MatrixPointer<Float>, workspace: Workspace, context: ForwardContext,
                              into gradient: MutableMatrixPointer<Float>) {
        precondition(dz.columns == outputFeatures && dz.rows == gradient.rows && gradient.columns == inputFeatures,
                     "logit gradient \(dz.rows)×\(dz.columns) does not fit the model or the output")
        backwardInWorkspace(rows: dz.rows, outputGradient: dz, workspace, context: context, inputGradient: gradient)
    }

    /// Parameter gradients of the **mean** loss over the rows of `x`, in `namedParameters` order, with
    /// the mean loss (in Double). Used by training; the input gradient is not computed.
    public func parameterGradients(_ x: Matrix<Float>, labels: [Int], loss: Loss = .crossEntropy,
                                   context: ForwardContext = .inference) throws -> (loss: Double, gradients: [Matrix<Float>]) {
        try checkInput(x, "x")
        try checkLabels(labels, rows: x.rows, loss: loss, targets: nil)
        let workspace = Workspace(for: self, capacity: max(1, x.rows))
        var gradients = zeroGradients()
        let total = x.withUnsafeBufferPointer { px in
            labels.withUnsafeBufferPointer { py in
                accumulateParameterGradients(MatrixPointer(px.baseAddress!, rows: x.rows, columns: inputFeatures), labels: py.baseAddress!,
                                             loss: loss, scale: 1 / Float(max(x.rows, 1)), losses: workspace.losses.pointer, into: &gradients,
                                             workspace: workspace, context: context)
            }
        }
        return (total / Double(max(x.rows, 1)), gradients)
    }

    /// The primitive of training objectives other than a per-sample loss (TRADES): one forward pass of
    /// the `x.rows ≤ workspace.capacity` rows of `x`, `logitGradient(z, dz)` writes d(objective)/dz for
    /// the logits z, and one backward pass adds d(objective)/dθ = Σᵢ (dz/dθ)ᵀ dzᵢ into `gradients`
    /// (namedParameters order). Allocates nothing.
    public func accumulateParameterGradients(_ x: MatrixPointer<Float>, into gradients: inout [Matrix<Float>], workspace: Workspace,
                                             context: ForwardContext,
                                             logitGradient: (MatrixPointer<Float>, MutableMatrixPointer<Float>) -> Void) {
        let rows = x.rows
        let z = forwardInWorkspace(x, workspace, context: context)
        let dz = MutableMatrixPointer(workspace.logitGradient.pointer, rows: rows, columns: outputFeatures)
        logitGradient(z, dz)
        let offsets = parameterOffsets
        var c = context
        c.scratch = workspace.scratch.pointer
        backwardInWorkspace(rows: rows, outputGradient: dz.readOnly, workspace, context: context, inputGradient: nil) { l, outputGradient in
            guard offsets[l + 1] > offsets[l] else { return }  // no parameters
            c.layerIndex = l
            layers[l].accumulateParameterGradients(outputGradient: outputGradient, input: workspace.activation(l, rows: rows),
                                                   into: &gradients, at: offsets[l], context: c)
        }
    }

    /// Index of each layer's first parameter in `namedParameters`, and the total count last.
    var parameterOffsets: [Int] {
        var offsets: [Int] = [0]
        for layer in layers { offsets.append(offsets.last! + layer.parameters.count) }
        return offsets
    }
}

extension DifferentiableClassifier {
    /// Throws `ModelError` unless there is one label per row in 0..<classes (and, for `.targetedDLR`, one
    /// target per row in range and different from its label).
    public func checkLabels(_ labels: [Int], rows: Int, loss: Loss, targets: [Int]?) throws {
        guard labels.count == rows else { throw ModelError.shapeMismatch("\(rows) rows but \(labels.count) labels") }
        guard outputFeatures >= loss.minimumClasses else {
            throw ModelError.invalidSpec("\(loss) needs at least \(loss.minimumClasses) classes; the model has \(outputFeatures)")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= outputFeatures }) {
            throw ModelError.invalidLabel("label \(labels[bad]) at row \(bad) is outside 0..<\(outputFeatures)")
        }
        if loss == .targetedDLR {
            guard let targets, targets.count == rows else { throw ModelError.shapeMismatch("targeted DLR needs one target per row") }
            if let bad = targets.indices.first(where: { targets[$0] < 0 || targets[$0] >= outputFeatures || targets[$0] == labels[$0] }) {
                throw ModelError.invalidLabel("target \(targets[bad]) at row \(bad) is out of range or equals the true label")
            }
        }
    }
}
