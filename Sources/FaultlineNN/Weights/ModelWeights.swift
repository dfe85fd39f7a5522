import FaultlineIO
import FaultlineLinalg

extension Sequential {
    /// Loads a PyTorch state_dict saved as `.safetensors` into a model of architecture `spec`: an
    /// `nn.Sequential` (`0.weight`, `0.bias`, `2.weight`, …) or any Sequential-like module with its own
    /// names (`features.0.weight`, `fc1.weight`, `classifier.head.bias`). Which module prefix belongs to
    /// which spec layer is, in this order: the `@PREFIX` the spec gives (`linear:12-16@fc1`); the layer's
    /// index when every layer's `INDEX.weight` (`INDEX.running_mean` for batchnorm) is present; else
    /// inferred by shape (`StateDictKeys`): modules whose tensors have the layer's shapes, ties between
    /// modules of equal shapes ordered by the number in their names (`fc2` before `fc10`), and an
    /// ambiguous tie an error asking for `@PREFIX`. A bias may be absent (`bias=False`: zeros); batchnorm
    /// needs `running_mean`/`running_var`, takes `weight`/`bias` when present (`affine=False`: 1, 0) and
    /// ignores `num_batches_tracked`. Inference batchnorm is folded into the preceding linear or conv2d
    /// layer (scale = weight/√(running_var + eps), shift = bias − running_mean·scale, in Double), else
    /// becomes a diagonal linear (1-d) or 1×1 conv2d (2-d) layer, so the model stays a plain layer stack
    /// (bound propagation works on it); `spec` of the result describes the folded model.
    /// Every tensor's shape is checked against the spec; a missing, unexpected or mis-shaped key throws
    /// `ModelError.weights` naming the key and the expected shape. Any float dtype (F16/BF16/F32/F64)
    /// is accepted and converted to Float. A `.pt`/`.pth` pickle is refused by its magic bytes
    /// (`PyTorchPickle`, in `SafeTensors.decode`) before anything is parsed.
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
        let prefixes = try StateDictKeys.prefixes(plan, file, spec: spec, name: path)
        var used = Set<String>()
        var tensors: [[String: Tensor]] = []  // per binding, by suffix
        for (binding, prefix) in zip(plan.bindings, prefixes) {
            var found: [String: Tensor] = [:]
            for (suffix, shape) in binding.tensors {
                let key = ModelSpec.Plan.Binding.key(prefix, suffix)
                guard let tensor = file[key] else {
                    if binding.isOptional(suffix) { continue }
                    throw ModelError.weights("\(path): missing tensor '\(key)' with shape \(shape) for layer \(binding.position) '\(binding.token)' of \(spec) "
                                             + "(present: \(StateDictKeys.listing(file.tensors.map(\.name), file)))")
                }
                guard tensor.shape == shape else {
                    throw ModelError.weights("\(path): tensor '\(key)' has shape \(tensor.shape), layer \(binding.position) '\(binding.token)' needs \(shape)")
                }
                guard tensor.dtype.isFloatingPoint else {
                    throw ModelError.weights("\(path): tensor '\(key)' has dtype \(tensor.dtype), expected a float type")
                }
                found[suffix] = tensor
                used.insert(key)
            }
            if binding.kind == .batchNorm, file[ModelSpec.Plan.Binding.key(prefix, "num_batches_tracked")] != nil {
                used.insert(ModelSpec.Plan.Binding.key(prefix, "num_batches_tracked"))  // a training counter: ignored
            }
            tensors.append(found)
        }
        let extra = file.tensors.map(\.name).filter { !used.contains($0) }
        guard extra.isEmpty else {
            throw ModelError.weights("\(path): tensors \(StateDictKeys.listing(extra, file)) do not belong to \(spec)")
        }
        return try StateDictKeys.build(plan, tensors: tensors, name: path)
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
