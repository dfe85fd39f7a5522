import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import FaultlineRobustness
import Foundation
import Testing

/// Training imported graphs (`GraphModel: TrainableClassifier`): the trainer and every defence on a
/// graph equal the same training of the `Sequential` the graph was made from; on the residual ONNX
/// fixture one SGD step equals θ − lr·g with g PyTorch autograd's gradient, and a PGD-AT step equals
/// PGD on the graph followed by a plain gradient step.
@Suite("graph training")
struct GraphTrainingTests {
    static let digits = try! BundledDatasets.digits().stratifiedSplit(seed: 0)

    static func defences() throws -> [(String, TrainingOptions)] {
        let base = TrainingOptions(epochs: 2, batchSize: 32, optimizer: .adam(learningRate: 1e-3), seed: 5)
        var pgd = base, fast = base, noise = base, trades = base, corrupt = base, check = base
        pgd.augmentation = try AdversarialTraining.pgd(epsilon: 0.1, steps: 3, seed: 1)
        fast.augmentation = try AdversarialTraining.fast(epsilon: 0.1, seed: 1)
        noise.augmentation = try AdversarialTraining(.gaussianNoise(sigma: 0.1), seed: 1)
        trades.objective = try TRADES(beta: 3, epsilon: 0.1, steps: 2, seed: 1)
        corrupt.augmentation = try CorruptionAugmentation([.contrast, .gaussianNoise], shape: ImageShape(channels: 1, height: 8, width: 8), seed: 1)
        check.epochCheck = try CatastrophicOverfittingCheck(batch: digits.calibration.subset(Array(0..<64)), epsilon: 0.1, seed: 1)
        return [("standard", base), ("pgd", pgd), ("fast", fast), ("noise", noise), ("trades", trades), ("corruptions", corrupt), ("check", check)]
    }

    /// The same options on a Sequential and on the graph made from it give the same weights, within
    /// 1e-4 of the largest weight after two epochs (the graph's convolution kernels sum in another
    /// order; sign steps can amplify an ulp: 1.6e-5 measured for TRADES on the CNN, < 1e-5 elsewhere).
    @Test(arguments: ["linear:64-24,relu,linear:24-10", "input:1x8x8,conv2d:1-4-3-1-1,relu,conv2d:4-6-3-2-1,relu,flatten,linear:96-10"])
    func graphTrainingEqualsSequentialTraining(spec: String) throws {
        for (name, options) in try Self.defences() {
            var sequential = try ModelSpec.build(spec, seed: 3)
            var graph = try GraphModel(sequential: sequential)
            let a = try sequential.train(on: Self.digits.train.subset(Array(0..<256)), options: options)
            let b = try graph.train(on: Self.digits.train.subset(Array(0..<256)), options: options)
            #expect(a.epochs == b.epochs && a.stopReason == b.stopReason, "\(name)")
            let s = sequential.namedParameters.map(\.value), g = graph.namedParameters.map(\.value)
            #expect(s.count == g.count, "\(name)")
            for (p, q) in zip(s, g) {
                let scale = p.elements.map { abs($0) }.max() ?? 1
                let difference = zip(p.elements, q.elements).map { abs($0 - $1) }.max() ?? 0
                #expect(p.count == q.count && difference <= 1e-4 * max(scale, 1), "\(spec) \(name): differs by \(difference)")
            }
        }
    }

    /// One SGD step over the whole fixture batch (17 rows) on the residual ONNX model: θ' = θ − 0.1·g
    /// with g PyTorch autograd's mean cross-entropy gradient (resnet_param_grad.npy).
    @Test func sgdStepOnAResidualGraphMatchesAutograd() throws {
        let root = ONNXFixtureTests.root
        var model = try ONNXModel.load(path: "\(root)/resnet.onnx")
        let x = try NPY.read("\(root)/resnet_x.npy").matrix(Float.self)
        let labels = try NPY.read("\(root)/resnet_y.npy").values(as: Double.self).map { Int($0) }
        let reference = try NPY.read("\(root)/resnet_param_grad.npy").values(as: Float.self)
        let lines = try String(contentsOfFile: "\(root)/resnet_param_grad.txt", encoding: .utf8).split(separator: "\n")
        var offsets: [String: (Int, Int, Int)] = [:], offset = 0
        for line in lines {
            let f = line.split(separator: "\t")
            offsets[String(f[0])] = (offset, Int(f[1])!, Int(f[2])!)
            offset += Int(f[1])! + Int(f[2])!
        }
        let before = model.parameters
        let data = try LabeledDataset(name: "resnet", features: x, labels: labels, classCount: model.outputFeatures)
        try model.train(on: data, options: TrainingOptions(epochs: 1, batchSize: x.rows, optimizer: .sgd(learningRate: 0.1)))
        for (old, new) in zip(before, model.parameters) {
            let (start, weights, biases) = try #require(offsets[old.node])
            let g = Array(reference[start..<(start + weights + biases)])
            for (k, (p, q)) in zip(old.weight.elements + old.bias, new.weight.elements + new.bias).enumerated() {
                let expected = p - 0.1 * g[k]
                #expect(abs(q - expected) <= 1e-6 + 1e-5 * abs(p), "\(old.node)[\(k)]: \(q) vs \(expected)")
            }
        }
    }

    /// A PGD-AT step on the residual graph is PGD from the step's start followed by a gradient step on
    /// the examples: the trainer's weights equal that composition computed by hand.
    @Test func pgdTrainingStepOnAResidualGraph() throws {
        let root = ONNXFixtureTests.root
        let model = try ONNXModel.load(path: "\(root)/resnet.onnx")
        let x = try NPY.read("\(root)/resnet_x.npy").matrix(Float.self)
        let labels = try NPY.read("\(root)/resnet_y.npy").values(as: Double.self).map { Int($0) }
        let lo = x.elements.min()!, hi = x.elements.max()!
        let box = InputBox(lo...hi)
        let defence = try AdversarialTraining.pgd(epsilon: 0.05, steps: 3, box: box, seed: 9)
        var trained = model
        let data = try LabeledDataset(name: "resnet", features: x, labels: labels, classCount: model.outputFeatures)
        var options = TrainingOptions(epochs: 1, batchSize: x.rows, optimizer: .sgd(learningRate: 0.05), seed: 2)
        options.augmentation = defence
        try trained.train(on: data, options: options)
        // By hand: the trainer's batch order (Philox(seed 2, stream 0) shuffle), the defence at step 0, the gradient step.
        var order = Array(0..<x.rows)
        var rng = Philox(seed: 2, stream: 0)
        for i in stride(from: x.rows - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.uniform() * Double(i + 1))) }
        var batch = try Matrix<Float>(order.map { Array(x.elements[($0 * x.columns)..<(($0 + 1) * x.columns)]) })
        let batchLabels = order.map { labels[$0] }
        let fresh = try AdversarialTraining.pgd(epsilon: 0.05, steps: 3, box: box, seed: 9)
        try batch.withUnsafeMutableBufferPointer { p in
            try batchLabels.withUnsafeBufferPointer { l in
                try fresh.augment(model, rows: MutableMatrixPointer(p.baseAddress!, rows: x.rows, columns: x.columns), labels: l.baseAddress!, step: 0, epoch: 0)
            }
        }
        for r in 0..<x.rows {
            for j in 0..<x.columns {
                let a = batch.elements[r * x.columns + j], c = x.elements[order[r] * x.columns + j]
                #expect(abs(a - c) <= 0.05 + 1e-6 && a >= lo && a <= hi)
            }
        }
        var manual = model
        let (_, gradients) = try manual.parameterGradients(batch, labels: batchLabels, batchSize: x.rows)
        try manual.applyGradientStep(gradients, learningRate: 0.05)
        for (p, q) in zip(trained.parameters, manual.parameters) {
            for (u, v) in zip(p.weight.elements + p.bias, q.weight.elements + q.bias) { #expect(abs(u - v) <= 1e-6 + 1e-5 * abs(v), "\(p.node)") }
        }
    }

    /// Bad parameter lists are typed errors naming the graph's node, and leave the model unchanged.
    @Test func graphsRefuseMisfitParameters() throws {
        var model = try GraphModel(sequential: try ModelSpec.build("linear:4-3,relu,linear:3-2", seed: 1))
        let before = model.namedParameters.map(\.value)
        #expect(throws: GraphError.self) { try model.setParameters(Array(before.dropLast())) }
        var bad = before
        bad[0] = Matrix(rows: before[0].rows, columns: before[0].columns, repeating: .nan)
        #expect(throws: GraphError.self) { try model.setParameters(bad) }
        #expect(model.namedParameters.map(\.value.elements) == before.map(\.elements))
    }
}
