import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// Corruptions against scipy.ndimage (blur, rotation; scripts/fixtures/make_corruption_fixtures.py),
/// closed forms (contrast, brightness, translation) and the moments of their noise distributions.
@Suite("corruptions")
struct CorruptionTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/corruptions.npz").map { ($0.name, $0.tensor) })
    static let shape = ImageShape(channels: 3, height: 9, width: 7)
    static func row(_ key: String) -> [Float] { arrays[key]!.values(as: Float.self) }
    static var x: Matrix<Float> { try! arrays["x"]!.matrix(Float.self) }

    @Test(arguments: 1...5)
    func blurMatchesScipy(severity: Int) throws {
        let out = try Corruption.gaussianBlur.apply(to: Self.x, shape: Self.shape, severity: severity)
        let error = zip(out.elements, Self.row("blur_\(severity)")).map { abs($0 - $1) }.max()!
        #expect(error <= 1e-6, "severity \(severity): max error \(error)")
    }

    @Test(arguments: 1...5)
    func rotationMatchesScipyForEitherSign(severity: Int) throws {
        let degrees = severity * 6
        for seed: UInt64 in 0..<4 {
            let out = try Corruption.rotation.apply(to: Self.x, shape: Self.shape, severity: severity, seed: seed).elements
            let errors = ["plus", "minus"].map { sign in zip(out, Self.row("rotate_\(sign)_\(degrees)")).map { abs($0 - $1) }.max()! }
            #expect(errors.min()! <= 1e-5, "±\(degrees)°: errors \(errors)")
        }
    }

    @Test func contrastAndBrightnessFollowTheirClosedForms() throws {
        let x = Self.x, plane = 63
        let contrast = try Corruption.contrast.apply(to: x, shape: Self.shape, severity: 2).elements
        for c in 0..<3 {
            let channel = (0..<plane).map { Double(x[0, c * plane + $0]) }
            let mean = channel.reduce(0, +) / Double(plane)
            for j in 0..<plane {
                #expect(abs(Double(contrast[c * plane + j]) - min(max((channel[j] - mean) * 0.5 + mean, 0), 1)) <= 1e-6)
            }
        }
        // Brightness on RGB: the textbook HSV round trip with V raised by 0.2.
        let bright = try Corruption.brightness.apply(to: x, shape: Self.shape, severity: 4).elements
        for j in 0..<plane {
            let (h, s, v) = Self.rgbToHSV(Double(x[0, j]), Double(x[0, plane + j]), Double(x[0, 2 * plane + j]))
            let (r, g, b) = Self.hsvToRGB(h, s, min(v + 0.2, 1))
            #expect(abs(Double(bright[j]) - r) <= 1e-6 && abs(Double(bright[plane + j]) - g) <= 1e-6 && abs(Double(bright[2 * plane + j]) - b) <= 1e-6)
        }
        // Grey images: x + b, clipped.
        let grey = try Matrix<Float>(rows: 1, columns: 4, elements: [0, 0.5, 0.9, 1])
        #expect(try Corruption.brightness.apply(to: grey, shape: ImageShape(channels: 1, height: 2, width: 2), severity: 5).elements == [0.3, 0.8, 1, 1])
    }

    @Test func translationIsAPureShiftOfTheDocumentedSize() throws {
        let side = 20, shape = ImageShape(channels: 1, height: side, width: side)
        var rng = Philox(seed: 9)
        let x: Matrix<Float> = rng.matrix(rows: 6, columns: side * side, .uniform(0.1, 1))
        let out = try Corruption.translation.apply(to: x, shape: shape, severity: 3, seed: 1)
        for i in 0..<x.rows {
            var found = false
            for dy in -3...3 {
                for dx in -3...3 where (Double(dy * dy + dx * dx)).squareRoot() >= 2 && !found {
                    found = (0..<side).allSatisfy { y in (0..<side).allSatisfy { xx in
                        let sy = y - dy, sx = xx - dx
                        let expected: Float = sy >= 0 && sy < side && sx >= 0 && sx < side ? x[i, sy * side + sx] : 0
                        return out[i, y * side + xx] == expected
                    } }
                }
            }
            #expect(found, "row \(i) is not a shift by about 3 pixels")
        }
    }

    /// Moments over many pixels: Gaussian noise σ, Poisson shot noise (both of its samplers), and the
    /// salt-and-pepper share, within 4 standard errors.
    @Test func noiseHasTheDocumentedMoments() throws {
        let n = 200, side = 20, shape = ImageShape(channels: 1, height: side, width: side), count = Double(n * side * side)
        func moments(_ m: Matrix<Float>) -> (mean: Double, variance: Double) {
            let v = m.elements.map(Double.init)
            let mean = v.reduce(0, +) / count
            return (mean, v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1))
        }
        let half = Matrix<Float>(rows: n, columns: side * side, repeating: 0.5)
        let gauss = moments(try Corruption.gaussianNoise.apply(to: half, shape: shape, severity: 5))
        #expect(abs(gauss.mean - 0.5) <= 4 * 0.1 / count.squareRoot() && abs(gauss.variance.squareRoot() - 0.1) <= 0.002)
        // λx = 25 (rejection sampler): Poisson(25)/50 has mean 0.5, variance 0.01.
        let shot = moments(try Corruption.shotNoise.apply(to: half, shape: shape, severity: 5))
        #expect(abs(shot.mean - 0.5) <= 4 * 0.1 / count.squareRoot() && abs(shot.variance / 0.01 - 1) <= 0.03)
        // λx = 5 (product sampler): Poisson(5)/50, mean 0.1, variance 0.002.
        let dim = Matrix<Float>(rows: n, columns: side * side, repeating: 0.1)
        let low = moments(try Corruption.shotNoise.apply(to: dim, shape: shape, severity: 5))
        #expect(abs(low.mean - 0.1) <= 4 * 0.002.squareRoot() / count.squareRoot() && abs(low.variance / 0.002 - 1) <= 0.03)
        let salt = try Corruption.saltAndPepper.apply(to: half, shape: shape, severity: 5).elements
        let changed = Double(salt.filter { $0 != 0.5 }.count) / count, white = Double(salt.filter { $0 == 1 }.count) / count
        #expect(abs(changed - 0.07) <= 4 * (0.07 * 0.93 / count).squareRoot() && abs(white - 0.035) <= 0.004)
    }

    @Test func sweepTabulatesEveryCellAndRejectsBadInput() throws {
        let digits = try BundledDatasets.digits()
        let model = APGDTests.model
        let x = digits.features, y = digits.labels, shape = ImageShape(channels: 1, height: 8, width: 8)
        let report = try CorruptionSweep.evaluate(model, x, labels: y, shape: shape, corruptions: [.gaussianNoise, .contrast], severities: [1, 5])
        #expect(report.cells.count == 4)
        let corrupted = try Corruption.contrast.apply(to: x, shape: shape, severity: 5)
        let expected = Double(zip(try model.predict(corrupted), y).filter { $0 == $1 }.count) / Double(y.count)
        #expect(report.cells.last! == CorruptionSweep.Cell(corruption: .contrast, severity: 5, accuracy: expected))
        #expect(report.cleanAccuracy > 0.9)
        #expect(throws: AttackError.self) { try Corruption.contrast.apply(to: x, shape: shape, severity: 6) }
        #expect(throws: AttackError.self) { try Corruption.contrast.apply(to: x, shape: ImageShape(channels: 1, height: 7, width: 8), severity: 1) }
        #expect(throws: AttackError.self) { try Corruption.contrast.apply(to: x.map { $0 * 2 }, shape: shape, severity: 1) }
    }

    static func rgbToHSV(_ r: Double, _ g: Double, _ b: Double) -> (Double, Double, Double) {
        let v = max(r, g, b), m = min(r, g, b)
        guard v > 0 else { return (0, 0, 0) }
        let s = (v - m) / v
        guard v > m else { return (0, s, v) }
        let h: Double = v == r ? (g - b) / (v - m) : v == g ? 2 + (b - r) / (v - m) : 4 + (r - g) / (v - m)
        return ((h / 6).truncatingRemainder(dividingBy: 1) + 1, s, v)
    }

    static func hsvToRGB(_ h: Double, _ s: Double, _ v: Double) -> (Double, Double, Double) {
        let h6 = (h * 6).truncatingRemainder(dividingBy: 6), i = Int(h6.rounded(.down)), f = h6 - Double(i)
        let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
        switch i {
        case 0: return (v, t, p)
        case 1: return (q, v, p)
        case 2: return (p, v, t)
        case 3: return (p, q, v)
        case 4: return (t, p, v)
        default: return (v, p, q)
        }
    }
}
