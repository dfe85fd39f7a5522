import FaultlineLinalg

/// Parameters of a `GraphModel` and gradients of a loss with respect to them.
///
/// The trainable nodes are the dense, convolution and channelAffine nodes (in schedule order); the
/// constants of `constantBinary` nodes are not trainable. A batch-normalisation folded into a
/// convolution at import is trained as that convolution's weight and bias (what
/// `torch.nn.utils.fusion.fuse_conv_bn_eval` gives in PyTorch).
extension GraphModel {
    /// The parameters of one trainable node, or their gradients: `weight` is out × in for dense
    /// (PyTorch's `nn.Linear` layout), out × (in/groups · kH · kW) for convolutions (PyTorch's
    /// `nn.Conv2d` weight flattened), 1 × channels (the scales) for channelAffine; `bias` has one
    /// value per output (channel), the shifts for channelAffine.
    public struct Parameters: Sendable {
        /// The node the parameters belong to.
        public var node: String
        /// The weights (or their gradient), laid out as described above.
        public var weight: Matrix<Float>
        /// The bias (or shifts, or their gradient), one value per output.
        public var bias: [Float]
        /// Parameters (or gradients) for `node`.
        public init(node: String, weight: Matrix<Float>, bias: [Float]) {
            self.node = node
            self.weight = weight
            self.bias = bias
        }
    }

    /// The names of the trainable nodes, in `parameters` order (schedule order).
    public var trainableNodes: [String] { trainableSteps.map { steps[$0].name } }

    /// Every trainable node's parameters, in schedule order (the order of gradients and of `setParameters`).
    public var parameters: [Parameters] { trainableSteps.map { parameters(of: steps[$0]) } }

    func parameters(of step: Step) -> Parameters {
        switch step.operation {
        case .dense(let w, let b): return Parameters(node: step.name, weight: w, bias: b)
        case .convolution(let c): return Parameters(node: step.name, weight: c.weight, bias: c.bias)
        case .channelAffine(let s, let t): return Parameters(node: step.name, weight: try! Matrix(rows: 1, columns: s.count, elements: s), bias: t)
        default: preconditionFailure("node \(step.name) has no parameters")
        }
    }

    /// Replaces every trainable node's parameters (`parameters` order; node names and sizes must match).
    /// Workspaces made before stay valid. Throws `GraphError(.invalidParameter)` naming the first node
    /// whose name or sizes differ, or whose values are not finite; the model is unchanged then.
    /// Cost: O(parameters), plus re-deriving each stride-1 convolution's adjoint kernel.
    public mutating func setParameters(_ values: [Parameters]) throws {
        guard values.count == trainableSteps.count else {
            throw GraphError(.invalidParameter, node: name, "\(values.count) parameter sets for \(trainableSteps.count) trainable nodes")
        }
        var updated = steps
        for (slot, s) in trainableSteps.enumerated() {
            let v = values[slot], current = parameters(of: steps[s])
            guard v.node == current.node, v.weight.rows == current.weight.rows, v.weight.columns == current.weight.columns,
                  v.bias.count == current.bias.count else {
                throw GraphError(.invalidParameter, node: current.node, "expected parameters of '\(current.node)' with weight "
                                 + "\(current.weight.rows)×\(current.weight.columns) and \(current.bias.count) biases, got '\(v.node)' "
                                 + "\(v.weight.rows)×\(v.weight.columns) and \(v.bias.count)")
            }
            guard v.weight.isFinite, v.bias.allSatisfy(\.isFinite) else {
                throw GraphError(.invalidParameter, node: current.node, "parameters contain NaN or infinite values")
            }
            switch updated[s].operation {
            case .dense: updated[s].operation = .dense(weight: v.weight, bias: v.bias)
            case .convolution(var c):
                (c.weight, c.bias) = (v.weight, v.bias)
                updated[s].operation = .convolution(c)
            case .channelAffine: updated[s].operation = .channelAffine(scale: v.weight.elements, shift: v.bias)
            default: break
            }
            updated[s].prepare()
        }
        steps = updated
        for s in trainableSteps { nodes[steps[s].node].operation = steps[s].operation }
    }

    /// One plain SGD step, θ ← θ − learningRate · g, for gradients in `parameters` order (as
    /// `parameterGradients` returns them). Throws as `setParameters` (and for a non-finite rate).
    public mutating func applyGradientStep(_ gradients: [Parameters], learningRate: Float) throws {
        guard learningRate.isFinite else { throw GraphError(.invalidParameter, node: name, "learning rate \(learningRate) is not finite") }
        var values = parameters
        guard gradients.count == values.count else {
            throw GraphError(.invalidParameter, node: name, "\(gradients.count) gradients for \(values.count) trainable nodes")
        }
        for k in values.indices {
            let g = gradients[k]
            guard g.node == values[k].node, g.weight.count == values[k].weight.count, g.bias.count == values[k].bias.count else {
                throw GraphError(.invalidParameter, node: values[k].node, "the gradient '\(g.node)' does not fit this node's parameters")
            }
            values[k].weight = try Matrix(rows: values[k].weight.rows, columns: values[k].weight.columns,
                                          elements: zip(values[k].weight.elements, g.weight.elements).map { $0 - learningRate * $1 })
            values[k].bias = zip(values[k].bias, g.bias).map { $0 - learningRate * $1 }
        }
        try setParameters(values)
    }

    /// Gradients of the **mean** loss over the rows of `x` (PyTorch's default `reduction='mean'`) with
    /// respect to every trainable node's parameters, in `parameters` order, with the mean loss (summed in
    /// Double). One forward and one backward pass per batch of `batchSize` rows in one workspace; the
    /// gradient w.r.t. the input is not computed. Results do not depend on `batchSize` beyond float
    /// summation order. Throws `ModelError` for a wrong width, non-finite input, labels outside
    /// 0..<classes, or missing/invalid targets for `.targetedDLR`.
    public func parameterGradients(_ x: Matrix<Float>, labels: [Int], loss: Loss = .crossEntropy, targets: [Int]? = nil,
                                   batchSize: Int = 256, context: ForwardContext = .inference) throws -> (loss: Double, gradients: [Parameters]) {
        try checkInput(x, "x")
        try checkLabels(labels, rows: x.rows, loss: loss, targets: targets)
        let workspace = makeWorkspace(capacity: max(1, min(batchSize, x.rows)))
        workspace.resetParameterGradients()
        var total = 0.0
        x.withUnsafeBufferPointer { px in
            labels.withUnsafeBufferPointer { py in
                let pt = targets?.withUnsafeBufferPointer { $0.baseAddress }  // arrays outlive the call below
                for start in stride(from: 0, to: x.rows, by: workspace.capacity) {
                    let rows = min(workspace.capacity, x.rows - start)
                    var c = context
                    c.firstSample = context.firstSample + start
                    total += accumulateParameterGradients(MatrixPointer(px.baseAddress! + start * inputFeatures, rows: rows, columns: inputFeatures),
                                                          labels: py.baseAddress! + start, targets: pt.map { $0 + start }, loss: loss,
                                                          scale: 1 / Float(max(x.rows, 1)), workspace: workspace, context: c)
                }
            }
        }
        return (total / Double(max(x.rows, 1)), trainableSteps.indices.map { workspace.parameterGradient(slot: $0, of: self) })
    }

    /// The allocation-free kernel behind `parameterGradients`: one forward pass of `rows ≤ capacity`
    /// rows, their per-sample losses, and one backward pass that **adds** `scale` · d(Σ losses)/dθ into
    /// the workspace's parameter gradient buffers (zero them with `resetParameterGradients` first; read
    /// them with `parameterGradient(slot:of:)`). Labels (and targets) must be valid. Returns the
    /// sum of the rows' losses. Cost: one forward pass and about one and a half backward passes (the
    /// input gradient of the first node is skipped, weight gradients added).
    public func accumulateParameterGradients(_ x: MatrixPointer<Float>, labels: UnsafePointer<Int>, targets: UnsafePointer<Int>?, loss: Loss,
                                             scale: Float, workspace: Workspace, context: ForwardContext) -> Double {
        let rows = x.rows
        precondition(x.columns == inputFeatures && x.rowStride == inputFeatures, "x must be contiguous with \(inputFeatures) columns")
        let z = logits(x.base, rows: rows, workspace: workspace, context: context)
        let dz = MutableMatrixPointer(workspace.logitGradient.pointer, rows: rows, columns: outputFeatures)
        loss.evaluate(z, labels: labels, targets: targets, losses: workspace.losses.pointer, gradient: dz)
        var total = 0.0
        for i in 0..<rows { total += Double(workspace.losses.pointer[i]) }
        for i in 0..<(rows * outputFeatures) { dz.base[i] *= scale }
        backward(logitGradient: dz.readOnly, workspace: workspace, context: context, inputGradient: nil, parameters: true)
        return total
    }
}

extension GraphModel.Workspace {
    /// Sets every parameter gradient buffer to zero (before accumulating a new gradient).
    public func resetParameterGradients() {
        for buffer in parameterGradient { buffer.pointer.update(repeating: 0, count: buffer.count) }
    }

    /// Gives `body` the accumulated weight and bias gradients of trainable node `slot` (`parameters`
    /// order) in place, without copying (for optimisers that must not allocate per batch).
    public func withParameterGradient<R>(slot: Int, _ body: (_ weight: UnsafeBufferPointer<Float>, _ bias: UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let p = parameterGradient[slot].pointer, split = parameterSplit[slot]
        return try body(UnsafeBufferPointer(start: p, count: split), UnsafeBufferPointer(start: p + split, count: parameterGradient[slot].count - split))
    }

    /// The accumulated gradient of trainable node `slot` (`model.parameters` order) as new arrays.
    public func parameterGradient(slot: Int, of model: GraphModel) -> GraphModel.Parameters {
        let current = model.parameters(of: model.steps[model.trainableSteps[slot]])
        let p = parameterGradient[slot].pointer, split = parameterSplit[slot]
        return GraphModel.Parameters(node: current.node,
                                     weight: try! Matrix(rows: current.weight.rows, columns: current.weight.columns,
                                                         elements: Array(UnsafeBufferPointer(start: p, count: split))),
                                     bias: Array(UnsafeBufferPointer(start: p + split, count: current.bias.count)))
    }
}

extension GraphModel.Step {
    /// Adds d(Σᵢ ⟨dyᵢ, yᵢ⟩)/dθ of this (trainable) step into `gradient`: the weight's gradient in the first
    /// `split` floats, the bias's after it. Reads the step's input from the forward pass and its output
    /// gradient from the backward pass in `ws`.
    func accumulateParameterGradient(_ ws: GraphModel.Workspace, rows: Int, into gradient: UnsafeMutablePointer<Float>, split: Int,
                                     context: ForwardContext) {
        let inF = inputFeatures, outF = outputFeatures
        let x = ws.data(inputs[0]), dy = ws.gradient(output)
        let gw = gradient, gb = gradient + split
        switch operation {
        case .dense:
            // dW (out × in) += dYᵀ X; db += Σ rows of dY.
            Linalg.gemm(MatrixPointer(dy, rows: rows, columns: outF), MatrixPointer(x, rows: rows, columns: inF), transA: .transposed,
                        alpha: 1, beta: 1, into: MutableMatrixPointer(gw, rows: outF, columns: inF), backend: context.backend)
            for i in 0..<rows {
                let g = dy + i * outF
                for o in 0..<outF { gb[o] += g[o] }
            }
        case .convolution:
            convolution!.parameterGradient(x, dy, rows: rows, weight: gw, bias: gb, parts: ws.convolutionParts, context: context)
        case .channelAffine(let scale, _):
            let channels = scale.count, spatial = inF / channels
            for i in 0..<rows {
                for ch in 0..<channels {
                    let xs = x + i * inF + ch * spatial, g = dy + i * outF + ch * spatial
                    var s: Float = 0, t: Float = 0
                    for j in 0..<spatial {
                        s += g[j] * xs[j]
                        t += g[j]
                    }
                    gw[ch] += s
                    gb[ch] += t
                }
            }
        default:
            break
        }
    }
}

extension ConvolutionGeometry {
    /// Scratch of the weight gradient in `parts`: per part one block's unfold and gathered dY, and a
    /// partial weight gradient.
    func parameterScratchCount(capacity: Int, parts: Int) -> Int {
        isDepthwise ? 0 : parts * (block(capacity: (capacity + parts - 1) / parts) * perSample + c.weight.count)
    }

    /// Adds the weight gradient Σₙ dYₙ · colsₙᵀ per group and the bias gradient Σ dY per output channel.
    /// The rows are split in `parts` contiguous ranges, one per thread, each unfolding blocks of its
    /// samples and running single-threaded GEMMs (their K, samples × pixels, is the long dimension, which
    /// OpenBLAS does not split) into its own partial gradient; the partials are added in part order.
    /// Depthwise convolutions: a direct loop per output channel (in parallel).
    func parameterGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, rows: Int, weight gw: UnsafeMutablePointer<Float>,
                           bias gb: UnsafeMutablePointer<Float>, parts: Int, context: ForwardContext) {
        let (kh, kw) = c.kernel
        Linalg.parallelForEach(c.outChannels) { o in
            var s: Float = 0
            for n in 0..<rows {
                let g = dy + n * outputFeatures + o * pixels
                for p in 0..<pixels { s += g[p] }
            }
            gb[o] += s
            guard isDepthwise else { return }
            let wk = gw + o * kh * kw
            for n in 0..<rows {
                let src = x + n * inputFeatures + (o / groupOutputs) * height * width, g = dy + n * outputFeatures + o * pixels
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        var t: Float = 0
                        for oy in 0..<outHeight {
                            let iy = oy * c.stride.height + ky * c.dilation.height - c.pads.top
                            guard iy >= 0 && iy < height else { continue }
                            let (lo, hi, offset) = columnRange(kx)
                            let row = src + iy * width + offset, go = g + oy * outWidth
                            for ox in lo..<max(lo, hi) { t += go[ox] * row[ox * c.stride.width] }
                        }
                        wk[ky * kw + kx] += t
                    }
                }
            }
        }
        if isDepthwise { return }
        let parts = max(1, min(parts, rows)), blockSize = block(capacity: (rows + parts - 1) / parts)
        let partSize = blockSize * perSample + c.weight.count, base = context.scratch!
        NativeBLAS.withSingleThread {
            Linalg.parallelForEach(parts) { p in
                let range = Linalg.partition(rows, parts: parts, part: p)
                let cols = base + p * partSize, gathered = cols + blockSize * patch * pixels, partial = cols + blockSize * perSample
                partial.update(repeating: 0, count: c.weight.count)
                for start in stride(from: range.lowerBound, to: range.upperBound, by: blockSize) {
                    let b = min(blockSize, range.upperBound - start), columns = b * pixels
                    for g in 0..<c.groups {
                        for s in 0..<b {
                            im2col.unfold(x + (start + s) * inputFeatures + g * groupChannels * height * width, into: cols + s * pixels,
                                          rowStride: columns, padded: padded(cols, blockSize: blockSize, sample: s))
                            for o in 0..<groupOutputs {
                                (gathered + o * columns + s * pixels).update(from: dy + (start + s) * outputFeatures + (g * groupOutputs + o) * pixels,
                                                                            count: pixels)
                            }
                        }
                        Linalg.gemm(MatrixPointer(gathered, rows: groupOutputs, columns: columns), MatrixPointer(cols, rows: patch, columns: columns),
                                    transB: .transposed, alpha: 1, beta: 1,
                                    into: MutableMatrixPointer(partial + g * groupOutputs * patch, rows: groupOutputs, columns: patch), backend: context.backend)
                    }
                }
            }
        }
        for p in 0..<parts {
            let partial = base + p * partSize + blockSize * perSample
            for j in 0..<c.weight.count { gw[j] += partial[j] }
        }
    }
}
