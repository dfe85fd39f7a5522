import FaultlineIO
import FaultlineLinalg
import Foundation

/// Which module of a PyTorch state_dict holds the tensors of which spec layer, and the folded layers.
///
/// The file records no module order: `safetensors.torch.save_file` (safetensors 0.8.0, measured with
/// torch 2.15) writes the JSON header sorted by name and lays the data out by dtype alignment, then
/// name — not in `state_dict()` order (`fc1, bn1, zeta, alpha` come back as `alpha, bn1, fc1, zeta`).
/// So the order is never taken from the file: a layer gets the module the spec names (`@PREFIX`), its
/// `nn.Sequential` index, or the module whose tensors have its shapes (see `prefixes`).
public enum StateDictKeys {
    /// One module prefix per binding of `plan` (see `Sequential.load(weights:spec:)` for the rules).
    /// Throws `ModelError.weights` naming the layer, the keys and shapes it expects and the file's
    /// unclaimed tensors, or the modules that tie.
    static func prefixes(_ plan: ModelSpec.Plan, _ file: SafeTensors.File, spec: String, name path: String) throws -> [String] {
        var result = plan.bindings.map(\.prefix)
        let names = Set(file.tensors.map(\.name))
        let open = plan.bindings.indices.filter { result[$0] == nil }
        if open.isEmpty { return result.map { $0! } }
        // nn.Sequential: every remaining layer's own index holds its tensors.
        if open.allSatisfy({ names.contains(ModelSpec.Plan.Binding.key("\(plan.bindings[$0].step)", plan.bindings[$0].anchor.suffix)) }) {
            for i in open { result[i] = "\(plan.bindings[i].step)" }
            return result.map { $0! }
        }
        // Modules not named by the spec, by prefix (the key without its last component).
        let claimed = Set(result.compactMap { $0 })
        var modules: [String: [String: Tensor]] = [:]
        for (name, tensor) in file.tensors {
            let (prefix, suffix) = split(name)
            if !claimed.contains(prefix) { modules[prefix, default: [:]][suffix] = tensor }
        }
        // Layers and modules of one signature (kind and anchor shape) pair up in name order.
        var signatures: [String] = []
        var layersOf: [String: [Int]] = [:]
        for i in open {
            let s = signature(plan.bindings[i].kind, plan.bindings[i].anchor.shape)
            if layersOf[s] == nil { signatures.append(s) }
            layersOf[s, default: []].append(i)
        }
        var modulesOf: [String: [String]] = [:]
        for (prefix, tensors) in modules {
            if let s = signature(of: tensors) { modulesOf[s, default: []].append(prefix) }
        }
        for s in signatures {
            let layers = layersOf[s]!
            let candidates = (modulesOf[s] ?? []).sorted { naturalOrder($0, $1) }
            guard candidates.count >= layers.count else {
                let b = plan.bindings[layers[candidates.count]]
                let expected = b.tensors.map { "\(b.step).\($0.suffix) \($0.shape)" }.joined(separator: ", ") + " (nn.Sequential numbering) or the same under another module name"
                let unclaimed = file.tensors.map(\.name).filter { !claimed.contains(split($0).prefix) && !(modulesOf[s] ?? []).contains(split($0).prefix) }
                throw ModelError.weights("\(path): no module for layer \(b.position) '\(b.token)' of \(spec): expected \(expected)"
                                         + (layers.count > 1 ? " (\(layers.count) layers of this shape, \(candidates.count) modules)" : "")
                                         + "; unmatched tensors: \(unclaimed.isEmpty ? "none" : listing(unclaimed, file)). "
                                         + "Name the module with \(b.token.split(separator: "@")[0])@PREFIX if its tensors are there")
            }
            let numbered = Set(candidates.map(numberless)).count == 1
            guard candidates.count == layers.count, layers.count == 1 || numbered else {
                let tokens = layers.map { "\(plan.bindings[$0].position) '\(plan.bindings[$0].token)'" }.joined(separator: ", ")
                throw ModelError.weights("\(path): modules \(candidates.joined(separator: ", ")) all fit layer\(layers.count > 1 ? "s" : "") \(tokens) of \(spec), "
                                         + "and their names do not give an order; name each with LAYER@PREFIX, e.g. \(plan.bindings[layers[0]].token.split(separator: "@")[0])@\(candidates[0])")
            }
            for (i, prefix) in zip(layers, candidates) { result[i] = prefix }
        }
        return result.map { $0! }
    }

    /// `features.0.weight` → (`features.0`, `weight`); a key without a dot has the empty prefix.
    static func split(_ key: String) -> (prefix: String, suffix: String) {
        guard let dot = key.lastIndex(of: ".") else { return ("", key) }
        return (String(key[..<dot]), String(key[key.index(after: dot)...]))
    }

    static func signature(_ kind: ModelSpec.Plan.Binding.Kind, _ shape: [Int]) -> String { "\(kind.rawValue)\(shape)" }

    /// The signature of a module's tensors when they look like one layer: batchnorm (running_mean),
    /// linear (2-d weight) or conv2d (4-d weight).
    static func signature(of tensors: [String: Tensor]) -> String? {
        if let mean = tensors["running_mean"] { return signature(.batchNorm, mean.shape) }
        guard let weight = tensors["weight"] else { return nil }
        switch weight.rank {
        case 2: return signature(.linear, weight.shape)
        case 4: return signature(.conv2d, weight.shape)
        default: return nil
        }
    }

    /// The name with every run of digits replaced by `#`: modules that differ only in numbers
    /// (`fc1`/`fc2`, `layers.0`/`layers.3`) have an order; others (`hidden`/`proj`) do not.
    static func numberless(_ name: String) -> String {
        var out = "", inDigits = false
        for c in name {
            if c.isASCII && c.isNumber {
                if !inDigits { out.append("#") }
                inDigits = true
            } else {
                out.append(c)
                inDigits = false
            }
        }
        return out
    }

    /// Name order with digit runs compared as numbers (`fc2` < `fc10`, `features.9` < `features.10`).
    public static func naturalOrder(_ a: String, _ b: String) -> Bool {
        func parts(_ s: String) -> [(Bool, String)] {
            var out: [(Bool, String)] = []
            for c in s {
                let digit = c.isASCII && c.isNumber
                if let last = out.last, last.0 == digit { out[out.count - 1].1.append(c) } else { out.append((digit, String(c))) }
            }
            return out
        }
        for (x, y) in zip(parts(a), parts(b)) where x.1 != y.1 {
            if x.0 && y.0, let p = Int(x.1), let q = Int(y.1), p != q { return p < q }
            return x.1 < y.1
        }
        return a.count < b.count
    }

    /// `name [shape], …` for messages, at most 12 entries.
    static func listing(_ names: [String], _ file: SafeTensors.File) -> String {
        let shown = names.prefix(12).map { name in file[name].map { "\(name) \($0.shape)" } ?? name }
        return shown.joined(separator: ", ") + (names.count > 12 ? ", … (\(names.count) in all)" : "")
    }

    /// The model of `plan` with the checked tensors of each binding (by suffix): batchnorm folded into
    /// the preceding linear/conv2d layer, else a diagonal linear or 1×1 conv2d layer.
    static func build(_ plan: ModelSpec.Plan, tensors: [[String: Tensor]], name path: String) throws -> Sequential {
        var rng = Philox(seed: 0)
        var layers: [any Layer] = []
        var next = 0  // the next binding
        for (index, step) in plan.steps.enumerated() {
            guard next < plan.bindings.count, plan.bindings[next].step == index else {
                layers.append(try plan.layer(step, rng: &rng))
                continue
            }
            let binding = plan.bindings[next], found = tensors[next]
            next += 1
            func values(_ suffix: String, count: Int, default value: Float) throws -> [Float] {
                guard let t = found[suffix] else { return [Float](repeating: value, count: count) }
                let v = t.values(as: Float.self)
                guard v.allSatisfy(\.isFinite) else {
                    throw ModelError.weights("\(path): tensor '\(ModelSpec.Plan.Binding.key(binding.prefix ?? "\(index)", suffix))' contains NaN or infinite values")
                }
                return v
            }
            switch step {
            case let .dense(inputs, outputs):
                layers.append(Dense(weight: try Matrix(rows: outputs, columns: inputs, elements: values("weight", count: 0, default: 0)),
                                    bias: try Matrix(rows: 1, columns: outputs, elements: values("bias", count: outputs, default: 0))))
            case let .conv(shape, out, kernel, stride, padding):
                var conv = Conv2d(input: shape, outChannels: out, kernel: kernel, stride: stride, padding: padding, rng: &rng)
                conv.weight = try Matrix(rows: out, columns: shape.channels * kernel * kernel, elements: values("weight", count: 0, default: 0))
                conv.bias = try Matrix(rows: 1, columns: out, elements: values("bias", count: out, default: 0))
                layers.append(conv)
            case let .batchNorm(channels, image, eps):
                let mean = try values("running_mean", count: 0, default: 0), variance = try values("running_var", count: 0, default: 0)
                let gamma = try values("weight", count: channels, default: 1), beta = try values("bias", count: channels, default: 0)
                if let bad = variance.firstIndex(where: { !(Double($0) + eps > 0) }) {
                    throw ModelError.weights("\(path): layer \(binding.position) '\(binding.token)': running_var[\(bad)] = \(variance[bad]) with eps \(eps) is not positive")
                }
                let (scale, shift) = BatchNormFold.affine(mean: mean, variance: variance, weight: gamma, bias: beta, eps: eps)
                let previous = layers.popLast()
                do {
                    layers += try BatchNormFold.fold(scale: scale, shift: shift, after: previous, image: image, rng: &rng)
                } catch ModelError.weights(let message) {
                    throw ModelError.weights("\(path): layer \(binding.position) '\(binding.token)': \(message)")
                }
            default:
                layers.append(try plan.layer(step, rng: &rng))
            }
        }
        return try Sequential(layers)
    }
}

extension ModelSpec.Plan.Binding {
    /// Tensors a module may lack: a bias (`bias=False`), batchnorm's weight and bias (`affine=False`).
    func isOptional(_ suffix: String) -> Bool { suffix == "bias" || (kind == .batchNorm && suffix == "weight") }
}

/// Inference batch normalisation as an affine map, folded into a layer.
enum BatchNormFold {
    /// scale = weight/√(running_var + eps), shift = bias − running_mean·scale (in Double, rounded once).
    static func affine(mean: [Float], variance: [Float], weight: [Float], bias: [Float], eps: Double) -> (scale: [Double], shift: [Double]) {
        let scale = (0..<mean.count).map { Double(weight[$0]) / (Double(variance[$0]) + eps).squareRoot() }
        let shift = (0..<mean.count).map { Double(bias[$0]) - Double(mean[$0]) * scale[$0] }
        return (scale, shift)
    }

    /// The most channels of a batchnorm that becomes a diagonal layer (4096² weights, 64 MiB): one that
    /// follows no linear or conv2d layer on more is refused, so a small file cannot ask for gigabytes.
    static let maxDiagonalFeatures = 4096

    /// The layers that replace `previous`: `previous` with its output channels scaled and shifted when it
    /// is a Dense or Conv2d (exact in real arithmetic: batchnorm is per output channel), else `previous`
    /// followed by a diagonal 1×1 Conv2d on `image` or, for features (`image` nil), a diagonal Dense.
    static func fold(scale: [Double], shift: [Double], after previous: (any Layer)?, image: ImageShape?,
                     rng: inout Philox) throws -> [any Layer] {
        switch previous {
        case var dense as Dense:
            scaleRows(&dense.weight, &dense.bias, scale: scale, shift: shift)
            return [dense]
        case var conv as Conv2d:
            scaleRows(&conv.weight, &conv.bias, scale: scale, shift: shift)
            return [conv]
        default:
            let c = scale.count, bias = try Matrix(rows: 1, columns: c, elements: shift.map { Float($0) })
            let layer: any Layer
            guard c <= maxDiagonalFeatures else {
                throw ModelError.weights("a batchnorm on \(c) channels that follows no linear or conv2d layer would need a \(c)×\(c) diagonal layer "
                                         + "(at most \(maxDiagonalFeatures)); put it after a linear/conv2d layer or export the model to ONNX")
            }
            if let image {
                var conv = Conv2d(input: image, outChannels: c, kernel: 1, rng: &rng)
                (conv.weight, conv.bias) = (diagonal(scale), bias)
                layer = conv
            } else {
                layer = Dense(weight: diagonal(scale), bias: bias)
            }
            return (previous.map { [$0] } ?? []) + [layer]
        }
    }

    /// Row o of `weight` and `bias[o]` become scale[o]·row, scale[o]·bias[o] + shift[o] (rounded once from Double).
    static func scaleRows(_ weight: inout Matrix<Float>, _ bias: inout Matrix<Float>, scale: [Double], shift: [Double]) {
        let (rows, columns) = (weight.rows, weight.columns)
        weight.withUnsafeMutableBufferPointer { w in
            for o in 0..<rows {
                for j in 0..<columns { w[o * columns + j] = Float(Double(w[o * columns + j]) * scale[o]) }
            }
        }
        bias.withUnsafeMutableBufferPointer { b in
            for o in 0..<b.count { b[o] = Float(Double(b[o]) * scale[o] + shift[o]) }
        }
    }

    /// A c×c matrix with `values` on its diagonal (a 1×1 conv2d weight or a linear weight).
    static func diagonal(_ values: [Double]) -> Matrix<Float> {
        var m = Matrix<Float>(rows: values.count, columns: values.count)
        m.withUnsafeMutableBufferPointer { p in
            for (i, v) in values.enumerated() { p[i * values.count + i] = Float(v) }
        }
        return m
    }
}
