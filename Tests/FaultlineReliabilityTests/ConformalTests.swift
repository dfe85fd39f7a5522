import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

@Suite("split conformal prediction")
struct ConformalTests {
    @Test func exactOrderStatistic() {
        #expect(SplitConformal.rank(n: 9, alpha: 0.1) == 9)  // (n+1)(1−α) = 9 exactly, not 9.000000000000002
        #expect(SplitConformal.rank(n: 19, alpha: 0.1) == 18)
        #expect(SplitConformal.rank(n: 9, alpha: 0.2) == 8)
        #expect(SplitConformal.rank(n: 100, alpha: 0.05) == 96)  // ⌈101·0.95⌉ = ⌈95.95⌉
        #expect(SplitConformal.rank(n: 8, alpha: 0.1) == 9)  // > n: infinite threshold
        #expect(SplitConformal.minimumCalibrationSize(alpha: 0.1) == 9)
        #expect(SplitConformal.minimumCalibrationSize(alpha: 0.05) == 19)
    }

    @Test func lacThresholdByHand() throws {
        // Scores 1 − p_y: 0.1, 0.3, 0.2, 0.6; α = 0.25, n = 4 → k = 5 − ⌊1.25⌋ = 4 → the largest, 0.6.
        let p = try Matrix<Float>([[0.9, 0.1], [0.3, 0.7], [0.8, 0.2], [0.6, 0.4]])
        let cp = try SplitConformal(calibration: p, labels: [0, 1, 0, 1], alpha: 0.25)
        #expect(abs(cp.threshold - 0.6) < 1e-7)
        let sets = try cp.predict(try Matrix<Float>([[0.5, 0.5], [0.95, 0.05], [0.3, 0.7]]))
        #expect(sets == [[0, 1], [0], [1]])  // 1 − 0.3 = 0.7 > 0.6 leaves class 0 out of the last set
    }

    /// Marginal coverage ≥ 1 − α on exchangeable data, averaged over many draws of calibration and test sets.
    @Test(arguments: [SplitConformal.Score.lac, .aps(randomized: true), .aps(randomized: false), .topK])
    func coverageHoldsOnExchangeableData(score: SplitConformal.Score) throws {
        let alpha = 0.1
        var coverages: [Double] = [], mondrian: [Double] = [], mapieStyle = [[Double]](repeating: [], count: 5)
        for seed in 0..<40 {
            var rng = Philox(seed: UInt64(seed))
            // A deliberately miscalibrated model: labels drawn from softmax(t), probabilities softmax(2t).
            func draw(_ n: Int) throws -> (Matrix<Float>, [Int]) {
                let t: Matrix<Float> = rng.matrix(rows: n, columns: 5, .normal(mean: 0, sd: 1.5))
                let truth = try Linalg.softmaxRows(t)
                let labels = (0..<n).map { i -> Int in
                    var u = Float(rng.uniform()), c = 0
                    while c < 4 && u > truth[i, c] { u -= truth[i, c]; c += 1 }
                    return c
                }
                return (try Linalg.softmaxRows(t.map { $0 * 2 }), labels)
            }
            let (calP, calY) = try draw(400), (testP, testY) = try draw(400)
            let cp = try SplitConformal(calibration: calP, labels: calY, alpha: alpha, score: score, seed: UInt64(seed))
            coverages.append(SplitConformal.evaluate(sets: try cp.predict(testP), labels: testY).coverage)
            let m = try SplitConformal(calibration: calP, labels: calY, alpha: alpha, score: score, classConditional: true, seed: UInt64(seed))
            mondrian.append(SplitConformal.evaluate(sets: try m.predict(testP), labels: testY).coverage)
            if score == .lac {  // once: MAPIE's APS convention, seeded, every last-label rule
                let aps = try CumulativeProbabilitySets(calibration: calP, labels: calY, alpha: alpha, seed: UInt64(seed))
                for (k, rule) in [CumulativeProbabilitySets.LastLabel.include, .exclude, .randomized].enumerated() {
                    mapieStyle[k].append(SplitConformal.evaluate(sets: try aps.predict(testP, lastLabel: rule), labels: testY).coverage)
                }
                let tuning = try CumulativeProbabilitySets.stratifiedTuningRows(labels: calY, fraction: 0.2, seed: UInt64(seed))
                for (k, rule) in [CumulativeProbabilitySets.LastLabel.include, .randomized].enumerated() {
                    let raps = try CumulativeProbabilitySets(rapsCalibration: calP, labels: calY, tuningRows: tuning, alpha: alpha, tuningRule: rule, seed: UInt64(seed))
                    mapieStyle[3 + k].append(SplitConformal.evaluate(sets: try raps.predict(testP, lastLabel: rule), labels: testY).coverage)
                }
            }
        }
        let mean = coverages.reduce(0, +) / Double(coverages.count)
        #expect(mean >= 1 - alpha - 0.01, "\(score): mean coverage \(mean)")
        #expect(mondrian.reduce(0, +) / Double(mondrian.count) >= 1 - alpha - 0.01)
        // include and randomized (APS, then RAPS) are valid; exclude is MAPIE's shortcut without a guarantee
        // (only checked to run).
        for k in [0, 2, 3, 4] where score == .lac {
            let m = mapieStyle[k].reduce(0, +) / Double(mapieStyle[k].count)
            #expect(m >= 1 - alpha - 0.01, "MAPIE-style APS rule \(k): mean coverage \(m)")
        }
    }

    @Test func badInputs() throws {
        let p = try Matrix<Float>([[0.9, 0.1], [0.3, 0.7]])
        let small = try #require(throws: ReliabilityError.self) { try SplitConformal(calibration: p, labels: [0, 1], alpha: 0.1) }
        #expect(small.description.contains("at least 9"))
        #expect(throws: ReliabilityError.self) { try SplitConformal(calibration: p, labels: [0, 1], alpha: 1.5) }
        #expect(throws: ReliabilityError.self) { try SplitConformal(calibration: p, labels: [0, 2], alpha: 0.5) }
    }
}
