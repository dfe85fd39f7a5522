import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing

/// The MMD pipeline over three kernel blocks (1,121 rows: 512, 512, 97), where block row 2's prologue
/// adds its columns left of the diagonal into the row sums of blocks 0 and 1: the bandwidth (median,
/// odd and even pair counts), the statistic and every permutation's statistic against a direct
/// float64 evaluation, for both estimators.
@Suite("MMD over several kernel blocks")
struct MMDBlocksTests {
    @Test(arguments: [(560, 561), (500, 620)])
    func threeBlocksEqualADirectFloat64Evaluation(n: Int, m: Int) throws {
        var rng = Philox(seed: UInt64(n))
        let d = 3
        let x: Matrix<Float> = rng.matrix(rows: n, columns: d, .normal(mean: 0, sd: 1))
        let y: Matrix<Float> = rng.matrix(rows: m, columns: d, .normal(mean: 0.3, sd: 1.2))
        let total = n + m
        let z = (0..<n).map { i in (0..<d).map { Double(x[i, $0]) } } + (0..<m).map { i in (0..<d).map { Double(y[i, $0]) } }
        var distance = [Double](repeating: 0, count: total * total)
        var pairs: [Double] = []
        for a in 0..<total {
            for b in 0..<total {
                distance[a * total + b] = zip(z[a], z[b]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                if b < a { pairs.append(distance[a * total + b]) }
            }
        }
        pairs.sort()
        let median = pairs.count % 2 == 1 ? pairs[pairs.count / 2] : (pairs[pairs.count / 2 - 1] + pairs[pairs.count / 2]) / 2
        for estimator in MMDTest.Estimator.allCases {
            let r = try MMDTest.run(x, y, count: 4, seed: 9, estimator: estimator)
            #expect(abs(r.sigma2 - median) <= 2e-6 * median, "\(estimator): σ² \(r.sigma2) vs \(median)")
            let kernel = distance.map { Foundation.exp(-$0 / (2 * r.sigma2)) }
            func mmd2(_ group: [Int]) -> Double {
                var inX = [Bool](repeating: false, count: total)
                for a in group { inX[a] = true }
                var sxx = 0.0, syy = 0.0, sxy = 0.0
                for a in 0..<total {
                    for b in 0..<total where estimator == .biased || a != b {
                        switch (inX[a], inX[b]) {
                        case (true, true): sxx += kernel[a * total + b]
                        case (false, false): syy += kernel[a * total + b]
                        case (true, false): sxy += kernel[a * total + b]
                        case (false, true): break
                        }
                    }
                }
                let (nn, mm) = (Double(n), Double(m))
                return estimator == .unbiased ? sxx / (nn * (nn - 1)) + syy / (mm * (mm - 1)) - 2 * sxy / (nn * mm)
                                              : sxx / (nn * nn) + syy / (mm * mm) - 2 * sxy / (nn * mm)
            }
            #expect(abs(r.mmd2 - mmd2(Array(0..<n))) <= 1e-6, "\(estimator)")
            for (p, order) in MMDTest.permutations(count: 4, samples: total, seed: 9).enumerated() {
                #expect(abs(r.null[p] - mmd2(Array(order.prefix(n)))) <= 1e-6, "\(estimator), permutation \(p)")
            }
            // Thread-count independence, bit for bit.
            let one = try Linalg.withThreads(1) { try MMDTest.run(x, y, count: 4, seed: 9, estimator: estimator) }
            let two = try Linalg.withThreads(2) { try MMDTest.run(x, y, count: 4, seed: 9, estimator: estimator) }
            #expect(one.mmd2 == two.mmd2 && one.null == two.null && one.sigma2 == two.sigma2, "\(estimator)")
        }
    }
}
