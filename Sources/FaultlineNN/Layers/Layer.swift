import FaultlineLinalg

/// One layer of a `Sequential` model, operating on a batch as a row-major matrix [batch, features].
///
/// Layers are values: parameters live in the layer (`parameters`, flat views for optimisers), the
/// activations a backward pass needs live in the model's `Workspace`. The contract of each method:
/// - `forward`: `output` (n × outputFeatures) from `input` (n × inputFeatures). `mode` tells dropout
///   whether to drop; `context` gives the counter-based random stream for it.
/// - `backwardInput`: the gradient w.r.t. the input from the gradient w.r.t. the output, given the
///   forward input and output of the same batch (no parameter gradients are computed).
/// - `accumulateParameterGradients`: adds this batch's parameter gradients into
///   `gradients[offset...]` (one matrix per parameter, in `parameters` order).
public protocol Layer: Sendable {
    /// A short description, e.g. `linear:784-512`, `relu`, `dropout:0.5` (the spec syntax).
    var spec: String { get }
    /// Features per input row.
    var inputFeatures: Int { get }
    /// Features per output row.
    var outputFeatures: Int { get }
    /// Parameter tensors in PyTorch's state_dict order (e.g. weight then bias), with their names.
    var parameters: [(name: String, value: Matrix<Float>)] { get }
    /// The shape of each parameter as PyTorch's state_dict holds it (e.g. [out, in, k, k] for a
    /// convolution weight stored here as out × in·k·k; biases 1-d).
    var stateShapes: [[Int]] { get }
    /// Floats of scratch memory a forward or backward call on `rows` rows needs (0 for most layers);
    /// the workspace provides them in `ForwardContext.scratch`.
    func scratchCount(rows: Int) -> Int
    /// Replaces the parameters (same order and shapes as `parameters`).
    mutating func setParameters(_ values: [Matrix<Float>])
    /// Gives `body` each parameter's elements to modify in place (index within the layer, elements),
    /// in `parameters` order: the optimiser step without copying the weights.
    mutating func updateParameters(_ body: (Int, UnsafeMutableBufferPointer<Float>) -> Void)

    /// Computes `output` (n × outputFeatures) from `input` (n × inputFeatures), without allocating.
    func forward(_ input: MatrixPointer<Float>, into output: MutableMatrixPointer<Float>, context: ForwardContext)
    /// Computes dL/d(input) from dL/d(output), given the forward input and output of the same batch.
    func backwardInput(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>, output: MatrixPointer<Float>,
                       into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext)
    /// Adds this batch's parameter gradients into `gradients[offset...]`, one matrix per parameter in `parameters` order.
    func accumulateParameterGradients(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>,
                                      into gradients: inout [Matrix<Float>], at offset: Int, context: ForwardContext)
}

extension Layer {
    public var parameters: [(name: String, value: Matrix<Float>)] { [] }
    public func scratchCount(rows: Int) -> Int { 0 }
    public var stateShapes: [[Int]] {
        parameters.map { $0.name == "bias" ? [$0.value.count] : [$0.value.rows, $0.value.columns] }
    }
    public mutating func setParameters(_ values: [Matrix<Float>]) {
        precondition(values.isEmpty, "\(spec) has no parameters")
    }
    public mutating func updateParameters(_ body: (Int, UnsafeMutableBufferPointer<Float>) -> Void) {}
    /// Layers without parameters add nothing.
    public func accumulateParameterGradients(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>,
                                             into gradients: inout [Matrix<Float>], at offset: Int, context: ForwardContext) {}
}

/// How a forward pass runs: training mode (dropout active) or evaluation, and where its random numbers
/// come from. Dropout masks are drawn from Philox keyed by (seed, pass, layer, sample index), so they do
/// not depend on batch size or order.
public struct ForwardContext: Sendable {
    /// Training mode: dropout drops (evaluation mode: it is the identity).
    public var training: Bool
    /// The seed of the dropout masks' Philox stream.
    public var seed: UInt64
    /// Which stochastic pass this is (the MC-dropout sample, or the training step).
    public var pass: UInt64
    /// Index of the first row of this batch in the whole data set.
    public var firstSample: Int
    /// Position of the layer in the model (set by `Sequential`).
    public var layerIndex: Int = 0
    /// The backend of the layers' GEMMs (nil: the default). `.simd` accumulates every output element
    /// in an order that does not depend on the other rows of the batch, so results are bit-identical
    /// for any batch size; BLAS may pick other kernels for other shapes (differences ~1e-6 relative).
    public var backend: Backend?
    /// Scratch memory for layers that need it (`Layer.scratchCount`), provided by the model's workspace
    /// and valid for the duration of one layer call; nil outside a workspace.
    public nonisolated(unsafe) var scratch: UnsafeMutablePointer<Float>?

    /// A context; the defaults are evaluation mode on the default backend.
    public init(training: Bool = false, seed: UInt64 = 0, pass: UInt64 = 0, firstSample: Int = 0, backend: Backend? = nil) {
        self.training = training
        self.seed = seed
        self.pass = pass
        self.firstSample = firstSample
        self.backend = backend
    }

    /// Evaluation mode, seed 0, the default backend: what prediction uses.
    public static let inference = ForwardContext()
}
