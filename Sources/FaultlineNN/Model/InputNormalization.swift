import FaultlineLinalg

/// Per-channel input normalisation, (x − mean) / std, as torchvision's `Normalize` and RobustBench
/// models apply before their first layer. A row of `features` values is split into `channels` equal
/// consecutive blocks (PyTorch's C×H×W flattening: channel c is features c·HW ..< (c+1)·HW); one
/// value stands for every channel.
public struct InputNormalization: Sendable, Equatable, CustomStringConvertible {
    /// Per-channel means (one value: every channel).
    public let mean: [Float]
    /// Per-channel standard deviations, finite and > 0 (one value: every channel).
    public let std: [Float]

    /// Throws `ModelError.invalidSpec` unless both lists are non-empty, of equal length (or one of
    /// them a single value, used for every channel), every mean finite and every std finite and > 0.
    public init(mean: [Float], std: [Float]) throws {
        guard !mean.isEmpty, !std.isEmpty, mean.count == std.count || mean.count == 1 || std.count == 1 else {
            throw ModelError.invalidSpec("normalisation needs as many means as stds (or one of either), got \(mean.count) and \(std.count)")
        }
        guard mean.allSatisfy(\.isFinite) else { throw ModelError.invalidSpec("normalisation means must be finite, got \(mean)") }
        guard std.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw ModelError.invalidSpec("normalisation stds must be finite and > 0, got \(std)") }
        let n = max(mean.count, std.count)
        self.mean = mean.count == n ? mean : Array(repeating: mean[0], count: n)
        self.std = std.count == n ? std : Array(repeating: std[0], count: n)
    }

    /// The number of channels (1 when one value stands for all).
    public var channels: Int { mean.count }

    /// `mean1,mean2,…:std1,std2,…`, the `--normalize` syntax.
    public var description: String {
        mean.map { "\($0)" }.joined(separator: ",") + ":" + std.map { "\($0)" }.joined(separator: ",")
    }

    /// Mean and std of every feature of a row of `features` values. With an `image` layout the channel
    /// count must be 1 or the image's channels; without one it must divide `features`. Throws
    /// `ModelError.shapeMismatch` saying what would fit.
    public func perFeature(features: Int, image: ImageShape?) throws -> (mean: [Float], std: [Float]) {
        let c = channels
        if let image, c != 1, c != image.channels {
            throw ModelError.shapeMismatch("the normalisation has \(c) channels but the model's input is an image \(image) (give 1 or \(image.channels) values)")
        }
        guard features > 0, features % c == 0 else {
            throw ModelError.shapeMismatch("the normalisation has \(c) channels, which do not split the model's \(features) input features into equal blocks")
        }
        let block = features / c
        return ((0..<features).map { mean[$0 / block] }, (0..<features).map { std[$0 / block] })
    }
}

/// A classifier that computes `base` on (x − mean) / std: logits, input gradients and everything the
/// attacks use are in the raw input space (the ε-ball and the box apply to x, as in torchattacks and
/// RobustBench), while `base` sees normalised inputs.
///
/// Exactness: the forward pass rounds (x − mean) / std as PyTorch does (a subtraction and a division
/// per element), and the input gradient is base's gradient divided by std per element, PyTorch's
/// backward of the division, so both agree with PyTorch autograd up to base's own rounding.
/// Cost: one pass over the batch each way, and rows × inputFeatures floats in the workspace.
public struct NormalizedClassifier<Base: DifferentiableClassifier>: DifferentiableClassifier {
    /// The model that sees the normalised inputs.
    public let base: Base
    /// The normalisation applied in front of `base`.
    public let normalization: InputNormalization
    let mean: [Float]
    let std: [Float]

    /// Throws `ModelError.shapeMismatch` when the normalisation's channels do not fit base's input
    /// (see `InputNormalization.perFeature`).
    public init(_ base: Base, normalization: InputNormalization) throws {
        self.base = base
        self.normalization = normalization
        (mean, std) = try normalization.perFeature(features: base.inputFeatures, image: base.inputImageShape)
    }

    public var inputFeatures: Int { base.inputFeatures }
    public var outputFeatures: Int { base.outputFeatures }
    public var spec: String { "normalize(\(normalization)),\(base.spec)" }
    public var inputImageShape: ImageShape? { base.inputImageShape }
    public var parameterCount: Int { base.parameterCount }

    /// base's workspace and the normalised batch it reads.
    public final class Workspace: ClassifierWorkspace, @unchecked Sendable {
        /// The workspace of `base`.
        public let base: Base.Workspace
        let normalized: AlignedBuffer<Float>
        init(base: Base.Workspace, features: Int) {
            self.base = base
            normalized = AlignedBuffer(uninitializedCount: base.capacity * features)
        }
        public var capacity: Int { base.capacity }
        public func logits(rows: Int) -> MatrixPointer<Float> { base.logits(rows: rows) }
        public var logitGradientScratch: UnsafeMutablePointer<Float> { base.logitGradientScratch }
    }

    public func makeWorkspace(capacity: Int) -> Workspace {
        Workspace(base: base.makeWorkspace(capacity: capacity), features: inputFeatures)
    }

    public func logits(_ x: UnsafePointer<Float>, rows: Int, workspace: Workspace, context: ForwardContext) -> MatrixPointer<Float> {
        let n = inputFeatures, u = workspace.normalized.pointer
        mean.withUnsafeBufferPointer { m in
            std.withUnsafeBufferPointer { s in
                for i in 0..<rows {
                    let row = x + i * n, out = u + i * n
                    for j in 0..<n { out[j] = (row[j] - m[j]) / s[j] }
                }
            }
        }
        return base.logits(u, rows: rows, workspace: workspace.base, context: context)
    }

    public func inputGradient(logitGradient dz: MatrixPointer<Float>, workspace: Workspace, context: ForwardContext,
                              into gradient: MutableMatrixPointer<Float>) {
        base.inputGradient(logitGradient: dz, workspace: workspace.base, context: context, into: gradient)
        std.withUnsafeBufferPointer { s in
            for i in 0..<gradient.rows {
                let row = gradient.base + i * gradient.rowStride
                for j in 0..<gradient.columns { row[j] /= s[j] }
            }
        }
    }
}

/// A classifier with an equivalent plain layer stack, on which bound propagation (IBP, CROWN,
/// Lipschitz) runs: a `Sequential` itself, or a normalised one (`Sequential.prependingNormalization`).
public protocol LayerStackConvertible {
    /// The layer stack computing the same logits up to float rounding. Throws `ModelError` when it
    /// cannot be built (a diagonal layer larger than `ModelSpec.maxParameters`).
    func layerStack() throws -> Sequential
}

extension Sequential: LayerStackConvertible {
    public func layerStack() -> Sequential { self }
}

extension NormalizedClassifier: LayerStackConvertible where Base == Sequential {
    public func layerStack() throws -> Sequential { try base.prependingNormalization(normalization) }
}

extension Sequential {
    /// The same model computing on (x − mean)/std per channel, as a plain layer stack (so bound
    /// propagation runs on it in the raw input space): folded into the first layer when it is linear
    /// (W/std per input column, b − W·(mean/std), in Double, rounded once: no extra cost), else a
    /// diagonal first layer x·(1/std) − mean/std: a 1×1 conv2d before a convolution, a diagonal linear
    /// layer otherwise. Its logits differ from `NormalizedClassifier`'s by float rounding. Throws
    /// `ModelError.shapeMismatch` as `InputNormalization.perFeature`, and `ModelError.invalidSpec`
    /// when a diagonal linear layer would exceed `ModelSpec.maxParameters`.
    public func prependingNormalization(_ normalization: InputNormalization) throws -> Sequential {
        let (mean, std) = try normalization.perFeature(features: inputFeatures, image: inputImageShape)
        if var first = layers.first as? Dense {
            let (rows, columns) = (first.weight.rows, first.weight.columns)
            var offset = [Double](repeating: 0, count: rows)
            first.weight.withUnsafeMutableBufferPointer { w in
                for o in 0..<rows {
                    for j in 0..<columns {
                        let original = Double(w[o * columns + j])
                        offset[o] += original * Double(mean[j]) / Double(std[j])
                        w[o * columns + j] = Float(original / Double(std[j]))
                    }
                }
            }
            first.bias.withUnsafeMutableBufferPointer { b in
                for o in 0..<rows { b[o] = Float(Double(b[o]) - offset[o]) }
            }
            return try Sequential([first] + layers.dropFirst())
        }
        let scale = std.map { 1 / Double($0) }, shift = zip(mean, std).map { -Double($0) / Double($1) }
        var rng = Philox(seed: 0)
        if let image = inputImageShape {
            let channelScale = (0..<image.channels).map { scale[$0 * image.height * image.width] }
            let channelShift = (0..<image.channels).map { shift[$0 * image.height * image.width] }
            return try Sequential(BatchNormFold.fold(scale: channelScale, shift: channelShift, after: nil, image: image, rng: &rng) + layers)
        }
        guard let square = ModelSpec.product([inputFeatures, inputFeatures]), square <= ModelSpec.maxParameters else {
            throw ModelError.invalidSpec("a normalisation layer on \(inputFeatures) features would need \(inputFeatures)² weights")
        }
        let first = Dense(weight: BatchNormFold.diagonal(scale), bias: try Matrix(rows: 1, columns: inputFeatures, elements: shift.map { Float($0) }))
        return try Sequential([first] + layers)
    }
}
