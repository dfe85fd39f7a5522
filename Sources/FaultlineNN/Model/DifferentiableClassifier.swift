import FaultlineLinalg

/// Preallocated buffers in which a `DifferentiableClassifier` runs batches of up to `capacity` rows.
/// Not for concurrent use: one workspace per thread.
public protocol ClassifierWorkspace: AnyObject {
    /// The largest batch the workspace holds.
    var capacity: Int { get }
    /// The logits of the last forward pass in this workspace (`rows` as in that pass): a view valid
    /// until the next pass.
    func logits(rows: Int) -> MatrixPointer<Float>
    /// Scratch for one logit gradient per row (capacity × output features), free for the caller
    /// between passes; the default `inputGradient(_:labels:…)` writes the loss gradient here.
    var logitGradientScratch: UnsafeMutablePointer<Float> { get }
}

/// What attacks, randomized smoothing, the corruption sweep and robustness curves need from a model:
/// a classifier of row vectors (`inputFeatures` → `outputFeatures` logits) whose logits can be
/// evaluated on a batch, and back-propagated to the input for a given upstream logit gradient.
///
/// Contract (what the attacks rely on for batch-size–independent results):
/// - `logits(_:rows:workspace:context:)` computes each row from that row alone (no batch statistics);
///   with `context.backend == .simd` the result of a row does not depend on the other rows.
/// - `inputGradient(logitGradient:workspace:context:into:)` writes, per row i, the vector–Jacobian
///   product dzᵢᵀ·∂zᵢ/∂xᵢ for the batch of the **last** forward pass in `workspace`; several backward
///   passes may follow one forward pass; the input memory of that pass must still hold its values.
/// - Hot-loop methods do not allocate; callers reuse one workspace per batch size.
///
/// `Sequential` conforms; other model kinds (imported graphs) can conform without exposing layers.
/// Bound propagation is not part of this contract: it needs the operations (FaultlineRobustness's
/// `BoundPropagation` takes a `Sequential` for IBP/CROWN and a `GraphModel` for IBP).
public protocol DifferentiableClassifier: Sendable {
    /// The buffers of one batch (activations, scratch), reused across calls: `makeWorkspace(capacity:)`.
    associatedtype Workspace: ClassifierWorkspace
    /// Features per input row.
    var inputFeatures: Int { get }
    /// Logits per row (the number of classes).
    var outputFeatures: Int { get }
    /// A short description of the architecture for messages; equal specs mean interchangeable workspaces.
    var spec: String { get }
    /// The image layout of an input row when the model knows one (a first convolution), else nil.
    var inputImageShape: ImageShape? { get }
    /// The number of trainable parameters, for summaries (0 when the model does not say).
    var parameterCount: Int { get }
    /// A workspace for batches of up to `capacity` (> 0) rows.
    func makeWorkspace(capacity: Int) -> Workspace
    /// Logits of `rows` (≤ `workspace.capacity`) rows at `x` (row-major, `inputFeatures` wide): a view
    /// into the workspace, valid until its next pass. Allocation-free.
    func logits(_ x: UnsafePointer<Float>, rows: Int, workspace: Workspace, context: ForwardContext) -> MatrixPointer<Float>
    /// Backward pass only: d(Σᵢ ⟨dzᵢ, zᵢ⟩)/dx for the batch of the last forward pass in `workspace`.
    func inputGradient(logitGradient dz: MatrixPointer<Float>, workspace: Workspace, context: ForwardContext,
                       into gradient: MutableMatrixPointer<Float>)
    /// One forward and one backward pass: per-sample `losses` and d(Σ losses)/dx. Labels (and targets,
    /// for `.targetedDLR`) were validated by the caller. A default built on the two methods above exists.
    func inputGradient(_ x: MatrixPointer<Float>, labels: UnsafePointer<Int>, targets: UnsafePointer<Int>?, loss: Loss,
                       losses: UnsafeMutablePointer<Float>, into gradient: MutableMatrixPointer<Float>,
                       workspace: Workspace, context: ForwardContext)
}

extension DifferentiableClassifier {
    public var inputImageShape: ImageShape? { nil }
    public var parameterCount: Int { 0 }

    /// Forward pass, the loss and its logit gradient in the workspace's scratch, then the backward pass.
    public func inputGradient(_ x: MatrixPointer<Float>, labels: UnsafePointer<Int>, targets: UnsafePointer<Int>?, loss: Loss,
                              losses: UnsafeMutablePointer<Float>, into gradient: MutableMatrixPointer<Float>,
                              workspace: Workspace, context: ForwardContext) {
        let z = logits(x.base, rows: x.rows, workspace: workspace, context: context)
        let dz = MutableMatrixPointer(workspace.logitGradientScratch, rows: x.rows, columns: outputFeatures)
        loss.evaluate(z, labels: labels, targets: targets, losses: losses, gradient: dz)
        inputGradient(logitGradient: dz.readOnly, workspace: workspace, context: context, into: gradient)
    }

    /// Logits for every row of `x`, `batchSize` rows per pass (evaluation mode unless
    /// `context.training`; `context.firstSample` advances per batch). Throws `ModelError.shapeMismatch`
    /// when `x` has the wrong number of columns, `ModelError.nonFinite` for NaN or infinite inputs.
    public func logits(_ x: Matrix<Float>, batchSize: Int = 1024, context: ForwardContext = .inference) throws -> Matrix<Float> {
        try checkInput(x, "x")
        var out = Matrix<Float>(uninitializedRows: x.rows, columns: outputFeatures)
        let workspace = makeWorkspace(capacity: max(1, min(batchSize, x.rows)))
        x.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                for start in stride(from: 0, to: x.rows, by: workspace.capacity) {
                    let rows = min(workspace.capacity, x.rows - start)
                    var c = context
                    c.firstSample = context.firstSample + start
                    let z = logits(px.baseAddress! + start * inputFeatures, rows: rows, workspace: workspace, context: c)
                    (po.baseAddress! + start * outputFeatures).update(from: z.base, count: rows * outputFeatures)
                }
            }
        }
        return out
    }

    /// Predicted classes (argmax of the logits, ties by lower index).
    public func predict(_ x: Matrix<Float>) throws -> [Int] { try Linalg.rowArgmax(logits(x)) }

    /// Throws `ModelError` unless `x` has the model's input width and only finite values (`name` names
    /// the rows in the message).
    public func checkInput(_ x: Matrix<Float>, _ name: String) throws {
        guard x.columns == inputFeatures else {
            throw ModelError.shapeMismatch("\(name) has \(x.columns) features per row but the model (\(spec)) takes \(inputFeatures)")
        }
        guard x.isFinite else { throw ModelError.nonFinite("\(name) contains NaN or infinite values") }
    }
}

extension Sequential: DifferentiableClassifier {
    public var inputImageShape: ImageShape? { (layers.first as? Conv2d)?.input }

    public func makeWorkspace(capacity: Int) -> Workspace { Workspace(for: self, capacity: capacity) }
}

extension Sequential.Workspace: ClassifierWorkspace {
    public var logitGradientScratch: UnsafeMutablePointer<Float> { logitGradient.pointer }
}
