import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// The unfold/fold behind every convolution (`Conv2d` and the graph executor's), against a direct
/// float64 convolution and its adjoint, over a family of geometries: strides above and below the
/// kernel (gaps and overlaps), dilation, asymmetric padding larger than the kernel, outputs that leave
/// the last input rows unread, 1×1 images and kernels, groups; batch sizes 1 and 3 and 1 or 2 threads.
@Suite("convolution unfold and fold")
struct ConvolutionUnfoldTests {
    struct Geometry: CustomStringConvertible, Sendable {
        var channels, outputs, height, width, kh, kw, sh, sw, dh, dw, groups: Int
        var pads: (top: Int, left: Int, bottom: Int, right: Int)
        var outHeight: Int { (height + pads.top + pads.bottom - dh * (kh - 1) - 1) / sh + 1 }
        var outWidth: Int { (width + pads.left + pads.right - dw * (kw - 1) - 1) / sw + 1 }
        var valid: Bool {
            height + pads.top + pads.bottom >= dh * (kh - 1) + 1 && width + pads.left + pads.right >= dw * (kw - 1) + 1
        }
        var description: String {
            "\(channels)x\(height)x\(width)→\(outputs) k\(kh)x\(kw) s\(sh)x\(sw) d\(dh)x\(dw) p\(pads) g\(groups)"
        }
    }

    /// Hand-picked corners plus a seeded random family.
    static let geometries: [Geometry] = {
        var list: [Geometry] = [
            // MNIST's two convolutions (stride 2 over a kernel of 4, padding 1).
            .init(channels: 1, outputs: 3, height: 28, width: 28, kh: 4, kw: 4, sh: 2, sw: 2, dh: 1, dw: 1, groups: 1, pads: (1, 1, 1, 1)),
            .init(channels: 4, outputs: 5, height: 14, width: 14, kh: 4, kw: 4, sh: 2, sw: 2, dh: 1, dw: 1, groups: 1, pads: (1, 1, 1, 1)),
            // No padding, read in place; 1×1 kernel; 1×1 image; stride above the kernel (gaps).
            .init(channels: 2, outputs: 2, height: 5, width: 6, kh: 3, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, groups: 1, pads: (0, 0, 0, 0)),
            .init(channels: 3, outputs: 2, height: 4, width: 4, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, groups: 1, pads: (0, 0, 0, 0)),
            .init(channels: 2, outputs: 3, height: 1, width: 1, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, groups: 1, pads: (1, 1, 1, 1)),
            .init(channels: 1, outputs: 2, height: 9, width: 7, kh: 2, kw: 2, sh: 3, sw: 3, dh: 1, dw: 1, groups: 1, pads: (0, 0, 0, 0)),
            // Last rows and columns unread (floor), asymmetric and over-sized padding, dilation, groups.
            .init(channels: 2, outputs: 2, height: 8, width: 9, kh: 3, kw: 3, sh: 3, sw: 2, dh: 1, dw: 1, groups: 1, pads: (0, 0, 0, 0)),
            .init(channels: 2, outputs: 4, height: 6, width: 5, kh: 2, kw: 3, sh: 1, sw: 2, dh: 1, dw: 1, groups: 2, pads: (4, 0, 1, 3)),
            .init(channels: 4, outputs: 4, height: 7, width: 7, kh: 3, kw: 3, sh: 2, sw: 1, dh: 2, dw: 3, groups: 4, pads: (2, 3, 0, 1)),
        ]
        var rng = Philox(seed: 20261202)
        func pick(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(rng.uniform() * Double(range.count)) % range.count }
        while list.count < 40 {
            let groups = pick(1...2)
            let g = Geometry(channels: groups * pick(1...3), outputs: groups * pick(1...3), height: pick(1...9), width: pick(1...9),
                             kh: pick(1...4), kw: pick(1...4), sh: pick(1...3), sw: pick(1...3), dh: pick(1...2), dw: pick(1...2),
                             groups: groups, pads: (pick(0...3), pick(0...3), pick(0...3), pick(0...3)))
            if g.valid { list.append(g) }
        }
        return list
    }()

    /// y[o][oy][ox] = b[o] + Σ w[o][ci][ky][kx]·x[g·gc + ci][oy·sH + ky·dH − top][ox·sW + kx·dW − left], in float64.
    static func direct(_ g: Geometry, _ w: Matrix<Float>, _ b: [Float], _ x: UnsafePointer<Float>) -> [Double] {
        let (gc, go) = (g.channels / g.groups, g.outputs / g.groups)
        var y = [Double](repeating: 0, count: g.outputs * g.outHeight * g.outWidth)
        for o in 0..<g.outputs {
            let group = o / go
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    var s = Double(b[o])
                    for ci in 0..<gc {
                        for ky in 0..<g.kh {
                            for kx in 0..<g.kw {
                                let iy = oy * g.sh + ky * g.dh - g.pads.top, ix = ox * g.sw + kx * g.dw - g.pads.left
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                s += Double(w[o, (ci * g.kh + ky) * g.kw + kx]) * Double(x[((group * gc + ci) * g.height + iy) * g.width + ix])
                            }
                        }
                    }
                    y[(o * g.outHeight + oy) * g.outWidth + ox] = s
                }
            }
        }
        return y
    }

    /// The adjoint of `direct` (without the bias) applied to dy, in float64.
    static func adjoint(_ g: Geometry, _ w: Matrix<Float>, _ dy: [Double]) -> [Double] {
        let (gc, go) = (g.channels / g.groups, g.outputs / g.groups)
        var dx = [Double](repeating: 0, count: g.channels * g.height * g.width)
        for o in 0..<g.outputs {
            let group = o / go
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    let v = dy[(o * g.outHeight + oy) * g.outWidth + ox]
                    for ci in 0..<gc {
                        for ky in 0..<g.kh {
                            for kx in 0..<g.kw {
                                let iy = oy * g.sh + ky * g.dh - g.pads.top, ix = ox * g.sw + kx * g.dw - g.pads.left
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                dx[((group * gc + ci) * g.height + iy) * g.width + ix] += Double(w[o, (ci * g.kh + ky) * g.kw + kx]) * v
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    /// Checks a model whose logits are the convolution's output, flattened: logits against `direct`,
    /// and the cross-entropy input gradient against the adjoint of (softmax − one-hot).
    static func check<M: DifferentiableClassifier>(_ model: M, _ g: Geometry, _ w: Matrix<Float>, _ b: [Float], batch: Int) throws {
        var rng = Philox(seed: UInt64(g.height * 31 + g.width))
        let x: Matrix<Float> = rng.matrix(rows: 3, columns: g.channels * g.height * g.width, .uniform(-1, 1))
        let classes = g.outputs * g.outHeight * g.outWidth
        let labels = (0..<3).map { ($0 * 7) % classes }
        let z = try model.logits(x)
        let dx = GraphModelTests.gradient(model, x, labels, batch: batch)
        var worstY = 0.0, worstX = 0.0
        x.withUnsafeBufferPointer { px in
            for r in 0..<3 {
                let y = direct(g, w, b, px.baseAddress! + r * x.columns)
                let scaleY = max(y.map(abs).max()!, 1)
                for i in 0..<classes { worstY = max(worstY, abs(Double(z[r, i]) - y[i]) / scaleY) }
                let m = y.max()!
                let e = y.map { exp($0 - m) }, total = e.reduce(0, +)
                var dy = e.map { $0 / total }
                dy[labels[r]] -= 1
                let reference = adjoint(g, w, dy)
                let scaleX = max(reference.map(abs).max()!, 1e-3)
                for i in 0..<x.columns { worstX = max(worstX, abs(Double(dx[r, i]) - reference[i]) / scaleX) }
            }
        }
        #expect(worstY < 1e-5, "\(g) batch \(batch): logits off by \(worstY)")
        #expect(worstX < 1e-4, "\(g) batch \(batch): input gradient off by \(worstX)")
    }

    @Test(arguments: geometries)
    func graphConvolutionEqualsDirect(_ g: Geometry) throws {
        var rng = Philox(seed: UInt64(g.channels * 1000 + g.kh * 10 + g.kw))
        let w: Matrix<Float> = rng.matrix(rows: g.outputs, columns: g.channels / g.groups * g.kh * g.kw, .uniform(-1, 1))
        let b = (0..<g.outputs).map { _ in Float(rng.uniform() - 0.5) }
        let convolution = GraphOperation.Convolution(weight: w, bias: b, inChannels: g.channels, kernel: (g.kh, g.kw), stride: (g.sh, g.sw),
                                                     pads: (g.pads.top, g.pads.left, g.pads.bottom, g.pads.right),
                                                     dilation: (g.dh, g.dw), groups: g.groups)
        let model = try GraphModel(inputName: "x", inputShape: [g.channels, g.height, g.width], nodes: [
            .init(name: "conv", operation: .convolution(convolution), inputs: ["x"], output: "y"),
            .init(name: "flat", operation: .reshape([g.outputs * g.outHeight * g.outWidth]), inputs: ["y"], output: "logits"),
        ], outputName: "logits")
        for (batch, threads) in [(1, 1), (3, 2)] {
            try Linalg.withThreads(threads) { try Self.check(model, g, w, b, batch: batch) }
        }
    }

    /// `Conv2d` (square kernel and stride, symmetric padding, no dilation or groups) on the members of
    /// the family it can express.
    @Test(arguments: geometries.filter { $0.kh == $0.kw && $0.sh == $0.sw && $0.dh == 1 && $0.dw == 1 && $0.groups == 1 &&
                                          $0.pads.top == $0.pads.left && $0.pads.left == $0.pads.bottom && $0.pads.bottom == $0.pads.right })
    func sequentialConv2dEqualsDirect(_ g: Geometry) throws {
        let spec = "input:\(g.channels)x\(g.height)x\(g.width),conv2d:\(g.channels)-\(g.outputs)-\(g.kh)-\(g.sh)-\(g.pads.top),flatten"
        let model = try ModelSpec.build(spec, seed: 5)
        let conv = try #require(model.layers.first { $0 is Conv2d } as? Conv2d)
        for (batch, threads) in [(1, 1), (3, 2)] {
            try Linalg.withThreads(threads) { try Self.check(model, g, conv.weight, conv.bias.elements, batch: batch) }
        }
    }
}
