import FaultlineAnalysis
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import Foundation
import Testing

/// The report's accuracy-without-labels section: ATC and DoC on the shifted sets against an independent
/// float64 computation of their definitions, the JSON keys, old reports without them, and the rendering.
@Suite("FailureReport: accuracy without labels", .serialized)
struct AccuracyWithoutLabelsReportTests {
    static func options() -> FailureReport.Options {
        var o = FailureReport.Options()
        o.epsilons = [0]
        o.robustnessSamples = 10
        o.skip = [.attacks, .certify, .corruptions, .conformal]
        return o
    }

    /// Top probabilities of the model's softmax, in Double.
    static func msp(_ model: Sequential, _ x: Matrix<Float>) throws -> (msp: [Double], predicted: [Int]) {
        let z = try model.logits(x)
        return (0..<z.rows).reduce(into: ([Double](), [Int]())) { acc, i in
            let row = z.row(i).map(Double.init)
            let m = row.max()!, s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            acc.0.append(1 / s)
            acc.1.append(row.firstIndex(of: m)!)
        }
    }

    @Test func atcAndDocMatchTheirDefinitionsOnTheShiftedSets() throws {
        let (model, split) = FailureReportTests.fixture
        let noisy = FailureReport.ShiftedSet.gaussianNoise(split.test.features, sigma: 0.3, seed: 1, name: "noise", labels: split.test.labels)
        let unlabelled = FailureReport.ShiftedSet(name: "unlabelled", features: split.test.features)
        let report = try FailureReport.build(model: model, data: FailureReportTests.data(shifted: [noisy, unlabelled]), options: Self.options())
        let a = try #require(report.accuracyWithoutLabels)
        #expect(a.source == "calibration" && a.score == "msp")
        #expect(a.rows.map(\.shift) == ["clean test", "noise", "unlabelled"])
        #expect(a.rows[0].accuracy == report.reliability.accuracy && a.rows[1].accuracy == report.shift[0].accuracy && a.rows[2].accuracy == nil)
        // The definitions, in float64: threshold = the e-th smallest source MSP; share above (ties at t weighted).
        let calibration = split.calibration
        let source = try Self.msp(model, calibration.features)
        let correct = zip(source.predicted, calibration.labels).filter { $0 == $1 }.count
        #expect(abs(a.sourceAccuracy - Double(correct) / Double(calibration.count)) <= 1e-12)
        let t = source.msp.sorted()[calibration.count - correct - 1]
        for (row, x) in zip(a.rows, [split.test.features, noisy.features, split.test.features]) {
            let target = try Self.msp(model, x).msp
            let atc = Double(target.filter { $0 > t }.count) / Double(target.count)
            // Float32 softmax vs float64 here: a few rows near t may fall on the other side.
            #expect(abs(row.atc - atc) <= 3 / Double(target.count), "\(row.shift): \(row.atc) vs \(atc)")
            let doc = a.sourceAccuracy + target.reduce(0, +) / Double(target.count) - source.msp.reduce(0, +) / Double(source.msp.count)
            #expect(abs(row.doc - min(1, max(0, doc))) <= 1e-5, "\(row.shift)")
        }
        // On clean data ATC is close to the truth; the unlabelled copy gets the same prediction.
        #expect(abs(a.rows[0].atc - a.rows[0].accuracy!) <= 0.05, "\(a.rows[0])")
        #expect(a.rows[2].atc == a.rows[0].atc && a.rows[2].doc == a.rows[0].doc)
    }

    @Test func jsonKeysRoundTripAndOldReportsStillDecode() throws {
        let (model, split) = FailureReportTests.fixture
        let copy = FailureReport.ShiftedSet(name: "copy", features: split.test.features, labels: split.test.labels)
        let report = try FailureReport.build(model: model, data: FailureReportTests.data(shifted: [copy]), options: Self.options())
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let section = try #require(object["accuracyWithoutLabels"] as? [String: Any])
        #expect(Set(section.keys) == ["source", "score", "sourceAccuracy", "threshold", "tieWeight", "rows"])
        let row = try #require((section["rows"] as? [[String: Any]])?.last)
        #expect(Set(row.keys) == ["shift", "samples", "accuracy", "atc", "doc", "averageConfidence"])
        let decoded = try JSONDecoder().decode(FailureReport.self, from: data)
        #expect(decoded.accuracyWithoutLabels?.rows.map(\.atc) == report.accuracyWithoutLabels?.rows.map(\.atc))
        // A report written before the section existed decodes with it absent.
        var old = object
        old.removeValue(forKey: "accuracyWithoutLabels")
        let legacy = try JSONDecoder().decode(FailureReport.self, from: try JSONSerialization.data(withJSONObject: old))
        #expect(legacy.accuracyWithoutLabels == nil)
        // No shifted sets: no section.
        let none = try FailureReport.build(model: model, data: FailureReportTests.data(), options: Self.options())
        #expect(none.accuracyWithoutLabels == nil)
        // The rendering shows the table.
        let html = FailureReportRenderer.text(report)
        #expect(html.contains("ATC") && html.contains("DoC") && html.contains("clean test"))
    }
}
