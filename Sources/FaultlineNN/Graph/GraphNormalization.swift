import FaultlineLinalg

extension GraphModel {
    /// The same graph computed on (x − mean) / std: two constant nodes (`normalize.sub`,
    /// `normalize.div`, as ONNX Sub/Div by constants) between the input and every node that read it. The
    /// input keeps its name and shape, so attacks, the ε-ball and the box stay in the raw input space;
    /// feature taps keep their names (the normalised input is the tap `<input>.normalized`). Rounds as
    /// PyTorch does (a subtraction, then a division). Throws `ModelError.shapeMismatch` when the
    /// channels do not fit the input (`InputNormalization.perFeature`), `GraphError` if the graph does not compile.
    public func normalizingInput(_ normalization: InputNormalization) throws -> GraphModel {
        let (mean, std) = try normalization.perFeature(features: inputFeatures, image: inputImageShape)
        var centered = "\(inputName).centered", normalized = "\(inputName).normalized"
        while tensorNames.contains(centered) || tensorNames.contains(normalized) {
            (centered, normalized) = ("_" + centered, "_" + normalized)
        }
        let front = [
            Node(name: "normalize.sub", operation: .constantBinary(.sub, constant: mean, shape: inputShape, constantOnLeft: false),
                 inputs: [inputName], output: centered),
            Node(name: "normalize.div", operation: .constantBinary(.div, constant: std, shape: inputShape, constantOnLeft: false),
                 inputs: [centered], output: normalized),
        ]
        let rest = nodes.map { node -> Node in
            var node = node
            node.inputs = node.inputs.map { $0 == inputName ? normalized : $0 }
            return node
        }
        return try GraphModel(name: name, inputName: inputName, inputShape: inputShape, nodes: front + rest, outputName: outputName)
    }
}
