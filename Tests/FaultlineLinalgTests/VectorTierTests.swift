import FaultlineLinalg
import Foundation
import Testing

/// The vector tiers of the fused kernels side by side (reference, simd, avx2, avx512 — each that this
/// CPU runs; the others are skipped with the reason) against float64 definitions written out here, at
/// EVERY length 0…33 (twice the 16-lane width + 1: empty, pure tails, one and two full vectors plus
/// every tail) and at odd offsets from an aligned buffer, with guard values around the range that no
/// tier may touch (the mask-register stores of avx512, the masked stores of avx2). Families: random
/// probabilities, zeros, FLT_MIN and subnormals, exact ones, ties, NaN and ±∞ where the contract
/// defines the result.
@Suite("vector tiers: every tail length and offset")
struct VectorTierTests {
    /// The tiers this CPU runs (a C tier it lacks would step down and only repeat another tier).
    static let tiers = Linalg.KernelTier.allCases.filter { Linalg.runnable($0) == $0 }
    static let lengths = Array(0...33)
    static let offsets = [0, 1, 3, 7]
    static let guardValue: Float = -12345.5

    @Test(.enabled(if: Linalg.hasAVX512Kernels, "this CPU lacks AVX-512 F/BW/VL/DQ (or the OS does not save ZMM state): avx512 steps down to avx2"))
    func avx512TierRunsHere() {
        #expect(Self.tiers.contains(.avx512) && Linalg.bestTier == .avx512)
    }

    @Test(.enabled(if: Linalg.hasAVX2Kernels, "this CPU lacks AVX2+FMA: avx2 steps down to simd"))
    func avx2TierRunsHere() {
        #expect(Self.tiers.contains(.avx2))
    }

    /// Runs `body` on a copy of `values` placed at `offset` in a buffer with 20 guard floats on each
    /// side; checks the guards are intact afterwards.
    static func guarded<R>(_ values: [Float], offset: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> (R, [Float], Bool) {
        var buffer = [Float](repeating: guardValue, count: offset + values.count + 20 + 20)
        for (j, v) in values.enumerated() { buffer[20 + offset + j] = v }
        let r = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress! + 20 + offset) }
        let inside = Array(buffer[(20 + offset)..<(20 + offset + values.count)])
        let intact = buffer[..<(20 + offset)].allSatisfy { $0 == guardValue } && buffer[(20 + offset + values.count)...].allSatisfy { $0 == guardValue }
        return (r, inside, intact)
    }

    /// Probability-like rows of length n in three families.
    static func probabilities(_ n: Int, family: Int, seed: UInt64) -> [Float] {
        var rng = Philox(seed: seed)
        var p = (0..<n).map { _ in Float(rng.uniform()) }
        switch family {
        case 1:  // zeros, the smallest normal, subnormals, exact ones
            let specials: [Float] = [0, .leastNormalMagnitude, .leastNonzeroMagnitude, 1, 1e-30, 0.5]
            for j in Swift.stride(from: 0, to: n, by: 2) { p[j] = specials[(j / 2) % specials.count] }
        case 2:  // a softmax-like row with a dominant class (most values tiny)
            p = p.map { Float(exp(-30 * Double($0))) }
            let s = p.reduce(0, +)
            if s > 0 { p = p.map { min($0 / s, 1) } }
        default:
            let s = p.reduce(0, +)
            if s > 0 { p = p.map { $0 / s } }
        }
        return p
    }

    static func xlogx(_ p: [Float]) -> Double {
        p.reduce(0.0) { $0 + Double($1) * Foundation.log(Double(max($1, .leastNormalMagnitude))) }
    }

    @Test(arguments: tiers)
    func xlogxAccumulateEveryTail(tier: Linalg.KernelTier) {
        for n in Self.lengths { for offset in Self.offsets { for family in 0..<3 {
            let p = Self.probabilities(n, family: family, seed: UInt64(n * 10 + family))
            let sum0 = (0..<n).map { Float($0) * 0.25 }
            let ((r, _), sum, intact) = p.withUnsafeBufferPointer { pp in
                Self.guarded(sum0, offset: offset) { s -> ((xlogx: Double, total: Double, invalid: Bool), Int) in
                    // p itself at an odd offset too
                    var shifted = [Float](repeating: 0, count: offset) + Array(pp)
                    let r = shifted.withUnsafeMutableBufferPointer { Linalg.xlogxAccumulate($0.baseAddress! + offset, into: s, count: n, tier: tier) }
                    return (r, 0)
                }
            }
            let reference = Self.xlogx(p), total = p.reduce(0.0) { $0 + Double($1) }
            let label = "\(tier) n=\(n) offset=\(offset) family=\(family)"
            // The bound of the table log (1.5e-7·max(1, |ln p|) per element) plus float32 summation.
            let bound = 3e-7 * (1 + abs(reference)) + 1e-7 * total
            #expect(abs(r.xlogx - reference) <= bound, "\(label): \(r.xlogx) vs \(reference)")
            #expect(abs(r.total - total) <= 1e-6 * max(1, total), "\(label)")
            #expect(!r.invalid && intact, "\(label)")
            #expect(zip(sum, zip(sum0, p)).allSatisfy { $0 == $1.0 + $1.1 }, "\(label): Σ p added in float exactly")
        } } }
    }

    /// A NaN, a negative value or a value above 1 at any position, body or tail, sets `invalid` on
    /// every tier; ±∞ too.
    @Test(arguments: tiers)
    func xlogxInvalidAnywhere(tier: Linalg.KernelTier) {
        for n in 1...33 { for position in Set([0, n / 2, n - 1]) { for bad in [Float.nan, -0.25, 1.5, .infinity, -.infinity] {
            var p = Self.probabilities(n, family: 0, seed: UInt64(n))
            p[position] = bad
            var scratch = [Float](repeating: 0, count: n)
            #expect(Linalg.xlogxAccumulate(p, into: &scratch, count: n, tier: tier).invalid, "\(tier) n=\(n) at \(position): \(bad)")
        } } }
    }

    @Test(arguments: tiers)
    func xlogxScaleEveryTail(tier: Linalg.KernelTier) {
        for n in Self.lengths { for offset in Self.offsets { for family in 0..<3 {
            let p = Self.probabilities(n, family: family, seed: UInt64(n * 7 + family)).map { $0 * 4 }
            let (h, scaled, intact) = Self.guarded(p, offset: offset) { Linalg.xlogxScale($0, count: n, scale: 0.25, tier: tier) }
            let want = p.map { $0 * 0.25 }
            let reference = Self.xlogx(want)
            let label = "\(tier) n=\(n) offset=\(offset) family=\(family)"
            #expect(scaled == want && intact, "\(label)")
            #expect(abs(h - reference) <= 3e-7 * (1 + abs(reference)) + 1e-7, "\(label): \(h) vs \(reference)")
        } } }
    }

    /// The logarithm inside Σ p ln p, element by element (one-element rows, so the sum is p·ln p rounded
    /// once): |ln − ln₆₄| ≤ 1.5e-7·max(1, |ln p|) on every tier, over every table cell's edges and centre
    /// (8 cells for avx2, 32 for avx512) at exponents from FLT_MIN to 1, and 20,000 log-uniform draws.
    @Test(arguments: tiers)
    func logarithmWithinItsBound(tier: Linalg.KernelTier) {
        var xs: [Float] = [.leastNormalMagnitude, 1, 0.5, Float(1).nextDown]
        for exponent in Swift.stride(from: -126, through: -1, by: 5) {
            for cell in 0..<32 {
                let lower = Float(sign: .plus, exponent: exponent, significand: 1 + Float(cell) / 32)
                xs += [lower, lower.nextUp, lower.nextDown, Float(sign: .plus, exponent: exponent, significand: 1 + (Float(cell) + 0.5) / 32)]
            }
        }
        var rng = Philox(seed: 77)
        for _ in 0..<20_000 { xs.append(Float(Foundation.exp(-87 * rng.uniform()))) }
        var worst = 0.0, at: Float = 0
        var sum: Float = 0
        for x in xs where x >= .leastNormalMagnitude && x <= 1 {
            var p = x
            let r = Linalg.xlogxAccumulate(&p, into: &sum, count: 1, tier: tier)
            let exact = Foundation.log(Double(x))
            // p·ln p is rounded to float once (≤ 2⁻²⁴ relative) before the division recovers ln p.
            let error = abs(r.xlogx / Double(x) - exact) - 6e-8 * abs(exact)
            let scaled = error / max(1, abs(exact))
            if scaled > worst { worst = scaled; at = x }
        }
        #expect(worst <= 1.5e-7, "\(tier): ln error \(worst)·max(1, |ln p|) at p = \(at)")
    }

    /// One sample of the ensemble pass (`ensembleSample`) at every length 0…33, 1–3 members and odd
    /// offsets, guards around the mean row: the mean is the members' float sum in member order times the
    /// scale (bit for bit), the argmaxes are first maxima, the sums agree with float64, and an invalid
    /// value or an off sum in any member is reported as that member (the first one).
    @Test(arguments: tiers)
    func ensembleSampleEveryTail(tier: Linalg.KernelTier) {
        for n in Self.lengths { for m in 1...3 { for offset in [0, 3] {
            // Softmax-like rows (families 0 and 2; in every other one a value moved aside for a subnormal
            // and FLT_MIN), one-hot rows (zeros and an exact one, anywhere), tied maxima at offset 3
            // (uniform rows, and two halves anywhere: the first maximum must win in every lane and
            // across lanes) and −0.0 in the last column.
            let rows: [[Float]] = (0..<m).map { k in
                var row: [Float]
                let tied = offset == 3 && (n + k) % 4 == 1 && n >= 2
                if (n + k) % 4 == 3 { row = (0..<n).map { $0 == (7 * k + n / 2) % n ? 1 : 0 } }
                else if tied && k % 2 == 0 { row = [Float](repeating: 1 / Float(n), count: n) }
                else if tied { row = (0..<n).map { $0 == (3 * k + 1) % n || $0 == (3 * k + 2 + n / 2) % n ? 0.5 : 0 } }
                else { row = Self.probabilities(n, family: (n + k) % 2 == 0 ? 0 : 2, seed: UInt64(n * 31 + k * 7 + offset)) }
                if k % 2 == 1 && n >= 3 && row.max()! < 1 && !tied {
                    let (a, b, into) = ((k * 5) % n, (k * 5 + 1) % n, (k * 5 + 2) % n)
                    row[into] += row[a] + row[b]
                    row[a] = .leastNonzeroMagnitude
                    row[b] = .leastNormalMagnitude
                }
                if n >= 2 && row[n - 1] == 0 { row[n - 1] = -0.0 }
                return row
            }
            let label = "\(tier) n=\(n) M=\(m) offset=\(offset)"
            let scale = 1 / Float(m)
            func run(_ rows: [[Float]]) -> (Linalg.EnsembleSample, [Int], [Float], Bool) {
                let storage = rows.map { [Float](repeating: 0, count: offset) + $0 }
                var best = [Int](repeating: -1, count: m + 1)
                let pointers = storage.map { $0.withUnsafeBufferPointer { $0.baseAddress! } }
                let ((r, arg), mean, intact) = withExtendedLifetime(storage) {
                    Self.guarded([Float](repeating: 7, count: n), offset: 1) { meanRow in
                        pointers.withUnsafeBufferPointer { p in
                            best.withUnsafeMutableBufferPointer { b in
                                (Linalg.ensembleSample(p.baseAddress!, memberCount: m, offset: offset, count: n, scale: scale,
                                                       mean: meanRow, argmax: b.baseAddress!, tier: tier), Array(b))
                            }
                        }
                    }
                }
                return (r, arg, mean, intact)
            }
            let (r, best, mean, intact) = run(rows)
            #expect(intact, "\(label): a store outside the mean row")
            if n == 0 {
                #expect(r.failure == nil && r.xlogx == 0 && best.allSatisfy { $0 == 0 }, "\(label)")
                continue
            }
            let sumsToOne = rows.allSatisfy { abs($0.reduce(0.0) { $0 + Double($1) } - 1) <= 1e-3 }
            guard sumsToOne else {
                #expect(r.failure != nil && r.failure?.invalid == false, "\(label): an off sum goes unreported")
                continue
            }
            #expect(r.failure == nil, "\(label): \(String(describing: r.failure))")
            var floatSum = [Float](repeating: 0, count: n)  // 0 + p: −0.0 becomes +0.0
            for k in 0..<m { for j in 0..<n { floatSum[j] += rows[k][j] } }
            let wantMean = floatSum.map { $0 * scale }
            #expect(mean.map(\.bitPattern) == wantMean.map(\.bitPattern), "\(label): mean row, bit for bit")
            func first(_ row: [Float]) -> Int { row.indices.reduce(0) { row[$1] > row[$0] ? $1 : $0 } }
            #expect(best == rows.map(first) + [first(wantMean)], "\(label): argmax")
            let xlogx = rows.map(Self.xlogx).reduce(0, +)
            let spread = rows.reduce(0.0) { acc, row in acc + zip(row, rows[0]).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } }
            let meanSpread = zip(wantMean, rows[0]).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            #expect(abs(r.xlogx - xlogx) <= 3e-7 * Double(m) * (1 + abs(xlogx / Double(m))) + 1e-7 * Double(m), "\(label): \(r.xlogx) vs \(xlogx)")
            #expect(abs(r.meanXlogx - Self.xlogx(wantMean)) <= 3e-7 * (1 + abs(r.meanXlogx)) + 1e-7, "\(label)")
            #expect(abs(r.spread - spread) <= 1e-6 * spread + 1e-12 && abs(r.meanSpread - meanSpread) <= 1e-6 * meanSpread + 1e-12, "\(label)")
            // A bad value in member k (and in every later member) is reported as member k.
            for k in 0..<m { for (j, bad) in [(0, Float.nan), (n - 1, -0.5), (n / 2, 1.5), (n / 3, .infinity), (n - 1, -.infinity), (n / 2, .nan)] {
                var broken = rows
                for later in k..<m { broken[later][j] = bad }
                let failure = run(broken).0.failure
                #expect(failure?.member == k && failure?.invalid == true, "\(label): \(bad) at member \(k) column \(j): \(String(describing: failure))")
            } }
            // A row scaled off its sum (by 1.01, still inside [0, 1]) in any member.
            for k in 0..<m where rows[k].allSatisfy({ $0 * 1.01 <= 1 }) {
                var off = rows
                off[k] = off[k].map { $0 * 1.01 }
                let failure = run(off).0.failure
                #expect(failure?.member == k && failure?.invalid == false && abs((failure?.total ?? 0) - 1.01) < 1e-4, "\(label): \(String(describing: failure))")
            }
        } } }
    }

    /// exp(x·scale) element by element against float64, underflow to 0 below −87.3 (−103.97 on simd,
    /// which keeps subnormals), NaN in gives NaN out; the two C tiers bit-identical element-wise.
    @Test(arguments: tiers)
    func expScaledEveryTail(tier: Linalg.KernelTier) {
        for n in Self.lengths { for offset in Self.offsets {
            var rng = Philox(seed: 31 &+ UInt64(n))
            var x = (0..<n).map { _ in Float(rng.uniform() * 300) }
            if n > 0 { x[0] = 0 }
            if n > 3 { x[n - 2] = 1e30; x[1] = .leastNonzeroMagnitude }
            let scale: Float = -0.37
            let (sum, out, intact) = Self.guarded(x, offset: offset) { Linalg.expScaledInPlace($0, count: n, scale: scale, tier: tier) }
            let exact = x.map { Foundation.exp(Double($0 * scale)) }
            let label = "\(tier) n=\(n) offset=\(offset)"
            #expect(intact, "\(label)")
            #expect(zip(out, exact).allSatisfy { abs(Double($0) - $1) <= 3e-7 * $1 + 1.2e-38 }, "\(label)")
            #expect(abs(sum - out.reduce(0.0) { $0 + Double($1) }) <= 1e-6 * max(1, sum), "\(label)")
            if tier == .avx512 && Linalg.hasAVX2Kernels {
                let (_, twin, _) = Self.guarded(x, offset: offset) { Linalg.expScaledInPlace($0, count: n, scale: scale, tier: .avx2) }
                // avx2 finishes its last n % 8 elements with libm's expf; the vector part must match bit for bit.
                #expect(Array(out.prefix(n - n % 8)) == Array(twin.prefix(n - n % 8)), "\(label): avx512 vs avx2")
            }
            if n > 0 {
                var withNaN = x
                withNaN[n - 1] = .nan
                let (_, nanOut, _) = Self.guarded(withNaN, offset: offset) { Linalg.expScaledInPlace($0, count: n, scale: scale, tier: tier) }
                #expect(nanOut[n - 1].isNaN, "\(label): NaN in gives NaN out")
            }
        } }
    }

    /// Squared differences and the FIRST maximum (ties, a NaN in front keeps index 0, −∞ rows),
    /// with the reference tier's rule on every tier.
    @Test(arguments: tiers)
    func squaredDifferenceArgmaxEveryTail(tier: Linalg.KernelTier) {
        for n in 1...33 { for offset in Self.offsets { for family in 0..<4 {
            var rng = Philox(seed: 5 &+ UInt64(n * 4 + family))
            var row = (0..<n).map { _ in Float(Int(rng.uniform() * 5)) }  // many ties
            switch family {
            case 1: row = row.map { -$0 }; row[n - 1] = row.max()!  // the max also at the end
            case 2: row = [Float](repeating: -.infinity, count: n)
            case 3: row[0] = .nan
            default: break
            }
            let mean = (0..<n).map { Float($0) * 0.1 }
            let ((d, arg), _, intact) = Self.guarded(row, offset: offset) { r in
                Linalg.squaredDifferenceAndArgmax(r, mean, count: n, tier: tier)
            }
            let want = Linalg.squaredDifferenceAndArgmax(row, mean, count: n, tier: .reference)
            let label = "\(tier) n=\(n) offset=\(offset) family=\(family)"
            #expect(arg == want.argmax && intact, "\(label): \(arg) vs \(want.argmax)")
            if want.squaredDifference.isFinite {
                #expect(abs(d - want.squaredDifference) <= 1e-6 * max(1, want.squaredDifference), "\(label)")
            } else {
                #expect(!d.isFinite, "\(label): a non-finite sum stays non-finite")
            }
        } } }
    }

    /// Normals at every start and count around the 32- and 64-normal groups: the C tiers against the
    /// Swift definition, avx512 bit-identical to avx2.
    @Test func normalsEveryAlignment() {
        for start in [0, 1, 31, 32, 33, 63, 64, 65, 1_000_003] { for count in [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 97, 129] {
            var want = [Float](repeating: 0, count: count)
            Philox.fillNormals(&want, start: start, count: count, seed: 9, stream: 3, tier: .reference)
            for tier in Self.tiers {
                var got = [Float](repeating: 0, count: count)
                Philox.fillNormals(&got, start: start, count: count, seed: 9, stream: 3, tier: tier)
                #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 2e-6 * max(1, abs($1)) }, "\(tier) start \(start) count \(count)")
                if tier == .avx512 && Linalg.hasAVX2Kernels {
                    var twin = [Float](repeating: 0, count: count)
                    Philox.fillNormals(&twin, start: start, count: count, seed: 9, stream: 3, tier: .avx2)
                    #expect(got == twin, "avx512 vs avx2 start \(start) count \(count)")
                }
            }
        } }
    }

    /// The softmax moments and calibration sums for every row count 0…33 (the 8- and 16-row lane
    /// groups and their tails) against the reference tier's float64 loops.
    @Test(arguments: tiers)
    func softmaxRowsEveryTail(tier: Linalg.KernelTier) {
        let c = 7
        for rows in Self.lengths {
            let (z, y) = RowKernelTierTests.logits(rows: max(rows, 1) * 2, classes: c, seed: UInt64(rows + 1))
            for stride in [1, 2] {
                let got = Linalg.temperatureMoments(z, labels: y, first: 0, count: rows, stride: stride, classes: c, inverseTemperature: 1.7, tier: tier)
                let want = Linalg.temperatureMoments(z, labels: y, first: 0, count: rows, stride: stride, classes: c, inverseTemperature: 1.7, tier: .reference)
                #expect(abs(got.nll - want.nll) <= 1e-12 * max(1, abs(want.nll)), "\(tier) rows \(rows) stride \(stride)")
                #expect(abs(got.gradient - want.gradient) <= 1e-12 * max(1, abs(want.gradient)), "\(tier) rows \(rows)")
                #expect(abs(got.curvature - want.curvature) <= 1e-11 * max(1, abs(want.curvature)), "\(tier) rows \(rows)")
            }
            func sums(_ t: Linalg.KernelTier, _ logits: [Float]) -> ([Double], [Double], [Double], [Double], Int?) {
                var count = [Double](repeating: 0, count: 10), confidence = count, correct = count, totals = [0.0, 0.0]
                let bad = Linalg.softmaxCalibrationSums(logits, labels: y, first: 1, count: rows, classes: c, rule: .equalWidth, bins: 10,
                                                        count: &count, confidence: &confidence, correct: &correct, totals: &totals, tier: t)
                return (count, confidence, correct, totals, bad)
            }
            let g = sums(tier, z), w = sums(.reference, z)
            #expect(g.0 == w.0 && g.2 == w.2 && g.4 == nil, "\(tier) rows \(rows)")
            #expect(zip(g.1, w.1).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, $1) } && zip(g.3, w.3).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) },
                    "\(tier) rows \(rows)")
            if rows > 0 {
                var broken = z
                broken[rows * c + 2] = .infinity  // row `rows` = the last of the range [1, rows + 1)
                #expect(sums(tier, broken).4 == rows, "\(tier) rows \(rows): the row with ±∞ is named")
            }
        }
    }
}
