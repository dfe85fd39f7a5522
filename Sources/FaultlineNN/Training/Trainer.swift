import FaultlineIO
import FaultlineLinalg
import Foundation

/// Minibatch training of a `TrainableClassifier` (a `Sequential` or an imported `GraphModel`) with cross-entropy.
public struct TrainingOptions: Sendable {
    /// Passes over the training set (at most; early stopping may end sooner).
    public var epochs: Int
    /// Rows per gradient step (the last batch of an epoch may be smaller).
    public var batchSize: Int
    /// SGD (with momentum) or Adam, with their learning rates and weight decay.
    public var optimizer: OptimizerKind
    /// Seeds the shuffling and the dropout masks (initialisation is the model builder's).
    public var seed: UInt64
    /// Stop when validation accuracy has not improved for this many epochs (needs a validation set);
    /// the best epoch's weights are restored.
    public var patience: Int?
    /// Replaces every training batch before its gradient step: adversarial training (PGD-AT, fast
    /// FGSM-AT in FaultlineRobustness' `AdversarialTraining`) or noise augmentation. nil: the batch as drawn.
    public var augmentation: (any BatchAugmentation)?
    /// The learning-rate schedule over all optimisation steps (constant by default).
    public var schedule: LearningRateSchedule
    /// The objective whose parameter gradient each step follows, instead of the batch's mean
    /// cross-entropy (e.g. TRADES in FaultlineRobustness). nil: cross-entropy.
    public var objective: (any TrainingObjective)?
    /// Asked after every epoch whether training has gone wrong (e.g. catastrophic overfitting of fast
    /// adversarial training); on a stop the previous epoch's weights are restored.
    public var epochCheck: (any EpochCheck)?

    /// Options; the defaults train 30 epochs of batches of 64 with Adam, no early stopping, no augmentation.
    public init(epochs: Int = 30, batchSize: Int = 64, optimizer: OptimizerKind = .adam(), seed: UInt64 = 0, patience: Int? = nil,
                augmentation: (any BatchAugmentation)? = nil, schedule: LearningRateSchedule = .constant, epochCheck: (any EpochCheck)? = nil,
                objective: (any TrainingObjective)? = nil) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.seed = seed
        self.patience = patience
        self.augmentation = augmentation
        self.schedule = schedule
        self.epochCheck = epochCheck
        self.objective = objective
    }
}

/// A transformation of each training batch, applied in place before the batch's gradient step with the
/// model as it is at that step (its current weights): the inner maximisation of adversarial training,
/// or noise and corruption augmentation. Implementations keep their buffers across calls, so a step
/// allocates nothing after the first; they must be deterministic given (`step`, the rows' values) so
/// training stays reproducible. Errors thrown end the training run.
public protocol BatchAugmentation: Sendable {
    /// Replaces the `rows.rows` rows of `rows` (labels `labels`) in place. `step` counts optimisation
    /// steps from 0 across epochs; `epoch` is the current epoch (for schedules such as an ε ramp).
    func augment<Model: TrainableClassifier>(_ model: Model, rows: MutableMatrixPointer<Float>, labels: UnsafePointer<Int>, step: UInt64, epoch: Int) throws
}

/// What happened during training.
public struct TrainingReport: Sendable, Codable {
    /// Epochs run (fewer than asked when early stopping or an `EpochCheck` ended training).
    public var epochs: Int
    /// The mean training loss of each epoch.
    public var trainLoss: [Double]
    /// The validation accuracy after each epoch (empty without a validation set).
    public var validationAccuracy: [Double]
    /// The epoch (0-based) whose weights were kept by early stopping, or nil without it.
    public var bestEpoch: Int?
    /// Wall-clock training time.
    public var seconds: Double
    /// Why an `EpochCheck` stopped training (the weights are those of the epoch before), or nil.
    public var stopReason: String?
}

/// A training objective other than the mean cross-entropy of the batch: adds the gradient of its
/// batch value w.r.t. the parameters into `gradients` (namedParameters order; the trainer zeroes them
/// before) and returns that value, using `TrainableClassifier.accumulateParameterGradients(_:into:workspace:context:logitGradient:)`.
/// `context` is the training context of the step (dropout on); `step` and `epoch` as for `BatchAugmentation`.
public protocol TrainingObjective: Sendable {
    /// Adds the objective's parameter gradient for the batch `rows` (`labels`) into `gradients` and returns its value.
    func accumulate<Model: TrainableClassifier>(_ model: Model, rows: MatrixPointer<Float>, labels: UnsafePointer<Int>,
                                                into gradients: inout [Matrix<Float>], workspace: Model.Workspace, context: ForwardContext,
                                                step: UInt64, epoch: Int) throws -> Double
}

/// A check after each training epoch. Returning a reason stops training and restores the weights of
/// the epoch before (the last ones the check accepted); nil lets training go on.
public protocol EpochCheck: Sendable {
    /// A reason to stop after `epoch` (0-based), or nil to go on.
    func stopReason<Model: TrainableClassifier>(_ model: Model, epoch: Int) throws -> String?
}

extension TrainableClassifier {
    /// Trains in place on `data` (rows shuffled each epoch by Philox(seed, epoch)); with `validation`
    /// it records accuracy per epoch and, with `patience`, stops early and restores the best weights.
    /// `progress(epoch, trainLoss)` is called after each epoch. Deterministic: the same seed, data and
    /// options give bit-identical weights.
    /// Throws `ModelError` for data that does not fit the model (feature count, labels).
    @discardableResult
    public mutating func train(on data: LabeledDataset, validation: LabeledDataset? = nil, options: TrainingOptions = TrainingOptions(),
                               progress: ((Int, Double) -> Void)? = nil) throws -> TrainingReport {
        try checkInput(data.features, "\(data.name) features")
        try checkLabels(data.labels, rows: data.count, loss: .crossEntropy, targets: nil)
        if let validation { try checkInput(validation.features, "\(validation.name) features") }
        precondition(options.epochs >= 0 && options.batchSize > 0, "epochs ≥ 0 and batchSize > 0")
        let start = Date()
        let n = data.count, d = inputFeatures
        let batch = min(options.batchSize, max(n, 1))
        let workspace = makeWorkspace(capacity: batch)
        let losses = AlignedBuffer<Float>(uninitializedCount: batch)
        var optimizer = Optimizer(options.optimizer, shapes: namedParameters.map { $0.value.count })
        var gradients = namedParameters.map { Matrix<Float>(rows: $0.value.rows, columns: $0.value.columns) }
        var xBatch = Matrix<Float>(uninitializedRows: batch, columns: d)
        var yBatch = [Int](repeating: 0, count: batch)
        var report = TrainingReport(epochs: 0, trainLoss: [], validationAccuracy: [], bestEpoch: nil, seconds: 0, stopReason: nil)
        var accepted = options.epochCheck == nil ? nil : namedParameters.map(\.value)  // the weights the check last accepted
        var best: (accuracy: Double, epoch: Int, parameters: [Matrix<Float>])?
        var order = Array(0..<n)
        var step: UInt64 = 0
        let totalSteps = options.epochs * ((n + batch - 1) / batch)
        // Steps on small batches are small GEMMs: OpenBLAS's threads cost more than they give there
        // (spinning between calls), so below 256 rows the steps run BLAS on one thread and the layers
        // parallelise over samples themselves (Conv2d). Measured, 2 cores: PGD-AT CNN batch 50 2.9 → 2.4 s
        // per epoch; MLP 784-512-512-10 batch 64 equal (1.40 s / 5 epochs), batch 512 0.45 s with threads
        // vs 0.57 s without, hence the bound.
        try Self.withTrainingBLAS(rows: batch) {
            for epoch in 0..<options.epochs {
                var rng = Philox(seed: options.seed, stream: UInt64(epoch))
                for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.uniform() * Double(i + 1))) }
                var lossSum = 0.0
                for first in stride(from: 0, to: n, by: batch) {
                    let rows = min(batch, n - first)
                    data.features.withUnsafeBufferPointer { src in
                        xBatch.withUnsafeMutableBufferPointer { dst in
                            for r in 0..<rows { (dst.baseAddress! + r * d).update(from: src.baseAddress! + order[first + r] * d, count: d) }
                        }
                    }
                    for r in 0..<rows { yBatch[r] = data.labels[order[first + r]] }
                    if let augmentation = options.augmentation {
                        let model = self
                        try xBatch.withUnsafeMutableBufferPointer { px in
                            try yBatch.withUnsafeBufferPointer { py in
                                try augmentation.augment(model, rows: MutableMatrixPointer(px.baseAddress!, rows: rows, columns: d), labels: py.baseAddress!,
                                                         step: step, epoch: epoch)
                            }
                        }
                    }
                    for k in gradients.indices { gradients[k].withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
                    let context = ForwardContext(training: true, seed: options.seed, pass: step, firstSample: 0)
                    // The model copy the objective sees ends with this expression: the parameter update below must not
                    // find the storage shared (a copy-on-write of every parameter each step).
                    let loss = try { (model: Self) in try xBatch.withUnsafeBufferPointer { px in
                        try yBatch.withUnsafeBufferPointer { py in
                            let x = MatrixPointer(px.baseAddress!, rows: rows, columns: d)
                            if let objective = options.objective {
                                return try objective.accumulate(model, rows: x, labels: py.baseAddress!, into: &gradients, workspace: workspace,
                                                                context: context, step: step, epoch: epoch)
                            }
                            return model.accumulateParameterGradients(x, labels: py.baseAddress!, loss: .crossEntropy, scale: 1 / Float(rows),
                                                                      losses: losses.pointer, into: &gradients, workspace: workspace,
                                                                      context: context) / Double(rows)
                        }
                    } }(self)
                    lossSum += loss * Double(rows)
                    optimizer.beginStep()
                    optimizer.learningRateScale = options.schedule.multiplier(step: Int(step), epoch: epoch, totalSteps: totalSteps)
                    try updateParameters { k, p in optimizer.update(k, p, gradients[k]) }
                    step += 1
                }
                report.trainLoss.append(lossSum / Double(max(n, 1)))
                report.epochs = epoch + 1
                progress?(epoch, lossSum / Double(max(n, 1)))
                if let check = options.epochCheck {
                    if let reason = try check.stopReason(self, epoch: epoch) {
                        try setParameters(accepted!)
                        report.stopReason = reason
                        break
                    }
                    accepted = namedParameters.map(\.value)
                }
                if let validation {
                    let accuracy = try self.accuracy(on: validation)
                    report.validationAccuracy.append(accuracy)
                    if best == nil || accuracy > best!.accuracy {
                        best = (accuracy, epoch, namedParameters.map(\.value))
                    } else if let patience = options.patience, epoch - best!.epoch >= patience {
                        break
                    }
                }
            }
        }
        if let best, options.patience != nil {
            try setParameters(best.parameters)
            report.bestEpoch = best.epoch
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// Runs `body` with BLAS on one thread for batches under 256 rows, with the configured threads above.
    static func withTrainingBLAS<R>(rows: Int, _ body: () throws -> R) rethrows -> R {
        rows < 256 ? try NativeBLAS.withSingleThread(body) : try body()
    }

    /// Share of rows whose argmax logit equals the label.
    public func accuracy(on data: LabeledDataset) throws -> Double {
        let predicted = try predict(data.features)
        return Double(zip(predicted, data.labels).filter { $0 == $1 }.count) / Double(max(data.count, 1))
    }
}
