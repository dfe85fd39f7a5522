import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// IBP and CROWN against auto_LiRPA 0.3 (scripts/fixtures/make_bounds_fixtures.py), and their
/// soundness on random models by sampling the input region.
@Suite("bound propagation")
struct BoundPropagationTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/bounds.npz").map { ($0.name, $0.tensor) })
    static let specs = [
        ("mlp", "linear:8-16,relu,linear:16-12,relu,linear:12-5"),
        ("cnn", "input:1x6x6,conv2d:1-3-3-1-1,relu,conv2d:3-2-3-2-0,relu,flatten,linear:8-4"),
    ]

    /// Equal to auto_LiRPA within 1e-5, except one documented case: on an L2 ball auto_LiRPA bounds a
    /// first *convolution* by the whole filter's norm, ε‖w_c‖₂, even at border outputs whose window
    /// overlaps the zero padding; we use the exact row norm of the materialised layer, which is never
    /// looser (checked in numpy: its IBP numbers are reproduced to 5e-8 by the filter-norm rule). For
    /// that case the test asks for bounds at least as tight.
    @Test(arguments: specs)
    func matchesAutoLiRPA(name: String, spec: String) throws {
        let model = try Sequential.load(weights: Self.root + "/bounds_\(name).safetensors", spec: spec)
        let bounds = try BoundPropagation(model)
        let x = try Self.arrays["\(name)_x"]!.matrix(Float.self)
        let y = Self.arrays["\(name)_y"]!.values(as: Double.self).map { Int($0) }
        for (region, key) in [(BoundPropagation.Region(norm: .linf, epsilon: 0.05), "linf"), (.init(norm: .l2, epsilon: 0.3, box: nil), "l2")] {
            for method in BoundPropagation.Method.allCases {
                let prefix = "\(name)_\(key)_\(method.rawValue)"
                let (lower, upper) = try bounds.logitBounds(x, region: region, method: method)
                let margins = try bounds.marginLowerBounds(x, labels: y, region: region, method: method)
                for (ours, reference) in [(lower, "lower"), (upper, "upper"), (margins, "margin")] {
                    let expected = Self.arrays["\(prefix)_\(reference)"]!.values(as: Double.self)
                    if name == "cnn" && key == "l2" {
                        let sign = reference == "upper" ? -1.0 : 1.0  // ours − theirs ≥ 0 for lower bounds
                        let worst = zip(ours.elements, expected).map { sign * ($0 - $1) }.min()!
                        #expect(worst >= -1e-5, "\(prefix)_\(reference): looser than auto_LiRPA by \(-worst)")
                    } else {
                        let error = zip(ours.elements, expected).map { abs($0 - $1) }.max()!
                        #expect(error <= 1e-5, "\(prefix)_\(reference): max error \(error)")
                    }
                }
            }
        }
    }

    /// Thousands of points sampled in the region (corners included for L∞) never leave the bounds;
    /// CROWN is never looser than IBP on the margins.
    @Test(arguments: [PerturbationNorm.linf, .l2])
    func boundsAreSoundAndCrownIsTighter(norm: PerturbationNorm) throws {
        var rng = Philox(seed: 12)
        for trial in 0..<4 {
            let model = try ModelSpec.build("linear:6-20,relu,linear:20-20,relu,linear:20-4", seed: UInt64(trial))
            let bounds = try BoundPropagation(model)
            let x: Matrix<Float> = rng.matrix(rows: 3, columns: 6, .uniform(0.1, 0.9))
            let eps: Float = norm == .linf ? 0.1 : 0.3
            let region = BoundPropagation.Region(norm: norm, epsilon: eps, box: norm == .linf ? InputBox.unit : nil)
            let labels = try model.predict(x)
            let ibp = try bounds.marginLowerBounds(x, labels: labels, region: region, method: .ibp)
            let crown = try bounds.marginLowerBounds(x, labels: labels, region: region, method: .crown)
            #expect(zip(crown.elements, ibp.elements).allSatisfy { $0 >= $1 - 1e-9 })
            for method in BoundPropagation.Method.allCases {
                let (lower, upper) = try bounds.logitBounds(x, region: region, method: method)
                for i in 0..<x.rows {
                    var samples = Matrix<Float>(rows: 2000, columns: 6)
                    for k in 0..<2000 {
                        var delta = (0..<6).map { _ in norm == .linf ? (rng.uniform() < 0.3 ? (rng.uniform() < 0.5 ? -1 : 1) : 2 * rng.uniform() - 1) : rng.normal() }
                        if norm == .l2 {
                            let length = delta.reduce(0) { $0 + $1 * $1 }.squareRoot()
                            delta = delta.map { $0 / length * Double(eps) * pow(rng.uniform(), 1.0 / 6) }
                        } else {
                            delta = delta.map { $0 * Double(eps) }
                        }
                        for j in 0..<6 {
                            let v = Float(Double(x[i, j]) + delta[j])
                            samples[k, j] = norm == .linf ? min(max(v, 0), 1) : v
                        }
                    }
                    let z = try model.logits(samples)
                    for k in 0..<2000 {
                        for j in 0..<4 {
                            #expect(Double(z[k, j]) >= lower[i, j] - 1e-5 && Double(z[k, j]) <= upper[i, j] + 1e-5)
                        }
                    }
                }
            }
        }
    }

    @Test func unsupportedLayersAndBadRegionsThrow() throws {
        let gelu = try ModelSpec.build("linear:4-8,gelu,linear:8-3", seed: 0)
        #expect(throws: CertificationError.self) { try BoundPropagation(gelu) }
        let tanh = try BoundPropagation(try ModelSpec.build("linear:4-8,tanh,linear:8-3", seed: 0))
        let x = Matrix<Float>(rows: 2, columns: 4, repeating: 0.5)
        _ = try tanh.logitBounds(x, region: .init(epsilon: 0.1), method: .ibp)
        #expect(throws: CertificationError.self) { try tanh.logitBounds(x, region: .init(epsilon: 0.1), method: .crown) }
        #expect(throws: CertificationError.self) { try tanh.logitBounds(x, region: .init(epsilon: -1), method: .ibp) }
        #expect(throws: CertificationError.self) { try tanh.marginLowerBounds(x, labels: [0, 3], region: .init(epsilon: 0.1), method: .ibp) }
    }

    /// The bounds are bit-identical for 1, 2 and 3 threads, and equal to 1e-9 relative for any subset of
    /// the rows (each row's bounds depend on that row alone, up to the last bits BLAS may round
    /// differently for products of another height), on a network with dead, stable and unstable ReLUs
    /// (ε from 0 to 0.3).
    @Test func boundsAreIndependentOfThreadsAndOfTheOtherRows() throws {
        var rng = Philox(seed: 5)
        let model = try ModelSpec.build("linear:12-40,relu,linear:40-30,relu,linear:30-5", seed: 9)
        let bounds = try BoundPropagation(model)
        let x: Matrix<Float> = rng.matrix(rows: 23, columns: 12, .uniform(0, 1))
        let labels = try model.predict(x)
        for eps: Float in [0, 0.02, 0.1, 0.3] {
            let region = BoundPropagation.Region(epsilon: eps)
            for method in BoundPropagation.Method.allCases {
                let reference = try Linalg.withThreads(1) { try bounds.marginLowerBounds(x, labels: labels, region: region, method: method) }
                for threads in [2, 3] {
                    let other = try Linalg.withThreads(threads) { try bounds.marginLowerBounds(x, labels: labels, region: region, method: method) }
                    #expect(other.elements.map(\.bitPattern) == reference.elements.map(\.bitPattern), "\(method) ε \(eps), \(threads) threads")
                }
                let rows = [4, 17, 0]
                let part = try bounds.marginLowerBounds(x.gatherRows(rows), labels: rows.map { labels[$0] }, region: region, method: method)
                for (k, i) in rows.enumerated() {
                    for (a, b) in zip(part.row(k), reference.row(i)) { #expect(abs(a - b) <= 1e-9 * max(1, abs(b)), "\(method) ε \(eps) row \(i)") }
                }
            }
        }
    }
}

/// The float32 backward products and their rounding budget (`BoundPropagation.precision`).
@Suite("bound propagation in float32")
struct Float32BoundTests {
    /// Logits of a Dense/ReLU `Sequential` at `x`, in float64 from its float32 weights: the function the
    /// bounds are about, without the model's own float32 rounding.
    static func exactLogits(_ model: Sequential, _ x: [Double]) -> [Double] {
        var v = x
        for layer in model.layers {
            if let dense = layer as? Dense {
                v = (0..<dense.outputFeatures).map { i in
                    (0..<dense.inputFeatures).reduce(Double(dense.bias[0, i])) { $0 + Double(dense.weight[i, $1]) * v[$1] }
                }
            } else if layer is Activation {
                v = v.map { max($0, 0) }
            }
        }
        return v
    }

    /// Without a ReLU the CROWN bound is the exact extremum of one linear map over the box, so the float32
    /// lower bound must not exceed the float64 minimum (and the upper not fall below the maximum) even where
    /// the float32 products round: with 512-term sums of mixed signs, the rounding budget is what keeps it
    /// sound. It costs at most twice the documented budget, (γ₅₁₂ + γ₃) Σ |W2||W1| h around the centre.
    @Test(arguments: [16, 512])
    func float32BoundsContainTheExactExtremaOfALinearMap(width: Int) throws {
        var rng = Philox(seed: UInt64(width))
        for trial in 0..<6 {
            let model = try ModelSpec.build("linear:24-\(width),linear:\(width)-3", seed: UInt64(trial))
            let bounds = try BoundPropagation(model)
            let x: Matrix<Float> = rng.matrix(rows: 5, columns: 24, .uniform(0, 1))
            let region = BoundPropagation.Region(epsilon: 0.3)
            let (lower, upper) = try bounds.logitBounds(x, region: region, method: .crown)
            // The composite map v = W2 W1 (float64), b = W2 b1 + b2, extremised over the clipped box.
            let (w1, w2) = (model.layers[0] as! Dense, model.layers[1] as! Dense)
            for i in 0..<x.rows {
                for k in 0..<3 {
                    var minimum = Double(w2.bias[0, k]), maximum = minimum
                    for h in 0..<width { minimum += Double(w2.weight[k, h]) * Double(w1.bias[0, h]) }
                    maximum = minimum
                    var halfWidths = [Double](repeating: 0, count: 24)
                    for j in 0..<24 {
                        var v = 0.0
                        for h in 0..<width { v += Double(w2.weight[k, h]) * Double(w1.weight[h, j]) }
                        let lo = max(Double(x[i, j]) - 0.3, 0), hi = min(Double(x[i, j]) + 0.3, 1)
                        minimum += min(v * lo, v * hi)
                        maximum += max(v * lo, v * hi)
                        halfWidths[j] = 0.5 * (hi - lo)
                    }
                    // The documented budget: about (γ_width + γ_3) Σₕ |w2ₖₕ| (|W1| h)ₕ around the centre.
                    var spread = 0.0
                    for h in 0..<width {
                        spread += abs(Double(w2.weight[k, h])) * (0..<24).reduce(0) { $0 + abs(Double(w1.weight[h, $1])) * halfWidths[$1] }
                    }
                    let gamma = Double(width + 3) * Float.unitRoundoff, scale = 1 + abs(minimum) + abs(maximum)
                    #expect(lower[i, k] <= minimum + 1e-12 * scale, "trial \(trial) row \(i) logit \(k): \(lower[i, k]) > \(minimum)")
                    #expect(upper[i, k] >= maximum - 1e-12 * scale)
                    #expect(minimum - lower[i, k] <= 2 * gamma * spread + 1e-9 * scale && upper[i, k] - maximum <= 2 * gamma * spread + 1e-9 * scale,
                            "the rounding budget \(minimum - lower[i, k]) exceeds 2γ·\(spread)")
                }
            }
        }
    }

    /// float32 and float64 CROWN agree to the float32 budget on networks with dead, stable and unstable
    /// ReLUs, for L∞ (with the box) and L2, and both contain the float64 logits at 10⁴ sampled points per
    /// input (a quarter of them corners of the L∞ box).
    @Test(arguments: [PerturbationNorm.linf, .l2])
    func float32AgreesWithFloat64AndBothAreSound(norm: PerturbationNorm) throws {
        var rng = Philox(seed: norm == .linf ? 31 : 32)
        let model = try ModelSpec.build("linear:10-64,relu,linear:64-48,relu,linear:48-32,relu,linear:32-4", seed: 3)
        var single = try BoundPropagation(model), double = single
        double.precision = .float64
        single.precision = .float32
        let x: Matrix<Float> = rng.matrix(rows: 4, columns: 10, .uniform(0.1, 0.9))
        for eps: Float in norm == .linf ? [0, 0.02, 0.1] : [0.1, 0.5] {
            let region = BoundPropagation.Region(norm: norm, epsilon: eps, box: norm == .linf ? .unit : nil)
            let (l32, u32) = try single.logitBounds(x, region: region, method: .crown)
            let (l64, u64) = try double.logitBounds(x, region: region, method: .crown)
            for (a, b) in zip(l32.elements, l64.elements) { #expect(a <= b + 1e-9 && b - a <= 1e-4 * (1 + abs(b)), "ε \(eps): \(a) vs \(b)") }
            for (a, b) in zip(u32.elements, u64.elements) { #expect(a >= b - 1e-9 && a - b <= 1e-4 * (1 + abs(b)), "ε \(eps): \(a) vs \(b)") }
            guard eps > 0 else { continue }
            for i in 0..<x.rows {
                for k in 0..<10_000 {
                    var point = (0..<10).map { _ in norm == .linf ? (k % 4 == 0 ? (rng.uniform() < 0.5 ? -1.0 : 1.0) : 2 * rng.uniform() - 1) : rng.normal() }
                    if norm == .l2 {
                        let length = point.reduce(0) { $0 + $1 * $1 }.squareRoot()
                        point = point.map { $0 / length * Double(eps) * pow(rng.uniform(), 0.1) }
                    } else {
                        point = point.map { $0 * Double(eps) }
                    }
                    let input = (0..<10).map { j in norm == .linf ? min(max(Double(x[i, j]) + point[j], 0), 1) : Double(x[i, j]) + point[j] }
                    let z = Self.exactLogits(model, input)
                    for j in 0..<4 {
                        #expect(z[j] >= l32[i, j] && z[j] <= u32[i, j], "row \(i) logit \(j): \(z[j]) outside [\(l32[i, j]), \(u32[i, j])]")
                    }
                }
            }
        }
    }

    /// Bounds are computed in blocks of samples and groups of rows: over 300 rows (more than a block)
    /// each row gets the bounds it gets alone or in a small batch, to 1e-9 relative (BLAS may round the
    /// last bits of products of another height differently), for IBP and CROWN in both precisions.
    @Test func blocksAndGroupsDoNotChangeAnyRow() throws {
        var rng = Philox(seed: 8)
        let model = try ModelSpec.build("linear:12-40,relu,linear:40-30,relu,linear:30-5", seed: 2)
        var bounds = try BoundPropagation(model)
        let x: Matrix<Float> = rng.matrix(rows: 300, columns: 12, .uniform(0, 1))
        let labels = try model.predict(x)
        let rows = [0, 127, 128, 299]
        for precision in BoundPropagation.Precision.allCases {
            bounds.precision = precision
            for method in BoundPropagation.Method.allCases {
                let region = BoundPropagation.Region(epsilon: 0.08)
                let all = try bounds.marginLowerBounds(x, labels: labels, region: region, method: method)
                let part = try bounds.marginLowerBounds(x.gatherRows(rows), labels: rows.map { labels[$0] }, region: region, method: method)
                for (k, i) in rows.enumerated() {
                    let alone = try bounds.marginLowerBounds(x.gatherRows([i]), labels: [labels[i]], region: region, method: method)
                    for (a, (b, c)) in zip(all.row(i), zip(part.row(k), alone.row(0))) {
                        #expect(abs(a - b) <= 1e-9 * max(1, abs(a)) && abs(a - c) <= 1e-9 * max(1, abs(a)), "\(precision) \(method) row \(i)")
                    }
                }
            }
        }
    }
}
