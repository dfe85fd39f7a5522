import FaultlineLinalg
import FaultlineReliability
import Testing

/// The entry points the command line calls (`CalibrationSummary`, `ConformalScore`,
/// `EnsembleUncertainty.summary(of:)`) give exactly what the underlying kernels give when composed by
/// hand, over families of sizes, class counts, binnings, scores and α.
@Suite("library entry points: calibration summary, conformal by name, uncertainty summaries")
struct ReliabilityEntryPointTests {
    static func scores(rows: Int, classes: Int, seed: UInt64) throws -> (logits: Matrix<Float>, probabilities: Matrix<Float>, labels: [Int]) {
        var rng = Philox(seed: seed)
        let z: Matrix<Float> = rng.matrix(rows: rows, columns: classes, .normal(mean: 0, sd: 2))
        let labels = (0..<rows).map { _ in Int(rng.uniform() * Double(classes)) % classes }
        return (z, try Linalg.softmaxRows(z), labels)
    }

    @Test(arguments: [(1, 2), (57, 3), (400, 10)])
    func calibrationSummaryIsTheKernels(size: (rows: Int, classes: Int)) throws {
        let (z, p, y) = try Self.scores(rows: size.rows, classes: size.classes, seed: UInt64(size.rows))
        for binning in [CalibrationMetrics.Binning.equalWidth(bins: 15), .equalMass(bins: 7), .torchmetrics(bins: 10), .equalWidthRightClosed(bins: 3)] {
            for (scores, direct) in [(CalibrationScores.logits(z), try CalibrationMetrics.compute(logits: z, labels: y, binning: binning)),
                                     (.probabilities(p), try CalibrationMetrics.compute(probabilities: p, labels: y, binning: binning))] {
                let s = try CalibrationSummary(scores, labels: y, binning: binning, bins: 15)
                #expect([s.ece, s.mce, s.brier, s.nll, s.accuracy] == [direct.ece, direct.mce, direct.brier, direct.nll, direct.accuracy])
                #expect(s.bins == direct.bins)
                let classwise = scores.logits == nil ? try ClasswiseCalibration.classwiseECE(probabilities: p, labels: y, bins: 15)
                    : try ClasswiseCalibration.classwiseECE(logits: z, labels: y, bins: 15)
                #expect(s.classwiseECE == classwise)
                #expect(s.values.count == CalibrationSummary.metricNames.count)
            }
        }
    }

    /// The bootstrap estimate is the full-sample value, the interval brackets it, and the same seed gives
    /// the same intervals (a different seed different ones).
    @Test func bootstrapIntervalsAreReproducible() throws {
        let (z, _, y) = try Self.scores(rows: 300, classes: 4, seed: 2)
        let full = try CalibrationSummary(.logits(z), labels: y, binning: .equalWidth(bins: 10), bins: 10)
        let a = try CalibrationSummary.bootstrapIntervals(.logits(z), labels: y, binning: .equalWidth(bins: 10), bins: 10, resamples: 50, confidence: 0.9, seed: 4)
        let b = try CalibrationSummary.bootstrapIntervals(.logits(z), labels: y, binning: .equalWidth(bins: 10), bins: 10, resamples: 50, confidence: 0.9, seed: 4)
        let c = try CalibrationSummary.bootstrapIntervals(.logits(z), labels: y, binning: .equalWidth(bins: 10), bins: 10, resamples: 50, confidence: 0.9, seed: 5)
        #expect(a == b && a != c)
        for (name, value) in zip(CalibrationSummary.metricNames, full.values) {
            #expect(a[name]!.estimate == value, "\(name)")
            #expect(a[name]!.lower <= a[name]!.upper, "\(name)")
        }
    }

    @Test(arguments: [0.05, 0.1, 0.3])
    func conformalByNameIsThePredictor(alpha: Double) throws {
        let (_, calibration, cy) = try Self.scores(rows: 200, classes: 5, seed: 7)
        let (_, test, _) = try Self.scores(rows: 60, classes: 5, seed: 8)
        var settings = ConformalScore.Settings()
        (settings.lambda, settings.kReg, settings.seed, settings.tuningFraction) = (0.02, 2, 3, 0.2)
        for score in ConformalScore.allCases {
            for classConditional in [false, true] where !(classConditional && score.isMapie) {
                settings.classConditional = classConditional
                let (threshold, sets) = try score.sets(calibration: calibration, labels: cy, alpha: alpha, test: test, settings: settings)
                let expected: (Double, [[Int]])
                switch score {
                case .apsMapie:
                    let cp = try CumulativeProbabilitySets(calibration: calibration, labels: cy, alpha: alpha, seed: 3)
                    expected = (cp.threshold, try cp.predict(test))
                case .rapsMapie:
                    let rows = try CumulativeProbabilitySets.stratifiedTuningRows(labels: cy, fraction: 0.2, seed: 3)
                    let cp = try CumulativeProbabilitySets(rapsCalibration: calibration, labels: cy, tuningRows: rows, alpha: alpha, seed: 3)
                    expected = (cp.threshold, try cp.predict(test))
                default:
                    let kind: SplitConformal.Score = switch score {
                    case .aps: .aps(randomized: false)
                    case .apsRandomized: .aps(randomized: true)
                    case .raps: .raps(lambda: 0.02, kReg: 2, randomized: false)
                    case .topk: .topK
                    default: .lac
                    }
                    let cp = try SplitConformal(calibration: calibration, labels: cy, alpha: alpha, score: kind, classConditional: classConditional, seed: 3)
                    expected = (cp.threshold, try cp.predict(test))
                }
                #expect(threshold == expected.0 && sets == expected.1, "\(score) class-conditional \(classConditional)")
                let membership = ConformalScore.membership(sets, classes: 5)
                #expect((0..<60).allSatisfy { i in (0..<5).allSatisfy { c in (membership[i, c] == 1) == sets[i].contains(c) } })
            }
        }
        #expect(throws: ReliabilityError.self) {
            var s = ConformalScore.Settings()
            s.classConditional = true
            _ = try ConformalScore.apsMapie.sets(calibration: calibration, labels: cy, alpha: alpha, test: test, settings: s)
        }
    }

    @Test func uncertaintySummariesAreMeansOverTheGroup() throws {
        let members = try (0..<4).map { m in try Self.scores(rows: 37, classes: 3, seed: 20 + UInt64(m)).probabilities }
        let u = try EnsembleUncertainty.compute(members: members)
        for rows in [[], [0], Array(0..<37), [3, 3, 10, 36]] {
            let s = u.summary(of: rows)
            func mean(_ v: [Double]) -> Double { rows.isEmpty ? 0 : rows.map { v[$0] }.reduce(0, +) / Double(rows.count) }
            #expect(s.samples == rows.count)
            #expect(s.entropy == mean(u.predictiveEntropy) && s.aleatoric == mean(u.expectedEntropy) && s.epistemic == mean(u.mutualInformation))
            #expect(s.variance == mean(u.meanVariance) && s.variationRatio == mean(u.variationRatio))
        }
    }
}
