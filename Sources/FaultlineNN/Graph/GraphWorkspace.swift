import FaultlineLinalg

extension GraphModel {
    /// Preallocated tensors and gradients of a `GraphModel` for batches of up to `capacity` rows: one
    /// buffer per stored tensor (aliases share one), one gradient buffer per stored tensor, the largest
    /// convolution unfold buffer, an accumulator for tensors read by several nodes, and one gradient
    /// buffer per trainable node (weight then bias, `parameterGradients`). Not for concurrent use: one
    /// workspace per thread. Memory: about 2 × capacity × (Σ tensor sizes) + parameter count floats.
    public final class Workspace: ClassifierWorkspace, @unchecked Sendable {
        public let capacity: Int
        let buffers: [AlignedBuffer<Float>]
        let gradients: [AlignedBuffer<Float>]
        let accumulator: AlignedBuffer<Float>
        let scratch: AlignedBuffer<Float>
        let logitGradient: AlignedBuffer<Float>
        /// Per trainable node (`GraphModel.parameters` order): its weight gradient then its bias gradient.
        let parameterGradient: [AlignedBuffer<Float>]
        /// The weight count of each trainable node (where its bias gradient starts).
        let parameterSplit: [Int]
        let losses: AlignedBuffer<Float>
        /// Parts (threads) a convolution's forward pass, input gradient and weight gradient are split into
        /// at most (scratch is sized for them).
        let convolutionParts: Int
        let written: UnsafeMutablePointer<Bool>
        let storageCount: Int
        let outputStorage: Int
        let outputFeatures: Int
        let values: [String: (storage: Int, features: Int)]
        /// The batch of the last forward pass (read in place) and its row count.
        var input: UnsafePointer<Float>?
        var inputGradient: UnsafeMutablePointer<Float>?
        var rows = 0

        init(for model: GraphModel, capacity: Int) {
            precondition(capacity > 0, "workspace capacity must be positive")
            self.capacity = capacity
            storageCount = model.storageFeatures.count
            buffers = model.storageFeatures.enumerated().map { AlignedBuffer(uninitializedCount: $0.offset == 0 ? 0 : capacity * $0.element) }
            gradients = model.storageFeatures.enumerated().map { AlignedBuffer(uninitializedCount: $0.offset == 0 ? 0 : capacity * $0.element) }
            accumulator = AlignedBuffer(uninitializedCount: capacity * (model.storageFeatures.max() ?? 0))
            let parts = max(1, Linalg.simdThreads)
            convolutionParts = parts
            scratch = AlignedBuffer(uninitializedCount: model.steps.map { $0.scratchCount(capacity: capacity, parts: parts) }.max() ?? 0)
            logitGradient = AlignedBuffer(uninitializedCount: capacity * model.outputFeatures)
            let sizes = model.trainableSteps.map { model.steps[$0].operation.parameterSizes }
            parameterGradient = sizes.map { AlignedBuffer(uninitializedCount: $0.weight + $0.bias) }
            parameterSplit = sizes.map(\.weight)
            losses = AlignedBuffer(uninitializedCount: capacity)
            written = .allocate(capacity: storageCount)
            written.initialize(repeating: false, count: storageCount)
            outputStorage = model.outputStorage
            outputFeatures = model.outputFeatures
            var values: [String: (Int, Int)] = [:]
            for v in model.values { values[v.name] = (v.storage, v.features) }
            self.values = values
        }

        deinit { written.deallocate() }

        @inline(__always)
        func data(_ storage: Int) -> UnsafeMutablePointer<Float> {
            storage == 0 ? UnsafeMutablePointer(mutating: input!) : buffers[storage].pointer
        }

        @inline(__always)
        func gradient(_ storage: Int) -> UnsafeMutablePointer<Float> {
            storage == 0 ? inputGradient! : gradients[storage].pointer
        }

        public func logits(rows: Int) -> MatrixPointer<Float> {
            MatrixPointer(buffers[outputStorage].pointer, rows: rows, columns: outputFeatures)
        }

        public var logitGradientScratch: UnsafeMutablePointer<Float> { logitGradient.pointer }

        /// The tensor `name` of the last forward pass (`rows` rows, flattened per sample): a view valid
        /// until the next pass; nil when the graph has no tensor of that name.
        public func tensor(_ name: String, rows: Int) -> MatrixPointer<Float>? {
            guard let (storage, features) = values[name], rows <= capacity else { return nil }
            return MatrixPointer(data(storage), rows: rows, columns: features)
        }
    }

    public func makeWorkspace(capacity: Int) -> Workspace { Workspace(for: self, capacity: capacity) }

    /// Forward pass of `rows` rows at `x` (read in place, contiguous); returns the logits, a view into
    /// the workspace valid until its next pass. Allocation-free.
    public func logits(_ x: UnsafePointer<Float>, rows: Int, workspace: Workspace, context: ForwardContext = .inference) -> MatrixPointer<Float> {
        precondition(rows <= workspace.capacity, "batch of \(rows) rows exceeds the workspace capacity \(workspace.capacity)")
        workspace.input = x
        workspace.rows = rows
        var c = context
        c.scratch = workspace.scratch.pointer
        for step in steps {
            inRowParts(step, rows: rows) { first, count in step.forward(workspace, first: first, rows: count, context: c) }
        }
        return workspace.logits(rows: rows)
    }

    /// Runs `body(first, count)` over the rows: for row-parallel steps on enough data, in contiguous parts
    /// on Faultline's threads (each part writes only its own rows, so results do not depend on the
    /// split), else once over all rows.
    @inline(__always)
    func inRowParts(_ step: Step, rows: Int, _ body: (Int, Int) -> Void) {
        let parts = min(rows, Linalg.simdThreads)
        guard step.isRowParallel, parts > 1, rows * step.outputFeatures >= 1 << 14 else {
            body(0, rows)
            return
        }
        Linalg.parallelForEach(parts) { p in
            let r = Linalg.partition(rows, parts: parts, part: p)
            body(r.lowerBound, r.count)
        }
    }

    /// Backward pass only: d(Σᵢ ⟨dzᵢ, zᵢ⟩)/dx for the batch of the last forward pass in `workspace`
    /// (whose input memory must still hold its values). Gradients of tensors read by several nodes
    /// (residual branches) are summed. Allocation-free; cost about two forward passes.
    public func inputGradient(logitGradient dz: MatrixPointer<Float>, workspace: Workspace, context: ForwardContext,
                              into gradient: MutableMatrixPointer<Float>) {
        precondition(dz.rows == gradient.rows && gradient.columns == inputFeatures && gradient.rowStride == inputFeatures,
                     "input gradient \(gradient.rows)×\(gradient.columns) does not fit the model or the logit gradient")
        backward(logitGradient: dz, workspace: workspace, context: context, inputGradient: gradient.base, parameters: false)
    }

    /// The backward pass behind `inputGradient` and the parameter gradients: writes d(Σᵢ ⟨dzᵢ, zᵢ⟩)/dx
    /// into `inputGradient` when given (else skips every gradient w.r.t. the model input), and when
    /// `parameters` adds d(Σᵢ ⟨dzᵢ, zᵢ⟩)/dθ into the workspace's parameter gradient buffers.
    func backward(logitGradient dz: MatrixPointer<Float>, workspace: Workspace, context: ForwardContext,
                  inputGradient: UnsafeMutablePointer<Float>?, parameters: Bool) {
        let rows = dz.rows
        precondition(dz.columns == outputFeatures && rows == workspace.rows,
                     "logit gradient \(dz.rows)×\(dz.columns) does not fit the model, the output or the last forward pass")
        workspace.inputGradient = inputGradient
        workspace.written.update(repeating: false, count: workspace.storageCount)
        let out = workspace.gradient(outputStorage)
        for i in 0..<rows { (out + i * outputFeatures).update(from: dz.base + i * dz.rowStride, count: outputFeatures) }
        workspace.written[outputStorage] = true
        var c = context
        c.scratch = workspace.scratch.pointer
        for step in steps.reversed() where workspace.written[step.output] {
            if parameters, let slot = step.parameterSlot {
                step.accumulateParameterGradient(workspace, rows: rows, into: workspace.parameterGradient[slot].pointer,
                                                 split: workspace.parameterSplit[slot], context: c)
            }
            for k in step.inputs.indices {
                let target = step.inputs[k], features = storageFeatures[target]
                if target == 0 && inputGradient == nil { continue }
                let accumulate = workspace.written[target]
                let destination = accumulate ? workspace.accumulator.pointer : workspace.gradient(target)
                if !step.isRowParallel { step.backward(input: k, workspace, rows: rows, into: destination, context: c) }
                inRowParts(step, rows: rows) { first, count in
                    if step.isRowParallel {
                        step.backward(input: k, workspace, first: first, rows: count, into: destination + first * features, context: c)
                    }
                    guard accumulate else { return }
                    let g = workspace.gradient(target) + first * features, d = destination + first * features
                    for j in 0..<(count * features) { g[j] += d[j] }
                }
                workspace.written[target] = true
            }
        }
        if let inputGradient, !workspace.written[0] { inputGradient.update(repeating: 0, count: rows * inputFeatures) }
    }

    /// Logits and the requested feature taps (any tensor names, see `tensorNames`) for every row of
    /// `x`, `batchSize` rows per pass. Throws `GraphError(.missingInput)` for an unknown name and
    /// `ModelError` for a wrong width or non-finite input.
    public func features(_ x: Matrix<Float>, taps names: [String], batchSize: Int = 256,
                         context: ForwardContext = .inference) throws -> (logits: Matrix<Float>, taps: [Matrix<Float>]) {
        let p = try predict(CollectionOfOne(x), rows: x.rows, taps: names, batchSize: batchSize, context: context)
        return (p.logits, p.taps.map(\.values))
    }

    /// What `predict` returns: logits, softmax probabilities and the requested taps, one row per input row.
    public struct Prediction: Sendable {
        /// N × outputs, one row per input row.
        public var logits: Matrix<Float>
        /// Softmax of `logits` per row.
        public var probabilities: Matrix<Float>
        /// The requested tensors, flattened per row, in the order asked for.
        public var taps: [(name: String, values: Matrix<Float>)]
    }

    /// Streams `blocks` of input rows (`rows` in all, e.g. `NPY.rowBlocks`) through the model in batches of
    /// `batchSize` in one workspace, collecting logits, probabilities and the taps `names`; `progress`
    /// gets the rows done after each block. Memory: the outputs plus one workspace. Throws
    /// `GraphError(.missingInput)` for an unknown tap (before any work), `ModelError` for a block of the
    /// wrong width, non-finite values, or more or fewer rows than `rows`.
    public func predict<Blocks: Sequence>(_ blocks: Blocks, rows: Int, taps names: [String], batchSize: Int = 256,
                                          context: ForwardContext = .inference,
                                          progress: (Int) -> Void = { _ in }) throws -> Prediction where Blocks.Element == Matrix<Float> {
        let widths = try names.map { name -> Int in
            guard let i = valueIndex[name] else {
                throw GraphError(.missingInput, node: name, "no tensor of that name (tensors: \(tensorNames.prefix(12).joined(separator: ", "))…)")
            }
            return values[i].features
        }
        var logits = Matrix<Float>(rows: rows, columns: outputFeatures)
        var taps = widths.map { Matrix<Float>(rows: rows, columns: $0) }
        let workspace = makeWorkspace(capacity: max(1, min(batchSize, rows)))
        var done = 0
        for x in blocks {
            try checkInput(x, "x")
            guard done + x.rows <= rows else { throw ModelError.shapeMismatch("more than the \(rows) rows announced") }
            x.withUnsafeBufferPointer { px in
                for start in stride(from: 0, to: x.rows, by: workspace.capacity) {
                    let n = min(workspace.capacity, x.rows - start), at = done + start
                    var c = context
                    c.firstSample = context.firstSample + at
                    let z = self.logits(px.baseAddress! + start * inputFeatures, rows: n, workspace: workspace, context: c)
                    logits.withUnsafeMutableBufferPointer { po in (po.baseAddress! + at * outputFeatures).update(from: z.base, count: n * outputFeatures) }
                    for (k, name) in names.enumerated() {
                        let t = workspace.tensor(name, rows: n)!
                        taps[k].withUnsafeMutableBufferPointer { (pt: UnsafeMutableBufferPointer<Float>) in
                            (pt.baseAddress! + at * t.columns).update(from: t.base, count: n * t.columns)
                        }
                    }
                }
            }
            done += x.rows
            progress(done)
        }
        guard done == rows else { throw ModelError.shapeMismatch("\(done) rows read, \(rows) announced") }
        return Prediction(logits: logits, probabilities: try Linalg.softmaxRows(logits), taps: Array(zip(names, taps)))
    }
}

extension GraphModel: DifferentiableClassifier {
    /// `graph:<name>:<fingerprint of the schedule and shapes>`; equal specs mean interchangeable workspaces.
    public var spec: String { "graph:\(name):\(String(fingerprint, radix: 16))" }

    /// [C, H, W] inputs are images.
    public var inputImageShape: ImageShape? {
        inputShape.count == 3 ? ImageShape(channels: inputShape[0], height: inputShape[1], width: inputShape[2]) : nil
    }
}
