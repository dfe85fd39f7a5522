import FaultlineLinalg

/// Inverted dropout: in training mode each element is zeroed with probability p and the survivors are
/// scaled by 1/(1−p); in evaluation mode it is the identity. The mask is a pure function of
/// (seed, pass, layer index, sample index, feature), drawn from Philox, so the same seed gives the
/// same masks whatever the batch size, and MC-dropout samples are reproducible.
public struct Dropout: Layer {
    /// p in [0, 1): the probability of zeroing an element in training mode.
    public let probability: Float
    /// Features per row (in and out).
    public let features: Int

    /// A dropout layer; `probability` must be in [0, 1) (a precondition; specs are checked before).
    public init(probability: Float, features: Int) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.probability = probability
        self.features = features
    }

    /// Features per row: `features`.
    public var inputFeatures: Int { features }
    /// Features per row: `features`.
    public var outputFeatures: Int { features }
    public var spec: String { "dropout:\(probability)" }

    /// Whether element (sample, feature) is kept.
    @inline(__always)
    func keeps(_ sample: Int, _ feature: Int, _ context: ForwardContext) -> Bool {
        let key = (UInt32(truncatingIfNeeded: context.seed), UInt32(truncatingIfNeeded: context.seed >> 32))
        let block = Philox.block(key: key, counter: (UInt32(truncatingIfNeeded: feature), UInt32(truncatingIfNeeded: sample),
                                                     UInt32(truncatingIfNeeded: context.pass), UInt32(truncatingIfNeeded: context.layerIndex)))
        return Float(block.0 >> 8) * 0x1p-24 >= probability
    }

    /// The forward pass and the input gradient are the same map (mask × 1/(1−p), or the identity in
    /// evaluation mode), applied to the input or to the output gradient.
    func applyMask(_ source: MatrixPointer<Float>, into destination: MutableMatrixPointer<Float>, context: ForwardContext) {
        let scale = 1 / (1 - probability)
        for i in 0..<source.rows {
            let x = source.base + i * source.rowStride, y = destination.base + i * destination.rowStride
            if !context.training || probability == 0 {
                y.update(from: x, count: features)
                continue
            }
            for j in 0..<features { y[j] = keeps(context.firstSample + i, j, context) ? x[j] * scale : 0 }
        }
    }

    /// Training: the Philox mask scaled by 1/(1 − p); evaluation: a copy.
    public func forward(_ input: MatrixPointer<Float>, into output: MutableMatrixPointer<Float>, context: ForwardContext) {
        applyMask(input, into: output, context: context)
    }

    /// The same mask applied to the output gradient (the identity in evaluation mode).
    public func backwardInput(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        applyMask(outputGradient, into: inputGradient, context: context)
    }
}
