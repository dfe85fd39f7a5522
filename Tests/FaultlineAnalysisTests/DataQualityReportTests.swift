import FaultlineAnalysis
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineReport
import FaultlineShift
import Foundation
import Testing

/// The report's data section: label issues on the test split equal `ConfidentLearning` on the model's
/// probabilities, planted train/test duplicates and label conflicts are found, the JSON key is optional
/// (old reports decode), and the page shows the section.
@Suite("FailureReport: data quality", .serialized)
struct DataQualityReportTests {
    static func options() -> FailureReport.Options {
        var o = FailureReport.Options()
        o.epsilons = [0]
        o.robustnessSamples = 10
        o.skip = [.attacks, .certify, .corruptions, .conformal]
        return o
    }

    @Test func labelIssuesAndLeakageAreTheLibrarysAnswer() throws {
        let (model, split) = FailureReportTests.fixture
        // Test rows 0…9 replaced by training rows 0…9 (exact duplicates); rows 0 and 1 get another label.
        var test = split.test
        var x = test.features, y = test.labels
        for i in 0..<10 {
            for j in 0..<x.columns { x[i, j] = split.train.features[i, j] }
            y[i] = i < 2 ? (split.train.labels[i] + 1) % 10 : split.train.labels[i]
        }
        test = try LabeledDataset(name: test.name, features: x, labels: y, classCount: test.classCount)
        let data = FailureReport.Data(train: split.train, test: test, calibration: split.calibration, imageShape: ImageShape(channels: 1, height: 8, width: 8))
        let report = try FailureReport.build(model: model, data: data, options: Self.options())
        let d = try #require(report.dataQuality)
        let l = try #require(d.labelIssues)
        let p = try Linalg.softmaxRows(try model.logits(x))
        let expected = try ConfidentLearning.analyse(probabilities: p, labels: y)
        #expect(l.issues == expected.issues.count && l.top.map(\.row) == Array(expected.issues.prefix(FailureReport.DataQuality.listedRows)))
        #expect(l.confidentJoint == expected.confidentJoint && l.thresholds == expected.thresholds && l.samples == x.rows)
        #expect(l.perClass.reduce(0, +) == l.issues)
        let k = try #require(d.leakage)
        let reference = try TrainTestDuplicates.find(train: split.train.features, test: x, threshold: .relativeToMedianNeighbour(0.05),
                                                     trainLabels: split.train.labels, testLabels: y, medianSampleRows: 2000)
        #expect(k.exactDuplicateTestRows >= 10 && k.exactDuplicateTestRows == reference.exactDuplicateTestRows)
        #expect(k.nearDuplicateTestRows == reference.nearDuplicateTestRows && k.exactLabelConflicts == reference.exactLabelConflicts)
        #expect((k.exactLabelConflicts ?? 0) >= 2)
        #expect(k.pairs.count == min(reference.pairs.count, FailureReport.DataQuality.listedPairs))
        let text = FailureReportRenderer.text(report)
        #expect(text.contains("Data: labels and leakage") && text.contains("equal a training row") && text.contains("Label issues (confident learning"))
    }

    /// Given (out-of-sample) probabilities replace the model's, also after --max-samples subsampling;
    /// ones of the wrong shape fall back to the model's with a note.
    @Test func givenProbabilitiesAreUsed() throws {
        let (model, split) = FailureReportTests.fixture
        var rng = Philox(seed: 12)
        var given = Matrix<Float>(rows: split.test.count, columns: 10)
        for i in 0..<given.rows {
            let row = (0..<10).map { j in Float(rng.uniform()) + (j == split.test.labels[i] ? 2 : 0) }
            let s = row.reduce(0, +)
            for j in 0..<10 { given[i, j] = row[j] / s }
        }
        var data = FailureReportTests.data()
        data.labelProbabilities = given
        let report = try FailureReport.build(model: model, data: data, options: Self.options())
        let l = try #require(report.dataQuality?.labelIssues)
        let expected = try ConfidentLearning.analyse(probabilities: given, labels: split.test.labels)
        #expect(l.probabilities == "the given out-of-sample" && l.issues == expected.issues.count && l.thresholds == expected.thresholds)
        // Subsampled: the same rows of the given probabilities as of the test set.
        var options = Self.options()
        options.maxSamples = 100
        let sub = try FailureReport.build(model: model, data: data, options: options)
        let rows = LabeledDataset.sampleRows(100, of: split.test.count, seed: options.seed)
        let expectedSub = try ConfidentLearning.analyse(probabilities: given.gatherRows(rows), labels: rows.map { split.test.labels[$0] })
        #expect(sub.dataQuality?.labelIssues?.thresholds == expectedSub.thresholds && sub.dataQuality?.labelIssues?.samples == 100)
        // Wrong shape: the model's probabilities, and a note.
        data.labelProbabilities = Matrix(rows: 3, columns: 10, repeating: 0.1)
        let misfit = try FailureReport.build(model: model, data: data, options: Self.options())
        #expect(misfit.dataQuality?.labelIssues?.probabilities.hasPrefix("the analysed model") == true)
        #expect(misfit.dataQuality?.notes.contains { $0.contains("do not fit") } == true)
    }

    @Test func theKeyIsOptionalInJSON() throws {
        let (model, _) = FailureReportTests.fixture
        let report = try FailureReport.build(model: model, data: FailureReportTests.data(), options: Self.options())
        let data = try JSONEncoder().encode(report)
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let section = try #require(object["dataQuality"] as? [String: Any])
        #expect(Set(section.keys).isSuperset(of: ["labelIssues", "leakage", "notes"]))
        let decoded = try JSONDecoder().decode(FailureReport.self, from: data)
        #expect(decoded.dataQuality?.labelIssues?.issues == report.dataQuality?.labelIssues?.issues)
        object.removeValue(forKey: "dataQuality")
        let legacy = try JSONDecoder().decode(FailureReport.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(legacy.dataQuality == nil)
        #expect(!FailureReportRenderer.text(legacy).contains("Data: labels and leakage"))
        let files = try FailureReportRenderer.files(report)
        #expect(String(decoding: files["report.html"]!, as: UTF8.self).contains("Data: labels and leakage"))
    }
}
