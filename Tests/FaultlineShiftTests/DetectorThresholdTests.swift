import FaultlineIO
import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing
import _TestSupport

/// `DetectorThreshold`: the split-conformal rank, its false-positive guarantee by simulation, and the
/// threshold's round trip through a detector file (absent, valid, corrupt).
@Suite("detector thresholds")
struct DetectorThresholdTests {
    /// The ⌈(n + 1)(1 − α)⌉-th smallest score, +∞ when that rank exceeds n, for every n ≤ 40 and α.
    @Test(arguments: [0.01, 0.05, 0.1, 0.25, 0.5, 0.9])
    func rankIsTheConformalQuantile(alpha: Double) throws {
        var rng = Philox(seed: 4)
        for n in 1...40 {
            let scores = (0..<n).map { _ in Float(rng.uniform()) }
            let t = try DetectorThreshold.calibrate(inDistribution: scores, falsePositiveRate: alpha)
            let rank = Int(((Double(n) + 1) * (1 - alpha)).rounded(.up))
            #expect(t.value == (rank > n ? .infinity : scores.sorted()[rank - 1]), "n \(n)")
            #expect(t.calibrationSamples == n && t.falsePositiveRate == alpha)
            // At most α·(n + 1) − 1 < … of the calibration scores lie above it.
            #expect(Double(t.flaggedCount(scores)) <= alpha * Double(n + 1))
        }
        #expect(throws: ShiftError.self) { try DetectorThreshold.calibrate(inDistribution: [], falsePositiveRate: alpha) }
        #expect(throws: ShiftError.self) { try DetectorThreshold.calibrate(inDistribution: [1, .nan], falsePositiveRate: alpha) }
    }

    @Test(arguments: [0.0, 1.0, -0.1, .nan])
    func badRatesThrow(alpha: Double) {
        #expect(throws: ShiftError.self) { try DetectorThreshold.calibrate(inDistribution: [1, 2, 3], falsePositiveRate: alpha) }
    }

    /// A fresh in-distribution score exceeds the threshold with probability (n + 1 − k)/(n + 1) for
    /// continuous scores: 0.1 exactly for n = 19, α = 0.1; 20,000 simulated trials agree within 4σ.
    @Test func falsePositiveRateHoldsBySimulation() throws {
        var rng = Philox(seed: 12)
        let trials = 20_000
        var flagged = 0
        for _ in 0..<trials {
            let calibration = (0..<19).map { _ in Float(rng.normal()) }
            let t = try DetectorThreshold.calibrate(inDistribution: calibration, falsePositiveRate: 0.1)
            if Float(rng.normal()) > t.value { flagged += 1 }
        }
        let rate = Double(flagged) / Double(trials), sigma = (0.1 * 0.9 / Double(trials)).squareRoot()
        #expect(abs(rate - 0.1) < 4 * sigma, "rate \(rate)")
    }

    @Test func roundTripThroughTheDetectorFile() throws {
        var rng = Philox(seed: 3)
        let x = Matrix<Float>(rows: 60, columns: 3, repeating: 0).map { _ in Float(rng.normal()) }
        let detector = try DetectorFile.Detector.fit(.knn, features: x, labels: nil, shrinkage: .ledoitWolf, accumulation: .float64,
                                                     logDeterminant: false, k: 3)
        let dir = TestScratch.root.appendingPathComponent("threshold-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let threshold = DetectorThreshold(value: 0.75, falsePositiveRate: 0.05, calibrationSamples: 40)
        try DetectorFile.save(detector, threshold: threshold, to: dir + "/t.safetensors")
        try DetectorFile.save(detector, to: dir + "/n.safetensors")
        #expect(try DetectorFile.threshold(in: SafeTensors.read(dir + "/t.safetensors")) == threshold)
        #expect(try DetectorFile.threshold(in: SafeTensors.read(dir + "/n.safetensors")) == nil)
        #expect(try DetectorFile.load(dir + "/t.safetensors").score(x) == detector.score(x))
        let infinite = DetectorThreshold(value: .infinity, falsePositiveRate: 0.01, calibrationSamples: 5)
        try DetectorFile.save(detector, threshold: infinite, to: dir + "/i.safetensors")
        #expect(try DetectorFile.threshold(in: SafeTensors.read(dir + "/i.safetensors")) == infinite)
        let file = try SafeTensors.read(dir + "/t.safetensors")
        for (key, value) in [("threshold", "nan"), ("threshold_fpr", "1.5"), ("threshold_samples", "0"), ("threshold_samples", "1e30"),
                             ("threshold_fpr", "")] {
            var bad = file
            bad.metadata[key] = value
            #expect(throws: ShiftError.self) { try DetectorFile.threshold(in: bad, name: "bad") }
        }
        var partial = file
        partial.metadata["threshold_fpr"] = nil
        #expect(throws: ShiftError.self) { try DetectorFile.threshold(in: partial, name: "partial") }
    }
}
