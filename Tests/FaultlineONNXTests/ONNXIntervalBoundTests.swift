import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import FaultlineRobustness
import Foundation
import Testing

/// IBP bounds on the ResNet fixture (BatchNorm folded, residual adds, max pooling, global average
/// pooling) hold for 10⁴ points per input and ε: uniform in the ε-box ∩ [0, 1] and its corners.
@Suite("ONNX interval bounds")
struct ONNXIntervalBoundTests {
    static let cases: [(Int, Float)] = [(0, 0.001), (3, 0.01), (7, 0.03), (11, 0.1)]

    @Test(arguments: cases)
    func resnetBoundsHoldForSampledPoints(row: Int, epsilon: Float) throws {
        let model = try ONNXModel.load(path: "\(ONNXFixtureTests.root)/resnet.onnx")
        let x = try NPY.read("\(ONNXFixtureTests.root)/resnet_x.npy").matrix(Float.self)
        let bounds = try BoundPropagation(model)
        let x0 = x.row(row).map { min(max($0, 0), 1) }
        var rng = Philox(seed: UInt64(row) + 1)
        let excess = try GraphIntervalBoundTests.worstExcess(model, bounds, x0, epsilon: epsilon, box: 0...1, points: 10_000, rng: &rng)
        #expect(excess <= 1e-5, "row \(row) ε \(epsilon): a sampled logit leaves the bounds by \(excess) (relative)")
        // Bounds widen with ε and hold the clean logits.
        let one = try Matrix(rows: 1, columns: x0.count, elements: x0)
        let narrow = try bounds.logitBounds(one, region: .init(epsilon: epsilon / 2), method: .ibp)
        let wide = try bounds.logitBounds(one, region: .init(epsilon: epsilon), method: .ibp)
        #expect(zip(wide.lower.elements, narrow.lower.elements).allSatisfy { $0 <= $1 } && zip(wide.upper.elements, narrow.upper.elements).allSatisfy { $0 >= $1 })
    }

    /// At ε = 0 lower = upper = the logits (float rounding) for every fixture input, and every correctly
    /// classified row is certified.
    @Test func zeroEpsilonGivesTheLogits() throws {
        let model = try ONNXModel.load(path: "\(ONNXFixtureTests.root)/resnet.onnx")
        let x = try NPY.read("\(ONNXFixtureTests.root)/resnet_x.npy").matrix(Float.self)
        let labels = try NPY.read("\(ONNXFixtureTests.root)/resnet_y.npy").values(as: Double.self).map { Int($0) }
        let bounds = try BoundPropagation(model)
        let region = BoundPropagation.Region(epsilon: 0, box: nil)
        let (lower, upper) = try bounds.logitBounds(x, region: region, method: .ibp)
        let z = try model.logits(x)
        let scale = z.elements.map { abs(Double($0)) }.max()!
        #expect(lower.elements == upper.elements)
        #expect(zip(lower.elements, z.elements).map { abs($0 - Double($1)) }.max()! <= 1e-5 * scale)
        let predicted = try model.predict(x)
        #expect(try bounds.certify(x, labels: labels, region: region, method: .ibp) == zip(predicted, labels).map { $0 == $1 })
    }
}
