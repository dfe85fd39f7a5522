import FaultlineLinalg
import Foundation

/// The architecture syntax shared by the CLI and weight files: comma-separated layers, e.g.
/// `linear:784-512,relu,linear:512-512,relu,linear:512-10`. Layers: `linear:IN-OUT`, `relu`,
/// `leakyrelu[:SLOPE]` (default 0.01), `tanh`, `sigmoid`, `gelu`, `softmax`, `logsoftmax`, `dropout[:P]` (default 0.5),
/// `flatten`, and for images `input:CxHxW` (first, before convolutions), `conv2d:IN-OUT-K[-S[-P]]`
/// (stride 1, padding 0 by default), `maxpool:K[-S]`, `avgpool:K[-S]` (stride K by default), and
/// inference batch normalisation `batchnorm1d:F[-EPS]` (after linear layers), `batchnorm2d:C[-EPS]`
/// (on images), `batchnorm:C[-EPS]` (either, by the input), EPS ≥ 0 defaulting to 1e-5 (`batchnorm2d:64-1e-3`).
/// Activations, dropout, pooling and batchnorm take their shape from the previous layer. A layer with
/// tensors may name its state_dict module: `linear:512-10@classifier.head` (letters, digits, `_`,
/// dot-separated); see `Sequential.load(weights:spec:)` for how unnamed layers find theirs. A JSON form is
/// accepted too: `["linear:784-512", "relu", …]` or `{"layers": […]}`. The README documents the grammar
/// and the `faultline_spec` metadata key; `--spec --help` repeats it.
public enum ModelSpec {
    /// The largest number of trainable scalars a spec may ask for (2²⁸, 1 GiB of float32): a spec is a
    /// few bytes of untrusted text (an option or a weight file's metadata), so its size is checked
    /// before anything is allocated.
    public static let maxParameters = 1 << 28
    /// The largest width (features per sample) of any layer's input or output (2²⁸).
    public static let maxWidth = 1 << 28

    /// Builds a freshly initialised model (PyTorch's default initialisation, Philox(seed)).
    /// Throws `ModelError.invalidSpec` for a malformed spec, a size that overflows or one above
    /// `maxParameters`/`maxWidth`, before allocating any parameter.
    public static func build(_ text: String, seed: UInt64 = 0) throws -> Sequential {
        try plan(text).build(seed: seed)
    }

    /// One tensor of a planned model's state_dict: its name (`0.weight`, or `PREFIX.weight` for a layer
    /// named with `@PREFIX`; batchnorm adds `running_mean`/`running_var`) and PyTorch shape.
    public struct Parameter: Sendable, Equatable {
        /// The state_dict key.
        public var name: String
        /// The tensor's shape as PyTorch stores it.
        public var shape: [Int]
    }

    /// A parsed, size-checked spec that has not allocated anything yet: the shapes every parameter
    /// will have, so a caller can check them (e.g. against the tensors of a weight file) first.
    public struct Plan: Sendable {
        enum Step: Sendable {
            case dense(inputs: Int, outputs: Int)
            case conv(ImageShape, outChannels: Int, kernel: Int, stride: Int, padding: Int)
            case pool(Pool2d.Kind, ImageShape, kernel: Int, stride: Int?)
            case activation(Activation.Kind, features: Int)
            case softmax(logarithmic: Bool, features: Int)
            case dropout(Float, features: Int)
            case flatten(features: Int)
            /// Inference batch normalisation over `channels` (of an image when `image` is set, else of
            /// the features): folded at load, never built fresh.
            case batchNorm(channels: Int, image: ImageShape?, eps: Double)
        }
        /// A layer with tensors in the state_dict: its step, the module prefix the spec names
        /// (`linear:12-16@fc1`) if any, and the tensors it expects (suffix and PyTorch shape).
        struct Binding: Sendable {
            enum Kind: String, Sendable { case linear, conv2d, batchNorm }
            var step: Int
            var kind: Kind
            var prefix: String?
            var tensors: [(suffix: String, shape: [Int])]
            var position: Int
            var token: String
            /// The tensor that identifies the module kind and its shape (`weight`, or `running_mean`).
            var anchor: (suffix: String, shape: [Int]) { kind == .batchNorm ? tensors[2] : tensors[0] }
            /// The state_dict key of `suffix` under `prefix`.
            static func key(_ prefix: String, _ suffix: String) -> String { prefix.isEmpty ? suffix : "\(prefix).\(suffix)" }
        }
        var steps: [Step] = []
        var bindings: [Binding] = []
        /// Every parameter in `Sequential.namedParameters` order.
        public private(set) var parameters: [Parameter] = []
        /// Total trainable scalars (≤ `ModelSpec.maxParameters`).
        public private(set) var parameterCount = 0
        /// Features of the last layer's output (the class count of a classifier).
        public private(set) var outputFeatures = 0
        /// Features per sample the first layer takes.
        public internal(set) var inputFeatures = 0

        mutating func append(_ step: Step, parameters named: [(String, [Int])], kind: Binding.Kind?, prefix: String?,
                             outputs: Int, position: Int, token: String) throws {
            let shapes = named.map(\.1)
            var count = parameterCount
            for shape in shapes {
                guard let n = ModelSpec.product(shape), case let (sum, overflow) = count.addingReportingOverflow(n), !overflow,
                      sum <= ModelSpec.maxParameters else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)' makes the model larger than \(ModelSpec.maxParameters) parameters")
                }
                count = sum
            }
            guard outputs <= ModelSpec.maxWidth else {
                throw ModelError.invalidSpec("layer \(position) '\(token)' gives \(outputs) features, more than \(ModelSpec.maxWidth)")
            }
            let index = steps.count
            parameters += named.map { Parameter(name: Binding.key(prefix ?? "\(index)", $0.0), shape: $0.1) }
            if let kind { bindings.append(Binding(step: index, kind: kind, prefix: prefix, tensors: named, position: position, token: token)) }
            parameterCount = count
            outputFeatures = outputs
            steps.append(step)
        }

        /// Allocates and initialises the layers (PyTorch's default initialisation, Philox(seed)).
        /// Throws `ModelError.invalidSpec` for a spec with batchnorm layers: they hold a trained model's
        /// running statistics, so they are loaded from a state_dict (`Sequential.load`), never built fresh.
        public func build(seed: UInt64 = 0) throws -> Sequential {
            if let bn = bindings.first(where: { $0.kind == .batchNorm }) {
                throw ModelError.invalidSpec("layer \(bn.position) '\(bn.token)': batchnorm layers hold a trained model's running statistics; "
                                             + "load them from a state_dict (training with batch statistics is not supported)")
            }
            var rng = Philox(seed: seed)
            return try Sequential(steps.map { try layer($0, rng: &rng) })
        }

        /// A freshly initialised layer for `step` (not for batchnorm, which is folded at load).
        func layer(_ step: Step, rng: inout Philox) throws -> any Layer {
                switch step {
                case let .dense(inputs, outputs): return Dense(inputs: inputs, outputs: outputs, rng: &rng)
                case let .conv(shape, out, kernel, stride, padding):
                    return Conv2d(input: shape, outChannels: out, kernel: kernel, stride: stride, padding: padding, rng: &rng)
                case let .pool(kind, shape, kernel, stride): return Pool2d(kind, input: shape, kernel: kernel, stride: stride)
                case let .activation(kind, features): return Activation(kind, features: features)
                case let .softmax(logarithmic, features): return SoftmaxLayer(logarithmic: logarithmic, features: features)
                case let .dropout(p, features): return Dropout(probability: p, features: features)
                case let .flatten(features): return Flatten(features: features)
                case .batchNorm: throw ModelError.invalidSpec("batchnorm is folded at load, not built")
                }
        }
    }

    /// The product of `dimensions`, or nil when it overflows `Int`.
    static func product(_ dimensions: [Int]) -> Int? {
        var total = 1
        for d in dimensions {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            total = p
        }
        return total
    }

    /// Parses `text` and checks every size (with checked arithmetic and the documented limits)
    /// without allocating a parameter. Throws `ModelError.invalidSpec` naming the layer.
    public static func plan(_ text: String) throws -> Plan {
        var plan = Plan()
        var width: Int?
        var image: ImageShape?  // the spatial shape while the model is convolutional
        for (position, token) in try tokens(text).enumerated() {
            let (body, prefix) = try modulePrefix(token, position: position)
            let parts = body.split(separator: ":", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            let name = parts.first?.lowercased() ?? ""
            let argument = parts.count > 1 ? parts[1] : nil
            if prefix != nil, !["linear", "dense", "conv2d", "conv", "batchnorm", "batchnorm1d", "batchnorm2d"].contains(name) {
                throw ModelError.invalidSpec("layer \(position) '\(token)': only linear, conv2d and batchnorm layers have tensors to name with @PREFIX")
            }
            func current() throws -> Int {
                guard let width else { throw ModelError.invalidSpec("layer \(position) '\(token)' needs a preceding linear layer to know its width") }
                return width
            }
            func features(_ shape: ImageShape) throws -> Int {
                guard let n = product([shape.channels, shape.height, shape.width]), n <= maxWidth else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': the image \(shape) has more than \(maxWidth) features")
                }
                return n
            }
            func append(_ step: Plan.Step, _ named: [(String, [Int])] = [], kind: Plan.Binding.Kind? = nil, outputs: Int) throws {
                try plan.append(step, parameters: named, kind: kind, prefix: prefix, outputs: outputs, position: position, token: token)
            }
            switch name {
            case "linear", "dense":
                let sizes = (argument ?? "").split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                guard sizes.count == 2, let i = sizes[0], let o = sizes[1], i > 0, o > 0, i <= maxWidth, o <= maxWidth else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': write linear:IN-OUT with sizes from 1 to \(maxWidth)")
                }
                if let width, width != i {
                    throw ModelError.invalidSpec("layer \(position) '\(token)' takes \(i) features but the previous layer gives \(width)")
                }
                try append(.dense(inputs: i, outputs: o), [("weight", [o, i]), ("bias", [o])], kind: .linear, outputs: o)
                if plan.inputFeatures == 0 { plan.inputFeatures = i }
                width = o
                image = nil
            case "input":
                let dims = (argument ?? "").split(whereSeparator: { $0 == "x" || $0 == "-" }).map { Int($0) }
                guard position == 0, dims.count == 3, dims.allSatisfy({ ($0 ?? 0) > 0 }) else {
                    throw ModelError.invalidSpec("'\(token)': write input:CxHxW as the first layer")
                }
                let shape = ImageShape(channels: dims[0]!, height: dims[1]!, width: dims[2]!)
                width = try features(shape)
                plan.inputFeatures = width!
                image = shape
            case "conv2d", "conv":
                let n = (argument ?? "").split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                guard (3...5).contains(n.count), n.allSatisfy({ $0 != nil }), n[0]! > 0, n[1]! > 0, n[2]! > 0, n.count < 4 || n[3]! > 0,
                      n.count < 5 || n[4]! >= 0, n.allSatisfy({ $0! <= maxWidth }) else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': write conv2d:IN-OUT-K[-STRIDE[-PADDING]] with sizes up to \(maxWidth)")
                }
                let (inChannels, out, kernel) = (n[0]!, n[1]!, n[2]!)
                guard let shape = image, shape.channels == inChannels else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)' takes \(inChannels) channels but the input is \(image.map(\.description) ?? "not an image (start with input:CxHxW)")")
                }
                let stride = n.count > 3 ? n[3]! : 1, padding = n.count > 4 ? n[4]! : 0
                // Every term is ≤ maxWidth = 2²⁸, so these sums cannot overflow.
                guard shape.height + 2 * padding >= kernel, shape.width + 2 * padding >= kernel else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': kernel \(kernel) is larger than the padded \(shape) input")
                }
                let output = ImageShape(channels: out, height: (shape.height + 2 * padding - kernel) / stride + 1,
                                        width: (shape.width + 2 * padding - kernel) / stride + 1)
                try append(.conv(shape, outChannels: out, kernel: kernel, stride: stride, padding: padding),
                           [("weight", [out, inChannels, kernel, kernel]), ("bias", [out])], kind: .conv2d, outputs: try features(output))
                image = output
                width = plan.outputFeatures
            case "maxpool", "avgpool":
                let n = (argument ?? "").split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                guard (1...2).contains(n.count), n.allSatisfy({ ($0 ?? 0) > 0 }), let shape = image, n[0]! <= shape.height, n[0]! <= shape.width else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': write \(name):K[-STRIDE] after a convolution, with K no larger than the image")
                }
                let kernel = n[0]!, stride = n.count > 1 ? n[1]! : nil
                let output = ImageShape(channels: shape.channels, height: (shape.height - kernel) / (stride ?? kernel) + 1,
                                        width: (shape.width - kernel) / (stride ?? kernel) + 1)
                try append(.pool(name == "maxpool" ? .max : .average, shape, kernel: kernel, stride: stride), outputs: try features(output))
                image = output
                width = plan.outputFeatures
            case "relu": try append(.activation(.relu, features: try current()), outputs: try current())
            case "leakyrelu":
                let slope = try argument.map { a -> Float in
                    guard let s = Float(a), s.isFinite else { throw ModelError.invalidSpec("layer \(position) '\(token)': the slope must be a finite number") }
                    return s
                } ?? 0.01
                try append(.activation(.leakyReLU(slope: slope), features: try current()), outputs: try current())
            case "softmax", "logsoftmax": try append(.softmax(logarithmic: name == "logsoftmax", features: try current()), outputs: try current())
            case "tanh": try append(.activation(.tanh, features: try current()), outputs: try current())
            case "sigmoid": try append(.activation(.sigmoid, features: try current()), outputs: try current())
            case "gelu": try append(.activation(.gelu, features: try current()), outputs: try current())
            case "dropout":
                let p = try argument.map { a -> Float in
                    guard let p = Float(a), p >= 0, p < 1 else { throw ModelError.invalidSpec("layer \(position) '\(token)': p must be in [0, 1)") }
                    return p
                } ?? 0.5
                try append(.dropout(p, features: try current()), outputs: try current())
            case "flatten":
                try append(.flatten(features: try current()), outputs: try current())
                image = nil
            case "batchnorm", "batchnorm1d", "batchnorm2d":
                // C[-EPS]: split at the first '-' only, so EPS may be written 1e-3.
                let n = (argument ?? "").split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let eps = n.count > 1 ? Double(n[1]) : 1e-5
                guard let c = Int(n[0]), c > 0, c <= maxWidth, let eps, eps.isFinite, eps >= 0 else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': write \(name):C[-EPS] with C channels (features) and EPS ≥ 0 (default 1e-5)")
                }
                let twoD = name == "batchnorm2d" || (name == "batchnorm" && image != nil)
                let have = twoD ? image?.channels : (image == nil ? width : nil)
                guard have == c else {
                    let what = twoD ? (image.map { "an image \($0)" } ?? "not an image (batchnorm2d follows a convolution)")
                                    : (image.map { "an image \($0) (use batchnorm2d, or flatten first)" } ?? width.map { "\($0) features" } ?? "of unknown width")
                    throw ModelError.invalidSpec("layer \(position) '\(token)' normalises \(c) \(twoD ? "channels" : "features") but its input is \(what)")
                }
                try append(.batchNorm(channels: c, image: twoD ? image : nil, eps: eps),
                           ["weight", "bias", "running_mean", "running_var"].map { ($0, [c]) }, kind: .batchNorm, outputs: try current())
            default:
                throw ModelError.invalidSpec("layer \(position) '\(token)' is unknown (known: input, linear, conv2d, batchnorm1d, batchnorm2d, maxpool, avgpool, relu, leakyrelu, tanh, sigmoid, gelu, softmax, logsoftmax, dropout, flatten)")
            }
        }
        guard !plan.steps.isEmpty else { throw ModelError.invalidSpec("a model needs at least one layer") }
        return plan
    }

    /// Splits `linear:12-16@fc1` into the layer (`linear:12-16`) and its module prefix (`fc1`): letters,
    /// digits, `_` and `.`-separated non-empty parts.
    static func modulePrefix(_ token: String, position: Int) throws -> (String, String?) {
        guard let at = token.firstIndex(of: "@") else { return (token, nil) }
        let prefix = token[token.index(after: at)...].trimmingCharacters(in: .whitespaces)
        let valid = prefix.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
        }
        guard valid, prefix.utf8.count <= 256 else {
            throw ModelError.invalidSpec("layer \(position) '\(token)': write LAYER@PREFIX with the module name of its tensors, e.g. linear:12-16@fc1 or conv2d:3-8-3@features.0")
        }
        return (String(token[..<at]), prefix)
    }

    static func tokens(_ text: String) throws -> [String] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("[") || trimmed.hasPrefix("{") {
            let json = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))
            let list = (json as? [String]) ?? ((json as? [String: Any])?["layers"] as? [String])
            guard let list else { throw ModelError.invalidSpec("JSON spec must be a list of layer strings or {\"layers\": [...]}") }
            return list
        }
        let list = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty else { throw ModelError.invalidSpec("empty spec") }
        return list
    }
}

/// Reshapes nothing: the batch is already [n, features]; kept so PyTorch `nn.Flatten` positions (and
/// so state_dict indices) line up.
public struct Flatten: Layer {
    /// Features per row (in and out).
    public let features: Int
    /// A flatten of `features` features per row.
    public init(features: Int) { self.features = features }
    /// Features per row: `features`.
    public var inputFeatures: Int { features }
    /// Features per row: `features`.
    public var outputFeatures: Int { features }
    public var spec: String { "flatten" }

    /// Copies each row.
    public func forward(_ input: MatrixPointer<Float>, into output: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows { (output.base + i * output.rowStride).update(from: input.base + i * input.rowStride, count: features) }
    }

    /// Copies each row of the output gradient.
    public func backwardInput(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows {
            (inputGradient.base + i * inputGradient.rowStride).update(from: outputGradient.base + i * outputGradient.rowStride, count: features)
        }
    }
}
