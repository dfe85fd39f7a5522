import FaultlineLinalg

/// Row-wise softmax or log-softmax as a layer (PyTorch `nn.Softmax(dim=1)` / `nn.LogSoftmax(dim=1)`),
/// for models saved with their output normalisation. Forward is stable (max-shifted). Backward:
/// softmax dx = y ⊙ (g − ⟨g, y⟩); log-softmax dx = g − softmax(x)·Σg.
public struct SoftmaxLayer: Layer {
    /// Log-softmax (PyTorch's `nn.LogSoftmax`) instead of softmax.
    public let logarithmic: Bool
    /// Features per row (in and out).
    public let features: Int

    /// A softmax (or log-softmax) over `features` features per row.
    public init(logarithmic: Bool, features: Int) {
        self.logarithmic = logarithmic
        self.features = features
    }

    /// Features per row: `features`.
    public var inputFeatures: Int { features }
    /// Features per row: `features`.
    public var outputFeatures: Int { features }
    public var spec: String { logarithmic ? "logsoftmax" : "softmax" }

    /// Softmax or log-softmax of each row, shifted by the row's maximum (no overflow for any finite input).
    public func forward(_ input: MatrixPointer<Float>, into output: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows {
            let x = input.base + i * input.rowStride, y = output.base + i * output.rowStride
            var m = x[0]
            for j in 1..<features where x[j] > m { m = x[j] }
            var s: Float = 0
            for j in 0..<features { s += Float.exp(x[j] - m) }
            let lse = m + Float.log(s)
            for j in 0..<features { y[j] = logarithmic ? x[j] - lse : Float.exp(x[j] - lse) }
        }
    }

    /// Softmax: y ⊙ (g − ⟨g, y⟩); log-softmax: g − softmax(x)·Σg, per row.
    public func backwardInput(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows {
            let g = outputGradient.base + i * outputGradient.rowStride, y = output.base + i * output.rowStride
            let d = inputGradient.base + i * inputGradient.rowStride
            if logarithmic {
                var total: Float = 0
                for j in 0..<features { total += g[j] }
                for j in 0..<features { d[j] = g[j] - Float.exp(y[j]) * total }
            } else {
                var inner: Float = 0
                for j in 0..<features { inner += g[j] * y[j] }
                for j in 0..<features { d[j] = y[j] * (g[j] - inner) }
            }
        }
    }
}
