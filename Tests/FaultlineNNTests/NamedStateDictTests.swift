import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// State_dicts with their own module names and BatchNorm (fixtures from
/// scripts/fixtures/make_state_dict_fixtures.py, PyTorch eval mode), the key rules and every error path,
/// the `.pt` refusal, and input normalisation (`NormalizedClassifier`, `GraphModel.normalizingInput`,
/// `Sequential.prependingNormalization`).
@Suite("named state_dicts, batchnorm, normalisation")
struct NamedStateDictTests {
    static let root = PyTorchAgreementTests.root
    static let mlpSpec = "linear:10-16,batchnorm1d:16,relu,linear:16-16,relu,batchnorm1d:16-1e-3,linear:16-4"
    static let cnnSpec = "input:3x8x8,conv2d:3-8-3-1-1,batchnorm2d:8,relu,maxpool:2,conv2d:8-8-3-1-1,relu,batchnorm2d:8,flatten,linear:128-5"
    /// The same architectures with every module named explicitly.
    static let mlpKeyed = "linear:10-16@fc1,batchnorm1d:16@bn1,relu,linear:16-16@fc2,relu,batchnorm1d:16-1e-3@bn2,linear:16-4@head"
    static let cnnKeyed = "input:3x8x8,conv2d:3-8-3-1-1@features.0,batchnorm2d:8@features.1,relu,maxpool:2,conv2d:8-8-3-1-1@features.4,relu,"
        + "batchnorm2d:8@features.6,flatten,linear:128-5@classifier.1"
    static let models = [("named_mlp", mlpSpec), ("named_mlp", mlpKeyed), ("named_cnn", cnnSpec), ("named_cnn", cnnKeyed)]

    static func expected(_ name: String) throws -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: try NPZ.read(root + "/\(name)_expected.npz").map { ($0.name, $0.tensor) })
    }

    /// max |a − b| / max(max |b|, 1e-3).
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        let scale = max(b.map { abs(Double($0)) }.max() ?? 0, 1e-3)
        return zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / scale
    }

    static func temporaryDirectory() throws -> String {
        try WeightsFromBytesTests.temporaryDirectory()
    }

    // MARK: agreement with PyTorch

    @Test(arguments: models)
    func logitsAndGradientsMatchPyTorchInEveryBatchSize(name: String, spec: String) throws {
        let model = try Sequential.load(weights: Self.root + "/\(name).safetensors", spec: spec)
        let e = try Self.expected(name)
        let x = try e["x"]!.matrix(Float.self), y = e["y"]!.values(as: Double.self).map { Int($0) }
        for batch in [1, 2, 5, x.rows] {
            #expect(Self.relativeError(try model.logits(x, batchSize: batch).elements, e["logits"]!.values(as: Float.self)) <= 1e-5, "batch \(batch)")
            let g = try model.inputGradient(x, labels: y, loss: .crossEntropy, batchSize: batch)
            #expect(Self.relativeError(g.gradient.elements, e["ce_input_grad"]!.values(as: Float.self)) <= 1e-5, "batch \(batch)")
        }
        // Batchnorm after a linear/conv layer is folded into it; after a ReLU it is a diagonal layer.
        #expect(!model.spec.contains("batchnorm"))
        #expect(model.layers.count == (name == "named_mlp" ? 6 : 8), "\(model.spec)")
        // The folded model saves and reloads as a plain Sequential with its own spec.
        let dir = try Self.temporaryDirectory()
        try model.save(weights: dir + "/folded.safetensors")
        let again = try Sequential.load(weights: dir + "/folded.safetensors")
        #expect(try again.logits(x).elements == model.logits(x).elements)
    }

    /// The rows of a batch are independent: every row alone gives the logits it has in the full batch.
    @Test func rowsAreIndependentOfTheBatch() throws {
        let model = try Sequential.load(weights: Self.root + "/named_cnn.safetensors", spec: Self.cnnSpec)
        let x = try Self.expected("named_cnn")["x"]!.matrix(Float.self)
        let all = try model.logits(x, context: ForwardContext(backend: .simd))
        for i in 0..<x.rows {
            let row = try Matrix(rows: 1, columns: x.columns, elements: Array(x.elements[(i * x.columns)..<((i + 1) * x.columns)]))
            #expect(try model.logits(row, context: ForwardContext(backend: .simd)).elements == Array(all.elements[(i * 5)..<((i + 1) * 5)]))
        }
    }

    // MARK: batchnorm families (without PyTorch)

    /// Random batchnorm tensors of `c` channels under `prefix` (positive variances, affine).
    static func batchNormTensors(_ prefix: String, _ c: Int, rng: inout Philox) -> [(name: String, tensor: Tensor)] {
        let v = rng.matrix(rows: 4, columns: c, as: Float.self).elements
        return [("\(prefix).weight", Tensor(shape: [c], values: (0..<c).map { 1 + 0.5 * v[$0] })),
                ("\(prefix).bias", Tensor(shape: [c], values: (0..<c).map { 0.3 * v[c + $0] })),
                ("\(prefix).running_mean", Tensor(shape: [c], values: (0..<c).map { 0.5 * v[2 * c + $0] })),
                ("\(prefix).running_var", Tensor(shape: [c], values: (0..<c).map { 0.2 + v[3 * c + $0] * v[3 * c + $0] })),
                ("\(prefix).num_batches_tracked", Tensor(shape: [], values: [Int64(5)]))]
    }

    /// The graph node of an unfolded inference batchnorm: scale = γ/√(var + eps), shift = β − mean·scale.
    static func affine(_ tensors: [(name: String, tensor: Tensor)], _ prefix: String, eps: Double) -> GraphOperation {
        func v(_ s: String) -> [Double] { tensors.first { $0.name == "\(prefix).\(s)" }!.tensor.values(as: Double.self) }
        let scale = zip(v("weight"), v("running_var")).map { $0 / ($1 + eps).squareRoot() }
        return .channelAffine(scale: scale.map { Float($0) }, shift: (0..<scale.count).map { Float(v("bias")[$0] - v("running_mean")[$0] * scale[$0]) })
    }

    /// Folded (after conv2d / linear) and unfolded (after an activation) batchnorm equals a graph that
    /// applies it as a separate per-channel affine node, for channel counts 1…5, both eps and batch sizes.
    @Test(arguments: [(1, 2), (3, 5), (4, 1), (2, 4)])
    func batchnormFamiliesEqualAnUnfoldedGraph(inChannels c: Int, outChannels k: Int) throws {
        var rng = Philox(seed: UInt64(10 * c + k))
        let dir = try Self.temporaryDirectory()
        let features = k * 25
        var tensors: [(name: String, tensor: Tensor)] = []
        let convWeight = rng.matrix(rows: k, columns: c * 9, as: Float.self), convBias = rng.matrix(rows: 1, columns: k, as: Float.self)
        let dense = rng.matrix(rows: 6, columns: features, as: Float.self), denseBias = rng.matrix(rows: 1, columns: 6, as: Float.self)
        let head = rng.matrix(rows: 3, columns: 6, as: Float.self)
        tensors += [("body.conv.weight", Tensor(shape: [k, c, 3, 3], values: convWeight.elements)), ("body.conv.bias", Tensor(shape: [k], values: convBias.elements)),
                    ("fc.weight", Tensor(shape: [6, features], values: dense.elements)), ("fc.bias", Tensor(shape: [6], values: denseBias.elements)),
                    ("head.weight", Tensor(shape: [3, 6], values: head.elements))]
        tensors += Self.batchNormTensors("body.bn1", k, rng: &rng) + Self.batchNormTensors("body.bn2", k, rng: &rng)
            + Self.batchNormTensors("norm_a", 6, rng: &rng) + Self.batchNormTensors("norm_b", 6, rng: &rng)
        try SafeTensors.write(SafeTensors.File(tensors: tensors.sorted { $0.name < $1.name }, metadata: [:]), to: dir + "/m.safetensors")
        let spec = "input:\(c)x5x5,conv2d:\(c)-\(k)-3-1-1@body.conv,batchnorm2d:\(k)@body.bn1,relu,batchnorm2d:\(k)-0.01@body.bn2,flatten,"
            + "linear:\(features)-6@fc,batchnorm1d:6@norm_a,tanh,batchnorm1d:6-0@norm_b,linear:6-3@head"
        let model = try Sequential.load(weights: dir + "/m.safetensors", spec: spec)
        let nodes: [GraphModel.Node] = [
            .init(name: "conv", operation: .convolution(.init(weight: convWeight, bias: convBias.elements, inChannels: c, kernel: (3, 3), pads: (1, 1, 1, 1))), inputs: ["x"], output: "a"),
            .init(name: "bn1", operation: Self.affine(tensors, "body.bn1", eps: 1e-5), inputs: ["a"], output: "b"),
            .init(name: "relu", operation: .unary(.relu), inputs: ["b"], output: "c"),
            .init(name: "bn2", operation: Self.affine(tensors, "body.bn2", eps: 0.01), inputs: ["c"], output: "d"),
            .init(name: "flatten", operation: .reshape([features]), inputs: ["d"], output: "e"),
            .init(name: "fc", operation: .dense(weight: dense, bias: denseBias.elements), inputs: ["e"], output: "f"),
            .init(name: "bn3", operation: Self.affine(tensors, "norm_a", eps: 1e-5), inputs: ["f"], output: "g"),
            .init(name: "tanh", operation: .unary(.tanh), inputs: ["g"], output: "h"),
            .init(name: "bn4", operation: Self.affine(tensors, "norm_b", eps: 0), inputs: ["h"], output: "i"),
            .init(name: "head", operation: .dense(weight: head, bias: [0, 0, 0]), inputs: ["i"], output: "z"),
        ]
        let graph = try GraphModel(inputName: "x", inputShape: [c, 5, 5], nodes: nodes, outputName: "z")
        let x = rng.matrix(rows: 8, columns: c * 25, as: Float.self), y = [0, 1, 2, 0, 1, 2, 2, 1]
        #expect(model.layers.count == 8, "\(model.spec)")  // bn1 and norm_a folded; bn2 a 1×1 conv, norm_b a diagonal linear
        for batch in [1, 3, 8] {
            #expect(Self.relativeError(try model.logits(x, batchSize: batch).elements, try graph.logits(x).elements) <= 1e-5, "batch \(batch)")
        }
        #expect(Self.relativeError(try model.inputGradient(x, labels: y).gradient.elements, try Self.crossEntropyGradient(graph, x, y)) <= 1e-5)
    }

    // MARK: key rules

    /// A state_dict of linear and batchnorm modules with `names` (in file order = sorted, as PyTorch
    /// writes it), widths chained 4 → 4, deterministic values.
    static func writeLinear(_ modules: [(String, [Int])], batchNorms: [String] = [], dtype: Bool = true, to path: String) throws {
        var tensors: [(name: String, tensor: Tensor)] = []
        var rng = Philox(seed: 3)
        for (name, shape) in modules {
            tensors.append(("\(name).weight", Tensor(shape: shape, values: rng.matrix(rows: 1, columns: shape.reduce(1, *), as: Float.self).elements)))
            tensors.append(("\(name).bias", Tensor(shape: [shape[0]], values: rng.matrix(rows: 1, columns: shape[0], as: Float.self).elements)))
        }
        for name in batchNorms {
            for suffix in ["weight", "bias", "running_mean"] { tensors.append(("\(name).\(suffix)", Tensor(shape: [4], values: [0.5, 1, -1, 2]))) }
            tensors.append(("\(name).running_var", Tensor(shape: [4], values: [1, 2, 0.5, 4])))
            tensors.append(("\(name).num_batches_tracked", Tensor(shape: [], values: [Int64(3)])))
        }
        try SafeTensors.write(SafeTensors.File(tensors: tensors.sorted { $0.name < $1.name }, metadata: [:]), to: path)
    }

    /// Ties between modules of equal shapes go by the numbers in their names (fc2 < fc10), whatever
    /// their alphabetical order; the result equals the model keyed explicitly.
    @Test(arguments: [["fc1", "fc2", "fc10"], ["layers.0", "layers.3", "layers.12"], ["block1.lin", "block2.lin", "block11.lin"]])
    func numberedModulesOfEqualShapeGoByNumber(names: [String]) throws {
        let dir = try Self.temporaryDirectory()
        try Self.writeLinear(names.map { ($0, [4, 4]) } + [("out", [3, 4])], to: dir + "/m.safetensors")
        let inferred = try Sequential.load(weights: dir + "/m.safetensors", spec: "linear:4-4,relu,linear:4-4,tanh,linear:4-4,relu,linear:4-3")
        let keyed = try Sequential.load(weights: dir + "/m.safetensors",
                                        spec: "linear:4-4@\(names[0]),relu,linear:4-4@\(names[1]),tanh,linear:4-4@\(names[2]),relu,linear:4-3@out")
        #expect(inferred.namedParameters.map(\.value.elements) == keyed.namedParameters.map(\.value.elements))
        let swapped = try Sequential.load(weights: dir + "/m.safetensors",
                                          spec: "linear:4-4@\(names[2]),relu,linear:4-4@\(names[1]),tanh,linear:4-4@\(names[0]),relu,linear:4-3@out")
        #expect(inferred.namedParameters[0].value.elements != swapped.namedParameters[0].value.elements)
    }

    /// Explicit keys may name some layers; the rest are inferred among the remaining modules.
    @Test func partialKeysAndBiasFreeModules() throws {
        let dir = try Self.temporaryDirectory()
        var tensors: [(name: String, tensor: Tensor)] = []
        tensors.append(("encoder.weight", Tensor(shape: [4, 2], values: (0..<8).map { Float($0) / 8 })))  // bias=False
        tensors.append(("decoder.weight", Tensor(shape: [4, 4], values: (0..<16).map { Float($0) / 16 })))
        tensors.append(("decoder.bias", Tensor(shape: [4], values: [1, 2, 3, 4])))
        tensors.append(("mid.weight", Tensor(shape: [4, 4], values: (0..<16).map { -Float($0) / 16 })))
        try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: [:]), to: dir + "/m.safetensors")
        let model = try Sequential.load(weights: dir + "/m.safetensors", spec: "linear:2-4,relu,linear:4-4@mid,relu,linear:4-4@decoder")
        #expect(model.namedParameters[1].value.elements == [0, 0, 0, 0])  // the missing bias is zero
        #expect(model.namedParameters[2].value.elements == (0..<16).map { -Float($0) / 16 })
        #expect(model.namedParameters[5].value.elements == [1, 2, 3, 4])
    }

    /// Every error names the file, the key or module, and what was expected.
    @Test func errorsNameTheKeyAndTheExpectedShape() throws {
        let dir = try Self.temporaryDirectory()
        let path = dir + "/m.safetensors"
        func message(_ spec: String) -> String {
            do {
                _ = try Sequential.load(weights: path, spec: spec)
                return "loaded"
            } catch let error as ModelError {
                guard case .weights(let m) = error else { return "\(error)" }
                #expect(m.hasPrefix(path), "\(m)")
                return m
            } catch { return "\(error)" }
        }
        // Two unnumbered modules of one shape: ambiguous, ask for @PREFIX.
        try Self.writeLinear([("hidden", [4, 4]), ("proj", [4, 4]), ("out", [3, 4])], to: path)
        let ambiguous = message("linear:4-4,relu,linear:4-4,relu,linear:4-3")
        #expect(ambiguous.contains("hidden") && ambiguous.contains("proj") && ambiguous.contains("@"), "\(ambiguous)")
        // A layer whose shape no module has: its expected keys and shapes, and the unmatched tensors.
        let missing = message("linear:4-4@hidden,relu,linear:4-4@proj,relu,linear:4-5")
        #expect(missing.contains("4.weight [5, 4]") && missing.contains("out.weight [3, 4]"), "\(missing)")
        // An explicit prefix that is absent, or has the wrong shape.
        let absent = message("linear:4-4@nothere,relu,linear:4-4@proj,relu,linear:4-3@out")
        #expect(absent.contains("'nothere.weight'") && absent.contains("[4, 4]"), "\(absent)")
        let shape = message("linear:4-4@hidden,relu,linear:4-4@proj,relu,linear:4-3@proj")
        #expect(shape.contains("'proj.weight'") && shape.contains("[3, 4]"), "\(shape)")
        // A module no layer takes.
        let extra = message("linear:4-4@hidden,relu,linear:4-3@out")
        #expect(extra.contains("proj.weight") && extra.contains("do not belong"), "\(extra)")
        // Batchnorm: a non-positive variance names the layer; missing running stats name the key.
        try Self.writeLinear([("fc", [4, 4])], batchNorms: ["bn"], to: path)
        #expect(message("linear:4-4,batchnorm1d:4").contains("loaded"))
        #expect(message("linear:4-4,batchnorm1d:4-0").contains("loaded"))
        var file = try SafeTensors.read(path)
        file.tensors = file.tensors.map { $0.name == "bn.running_var" ? ($0.name, Tensor(shape: [4], values: [1, -2, 1, 1] as [Float])) : $0 }
        try SafeTensors.write(file, to: path)
        #expect(message("linear:4-4@fc,batchnorm1d:4@bn").contains("running_var[1] = -2.0"))
        file.tensors.removeAll { $0.name == "bn.running_var" }
        try SafeTensors.write(file, to: path)
        #expect(message("linear:4-4@fc,batchnorm1d:4@bn").contains("'bn.running_var' with shape [4]"))
    }

    @Test(arguments: [
        ("linear:4-4,batchnorm2d:4", "not an image"), ("input:2x3x3,batchnorm1d:2", "use batchnorm2d"), ("linear:4-4,batchnorm1d:5", "4 features"),
        ("linear:4-4,batchnorm1d:4-x", "EPS"), ("linear:4-4,batchnorm1d:4--1", "EPS"), ("relu@x", "only linear"), ("linear:4-4@", "LAYER@PREFIX"),
        ("linear:4-4@a..b", "LAYER@PREFIX"), ("linear:4-4@a b", "LAYER@PREFIX"),
    ])
    func specErrors(spec: String, fragment: String) {
        #expect(throws: ModelError.self) { try ModelSpec.plan(spec) }
        do { _ = try ModelSpec.plan(spec) } catch { #expect("\(error)".contains(fragment), "\(error)") }
    }

    /// Batchnorm specs plan but cannot be built fresh (no batch statistics in training).
    @Test func batchnormSpecsAreForLoading() throws {
        let plan = try ModelSpec.plan(Self.cnnSpec)
        #expect(plan.parameters.map(\.name).contains("1.running_mean"))
        #expect(throws: ModelError.self) { try ModelSpec.build(Self.cnnSpec) }
        let keyed = try ModelSpec.plan(Self.mlpKeyed)
        #expect(keyed.parameters.map(\.name).prefix(3) == ["fc1.weight", "fc1.bias", "bn1.weight"])
    }

    /// A faultline_spec in the metadata (with batchnorm and @PREFIX) is used by the spec-less loader.
    @Test func metadataSpecWithKeys() throws {
        let dir = try Self.temporaryDirectory()
        var file = try SafeTensors.read(Self.root + "/named_mlp.safetensors")
        file.metadata["faultline_spec"] = Self.mlpKeyed
        try SafeTensors.write(file, to: dir + "/m.safetensors")
        let a = try Sequential.load(weights: dir + "/m.safetensors")
        let b = try Sequential.load(weights: Self.root + "/named_mlp.safetensors", spec: Self.mlpSpec)
        #expect(a.namedParameters.map(\.value.elements) == b.namedParameters.map(\.value.elements))
    }

    // MARK: .pt refusal

    @Test(arguments: ["torch_zip.pt", "torch_legacy.pt"])
    func torchSaveFilesAreRefusedWithTheFix(file: String) throws {
        let path = Self.root + "/" + file
        for load in [{ _ = try Sequential.load(weights: path) }, { _ = try Sequential.load(weights: path, spec: "linear:3-2") }] {
            do {
                try load()
                Issue.record("\(file) loaded")
            } catch let error as IOError {
                #expect(error.file == path)
                #expect(error.detail.contains("safetensors.torch.save_file(model.state_dict(), \"model.safetensors\")"), "\(error)")
                #expect(error.detail.contains("torch.onnx.export"))
                #expect(!"\(error)".contains("\n"))
            }
        }
        // The bytes route (SafeTensors.decode, which every .safetensors reader uses) says the same.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let fromBytes = try #require(throws: IOError.self) { try SafeTensors.decode(bytes, name: path) }
        let fromFile = try #require(throws: IOError.self) { try Sequential.load(weights: path) }
        #expect("\(fromBytes)" == "\(fromFile)")
    }

    /// A batchnorm that follows no linear/conv2d layer becomes a diagonal layer, up to 4096 channels;
    /// a wider one is refused (a small file must not ask for gigabytes), naming the file and the layer.
    @Test func wideUnfoldableBatchnormIsRefused() throws {
        let dir = try Self.temporaryDirectory()
        var rng = Philox(seed: 1)
        for (width, loads) in [(4096, true), (4097, false)] {
            let tensors = [("fc.weight", Tensor(shape: [width, 2], values: [Float](repeating: 0.5, count: 2 * width)))]
                + Self.batchNormTensors("bn", width, rng: &rng)
            try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: [:]), to: dir + "/w.safetensors")
            let result = Result { try Sequential.load(weights: dir + "/w.safetensors", spec: "linear:2-\(width),relu,batchnorm1d:\(width)") }
            switch result {
            case .success(let model): #expect(loads && model.layers.count == 3)
            case .failure(let error):
                #expect(!loads && "\(error)".contains(dir + "/w.safetensors: layer 2 'batchnorm1d:\(width)'") && "\(error)".contains("at most 4096"), "\(error)")
            }
        }
    }

    /// Magic bytes, not extensions: pickles of protocols 2–5 and zips are recognised; a safetensors
    /// whose header length begins 0x80 0x02 (640 bytes) is not mistaken for one.
    @Test func pickleMagicBytes() {
        for protocolByte: UInt8 in 2...5 { #expect(PyTorchPickle.kind(of: [0x80, protocolByte, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9]) == "pickle") }
        #expect(PyTorchPickle.kind(of: [0x80, 0x02, 0, 0, 0, 0, 0, 0, UInt8(ascii: "{")]) == nil)
        #expect(PyTorchPickle.kind(of: [0x80, 0x01, 0, 0, 0, 0, 0, 0, 0]) == nil)
        #expect(PyTorchPickle.kind(of: Array("PK\u{3}\u{4}rest".utf8)) == "zip")
        #expect(PyTorchPickle.kind(of: [0x08, 0x07, 0x12]) == nil)  // an ONNX protobuf
        #expect(PyTorchPickle.kind(of: []) == nil)
    }

    // MARK: normalisation

    /// `NormalizedClassifier` equals PyTorch's model((x − mean)/std) with gradients w.r.t. the raw x;
    /// the graph with Sub/Div nodes and the Sequential with a diagonal first layer agree with it.
    @Test func normalizedCNNMatchesPyTorch() throws {
        let e = try Self.expected("named_cnn")
        let base = try Sequential.load(weights: Self.root + "/named_cnn.safetensors", spec: Self.cnnSpec)
        let norm = try InputNormalization(mean: e["mean"]!.values(as: Float.self), std: e["std"]!.values(as: Float.self))
        let x = try e["x"]!.matrix(Float.self), y = e["y"]!.values(as: Double.self).map { Int($0) }
        let wrapped = try NormalizedClassifier(base, normalization: norm)
        let graph = try GraphModel(sequential: base).normalizingInput(norm)
        let layered = try base.prependingNormalization(norm)
        for batch in [1, 4, x.rows] {
            #expect(Self.relativeError(try wrapped.logits(x, batchSize: batch).elements, e["logits_normalized"]!.values(as: Float.self)) <= 1e-5)
            #expect(Self.relativeError(try graph.logits(x, batchSize: batch).elements, e["logits_normalized"]!.values(as: Float.self)) <= 1e-5)
            #expect(Self.relativeError(try layered.logits(x, batchSize: batch).elements, e["logits_normalized"]!.values(as: Float.self)) <= 1e-5)
        }
        let expectedGradient = e["ce_input_grad_normalized"]!.values(as: Float.self)
        #expect(Self.relativeError(try Self.crossEntropyGradient(wrapped, x, y), expectedGradient) <= 1e-5)
        #expect(Self.relativeError(try Self.crossEntropyGradient(graph, x, y), expectedGradient) <= 1e-5)
        #expect(Self.relativeError(try layered.inputGradient(x, labels: y).gradient.elements, expectedGradient) <= 1e-5)
        #expect(wrapped.inputImageShape == base.inputImageShape && wrapped.spec.hasPrefix("normalize("))
    }

    /// d(Σ CE)/dx of any classifier through the protocol's default.
    static func crossEntropyGradient<M: DifferentiableClassifier>(_ model: M, _ x: Matrix<Float>, _ y: [Int]) throws -> [Float] {
        let workspace = model.makeWorkspace(capacity: x.rows)
        var gradient = Matrix<Float>(rows: x.rows, columns: x.columns)
        var losses = [Float](repeating: 0, count: x.rows)
        x.withUnsafeBufferPointer { px in
            gradient.withUnsafeMutableBufferPointer { pg in
                y.withUnsafeBufferPointer { py in
                    losses.withUnsafeMutableBufferPointer { pl in
                        model.inputGradient(MatrixPointer(px.baseAddress!, rows: x.rows, columns: x.columns), labels: py.baseAddress!, targets: nil,
                                            loss: .crossEntropy, losses: pl.baseAddress!,
                                            into: MutableMatrixPointer(pg.baseAddress!, rows: x.rows, columns: x.columns),
                                            workspace: workspace, context: .inference)
                    }
                }
            }
        }
        return gradient.elements
    }

    /// On an MLP, for 1, per-block and per-feature normalisations: the wrapper equals the model with the
    /// normalisation folded into its first linear layer (W/std, b − W·mean/std, in Double), and its
    /// input gradient equals central finite differences of the summed cross-entropy (in Double over
    /// float32 logits, step 1e-2 on a smooth tanh model).
    static let normalizations: [([Float], [Float])] = [
        ([0.5], [2]), ([0.1, -0.2], [0.5, 3]), ([0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.75, 1, 1.25, 1.5, 1.75]),
    ]

    @Test(arguments: normalizations)
    func normalizedMLPEqualsFoldedFirstLayerAndFiniteDifferences(mean: [Float], std: [Float]) throws {
        var rng = Philox(seed: 11)
        let base = try ModelSpec.build("linear:6-8,tanh,linear:8-3", seed: 5)
        let norm = try InputNormalization(mean: mean, std: std)
        let wrapped = try NormalizedClassifier(base, normalization: norm)
        let (m, s) = try norm.perFeature(features: 6, image: nil)
        var folded = base
        var values = base.namedParameters.map(\.value)
        let w = values[0], b = values[1]
        values[0] = try Matrix(rows: 8, columns: 6, elements: (0..<48).map { Float(Double(w.elements[$0]) / Double(s[$0 % 6])) })
        values[1] = try Matrix(rows: 1, columns: 8, elements: (0..<8).map { o in
            Float(Double(b.elements[o]) - (0..<6).reduce(0.0) { $0 + Double(w.elements[o * 6 + $1]) * Double(m[$1]) / Double(s[$1]) })
        })
        folded.setParameters(values)
        let x = rng.matrix(rows: 5, columns: 6, as: Float.self), y = [0, 1, 2, 1, 0]
        #expect(Self.relativeError(try wrapped.logits(x).elements, try folded.logits(x).elements) <= 1e-5)
        let g = try Self.crossEntropyGradient(wrapped, x, y)
        #expect(Self.relativeError(g, try folded.inputGradient(x, labels: y).gradient.elements) <= 1e-5)
        // The library's layer stack (the fold into the first linear layer) is that model, up to rounding.
        let stack = try wrapped.layerStack()
        #expect(stack.layers.count == base.layers.count)
        #expect(Self.relativeError(try stack.logits(x).elements, try folded.logits(x).elements) <= 1e-6)
        // A model that starts with a flatten gets a diagonal linear layer in front instead.
        var flat = try ModelSpec.build("input:1x2x3,flatten,linear:6-8,tanh,linear:8-3", seed: 5)
        flat.setParameters(base.namedParameters.map(\.value))
        let flatStack = try NormalizedClassifier(flat, normalization: norm).layerStack()
        #expect(flatStack.layers.count == flat.layers.count + 1)
        #expect(Self.relativeError(try flatStack.logits(x).elements, try wrapped.logits(x).elements) <= 1e-5)
        func loss(_ x: Matrix<Float>) throws -> Double {
            let z = try wrapped.logits(x)
            return (0..<x.rows).reduce(0.0) { total, i in
                let row = (0..<3).map { Double(z.elements[i * 3 + $0]) }, top = row.max()!
                return total + log(row.map { exp($0 - top) }.reduce(0, +)) + top - row[y[i]]
            }
        }
        var numeric = [Float](repeating: 0, count: 30)
        for k in 0..<30 {
            var plus = x, minus = x
            plus.withUnsafeMutableBufferPointer { $0[k] += 1e-2 }
            minus.withUnsafeMutableBufferPointer { $0[k] -= 1e-2 }
            numeric[k] = Float((try loss(plus) - loss(minus)) / 2e-2)
        }
        #expect(Self.relativeError(g, numeric) <= 2e-3)
    }

    @Test func normalizationThatDoesNotFitTheInput() throws {
        let cnn = try Sequential.load(weights: Self.root + "/named_cnn.safetensors", spec: Self.cnnSpec)
        #expect(throws: ModelError.self) { try NormalizedClassifier(cnn, normalization: InputNormalization(mean: [0, 0], std: [1, 1])) }
        #expect(throws: ModelError.self) { try InputNormalization(mean: [0, 0], std: [1, 0]) }
        #expect(throws: ModelError.self) { try InputNormalization(mean: [.nan], std: [1]) }
        #expect(throws: ModelError.self) { try InputNormalization(mean: [0, 0], std: [1, 1, 1]) }
        let mlp = try ModelSpec.build("linear:6-3")
        #expect(throws: ModelError.self) { try NormalizedClassifier(mlp, normalization: InputNormalization(mean: [0, 0, 0, 0], std: [1])) }
        #expect(try NormalizedClassifier(mlp, normalization: InputNormalization(mean: [0, 0, 0], std: [1])).normalization.std == [1, 1, 1])
    }
}
