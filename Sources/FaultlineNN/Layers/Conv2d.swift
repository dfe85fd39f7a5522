import FaultlineLinalg

/// Spatial shape of one sample in NCHW order: channels × height × width, stored row-major in a
/// batch row of `channels·height·width` features.
public struct ImageShape: Sendable, Equatable, CustomStringConvertible {
    /// Channels (C).
    public var channels: Int
    /// Rows of each channel (H).
    public var height: Int
    /// Columns of each channel (W).
    public var width: Int
    /// A C × H × W sample shape.
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }
    /// Features per sample: C·H·W.
    public var features: Int { channels * height * width }
    public var description: String { "\(channels)x\(height)x\(width)" }
}

/// 2-d convolution (PyTorch `nn.Conv2d`: cross-correlation, NCHW, square kernel, stride, zero
/// padding), weights [out, in, k, k] stored as an out × (in·k·k) matrix.
///
/// Per sample, the input is unfolded (`Im2Col`) into a (in·k·k) × (outH·outW) matrix and the output is
/// one GEMM, W · cols, written straight into NCHW order. The input gradient is Wᵀ · dY folded back
/// (col2im); the weight gradient dY · colsᵀ. The unfold buffer and the padded image are the workspace's
/// scratch memory (one sample's worth per part), so a pass allocates nothing. Forward and input-gradient passes split the samples
/// into up to `Linalg.simdThreads` parts (at most 8) that run in parallel, each with its own unfold
/// buffer and single-threaded BLAS: a sample's result does not depend on the split or the thread
/// count (small per-sample GEMMs gain nothing from OpenBLAS threads, whose spinning cost more than the
/// GEMMs on a 2-core machine: 4.8 s vs 5.0 s per PGD-AT epoch with 2 threads vs 1 before this split).
public struct Conv2d: Layer {
    /// out × (in·k·k): PyTorch's [out, in, k, k] weight, one output channel per row.
    public var weight: Matrix<Float>  // out × (in·k·k)
    /// 1 × out: one bias per output channel.
    public var bias: Matrix<Float>  // 1 × out
    /// The shape of one input sample.
    public let input: ImageShape
    /// The side of the square kernel.
    public let kernel: Int
    /// The step between windows, both directions.
    public let stride: Int
    /// Zero padding on every side.
    public let padding: Int

    /// The shape of one output sample: out × ((H + 2p − k)/s + 1) × ((W + 2p − k)/s + 1).
    public var output: ImageShape {
        ImageShape(channels: weight.rows, height: (input.height + 2 * padding - kernel) / stride + 1,
                   width: (input.width + 2 * padding - kernel) / stride + 1)
    }
    /// C·H·W of the input.
    public var inputFeatures: Int { input.features }
    /// out·outH·outW.
    public var outputFeatures: Int { output.features }
    public var spec: String { "conv2d:\(input.channels)-\(weight.rows)-\(kernel)-\(stride)-\(padding)" }

    /// PyTorch's default initialisation (bound 1/√(in·k·k) for weight and bias).
    public init(input: ImageShape, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, rng: inout Philox) {
        precondition(outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0, "Conv2d: invalid geometry")
        precondition(input.height + 2 * padding >= kernel && input.width + 2 * padding >= kernel, "Conv2d: kernel larger than the padded input")
        self.input = input
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        let fanIn = input.channels * kernel * kernel
        let outHeight = (input.height + 2 * padding - kernel) / stride + 1, outWidth = (input.width + 2 * padding - kernel) / stride + 1
        im2col = Im2Col(channels: input.channels, height: input.height, width: input.width, kernel: (kernel, kernel), stride: (stride, stride),
                        pad: (padding, padding), outHeight: outHeight, outWidth: outWidth)
        let bound = 1 / Double(fanIn).squareRoot()
        weight = rng.matrix(rows: outChannels, columns: fanIn, .uniform(-bound, bound))
        bias = rng.matrix(rows: 1, columns: outChannels, .uniform(-bound, bound))
    }

    public var parameters: [(name: String, value: Matrix<Float>)] { [("weight", weight), ("bias", bias)] }

    public mutating func updateParameters(_ body: (Int, UnsafeMutableBufferPointer<Float>) -> Void) {
        weight.withUnsafeMutableBufferPointer { body(0, $0) }
        bias.withUnsafeMutableBufferPointer { body(1, $0) }
    }
    public var stateShapes: [[Int]] { [[weight.rows, input.channels, kernel, kernel], [weight.rows]] }

    public mutating func setParameters(_ values: [Matrix<Float>]) {
        precondition(values.count == 2 && values[0].count == weight.count && values[1].count == bias.count, "Conv2d.setParameters: shapes")
        weight = try! Matrix(rows: weight.rows, columns: weight.columns, elements: values[0].elements)
        bias = try! Matrix(rows: 1, columns: bias.columns, elements: values[1].elements)
    }

    /// The unfold and its adjoint for this geometry (its offset table built once).
    let im2col: Im2Col

    /// Scratch of one part: its unfold buffer and its padded image.
    var partScratch: Int { patch * pixels + im2col.paddedCount }

    /// One unfold buffer per possible part: sized by `maximumParts`, never by the current thread count,
    /// which may grow between making a workspace and using it.
    public func scratchCount(rows: Int) -> Int { max(1, min(rows, Self.maximumParts)) * partScratch }

    /// The most parts a batch is ever split into.
    static let maximumParts = 8

    /// Parts a batch of `rows` samples is split into: the thread count, at most `maximumParts` and `rows`.
    static func parts(_ rows: Int) -> Int { max(1, min(rows, Linalg.simdThreads, maximumParts)) }

    /// Runs `body` with the scratch of a batch of `rows`: the workspace's, or a fresh buffer outside one.
    func withScratch<R>(_ context: ForwardContext, rows: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        if let scratch = context.scratch { return body(scratch) }
        let buffer = AlignedBuffer<Float>(uninitializedCount: scratchCount(rows: rows))
        return withExtendedLifetime(buffer) { body(buffer.pointer) }
    }

    /// `body(samples, unfoldBuffer, paddedImage)` over the parts of `rows` samples, in parallel with
    /// single-threaded BLAS when there are several parts.
    func inParts(rows: Int, scratch: UnsafeMutablePointer<Float>,
                 _ body: (Range<Int>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let parts = Self.parts(rows), size = partScratch, columns = patch * pixels
        NativeBLAS.withSingleThread {
            guard parts > 1 else { return body(0..<rows, scratch, scratch + columns) }
            Linalg.parallelForEach(parts) { p in
                body(Linalg.partition(rows, parts: parts, part: p), scratch + p * size, scratch + p * size + columns)
            }
        }
    }

    var patch: Int { input.channels * kernel * kernel }
    var pixels: Int { output.height * output.width }

    public func forward(_ x: MatrixPointer<Float>, into y: MutableMatrixPointer<Float>, context: ForwardContext) {
        withScratch(context, rows: x.rows) { scratch in
            weight.withUnsafeBufferPointer { wp in
                bias.withUnsafeBufferPointer { bp in
                    let w = MatrixPointer(wp.baseAddress!, rows: weight.rows, columns: patch)
                    inParts(rows: x.rows, scratch: scratch) { samples, cols, padded in
                        for n in samples {
                            im2col.unfold(x.base + n * x.rowStride, into: cols, rowStride: pixels, padded: padded)
                            let out = y.base + n * y.rowStride
                            for o in 0..<weight.rows { (out + o * pixels).update(repeating: bp[o], count: pixels) }
                            Linalg.gemm(w, MatrixPointer(cols, rows: patch, columns: pixels), alpha: 1, beta: 1,
                                        into: MutableMatrixPointer(out, rows: weight.rows, columns: pixels), backend: context.backend)
                        }
                    }
                }
            }
        }
    }

    /// dL/dx = col2im(Wᵀ · dL/dy) per sample, in the same parallel parts as `forward`.
    public func backwardInput(outputGradient: MatrixPointer<Float>, input x: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        withScratch(context, rows: x.rows) { scratch in
            weight.withUnsafeBufferPointer { wp in
                let w = MatrixPointer(wp.baseAddress!, rows: weight.rows, columns: patch)
                inParts(rows: x.rows, scratch: scratch) { samples, dcols, padded in
                    for n in samples {
                        Linalg.gemm(w, MatrixPointer(outputGradient.base + n * outputGradient.rowStride, rows: weight.rows, columns: pixels),
                                    transA: .transposed, into: MutableMatrixPointer(dcols, rows: patch, columns: pixels), backend: context.backend)
                        im2col.fold(dcols, rowStride: pixels, into: inputGradient.base + n * inputGradient.rowStride, padded: padded)
                    }
                }
            }
        }
    }

    /// Adds dL/dW = Σ dL/dy · im2col(x)ᵀ and dL/db = Σ dL/dy over the batch to `gradients[offset]` and `[offset + 1]`.
    public func accumulateParameterGradients(outputGradient: MatrixPointer<Float>, input x: MatrixPointer<Float>,
                                             into gradients: inout [Matrix<Float>], at offset: Int, context: ForwardContext) {
        let outChannels = weight.rows
        withScratch(context, rows: x.rows) { cols in
            gradients[offset].withUnsafeMutableBufferPointer { gw in
                for n in 0..<x.rows {
                    im2col.unfold(x.base + n * x.rowStride, into: cols, rowStride: pixels, padded: cols + patch * pixels)
                    Linalg.gemm(MatrixPointer(outputGradient.base + n * outputGradient.rowStride, rows: outChannels, columns: pixels),
                                MatrixPointer(cols, rows: patch, columns: pixels), transB: .transposed, alpha: 1, beta: 1,
                                into: MutableMatrixPointer(gw.baseAddress!, rows: outChannels, columns: patch), backend: context.backend)
                }
            }
        }
        gradients[offset + 1].withUnsafeMutableBufferPointer { gb in
            for n in 0..<x.rows {
                let dy = outputGradient.base + n * outputGradient.rowStride
                for o in 0..<outChannels {
                    var s: Float = 0
                    for p in 0..<pixels { s += dy[o * pixels + p] }
                    gb[o] += s
                }
            }
        }
    }
}

/// 2-d max or average pooling (PyTorch `nn.MaxPool2d` / `nn.AvgPool2d` with no padding, floor mode).
/// Max pooling routes the gradient to the first maximum of each window in row-major scan order.
public struct Pool2d: Layer {
    /// Maximum or mean over each window.
    public enum Kind: Sendable {
        /// The window maximum, or the window mean.
        case max, average
    }
    /// Maximum or mean.
    public let kind: Kind
    /// The shape of one input sample.
    public let input: ImageShape
    /// The side of the square window.
    public let kernel: Int
    /// The step between windows (the kernel size unless given).
    public let stride: Int

    /// A pooling layer; `stride` defaults to `kernel` (non-overlapping windows, PyTorch's default).
    public init(_ kind: Kind, input: ImageShape, kernel: Int, stride: Int? = nil) {
        precondition(kernel > 0 && (stride ?? kernel) > 0 && kernel <= input.height && kernel <= input.width, "Pool2d: invalid geometry")
        self.kind = kind
        self.input = input
        self.kernel = kernel
        self.stride = stride ?? kernel
    }

    /// C × ((H − k)/s + 1) × ((W − k)/s + 1) (floor mode).
    public var output: ImageShape {
        ImageShape(channels: input.channels, height: (input.height - kernel) / stride + 1, width: (input.width - kernel) / stride + 1)
    }
    /// C·H·W of the input.
    public var inputFeatures: Int { input.features }
    /// C·outH·outW.
    public var outputFeatures: Int { output.features }
    public var spec: String { "\(kind == .max ? "maxpool" : "avgpool"):\(kernel)-\(stride)" }

    /// Offset (within the sample) of the window's first maximum.
    @inline(__always)
    func argmax(_ x: UnsafePointer<Float>, _ c: Int, _ oy: Int, _ ox: Int) -> Int {
        var best = (c * input.height + oy * stride) * input.width + ox * stride
        for ky in 0..<kernel {
            for kx in 0..<kernel {
                let i = (c * input.height + oy * stride + ky) * input.width + ox * stride + kx
                if x[i] > x[best] || x[i].isNaN { best = i }
            }
        }
        return best
    }

    /// The maximum (first in scan order) or the mean of each window, per channel.
    public func forward(_ x: MatrixPointer<Float>, into y: MutableMatrixPointer<Float>, context: ForwardContext) {
        let o = output, inverse = 1 / Float(kernel * kernel)
        for n in 0..<x.rows {
            let xs = x.base + n * x.rowStride, ys = y.base + n * y.rowStride
            for c in 0..<o.channels {
                for oy in 0..<o.height {
                    for ox in 0..<o.width {
                        let out = (c * o.height + oy) * o.width + ox
                        switch kind {
                        case .max: ys[out] = xs[argmax(xs, c, oy, ox)]
                        case .average:
                            var s: Float = 0
                            for ky in 0..<kernel {
                                for kx in 0..<kernel { s += xs[(c * input.height + oy * stride + ky) * input.width + ox * stride + kx] }
                            }
                            ys[out] = s * inverse
                        }
                    }
                }
            }
        }
    }

    /// Max: the gradient goes to each window's first maximum (summed where windows overlap); average: spread evenly over the window.
    public func backwardInput(outputGradient: MatrixPointer<Float>, input x: MatrixPointer<Float>, output: MatrixPointer<Float>,
                              into inputGradient: MutableMatrixPointer<Float>, context: ForwardContext) {
        let o = self.output, inverse = 1 / Float(kernel * kernel)
        for n in 0..<x.rows {
            let xs = x.base + n * x.rowStride, g = outputGradient.base + n * outputGradient.rowStride
            let d = inputGradient.base + n * inputGradient.rowStride
            d.update(repeating: 0, count: input.features)
            for c in 0..<o.channels {
                for oy in 0..<o.height {
                    for ox in 0..<o.width {
                        let gradient = g[(c * o.height + oy) * o.width + ox]
                        switch kind {
                        case .max: d[argmax(xs, c, oy, ox)] += gradient
                        case .average:
                            for ky in 0..<kernel {
                                for kx in 0..<kernel { d[(c * input.height + oy * stride + ky) * input.width + ox * stride + kx] += gradient * inverse }
                            }
                        }
                    }
                }
            }
        }
    }
}
