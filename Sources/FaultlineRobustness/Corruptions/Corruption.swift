import FaultlineLinalg
import FaultlineNN

#if canImport(Glibc)
import Glibc
#endif

/// Natural (non-adversarial) perturbations of image rows, with five severities each, after
/// CIFAR-10-C (Hendrycks & Dietterich 2019) for the noise, blur, contrast and brightness families and
/// MNIST-C (Mu & Gilmer 2019) for the geometric ones. Inputs are rows of `ImageShape` (NCHW) in [0, 1];
/// outputs are clipped to [0, 1].
///
/// | corruption | severity 1…5 | operation |
/// |---|---|---|
/// | gaussianNoise | σ = 0.04, 0.06, 0.08, 0.09, 0.10 | x + N(0, σ²) |
/// | shotNoise | λ = 500, 250, 100, 75, 50 | Poisson(λx)/λ |
/// | saltAndPepper | p = 0.01, 0.02, 0.03, 0.05, 0.07 | a share p of pixels (all channels) set to 0 or 1, even odds |
/// | gaussianBlur | σ = 0.4, 0.6, 0.7, 0.8, 1.0 px | separable Gaussian, truncated at 4σ, edges replicated |
/// | contrast | c = 0.75, 0.5, 0.4, 0.3, 0.15 | (x − m)·c + m, m the per-image, per-channel mean |
/// | brightness | b = 0.05, 0.1, 0.15, 0.2, 0.3 | V + b in HSV for 3 channels, x + b otherwise |
/// | rotation | 6°·severity, random sign | bilinear about the centre, zero outside |
/// | translation | r = max(1, 0.05·severity·side) px, random direction θ | shift by (round(r·sin θ), round(r·cos θ)), zero fill |
///
/// Random draws come from Philox keyed by (seed, row index, corruption): one stream per row, so a row's
/// corruption does not depend on the batch it is in. The row index is the row's place in the whole data
/// set, `sampleOffset + i` for row i of `x`: rows a..<b corrupted with offset a (a shard of an `mpirun`
/// job) get exactly the copies they get inside the whole set.
public enum Corruption: String, CaseIterable, Sendable, Codable {
    /// x + N(0, σ²).
    case gaussianNoise = "gaussian-noise"
    /// Poisson(λx)/λ.
    case shotNoise = "shot-noise"
    /// A share p of pixels set to 0 or 1.
    case saltAndPepper = "salt-and-pepper"
    /// A separable Gaussian blur.
    case gaussianBlur = "gaussian-blur"
    /// (x − m)·c + m per image and channel.
    case contrast
    /// V + b in HSV (3 channels), else x + b.
    case brightness
    /// A bilinear rotation about the centre by 6°·severity, random sign.
    case rotation
    /// A shift in a random direction, zero fill.
    case translation

    /// The severity parameter of the table above (severity 1…5).
    public func parameter(severity: Int) -> Double {
        let table: [Double] = switch self {
        case .gaussianNoise: [0.04, 0.06, 0.08, 0.09, 0.10]
        case .shotNoise: [500, 250, 100, 75, 50]
        case .saltAndPepper: [0.01, 0.02, 0.03, 0.05, 0.07]
        case .gaussianBlur: [0.4, 0.6, 0.7, 0.8, 1.0]
        case .contrast: [0.75, 0.5, 0.4, 0.3, 0.15]
        case .brightness: [0.05, 0.1, 0.15, 0.2, 0.3]
        case .rotation: [6, 12, 18, 24, 30]
        case .translation: [0.05, 0.10, 0.15, 0.20, 0.25]
        }
        return table[severity - 1]
    }

    /// Applies the corruption at `severity` (1…5) to every row of `x`, laid out as `shape`. Row i draws
    /// from the Philox stream of row `sampleOffset + i` (its index in the whole data set when `x` is a
    /// shard of it; 0 for a whole set), so the output rows are bit-identical however the set is split.
    /// Throws `AttackError` for a severity outside 1…5, a shape that does not match, a negative
    /// `sampleOffset`, or inputs outside [0, 1] or not finite.
    public func apply(to x: Matrix<Float>, shape: ImageShape, severity: Int, seed: UInt64 = 0, sampleOffset: Int = 0) throws -> Matrix<Float> {
        guard (1...5).contains(severity) else { throw AttackError.invalidParameter("severity \(severity) must be 1…5") }
        guard shape.features == x.columns else {
            throw AttackError.invalidInput("image shape \(shape) has \(shape.features) features but the rows have \(x.columns)")
        }
        guard sampleOffset >= 0 else { throw AttackError.invalidParameter("sampleOffset \(sampleOffset) must be ≥ 0 (the index of x's first row in the whole set)") }
        if let bad = x.withUnsafeBufferPointer({ $0.firstIndex { !($0 >= 0 && $0 <= 1) } }) {
            throw AttackError.invalidInput("x[\(bad / x.columns), \(bad % x.columns)] = \(x[bad / x.columns, bad % x.columns]) is outside [0, 1]; corruptions expect pixel intensities in [0, 1]")
        }
        let p = parameter(severity: severity), d = x.columns
        var out = x
        out.withUnsafeMutableBufferPointer { buffer in
            Linalg.parallelForEach(x.rows) { i in
                let row = buffer.baseAddress! + i * d
                var rng = Philox(seed: seed, stream: UInt64(truncatingIfNeeded: sampleOffset &+ i) << 8 | UInt64(Corruption.allCases.firstIndex(of: self)!))
                apply(row, shape: shape, parameter: p, rng: &rng)
            }
        }
        return out
    }

    /// One row in place at parameter `p` (the kernel of `apply(to:shape:severity:seed:)` and of `CorruptionAugmentation`).
    func apply(_ row: UnsafeMutablePointer<Float>, shape: ImageShape, parameter p: Double, rng: inout Philox) {
        let d = shape.features
        switch self {
        case .gaussianNoise:
            for j in 0..<d { row[j] = clip(Double(row[j]) + p * rng.normal()) }
        case .shotNoise:
            for j in 0..<d { row[j] = clip(Double(Corruption.poisson(Double(row[j]) * p, &rng)) / p) }
        case .saltAndPepper:
            let plane = shape.height * shape.width
            for pixel in 0..<plane where rng.uniform() < p {
                let value: Float = rng.uniform() < 0.5 ? 0 : 1
                for c in 0..<shape.channels { row[c * plane + pixel] = value }
            }
        case .gaussianBlur:
            ImageOps.gaussianBlur(row, shape: shape, sigma: p)
        case .contrast:
            let plane = shape.height * shape.width
            for c in 0..<shape.channels {
                let channel = row + c * plane
                var mean = 0.0
                for j in 0..<plane { mean += Double(channel[j]) }
                mean /= Double(plane)
                for j in 0..<plane { channel[j] = clip((Double(channel[j]) - mean) * p + mean) }
            }
        case .brightness:
            if shape.channels == 3 {
                ImageOps.brightenHSV(row, plane: shape.height * shape.width, by: p)
            } else {
                for j in 0..<d { row[j] = clip(Double(row[j]) + p) }
            }
        case .rotation:
            let degrees = rng.uniform() < 0.5 ? -p : p
            ImageOps.rotate(row, shape: shape, radians: degrees * .pi / 180)
        case .translation:
            let angle = rng.uniform() * 2 * .pi
            let dy = Int((max(1, p * Double(shape.height)) * sin(angle)).rounded()), dx = Int((max(1, p * Double(shape.width)) * cos(angle)).rounded())
            ImageOps.translate(row, shape: shape, dy: dy, dx: dx)
        }
    }

    private func clip(_ v: Double) -> Float { Float(min(max(v, 0), 1)) }

    /// An exact Poisson(λ) draw: Knuth's product method for λ < 10, Hörmann's transformed rejection
    /// with squeeze (PTRS, 1993) above, O(1) expected uniforms.
    static func poisson(_ lambda: Double, _ rng: inout Philox) -> Int {
        if lambda <= 0 { return 0 }
        if lambda < 10 {
            let limit = exp(-lambda)
            var k = 0, product = rng.uniform()
            while product > limit { k += 1; product *= rng.uniform() }
            return k
        }
        let root = lambda.squareRoot(), logLambda = log(lambda)
        let b = 0.931 + 2.53 * root, a = -0.059 + 0.02483 * b
        let inverseAlpha = 1.1239 + 1.1328 / (b - 3.4), acceptance = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = rng.uniform() - 0.5, v = rng.uniform()
            let us = 0.5 - abs(u)
            let k = ((2 * a / us + b) * u + lambda + 0.43).rounded(.down)
            if us >= 0.07 && v <= acceptance { return Int(k) }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if log(v) + log(inverseAlpha) - log(a / (us * us) + b) <= -lambda + k * logLambda - lgamma(k + 1) { return Int(k) }
        }
    }
}
