import FaultlineIO
import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing

/// CUSUM, Page–Hinkley and ADWIN: change points equal river 0.26.1's on fixed streams
/// (scripts/fixtures/make_river_drift_fixtures.py), run lengths under no change and detection delays
/// after a mean shift measured by simulation (fixed Philox seeds) against Siegmund's approximation,
/// and ADWIN's false alarms against the δ-derived bound of Bifet & Gavaldà's Theorem 3.1.
@Suite("sequential change detectors: CUSUM, Page–Hinkley, ADWIN")
struct SequentialDetectorTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let river = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/river_drift.npz").map { ($0.name, $0.tensor) })

    static func detector(_ config: String) throws -> any SequentialChangeDetector {
        switch config {
        case "ph_default": return try PageHinkley()
        case "ph_up_t10": return try PageHinkley(delta: 0.05, threshold: 10, alpha: 1, minInstances: 30, direction: .up)
        case "ph_down_t10": return try PageHinkley(delta: 0.05, threshold: 10, alpha: 0.999, minInstances: 10, direction: .down)
        case "adwin_default": return try ADWIN()
        case "adwin_clock1": return try ADWIN(delta: 0.01, clock: 1, maxBuckets: 3, minWindowLength: 10, gracePeriod: 20)
        default: fatalError(config)
        }
    }

    /// Every stream × configuration: the same change points as river, index for index.
    @Test(arguments: ["normal_shift", "bernoulli_errors", "normal_ramp", "river_doc"])
    func changePointsEqualRiver(stream: String) throws {
        let version = String(decoding: Self.river["river_version"]!.values(as: Double.self).map { UInt8($0) }, as: UTF8.self)
        #expect(version == "0.26.1")
        let values = Self.river[stream]!.values(as: Double.self)
        for config in ["ph_default", "ph_up_t10", "ph_down_t10", "adwin_default", "adwin_clock1"] {
            var want = Self.river["\(stream)__\(config)"]!.values(as: Double.self).map { Int($0) }
            if want == [-1] { want = [] }
            var d = try Self.detector(config)
            let got = d.changePoints(in: values)
            #expect(got == want, "\(stream) \(config): \(got.prefix(10)) vs river \(want.prefix(10))")
        }
    }

    /// Run lengths of `runs` independent runs (each from a fresh detector) on N(mean, 1) values; a run
    /// that reaches `cap` counts as `cap`.
    static func runLengths(_ make: () throws -> any SequentialChangeDetector, runs: Int, seed: UInt64, mean: Double = 0, cap: Int = 1_000_000) rethrows -> [Int] {
        var rng = Philox(seed: seed)
        return try (0..<runs).map { _ in
            var d = try make()
            var n = 0
            while n < cap {
                n += 1
                if d.update(mean + rng.normal()) { break }
            }
            return n
        }
    }

    static func average(_ v: [Int]) -> Double { Double(v.reduce(0, +)) / Double(v.count) }

    /// CUSUM's in-control ARL₀ (one- and two-sided) and zero-state delays after 1σ and 2σ shifts, by
    /// simulation, within 7 % of Siegmund's approximation (which is within ~1–3 % of the exact values:
    /// ARL₀ ≈ 930 at k = 0.5, h = 5; the simulation's standard error is ≈ 1.6 %).
    @Test(arguments: [(0.5, 5.0), (0.5, 4.0), (0.25, 8.0)])
    func cusumRunLengthsMatchSiegmund(k: Double, h: Double) throws {
        for direction in [ChangeDirection.up, .both] {
            let make = { try CUSUM(slack: k, threshold: h, direction: direction, mean: 0, sigma: 1) }
            let arl0 = Self.average(try Self.runLengths(make, runs: 4000, seed: 11))
            let expected0 = CUSUM.siegmundAverageRunLength(shift: 0, slack: k, threshold: h, twoSided: direction == .both)
            #expect(abs(arl0 / expected0 - 1) < 0.07, "k \(k) h \(h) \(direction): ARL₀ \(arl0) vs Siegmund \(expected0)")
            for shift in [1.0, 2.0] {
                let delay = Self.average(try Self.runLengths(make, runs: 4000, seed: 12, mean: shift))
                let expected = CUSUM.siegmundAverageRunLength(shift: shift, slack: k, threshold: h, twoSided: direction == .both)
                #expect(abs(delay / expected - 1) < 0.07, "k \(k) h \(h) \(direction) shift \(shift): delay \(delay) vs Siegmund \(expected)")
            }
        }
    }

    /// Known closed-form values of Siegmund's formula (b = h + 1.166).
    @Test func siegmundClosedForms() {
        let b = 6.166
        #expect(abs(CUSUM.siegmundAverageRunLength(shift: 0, slack: 0.5, threshold: 5) - (exp(b) - b - 1) / 0.5) < 1e-9)
        #expect(abs(CUSUM.siegmundAverageRunLength(shift: 0.5, slack: 0.5, threshold: 5) - b * b) < 1e-9)
        #expect(abs(CUSUM.siegmundAverageRunLength(shift: 0, slack: 0.5, threshold: 5, twoSided: true) - (exp(b) - b - 1) / 1.0) < 1e-9)
        // Monotone: a larger shift is found sooner.
        let arls = stride(from: 0.0, through: 3, by: 0.25).map { CUSUM.siegmundAverageRunLength(shift: $0, slack: 0.5, threshold: 5) }
        #expect(zip(arls, arls.dropFirst()).allSatisfy { $0 > $1 })
    }

    /// With estimated μ₀ and σ (river's frozen warm-up), a scaled and shifted stream gives the same
    /// alarms as the standardised one (the chart is scale-free).
    @Test func cusumWarmupIsScaleFree() throws {
        var rng = Philox(seed: 5)
        let z = (0..<3000).map { i in rng.normal() + (i >= 1500 ? 1 : 0) }
        var a = try CUSUM(), b = try CUSUM()
        let pa = a.changePoints(in: z), pb = b.changePoints(in: z.map { 3 * $0 - 7 })
        #expect(pa == pb)
        #expect(pa.contains { $0 >= 1500 && $0 < 1560 }, "\(pa)")
    }

    /// Page–Hinkley with α = 1 is CUSUM around the running mean: its ARL₀ on N(0, 1) values is within
    /// 10 % of Siegmund's at k = δ, h = λ (the running mean's early noise is the difference).
    @Test(arguments: [(0.5, 5.0), (0.5, 4.0)])
    func pageHinkleyRunLengthMatchesSiegmund(delta: Double, lambda: Double) throws {
        let make = { try PageHinkley(delta: delta, threshold: lambda, alpha: 1, minInstances: 1, direction: .up) }
        let arl0 = Self.average(try Self.runLengths(make, runs: 3000, seed: 21))
        let expected = CUSUM.siegmundAverageRunLength(shift: 0, slack: delta, threshold: lambda)
        #expect(abs(arl0 / expected - 1) < 0.10, "δ \(delta) λ \(lambda): ARL₀ \(arl0) vs Siegmund \(expected)")
    }

    /// ADWIN on stationary Bernoulli and normal streams: false alarms at most the δ-derived bound
    /// (checks × δ), for several δ; after a jump of the error rate 0.1 → 0.5 every stream detects it,
    /// within 300 values on average.
    @Test(arguments: [0.002, 0.05, 0.3])
    func adwinFalseAlarmsWithinBound(delta: Double) throws {
        var rng = Philox(seed: 31)
        var alarms = 0, checks = 0
        for stream in 0..<40 {
            var d = try ADWIN(delta: delta, clock: 1)
            for _ in 0..<4000 {
                let x = stream % 2 == 0 ? (rng.uniform() < 0.2 ? 1.0 : 0.0) : rng.normal()
                if d.update(x) { alarms += 1 }
                if d.width > Double(d.gracePeriod) { checks += 1 }
            }
        }
        #expect(Double(alarms) <= Double(checks) * delta, "δ \(delta): \(alarms) false alarms in \(checks) checks")
        var delays: [Int] = []
        for _ in 0..<40 {
            var d = try ADWIN(delta: delta)
            for _ in 0..<2000 { _ = d.update(rng.uniform() < 0.1 ? 1 : 0) }
            var n = 0
            while n < 5000 {
                n += 1
                if d.update(rng.uniform() < 0.5 ? 1 : 0) { break }
            }
            delays.append(n)
        }
        #expect(delays.allSatisfy { $0 < 5000 }, "δ \(delta): \(delays)")
        #expect(Self.average(delays) < 300, "δ \(delta): mean delay \(Self.average(delays))")
    }

    /// Edge families: empty, one value, constant streams, NaN/∞ skipped, invalid parameters refused.
    @Test func edgeCases() throws {
        let makers: [() throws -> any SequentialChangeDetector] = [
            { try CUSUM() }, { try CUSUM(mean: 0, sigma: 1) }, { try PageHinkley() }, { try ADWIN() }, { try ADWIN(clock: 1) },
        ]
        for make in makers {
            var d = try make()
            #expect(d.changePoints(in: [Double]()) == [])
            #expect(d.changePoints(in: [1.0]) == [])
            var c = try make()
            #expect(c.changePoints(in: [Double](repeating: 0, count: 2000)) == [], "\(type(of: c)) alarms on a constant 0")
            // Non-finite values are skipped: the same alarms as the stream without them, at shifted indices.
            var rng = Philox(seed: 3)
            let clean = (0..<600).map { i in rng.normal() + (i >= 300 ? 4 : 0) }
            var dirty: [Double] = [], positions: [Int] = []
            for (i, x) in clean.enumerated() {
                if i % 7 == 3 { dirty.append([Double.nan, .infinity, -.infinity][i % 3]) }
                positions.append(dirty.count)
                dirty.append(x)
            }
            var a = try make(), b = try make()
            let pa = a.changePoints(in: clean), pb = b.changePoints(in: dirty)
            #expect(pa.map { positions[$0] } == pb, "\(type(of: a))")
            #expect(!pa.isEmpty, "\(type(of: a)) misses a 4σ shift")
        }
        // A constant warm-up gives σ = 0: any later deviation alarms (river's CUSUM does the same).
        var flat = try CUSUM(warmup: 5)
        #expect(flat.changePoints(in: [2, 2, 2, 2, 2, 2, 2, 2.5, 2]) == [7])
        #expect(throws: ShiftError.self) { try CUSUM(slack: -1) }
        #expect(throws: ShiftError.self) { try CUSUM(threshold: 0) }
        #expect(throws: ShiftError.self) { try CUSUM(sigma: 0) }
        #expect(throws: ShiftError.self) { try CUSUM(sigma: .nan) }
        #expect(throws: ShiftError.self) { try CUSUM(warmup: 1) }
        #expect(throws: ShiftError.self) { try PageHinkley(alpha: 0) }
        #expect(throws: ShiftError.self) { try PageHinkley(alpha: 1.5) }
        #expect(throws: ShiftError.self) { try PageHinkley(threshold: .infinity) }
        #expect(throws: ShiftError.self) { try PageHinkley(minInstances: 0) }
        #expect(throws: ShiftError.self) { try ADWIN(delta: 0) }
        #expect(throws: ShiftError.self) { try ADWIN(delta: 1) }
        #expect(throws: ShiftError.self) { try ADWIN(clock: 0) }
        #expect(throws: ShiftError.self) { try ADWIN(maxBuckets: 0) }
        #expect(throws: ShiftError.self) { try ADWIN(minWindowLength: 0) }
    }

    /// ADWIN keeps its window statistics exact: width, total and the sum of squared deviations equal a
    /// float64 recomputation over the values it still holds (no change here, so it holds them all).
    @Test(arguments: [1, 2, 3, 31, 32, 33, 500, 4097])
    func adwinWindowStatistics(count: Int) throws {
        var rng = Philox(seed: UInt64(count))
        let values = (0..<count).map { _ in 0.3 + 0.01 * rng.normal() }
        var d = try ADWIN()
        for x in values { _ = d.update(x) }
        let mean = values.reduce(0, +) / Double(count)
        let ss = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        #expect(d.width == Double(count))
        #expect(abs(d.total - values.reduce(0, +)) <= 1e-9 * Double(count))
        #expect(abs(d.variance - ss) <= 1e-9 * max(ss, 1))
        #expect(abs(d.estimation - mean) <= 1e-12)
    }
}
