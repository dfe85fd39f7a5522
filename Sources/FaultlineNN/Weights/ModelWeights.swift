import FaultlineIO
import FaultlineLinalg

extension Sequential {
    /// Loads a PyTorch `nn.Sequential` state_dict saved as `.safetensors` (`0.weight`, `0.bias`,
    /// `2.weight`, …) into a model of architecture `spec`. Every tensor's shape is checked against the
    /// spec; a missing, unexpected or mis-shaped key throws `ModelError.weights` naming the key.
    /// Any float dtype (F16/BF16/F32/F64) is accepted and converted to Float.
    public static func load(weights path: String, spec: String) throws -> Sequential {
        var model = try ModelSpec.build(spec)
        let file = try SafeTensors.read(path)
        var values: [Matrix<Float>] = []
        var used = Set<String>()
        for ((name, current), expected) in zip(model.namedParameters, model.stateShapes) {
            guard let tensor = file[name] else {
                throw ModelError.weights("\(path): missing tensor '\(name)' for \(spec) (present: \(file.tensors.map(\.name).joined(separator: ", ")))")
            }
            guard tensor.shape == expected else {
                throw ModelError.weights("\(path): tensor '\(name)' has shape \(tensor.shape), the spec needs \(expected)")
            }
            guard tensor.dtype.isFloatingPoint else {
                throw ModelError.weights("\(path): tensor '\(name)' has dtype \(tensor.dtype), expected a float type")
            }
            let m = try Matrix(rows: current.rows, columns: current.columns, elements: tensor.values(as: Float.self))
            guard m.isFinite else { throw ModelError.weights("\(path): tensor '\(name)' contains NaN or infinite values") }
            values.append(m)
            used.insert(name)
        }
        let extra = file.tensors.map(\.name).filter { !used.contains($0) }
        guard extra.isEmpty else {
            throw ModelError.weights("\(path): tensors \(extra.joined(separator: ", ")) do not belong to \(spec)")
        }
        model.setParameters(values)
        return model
    }

    /// Loads weights saved by `save(weights:)` (or any state_dict whose `__metadata__` carries
    /// `faultline_spec`), taking the architecture from the file.
    public static func load(weights path: String) throws -> Sequential {
        let file = try SafeTensors.read(path)
        guard let spec = file.metadata["faultline_spec"] else {
            throw ModelError.weights("\(path) does not record its architecture (no faultline_spec in __metadata__); pass the spec, e.g. linear:784-512,relu,linear:512-10")
        }
        return try load(weights: path, spec: spec)
    }

    /// Saves the parameters as a PyTorch-compatible state_dict in `.safetensors` (weights [out, in],
    /// biases 1-d), with the spec in `__metadata__["faultline_spec"]`. Written atomically.
    public func save(weights path: String) throws {
        let tensors = zip(namedParameters, stateShapes).map { parameter, shape -> (name: String, tensor: Tensor) in
            (parameter.name, Tensor(shape: shape, values: parameter.value.elements))
        }
        try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: ["format": "pt", "faultline_spec": spec]), to: path)
    }
}
