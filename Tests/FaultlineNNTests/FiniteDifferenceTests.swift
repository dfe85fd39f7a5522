import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// Every layer and loss against central finite differences of an independent float64 forward pass
/// (written out below from the layer definitions), evaluated with the model's own float32 weights.
@Suite("finite-difference gradient checks")
struct FiniteDifferenceTests {
    /// Float64 forward pass of a Sequential built from Dense + activations (dropout in eval mode).
    static func forward64(_ model: Sequential, _ x: [Double]) -> [Double] {
        var h = x
        for layer in model.layers {
            if let dense = layer as? Dense {
                let w = dense.weight, b = dense.bias
                h = (0..<w.rows).map { i in (0..<w.columns).reduce(Double(b[0, i])) { $0 + Double(w[i, $1]) * h[$1] } }
            } else if let conv = layer as? Conv2d {
                let (i, o, k, s, p) = (conv.input, conv.output, conv.kernel, conv.stride, conv.padding)
                var y = [Double](repeating: 0, count: o.features)
                for oc in 0..<o.channels {
                    for oy in 0..<o.height {
                        for ox in 0..<o.width {
                            var sum = Double(conv.bias[0, oc])
                            for ic in 0..<i.channels {
                                for ky in 0..<k {
                                    for kx in 0..<k {
                                        let iy = oy * s + ky - p, ix = ox * s + kx - p
                                        guard iy >= 0, iy < i.height, ix >= 0, ix < i.width else { continue }
                                        sum += Double(conv.weight[oc, (ic * k + ky) * k + kx]) * h[(ic * i.height + iy) * i.width + ix]
                                    }
                                }
                            }
                            y[(oc * o.height + oy) * o.width + ox] = sum
                        }
                    }
                }
                h = y
            } else if let pool = layer as? Pool2d {
                let (i, o, k, s) = (pool.input, pool.output, pool.kernel, pool.stride)
                h = (0..<o.features).map { index in
                    let (c, oy, ox) = (index / (o.height * o.width), (index / o.width) % o.height, index % o.width)
                    let window = (0..<(k * k)).map { h[(c * i.height + oy * s + $0 / k) * i.width + ox * s + $0 % k] }
                    return pool.kind == .max ? window.max()! : window.reduce(0, +) / Double(k * k)
                }
            } else if let sm = layer as? SoftmaxLayer {
                let m = h.max()!
                let lse = m + Foundation.log(h.reduce(0) { $0 + Foundation.exp($1 - m) })
                h = h.map { sm.logarithmic ? $0 - lse : Foundation.exp($0 - lse) }
            } else if let a = layer as? Activation {
                h = h.map { v in
                    switch a.kind {
                    case .relu: return max(v, 0)
                    case .leakyReLU(let s): return v > 0 ? v : Double(s) * v
                    case .tanh: return Foundation.tanh(v)
                    case .sigmoid: return 1 / (1 + Foundation.exp(-v))
                    case .gelu: return 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))
                    }
                }
            }
        }
        return h
    }

    static func loss64(_ z: [Double], _ y: Int, _ loss: Loss, target: Int = 0) -> Double {
        let sorted = z.sorted(by: >)
        let other = z.enumerated().filter { $0.offset != y }.map(\.element).max()!
        switch loss {
        case .crossEntropy:
            let m = z.max()!
            return m + Foundation.log(z.reduce(0) { $0 + Foundation.exp($1 - m) }) - z[y]
        case .margin: return other - z[y]
        case .dlr: return -(z[y] - other) / (sorted[0] - sorted[2] + 1e-12)
        case .targetedDLR: return -(z[y] - z[target]) / (sorted[0] - 0.5 * (sorted[2] + sorted[3]) + 1e-12)
        }
    }

    static let specs = [
        "linear:5-7,relu,linear:7-6",
        "linear:5-7,leakyrelu:0.1,linear:7-6",
        "linear:5-7,tanh,linear:7-6",
        "linear:5-7,sigmoid,linear:7-6",
        "linear:5-7,gelu,linear:7-6",
        "linear:5-7,dropout:0.3,flatten,linear:7-6",
        "linear:5-7,softmax,linear:7-6",
        "linear:5-6,logsoftmax",
        "input:1x5x1,conv2d:1-2-3-1-1,tanh,flatten,linear:10-6",
        "input:1x5x1,conv2d:1-3-2-2-1,sigmoid,maxpool:1,flatten,linear:9-6",
    ]

    /// Convolution and pooling on images (the input must be 5 features for the shared test below, so
    /// these take 5×1 images; `imageSpecs` covers square images, strides and both pools).
    static let imageSpecs = [
        "input:2x6x6,conv2d:2-3-3-1-1,tanh,maxpool:2,flatten,linear:27-6",
        "input:2x6x6,conv2d:2-3-3-2-0,gelu,avgpool:2-1,flatten,linear:3-6",
    ]

    @Test(arguments: imageSpecs)
    func imageInputGradients(spec: String) throws {
        let model = try ModelSpec.build(spec, seed: 6)
        var rng = Philox(seed: 12)
        let x: Matrix<Float> = rng.matrix(rows: 2, columns: 72, .uniform(-1, 1))
        let labels = [1, 4]
        let analytic = try model.inputGradient(x, labels: labels)
        for i in 0..<2 {
            let row = x.row(i).map(Double.init)
            for j in stride(from: 0, to: 72, by: 5) {
                var plus = row, minus = row
                plus[j] += 1e-6
                minus[j] -= 1e-6
                let fd = (Self.loss64(Self.forward64(model, plus), labels[i], .crossEntropy)
                    - Self.loss64(Self.forward64(model, minus), labels[i], .crossEntropy)) / 2e-6
                #expect(abs(Double(analytic.gradient[i, j]) - fd) <= 2e-4 * max(1, abs(fd)), "\(spec) row \(i) feature \(j)")
            }
        }
        let (_, gradients) = try model.parameterGradients(x, labels: labels)
        let w = model.namedParameters[0].value
        for index in stride(from: 0, to: w.count, by: 7) {
            var plus = model, minus = model
            var p = model.namedParameters.map(\.value), q = p
            p[0].withUnsafeMutableBufferPointer { $0[index] += 1e-5 }
            q[0].withUnsafeMutableBufferPointer { $0[index] -= 1e-5 }
            plus.setParameters(p)
            minus.setParameters(q)
            func mean(_ m: Sequential) -> Double { (0..<2).reduce(0) { $0 + Self.loss64(Self.forward64(m, x.row($1).map(Double.init)), labels[$1], .crossEntropy) } / 2 }
            let fd = (mean(plus) - mean(minus)) / (Double(p[0].elements[index]) - Double(q[0].elements[index]))
            #expect(abs(Double(gradients[0].elements[index]) - fd) <= 1e-3 * max(1, abs(fd)), "\(spec) conv weight \(index)")
        }
    }

    /// Inputs are drawn until no ReLU/LeakyReLU pre-activation is within 1e-3 of its kink, so the
    /// finite differences never straddle one.
    @Test(arguments: specs)
    func inputGradients(spec: String) throws {
        let model = try ModelSpec.build(spec, seed: 3)
        var rng = Philox(seed: 9)
        let x: Matrix<Float> = rng.matrix(rows: 6, columns: 5, .uniform(-1, 1))
        let labels = [0, 1, 2, 3, 4, 5]
        let targets = [1, 2, 3, 4, 5, 0]
        for loss in [Loss.crossEntropy, .margin, .dlr, .targetedDLR] {
            let analytic = try model.inputGradient(x, labels: labels, loss: loss, targets: loss == .targetedDLR ? targets : nil)
            for i in 0..<x.rows {
                let row = x.row(i).map(Double.init)
                for j in 0..<5 {
                    let h = 1e-6
                    var plus = row, minus = row
                    plus[j] += h
                    minus[j] -= h
                    let fd = (Self.loss64(Self.forward64(model, plus), labels[i], loss, target: targets[i])
                        - Self.loss64(Self.forward64(model, minus), labels[i], loss, target: targets[i])) / (2 * h)
                    let a = Double(analytic.gradient[i, j])
                    #expect(abs(a - fd) <= 2e-4 * max(1, abs(fd)), "\(spec) \(loss) row \(i) feature \(j): analytic \(a), FD \(fd)")
                }
            }
        }
    }

    @Test(arguments: specs)
    func parameterGradients(spec: String) throws {
        let model = try ModelSpec.build(spec, seed: 4)
        var rng = Philox(seed: 10)
        let x: Matrix<Float> = rng.matrix(rows: 4, columns: 5, .uniform(-1, 1))
        let labels = [5, 0, 3, 1]
        let (_, gradients) = try model.parameterGradients(x, labels: labels)
        func meanLoss(_ m: Sequential) -> Double {
            (0..<4).reduce(0) { $0 + Self.loss64(Self.forward64(m, x.row($1).map(Double.init)), labels[$1], .crossEntropy) } / 4
        }
        // Perturb a sample of parameters in every tensor (in Double through a copy of the model).
        for (k, (name, value)) in model.namedParameters.enumerated() {
            for index in stride(from: 0, to: value.count, by: max(1, value.count / 5)) {
                var plus = model, minus = model
                let h: Float = 1e-3
                var p = model.namedParameters.map(\.value), q = p
                p[k].withUnsafeMutableBufferPointer { $0[index] += h }
                q[k].withUnsafeMutableBufferPointer { $0[index] -= h }
                plus.setParameters(p)
                minus.setParameters(q)
                let step = Double(p[k].elements[index]) - Double(q[k].elements[index])
                let fd = (meanLoss(plus) - meanLoss(minus)) / step
                let a = Double(gradients[k].elements[index])
                #expect(abs(a - fd) <= 1e-3 * max(1, abs(fd)), "\(spec) \(name)[\(index)]: analytic \(a), FD \(fd)")
            }
        }
    }

    /// Dropout in training mode: the backward pass must apply the same mask as the forward pass. The
    /// model is linear between the input and the loss's logits, so central differences of the model's own
    /// float32 loss (same seed, pass and sample indices) are exact up to rounding.
    @Test func dropoutTrainingModeUsesTheForwardMask() throws {
        let model = try ModelSpec.build("linear:5-7,dropout:0.5,linear:7-6", seed: 8)
        var rng = Philox(seed: 13)
        let x: Matrix<Float> = rng.matrix(rows: 4, columns: 5, .uniform(-1, 1))
        let labels = [0, 3, 5, 1]
        let context = ForwardContext(training: true, seed: 21, pass: 3)
        let analytic = try model.inputGradient(x, labels: labels, context: context)
        for i in 0..<4 {
            for j in 0..<5 {
                var plus = x, minus = x
                plus[i, j] += 1e-2
                minus[i, j] -= 1e-2
                let lp = try model.inputGradient(plus, labels: labels, context: context).losses[i]
                let lm = try model.inputGradient(minus, labels: labels, context: context).losses[i]
                let fd = Double(lp - lm) / 2e-2
                #expect(abs(Double(analytic.gradient[i, j]) - fd) <= 2e-3 * max(1, abs(fd)), "row \(i) feature \(j)")
            }
        }
        // And the mask really drops: training-mode logits differ from evaluation-mode logits.
        #expect(try model.logits(x, context: context) != model.logits(x))
    }
}
