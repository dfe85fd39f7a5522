import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

// The kernels of `GraphModel`: one forward and one input-gradient function per operation, on rows of
// contiguous per-sample tensors. GEMMs go through `Linalg.gemm` with the context's backend.

extension GraphModel.Step {
    var inputFeatures: Int { inputShapes[0].reduce(1, *) }
    var outputFeatures: Int { outputShape.reduce(1, *) }

    /// Floats of scratch memory the step needs for batches of up to `capacity` rows (the forward pass,
    /// the input gradient and the weight gradient split in up to `parts`).
    func scratchCount(capacity: Int, parts: Int) -> Int {
        guard let geometry = convolution else { return 0 }
        let own = max(geometry.scratchCount(capacity: capacity, parts: parts), geometry.parameterScratchCount(capacity: capacity, parts: parts))
        return max(own, adjoint?.scratchCount(capacity: capacity, parts: parts) ?? 0)
    }

    /// Precomputes broadcast maps and expanded constants.
    mutating func prepare() {
        switch operation {
        case .binary:
            broadcast = inputShapes.map { $0 == outputShape ? nil : broadcastIndices($0, to: outputShape) }
        case .constantBinary(_, let constant, let shape, _):
            expandedConstant = broadcastIndices(shape, to: outputShape).map { constant[Int($0)] }
        case .convolution(let c):
            let geometry = ConvolutionGeometry(c, input: inputShapes[0], output: outputShape)
            convolution = geometry
            adjoint = geometry.adjoint.map { ConvolutionGeometry($0, input: outputShape, output: inputShapes[0]) }
        default: break
        }
    }

    /// Elementwise, pooling, concat and softmax steps work row by row: the model splits their rows
    /// across threads. Dense and convolution steps parallelise inside (the GEMM's threads; convolutions
    /// split their samples in parts, `ConvolutionGeometry.inParts`).
    var isRowParallel: Bool {
        switch operation {
        case .dense, .convolution: return false
        default: return true
        }
    }

    /// Forward pass of rows first..<first + rows.
    func forward(_ ws: GraphModel.Workspace, first: Int = 0, rows: Int, context: ForwardContext) {
        let inF = inputFeatures, outF = outputFeatures
        let x = ws.data(inputs[0]) + first * inF, y = ws.data(output) + first * outF
        switch operation {
        case .dense(let weight, let bias):
            for i in 0..<rows { (y + i * outF).update(from: bias, count: outF) }
            weight.withUnsafeBufferPointer { w in
                Linalg.gemm(MatrixPointer(x, rows: rows, columns: inF), MatrixPointer(w.baseAddress!, rows: outF, columns: inF),
                            transB: .transposed, alpha: 1, beta: 1, into: MutableMatrixPointer(y, rows: rows, columns: outF), backend: context.backend)
            }
        case .convolution:
            convolution!.forward(x, rows: rows, into: y, parts: ws.convolutionParts, context: context)
        case .channelAffine(let scale, let shift):
            let channels = scale.count, spatial = inF / channels
            for i in 0..<rows {
                for ch in 0..<channels {
                    let xs = x + i * inF + ch * spatial, ys = y + i * outF + ch * spatial
                    let (s, t) = (scale[ch], shift[ch])
                    for j in 0..<spatial { ys[j] = s * xs[j] + t }
                }
            }
        case .constantBinary(let op, _, _, let left):
            expandedConstant.withUnsafeBufferPointer { cp in
                let c = cp.baseAddress!
                for i in 0..<rows {
                    let xs = x + i * inF, ys = y + i * outF
                    switch (op, left) {
                    case (.add, _): for j in 0..<outF { ys[j] = xs[j] + c[j] }
                    case (.mul, _): for j in 0..<outF { ys[j] = xs[j] * c[j] }
                    case (.sub, false): for j in 0..<outF { ys[j] = xs[j] - c[j] }
                    case (.sub, true): for j in 0..<outF { ys[j] = c[j] - xs[j] }
                    case (.div, false): for j in 0..<outF { ys[j] = xs[j] / c[j] }
                    case (.div, true): for j in 0..<outF { ys[j] = c[j] / xs[j] }
                    }
                }
            }
        case .binary(let op):
            let (aF, bF) = (inputShapes[0].reduce(1, *), inputShapes[1].reduce(1, *))
            let b = ws.data(inputs[1]) + first * bF
            for i in 0..<rows {
                let a0 = x + i * aF, b0 = b + i * bF, ys = y + i * outF
                if broadcast[0] == nil && broadcast[1] == nil {
                    switch op {
                    case .add: for j in 0..<outF { ys[j] = a0[j] + b0[j] }
                    case .sub: for j in 0..<outF { ys[j] = a0[j] - b0[j] }
                    case .mul: for j in 0..<outF { ys[j] = a0[j] * b0[j] }
                    case .div: for j in 0..<outF { ys[j] = a0[j] / b0[j] }
                    }
                } else {
                    for j in 0..<outF {
                        let (u, v) = (a0[broadcast[0].map { Int($0[j]) } ?? j], b0[broadcast[1].map { Int($0[j]) } ?? j])
                        switch op {
                        case .add: ys[j] = u + v
                        case .sub: ys[j] = u - v
                        case .mul: ys[j] = u * v
                        case .div: ys[j] = u / v
                        }
                    }
                }
            }
        case .unary(let u):
            let n = rows * inF
            switch u {
            case .relu: for j in 0..<n { y[j] = x[j] > 0 ? x[j] : 0 }
            case .leakyReLU(let a): for j in 0..<n { y[j] = x[j] > 0 ? x[j] : a * x[j] }
            case .sigmoid: for j in 0..<n { y[j] = 1 / (1 + expf(-x[j])) }
            case .tanh: for j in 0..<n { y[j] = tanhf(x[j]) }
            case .erf: for j in 0..<n { y[j] = erff(x[j]) }
            case .softplus: for j in 0..<n { y[j] = x[j] > 20 ? x[j] : log1pf(expf(x[j])) }
            case .clip(let lower, let upper): for j in 0..<n { y[j] = min(max(x[j], lower), upper) }
            case .gelu(false): for j in 0..<n { y[j] = 0.5 * x[j] * (1 + erff(x[j] * 0.70710678118654752)) }
            case .gelu(true):
                for j in 0..<n {
                    let v = x[j]
                    y[j] = 0.5 * v * (1 + tanhf(0.7978845608028654 * (v + 0.044715 * v * v * v)))
                }
            }
        case .pool(let p):
            PoolingGeometry(p, input: inputShapes[0], output: outputShape).forward(x, rows: rows, into: y)
        case .globalAveragePool:
            let channels = inputShapes[0][0], spatial = inF / channels, inverse = 1 / Float(spatial)
            for i in 0..<rows {
                for ch in 0..<channels {
                    let xs = x + i * inF + ch * spatial
                    var s: Float = 0
                    for j in 0..<spatial { s += xs[j] }
                    y[i * outF + ch] = s * inverse
                }
            }
        case .concat(let axis):
            let outer = outputShape[..<axis].reduce(1, *), outInner = outF / outer
            for i in 0..<rows {
                var offset = 0
                for (k, storage) in inputs.enumerated() {
                    let inner = inputShapes[k][axis...].reduce(1, *), src = ws.data(storage) + (first + i) * outer * inner
                    for o in 0..<outer { (y + i * outF + o * outInner + offset).update(from: src + o * inner, count: inner) }
                    offset += inner
                }
            }
        case .softmax(let axis, let log):
            let length = inputShapes[0][axis], inner = inputShapes[0][(axis + 1)...].reduce(1, *), outer = inF / (length * inner)
            for i in 0..<rows {
                for o in 0..<outer {
                    for q in 0..<inner {
                        let xs = x + i * inF + o * length * inner + q, ys = y + i * outF + o * length * inner + q
                        var m = -Float.infinity
                        for j in 0..<length { m = max(m, xs[j * inner]) }
                        var s: Float = 0
                        for j in 0..<length { s += expf(xs[j * inner] - m) }
                        if log {
                            let logS = logf(s)
                            for j in 0..<length { ys[j * inner] = xs[j * inner] - m - logS }
                        } else {
                            for j in 0..<length { ys[j * inner] = expf(xs[j * inner] - m) / s }
                        }
                    }
                }
            }
        case .identity, .reshape:
            break  // aliases: never scheduled
        }
    }

    /// Writes the gradient w.r.t. input `k` (rows × that input's features) into `dx`, given the
    /// gradient of the output in the workspace.
    /// (Rows first..<first + rows; `dx` points at row `first` of the destination.)
    func backward(input k: Int, _ ws: GraphModel.Workspace, first: Int = 0, rows: Int, into dx: UnsafeMutablePointer<Float>, context: ForwardContext) {
        let inF = inputShapes[k].reduce(1, *), outF = outputFeatures
        let dy = ws.gradient(output) + first * outF, x = ws.data(inputs[0]) + first * inputFeatures, y = ws.data(output) + first * outF
        switch operation {
        case .dense(let weight, _):
            weight.withUnsafeBufferPointer { w in
                Linalg.gemm(MatrixPointer(dy, rows: rows, columns: outF), MatrixPointer(w.baseAddress!, rows: outF, columns: inF),
                            into: MutableMatrixPointer(dx, rows: rows, columns: inF), backend: context.backend)
            }
        case .convolution:
            if let adjoint {
                adjoint.forward(dy, rows: rows, into: dx, parts: ws.convolutionParts, context: context)
            } else {
                convolution!.backward(dy, rows: rows, into: dx, parts: ws.convolutionParts, context: context)
            }
        case .channelAffine(let scale, _):
            let channels = scale.count, spatial = inF / channels
            for i in 0..<rows {
                for ch in 0..<channels {
                    let g = dy + i * outF + ch * spatial, d = dx + i * inF + ch * spatial, s = scale[ch]
                    for j in 0..<spatial { d[j] = s * g[j] }
                }
            }
        case .constantBinary(let op, _, _, let left):
            expandedConstant.withUnsafeBufferPointer { cp in
                let c = cp.baseAddress!
                for i in 0..<rows {
                    let g = dy + i * outF, d = dx + i * inF, xs = x + i * inF
                    switch (op, left) {
                    case (.add, _), (.sub, false): d.update(from: g, count: outF)
                    case (.sub, true): for j in 0..<outF { d[j] = -g[j] }
                    case (.mul, _): for j in 0..<outF { d[j] = g[j] * c[j] }
                    case (.div, false): for j in 0..<outF { d[j] = g[j] / c[j] }
                    case (.div, true): for j in 0..<outF { d[j] = -g[j] * c[j] / (xs[j] * xs[j]) }
                    }
                }
            }
        case .binary(let op):
            let (aF, bF) = (inputShapes[0].reduce(1, *), inputShapes[1].reduce(1, *))
            let b = ws.data(inputs[1]) + first * bF
            let map = broadcast[k]
            for i in 0..<rows {
                let a0 = x + i * aF, b0 = b + i * bF, g = dy + i * outF, d = dx + i * inF
                if broadcast[0] == nil && broadcast[1] == nil {  // same shapes (residual adds): one loop per case
                    switch (op, k) {
                    case (.add, _), (.sub, 0): d.update(from: g, count: outF)
                    case (.sub, _): for j in 0..<outF { d[j] = -g[j] }
                    case (.mul, 0): for j in 0..<outF { d[j] = g[j] * b0[j] }
                    case (.mul, _): for j in 0..<outF { d[j] = g[j] * a0[j] }
                    case (.div, 0): for j in 0..<outF { d[j] = g[j] / b0[j] }
                    case (.div, _): for j in 0..<outF { d[j] = -g[j] * a0[j] / (b0[j] * b0[j]) }
                    }
                    continue
                }
                if map != nil { d.update(repeating: 0, count: inF) }
                for j in 0..<outF {
                    let u = a0[broadcast[0].map { Int($0[j]) } ?? j], v = b0[broadcast[1].map { Int($0[j]) } ?? j]
                    let contribution: Float
                    switch (op, k) {
                    case (.add, _), (.sub, 0): contribution = g[j]
                    case (.sub, _): contribution = -g[j]
                    case (.mul, 0): contribution = g[j] * v
                    case (.mul, _): contribution = g[j] * u
                    case (.div, 0): contribution = g[j] / v
                    case (.div, _): contribution = -g[j] * u / (v * v)
                    }
                    if let map { d[Int(map[j])] += contribution } else { d[j] = contribution }
                }
            }
        case .unary(let u):
            let n = rows * inF
            switch u {
            // dy is read unconditionally, so that the selects vectorise (a load under the condition does not).
            case .relu: for j in 0..<n { let g = dy[j]; dx[j] = x[j] > 0 ? g : 0 }
            case .leakyReLU(let a): for j in 0..<n { let g = dy[j]; dx[j] = x[j] > 0 ? g : a * g }
            case .sigmoid: for j in 0..<n { dx[j] = dy[j] * y[j] * (1 - y[j]) }
            case .tanh: for j in 0..<n { dx[j] = dy[j] * (1 - y[j] * y[j]) }
            case .erf: for j in 0..<n { dx[j] = dy[j] * 1.1283791670955126 * expf(-x[j] * x[j]) }
            case .softplus: for j in 0..<n { dx[j] = dy[j] / (1 + expf(-x[j])) }
            case .clip(let lower, let upper): for j in 0..<n { let g = dy[j], v = x[j]; dx[j] = v >= lower && v <= upper ? g : 0 }
            case .gelu(false):
                for j in 0..<n {
                    let cdf = 0.5 * (1 + erff(x[j] * 0.70710678118654752))
                    let pdf = expf(-0.5 * x[j] * x[j]) * 0.39894228040143268
                    dx[j] = dy[j] * (cdf + x[j] * pdf)
                }
            case .gelu(true):
                for j in 0..<n {
                    let v = x[j], inner = 0.7978845608028654 * (v + 0.044715 * v * v * v)
                    let t = tanhf(inner)
                    dx[j] = dy[j] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v))
                }
            }
        case .pool(let p):
            PoolingGeometry(p, input: inputShapes[0], output: outputShape).backward(dy, input: x, rows: rows, into: dx)
        case .globalAveragePool:
            let channels = inputShapes[0][0], spatial = inF / channels, inverse = 1 / Float(spatial)
            for i in 0..<rows {
                for ch in 0..<channels {
                    let d = dx + i * inF + ch * spatial, g = dy[i * outF + ch] * inverse
                    for j in 0..<spatial { d[j] = g }
                }
            }
        case .concat(let axis):
            let outer = outputShape[..<axis].reduce(1, *), outInner = outF / outer
            var offset = 0
            for j in 0..<k { offset += inputShapes[j][axis...].reduce(1, *) }
            let inner = inF / outer
            for i in 0..<rows {
                for o in 0..<outer { (dx + i * inF + o * inner).update(from: dy + i * outF + o * outInner + offset, count: inner) }
            }
        case .softmax(let axis, let log):
            let length = inputShapes[0][axis], inner = inputShapes[0][(axis + 1)...].reduce(1, *), outer = inF / (length * inner)
            for i in 0..<rows {
                for o in 0..<outer {
                    for q in 0..<inner {
                        let base = i * inF + o * length * inner + q
                        let g = dy + base, ys = y + base, d = dx + base
                        var s: Float = 0
                        if log {
                            for j in 0..<length { s += g[j * inner] }
                            for j in 0..<length { d[j * inner] = g[j * inner] - expf(ys[j * inner]) * s }
                        } else {
                            for j in 0..<length { s += g[j * inner] * ys[j * inner] }
                            for j in 0..<length { d[j * inner] = ys[j * inner] * (g[j * inner] - s) }
                        }
                    }
                }
            }
        case .identity, .reshape:
            break
        }
    }
}

/// A convolution with its input and output sizes resolved: unfold (im2col) + one GEMM per group and
/// sample, or a direct loop for depthwise convolutions (one input channel per group), whose GEMMs
/// would have a single row.
struct ConvolutionGeometry {
    let c: GraphOperation.Convolution
    let (channels, height, width): (Int, Int, Int)
    let (outHeight, outWidth): (Int, Int)
    let groupChannels: Int
    let groupOutputs: Int
    /// The unfold of one group of one sample, and its adjoint.
    let im2col: Im2Col

    init(_ c: GraphOperation.Convolution, input: [Int], output: [Int]) {
        self.c = c
        (channels, height, width) = (input[0], input[1], input[2])
        (outHeight, outWidth) = (output[1], output[2])
        groupChannels = input[0] / c.groups
        groupOutputs = c.outChannels / c.groups
        im2col = Im2Col(channels: groupChannels, height: height, width: width, kernel: c.kernel, stride: c.stride, dilation: c.dilation,
                        pad: (c.pads.top, c.pads.left), outHeight: outHeight, outWidth: outWidth)
    }

    var pixels: Int { outHeight * outWidth }
    var patch: Int { groupChannels * c.kernel.height * c.kernel.width }
    var isDepthwise: Bool { groupChannels == 1 }
    var inputFeatures: Int { channels * height * width }
    var outputFeatures: Int { c.outChannels * pixels }

    /// For stride 1 with pads ≤ dilation·(kernel − 1) on every side: the convolution of dY that gives
    /// dX, i.e. dx[c] = Σ_o w[o][c] ⋆ dy[o] with the kernel flipped, the roles of input and output
    /// channels swapped per group, and pads dilation·(kernel − 1) − pad. Nil otherwise (col2im is used).
    var adjoint: GraphOperation.Convolution? {
        let (kh, kw) = c.kernel, (dh, dw) = c.dilation
        let pads = (dh * (kh - 1) - c.pads.top, dw * (kw - 1) - c.pads.left, dh * (kh - 1) - c.pads.bottom, dw * (kw - 1) - c.pads.right)
        guard c.stride == (1, 1), min(pads.0, pads.1, pads.2, pads.3) >= 0, !isDepthwise else { return nil }
        var weight = Matrix<Float>(rows: channels, columns: groupOutputs * kh * kw)
        c.weight.withUnsafeBufferPointer { w in
            weight.withUnsafeMutableBufferPointer { t in
                for g in 0..<c.groups {
                    for o in 0..<groupOutputs {
                        for ch in 0..<groupChannels {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    t[(g * groupChannels + ch) * groupOutputs * kh * kw + (o * kh + kh - 1 - ky) * kw + kw - 1 - kx] =
                                        w[(g * groupOutputs + o) * patch + (ch * kh + ky) * kw + kx]
                                }
                            }
                        }
                    }
                }
            }
        }
        return GraphOperation.Convolution(weight: weight, bias: [Float](repeating: 0, count: channels), inChannels: c.outChannels,
                                          kernel: c.kernel, pads: pads, dilation: c.dilation, groups: c.groups)
    }

    /// Floats of scratch for a block of samples: their unfolded columns, the GEMM's output and their
    /// padded images (`Im2Col`).
    var perSample: Int { (patch + groupOutputs) * pixels + im2col.paddedCount }
    /// Samples unfolded together into one GEMM (up to 2¹⁹ floats of scratch, 2 MB: larger blocks no longer stay in cache).
    func block(capacity: Int) -> Int { max(1, min(capacity, (1 << 19) / perSample)) }
    /// The padded image of sample `s` of a block whose scratch starts at `cols`.
    func padded(_ cols: UnsafeMutablePointer<Float>, blockSize: Int, sample s: Int) -> UnsafeMutablePointer<Float> {
        cols + blockSize * (patch + groupOutputs) * pixels + s * im2col.paddedCount
    }

    /// The output columns [lo, hi) whose input column ox·sW + kx·dW − left is inside the image, and
    /// kx·dW − left (the input column of ox = 0).
    @inline(__always)
    func columnRange(_ kx: Int) -> (Int, Int, Int) {
        let offset = kx * c.dilation.width - c.pads.left, sw = c.stride.width
        let lo = offset >= 0 ? 0 : (-offset + sw - 1) / sw
        let hi = width - offset <= 0 ? 0 : min(outWidth, (width - 1 - offset) / sw + 1)
        return (lo, hi, offset)
    }

    /// Scratch of `forward` and `backward` split in up to `parts` parts (fewer run when the batch or the
    /// thread count is smaller): one block's columns, GEMM output and padded images per part.
    func scratchCount(capacity: Int, parts: Int) -> Int {
        guard !isDepthwise else { return 0 }
        return (1...max(1, parts)).map { p in p * block(capacity: (capacity + p - 1) / p) * perSample }.max()!
    }

    /// `body(samples, scratch, blockSize, parallel)` over `rows` samples. With `parts` > 1 (at most the
    /// parts the scratch was sized for): the rows in contiguous parts, one per thread, each with its own
    /// scratch and single-threaded BLAS, so that a small convolution's unfold, GEMM and scatter need no
    /// synchronisation per block (OpenBLAS's own split of these GEMMs gained nothing on 2 cores). With one
    /// part: the blocks' unfold and scatter in parallel over samples and the GEMM on BLAS's threads.
    /// Every output element is one GEMM dot product over the patch, so the split changes only how BLAS
    /// may round it (other GEMM widths can take other kernels, ~1e-6 relative; the tests allow 1e-6).
    /// (The single-thread BLAS scope is opened for the blas backend only: it changes a process-wide
    /// setting that the other backends do not use.)
    func inParts(rows: Int, parts: Int, scratch: UnsafeMutablePointer<Float>, backend: Backend?,
                 _ body: (Range<Int>, UnsafeMutablePointer<Float>, Int, Bool) -> Void) {
        let parts = max(1, min(parts, rows, Linalg.simdThreads))
        guard parts > 1 else { return body(0..<rows, scratch, block(capacity: rows), true) }
        let blockSize = block(capacity: (rows + parts - 1) / parts), size = blockSize * perSample
        func part(_ p: Int) { body(Linalg.partition(rows, parts: parts, part: p), scratch + p * size, blockSize, false) }
        if (backend ?? .default) == .blas {
            NativeBLAS.withSingleThread { Linalg.parallelForEach(parts, part) }
        } else {
            Linalg.parallelForEach(parts, part)
        }
    }

    /// `body(start, count, group, scratch, blockSize, parallel)` for every block of samples of every part
    /// (`inParts`) and every group, blocks in order within a part.
    func inBlocks(rows: Int, parts: Int, context: ForwardContext,
                  _ body: (Int, Int, Int, UnsafeMutablePointer<Float>, Int, Bool) -> Void) {
        inParts(rows: rows, parts: parts, scratch: context.scratch!, backend: context.backend) { samples, cols, blockSize, parallel in
            for start in stride(from: samples.lowerBound, to: samples.upperBound, by: blockSize) {
                for g in 0..<c.groups { body(start, min(blockSize, samples.upperBound - start), g, cols, blockSize, parallel) }
            }
        }
    }

    /// Per block of samples and group: unfold every sample side by side, one GEMM W_g · cols for the
    /// whole block, then scatter into NCHW with the bias; the rows split in `parts` (see `inParts`).
    func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, parts: Int, context: ForwardContext) {
        c.weight.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            if isDepthwise {
                Linalg.parallelForEach(rows) { n in depthwiseForward(x + n * inputFeatures, w, into: y + n * outputFeatures) }
                return
            }
            inBlocks(rows: rows, parts: parts, context: context) { start, b, g, cols, blockSize, parallel in
                let columns = b * pixels, product = cols + blockSize * patch * pixels
                Self.each(b, parallel: parallel) { s in
                    im2col.unfold(x + (start + s) * inputFeatures + g * groupChannels * height * width, into: cols + s * pixels,
                                  rowStride: columns, padded: padded(cols, blockSize: blockSize, sample: s))
                }
                Linalg.gemm(MatrixPointer(w + g * groupOutputs * patch, rows: groupOutputs, columns: patch),
                            MatrixPointer(cols, rows: patch, columns: columns),
                            into: MutableMatrixPointer(product, rows: groupOutputs, columns: columns), backend: context.backend)
                Self.each(b, parallel: parallel) { s in
                    for o in 0..<groupOutputs {
                        let dst = y + (start + s) * outputFeatures + (g * groupOutputs + o) * pixels, src = product + o * columns + s * pixels
                        let bias = c.bias[g * groupOutputs + o]
                        for p in 0..<pixels { dst[p] = src[p] + bias }
                    }
                }
            }
        }
    }

    /// The adjoint: per block and group, gather dY side by side, one GEMM W_gᵀ · dY, fold per sample;
    /// the rows split in `parts` (see `inParts`).
    func backward(_ dy: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>, parts: Int, context: ForwardContext) {
        c.weight.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            if isDepthwise {
                Linalg.parallelForEach(rows) { n in
                    let d = dx + n * inputFeatures
                    d.update(repeating: 0, count: inputFeatures)
                    depthwiseBackward(dy + n * outputFeatures, w, into: d)
                }
                return
            }
            inBlocks(rows: rows, parts: parts, context: context) { start, b, g, cols, blockSize, parallel in
                let columns = b * pixels, gathered = cols + blockSize * patch * pixels
                Self.each(b, parallel: parallel) { s in
                    for o in 0..<groupOutputs {
                        (gathered + o * columns + s * pixels).update(from: dy + (start + s) * outputFeatures + (g * groupOutputs + o) * pixels, count: pixels)
                    }
                }
                Linalg.gemm(MatrixPointer(w + g * groupOutputs * patch, rows: groupOutputs, columns: patch),
                            MatrixPointer(gathered, rows: groupOutputs, columns: columns), transA: .transposed,
                            into: MutableMatrixPointer(cols, rows: patch, columns: columns), backend: context.backend)
                Self.each(b, parallel: parallel) { s in
                    im2col.fold(cols + s * pixels, rowStride: columns, into: dx + (start + s) * inputFeatures + g * groupChannels * height * width,
                                padded: padded(cols, blockSize: blockSize, sample: s))
                }
            }
        }
    }

    /// `body(0..<count)` on Faultline's threads when `parallel`, else in order on this thread.
    @inline(__always)
    static func each(_ count: Int, parallel: Bool, _ body: (Int) -> Void) {
        if parallel { Linalg.parallelForEach(count, body) } else { for i in 0..<count { body(i) } }
    }

    /// One input channel per group: output channel o reads channel o / groupOutputs directly.
    func depthwiseForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        let (kh, kw) = c.kernel
        for o in 0..<c.outChannels {
            let src = x + (o / groupOutputs) * height * width, wk = w + o * kh * kw, out = y + o * pixels
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    var s = c.bias[o]
                    for ky in 0..<kh {
                        let iy = oy * c.stride.height + ky * c.dilation.height - c.pads.top
                        guard iy >= 0 && iy < height else { continue }
                        for kx in 0..<kw {
                            let ix = ox * c.stride.width + kx * c.dilation.width - c.pads.left
                            if ix >= 0 && ix < width { s += wk[ky * kw + kx] * src[iy * width + ix] }
                        }
                    }
                    out[oy * outWidth + ox] = s
                }
            }
        }
    }

    func depthwiseBackward(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        let (kh, kw) = c.kernel
        for o in 0..<c.outChannels {
            let dst = dx + (o / groupOutputs) * height * width, wk = w + o * kh * kw, g = dy + o * pixels
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    let v = g[oy * outWidth + ox]
                    for ky in 0..<kh {
                        let iy = oy * c.stride.height + ky * c.dilation.height - c.pads.top
                        guard iy >= 0 && iy < height else { continue }
                        for kx in 0..<kw {
                            let ix = ox * c.stride.width + kx * c.dilation.width - c.pads.left
                            if ix >= 0 && ix < width { dst[iy * width + ix] += wk[ky * kw + kx] * v }
                        }
                    }
                }
            }
        }
    }
}

/// Pooling windows with padding and ceil mode resolved; windows are clipped to the input.
struct PoolingGeometry {
    let p: GraphOperation.Pooling
    let (channels, height, width): (Int, Int, Int)
    let (outHeight, outWidth): (Int, Int)

    init(_ p: GraphOperation.Pooling, input: [Int], output: [Int]) {
        self.p = p
        (channels, height, width) = (input[0], input[1], input[2])
        (outHeight, outWidth) = (output[1], output[2])
    }

    /// The window of output (oy, ox) clipped to the input, and the average's divisor.
    @inline(__always)
    func window(_ oy: Int, _ ox: Int) -> (ys: Range<Int>, xs: Range<Int>, divisor: Float) {
        let w = p.window(outputY: oy, outputX: ox, inputHeight: height, inputWidth: width)
        return (w.rows, w.columns, Float(w.divisor))
    }

    @inline(__always)
    func argmax(_ x: UnsafePointer<Float>, _ ys: Range<Int>, _ xs: Range<Int>) -> Int {
        var best = ys.lowerBound * width + xs.lowerBound
        for iy in ys {
            for ix in xs where x[iy * width + ix] > x[best] || x[iy * width + ix].isNaN { best = iy * width + ix }
        }
        return best
    }

    func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let plane = height * width, outPlane = outHeight * outWidth
        for n in 0..<rows {
            for ch in 0..<channels {
                let xs0 = x + (n * channels + ch) * plane, ys0 = y + (n * channels + ch) * outPlane
                for oy in 0..<outHeight {
                    for ox in 0..<outWidth {
                        let (wy, wx, divisor) = window(oy, ox)
                        switch p.kind {
                        case .max: ys0[oy * outWidth + ox] = xs0[argmax(xs0, wy, wx)]
                        case .average:
                            var s: Float = 0
                            for iy in wy { for ix in wx { s += xs0[iy * width + ix] } }
                            ys0[oy * outWidth + ox] = s / divisor
                        }
                    }
                }
            }
        }
    }

    func backward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>) {
        let plane = height * width, outPlane = outHeight * outWidth
        dx.update(repeating: 0, count: rows * channels * plane)
        for n in 0..<rows {
            for ch in 0..<channels {
                let xs0 = x + (n * channels + ch) * plane, g = dy + (n * channels + ch) * outPlane, d = dx + (n * channels + ch) * plane
                for oy in 0..<outHeight {
                    for ox in 0..<outWidth {
                        let (wy, wx, divisor) = window(oy, ox)
                        let v = g[oy * outWidth + ox]
                        switch p.kind {
                        case .max: d[argmax(xs0, wy, wx)] += v
                        case .average: for iy in wy { for ix in wx { d[iy * width + ix] += v / divisor } }
                        }
                    }
                }
            }
        }
    }
}
