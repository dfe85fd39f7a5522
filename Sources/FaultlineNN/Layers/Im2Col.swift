/// The unfold (im2col) of one sample for a 2-d convolution, and its adjoint (col2im): the one
/// implementation behind `Conv2d` and the graph executor's convolutions.
///
/// `unfold` writes cols[(ch·kH + ky)·kW + kx][oy·outW + ox] = x[ch][oy·sH + ky·dH − top][ox·sW + kx·dW − left]
/// (0 outside the image); `fold` is its adjoint, dx[ch][iy][ix] = Σ of the column entries read from
/// (iy, ix), summed in the order of the column rows and then the output positions.
///
/// How: when a patch can reach outside the input, the sample is first copied into a zero-bordered
/// image (`paddedCount` floats of caller scratch), so no read needs a bounds test. `unfold` then copies
/// one output row at a time (4-lane copies for stride 1, a strided loop otherwise); `fold` adds every
/// column entry back through a precomputed offset (`offsets`, the same for every channel), one flat loop
/// per column row with no bounds test, no multiply and no call. Per-row loops with bounds tests and
/// `memset`/`memmove` calls cost more than the copies on the short rows of small feature maps (7 output
/// columns for MNIST's second convolution: unfold and fold were 46 % of a PGD-AT epoch's cycles).
/// Exact: `unfold` copies, and `fold` adds in the same order as a direct col2im, so both are
/// bit-identical to it. Cost O(channels·kH·kW·outH·outW) plus O(image) per sample; building the value
/// costs O(kH·kW·outH·outW) once; `unfold` and `fold` allocate nothing.
struct Im2Col {
    let channels: Int
    let height: Int
    let width: Int
    let kernel: (height: Int, width: Int)
    let pad: (top: Int, left: Int)
    let outHeight: Int
    let outWidth: Int
    /// The padded image every patch position lies in: rows [0, paddedHeight) are input rows
    /// [−top, paddedHeight − top), and likewise for columns.
    let paddedHeight: Int
    let paddedWidth: Int
    /// Whether some patch reads outside the input (then the patches read the zero-bordered copy).
    let usesImage: Bool
    /// offsets[(ky·kW + kx)·outH·outW + oy·outW + ox]: where that entry of a channel's column rows is
    /// read in the channel's image (the padded copy, or the input in place); `fold` adds through it.
    let offsets: [Int]
    let stride: (height: Int, width: Int)
    let dilation: (height: Int, width: Int)
    init(channels: Int, height: Int, width: Int, kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int) = (1, 1),
          pad: (top: Int, left: Int), outHeight: Int, outWidth: Int) {
        (self.channels, self.height, self.width, self.kernel, self.pad) = (channels, height, width, kernel, pad)
        (self.outHeight, self.outWidth) = (outHeight, outWidth)
        let paddedHeight = max(0, (outHeight - 1) * stride.0 + (kernel.0 - 1) * dilation.0 + 1)
        let paddedWidth = max(0, (outWidth - 1) * stride.1 + (kernel.1 - 1) * dilation.1 + 1)
        let usesImage = pad.top > 0 || pad.left > 0 || paddedHeight - pad.top > height || paddedWidth - pad.left > width
        let line = usesImage ? paddedWidth : width
        var offsets = [Int]()
        offsets.reserveCapacity(kernel.0 * kernel.1 * outHeight * outWidth)
        for ky in 0..<kernel.0 {
            for kx in 0..<kernel.1 {
                for oy in 0..<outHeight {
                    for ox in 0..<outWidth {
                        offsets.append((oy * stride.0 + ky * dilation.0) * line + ox * stride.1 + kx * dilation.1)
                    }
                }
            }
        }
        (self.paddedHeight, self.paddedWidth, self.usesImage, self.offsets) = (paddedHeight, paddedWidth, usesImage, offsets)
        (self.stride, self.dilation) = (stride, dilation)
    }

    var rows: Int { channels * kernel.height * kernel.width }
    var pixels: Int { outHeight * outWidth }
    /// Floats of one channel of the image the patches read.
    var plane: Int { usesImage ? paddedHeight * paddedWidth : height * width }
    /// Floats of scratch the padded image needs (0 when the input is read in place).
    var paddedCount: Int { usesImage ? channels * plane : 0 }

    /// The input rows and columns that lie inside the padded image.
    var inside: (rows: Int, columns: Int) {
        (max(0, min(height, paddedHeight - pad.top)), max(0, min(width, paddedWidth - pad.left)))
    }

    /// The unfolded sample, column rows `rowStride` apart (a block of samples can sit side by side).
    /// `padded` must hold `paddedCount` floats (unused when that is 0).
    func unfold(_ x: UnsafePointer<Float>, into cols: UnsafeMutablePointer<Float>, rowStride: Int, padded: UnsafeMutablePointer<Float>) {
        let source: UnsafePointer<Float>
        if usesImage {
            padded.update(repeating: 0, count: paddedCount)
            let (rowsIn, columnsIn) = inside
            for ch in 0..<channels {
                for iy in 0..<rowsIn {
                    Self.copy(x + (ch * height + iy) * width, to: padded + (ch * paddedHeight + iy + pad.top) * paddedWidth + pad.left, count: columnsIn)
                }
            }
            source = UnsafePointer(padded)
        } else {
            source = x
        }
        // One copy per output row: a 4-lane copy for stride 1 (the rows are contiguous in the image),
        // a strided loop otherwise. (A gather through `offsets` cost an index load per entry: 23 % of a
        // small CNN's forward.)
        let (kh, kw, plane) = (kernel.height, kernel.width, plane), line = usesImage ? paddedWidth : width
        let (step, rowStep, outWidth) = (stride.width, stride.height * line, outWidth)
        for ch in 0..<channels {
            let image = source + ch * plane
            for ky in 0..<kh {
                for kx in 0..<kw {
                    var src = image + ky * dilation.height * line + kx * dilation.width
                    var dst = cols + ((ch * kh + ky) * kw + kx) * rowStride
                    for _ in 0..<outHeight {
                        if step == 1 {
                            Self.copy(src, to: dst, count: outWidth)
                        } else {
                            var q = src
                            for ox in 0..<outWidth {
                                dst[ox] = q.pointee
                                q += step
                            }
                        }
                        src += rowStep
                        dst += outWidth
                    }
                }
            }
        }
    }

    /// The adjoint of `unfold`: overwrites the sample's `channels·height·width` floats at `dx` with
    /// the column entries added back where they were read from (0 where nothing was read), through the
    /// padded image when there is one. (A gather per input position over the entries that read it, in
    /// the same order, was 1.4× slower: four dependent adds per position on a stride-2 kernel of 4.)
    func fold(_ cols: UnsafePointer<Float>, rowStride: Int, into dx: UnsafeMutablePointer<Float>, padded: UnsafeMutablePointer<Float>) {
        let target = usesImage ? padded : dx
        let (patchRows, pixels, plane) = (kernel.height * kernel.width, pixels, plane)
        target.update(repeating: 0, count: channels * plane)
        offsets.withUnsafeBufferPointer { table in
            for ch in 0..<channels {
                let image = target + ch * plane
                for r in 0..<patchRows {
                    let src = cols + (ch * patchRows + r) * rowStride, at = table.baseAddress! + r * pixels
                    for p in 0..<pixels { image[at[p]] += src[p] }
                }
            }
        }
        guard usesImage else { return }
        let (rowsIn, columnsIn) = inside
        for ch in 0..<channels {
            for iy in 0..<height {
                let out = dx + (ch * height + iy) * width
                if iy < rowsIn {
                    Self.copy(padded + (ch * paddedHeight + iy + pad.top) * paddedWidth + pad.left, to: out, count: columnsIn)
                    (out + columnsIn).update(repeating: 0, count: width - columnsIn)
                } else {
                    out.update(repeating: 0, count: width)
                }
            }
        }
    }

    typealias Lanes = SIMD4<Float>

    /// dst[0..<count] = src[0..<count] in 4-lane chunks, the last chunk overlapping the one before (a
    /// copy may repeat lanes): no call and no alias check for the short rows of small images. Reads and
    /// writes nothing outside the two ranges.
    @inline(__always)
    static func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
        guard count >= Lanes.scalarCount else {
            for i in 0..<count { dst[i] = src[i] }
            return
        }
        var i = 0
        while i + Lanes.scalarCount <= count {
            UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: Lanes.self), as: Lanes.self)
            i += Lanes.scalarCount
        }
        if i < count {
            let last = count - Lanes.scalarCount
            UnsafeMutableRawPointer(dst + last).storeBytes(of: UnsafeRawPointer(src + last).loadUnaligned(as: Lanes.self), as: Lanes.self)
        }
    }
}
