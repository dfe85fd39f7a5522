import FaultlineAnalysis
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import Foundation
import Testing
import _TestSupport

/// report.json against the committed JSON Schema (docs/report.schema.json): real reports of every shape
/// validate, and the validator rejects a report whose keys or types were changed.
@Suite("report.json schema", .serialized)
struct ReportSchemaTests {
    static let schemaURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/report.schema.json")

    static func validator() throws -> JSONSchemaValidator { try JSONSchemaValidator(schemaData: Data(contentsOf: schemaURL)) }

    /// report.json as `faultline report` writes it (the renderer's bytes).
    static func json(_ report: FailureReport) throws -> JSONValue {
        let data = try #require(try FailureReportRenderer.files(report)["report.json"])
        return try JSONValue.parse(data)
    }

    /// Three reports that between them set every optional field and leave each out once.
    static let reports: [(name: String, report: FailureReport)] = {
        let (model, split) = FailureReportTests.fixture
        let test = split.test
        let noisy = FailureReport.ShiftedSet.gaussianNoise(test.features, sigma: 0.3, seed: 1, name: "noise σ=0.3 (labelled)", labels: test.labels)
        let rotated = try! FailureReport.ShiftedSet.rotated90(test.features, shape: ImageShape(channels: 1, height: 8, width: 8), name: "rotated 90°")
        // 1. Shifted sets (one labelled, one not), the corruption sweep and its mild shift, every attack
        //    option, the examples with image tiles, and a held-out-class row.
        var o = FailureReportTests.options()
        (o.fgsm, o.autoAttack, o.squareQueries, o.minimalEpsilon, o.robustnessSamples) = (true, true, 20, true, 40)
        var shifted = try! FailureReport.build(model: model, data: FailureReportTests.data(shifted: [noisy, rotated]), options: o)
        shifted.heldOutClass = try! HeldOutClassStudy.run(spec: "linear:64-16,relu,linear:16-10", train: split.train, test: test, heldOut: 3,
                                                          training: TrainingOptions(epochs: 2, batchSize: 64, optimizer: .adam(learningRate: 3e-3), seed: 1),
                                                          seed: 1)
        // 2. An ensemble of two members, with a labelled shifted set.
        var second = try! ModelSpec.build("linear:64-32,relu,linear:32-10", seed: 4)
        try! second.train(on: split.train, options: TrainingOptions(epochs: 4, batchSize: 32, optimizer: .adam(learningRate: 3e-3), seed: 4))
        var e = FailureReportTests.options()
        e.robustnessSamples = 40
        let ensemble = try! FailureReport.build(ensemble: DeepEnsemble(members: [model, second]),
                                                data: FailureReportTests.data(shifted: [noisy]), options: e)
        // 3. Sections skipped, no calibration set, no shifted set, non-image inputs (feature examples),
        //    input-space OOD: the optional fields are absent.
        var rng = Philox(seed: 7, stream: 1)
        let rows = 90, width = 5
        let labels = (0..<rows).map { $0 % 3 }
        var x = Matrix<Float>(rows: rows, columns: width)
        for i in 0..<rows { for j in 0..<width { x[i, j] = min(max(0.5 + 0.15 * Float(rng.normal()) + (j == labels[i] ? 0.2 : 0), 0), 1) } }
        let all = try! LabeledDataset(name: "blobs", features: x, labels: labels, classCount: 3)
        var small = try! ModelSpec.build("linear:5-8,relu,linear:8-3", seed: 2)
        let train = all.subset(Array(0..<60)), held = all.subset(Array(60..<rows))
        try! small.train(on: train, options: TrainingOptions(epochs: 5, batchSize: 16, optimizer: .adam(learningRate: 1e-2), seed: 2))
        var s = FailureReport.Options()
        (s.skip, s.inputSpaceOOD, s.epsilons, s.confidenceThreshold) = ([.attacks, .conformal, .corruptions], true, [0.05], 0.34)
        let skipped = try! FailureReport.build(model: small, data: FailureReport.Data(train: train, test: held), options: s)
        return [("shifted", shifted), ("ensemble", ensemble), ("skipped", skipped)]
    }()

    /// Every report validates, and between them they exercise the optional sections (so the schema's
    /// description of those is checked too).
    @Test func reportsValidateAgainstTheSchema() throws {
        let validator = try Self.validator()
        let dump = ProcessInfo.processInfo.environment["FAULTLINE_SCHEMA_DUMP"]
        for (name, report) in Self.reports {
            let files = try FailureReportRenderer.files(report)
            let data = try #require(files["report.json"])
            if let dump { try data.write(to: URL(fileURLWithPath: dump).appendingPathComponent("\(name).json")) }
            let errors = validator.errors(try JSONValue.parse(data))
            #expect(errors.isEmpty, "\(name): \(errors.prefix(20))")
        }
        let (shifted, ensemble, skipped) = (Self.reports[0].report, Self.reports[1].report, Self.reports[2].report)
        #expect(shifted.shift.count == 2 && shifted.corruptions != nil && shifted.heldOutClass != nil && shifted.examples?.image != nil)
        #expect(shifted.plots.roc.count == 3 && shifted.robustness.allSatisfy { $0.fgsm != nil && $0.autoAttack != nil })
        #expect(ensemble.ensemble != nil && ensemble.shift.allSatisfy { $0.ensembleAccuracy != nil && $0.mutualInformationAUROC != nil })
        #expect(skipped.robustness.isEmpty && skipped.corruptions == nil && skipped.accuracyWithoutLabels == nil && skipped.featureSpace == nil)
        #expect(skipped.examples?.image == nil && skipped.examples?.groups.contains { $0.examples.contains { $0.features != nil } } == true)
        #expect(skipped.reliability.temperature == nil && skipped.conformal.isEmpty)
    }

    /// The check can fail: a renamed key, a wrong type, a missing required key, a value outside an enum
    /// and an unknown extra key are each rejected, at the path where they occur.
    @Test func validatorRejectsChangedReports() throws {
        let validator = try Self.validator()
        let good = try Self.json(Self.reports[0].report)
        guard case .object(let top) = good else { Issue.record("report.json is not an object"); return }
        func mutated(_ change: (inout [String: JSONValue]) -> Void) -> JSONValue {
            var o = top
            change(&o)
            return .object(o)
        }
        func nested(_ key: String, _ change: @escaping (inout [String: JSONValue]) -> Void) -> JSONValue {
            mutated { o in
                guard case .object(var inner)? = o[key] else { return }
                change(&inner)
                o[key] = .object(inner)
            }
        }
        let cases: [(String, JSONValue, String)] = [
            ("renamed top-level key", mutated { $0["reliabilty"] = $0.removeValue(forKey: "reliability") }, "missing required \"reliability\""),
            ("renamed nested key", nested("reliability") { $0["acc"] = $0.removeValue(forKey: "accuracy") }, "$.reliability: unexpected key \"acc\""),
            ("string for a count", nested("samples") { $0["test"] = .string("120") }, "$.samples.test: expected integer"),
            ("fraction for a count", nested("samples") { $0["test"] = .number(1.5) }, "$.samples.test: expected integer"),
            ("number for a string", nested("model") { $0["spec"] = .number(3) }, "$.model.spec: expected string"),
            ("object for an array", mutated { $0["shift"] = .object([:]) }, "$.shift: expected array"),
            ("unknown category", nested("attribution") { a in
                if case .array(var c)? = a["categories"], !c.isEmpty { c[0] = .string("bad luck"); a["categories"] = .array(c) }
            }, "$.attribution.categories[0]"),
            ("wrong schema version", mutated { $0["schema"] = .number(Double(FailureReport.currentSchema + 1)) }, "$.schema"),
            ("extra key", mutated { $0["extra"] = .null }, "unexpected key \"extra\""),
        ]
        #expect(validator.errors(good).isEmpty)
        for (name, instance, expected) in cases {
            let errors = validator.errors(instance)
            #expect(errors.contains { $0.contains(expected) }, "\(name): \(errors.prefix(5))")
        }
    }

    /// The schema describes every key the encoder may write: every object with named properties is
    /// closed (additionalProperties: false), uses only checked keywords, and pins `schema` to
    /// `FailureReport.currentSchema`; every `$ref` resolves.
    @Test func schemaIsClosedAndPinsTheVersion() throws {
        let validator = try Self.validator()
        var open: [String] = [], refs: [String] = []
        func walk(_ node: JSONValue, _ path: String) {
            switch node {
            case .object(let o):
                if o["properties"] != nil, o["additionalProperties"] != .bool(false) { open.append(path) }
                if case .string(let r)? = o["$ref"] { refs.append(r) }
                for (k, v) in o { walk(v, path + "/" + k) }
            case .array(let a): for (k, v) in a.enumerated() { walk(v, "\(path)/\(k)") }
            default: break
            }
        }
        walk(validator.root, "#")
        #expect(open.isEmpty, "objects open to unknown keys: \(open)")
        for r in refs { #expect(validator.resolve(r) != nil, "unresolved \(r)") }
        guard case .object(let root) = validator.root, case .object(let properties)? = root["properties"],
              case .object(let schema)? = properties["schema"] else { Issue.record("no schema property"); return }
        #expect(schema["const"] == .number(Double(FailureReport.currentSchema)))
        // An unsupported keyword is an error, not silently ignored.
        let strict = JSONSchemaValidator(schema: .object(["type": .string("object"), "patternProperties": .object([:])]))
        #expect(strict.errors(.object([:])).contains { $0.contains("unsupported schema keyword") })
    }

    /// A schema-1 report (ROC curves keyed by display name, categories by title) still decodes, to the
    /// same curves and categories.
    @Test func schemaOneReportsStillDecode() throws {
        let report = Self.reports[0].report
        let data = try #require(try FailureReportRenderer.files(report)["report.json"])
        var old = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var plots = try #require(old["plots"] as? [String: Any])
        let curves = try #require(plots["roc"] as? [[String: Any]])
        plots["roc"] = Dictionary(uniqueKeysWithValues: curves.map { ($0["name"] as! String, $0["points"]!) })
        old["plots"] = plots
        var attribution = try #require(old["attribution"] as? [String: Any])
        let titles = Dictionary(uniqueKeysWithValues: FailureAttribution.Category.allCases.map { ($0.rawValue, $0.title) })
        attribution["categories"] = (attribution["categories"] as! [String]).map { titles[$0]! }
        attribution["counts"] = Dictionary(uniqueKeysWithValues: (attribution["counts"] as! [String: Any]).map { (titles[$0.key]!, $0.value) })
        old["attribution"] = attribution
        old["schema"] = 1
        let decoded = try JSONDecoder().decode(FailureReport.self, from: try JSONSerialization.data(withJSONObject: old))
        #expect(decoded.schema == 1 && decoded.attribution.categories == report.attribution.categories)
        for c in FailureAttribution.Category.allCases { #expect(decoded.attribution.count(c) == report.attribution.count(c)) }
        #expect(Set(decoded.plots.roc.map(\.name)) == Set(report.plots.roc.map(\.name)))
        for curve in report.plots.roc {
            let same = try #require(decoded.plots.roc.first { $0.name == curve.name })
            #expect(same.kind == curve.kind && same.points == curve.points)
        }
        // The old layout is not the current schema.
        #expect(!(try Self.validator().errors(JSONValue.parse(JSONSerialization.data(withJSONObject: old)))).isEmpty)
    }

    /// The validator on a family of small cases with known answers (so a bug in it cannot hide a bad report).
    @Test func validatorKnownCases() throws {
        let schema = try JSONValue.parse(Data("""
            {"$defs": {"n": {"anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]}},
             "type": "object", "required": ["a"], "additionalProperties": false,
             "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "array", "items": {"$ref": "#/$defs/n"}, "minItems": 2, "maxItems": 2},
                            "c": {"type": ["string", "null"]}, "d": {"type": "object", "additionalProperties": {"type": "boolean"}}}}
            """.utf8))
        let v = JSONSchemaValidator(schema: schema)
        let cases: [(String, Int)] = [
            (#"{"a": 0}"#, 0), (#"{"a": 3, "b": [1.5, "NaN"], "c": null, "d": {"x": true}}"#, 0), (#"{}"#, 1), (#"{"a": -1}"#, 1),
            (#"{"a": 1.5}"#, 1), (#"{"a": 1, "b": [1]}"#, 1), (#"{"a": 1, "b": [1, "nan"]}"#, 1), (#"{"a": 1, "c": 2}"#, 1),
            (#"{"a": 1, "d": {"x": 1}}"#, 1), (#"{"a": 1, "z": 1}"#, 1), (#"[]"#, 1), (#"{"a": "1", "z": 0}"#, 2),
        ]
        for (text, count) in cases {
            let errors = v.errors(try JSONValue.parse(Data(text.utf8)))
            #expect(errors.count == count, "\(text): \(errors)")
        }
        for bad in [#"{"a": 1,}"#, #"{"a": 1, "a": 2}"#, #"[1 2]"#, #"{"a": tru}"#, "\"abc", "1 2"] {
            #expect(throws: JSONSchemaError.self, "\(bad)") { try JSONValue.parse(Data(bad.utf8)) }
        }
        #expect(try JSONValue.parse(Data(#"{"s": "a\"\u00e9\n"}"#.utf8)) == .object(["s": .string("a\"é\n")]))
    }
}
