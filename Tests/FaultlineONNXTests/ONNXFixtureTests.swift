import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import Foundation
import Testing

/// Logits, feature taps and input gradients of imported ONNX models equal onnxruntime's and PyTorch
/// autograd's (fixtures from scripts/fixtures/make_onnx_fixtures.py) to ≤ 1e-5 relative to the
/// array's scale, for every fixture and batch sizes 1, 3 and 17.
@Suite("ONNX fixtures")
struct ONNXFixtureTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let fixtures = ["resnet", "depthwise", "mlp", "normalized", "mlp_external", "resnet_dynamo", "mlp_dynamo"]
    static let cases = fixtures.flatMap { f in [1, 3, 17].map { (f, $0) } }

    struct Fixture {
        let model: GraphModel
        let x: Matrix<Float>
        let labels: [Int]
        let logits: [Float]
        let features: [Float]
        let gradient: [Float]
        let tap: String

        init(_ name: String) throws {
            model = try ONNXModel.load(path: "\(root)/\(name).onnx")
            let data = name == "mlp_external" ? "mlp" : name
            func read(_ suffix: String) throws -> Tensor { try NPY.read("\(root)/\(data)_\(suffix).npy") }
            x = try read("x").matrix(Float.self)
            labels = try read("y").values(as: Double.self).map { Int($0) }
            logits = try read("logits").values(as: Float.self)
            features = try read("features").values(as: Float.self)
            gradient = try read("grad").values(as: Float.self)
            tap = try String(contentsOfFile: "\(root)/\(data)_tap.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// max |a − b| / max(max |b|, 1e-3).
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        let scale = max(b.map { abs(Double($0)) }.max() ?? 0, 1e-3)
        return zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / scale
    }

    /// Logits, the tap and d(Σ CE)/dx in batches of `batch` rows through the workspace API.
    static func run(_ f: Fixture, batch: Int, context: ForwardContext = .inference) -> (logits: [Float], tap: [Float], gradient: [Float]) {
        let m = f.model, rows = f.x.rows
        let workspace = m.makeWorkspace(capacity: batch)
        var logits: [Float] = [], tap: [Float] = []
        var gradient = [Float](repeating: .nan, count: rows * m.inputFeatures)
        var losses = [Float](repeating: 0, count: batch)
        f.x.withUnsafeBufferPointer { px in
            gradient.withUnsafeMutableBufferPointer { pg in
                for start in stride(from: 0, to: rows, by: batch) {
                    let n = min(batch, rows - start)
                    let xs = MatrixPointer(px.baseAddress! + start * m.inputFeatures, rows: n, columns: m.inputFeatures)
                    let z = m.logits(xs.base, rows: n, workspace: workspace, context: context)
                    logits += Array(UnsafeBufferPointer(start: z.base, count: n * m.outputFeatures))
                    let t = workspace.tensor(f.tap, rows: n)!
                    tap += Array(UnsafeBufferPointer(start: t.base, count: n * t.columns))
                    Array(f.labels[start..<(start + n)]).withUnsafeBufferPointer { py in
                        m.inputGradient(xs, labels: py.baseAddress!, targets: nil, loss: .crossEntropy, losses: &losses,
                                        into: MutableMatrixPointer(pg.baseAddress! + start * m.inputFeatures, rows: n, columns: m.inputFeatures),
                                        workspace: workspace, context: context)
                    }
                }
            }
        }
        return (logits, tap, gradient)
    }

    @Test(arguments: cases)
    func agreesWithOnnxruntimeAndAutograd(name: String, batch: Int) throws {
        let f = try Fixture(name)
        #expect(f.model.outputFeatures * f.x.rows == f.logits.count)
        let r = Self.run(f, batch: batch)
        #expect(Self.relativeError(r.logits, f.logits) <= 1e-5, "\(name) logits")
        #expect(Self.relativeError(r.tap, f.features) <= 1e-5, "\(name) tap \(f.tap)")
        #expect(Self.relativeError(r.gradient, f.gradient) <= 1e-5, "\(name) input gradient")
    }

    /// With the simd backend every row's logits and gradient are bit-identical for any batch size.
    @Test(arguments: fixtures)
    func batchSizeIndependent(name: String) throws {
        let f = try Fixture(name)
        let context = ForwardContext(backend: .simd)
        let whole = Self.run(f, batch: 17, context: context), single = Self.run(f, batch: 1, context: context), three = Self.run(f, batch: 3, context: context)
        #expect(whole.logits == single.logits && whole.logits == three.logits)
        #expect(whole.gradient == single.gradient && whole.gradient == three.gradient)
        #expect(whole.tap == single.tap)
    }

    /// The whole-matrix helpers: `logits(_:)` and `features(_:taps:)` give the same numbers.
    @Test func featuresHelper() throws {
        let f = try Fixture("resnet")
        let (logits, taps) = try f.model.features(f.x, taps: [f.tap, f.model.inputName], batchSize: 5)
        #expect(Self.relativeError(logits.elements, f.logits) <= 1e-5)
        #expect(Self.relativeError(taps[0].elements, f.features) <= 1e-5)
        #expect(taps[1].elements == f.x.elements)
        #expect(try f.model.logits(f.x, batchSize: 4).elements == logits.elements || Self.relativeError(try f.model.logits(f.x).elements, f.logits) <= 1e-5)
        #expect(throws: GraphError.self) { try f.model.features(f.x, taps: ["no such tensor"]) }
    }

    /// BatchNormalization nodes are folded into the convolutions before them (resnet keeps them in the
    /// file); the model knows its image shape.
    @Test func batchNormFoldedAndShapes() throws {
        let f = try Fixture("resnet")
        #expect(f.model.nodes.allSatisfy { if case .channelAffine = $0.operation { false } else { true } })
        #expect(f.model.inputImageShape == ImageShape(channels: 3, height: 16, width: 16))
        #expect(f.model.outputFeatures == 10)
        #expect(f.model.shape(of: f.tap) == [16])
        let mlp = try Fixture("mlp")
        #expect(mlp.model.inputImageShape == nil)
        #expect(mlp.model.spec.hasPrefix("graph:"))
        #expect(try Fixture("mlp_external").model.spec == mlp.model.spec)
    }
}
