import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import FaultlineStatistics
import Foundation
import Testing
import _TestSupport

/// Recalibrators and conformal regression against scikit-learn and MAPIE
/// (scripts/fixtures/make_recalibration_fixtures.py), closed forms and first-order optimality.
@Suite("recalibration")
struct RecalibrationTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/recalibration.npz").map { ($0.name, $0.tensor) })
    static func values(_ key: String) -> [Double] { arrays[key]!.values(as: Double.self) }

    @Test func isotonicMatchesScikitLearn() throws {
        let iso = try IsotonicRegression(x: Self.values("iso_x"), y: Self.values("iso_y"), weights: Self.values("iso_w"))
        let ours = iso.predict(Self.values("iso_query"))
        #expect(zip(ours, Self.values("iso_pred")).allSatisfy { abs($0 - $1) <= 1e-9 })
        #expect(zip(iso.values, iso.values.dropFirst()).allSatisfy { $0 <= $1 }, "fitted values must be non-decreasing")
        #expect(throws: ReliabilityError.self) { try IsotonicRegression(x: [1, 2], y: [1]) }
    }

    @Test func plattMatchesScikitLearn() throws {
        let platt = try PlattScaling(scores: Self.values("platt_f"), labels: Self.values("platt_y").map { Int($0) })
        let reference = Self.values("platt_ab")
        #expect(abs(platt.a - reference[0]) <= 1e-5 * max(1, abs(reference[0])) && abs(platt.b - reference[1]) <= 1e-5 * max(1, abs(reference[1])))
        #expect(throws: ReliabilityError.self) { try PlattScaling(scores: [0.1, 0.2], labels: [0, 2]) }
    }

    @Test func histogramBinningReturnsBinAccuracies() throws {
        let h = try HistogramBinning(confidences: [0.05, 0.1, 0.55, 0.6, 0.6, 1.0], correct: [false, true, true, true, false, true], bins: 10)
        #expect(h(0.1) == 0.5 && h(0.06) == 0.5)  // bin (0.0, 0.1]
        #expect(abs(h(0.58) - 2.0 / 3) < 1e-12 && h(1.0) == 1 && h(0.35) == 0.35)  // empty bin → centre
    }

    /// At the optimum the NLL gradient vanishes: central finite differences in Double.
    @Test func vectorScalingReachesAStationaryPoint() throws {
        var rng = Philox(seed: 8)
        let n = 400, c = 4
        let logits: Matrix<Float> = rng.matrix(rows: n, columns: c, .normal(mean: 0, sd: 3))
        let labels = (0..<n).map { i in (0..<c).max { Float(rng.uniform()) * 2 + logits[i, $0] * 0.3 < Float(rng.uniform()) * 2 + logits[i, $1] * 0.3 }! }
        let v = try VectorScaling(logits: logits, labels: labels)
        #expect(v.nllAfter <= v.nllBefore)
        func nll(_ w: [Double], _ b: [Double]) -> Double {
            (0..<n).reduce(0.0) { s, i in
                let u = (0..<c).map { w[$0] * Double(logits[i, $0]) + b[$0] }
                let m = u.max()!
                return s + m + log(u.reduce(0.0) { $0 + exp($1 - m) }) - u[labels[i]]
            } / Double(n)
        }
        for k in 0..<c {
            var up = v.scale, down = v.scale
            up[k] += 1e-5; down[k] -= 1e-5
            #expect(abs(nll(up, v.bias) - nll(down, v.bias)) / 2e-5 <= 1e-6)
            var bu = v.bias, bd = v.bias
            bu[k] += 1e-5; bd[k] -= 1e-5
            #expect(abs(nll(v.scale, bu) - nll(v.scale, bd)) / 2e-5 <= 1e-6)
        }
    }

    @Test func lacSetsMatchMAPIE() throws {
        let p = try Self.arrays["cp_probs"]!.matrix(Float.self), y = Self.values("cp_y").map { Int($0) }
        let calibration = try Matrix(rows: 200, columns: 5, elements: (0..<200).flatMap { Array(p.row($0)) })
        let test = try Matrix(rows: 100, columns: 5, elements: (200..<300).flatMap { Array(p.row($0)) })
        let sets = try SplitConformal(calibration: calibration, labels: Array(y[0..<200]), alpha: 0.1).predict(test)
        let reference = Self.values("lac_sets")
        for i in 0..<100 {
            let expected = (0..<5).filter { reference[i * 5 + $0] != 0 }
            #expect(sets[i].sorted() == expected, "row \(i): \(sets[i]) vs MAPIE \(expected)")
        }
    }

    /// APS in MAPIE's convention with MAPIE's own uniforms replayed: the threshold and every set for
    /// the three last-label rules are identical.
    @Test func apsSetsMatchMAPIE() throws {
        let p = try Self.arrays["aps_probs"]!.matrix(Float.self), y = Self.values("aps_y").map { Int($0) }
        let aps = try CumulativeProbabilitySets(calibration: p.sliceRows(0..<300), labels: Array(y[0..<300]), alpha: 0.1,
                                                uniforms: Self.values("aps_u_cal"))
        #expect(abs(aps.threshold - Self.values("aps_threshold")[0]) <= 1e-12)
        let test = p.sliceRows(300..<500)
        for (rule, key) in [(CumulativeProbabilitySets.LastLabel.include, "include"), (.exclude, "exclude"), (.randomized, "randomized")] {
            let sets = try aps.predict(test, lastLabel: rule, uniforms: rule == .randomized ? Self.values("aps_u_test") : nil)
            let reference = Self.values("aps_sets_" + key)
            let mismatches = (0..<200).filter { i in sets[i] != (0..<6).filter { reference[i * 6 + $0] != 0 } }
            #expect(mismatches.isEmpty, "\(key): rows \(mismatches.prefix(5))")
        }
        #expect(throws: ReliabilityError.self) { try CumulativeProbabilitySets(calibration: p.sliceRows(0..<300), labels: Array(y[0..<300]), alpha: 0.1, uniforms: [0.5]) }
    }

    /// RAPS in MAPIE's convention on MAPIE's tuning split with its uniforms replayed: k*, λ*, the
    /// threshold and every set for the three last-label rules are identical.
    @Test func rapsSetsMatchMAPIE() throws {
        let p = try Self.arrays["raps_probs"]!.matrix(Float.self), y = Self.values("raps_y").map { Int($0) }
        let tuning = Self.values("raps_tuning_rows").map { Int($0) }, test = p.sliceRows(300..<500)
        for (rule, key) in [(CumulativeProbabilitySets.LastLabel.include, "include"), (.exclude, "exclude"), (.randomized, "randomized")] {
            let raps = try CumulativeProbabilitySets(rapsCalibration: p.sliceRows(0..<300), labels: Array(y[0..<300]), tuningRows: tuning,
                                                     alpha: 0.1, tuningRule: rule, uniforms: Self.values("raps_u_by_row"))
            let expected = Self.values("raps_k_lambda_threshold_" + key)
            #expect(Double(raps.kStar) == expected[0] && raps.lambda == expected[1], "\(key): k* \(raps.kStar), λ \(raps.lambda) vs \(expected)")
            #expect(abs(raps.threshold - expected[2]) <= 1e-12, "\(key)")
            let sets = try raps.predict(test, lastLabel: rule, uniforms: rule == .randomized ? Self.values("raps_u_test") : nil)
            let reference = Self.values("raps_sets_" + key)
            let mismatches = (0..<200).filter { i in sets[i] != (0..<10).filter { reference[i * 10 + $0] != 0 } }
            #expect(mismatches.isEmpty, "\(key): rows \(mismatches.prefix(5))")
        }
        #expect(throws: ReliabilityError.self) { try CumulativeProbabilitySets(rapsCalibration: p.sliceRows(0..<300), labels: Array(y[0..<300]), tuningRows: [0, 0], alpha: 0.1) }
    }

    @Test func residualIntervalsMatchMAPIEAndCQRCovers() throws {
        let pred = Self.values("reg_pred"), truth = Self.values("reg_y"), intervals = Self.values("reg_intervals")
        let cp = try ConformalRegression(predictions: Array(pred[0..<150]), targets: Array(truth[0..<150]), alpha: 0.1)
        for i in 0..<50 {
            let r = cp.interval(prediction: pred[150 + i])
            #expect(abs(r.lowerBound - intervals[2 * i]) <= 1e-9 && abs(r.upperBound - intervals[2 * i + 1]) <= 1e-9)
        }
        // CQR on exchangeable synthetic data: coverage ≥ 1 − α on average over seeds.
        var covered = 0, total = 0
        for seed: UInt64 in 0..<40 {
            var rng = Philox(seed: seed)
            let y = (0..<400).map { _ in rng.normal() * 1.5 }
            let lo = [Double](repeating: -1, count: 400), hi = [Double](repeating: 1, count: 400)
            let cqr = try ConformalRegression(lower: Array(lo[0..<200]), upper: Array(hi[0..<200]), targets: Array(y[0..<200]), alpha: 0.1)
            for i in 200..<400 { total += 1; if cqr.interval(lower: lo[i], upper: hi[i]).contains(y[i]) { covered += 1 } }
        }
        #expect(Double(covered) / Double(total) >= 0.9 - 0.01)
        #expect(throws: ReliabilityError.self) { try ConformalRegression(predictions: [1, 2], targets: [1, 2], alpha: 0.1) }
    }

    /// Classwise and top-label ECE against a direct Double evaluation of their definitions, and the
    /// bootstrap interval of the mean of a known sample.
    @Test func finerCalibrationErrorsAndBootstrap() throws {
        let p = try Matrix<Float>(rows: 4, columns: 2, elements: [0.9, 0.1, 0.6, 0.4, 0.3, 0.7, 0.2, 0.8])
        let y = [0, 1, 1, 1]
        // Two bins. Class 0: p0 = 0.9, 0.6 (bin 2, freq 1/2, conf 0.75), 0.3, 0.2 (bin 1, freq 0, conf 0.25) → (0.25·2 + 0.25·2)/4 = 0.25.
        // Class 1: p1 = 0.1, 0.4 (bin 1, freq 1/2, conf 0.25), 0.7, 0.8 (bin 2, freq 1, conf 0.75) → (0.25·2 + 0.25·2)/4 = 0.25.
        #expect(abs(try ClasswiseCalibration.classwiseECE(probabilities: p, labels: y, bins: 2) - 0.25) < 1e-6)
        // Top label: predicted 0 for rows 0, 1 (conf 0.9, 0.6; correct 1, 0); predicted 1 for rows 2, 3 (0.7, 0.8; both correct).
        // Bin 2 of class 0: |1 − 1.5| / 4; bin 2 of class 1: |2 − 1.5| / 4 → 0.25.
        #expect(abs(try ClasswiseCalibration.topLabelECE(probabilities: p, labels: y, bins: 2) - 0.25) < 1e-6)
        let sample = (0..<200).map { Double($0 % 10) }
        let interval = try Bootstrap.percentile(samples: sample.count, resamples: 500, seed: 1) { idx in idx.reduce(0.0) { $0 + sample[$1] } / Double(idx.count) }
        #expect(interval.estimate == 4.5 && interval.lower < 4.5 && interval.upper > 4.5 && interval.upper - interval.lower < 1.5)
        let again = try Bootstrap.percentile(samples: sample.count, resamples: 500, seed: 1) { idx in idx.reduce(0.0) { $0 + sample[$1] } / Double(idx.count) }
        #expect(again == interval)
        // Several statistics of the same resamples: each equals its own single-statistic interval; the
        // standard error of the mean of 0…9 repeated (sd 2.87, n 200) sets the width: 2·1.96·0.203 ≈ 0.80.
        let both = try Bootstrap.percentile(samples: sample.count, resamples: 500, seed: 1) { idx in
            let mean = idx.reduce(0.0) { $0 + sample[$1] } / Double(idx.count)
            return [mean, idx.map { sample[$0] }.max()!]
        }
        #expect(both[0] == interval && both[1].estimate == 9 && both[1].lower == 9)
        #expect(abs((interval.upper - interval.lower) - 0.80) < 0.15)
    }

    @Test func rapsReducesToAPSAndCovers() throws {
        var covered = 0, total = 0, rapsSize = 0, apsSize = 0
        for seed: UInt64 in 0..<20 {
            var rng = Philox(seed: seed)
            let logits: Matrix<Float> = rng.matrix(rows: 600, columns: 8, .normal(mean: 0, sd: 2))
            var p = logits
            for i in 0..<600 {
                let m = (0..<8).map { logits[i, $0] }.max()!
                let e = (0..<8).map { Foundation.exp(logits[i, $0] - m) }, s = e.reduce(0, +)
                for k in 0..<8 { p[i, k] = e[k] / s }
            }
            let y = (0..<600).map { i -> Int in
                var u = Float(rng.uniform()), k = 0
                while k < 7 && u > p[i, k] { u -= p[i, k]; k += 1 }
                return k
            }
            let cal = try Matrix(rows: 300, columns: 8, elements: (0..<300).flatMap { Array(p.row($0)) })
            let test = try Matrix(rows: 300, columns: 8, elements: (300..<600).flatMap { Array(p.row($0)) })
            let raps = try SplitConformal(calibration: cal, labels: Array(y[0..<300]), alpha: 0.1, score: .raps(lambda: 0.1, kReg: 1, randomized: false))
            let aps = try SplitConformal(calibration: cal, labels: Array(y[0..<300]), alpha: 0.1, score: .aps(randomized: false))
            let zero = try SplitConformal(calibration: cal, labels: Array(y[0..<300]), alpha: 0.1, score: .raps(lambda: 0, kReg: 0, randomized: false))
            let (rs, ap) = (try raps.predict(test), try aps.predict(test))
            #expect(try zero.predict(test) == ap)
            for i in 0..<300 { total += 1; if rs[i].contains(y[300 + i]) { covered += 1 } }
            rapsSize += rs.reduce(0) { $0 + $1.count }
            apsSize += ap.reduce(0) { $0 + $1.count }
        }
        #expect(Double(covered) / Double(total) >= 0.89)
        #expect(rapsSize <= apsSize, "RAPS penalises deep classes: sets no larger on average")
        #expect(throws: ReliabilityError.self) {
            try SplitConformal(calibration: Matrix(rows: 30, columns: 2, repeating: 0.5), labels: [Int](repeating: 0, count: 30), alpha: 0.1,
                               score: .raps(lambda: -1, kReg: 0, randomized: false))
        }
    }

    @Test func recalibratorsRoundTripThroughFiles() throws {
        let iso = try IsotonicRegression(x: [0.1, 0.5, 0.9], y: [0, 1, 1])
        let path = TestScratch.root.appendingPathComponent("faultline-recal-\(UUID().uuidString).json").path
        for r in [Recalibrator.isotonic(iso), .platt(try PlattScaling(scores: [-1, 0, 1, 2], labels: [0, 0, 1, 1])),
                  .histogram(try HistogramBinning(confidences: [0.2, 0.9], correct: [false, true], bins: 5))] {
            try r.save(to: path)
            #expect(try Recalibrator.load(path) == r)
        }
        try Data("{}".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ReliabilityError.self) { try Recalibrator.load(path) }
    }
}
