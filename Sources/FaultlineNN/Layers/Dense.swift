import FaultlineLinalg

/// A fully connected layer y = x·Wᵀ + b with W stored as PyTorch stores it, [out, in].
///
/// Forward is one GEMM (x · Wᵀ) plus a bias broadcast; the input gradient is one GEMM (dy · W); the
/// weight gradient dyᵀ · x is one GEMM and the bias gradient a column sum. Cost: 2·n·in·out flops per
/// pass.
public struct Dense: Layer {
    /// out × in, PyTorch's `nn.Linear.weight` layout.
    public var weight: Matrix<Float>
    /// 1 × out.
    public var bias: Matrix<Float>  // 1 × out

    /// in: the columns of `weight`.
    public var inputFeatures: Int { weight.columns }
    /// out: the rows of `weight`.
    public var outputFeatures: Int { weight.rows }
    public var spec: String { "linear:\(inputFeatures)-\(outputFeatures)" }

    /// PyTorch's default initialisation for `nn.Linear` (kaiming_uniform with a = √5, i.e.
    /// U(−1/√in, 1/√in) for the weight, and the same bound for the bias), from a Philox stream.
    public init(inputs: Int, outputs: Int, rng: inout Philox) {
        precondition(inputs > 0 && outputs > 0, "Dense needs positive sizes")
        let bound = 1 / Double(inputs).squareRoot()
        weight = rng.matrix(rows: outputs, columns: inputs, .uniform(-bound, bound))
        bias = rng.matrix(rows: 1, columns: outputs, .uniform(-bound, bound))
    }

    /// A layer with the given parameters (e.g. from a state_dict); `bias` must be 1 × out (a precondition).
    public init(weight: Matrix<Float>, bias: Matrix<Float>) {
        precondition(bias.rows == 1 && bias.columns == weight.rows, "Dense: bias must be 1×out")
        self.weight = weight
        self.bias = bias
    }

    public var parameters: [(name: String, value: Matrix<Float>)] { [("weight", weight), ("bias", bias)] }

    public mutating func updateParameters(_ body: (Int, UnsafeMutableBufferPointer<Float>) -> Void) {
        weight.withUnsafeMutableBufferPointer { body(0, $0) }
        bias.withUnsafeMutableBufferPointer { body(1, $0) }
    }

    public mutating func setParameters(_ values: [Matrix<Float>]) {
        precondition(values.count == 2 && values[0].rows == weight.rows && values[0].columns == weight.columns
                     && values[1].count == bias.count, "Dense.setParameters: shapes")
        weight = values[0]
        bias = try! Matrix(rows: 1, columns: values[1].count, elements: values[1].elements)
    }

    /// y = x·Wᵀ + b: the bias copied into each row, then one GEMM with β = 1. 2·n·in·out flops.
    public func forward(_ input: MatrixPointer<Float>, into output: MutableMatrixPointer<Float>, context: ForwardContext) {
        let n = input.rows, out = outputFeatures
        bias.withUnsafeBufferPointer { b in
            for i in 0..<n { (output.base + i * output.rowStride).update(from: b.baseAddress!, count: out) }
        }
        weight.withUnsafeBufferPointer { w in
            Linalg.gemm(input, MatrixPointer(w.baseAddress!, rows: out, columns: inputFeatures),
                        transB: .transposed, alpha: 1, beta: 1, into: output, backend: context.backend)
        }
    }

    /// dL/dx = dL/dy · W: one GEMM.
    public func backwardInput(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        weight.withUnsafeBufferPointer { w in
            Linalg.gemm(outputGradient, MatrixPointer(w.baseAddress!, rows: outputFeatures, columns: inputFeatures),
                        into: inputGradient, backend: context.backend)
        }
    }

    /// Adds dL/dW = (dL/dy)ᵀ · x (one GEMM) and dL/db = the column sums of dL/dy to `gradients[offset]` and `[offset + 1]`.
    public func accumulateParameterGradients(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>,
                                             into gradients: inout [Matrix<Float>], at offset: Int, context: ForwardContext) {
        gradients[offset].withUnsafeMutableBufferPointer { g in
            Linalg.gemm(outputGradient, input, transA: .transposed, alpha: 1, beta: 1,
                        into: MutableMatrixPointer(g.baseAddress!, rows: outputFeatures, columns: inputFeatures), backend: context.backend)
        }
        gradients[offset + 1].withUnsafeMutableBufferPointer { g in
            for i in 0..<outputGradient.rows {
                let row = outputGradient.base + i * outputGradient.rowStride
                for j in 0..<outputFeatures { g[j] += row[j] }
            }
        }
    }
}
