import FaultlineLinalg
import FaultlineNN

/// The analysed model's penultimate features: the activations feeding its last linear layer (for a
/// `Sequential`, run as the equivalent graph; for an imported graph, the input of its last Gemm/MatMul
/// node, `GraphModel.penultimateTap`). OOD detectors on these features (Mahalanobis, Lee et al. 2018)
/// see what the classifier sees; on raw inputs they mostly see pixel statistics. nil when the model has
/// no such tap (a wrapped model, a graph ending in a convolution, or a single linear layer, whose
/// "features" are its inputs). Cost: one forward pass per call.
struct PenultimateFeatures {
    let graph: GraphModel
    let tap: String
    let width: Int

    init?(_ model: some DifferentiableClassifier) {
        let graph: GraphModel
        if let g = model as? GraphModel {
            graph = g
        } else if let s = model as? Sequential, let g = try? GraphModel(sequential: s) {
            graph = g
        } else {
            return nil
        }
        guard let tap = graph.penultimateTap, tap.name != graph.tensorNames.first else { return nil }
        (self.graph, self.tap, self.width) = (graph, tap.name, tap.features)
    }

    /// The features of every row of `x` (rows × `width`).
    func callAsFunction(_ x: Matrix<Float>) throws -> Matrix<Float> { try graph.features(x, taps: [tap]).taps[0] }

    /// What the report says about the space.
    var description: String { "the input of the model's last linear layer (tensor '\(tap)', \(width) features)" }
}
