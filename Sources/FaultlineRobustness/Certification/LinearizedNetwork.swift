import FaultlineLinalg
import FaultlineNN

/// A `Sequential` model as a chain of Double-precision stages for bound propagation: every linear
/// layer (Dense, Conv2d, average pooling) becomes an explicit affine map, Flatten disappears, and
/// element-wise activations and max pooling stay as they are.
///
/// Convolutions and average pooling are materialised by pushing the identity through a bias-free
/// copy of the layer (each output is then a single product, so the matrix is exact), which costs
/// inputs × outputs memory: meant for the small networks certification is run on.
struct LinearizedNetwork: Sendable {
    enum Stage: Sendable {
        /// y = W x + b, W outputs × inputs.
        case affine(weight: Matrix<Double>, bias: [Double])
        case activation(Activation.Kind, layer: Int)
        case maxPool(Pool2d, layer: Int)
    }

    let stages: [Stage]
    let inputFeatures: Int
    let outputFeatures: Int

    init(_ model: Sequential) throws {
        var stages: [Stage] = []
        for (index, layer) in model.layers.enumerated() {
            switch layer {
            case let dense as Dense:
                stages.append(.affine(weight: dense.weight.converted(to: Double.self), bias: dense.bias.elements.map(Double.init)))
            case var conv as Conv2d:
                let bias = conv.bias.elements.map(Double.init)
                conv.bias = Matrix(rows: 1, columns: conv.bias.columns)
                let perChannel = conv.output.height * conv.output.width
                stages.append(.affine(weight: try LinearizedNetwork.materialise(conv),
                                      bias: (0..<conv.outputFeatures).map { bias[$0 / perChannel] }))
            case let pool as Pool2d where pool.kind == .average:
                stages.append(.affine(weight: try LinearizedNetwork.materialise(pool), bias: [Double](repeating: 0, count: pool.outputFeatures)))
            case let pool as Pool2d:
                stages.append(.maxPool(pool, layer: index))
            case let activation as Activation:
                stages.append(.activation(activation.kind, layer: index))
            case is Flatten, is Dropout:
                continue  // Flatten is the identity on rows; dropout is the identity at inference
            default:
                throw CertificationError.unsupportedLayer("layer \(index) '\(layer.spec)' has no bound propagation rule (use Dense, Conv2d, pooling, Flatten and ReLU/leaky ReLU/tanh/sigmoid)")
            }
        }
        self.stages = stages
        inputFeatures = model.inputFeatures
        outputFeatures = model.outputFeatures
    }

    /// The matrix of a bias-free linear layer: column j is the layer applied to the unit vector e_j.
    static func materialise(_ layer: any Layer) throws -> Matrix<Double> {
        let model = try Sequential([layer])
        var identity = Matrix<Float>(rows: layer.inputFeatures, columns: layer.inputFeatures)
        for j in 0..<layer.inputFeatures { identity[j, j] = 1 }
        let columns = try model.logits(identity)  // row j = W e_j
        var weight = Matrix<Double>(rows: layer.outputFeatures, columns: layer.inputFeatures)
        for j in 0..<layer.inputFeatures {
            for i in 0..<layer.outputFeatures { weight[i, j] = Double(columns[j, i]) }
        }
        return weight
    }
}
