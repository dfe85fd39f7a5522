import FaultlineIO
import FaultlineLinalg

/// The operations a `GraphModel` runs. Shapes are per sample (no batch dimension); images are
/// [channels, height, width].
public enum GraphOperation: Sendable {
    /// y = x·Wᵀ + b on the flattened sample; `weight` is out × in (PyTorch's `nn.Linear` layout).
    case dense(weight: Matrix<Float>, bias: [Float])
    /// 2-d convolution (cross-correlation) on [C, H, W].
    case convolution(Convolution)
    /// y[c, …] = scale[c]·x[c, …] + shift[c]: inference batch normalisation that could not be folded.
    case channelAffine(scale: [Float], shift: [Float])
    /// x ∘ c (or c ∘ x when `constantOnLeft`) with a constant of shape `shape` broadcast (NumPy rules,
    /// right-aligned) to x's shape: input normalisation, the constants of the exported GELU.
    case constantBinary(ElementwiseBinary, constant: [Float], shape: [Int], constantOnLeft: Bool)
    /// a ∘ b of two tensors broadcast to a common shape (residual additions, gating).
    case binary(ElementwiseBinary)
    /// An element-wise function of one tensor.
    case unary(ElementwiseUnary)
    /// Max or average pooling over [C, H, W].
    case pool(Pooling)
    /// Mean over the spatial positions of [C, H, W] → [C, 1, 1].
    case globalAveragePool
    /// Concatenation along a per-sample axis.
    case concat(axis: Int)
    /// Softmax (or log-softmax) along a per-sample axis.
    case softmax(axis: Int, log: Bool)
    /// The same tensor under another name (Identity, Dropout at inference, a no-op Transpose): an alias.
    case identity
    /// The same elements with another per-sample shape (Flatten, Reshape): an alias.
    case reshape([Int])

    /// Element-wise a + b, a − b, a · b or a / b (IEEE division: x / 0 is ±∞ or NaN).
    public enum ElementwiseBinary: String, Sendable {
        /// a + b, a − b, a · b, a / b.
        case add, sub, mul, div
    }

    /// Element-wise functions of one tensor; each has an exact derivative for input gradients.
    public enum ElementwiseUnary: Sendable, Equatable {
        /// max(x, 0), 1/(1 + e⁻ˣ), tanh x, the error function, log(1 + eˣ).
        case relu, sigmoid, tanh, erf, softplus
        /// x for x > 0, else `alpha`·x.
        case leakyReLU(alpha: Float)
        /// x·Φ(x); `tanhApproximation` as PyTorch's `approximate='tanh'`.
        case gelu(tanhApproximation: Bool)
        /// min(max(x, lower), upper); the gradient is 0 outside [lower, upper].
        case clip(lower: Float, upper: Float)
    }

    /// Convolution geometry and parameters (ONNX `Conv`): `weight` is out × (in/groups · kH · kW).
    public struct Convolution: Sendable {
        /// out × (in/groups · kH · kW): PyTorch's `nn.Conv2d` weight flattened per output channel.
        public var weight: Matrix<Float>
        /// One value per output channel (zeros when the file has none).
        public var bias: [Float]
        /// Input channels (a multiple of `groups`).
        public var inChannels: Int
        /// Kernel height and width.
        public var kernel: (height: Int, width: Int)
        /// Step between windows, vertically and horizontally.
        public var stride: (height: Int, width: Int)
        /// Zero padding: top, left, bottom, right.
        public var pads: (top: Int, left: Int, bottom: Int, right: Int)
        /// Spacing between kernel taps (1: dense kernels).
        public var dilation: (height: Int, width: Int)
        /// Channel groups: each output channel sees in/groups input channels (in = groups: depthwise).
        public var groups: Int
        /// Output channels: the rows of `weight`.
        public var outChannels: Int { weight.rows }

        /// A convolution; the graph checks the shapes against its input when it is built.
        public init(weight: Matrix<Float>, bias: [Float], inChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                    pads: (Int, Int, Int, Int) = (0, 0, 0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) {
            self.weight = weight
            self.bias = bias
            self.inChannels = inChannels
            self.kernel = kernel
            self.stride = stride
            self.pads = pads
            self.dilation = dilation
            self.groups = groups
        }
    }

    /// Max or average pooling over [C, H, W] windows (ONNX `MaxPool`/`AveragePool`).
    public struct Pooling: Sendable {
        /// Maximum, or mean, over each window.
        public enum Kind: Sendable {
            /// The window maximum, or the window mean.
            case max, average
        }
        /// Maximum or mean.
        public var kind: Kind
        /// Window height and width.
        public var kernel: (height: Int, width: Int)
        /// Step between windows, vertically and horizontally.
        public var stride: (height: Int, width: Int)
        /// Padding: top, left, bottom, right (max pooling ignores padded positions).
        public var pads: (top: Int, left: Int, bottom: Int, right: Int)
        /// Output size rounded up (windows may start in the padding's far side, clipped to the input).
        public var ceilMode: Bool
        /// Average pooling divides by the whole window including padding (else by the in-bounds count).
        public var countIncludePad: Bool

        /// A pooling; the graph checks the window against its input when it is built.
        public init(_ kind: Kind, kernel: (Int, Int), stride: (Int, Int), pads: (Int, Int, Int, Int) = (0, 0, 0, 0),
                    ceilMode: Bool = false, countIncludePad: Bool = false) {
            self.kind = kind
            self.kernel = kernel
            self.stride = stride
            self.pads = pads
            self.ceilMode = ceilMode
            self.countIncludePad = countIncludePad
        }
    }

    /// A short name for messages.
    public var kind: String {
        switch self {
        case .dense: return "dense"
        case .convolution: return "convolution"
        case .channelAffine: return "channelAffine"
        case .constantBinary(let op, _, _, _): return "\(op.rawValue)(constant)"
        case .binary(let op): return op.rawValue
        case .unary(let u): return "\(u)"
        case .pool(let p): return p.kind == .max ? "maxPool" : "averagePool"
        case .globalAveragePool: return "globalAveragePool"
        case .concat: return "concat"
        case .softmax(_, let log): return log ? "logSoftmax" : "softmax"
        case .identity: return "identity"
        case .reshape: return "reshape"
        }
    }

    var isAlias: Bool {
        switch self {
        case .identity, .reshape: return true
        default: return false
        }
    }

    /// Dense, convolution and channelAffine nodes have trainable parameters (a weight and a bias);
    /// the constants of `constantBinary` are not trainable.
    public var isTrainable: Bool {
        switch self {
        case .dense, .convolution, .channelAffine: return true
        default: return false
        }
    }

    /// Weight and bias element counts of a trainable operation (channelAffine: scale and shift), else 0.
    var parameterSizes: (weight: Int, bias: Int) {
        switch self {
        case .dense(let w, let b): return (w.count, b.count)
        case .convolution(let c): return (c.weight.count, c.bias.count)
        case .channelAffine(let s, let t): return (s.count, t.count)
        default: return (0, 0)
        }
    }

    var parameterCount: Int {
        switch self {
        case .dense(let w, let b): return w.count + b.count
        case .convolution(let c): return c.weight.count + c.bias.count
        case .channelAffine(let s, let t): return s.count + t.count
        case .constantBinary(_, let c, _, _): return c.count
        default: return 0
        }
    }

    /// The per-sample output shape for these input shapes; throws `GraphShapeProblem`.
    func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        func arity(_ n: Int) throws {
            guard inputs.count == n else { throw GraphShapeProblem("takes \(n) input(s), got \(inputs.count)", .invalidParameter) }
        }
        func image(_ s: [Int]) throws -> (c: Int, h: Int, w: Int) {
            guard s.count == 3 else { throw GraphShapeProblem("needs a [channels, height, width] input, got \(s)") }
            return (s[0], s[1], s[2])
        }
        switch self {
        case .dense(let w, let b):
            try arity(1)
            let features = inputs[0].reduce(1, *)
            guard w.columns == features, b.count == w.rows else {
                throw GraphShapeProblem("weight is \(w.rows)×\(w.columns) and bias has \(b.count) but the input \(inputs[0]) has \(features) features")
            }
            return [w.rows]
        case .convolution(let c):
            try arity(1)
            let (ch, h, w) = try image(inputs[0])
            let geometry = [c.kernel.height, c.kernel.width, c.stride.height, c.stride.width, c.dilation.height, c.dilation.width]
            let pads = [c.pads.top, c.pads.left, c.pads.bottom, c.pads.right]
            guard geometry.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }), pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }) else {
                throw GraphShapeProblem("kernel, stride and dilation must be in 1...65536 and pads in 0...65536", .invalidParameter)
            }
            guard c.groups > 0, ch == c.inChannels, ch % c.groups == 0, c.outChannels % c.groups == 0,
                  c.weight.columns == (ch / c.groups) * c.kernel.height * c.kernel.width, c.bias.count == c.outChannels else {
                throw GraphShapeProblem("input \(inputs[0]) does not fit weight \(c.weight.rows)×\(c.weight.columns) "
                                        + "(kernel \(c.kernel), groups \(c.groups), \(c.bias.count) biases)")
            }
            let oh = (h + c.pads.top + c.pads.bottom - c.dilation.height * (c.kernel.height - 1) - 1)
            let ow = (w + c.pads.left + c.pads.right - c.dilation.width * (c.kernel.width - 1) - 1)
            guard oh >= 0, ow >= 0 else { throw GraphShapeProblem("kernel larger than the padded input \(inputs[0])") }
            return [c.outChannels, oh / c.stride.height + 1, ow / c.stride.width + 1]
        case .channelAffine(let s, let t):
            try arity(1)
            guard let c = inputs[0].first, s.count == c, t.count == c else {
                throw GraphShapeProblem("\(s.count) scales and \(t.count) shifts for input \(inputs[0])")
            }
            return inputs[0]
        case .constantBinary(_, let c, let shape, _):
            try arity(1)
            guard c.count == shape.reduce(1, *), let out = broadcastShape(inputs[0], shape), out == inputs[0] else {
                throw GraphShapeProblem("constant of shape \(shape) does not broadcast to the input \(inputs[0])")
            }
            return out
        case .binary:
            try arity(2)
            guard let out = broadcastShape(inputs[0], inputs[1]) else {
                throw GraphShapeProblem("shapes \(inputs[0]) and \(inputs[1]) do not broadcast")
            }
            return out
        case .unary(let u):
            try arity(1)
            if case .clip(let lower, let upper) = u, !(lower <= upper) {
                throw GraphShapeProblem("clip bounds \(lower) > \(upper)", .invalidParameter)
            }
            return inputs[0]
        case .pool(let p):
            try arity(1)
            let (c, h, w) = try image(inputs[0])
            guard p.kernel.height > 0, p.kernel.width > 0, p.stride.height > 0, p.stride.width > 0,
                  [p.kernel.height, p.kernel.width, p.stride.height, p.stride.width].allSatisfy({ $0 <= 1 << 16 }),
                  min(p.pads.top, p.pads.left, p.pads.bottom, p.pads.right) >= 0,
                  p.pads.top < p.kernel.height, p.pads.bottom < p.kernel.height, p.pads.left < p.kernel.width, p.pads.right < p.kernel.width else {
                throw GraphShapeProblem("kernel and stride must be positive, pads in 0..<kernel", .invalidParameter)
            }
            let oh = p.outputSize(h, p.kernel.height, p.stride.height, p.pads.top, p.pads.bottom)
            let ow = p.outputSize(w, p.kernel.width, p.stride.width, p.pads.left, p.pads.right)
            guard oh > 0, ow > 0 else { throw GraphShapeProblem("window larger than the padded input \(inputs[0])") }
            return [c, oh, ow]
        case .globalAveragePool:
            try arity(1)
            let (c, _, _) = try image(inputs[0])
            return [c, 1, 1]
        case .concat(let axis):
            guard !inputs.isEmpty else { throw GraphShapeProblem("needs at least one input", .invalidParameter) }
            let rank = inputs[0].count
            guard axis >= 0 && axis < rank else { throw GraphShapeProblem("axis \(axis) outside the per-sample rank \(rank)", .invalidParameter) }
            var out = inputs[0]
            out[axis] = 0
            for s in inputs {
                guard s.count == rank, (0..<rank).allSatisfy({ $0 == axis || s[$0] == inputs[0][$0] }) else {
                    throw GraphShapeProblem("shapes \(inputs) differ off axis \(axis)")
                }
                out[axis] += s[axis]
            }
            return out
        case .softmax(let axis, _):
            try arity(1)
            guard axis >= 0 && axis < inputs[0].count else {
                throw GraphShapeProblem("axis \(axis) outside the per-sample rank \(inputs[0].count)", .invalidParameter)
            }
            return inputs[0]
        case .identity:
            try arity(1)
            return inputs[0]
        case .reshape(let shape):
            try arity(1)
            guard shape.allSatisfy({ $0 > 0 }), let count = Tensor.elementCount(shape), count == inputs[0].reduce(1, *) else {
                throw GraphShapeProblem("cannot reshape \(inputs[0]) to \(shape)")
            }
            return shape
        }
    }
}

extension GraphOperation.Pooling {
    /// The input window of output position (`outputY`, `outputX`) on an input of `inputHeight` ×
    /// `inputWidth`, clipped to the input (padding and ceil mode resolved), and the divisor of average
    /// pooling (the whole window including padding when `countIncludePad`, else the in-bounds count).
    public func window(outputY oy: Int, outputX ox: Int, inputHeight height: Int, inputWidth width: Int)
        -> (rows: Range<Int>, columns: Range<Int>, divisor: Int) {
        let y0 = oy * stride.height - pads.top, x0 = ox * stride.width - pads.left
        let ys = Swift.max(y0, 0)..<Swift.min(y0 + kernel.height, height), xs = Swift.max(x0, 0)..<Swift.min(x0 + kernel.width, width)
        let divisor = countIncludePad
            ? (Swift.min(y0 + kernel.height, height + pads.bottom) - y0) * (Swift.min(x0 + kernel.width, width + pads.right) - x0)
            : ys.count * xs.count
        return (ys, xs, divisor)
    }

    /// Output positions along one axis (PyTorch's rule: in ceil mode the last window must start inside
    /// the input or the leading padding).
    func outputSize(_ n: Int, _ k: Int, _ s: Int, _ padBegin: Int, _ padEnd: Int) -> Int {
        let span = n + padBegin + padEnd - k
        guard span >= 0 else { return 0 }
        var out = (ceilMode ? (span + s - 1) / s : span / s) + 1
        if ceilMode && (out - 1) * s >= n + padBegin { out -= 1 }
        return out
    }
}

/// NumPy broadcasting of two shapes (right-aligned; sizes equal or 1), nil when they do not broadcast.
func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = Swift.max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        guard x == y || x == 1 || y == 1 else { return nil }
        out[i] = Swift.max(x, y)
    }
    return out
}

/// For each element of `output` (row-major), the flat index of the element of `shape` broadcast to it.
func broadcastIndices(_ shape: [Int], to output: [Int]) -> [Int32] {
    let rank = output.count
    let padded = [Int](repeating: 1, count: rank - shape.count) + shape
    var strides = [Int](repeating: 0, count: rank)
    var s = 1
    for i in stride(from: rank - 1, through: 0, by: -1) {
        strides[i] = padded[i] == 1 ? 0 : s
        s *= padded[i]
    }
    let total = output.reduce(1, *)
    var result = [Int32](repeating: 0, count: total)
    var coordinate = [Int](repeating: 0, count: rank)
    for flat in 0..<total {
        var source = 0
        for i in 0..<rank { source += coordinate[i] * strides[i] }
        result[flat] = Int32(source)
        var i = rank - 1
        while i >= 0 {
            coordinate[i] += 1
            if coordinate[i] < output[i] { break }
            coordinate[i] = 0
            i -= 1
        }
    }
    return result
}

extension GraphOperation {
    /// NumPy broadcasting of a tensor of per-sample shape `shape` to `output`: for each element of
    /// `output` (row-major), the flat index of the element of `shape` it reads. `shape` must
    /// broadcast to `output` (right-aligned, sizes equal or 1). Cost O(elements · rank).
    public static func broadcastSourceIndices(_ shape: [Int], to output: [Int]) -> [Int32] {
        precondition(broadcastShape(shape, output) == output, "\(shape) does not broadcast to \(output)")
        return broadcastIndices(shape, to: output)
    }

    /// The per-sample output shape of this operation on inputs of these per-sample shapes, for
    /// importers that must know shapes while they lower a graph. Throws `GraphError` naming `node`.
    public func outputShape(_ inputShapes: [[Int]], node: String) throws -> [Int] {
        do { return try outputShape(inputShapes) } catch let error as GraphShapeProblem {
            throw GraphError(error.kind, node: node, "\(kind): \(error.detail)")
        }
    }
}
