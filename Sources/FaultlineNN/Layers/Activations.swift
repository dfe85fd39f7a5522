import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// Element-wise activations. Forward and backward are single passes over the batch; the backward
/// pass uses the forward input or output (whichever gives the derivative exactly).
public struct Activation: Layer {
    public enum Kind: Sendable, Equatable {
        case relu
        case leakyReLU(slope: Float)
        case tanh
        case sigmoid
        /// The exact GELU, x·Φ(x) (PyTorch's default `approximate='none'`).
        case gelu
    }

    public let kind: Kind
    public let features: Int

    public init(_ kind: Kind, features: Int) {
        self.kind = kind
        self.features = features
    }

    public var inputFeatures: Int { features }
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

    public func forward(_ input: MatrixPointer<Float>, into output: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows {
            let x = input.base + i * input.rowStride, y = output.base + i * output.rowStride
            switch kind {
            case .relu: for j in 0..<features { y[j] = x[j] > 0 ? x[j] : 0 }
            case .leakyReLU(let s): for j in 0..<features { y[j] = x[j] > 0 ? x[j] : s * x[j] }
            case .tanh: for j in 0..<features { y[j] = tanhf(x[j]) }
            case .sigmoid: for j in 0..<features { y[j] = 1 / (1 + expf(-x[j])) }
            case .gelu: for j in 0..<features { y[j] = 0.5 * x[j] * (1 + erff(x[j] * 0.70710678118654752)) }
            }
        }
    }

    public func backwardInput(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows {
            let g = outputGradient.base + i * outputGradient.rowStride
            let x = input.base + i * input.rowStride, y = output.base + i * output.rowStride
            let d = inputGradient.base + i * inputGradient.rowStride
            switch kind {
            case .relu: for j in 0..<features { d[j] = x[j] > 0 ? g[j] : 0 }
            case .leakyReLU(let s): for j in 0..<features { d[j] = x[j] > 0 ? g[j] : s * g[j] }
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
}
