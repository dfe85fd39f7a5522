import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// Element-wise activations. Forward and backward are single passes over the batch; the backward
/// pass uses the forward input or output (whichever gives the derivative exactly).
public struct Activation: Layer {
    /// The function applied to every feature.
    public enum Kind: Sendable, Equatable {
        /// max(x, 0); derivative 0 at x ≤ 0.
        case relu
        /// x for x > 0, else slope·x (PyTorch's `LeakyReLU(negative_slope)`).
        case leakyReLU(slope: Float)
        /// tanh x; derivative 1 − y², from the output.
        case tanh
        /// 1/(1 + e⁻ˣ); derivative y(1 − y), from the output.
        case sigmoid
        /// The exact GELU, x·Φ(x) (PyTorch's default `approximate='none'`).
        case gelu
    }

    /// Which function.
    public let kind: Kind
    /// Features per row (in and out).
    public let features: Int

    /// An activation of `features` features per row.
    public init(_ kind: Kind, features: Int) {
        self.kind = kind
        self.features = features
    }

    /// Features per row: `features`.
    public var inputFeatures: Int { features }
    /// Features per row: `features`.
    public var outputFeatures: Int { features }
    public var spec: String {
        switch kind {
        case .relu: return "relu"
        case .leakyReLU(let s): return "leakyrelu:\(s)"
        case .tanh: return "tanh"
        case .sigmoid: return "sigmoid"
        case .gelu: return "gelu"
        }
    }

    /// y = f(x) element-wise, one pass over the rows (libm tanh, exp and erf; no allocation).
    public func forward(_ input: MatrixPointer<Float>, into output: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows {
            let x = input.base + i * input.rowStride, y = output.base + i * output.rowStride
            switch kind {
            case .relu: Self.rectify(x, x, slope: 0, into: y, count: features)
            case .leakyReLU(let s): Self.rectify(x, x, slope: s, into: y, count: features)
            case .tanh: for j in 0..<features { y[j] = tanhf(x[j]) }
            case .sigmoid: for j in 0..<features { y[j] = 1 / (1 + expf(-x[j])) }
            case .gelu: for j in 0..<features { y[j] = 0.5 * x[j] * (1 + erff(x[j] * 0.70710678118654752)) }
            }
        }
    }

    /// dL/dx = dL/dy · f′, from the input (ReLU, leaky ReLU, GELU) or the output (tanh, sigmoid).
    public func backwardInput(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows {
            let g = outputGradient.base + i * outputGradient.rowStride
            let x = input.base + i * input.rowStride, y = output.base + i * output.rowStride
            let d = inputGradient.base + i * inputGradient.rowStride
            switch kind {
            case .relu: Self.rectify(g, x, slope: 0, into: d, count: features)
            case .leakyReLU(let s): Self.rectify(g, x, slope: s, into: d, count: features)
            case .tanh: for j in 0..<features { d[j] = g[j] * (1 - y[j] * y[j]) }
            case .sigmoid: for j in 0..<features { d[j] = g[j] * y[j] * (1 - y[j]) }
            case .gelu:
                for j in 0..<features {
                    let cdf = 0.5 * (1 + erff(x[j] * 0.70710678118654752))
                    let pdf = expf(-0.5 * x[j] * x[j]) * 0.39894228040143268
                    d[j] = g[j] * (cdf + x[j] * pdf)
                }
            }
        }
    }

    /// out[j] = x[j] > 0 ? v[j] : slope·v[j] (the ReLU family's forward with v = x, its backward with
    /// v = dY), 16 lanes at a time: a select, where the scalar loop's branch on the sign was mispredicted
    /// about half the time (ReLU's backward was 9 % of a PGD-AT epoch). `out` may be `v` or `x`; NaN in
    /// x takes the slope branch, as in the scalar form. Exact.
    @inline(__always)
    static func rectify(_ v: UnsafePointer<Float>, _ x: UnsafePointer<Float>, slope: Float, into out: UnsafeMutablePointer<Float>, count: Int) {
        typealias Lanes = SIMD16<Float>
        var j = 0
        while j + Lanes.scalarCount <= count {
            let xv = UnsafeRawPointer(x + j).loadUnaligned(as: Lanes.self), vv = UnsafeRawPointer(v + j).loadUnaligned(as: Lanes.self)
            let r = slope == 0 ? vv.replacing(with: 0, where: .!(xv .> 0)) : vv.replacing(with: slope * vv, where: .!(xv .> 0))
            UnsafeMutableRawPointer(out + j).storeBytes(of: r, as: Lanes.self)
            j += Lanes.scalarCount
        }
        while j < count {
            out[j] = x[j] > 0 ? v[j] : slope * v[j]
            j += 1
        }
    }
}
