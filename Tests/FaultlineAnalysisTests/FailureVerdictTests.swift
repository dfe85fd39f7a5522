import FaultlineAnalysis
import FaultlineNN
import FaultlineReport
import Testing

/// Each rule of `FailureVerdict` fires exactly when its stated condition holds, on a real report whose
/// numbers are then set by hand (so every boundary is exercised).
@Suite("failure verdict rules", .serialized)
struct FailureVerdictTests {
    static let base: FailureReport = {
        let (model, split) = FailureReportTests.fixture
        var options = FailureReportTests.options()
        options.autoAttack = true
        let copy = FailureReport.ShiftedSet(name: "copy", features: split.test.features, labels: split.test.labels)
        return try! FailureReport.build(model: model, data: FailureReportTests.data(shifted: [copy]), options: options)
    }()

    static func rules(_ r: FailureReport) -> [FailureVerdict.Rule] { FailureVerdict(r).findings.map(\.rule) }

    /// Attribution with the given numbers of rows per category (errors: shift, confident, flagged; right:
    /// fragile, robust).
    static func attribution(shift: Int, confident: Int, flagged: Int, fragile: Int, robust: Int) -> FailureAttribution {
        let n = shift + confident + flagged + fragile + robust
        var correct = [Bool](), confidence = [Double](), score = [Float](), flipped = [Bool]()
        for (count, c, p, s, f) in [(shift, false, 0.99, Float(10), false), (confident, false, 0.99, 0, false), (flagged, false, 0.5, 0, false),
                                    (fragile, true, 0.9, 0, true), (robust, true, 0.9, 0, false)] {
            correct += Array(repeating: c, count: count); confidence += Array(repeating: p, count: count)
            score += Array(repeating: s, count: count); flipped += Array(repeating: f, count: count)
        }
        #expect(correct.count == n)
        return FailureAttribution(correct: correct, confidence: confidence, oodScore: score, oodThreshold: 1, confident: 0.9, flipped: flipped,
                                  epsilon: 0.02, attack: "PGD")
    }

    @Test func dominantFailureNamesTheLargestErrorCategoryAndItsRemedy() {
        var r = Self.base
        for (counts, expected) in [((5, 2, 1), "out of distribution"), ((1, 5, 2), "confident and wrong"), ((1, 2, 5), "low confidence"),
                                   ((3, 3, 1), "out of distribution"), ((0, 2, 2), "confident and wrong")] {
            r.attribution = Self.attribution(shift: counts.0, confident: counts.1, flagged: counts.2, fragile: 0, robust: 10)
            let finding = FailureVerdict(r).findings.first { $0.rule == .dominantFailure }
            #expect(finding?.text.contains(expected) == true, "\(counts): \(finding?.text ?? "none")")
            let top = max(counts.0, counts.1, counts.2), total = counts.0 + counts.1 + counts.2
            #expect(finding?.text.contains("\(top) of \(total)") == true)
        }
        r.attribution = Self.attribution(shift: 0, confident: 0, flagged: 0, fragile: 1, robust: 9)
        #expect(Self.rules(r).contains(.noErrors) && !Self.rules(r).contains(.dominantFailure))
    }

    @Test func fragileFromAQuarterOfTheRightPredictions() {
        var r = Self.base
        for (fragile, robust, fires) in [(1, 3, true), (1, 4, false), (0, 5, false), (5, 0, true)] {
            r.attribution = Self.attribution(shift: 1, confident: 0, flagged: 0, fragile: fragile, robust: robust)
            #expect(Self.rules(r).contains(.fragile) == fires, "\(fragile) of \(fragile + robust)")
        }
    }

    @Test func temperatureRules() throws {
        var r = Self.base
        var after = try #require(r.reliability.calibrationAfterTemperature)
        for (before, afterECE, worse, helps) in [(0.05, 0.06, true, false), (0.05, 0.0375, false, true), (0.05, 0.038, false, false),
                                                 (0.01, 0.001, false, false), (0.05, 0.05, false, false)] {
            r.reliability.calibration.ece = before
            after.ece = afterECE
            r.reliability.calibrationAfterTemperature = after
            #expect(Self.rules(r).contains(.temperatureWorse) == worse && Self.rules(r).contains(.temperatureHelps) == helps, "\(before) → \(afterECE)")
        }
        r.reliability.calibrationAfterTemperature = nil
        #expect(!Self.rules(r).contains(.temperatureWorse) && !Self.rules(r).contains(.temperatureHelps))
    }

    @Test func shiftRules() {
        var r = Self.base
        r.reliability.accuracy = 0.9
        for (msp, maha, accuracy, silent, expected) in [(0.33, 0.9, 0.85, 0, [FailureVerdict.Rule.overconfidentUnderShift]),
                                                         (0.5, 0.59, 0.75, 0, [.invisibleShift]), (0.5, 0.6, 0.5, 0, []),
                                                         (0.7, 0.5, 0.81, 2, [.silentErrors]), (0.49, 0.5, 0.7, 1, [.overconfidentUnderShift, .invisibleShift, .silentErrors])] {
            r.shift[0].mspAUROC = msp
            r.shift[0].mahalanobisAUROC = maha
            r.shift[0].featureMahalanobisAUROC = nil
            r.shift[0].accuracy = accuracy
            (r.shift[0].silentConfidentErrors, r.shift[0].errors) = (silent, 10)
            let fired = Self.rules(r).filter { [.overconfidentUnderShift, .invisibleShift, .silentErrors].contains($0) }
            #expect(fired == expected, "msp \(msp) maha \(maha) accuracy \(accuracy) silent \(silent)")
        }
    }

    /// With a feature-space detector, it decides whether a costly shift is invisible.
    @Test func invisibleShiftUsesTheFeatureDetector() {
        var r = Self.base
        r.reliability.accuracy = 0.9
        r.shift[0].accuracy = 0.6
        for (input, features, fires) in [(0.9, 0.55, true), (0.55, 0.9, false), (0.55, nil, true), (0.9, nil, false)] as [(Double, Double?, Bool)] {
            (r.shift[0].mahalanobisAUROC, r.shift[0].featureMahalanobisAUROC) = (input, features)
            #expect(Self.rules(r).contains(.invisibleShift) == fires, "inputs \(input), features \(String(describing: features))")
        }
    }

    @Test func robustnessRules() {
        var r = Self.base
        #expect(r.robustness.count == 3)
        for (certified, fires) in [([0.9, 0.3, 0.0], true), ([0.9, 0.0, 0.0], true), ([0.9, 0.3, 0.1], false), ([0.0, 0.0, 0.0], false),
                                   ([0.9, 0.0, 0.1], false)] {
            for k in 0..<3 { r.robustness[k].certifiedCROWN = certified[k] }
            #expect(Self.rules(r).contains(.certificationStops) == fires, "\(certified)")
        }
        for k in 0..<3 { (r.robustness[k].pgd20, r.robustness[k].autoAttack, r.robustness[k].inconsistencies) = (0.8, 0.76, []) }
        #expect(!Self.rules(r).contains(.attackGap) && !Self.rules(r).contains(.unsound))
        r.robustness[1].autoAttack = 0.75
        r.robustness[2].inconsistencies = [4]
        #expect(Self.rules(r).contains(.attackGap) && Self.rules(r).contains(.unsound))
    }

    /// The verdict leads the rendered page and text.
    @Test func verdictOpensTheReport() {
        let findings = FailureVerdict(Self.base).findings
        #expect(findings.first?.rule == .dominantFailure || findings.first?.rule == .noErrors)
        let text = FailureReportRenderer.text(Self.base)
        let verdict = text.range(of: "Verdict"), why = text.range(of: "Why this model fails")
        let first = text.range(of: String(findings[0].text.prefix(25)))
        #expect(verdict != nil && why != nil && first != nil)
        if let verdict, let why, let first { #expect(verdict.lowerBound < first.lowerBound && first.lowerBound < why.lowerBound) }
    }
}
