import FaultlineAnalysis
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import _TestSupport

@Suite("FailureReport.build", .serialized)
struct FailureReportTests {
    /// A small MLP trained on part of the bundled digits, with its split.
    static let fixture: (model: Sequential, split: LabeledDataset.Split) = {
        let split = try! BundledDatasets.digits().stratifiedSplit(seed: 3)
        var model = try! ModelSpec.build("linear:64-32,relu,linear:32-10", seed: 3)
        try! model.train(on: split.train, options: TrainingOptions(epochs: 8, batchSize: 32, optimizer: .adam(learningRate: 3e-3), seed: 3))
        return (model, split)
    }()

    static func data(shifted: [FailureReport.ShiftedSet] = []) -> FailureReport.Data {
        let s = fixture.split
        return FailureReport.Data(train: s.train, test: s.test, calibration: s.calibration, shifted: shifted,
                                  imageShape: ImageShape(channels: 1, height: 8, width: 8))
    }

    static func options() -> FailureReport.Options {
        var o = FailureReport.Options()
        o.epsilons = [0, 0.02, 0.1]
        o.robustnessSamples = 120
        return o
    }

    @Test func reportIsConsistentWithItsInputs() throws {
        let (model, split) = Self.fixture
        let test = split.test
        let copy = FailureReport.ShiftedSet(name: "copy", features: test.features, labels: test.labels)
        let report = try FailureReport.build(model: model, data: Self.data(shifted: [copy]), options: Self.options())
        // Reliability matches an independent count.
        let predicted = try model.predict(test.features)
        let right = zip(predicted, test.labels).filter { $0 == $1 }.count
        #expect(report.reliability.accuracy == Double(right) / Double(test.count))
        #expect(report.samples.test == test.count && report.samples.train == split.train.count)
        // Attribution: one category per row, errors = wrong rows.
        #expect(report.attribution.categories.count == test.count)
        #expect(report.attribution.categories.filter(\.isError).count == test.count - right)
        // The OOD threshold is the 0.95 nearest-rank quantile of the calibration rows' scores, so a copy of the
        // test set is indistinguishable (AUROC 0.5) and its errors are the test errors.
        #expect(abs(report.shift[0].mahalanobisAUROC - 0.5) < 1e-12)
        #expect(report.shift[0].errors == test.count - right && report.shift[0].accuracy == report.reliability.accuracy)
        // Robustness: ε = 0 is the clean accuracy of the robustness rows; attacks never exceed it; CROWN ≤ APGD with
        // no inconsistency; curves are non-increasing in ε for the monotone certificate.
        let rows = report.robustness
        let clean = Double(zip(predicted.prefix(120), test.labels.prefix(120)).filter { $0 == $1 }.count) / 120
        #expect(rows[0].epsilon == 0 && rows[0].pgd20 == clean && rows[0].apgdCE == clean)
        for r in rows {
            #expect(r.pgd20 <= clean && r.apgdCE <= clean)
            let certified = try #require(r.certifiedCROWN)
            #expect(certified <= r.apgdCE)
            #expect(r.inconsistencies == [])
        }
        #expect(rows[2].certifiedCROWN! <= rows[1].certifiedCROWN!)
        #expect(report.corruptions != nil && report.conformal.count == 5 && report.reliability.temperature != nil)
        #expect(report.robustnessNotes.isEmpty, "\(report.robustnessNotes)")
    }

    /// The render check can fail: the uncertainty histogram the renderer drew before the
    /// check existed (commit 2fd4731's demo) has bars outside its frame.
    @Test func renderCheckCatchesTheOldHistogram() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
        let histogram = try String(contentsOfFile: fixtures + "/uncertainty_2fd4731.svg", encoding: .utf8)
        #expect(SVGRenderCheck.violations(histogram).contains { $0.hasPrefix("bar") }, "\(SVGRenderCheck.violations(histogram))")
        // A line drawn exactly over another without a note is caught too.
        let hidden = """
            <svg><rect class="frame" x="10" y="10" width="100" height="100" fill="none"/>
            <polyline class="mark" points="20,20 30,30"/><polyline class="mark" points="20,20 30,30"/></svg>
            """
        #expect(SVGRenderCheck.violations(hidden).count == 1)
    }

    /// report.json decodes back into a FailureReport and encodes to the same bytes; the renderer writes
    /// well-formed HTML and SVG that embed every plot.
    @Test func schemaRoundTripAndRendering() throws {
        let report = try FailureReport.build(model: Self.fixture.model, data: Self.data(), options: Self.options())
        let files = try FailureReportRenderer.files(report)
        let json = try #require(files["report.json"])
        let decoded = try JSONDecoder().decode(FailureReport.self, from: json)
        #expect(try FailureReportRenderer.files(decoded)["report.json"] == json)
        #expect(decoded.schema == FailureReport.currentSchema)
        let html = String(decoding: try #require(files["report.html"]), as: UTF8.self)
        #expect(html.contains("name=\"viewport\""))
        // The render check: no mark outside its frame, no series hidden under another, in every plot.
        let svgs = SVGRenderCheck.documents(inHTML: html)
        #expect(svgs.count == files.keys.filter { $0.hasSuffix(".svg") }.count && !svgs.isEmpty)
        for svg in svgs { #expect(SVGRenderCheck.violations(svg) == [], "\(svg.prefix(300))") }
        for (name, data) in files where name.hasSuffix(".svg") || name.hasSuffix(".html") {
            #expect(XMLParser(data: data).parse(), "\(name) is not well-formed")
            if name.hasSuffix(".svg") { #expect(html.contains("<figure id=\"\(name)\">")) }
        }
        #expect(Set(files.keys).isSuperset(of: ["report.txt", "reliability.svg", "robustness.svg", "corruptions.svg", "conformal.svg"]))
        #expect(files["roc.svg"] == nil, "no shifted set, no ROC plot")
    }

    /// Data that does not fit the model is refused before any work, naming the set.
    @Test func badDataIsRefused() throws {
        let (model, split) = Self.fixture
        func refused(_ data: FailureReport.Data, _ options: FailureReport.Options = FailureReportTests.options(), _ fragment: String) {
            do {
                _ = try FailureReport.build(model: model, data: data, options: options)
                Issue.record("accepted: \(fragment)")
            } catch let error as AnalysisError {
                #expect("\(error)".contains(fragment), "\(error)")
            } catch {
                Issue.record("untyped error \(error)")
            }
        }
        var narrow = Self.data()
        narrow.test = try LabeledDataset(name: "t", features: Matrix(rows: 3, columns: 5), labels: [0, 1, 2], classCount: 10)
        refused(narrow, Self.options(), "the test set has 5 features")
        var outside = Self.data()
        outside.shifted = [.init(name: "far", features: split.test.features.map { $0 + 2 })]
        refused(outside, Self.options(), "outside the box")
        var badLabels = Self.data()
        badLabels.shifted = [.init(name: "s", features: split.test.features, labels: Array(repeating: 10, count: split.test.count))]
        refused(badLabels, Self.options(), "label 10")
        var o = Self.options()
        o.oodQuantile = 0
        refused(Self.data(), o, "OOD quantile")
        o = Self.options()
        o.epsilons = []
        refused(Self.data(), o, "epsilons")
    }

    /// rotated90: a hand-checked 2×3×3 case (each channel turned 90° counter-clockwise, the demo's
    /// convention out[r][c] = in[side−1−c][r]), four turns are the identity, non-square layouts refused.
    @Test func rotated90IsAQuarterTurn() throws {
        let x = try Matrix<Float>([Array(0..<18).map(Float.init)])
        let once = try FailureReport.ShiftedSet.rotated90(x, shape: ImageShape(channels: 2, height: 3, width: 3)).features
        #expect(Array(once.row(0)) == [6, 3, 0, 7, 4, 1, 8, 5, 2, 15, 12, 9, 16, 13, 10, 17, 14, 11])
        var turned = x
        for _ in 0..<4 { turned = try FailureReport.ShiftedSet.rotated90(turned, shape: ImageShape(channels: 2, height: 3, width: 3)).features }
        #expect(turned == x)
        #expect(throws: AnalysisError.self) { try FailureReport.ShiftedSet.rotated90(x, shape: ImageShape(channels: 2, height: 1, width: 9)) }
    }
}

/// A classifier that is not a `Sequential` but computes exactly what one computes (it forwards every
/// call), so a report on it must equal the report on the `Sequential` in every number the protocol gives.
struct Forwarding: DifferentiableClassifier {
    let model: Sequential
    var inputFeatures: Int { model.inputFeatures }
    var outputFeatures: Int { model.outputFeatures }
    var spec: String { "forwarding(\(model.spec))" }
    var parameterCount: Int { model.parameterCount }
    func makeWorkspace(capacity: Int) -> Sequential.Workspace { model.makeWorkspace(capacity: capacity) }
    func logits(_ x: UnsafePointer<Float>, rows: Int, workspace: Sequential.Workspace, context: ForwardContext) -> MatrixPointer<Float> {
        model.logits(x, rows: rows, workspace: workspace, context: context)
    }
    func inputGradient(logitGradient dz: MatrixPointer<Float>, workspace: Sequential.Workspace, context: ForwardContext,
                       into gradient: MutableMatrixPointer<Float>) {
        model.inputGradient(logitGradient: dz, workspace: workspace, context: context, into: gradient)
    }
}

extension FailureReportTests {
    /// Any `DifferentiableClassifier` gets the whole report: every section equals the `Sequential`'s,
    /// except the two that need a `Sequential` (CROWN, with a note saying it was skipped; MC dropout).
    @Test func anyClassifierGetsTheSameReport() throws {
        let (model, split) = Self.fixture
        let shifted = [FailureReport.ShiftedSet.gaussianNoise(split.test.features, sigma: 0.3, seed: 1, labels: split.test.labels)]
        var options = Self.options()
        options.monteCarloDropoutPasses = 0
        // A wrapped model has no penultimate-feature tap: compare with the Sequential's input-space report.
        var inputSpace = options
        inputSpace.inputSpaceOOD = true
        let direct = try FailureReport.build(model: model, data: Self.data(shifted: shifted), options: inputSpace)
        let forwarded = try FailureReport.build(model: Forwarding(model: model), data: Self.data(shifted: shifted), options: options)
        #expect(direct.featureSpace == nil && forwarded.featureSpace == nil)
        #expect(try FailureReport.build(model: model, data: Self.data(shifted: shifted), options: options).featureSpace != nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func json<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        #expect(try json(forwarded.reliability) == json(direct.reliability))
        #expect(try json(forwarded.shift) == json(direct.shift))
        #expect(try json(forwarded.conformal) == json(direct.conformal))
        #expect(try json(forwarded.attribution) == json(direct.attribution))
        #expect(try json(forwarded.corruptions) == json(direct.corruptions))
        #expect(forwarded.model.parameters == direct.model.parameters && forwarded.model.parameters == 64 * 32 + 32 + 32 * 10 + 10)
        for (f, d) in zip(forwarded.robustness, direct.robustness) {
            #expect(f.pgd20 == d.pgd20 && f.apgdCE == d.apgdCE && f.certifiedCROWN == nil && d.certifiedCROWN != nil)
        }
        #expect(forwarded.robustnessNotes.contains { $0.hasPrefix("CROWN skipped") })
    }

    /// `maxSamples` analyses a seeded uniform subsample of the test rows (and of each shifted set): the report
    /// equals the report of that subset given whole; `skip` leaves sections out and says so.
    @Test func maxSamplesIsTheReportOfASubsetAndSkipLeavesSectionsOut() throws {
        let (model, split) = Self.fixture
        let copy = FailureReport.ShiftedSet(name: "copy", features: split.test.features, labels: split.test.labels)
        var options = Self.options()
        options.maxSamples = 90
        let sampled = try FailureReport.build(model: model, data: Self.data(shifted: [copy]), options: options)
        let rows = LabeledDataset.sampleRows(90, of: split.test.count, seed: options.seed)
        var data = Self.data()
        data.test = split.test.subset(rows)
        data.shifted = [FailureReport.ShiftedSet(name: "copy", features: data.test.features, labels: data.test.labels)]
        options.maxSamples = nil
        let whole = try FailureReport.build(model: model, data: data, options: options)
        #expect(sampled.samples.test == 90 && sampled.shift[0].samples == 90)
        #expect(sampled.reliability.accuracy == whole.reliability.accuracy && sampled.attribution.categories == whole.attribution.categories)
        #expect(sampled.shift[0].mahalanobisAUROC == whole.shift[0].mahalanobisAUROC)
        #expect(sampled.robustness.map(\.apgdCE) == whole.robustness.map(\.apgdCE))

        options.skip = [.attacks, .conformal, .corruptions]
        let skipped = try FailureReport.build(model: model, data: Self.data(), options: options)
        #expect(skipped.robustness.isEmpty && skipped.conformal.isEmpty && skipped.corruptions == nil)
        #expect(skipped.attribution.count(.fragile) == 0 && skipped.robustnessNotes.contains { $0.contains("--skip attacks") })
        options.skip = [.certify]
        let uncertified = try FailureReport.build(model: model, data: Self.data(), options: options)
        #expect(uncertified.robustness.count == 3 && uncertified.robustness.allSatisfy { $0.certifiedCROWN == nil })
        options.maxSamples = 0
        #expect(throws: AnalysisError.self) { try FailureReport.build(model: model, data: Self.data(), options: options) }
    }

    /// A spent --time-budget leaves the attacks and the corruption sweep out with a note naming the budget;
    /// a generous one changes nothing; a budget that is not a positive, finite number is refused.
    @Test func aSpentTimeBudgetLeavesTheExpensiveStagesOut() throws {
        let (model, _) = Self.fixture
        var options = Self.options()
        options.timeBudget = 1e-9
        let spent = try FailureReport.build(model: model, data: Self.data(), options: options)
        #expect(spent.robustness.isEmpty && spent.corruptions == nil && spent.attribution.count(.fragile) == 0)
        #expect(spent.robustnessNotes.filter { $0.contains("time budget of 1e-09 s (--time-budget)") }.count == 2, "\(spent.robustnessNotes)")
        #expect(spent.reliability.accuracy > 0.5 && !spent.conformal.isEmpty)
        options.timeBudget = 1e6
        let generous = try FailureReport.build(model: model, data: Self.data(), options: options)
        options.timeBudget = nil
        let unbounded = try FailureReport.build(model: model, data: Self.data(), options: options)
        #expect(generous.robustness.map(\.apgdCE) == unbounded.robustness.map(\.apgdCE) && generous.corruptions != nil)
        #expect(!generous.robustnessNotes.contains { $0.contains("time budget") })
        for bad in [0, -1, Double.nan, .infinity] {
            options.timeBudget = bad
            #expect(throws: AnalysisError.self) { try FailureReport.build(model: model, data: Self.data(), options: options) }
        }
    }
}
