import FaultlineLinalg

extension GraphModel {
    /// The same model as a graph: one node per layer (`layer0`, `layer1`, …, the input `input`, the
    /// output `logits`), so every layer's output is a feature tap. Dropout becomes an alias (inference).
    /// Logits and input gradients equal the Sequential's up to GEMM rounding (the same GEMMs run).
    /// Throws `GraphError(.invalidParameter)` for a layer type it does not know.
    public init(sequential: Sequential, name: String = "sequential") throws {
        var nodes: [Node] = []
        var shape: [Int] = sequential.inputImageShape.map { [$0.channels, $0.height, $0.width] } ?? [sequential.inputFeatures]
        let inputShape = shape
        for (l, layer) in sequential.layers.enumerated() {
            let op: GraphOperation
            switch layer {
            case let d as Dense: op = .dense(weight: d.weight, bias: d.bias.elements)
            case let c as Conv2d:
                op = .convolution(.init(weight: c.weight, bias: c.bias.elements, inChannels: c.input.channels, kernel: (c.kernel, c.kernel),
                                        stride: (c.stride, c.stride), pads: (c.padding, c.padding, c.padding, c.padding)))
            case let p as Pool2d: op = .pool(.init(p.kind == .max ? .max : .average, kernel: (p.kernel, p.kernel), stride: (p.stride, p.stride)))
            case let a as Activation:
                switch a.kind {
                case .relu: op = .unary(.relu)
                case .leakyReLU(let s): op = .unary(.leakyReLU(alpha: s))
                case .tanh: op = .unary(.tanh)
                case .sigmoid: op = .unary(.sigmoid)
                case .gelu: op = .unary(.gelu(tanhApproximation: false))
                }
            case let s as SoftmaxLayer: op = .softmax(axis: 0, log: s.logarithmic)
            case is Dropout: op = .identity
            case is Flatten: op = .reshape([shape.reduce(1, *)])
            default: throw GraphError(.invalidParameter, node: "layer\(l)", "layer \(layer.spec) has no graph operation")
            }
            let input = l == 0 ? "input" : "layer\(l - 1)"
            let output = l == sequential.layers.count - 1 ? "logits" : "layer\(l)"
            if case .softmax = op, shape.count != 1 {
                throw GraphError(.invalidParameter, node: "layer\(l)", "a softmax layer on an image; flatten first")
            }
            shape = try op.outputShape([shape], node: "layer\(l)")
            nodes.append(Node(name: "layer\(l)", operation: op, inputs: [input], output: output))
        }
        try self.init(name: name, inputName: "input", inputShape: inputShape, nodes: nodes, outputName: "logits")
    }
}
