import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing
import _TestSupport

/// GaussianFit.allMerged over K simulated ranks equals the one-process fit of all the rows.
@Suite("Distributed Gaussian fit")
struct DistributedGaussianFitTests {
    static func maxRelative(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Double {
        let scale = b.withUnsafeBufferPointer { $0.map(abs).max() ?? 0 }
        return zip(a.withUnsafeBufferPointer { Array($0) }, b.withUnsafeBufferPointer { Array($0) }).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-300) } ?? 0
    }

    @Test(arguments: [1, 2, 3])
    func mergedFitEqualsOneProcess(ranks: Int) throws {
        for n in [1, 2, 5, 17, 300] {
            for perClass in [false, true] {
                let d = 6, classes = 3
                var rng = Philox(seed: UInt64(n), stream: 1)
                var x = Matrix<Float>(rows: n, columns: d)
                for i in 0..<n { for j in 0..<d { x[i, j] = Float(rng.uniform() * 4 + Double(j) * 10) } }  // offset means: cancellation-prone
                let y = (0..<n).map { $0 % classes }
                let data = x
                var one = GaussianFit(dimension: d, classes: classes, perClassCovariance: perClass)
                try one.update(x, labels: y)
                let results = SimulatedJob.run(ranks: ranks) { c -> GaussianFit in
                    // Uneven: rank 0 holds nothing when K > 1, the last rank the most.
                    let cut = (0...c.size).map { r in r == c.size ? n : Swift.min(n, r * r * n / (c.size * c.size)) }
                    let rows = cut[c.rank]..<cut[c.rank + 1]
                    var fit = GaussianFit(dimension: d, classes: classes, perClassCovariance: perClass)
                    try fit.update(data.gatherRows(Array(rows)), labels: Array(y[rows]))
                    return try fit.allMerged(over: c)
                }
                for result in results {
                    let fit = try result.get()
                    #expect(fit.counts == one.counts)
                    #expect(Self.maxRelative(fit.means, one.means) <= 1e-12, "n \(n) K \(ranks)")
                    #expect(Self.maxRelative(fit.covariance, one.covariance) <= 1e-12, "n \(n) K \(ranks) perClass \(perClass)")
                    if perClass {
                        for k in 0..<classes where one.counts[k] > 0 { #expect(Self.maxRelative(try fit.classCovariance(k), try one.classCovariance(k)) <= 1e-12) }
                    }
                }
            }
        }
    }

    /// Fits of different shapes on different ranks: every rank throws.
    @Test func mismatchedFitsAreRefusedEverywhere() {
        let results = SimulatedJob.run(ranks: 2) { c -> GaussianFit in
            try GaussianFit(dimension: 3 + c.rank, classes: 2).allMerged(over: c)
        }
        for result in results { #expect(throws: ShiftError.self) { try result.get() } }
    }
}

/// The detectors fitted from shards on K simulated ranks score like the one-process detectors.
@Suite("Distributed detector fit")
struct DistributedDetectorFitTests {
    @Test(arguments: [2, 3])
    func detectorsScoreLikeOneProcess(ranks: Int) throws {
        let n = 240, d = 5, classes = 3
        var rng = Philox(seed: 77, stream: 2)
        var x = Matrix<Float>(rows: n, columns: d)
        for i in 0..<n { for j in 0..<d { x[i, j] = Float(rng.normal()) + Float(i % classes) * 2 + Float(j) } }
        let y = (0..<n).map { $0 % classes }
        var probe = Matrix<Float>(rows: 20, columns: d)
        for i in 0..<20 { for j in 0..<d { probe[i, j] = Float(rng.normal() * 3) } }
        let (data, points) = (x, probe)
        let cases: [(DetectorFile.Detector.Kind, DetectorFile.Detector.Shrinkage)] = [
            (.mahalanobis, .ledoitWolf), (.mahalanobis, .oas), (.mahalanobis, .fixed(0.1)), (.perClass, .fixed(0)), (.relative, .oas),
        ]
        for (kind, shrinkage) in cases {
            let one = try DetectorFile.Detector.fit(kind, features: x, labels: y, shrinkage: shrinkage).score(probe)
            let results = SimulatedJob.run(ranks: ranks) { c -> [Float] in
                let rows = RowSplit.even(rows: n, rank: c.rank, size: c.size)
                return try DetectorFile.Detector.fit(kind, shard: data.gatherRows(Array(rows)), labels: Array(y[rows]), shrinkage: shrinkage,
                                                     communicator: c).score(points)
            }
            for result in results {
                let scores = try result.get()
                let worst = zip(scores, one).map { abs(Double($0) - Double($1)) / max(abs(Double($1)), 1) }.max()!
                #expect(worst <= 1e-5, "\(kind) \(shrinkage) K \(ranks): \(worst)")
            }
        }
        let knn = SimulatedJob.run(ranks: 2) { c -> Int in
            _ = try DetectorFile.Detector.fit(.knn, shard: data, labels: y, communicator: c)
            return 0
        }
        for result in knn { #expect(throws: ShiftError.self) { try result.get() } }
    }
}
