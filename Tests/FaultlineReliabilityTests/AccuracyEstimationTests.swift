import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

/// ATC and DoC against brute-force forms of their definitions (Garg et al. 2022; Guillory et al.
/// 2021), with ties, all-right and all-wrong sources, and sizes 1, 2, 3 and odd.
@Suite("accuracy without labels: ATC, DoC")
struct AccuracyEstimationTests {
    /// Rows with a chosen maximum (ties when `levels` is small), argmax at column 0 or 1.
    static func rows(_ n: Int, _ rng: inout Philox, levels: Double) -> [[Float]] {
        (0..<n).map { _ in
            let top = Float(0.5 + 0.5 * (rng.uniform() * levels).rounded() / levels)
            return rng.uniform() < 0.5 ? [top, 1 - top, 0] : [1 - top, top, 0]
        }
    }

    /// The ATC prediction by brute force: among all ways of breaking the tie at t, the source fraction
    /// above t must equal the source accuracy, i.e. #{s > t} ≤ c ≤ #{s ≥ t}; then the target share is
    /// #{s > t} + λ·#{s = t} with that λ.
    static func bruteATC(_ source: [Double], _ correct: Int, _ target: [Double]) -> Double {
        if correct == source.count { return 1 }
        for t in Set(source).sorted() {
            let above = source.filter { $0 > t }.count, equal = source.filter { $0 == t }.count
            if above <= correct && correct < above + equal {
                let lambda = Double(correct - above) / Double(equal)
                return target.reduce(0.0) { $0 + ($1 > t ? 1 : ($1 == t ? lambda : 0)) } / Double(target.count)
            }
        }
        return .nan
    }

    @Test(arguments: [1, 2, 3, 7, 50, 301])
    func atcAndDocEqualTheirDefinitions(_ n: Int) throws {
        var rng = Philox(seed: UInt64(n))
        for trial in 0..<12 {
            let levels = [2.0, 5.0, 1000.0][trial % 3]
            let s = Self.rows(n, &rng, levels: levels), t = Self.rows(n + trial, &rng, levels: levels)
            let argmax = s.map { $0[0] >= $0[1] ? 0 : 1 }
            // Labels: all right, all wrong, or mixed.
            let labels = argmax.map { a in trial % 4 == 0 ? a : (trial % 4 == 1 ? 2 : (rng.uniform() < 0.7 ? a : 2)) }
            let correct = zip(argmax, labels).filter { $0 == $1 }.count
            let source = try Matrix<Float>(s), target = try Matrix<Float>(t)
            for score in AccuracyEstimate.Score.allCases {
                let e = try AccuracyEstimate(source: source, labels: labels, target: target, score: score)
                let f: ([Float]) -> Double = score == .msp ? { Double($0.max()!) } : { $0.reduce(0.0) { $1 > 0 ? $0 + Double($1) * Foundation.log(Double($1)) : $0 } }
                let ss = s.map(f), ts = t.map(f)
                #expect(e.sourceAccuracy == Double(correct) / Double(n))
                #expect(abs(e.atc - Self.bruteATC(ss, correct, ts)) <= 1e-12, "n=\(n) trial \(trial) \(score): \(e.atc)")
                // The source identity holds exactly: ATC on the source is the source accuracy.
                #expect(abs(AccuracyEstimate.share(ss, above: e.threshold, tieWeight: e.tieWeight) - e.sourceAccuracy) <= 1e-12)
                let msp = { (rows: [[Float]]) in rows.reduce(0.0) { $0 + Double($1.max()!) } / Double(rows.count) }
                #expect(abs(e.doc - min(1, max(0, e.sourceAccuracy + msp(t) - msp(s)))) <= 1e-12)
                #expect(abs(e.averageConfidence - msp(t)) <= 1e-12)
            }
            // Target = source: ATC returns the source accuracy exactly, DoC too.
            let same = try AccuracyEstimate(source: source, labels: labels, target: source)
            #expect(abs(same.atc - same.sourceAccuracy) <= 1e-12 && abs(same.doc - same.sourceAccuracy) <= 1e-12)
        }
    }

    @Test func noTiesIsGargsStrictDefinition() throws {
        // Scores 0.55 … 0.95, 3 of 5 right: t is the 2nd smallest score, ATC counts target scores > t.
        let s = try Matrix<Float>([[0.55, 0.45], [0.65, 0.35], [0.75, 0.25], [0.85, 0.15], [0.95, 0.05]])
        let e = try AccuracyEstimate(source: s, labels: [1, 0, 1, 0, 0], target: try Matrix<Float>([[0.6, 0.4], [0.7, 0.3], [0.9, 0.1], [0.66, 0.34]]))
        #expect(e.threshold == Double(Float(0.65)) && e.tieWeight == 0)
        #expect(e.atc == 0.75)
        let allWrong = try AccuracyEstimate(source: s, labels: [1, 1, 1, 1, 1], target: s)
        #expect(allWrong.atc == 0 && allWrong.sourceAccuracy == 0)
        let allRight = try AccuracyEstimate(source: s, labels: [0, 0, 0, 0, 0], target: try Matrix<Float>([[0.5, 0.5]]))
        #expect(allRight.atc == 1 && allRight.threshold == -.infinity)
        // Every score tied (saturated MSPs): λ is the accuracy itself.
        let tied = try Matrix<Float>([[1, 0], [1, 0], [1, 0], [1, 0]])
        let t = try AccuracyEstimate(source: tied, labels: [0, 0, 0, 1], target: tied)
        #expect(t.tieWeight == 0.75 && t.atc == 0.75)
    }

    @Test func badInputsThrow() throws {
        let s = try Matrix<Float>([[0.5, 0.5]])
        #expect(throws: ReliabilityError.self) { try AccuracyEstimate(source: s, labels: [2], target: s) }
        #expect(throws: ReliabilityError.self) { try AccuracyEstimate(source: s, labels: [0, 1], target: s) }
        #expect(throws: ReliabilityError.self) { try AccuracyEstimate(source: s, labels: [0], target: try Matrix<Float>([[1, 0, 0]])) }
        #expect(throws: ReliabilityError.self) { try AccuracyEstimate(source: s, labels: [0], target: try Matrix<Float>([[Float.nan, 1]])) }
        #expect(throws: ReliabilityError.self) { try AccuracyEstimate(source: s, labels: [0], target: Matrix<Float>(rows: 0, columns: 2)) }
    }
}
