import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

@Suite("calibration metrics and temperature scaling")
struct CalibrationTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let fixture = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/calibration.npz").map { ($0.name, $0.tensor) })
    static func scalar(_ name: String) -> Double { fixture[name]!.double(at: 0) }
    static var probabilities: Matrix<Float> { try! fixture["probabilities"]!.matrix(Float.self) }
    static var logits: Matrix<Float> { try! fixture["logits"]!.matrix(Float.self) }
    static var labels: [Int] { fixture["labels"]!.values(as: Double.self).map { Int($0) } }

    /// ECE by the textbook definition in float64, written independently of the library.
    static func referenceECE(_ p: Matrix<Float>, _ y: [Int], bins: Int, rightClosed: Bool) -> Double {
        var count = [Double](repeating: 0, count: bins), conf = count, acc = count
        for i in 0..<p.rows {
            let row = p.row(i)
            let top = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!
            let cf = Double(row[top])
            var b = rightClosed ? Int((cf * Double(bins)).rounded(.up)) - 1 : Int(cf * Double(bins))
            b = min(max(b, 0), bins - 1)
            count[b] += 1
            conf[b] += cf
            acc[b] += top == y[i] ? 1 : 0
        }
        return (0..<bins).reduce(0) { $0 + (count[$1] > 0 ? abs(acc[$1] - conf[$1]) / Double(p.rows) : 0) }
    }

    /// torchmetrics keeps float32 pieces even on float64 input (its bin boundaries and accuracies), so
    /// agreement is to float32 resolution: 5e-8 absolute on an ECE of 0.17.
    @Test func eceEqualsTorchmetricsUnderItsConvention() throws {
        let m = try CalibrationMetrics.compute(probabilities: Self.probabilities, labels: Self.labels, binning: .torchmetrics(bins: 15))
        #expect(abs(m.ece - Self.scalar("ece_torchmetrics")) <= 5e-8)
        #expect(abs(m.mce - Self.scalar("mce_torchmetrics")) <= 5e-8)
    }

    @Test func eceEqualsTheFloat64ReferenceUnderOurs() throws {
        for (binning, right) in [(CalibrationMetrics.Binning.equalWidth(bins: 15), false), (.equalWidthRightClosed(bins: 10), true)] {
            let m = try CalibrationMetrics.compute(probabilities: Self.probabilities, labels: Self.labels, binning: binning)
            let bins = binning == .equalWidth(bins: 15) ? 15 : 10
            #expect(abs(m.ece - Self.referenceECE(Self.probabilities, Self.labels, bins: bins, rightClosed: right)) <= 1e-12)
            #expect(m.bins.reduce(0) { $0 + $1.count } == Self.labels.count)
        }
        let mass = try CalibrationMetrics.compute(probabilities: Self.probabilities, labels: Self.labels, binning: .equalMass(bins: 15))
        let sizes = mass.bins.map(\.count)
        #expect(sizes.max()! - sizes.min()! <= 1 && sizes.reduce(0, +) == Self.labels.count)
    }

    /// The fused logits pass against the probabilities path on the same data (float32 softmax in both).
    @Test func logitsPathAgreesWithProbabilitiesPath() throws {
        for binning in [CalibrationMetrics.Binning.equalWidth(bins: 15), .equalWidthRightClosed(bins: 10), .torchmetrics(bins: 15)] {
            let fused = try CalibrationMetrics.compute(logits: Self.logits, labels: Self.labels, binning: binning)
            let direct = try CalibrationMetrics.compute(probabilities: Linalg.softmaxRows(Self.logits), labels: Self.labels, binning: binning)
            #expect(abs(fused.ece - direct.ece) <= 1e-6 && abs(fused.mce - direct.mce) <= 1e-5)
            #expect(abs(fused.nll - Self.scalar("nll_sklearn")) <= 1e-6 && abs(fused.brier - Self.scalar("brier_sklearn")) <= 1e-6)
            #expect(fused.bins.map(\.count) == direct.bins.map(\.count) && fused.accuracy == direct.accuracy)
        }
        var z = Self.logits
        z[5, 2] = .infinity
        let e = try #require(throws: ReliabilityError.self) { try CalibrationMetrics.compute(logits: z, labels: Self.labels) }
        #expect(e.description.contains("row 5"))
    }

    @Test func brierAndNLLEqualScikitLearn() throws {
        let m = try CalibrationMetrics.compute(probabilities: Self.probabilities, labels: Self.labels)
        #expect(abs(m.brier - Self.scalar("brier_sklearn")) <= 1e-9)
        #expect(abs(m.nll - Self.scalar("nll_sklearn")) <= 1e-7)
    }

    @Test func temperatureEqualsTheFloat64Optimum() throws {
        let fit = try TemperatureScaling.fit(logits: Self.logits, labels: Self.labels)
        #expect(abs(fit.temperature - Self.scalar("temperature_scipy")) <= 1e-6 * Self.scalar("temperature_scipy"))
        #expect(abs(fit.nllAfter - Self.scalar("nll_at_temperature")) <= 1e-10)
        #expect(fit.nllAfter < fit.nllBefore)
        let after = try CalibrationMetrics.compute(logits: fit.apply(Self.logits), labels: Self.labels)
        let before = try CalibrationMetrics.compute(logits: Self.logits, labels: Self.labels)
        #expect(after.ece < before.ece)
    }

    @Test func badInputsAreNamed() throws {
        var p = Self.probabilities
        p[3, 1] += 0.2
        let e = try #require(throws: ReliabilityError.self) { try CalibrationMetrics.compute(probabilities: p, labels: Self.labels) }
        #expect(e.description.contains("row 3"))
        #expect(throws: ReliabilityError.self) { try CalibrationMetrics.compute(probabilities: Self.probabilities, labels: Self.labels.map { $0 + 7 }) }
        #expect(throws: ReliabilityError.self) { try CalibrationMetrics.compute(probabilities: Matrix(rows: 0, columns: 3), labels: []) }
        var z = Self.logits
        z[0, 0] = .nan
        #expect(throws: ReliabilityError.self) { try TemperatureScaling.fit(logits: z, labels: Self.labels) }
    }
}
