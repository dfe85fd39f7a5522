import FaultlineIO
import FaultlineLinalg

extension Sequential {
    /// Loads a PyTorch `nn.Sequential` state_dict saved as `.safetensors` (`0.weight`, `0.bias`,
    /// `2.weight`, …) into a model of architecture `spec`. Every tensor's shape is checked against the
    /// spec; a missing, unexpected or mis-shaped key throws `ModelError.weights` naming the key.
    /// Any float dtype (F16/BF16/F32/F64) is accepted and converted to Float.
    ///
    /// The spec is parsed and size-checked (`ModelSpec.plan`) and its parameter shapes are compared
    /// with the file's tensors before the model is allocated, so a spec that does not match the file
    /// (e.g. `linear:100000000-100000000` in the metadata of a 1 KB file) costs nothing.
    public static func load(weights path: String, spec: String) throws -> Sequential {
        let plan = try ModelSpec.plan(spec)
        return try load(weights: SafeTensors.read(path), plan: plan, spec: spec, name: path)
    }

    /// Loads a model of architecture `spec` from a state_dict already in memory (decoded with
    /// `SafeTensors.decode`, e.g. from downloaded bytes); `name` stands for the source in error messages.
    /// Checks, errors and cost are those of `load(weights:spec:)`, which reads the file and calls this.
    public static func load(weights file: SafeTensors.File, spec: String, name: String = "weights") throws -> Sequential {
        try load(weights: file, plan: ModelSpec.plan(spec), spec: spec, name: name)
    }

    private static func load(weights file: SafeTensors.File, plan: ModelSpec.Plan, spec: String, name path: String) throws -> Sequential {
        var tensors: [Tensor] = []
        for parameter in plan.parameters {
            guard let tensor = file[parameter.name] else {
                throw ModelError.weights("\(path): missing tensor '\(parameter.name)' for \(spec) (present: \(file.tensors.map(\.name).joined(separator: ", ")))")
            }
            guard tensor.shape == parameter.shape else {
                throw ModelError.weights("\(path): tensor '\(parameter.name)' has shape \(tensor.shape), the spec needs \(parameter.shape)")
            }
            guard tensor.dtype.isFloatingPoint else {
                throw ModelError.weights("\(path): tensor '\(parameter.name)' has dtype \(tensor.dtype), expected a float type")
            }
            tensors.append(tensor)
        }
        let used = Set(plan.parameters.map(\.name))
        let extra = file.tensors.map(\.name).filter { !used.contains($0) }
        guard extra.isEmpty else {
            throw ModelError.weights("\(path): tensors \(extra.joined(separator: ", ")) do not belong to \(spec)")
        }
        var model = try plan.build()
        var values: [Matrix<Float>] = []
        for ((name, current), tensor) in zip(model.namedParameters, tensors) {
            let m = try Matrix(rows: current.rows, columns: current.columns, elements: tensor.values(as: Float.self))
            guard m.isFinite else { throw ModelError.weights("\(path): tensor '\(name)' contains NaN or infinite values") }
            values.append(m)
        }
        model.setParameters(values)
        return model
    }

    /// Loads weights saved by `save(weights:)` (or any state_dict whose `__metadata__` carries
    /// `faultline_spec`), taking the architecture from the file.
    public static func load(weights path: String) throws -> Sequential {
        try load(weights: SafeTensors.read(path), name: path)
    }

    /// Loads a state_dict already in memory whose `__metadata__` carries `faultline_spec`, as
    /// `load(weights:)` does for a file; `name` stands for the source in error messages. An invalid
    /// spec in the metadata is a `ModelError.weights` naming `name` (the file is at fault, not an option).
    public static func load(weights file: SafeTensors.File, name: String = "weights") throws -> Sequential {
        guard let spec = file.metadata["faultline_spec"] else {
            throw ModelError.weights("\(name) does not record its architecture (no faultline_spec in __metadata__); pass the spec, e.g. linear:784-512,relu,linear:512-10")
        }
        do {
            return try load(weights: file, spec: spec, name: name)
        } catch ModelError.invalidSpec(let message) {
            throw ModelError.weights("\(name): the faultline_spec '\(spec.prefix(200))' in its metadata is invalid: \(message)")
        }
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
