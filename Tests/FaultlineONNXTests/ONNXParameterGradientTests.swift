import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import Foundation
import Testing

/// One SGD step's parameter gradients (mean cross-entropy over the fixture's 17 rows) of imported ONNX
/// models equal PyTorch autograd's on the same model with BatchNorm fused into its convolutions
/// (NAME_param_grad.npy/.txt from scripts/fixtures/make_onnx_fixtures.py): ≤ 1e-5 relative (max |diff| /
/// max |reference|) per node and parameter, for batch sizes 1, 5 and 17.
@Suite("ONNX parameter gradients")
struct ONNXParameterGradientTests {
    static let cases = ["resnet", "depthwise", "mlp"].flatMap { f in [1, 5, 17].map { (f, $0) } }

    @Test(arguments: cases)
    func agreesWithAutograd(name: String, batch: Int) throws {
        let root = ONNXFixtureTests.root
        let model = try ONNXModel.load(path: "\(root)/\(name).onnx")
        let x = try NPY.read("\(root)/\(name)_x.npy").matrix(Float.self)
        let labels = try NPY.read("\(root)/\(name)_y.npy").values(as: Double.self).map { Int($0) }
        let reference = try NPY.read("\(root)/\(name)_param_grad.npy").values(as: Float.self)
        let lines = try String(contentsOfFile: "\(root)/\(name)_param_grad.txt", encoding: .utf8).split(separator: "\n")
        let (_, gradients) = try model.parameterGradients(x, labels: labels, batchSize: batch)
        // The fixture lists nodes in ONNX order, the model in its schedule order: match by node name.
        #expect(Set(model.trainableNodes) == Set(lines.map { String($0.split(separator: "\t")[0]) }) && lines.count == gradients.count)
        let byName = Dictionary(uniqueKeysWithValues: gradients.map { ($0.node, $0) })
        var offset = 0
        for line in lines {
            let fields = line.split(separator: "\t")
            guard let g = byName[String(fields[0])] else { continue }
            let (weights, biases) = (Int(fields[1])!, Int(fields[2])!)
            #expect(g.weight.count == weights && g.bias.count == biases, "\(g.node)")
            guard g.weight.count == weights && g.bias.count == biases else { return }
            let w = Array(reference[offset..<(offset + weights)]), b = Array(reference[(offset + weights)..<(offset + weights + biases)])
            offset += weights + biases
            #expect(ONNXFixtureTests.relativeError(g.weight.elements, w) <= 1e-5, "\(name) \(g.node) weight, batch \(batch)")
            #expect(ONNXFixtureTests.relativeError(g.bias, b) <= 1e-5, "\(name) \(g.node) bias, batch \(batch)")
        }
        #expect(offset == reference.count)
    }
}
