import FaultlineLinalg
import Foundation
import Testing

/// Every tier of the fused row kernels (reference, simd and the C shim's AVX2+FMA and AVX-512 tiers,
/// which step down on CPUs without them) side by side in one process, against Double definitions
/// written out here. `VectorTierTests` adds every tail length of the 16-wide loops and odd offsets.
@Suite("row kernels: every tier")
struct RowKernelTierTests {
    static let tiers = Linalg.KernelTier.allCases

    /// The tier each backend request runs, decided in one place.
    @Test func backendsMapToTiers() {
        #expect(Linalg.kernelTier(.reference, override: nil) == .reference && Linalg.kernelTier(.simd, override: nil) == .simd)
        #expect(Linalg.kernelTier(.blas, override: nil) == (Backend.blas.isAvailable ? Linalg.bestTier : .simd))
        // The override (FAULTLINE_VECTOR_TIER): never for reference; the simd backend opts into C tiers.
        #expect(Linalg.kernelTier(.reference, override: .avx512) == .reference)
        #expect(Linalg.kernelTier(.simd, override: .avx2) == Linalg.runnable(.avx2))
        #expect(Linalg.kernelTier(.blas, override: .simd) == .simd)
        #expect(Linalg.runnable(.avx512) == (Linalg.hasAVX512Kernels ? .avx512 : Linalg.hasAVX2Kernels ? .avx2 : .simd))
        for (value, tier) in [("scalar", Linalg.KernelTier.reference), ("SIMD", .simd), ("avx2", .avx2), ("avx-512", .avx512)] {
            #expect(Linalg.KernelTier(environment: value) == tier)
        }
        #expect(Linalg.KernelTier(environment: "auto") == nil && Linalg.KernelTier(environment: "avx9") == nil)
    }

    @Test(arguments: tiers, [1, 7, 8, 9, 16, 17, 100])
    func xlogxAndScale(tier: Linalg.KernelTier, count n: Int) {
        var rng = Philox(seed: UInt64(n))
        var p = (0..<n).map { _ in Float(rng.uniform()) }
        if n > 1 { p[0] = 0 }  // 0·log 0 = 0
        let s = p.reduce(0, +)
        p = p.map { $0 / s }
        var sum = [Float](repeating: 1, count: n)
        let r = Linalg.xlogxAccumulate(p, into: &sum, count: n, tier: tier)
        let reference = p.reduce(0.0) { $0 + ($1 > 0 ? Double($1) * log(Double($1)) : 0) }
        #expect(abs(r.xlogx - reference) <= 1e-6 * max(1, abs(reference)) && abs(r.total - 1) < 1e-5 && !r.invalid)
        #expect(zip(sum, p).allSatisfy { $0 == 1 + $1 })
        var bad = p
        bad[n - 1] = n > 1 ? .nan : 1.5
        var scratch = [Float](repeating: 0, count: n)
        #expect(Linalg.xlogxAccumulate(bad, into: &scratch, count: n, tier: tier).invalid)
        var values = p.map { $0 * 3 }
        let h = Linalg.xlogxScale(&values, count: n, scale: 1.0 / 3, tier: tier)
        #expect(abs(h - reference) <= 1e-5 * max(1, abs(reference)))
    }

    @Test(arguments: tiers, [1, 3, 8, 10, 13, 64])
    func squaredDifferenceAndArgmax(tier: Linalg.KernelTier, count n: Int) {
        var rng = Philox(seed: 99 &+ UInt64(n))
        var row = (0..<n).map { _ in Float(rng.normal() * 4) }
        let m = row.max()!
        row[n - 1] = m  // a tie with the first maximum: the first one wins
        let mean = [Float](repeating: 0.5, count: n)
        let (d, arg) = Linalg.squaredDifferenceAndArgmax(row, mean, count: n, tier: tier)
        #expect(arg == row.firstIndex(of: row.max()!)!)
        #expect(abs(d - row.reduce(0.0) { $0 + Double($1 - 0.5) * Double($1 - 0.5) }) <= 1e-5 * d)
    }

    /// exp(x·scale) in place against Double at every tail length, with underflow to 0.
    @Test(arguments: tiers, [1, 7, 8, 15, 16, 17, 100])
    func expScaledInPlace(tier: Linalg.KernelTier, count n: Int) {
        var rng = Philox(seed: 7 &+ UInt64(n))
        var x = (0..<n).map { _ in Float(rng.uniform() * 50) }
        x[0] = 0
        if n > 2 { x[n - 1] = 1e6 }  // far below the underflow threshold after scaling
        let scale: Float = -0.37
        let exact = x.map { Foundation.exp(Double($0 * scale)) }  // the argument rounded to float, as the kernel forms it
        let sum = Linalg.expScaledInPlace(&x, count: n, scale: scale, tier: tier)
        #expect(zip(x, exact).allSatisfy { abs(Double($0) - $1) <= 3e-7 * $1 + 1e-38 }, "\(x) vs \(exact)")
        #expect(abs(sum - exact.reduce(0, +)) <= 1e-6 * max(sum, 1) && x[0] == 1)
    }

    /// Random logits (one row far below its maximum, so its exps underflow) and labels.
    static func logits(rows: Int, classes c: Int, seed: UInt64) -> (z: [Float], y: [Int]) {
        var rng = Philox(seed: seed)
        var z = (0..<(rows * c)).map { _ in Float(rng.normal() * 3) }
        z[c / 2] = -900
        return (z, (0..<rows).map { _ in Int(rng.uniform() * Double(c)) % c })
    }

    /// The float64 temperature moments of every `stride`-th row against their definitions, for row
    /// counts that leave every tail length of the four-row groups.
    @Test(arguments: [(1, 1), (5, 1), (7, 3), (64, 2), (203, 1)])
    func temperatureMomentsEqualTheirDefinition(rows: Int, stride: Int) {
        for tier in Self.tiers { for c in [2, 10, 13] {
            let (z, y) = Self.logits(rows: rows * stride, classes: c, seed: UInt64(rows * 31 + c))
            for s in [0.3, 1.0, 2.5] {
                var nll = 0.0, gradient = 0.0, curvature = 0.0
                for i in Swift.stride(from: 0, to: rows * stride, by: stride) {
                    let row = (0..<c).map { Double(z[i * c + $0]) }
                    let m = row.map { s * $0 }.max()!
                    let e = row.map { Foundation.exp(s * $0 - m) }, sum = e.reduce(0, +)
                    let mean = zip(e, row).reduce(0.0) { $0 + $1.0 * $1.1 } / sum
                    nll += m + Foundation.log(sum) - s * row[y[i]]
                    gradient += mean - row[y[i]]
                    curvature += zip(e, row).reduce(0.0) { $0 + $1.0 * $1.1 * $1.1 } / sum - mean * mean
                }
                let got = Linalg.temperatureMoments(z, labels: y, first: 0, count: rows, stride: stride, classes: c, inverseTemperature: s, tier: tier)
                #expect(abs(got.nll - nll) <= 1e-12 * max(1, abs(nll)), "\(tier) nll c=\(c) s=\(s): \(got.nll) vs \(nll)")
                #expect(abs(got.gradient - gradient) <= 1e-12 * max(1, abs(gradient)), "\(tier) gradient c=\(c) s=\(s)")
                #expect(abs(got.curvature - curvature) <= 1e-11 * max(1, abs(curvature)), "\(tier) curvature c=\(c) s=\(s)")
            }
        } }
    }

    /// Binned confidences, NLL and Brier from logits against float64 definitions; the first row with a
    /// NaN or ±∞ is named.
    @Test(arguments: tiers, [1, 8, 9, 37, 100])
    func softmaxCalibrationSumsEqualTheirDefinition(tier: Linalg.KernelTier, rows: Int) {
        let c = 10, bins = 15
        let (z, y) = Self.logits(rows: rows, classes: c, seed: UInt64(rows))
        for rule in [Linalg.CalibrationBinRule.equalWidth, .torchmetrics, .rightClosed] {
            let slots = rule == .torchmetrics ? bins + 1 : bins
            var count = [Double](repeating: 0, count: slots), confidence = count, correct = count, totals = [0.0, 0.0]
            let bad = Linalg.softmaxCalibrationSums(z, labels: y, first: 0, count: rows, classes: c, rule: rule, bins: bins,
                                                    count: &count, confidence: &confidence, correct: &correct, totals: &totals, tier: tier)
            #expect(bad == nil)
            var wantCount = [Double](repeating: 0, count: slots), wantConfidence = wantCount, wantCorrect = wantCount
            var nll = 0.0, brier = 0.0
            for i in 0..<rows {
                let row = (0..<c).map { Double(z[i * c + $0]) }, m = row.max()!
                let p = row.map { Foundation.exp($0 - m) }, sum = p.reduce(0, +)
                let top = 1 / sum, scaled = top * Double(bins)
                let k: Int
                switch rule {
                case .equalWidth: k = min(Int(scaled), bins - 1)
                case .torchmetrics: k = min(Int(scaled), bins)
                case .rightClosed: k = min(max(Int(scaled.rounded(.up)) - 1, 0), bins - 1)
                }
                #expect(k == rule.index(top, bins: bins), "the bin rule's one definition")
                wantCount[k] += 1
                wantConfidence[k] += top
                if row.firstIndex(of: m)! == y[i] { wantCorrect[k] += 1 }
                nll += Foundation.log(sum) - (row[y[i]] - m)
                brier += zip(p.indices, p).reduce(0.0) { $0 + pow($1.1 / sum - ($1.0 == y[i] ? 1 : 0), 2) }
            }
            #expect(count == wantCount && correct == wantCorrect, "\(rule)")
            #expect(zip(confidence, wantConfidence).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, $1) }, "\(rule)")
            #expect(abs(totals[0] - nll) <= 1e-6 * max(1, nll) && abs(totals[1] - brier) <= 1e-6 * max(1, brier), "\(rule)")
        }
        for badRow in [0, rows - 1] {
            var broken = z
            broken[badRow * c + 3] = badRow == 0 ? .nan : .infinity
            var count = [Double](repeating: 0, count: bins), confidence = count, correct = count, totals = [0.0, 0.0]
            let bad = Linalg.softmaxCalibrationSums(broken, labels: y, first: 0, count: rows, classes: c, rule: .equalWidth, bins: bins,
                                                    count: &count, confidence: &confidence, correct: &correct, totals: &totals, tier: tier)
            #expect(bad == badRow)
        }
    }

    /// Philox normals: the C tiers and the Swift definition agree to float32 rounding over every
    /// alignment of the 32-normal groups, the reference tier is the definition, and avx512 is avx2 bit
    /// for bit.
    @Test func normalsAgreeAcrossTiers() {
        for (start, count) in [(0, 1), (3, 29), (31, 2), (64, 100), (1000, 257)] {
            var simd = [Float](repeating: 0, count: count), native = simd, wide = simd, reference = simd
            Philox.fillNormals(&simd, start: start, count: count, seed: 42, stream: 7, tier: .simd)
            Philox.fillNormals(&native, start: start, count: count, seed: 42, stream: 7, tier: .avx2)
            Philox.fillNormals(&wide, start: start, count: count, seed: 42, stream: 7, tier: .avx512)
            Philox.fillNormals(&reference, start: start, count: count, seed: 42, stream: 7, tier: .reference)
            #expect(reference == simd)
            #expect(zip(simd, native).allSatisfy { abs($0 - $1) <= 2e-6 * max(1, abs($0)) }, "start \(start)")
            if Linalg.hasAVX2Kernels { #expect(wide == native, "start \(start)") }
        }
    }
}
