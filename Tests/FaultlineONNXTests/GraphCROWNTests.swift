import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import FaultlineRobustness
import Foundation
import Testing

/// CROWN on graphs that are layer chains (`LinearizedNetwork.chain`): a graph built from a ReLU
/// Sequential gets that Sequential's CROWN bounds; input normalisation nodes folded in Double give the
/// bounds of the Sequential with the normalisation prepended; on the ONNX export of a PyTorch MLP the
/// bounds are sound (sampled points) and never looser than IBP's; residual graphs are refused with
/// the node that stops them.
@Suite("graph CROWN")
struct GraphCROWNTests {
    static let specs = [
        "linear:12-16,relu,linear:16-16,relu,linear:16-6",
        "input:3x8x8,conv2d:3-5-3-1-0,relu,conv2d:5-4-1,flatten,linear:144-7",
        "input:2x6x6,conv2d:2-4-3-2-1,relu,avgpool:3,flatten,linear:4-5",
    ]

    @Test(arguments: specs, [PerturbationNorm.linf, .l2])
    func graphFromSequentialGetsTheSequentialsBounds(spec: String, norm: PerturbationNorm) throws {
        let s = try ModelSpec.build(spec, seed: 4)
        let sequential = try BoundPropagation(s), graph = try BoundPropagation(try GraphModel(sequential: s))
        #expect(graph.supportsCROWN && graph.crownUnavailableReason == nil)
        var rng = Philox(seed: 9)
        let x: Matrix<Float> = rng.matrix(rows: 3, columns: s.inputFeatures, .uniform(0, 1))
        for epsilon: Float in [0, 0.02, 0.2] {
            let region = BoundPropagation.Region(norm: norm, epsilon: epsilon, box: norm == .linf ? InputBox.unit : nil)
            let a = try sequential.logitBounds(x, region: region, method: .crown), b = try graph.logitBounds(x, region: region, method: .crown)
            #expect(GraphIntervalBoundTests.relative(b.lower, a.lower) <= 1e-9 && GraphIntervalBoundTests.relative(b.upper, a.upper) <= 1e-9,
                    "\(spec) ε \(epsilon)")
            let labels = [0, 1, 2]
            #expect(try graph.certify(x, labels: labels, region: region, method: .crown)
                    == sequential.certify(x, labels: labels, region: region, method: .crown))
        }
    }

    /// Sub/Div nodes in front of the graph (`normalizingInput`) fold into the first matrix: the bounds
    /// equal those of `prependingNormalization` on the Sequential (which folds in Float) to float rounding.
    @Test(arguments: [specs[0], specs[1]])
    func normalisationNodesFoldIntoTheFirstMatrix(spec: String) throws {
        let s = try ModelSpec.build(spec, seed: 6)
        let channels = s.inputImageShape?.channels ?? 1
        let normalization = try InputNormalization(mean: (0..<channels).map { 0.4 + 0.05 * Float($0) }, std: (0..<channels).map { 0.2 + 0.03 * Float($0) })
        let graph = try BoundPropagation(try GraphModel(sequential: s).normalizingInput(normalization))
        let sequential = try BoundPropagation(try s.prependingNormalization(normalization))
        var rng = Philox(seed: 2)
        let x: Matrix<Float> = rng.matrix(rows: 3, columns: s.inputFeatures, .uniform(0, 1))
        let region = BoundPropagation.Region(epsilon: 0.01)
        let a = try sequential.logitBounds(x, region: region, method: .crown), b = try graph.logitBounds(x, region: region, method: .crown)
        #expect(GraphIntervalBoundTests.relative(b.lower, a.lower) <= 1e-5 && GraphIntervalBoundTests.relative(b.upper, a.upper) <= 1e-5)
    }

    /// digits_mlp.onnx (a PyTorch nn.Sequential MLP exported by torch.onnx): CROWN is available, every
    /// logit at 2,000 random points of each L∞ region (box corners included) lies in its bounds, and the
    /// bounds are inside IBP's.
    @Test func onnxMLPIsSoundAndTighterThanIBP() throws {
        let model = try ONNXModel.load(path: "\(ONNXFixtureTests.root)/digits_mlp.onnx")
        let propagation = try BoundPropagation(model)
        #expect(propagation.supportsCROWN, "\(propagation.crownUnavailableReason ?? "")")
        var rng = Philox(seed: 5)
        let x: Matrix<Float> = rng.matrix(rows: 4, columns: model.inputFeatures, .uniform(0, 1))
        for epsilon: Float in [0.01, 0.05] {
            let region = BoundPropagation.Region(epsilon: epsilon)
            let crown = try propagation.logitBounds(x, region: region, method: .crown)
            let ibp = try propagation.logitBounds(x, region: region, method: .ibp)
            var tighter = false
            for i in 0..<x.rows {
                for k in 0..<model.outputFeatures {
                    #expect(crown.lower[i, k] >= ibp.lower[i, k] - 1e-6 && crown.upper[i, k] <= ibp.upper[i, k] + 1e-6)
                    if crown.upper[i, k] - crown.lower[i, k] < 0.99 * (ibp.upper[i, k] - ibp.lower[i, k]) { tighter = true }
                }
                var points = Matrix<Float>(rows: 2000, columns: model.inputFeatures)
                for p in 0..<2000 {
                    for j in 0..<model.inputFeatures {
                        let (lo, hi) = (max(x[i, j] - epsilon, 0), min(x[i, j] + epsilon, 1))
                        points[p, j] = p == 0 ? lo : (p == 1 ? hi : lo + (hi - lo) * Float(rng.uniform()))
                    }
                }
                let logits = try model.logits(points)
                for p in 0..<2000 {
                    for k in 0..<model.outputFeatures {
                        let z = Double(logits[p, k])
                        #expect(z >= crown.lower[i, k] - 1e-4 && z <= crown.upper[i, k] + 1e-4, "row \(i) point \(p) logit \(k)")
                    }
                }
            }
            #expect(tighter, "ε \(epsilon): CROWN never tighter than IBP")
        }
    }

    /// A residual graph has no layer chain: CROWN is refused naming the node, IBP still runs.
    @Test func residualGraphsAreRefusedNamingTheNode() throws {
        let model = try ONNXModel.load(path: "\(ONNXFixtureTests.root)/resnet.onnx")
        let propagation = try BoundPropagation(model)
        #expect(!propagation.supportsCROWN)
        let reason = propagation.crownUnavailableReason ?? ""
        #expect(reason.contains("node '") && reason.contains("chain"), "\(reason)")
        var rng = Philox(seed: 1)
        let x: Matrix<Float> = rng.matrix(rows: 1, columns: model.inputFeatures, .uniform(0, 1))
        do {
            _ = try propagation.logitBounds(x, region: .init(epsilon: 0.01), method: .crown)
            Issue.record("CROWN ran on a residual graph")
        } catch {
            #expect("\(error)".contains("--method ibp"), "\(error)")
        }
        _ = try propagation.logitBounds(x, region: .init(epsilon: 0.01), method: .ibp)
    }
}
