import FaultlineNN

#if canImport(Glibc)
import Glibc
#endif

/// In-place image operations on one NCHW row, used by `Corruption`. Arithmetic in Double.
enum ImageOps {
    /// Separable Gaussian blur with standard deviation `sigma` pixels, kernel radius ⌊4σ + 0.5⌋ and
    /// replicated edges (scipy.ndimage.gaussian_filter with mode "nearest", truncate 4).
    static func gaussianBlur(_ row: UnsafeMutablePointer<Float>, shape: ImageShape, sigma: Double) {
        let radius = Int(4 * sigma + 0.5)
        var weights = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let total = weights.reduce(0, +)
        weights = weights.map { $0 / total }
        let h = shape.height, w = shape.width, plane = h * w
        var buffer = [Double](repeating: 0, count: plane)
        for c in 0..<shape.channels {
            let channel = row + c * plane
            for y in 0..<h {  // along rows
                for x in 0..<w {
                    var s = 0.0
                    for t in -radius...radius { s += weights[t + radius] * Double(channel[y * w + min(max(x + t, 0), w - 1)]) }
                    buffer[y * w + x] = s
                }
            }
            for y in 0..<h {  // along columns
                for x in 0..<w {
                    var s = 0.0
                    for t in -radius...radius { s += weights[t + radius] * buffer[min(max(y + t, 0), h - 1) * w + x] }
                    channel[y * w + x] = Float(min(max(s, 0), 1))
                }
            }
        }
    }

    /// Adds `amount` to the HSV value V = max(r, g, b) of each pixel of a 3-channel image, keeping hue
    /// and saturation: rgb ← rgb·V'/V (V' = clip(V + amount)), or grey V' where V = 0 — the exact
    /// HSV round trip in closed form.
    static func brightenHSV(_ row: UnsafeMutablePointer<Float>, plane: Int, by amount: Double) {
        for j in 0..<plane {
            let r = Double(row[j]), g = Double(row[plane + j]), b = Double(row[2 * plane + j])
            let v = max(r, g, b), brighter = min(max(v + amount, 0), 1)
            let scale = v > 0 ? brighter / v : 0
            for (c, value) in [r, g, b].enumerated() {
                row[c * plane + j] = Float(v > 0 ? min(value * scale, 1) : brighter)
            }
        }
    }

    /// Rotates each channel by `radians` (counter-clockwise on screen) about the image centre with
    /// bilinear interpolation; samples falling outside the image read 0.
    static func rotate(_ row: UnsafeMutablePointer<Float>, shape: ImageShape, radians: Double) {
        let h = shape.height, w = shape.width, plane = h * w
        let cy = Double(h - 1) / 2, cx = Double(w - 1) / 2, cosA = cos(radians), sinA = sin(radians)
        var source = [Float](repeating: 0, count: plane)
        for c in 0..<shape.channels {
            let channel = row + c * plane
            for j in 0..<plane { source[j] = channel[j] }
            func pixel(_ y: Int, _ x: Int) -> Double { y >= 0 && y < h && x >= 0 && x < w ? Double(source[y * w + x]) : 0 }
            for y in 0..<h {
                for x in 0..<w {
                    // Inverse map: the source point that lands on (y, x).
                    let dy = Double(y) - cy, dx = Double(x) - cx
                    let sy = cy + cosA * dy - sinA * dx, sx = cx + sinA * dy + cosA * dx
                    let y0 = Int(sy.rounded(.down)), x0 = Int(sx.rounded(.down))
                    let fy = sy - Double(y0), fx = sx - Double(x0)
                    let value = (1 - fy) * ((1 - fx) * pixel(y0, x0) + fx * pixel(y0, x0 + 1)) + fy * ((1 - fx) * pixel(y0 + 1, x0) + fx * pixel(y0 + 1, x0 + 1))
                    channel[y * w + x] = Float(min(max(value, 0), 1))
                }
            }
        }
    }

    /// Shifts each channel by (dy, dx) pixels (down and right positive), filling with 0.
    static func translate(_ row: UnsafeMutablePointer<Float>, shape: ImageShape, dy: Int, dx: Int) {
        let h = shape.height, w = shape.width, plane = h * w
        var source = [Float](repeating: 0, count: plane)
        for c in 0..<shape.channels {
            let channel = row + c * plane
            for j in 0..<plane { source[j] = channel[j] }
            for y in 0..<h {
                for x in 0..<w {
                    let sy = y - dy, sx = x - dx
                    channel[y * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? source[sy * w + sx] : 0
                }
            }
        }
    }
}
