import FaultlineLinalg
import Foundation

/// The architecture syntax shared by the CLI and weight files: comma-separated layers, e.g.
/// `linear:784-512,relu,linear:512-512,relu,linear:512-10`. Layers: `linear:IN-OUT`, `relu`,
/// `leakyrelu[:SLOPE]` (default 0.01), `tanh`, `sigmoid`, `gelu`, `softmax`, `logsoftmax`, `dropout[:P]` (default 0.5),
/// `flatten`, and for images `input:CxHxW` (first, before convolutions), `conv2d:IN-OUT-K[-S[-P]]`
/// (stride 1, padding 0 by default), `maxpool:K[-S]`, `avgpool:K[-S]` (stride K by default).
/// Activations, dropout and pooling take their shape from the previous layer. A JSON form is
/// accepted too: `["linear:784-512", "relu", …]` or `{"layers": […]}`.
public enum ModelSpec {
    /// Builds a freshly initialised model (PyTorch's default initialisation, Philox(seed)).
    public static func build(_ text: String, seed: UInt64 = 0) throws -> Sequential {
        var rng = Philox(seed: seed)
        var layers: [any Layer] = []
        var width: Int?
        var image: ImageShape?  // the spatial shape while the model is convolutional
        for (position, token) in try tokens(text).enumerated() {
            let parts = token.split(separator: ":", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            let name = parts[0].lowercased()
            let argument = parts.count > 1 ? parts[1] : nil
            func current() throws -> Int {
                guard let width else { throw ModelError.invalidSpec("layer \(position) '\(token)' needs a preceding linear layer to know its width") }
                return width
            }
            switch name {
            case "linear", "dense":
                let sizes = (argument ?? "").split(separator: "-").compactMap { Int($0) }
                guard sizes.count == 2, sizes[0] > 0, sizes[1] > 0 else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': write linear:IN-OUT with positive sizes")
                }
                if let width, width != sizes[0] {
                    throw ModelError.invalidSpec("layer \(position) '\(token)' takes \(sizes[0]) features but the previous layer gives \(width)")
                }
                layers.append(Dense(inputs: sizes[0], outputs: sizes[1], rng: &rng))
                width = sizes[1]
                image = nil
            case "input":
                let dims = (argument ?? "").split(whereSeparator: { $0 == "x" || $0 == "-" }).compactMap { Int($0) }
                guard position == 0, dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
                    throw ModelError.invalidSpec("'\(token)': write input:CxHxW as the first layer")
                }
                image = ImageShape(channels: dims[0], height: dims[1], width: dims[2])
                width = image!.features
                continue
            case "conv2d", "conv":
                let n = (argument ?? "").split(separator: "-").compactMap { Int($0) }
                guard (3...5).contains(n.count), n[0] > 0, n[1] > 0, n[2] > 0, n.count < 4 || n[3] > 0, n.count < 5 || n[4] >= 0 else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': write conv2d:IN-OUT-K[-STRIDE[-PADDING]]")
                }
                guard let shape = image, shape.channels == n[0] else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)' takes \(n[0]) channels but the input is \(image.map(\.description) ?? "not an image (start with input:CxHxW)")")
                }
                let stride = n.count > 3 ? n[3] : 1, padding = n.count > 4 ? n[4] : 0
                guard shape.height + 2 * padding >= n[2], shape.width + 2 * padding >= n[2] else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': kernel \(n[2]) is larger than the padded \(shape) input")
                }
                let conv = Conv2d(input: shape, outChannels: n[1], kernel: n[2], stride: stride, padding: padding, rng: &rng)
                layers.append(conv)
                image = conv.output
                width = conv.outputFeatures
                continue
            case "maxpool", "avgpool":
                let n = (argument ?? "").split(separator: "-").compactMap { Int($0) }
                guard (1...2).contains(n.count), n.allSatisfy({ $0 > 0 }), let shape = image, n[0] <= shape.height, n[0] <= shape.width else {
                    throw ModelError.invalidSpec("layer \(position) '\(token)': write \(name):K[-STRIDE] after a convolution, with K no larger than the image")
                }
                let pool = Pool2d(name == "maxpool" ? .max : .average, input: shape, kernel: n[0], stride: n.count > 1 ? n[1] : nil)
                layers.append(pool)
                image = pool.output
                width = pool.outputFeatures
                continue
            case "relu": layers.append(Activation(.relu, features: try current()))
            case "leakyrelu":
                let slope = try argument.map { a -> Float in
                    guard let s = Float(a) else { throw ModelError.invalidSpec("layer \(position) '\(token)': slope is not a number") }
                    return s
                } ?? 0.01
                layers.append(Activation(.leakyReLU(slope: slope), features: try current()))
            case "softmax", "logsoftmax": layers.append(SoftmaxLayer(logarithmic: name == "logsoftmax", features: try current()))
            case "tanh": layers.append(Activation(.tanh, features: try current()))
            case "sigmoid": layers.append(Activation(.sigmoid, features: try current()))
            case "gelu": layers.append(Activation(.gelu, features: try current()))
            case "dropout":
                let p = try argument.map { a -> Float in
                    guard let p = Float(a), p >= 0, p < 1 else { throw ModelError.invalidSpec("layer \(position) '\(token)': p must be in [0, 1)") }
                    return p
                } ?? 0.5
                layers.append(Dropout(probability: p, features: try current()))
            case "flatten":
                layers.append(Flatten(features: try current()))
                image = nil
            default:
                throw ModelError.invalidSpec("layer \(position) '\(token)' is unknown (known: input, linear, conv2d, maxpool, avgpool, relu, leakyrelu, tanh, sigmoid, gelu, softmax, logsoftmax, dropout, flatten)")
            }
        }
        return try Sequential(layers)
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
    public let features: Int
    public init(features: Int) { self.features = features }
    public var inputFeatures: Int { features }
    public var outputFeatures: Int { features }
    public var spec: String { "flatten" }

    public func forward(_ input: MatrixPointer<Float>, into output: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows { (output.base + i * output.rowStride).update(from: input.base + i * input.rowStride, count: features) }
    }

    public func backwardInput(outputGradient: MatrixPointer<Float>, input: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        for i in 0..<input.rows {
            (inputGradient.base + i * inputGradient.rowStride).update(from: outputGradient.base + i * outputGradient.rowStride, count: features)
        }
    }
}
