import Foundation

/// A change detector over a stream of scalars (an error indicator, a confidence, a drift score):
/// `update(_:)` takes one value and says whether a change is signalled at it.
///
/// All detectors here follow river's convention: after a value that signals a change, the next
/// `update` first resets the detector, so each alarm starts a fresh run (the run length between
/// alarms is what the false-alarm rate is stated for). Non-finite values (NaN, ±∞) are skipped:
/// `update` returns false and leaves the state unchanged. O(1) memory and time per value for CUSUM and
/// Page–Hinkley; O(log W) memory and O(log W) time per checked value for ADWIN (W the window width).
public protocol SequentialChangeDetector: Sendable {
    /// Feeds one value; true when this value signals a change.
    mutating func update(_ x: Double) -> Bool
    /// Forgets everything seen (back to the freshly made detector).
    mutating func reset()
}

extension SequentialChangeDetector {
    /// The 0-based indices (into `values`) at which the detector signals a change, feeding every
    /// value from the detector's current state (each alarm restarts the run, see the protocol).
    /// O(n) for CUSUM and Page–Hinkley, O(n log n) for ADWIN.
    public mutating func changePoints<S: Sequence>(in values: S) -> [Int] where S.Element == Double {
        var out: [Int] = []
        for (i, x) in values.enumerated() where update(x) { out.append(i) }
        return out
    }
}

/// Which direction of change a one-sided statistic watches (river's `mode`).
public enum ChangeDirection: String, Sendable, Codable, CaseIterable {
    /// Increases of the mean only.
    case up
    /// Decreases of the mean only.
    case down
    /// Both (two one-sided statistics, an alarm when either crosses).
    case both
}

/// Page's tabular CUSUM (cumulative sum) chart for a shift in the mean:
/// S⁺ₜ = max(0, S⁺ₜ₋₁ + (xₜ − μ₀) − kσ), S⁻ₜ = max(0, S⁻ₜ₋₁ − (xₜ − μ₀) − kσ), a change when the
/// watched sum exceeds hσ. The in-control mean μ₀ and deviation σ are given, or estimated over the
/// first `warmup` values and then frozen (as river's `drift.CUSUM`: sample variance, ddof = 1; the
/// warm-up values themselves are not tested except the last, which fixes the reference).
///
/// False-alarm control: for independent normal values with known μ₀ and σ the one-sided average run
/// length to a false alarm (ARL₀) is given by Siegmund's approximation
/// (`CUSUM.siegmundAverageRunLength`), ≈ 938 at the classical k = 0.5, h = 5 (exact ≈ 930); the
/// two-sided chart alarms twice as often (ARL₀ ≈ 469). The tests check both against simulation.
public struct CUSUM: SequentialChangeDetector, Codable, Equatable {
    /// k, in units of σ (≥ 0): half the shift the chart is tuned to detect.
    public var slack: Double
    /// h, in units of σ (> 0): the decision interval.
    public var threshold: Double
    /// Which shifts of the mean to watch: increases, decreases or both.
    public var direction: ChangeDirection
    /// The in-control mean and deviation when known; nil: estimated over the first `warmup` values.
    public var knownMean: Double?
    /// The in-control deviation σ when known; nil: estimated over the warm-up.
    public var knownSigma: Double?
    /// Values used to estimate whichever of μ₀, σ is not known (≥ 2 when σ is estimated).
    public var warmup: Int

    /// The in-control mean μ₀ in use (nil until the warm-up is over when it is estimated).
    public private(set) var reference: Double?
    /// The in-control deviation σ in use (0 until known or estimated).
    public private(set) var sigma: Double = 0
    /// The current sums S⁺ and S⁻.
    public private(set) var sumIncrease = 0.0
    /// The current sum S⁻ (S⁺ above).
    public private(set) var sumDecrease = 0.0
    private var seen = 0
    private var mean = 0.0, squares = 0.0
    private var pendingReset = false

    /// Throws `ShiftError.invalidInput` for k < 0, h ≤ 0, a non-finite or non-positive known σ, or a
    /// warm-up too short for what must be estimated.
    public init(slack: Double = 0.5, threshold: Double = 5, direction: ChangeDirection = .both,
                mean: Double? = nil, sigma: Double? = nil, warmup: Int = 30) throws {
        guard slack.isFinite, slack >= 0 else { throw ShiftError.invalidInput("CUSUM slack k must be finite and ≥ 0, not \(slack)") }
        guard threshold.isFinite, threshold > 0 else { throw ShiftError.invalidInput("CUSUM threshold h must be finite and > 0, not \(threshold)") }
        if let mean, !mean.isFinite { throw ShiftError.invalidInput("CUSUM mean must be finite, not \(mean)") }
        if let sigma, !(sigma.isFinite && sigma > 0) { throw ShiftError.invalidInput("CUSUM sigma must be finite and > 0, not \(sigma)") }
        let needed = sigma == nil ? 2 : (mean == nil ? 1 : 0)
        guard warmup >= needed, warmup <= 1 << 40 else {
            throw ShiftError.invalidInput("CUSUM warm-up must be in \(needed)…2^40 values to estimate \(sigma == nil ? "σ" : "the mean"), not \(warmup)")
        }
        (self.slack, self.threshold, self.direction, knownMean, knownSigma) = (slack, threshold, direction, mean, sigma)
        self.warmup = (mean != nil && sigma != nil) ? 0 : warmup
        reset()
    }

    public mutating func reset() {
        (seen, mean, squares, sumIncrease, sumDecrease, pendingReset) = (0, 0, 0, 0, 0, false)
        reference = (knownMean != nil && knownSigma != nil) ? knownMean : nil
        sigma = knownSigma ?? 0
    }

    public mutating func update(_ x: Double) -> Bool {
        guard x.isFinite else { return false }
        if pendingReset { reset() }
        if reference == nil {
            seen += 1
            let d = x - mean
            mean += d / Double(seen)
            squares += d * (x - mean)
            guard seen >= warmup else { return false }
            reference = knownMean ?? mean
            sigma = knownSigma ?? (seen > 1 ? (max(squares, 0) / Double(seen - 1)).squareRoot() : 0)
        }
        let deviation = x - reference!, k = slack * sigma, limit = threshold * sigma
        sumIncrease = max(0, sumIncrease + deviation - k)
        sumDecrease = max(0, sumDecrease - deviation - k)
        let alarm: Bool
        switch direction {
        case .up: alarm = sumIncrease > limit
        case .down: alarm = sumDecrease > limit
        case .both: alarm = sumIncrease > limit || sumDecrease > limit
        }
        pendingReset = alarm
        return alarm
    }

    /// Siegmund's approximation to the average run length of a one-sided CUSUM on independent
    /// N(μ₀ + shift·σ, σ²) values, with k and h in units of σ: with Δ = shift − k and b = h + 1.166,
    /// ARL ≈ (exp(−2Δb) + 2Δb − 1) / (2Δ²), and b² at Δ = 0 (Siegmund 1985; Montgomery, *Statistical
    /// Quality Control*, §9.1). `shift` = 0 gives the in-control ARL₀, a positive shift the zero-state
    /// detection delay. Within ~1–2 % of the exact (Markov-chain) values for h ≥ 4. With `twoSided`,
    /// 1/ARL = 1/ARL⁺(shift) + 1/ARL⁺(−shift) (the usual combination of the two one-sided charts).
    public static func siegmundAverageRunLength(shift: Double, slack k: Double, threshold h: Double, twoSided: Bool = false) -> Double {
        func oneSided(_ delta: Double) -> Double {
            let b = h + 1.166
            guard abs(delta) > 1e-12 else { return b * b }
            return (exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)
        }
        guard twoSided else { return oneSided(shift - k) }
        return 1 / (1 / oneSided(shift - k) + 1 / oneSided(-shift - k))
    }
}

/// The Page–Hinkley test as river's `drift.PageHinkley` defines it: x̄ₜ the running mean of the values
/// so far (including xₜ), mₜ⁺ = α·mₜ₋₁⁺ + (xₜ − x̄ₜ) − δ and mₜ⁻ = α·mₜ₋₁⁻ + (xₜ − x̄ₜ) + δ; an increase
/// is signalled when mₜ⁺ − min mᵢ⁺ > λ, a decrease when max mᵢ⁻ − mₜ⁻ > λ, once at least
/// `minInstances` values have been seen. Defaults are river's (δ = 0.005, λ = 50, α = 1 − 10⁻⁴,
/// 30 values).
///
/// False-alarm control: with α = 1 and a settled mean, mₜ⁺ − min mᵢ⁺ is the CUSUM recursion with
/// slack δ and threshold λ on the raw scale, so for normal values of deviation σ the one-sided ARL₀
/// ≈ `CUSUM.siegmundAverageRunLength(shift: 0, slack: δ/σ, threshold: λ/σ)` (checked by simulation in
/// the tests); α < 1 forgets old deviations and lengthens it.
public struct PageHinkley: SequentialChangeDetector, Codable, Equatable {
    /// δ, the magnitude of change the test tolerates.
    public var delta: Double
    /// λ, the change threshold.
    public var threshold: Double
    /// The fading factor α ∈ (0, 1].
    public var alpha: Double
    /// Values seen before any change is signalled.
    public var minInstances: Int
    /// Which changes to signal: increases, decreases or both.
    public var direction: ChangeDirection

    /// Values seen since the start (or the last change).
    public private(set) var count = 0
    /// Their running mean x̄ₜ.
    public private(set) var mean = 0.0
    /// mₜ⁺, the cumulative deviation watched for an increase.
    public private(set) var sumIncrease = 0.0
    /// mₜ⁻, the cumulative deviation watched for a decrease.
    public private(set) var sumDecrease = 0.0
    private var minIncrease = Double.infinity
    private var maxDecrease = -Double.infinity
    private var pendingReset = false

    /// Throws `ShiftError.invalidInput` for δ < 0, λ ≤ 0, α outside (0, 1] or `minInstances` < 1.
    public init(delta: Double = 0.005, threshold: Double = 50, alpha: Double = 1 - 0.0001, minInstances: Int = 30,
                direction: ChangeDirection = .both) throws {
        guard delta.isFinite, delta >= 0 else { throw ShiftError.invalidInput("Page–Hinkley delta must be finite and ≥ 0, not \(delta)") }
        guard threshold.isFinite, threshold > 0 else { throw ShiftError.invalidInput("Page–Hinkley threshold λ must be finite and > 0, not \(threshold)") }
        guard alpha > 0, alpha <= 1 else { throw ShiftError.invalidInput("Page–Hinkley alpha must be in (0, 1], not \(alpha)") }
        guard minInstances >= 1 else { throw ShiftError.invalidInput("Page–Hinkley min instances must be ≥ 1, not \(minInstances)") }
        (self.delta, self.threshold, self.alpha, self.minInstances, self.direction) = (delta, threshold, alpha, minInstances, direction)
    }

    public mutating func reset() {
        (count, mean, sumIncrease, sumDecrease, minIncrease, maxDecrease, pendingReset) = (0, 0, 0, 0, .infinity, -.infinity, false)
    }

    public mutating func update(_ x: Double) -> Bool {
        guard x.isFinite else { return false }
        if pendingReset { reset() }
        count += 1
        mean += (x - mean) / Double(count)
        let deviation = x - mean
        sumIncrease = alpha * sumIncrease + deviation - delta
        sumDecrease = alpha * sumDecrease + deviation + delta
        minIncrease = min(minIncrease, sumIncrease)
        maxDecrease = max(maxDecrease, sumDecrease)
        guard count >= minInstances else { return false }
        let up = sumIncrease - minIncrease > threshold, down = maxDecrease - sumDecrease > threshold
        let alarm: Bool
        switch direction {
        case .up: alarm = up
        case .down: alarm = down
        case .both: alarm = up || down
        }
        pendingReset = alarm
        return alarm
    }
}

/// ADWIN, adaptive windowing (Bifet & Gavaldà, SDM 2007), in the bucketed form (ADWIN2) river's
/// `drift.ADWIN` implements: the window is an exponential histogram (row i holds up to
/// `maxBuckets` + 1 summaries of 2ⁱ values: their sum and their sum of squared deviations), and every
/// `clock` values, once the window is wider than `gracePeriod`, every cut into an older part W₀ and a
/// newer part W₁ (both at least `minWindowLength` values) is tested:
/// |μ̂₀ − μ̂₁| > ε = √(2·m·σ̂²·δ′) + (2/3)·δ′·m with δ′ = ln(2·ln W / δ),
/// m = 1/(n₀ − ℓ + 1) + 1/(n₁ − ℓ + 1) (ℓ = `minWindowLength`) and σ̂² the window's variance. A cut that
/// passes drops the oldest bucket and the cuts are tried again; a change is signalled when any bucket was
/// dropped. As river (≥ 0.22) the detector restarts from an empty window at the value after a change.
///
/// False-alarm control (Bifet & Gavaldà, Theorem 3.1): while the mean is constant, the probability
/// that a check shrinks the window is at most δ, so over C checks the expected number of false alarms
/// is at most C·δ (C ≈ values / `clock`). Memory O(maxBuckets · log W).
public struct ADWIN: SequentialChangeDetector, Codable, Equatable {
    /// δ, the confidence parameter: at most δ false alarms per check while the mean is constant.
    public var delta: Double
    /// Values between two checks of the cuts.
    public var clock: Int
    /// Summaries kept per row of the exponential histogram before two are merged.
    public var maxBuckets: Int
    /// ℓ: the fewest values either part of a cut may have.
    public var minWindowLength: Int
    /// The window width below which no cut is tested.
    public var gracePeriod: Int

    /// Values in the window, their sum and sum of squared deviations from the window mean.
    public private(set) var width = 0.0
    /// The sum of the values in the window.
    public private(set) var total = 0.0
    /// The sum of squared deviations from the window mean.
    public private(set) var variance = 0.0
    /// Changes signalled since the detector was made (not reset by the restarts).
    public private(set) var detections = 0
    private var rows: [[Summary]] = [[]]  // rows[i]: summaries of 2^i values, oldest first
    private var tick = 0
    private var pendingReset = false

    struct Summary: Codable, Equatable {
        var total: Double
        var variance: Double
    }

    /// The window's mean (0 when empty).
    public var estimation: Double { width > 0 ? total / width : 0 }

    /// Throws `ShiftError.invalidInput` for δ outside (0, 1), a clock or bucket count < 1, a minimum
    /// window < 1 or a negative grace period.
    public init(delta: Double = 0.002, clock: Int = 32, maxBuckets: Int = 5, minWindowLength: Int = 5, gracePeriod: Int = 10) throws {
        guard delta > 0, delta < 1 else { throw ShiftError.invalidInput("ADWIN delta must be in (0, 1), not \(delta)") }
        guard clock >= 1, clock <= 1 << 30 else { throw ShiftError.invalidInput("ADWIN clock must be in 1…2^30, not \(clock)") }
        guard maxBuckets >= 1, maxBuckets <= 1 << 16 else { throw ShiftError.invalidInput("ADWIN max buckets must be in 1…65536, not \(maxBuckets)") }
        guard minWindowLength >= 1, minWindowLength <= 1 << 30 else {
            throw ShiftError.invalidInput("ADWIN min window length must be in 1…2^30, not \(minWindowLength)")
        }
        guard gracePeriod >= 0, gracePeriod <= 1 << 40 else { throw ShiftError.invalidInput("ADWIN grace period must be in 0…2^40, not \(gracePeriod)") }
        (self.delta, self.clock, self.maxBuckets, self.minWindowLength, self.gracePeriod) = (delta, clock, maxBuckets, minWindowLength, gracePeriod)
    }

    public mutating func reset() {
        (width, total, variance, rows, tick, pendingReset) = (0, 0, 0, [[]], 0, false)
    }

    public mutating func update(_ x: Double) -> Bool {
        guard x.isFinite else { return false }
        if pendingReset { reset() }
        insert(x)
        let change = detectChange()
        if change { detections += 1 }
        pendingReset = change
        return change
    }

    private mutating func insert(_ x: Double) {
        rows[0].append(Summary(total: x, variance: 0))
        width += 1
        if width > 1 {
            let d = x - total / (width - 1)
            variance += (width - 1) * d * d / width
        }
        total += x
        // Merge the two oldest summaries of a full row into one of the next row, up the rows.
        var i = 0
        while rows[i].count == maxBuckets + 1 {
            let size = Double(sign: .plus, exponent: i, significand: 1)
            let a = rows[i][0], b = rows[i][1]
            let d = a.total / size - b.total / size
            let merged = Summary(total: a.total + b.total, variance: a.variance + b.variance + size * 0.5 * d * d)
            rows[i].removeFirst(2)
            if i + 1 == rows.count { rows.append([]) }
            rows[i + 1].append(merged)
            i += 1
        }
    }

    /// Drops the oldest summary (of the last row).
    private mutating func deleteOldest() {
        let last = rows.count - 1, size = Double(sign: .plus, exponent: last, significand: 1)
        let s = rows[last].removeFirst()
        width -= size
        total -= s.total
        let mu = s.total / size, windowMean = total / width
        variance -= s.variance + size * width * (mu - windowMean) * (mu - windowMean) / (size + width)
        if rows[last].isEmpty && last > 0 { rows.removeLast() }
    }

    private mutating func detectChange() -> Bool {
        tick += 1
        guard tick % clock == 0, width > Double(gracePeriod) else { return false }
        var change = false, shrinking = true
        let minimum = Double(minWindowLength)
        while shrinking {
            shrinking = false
            var n0 = 0.0, n1 = width, u0 = 0.0, u1 = total
            search: for i in stride(from: rows.count - 1, through: 0, by: -1) {
                let size = Double(sign: .plus, exponent: i, significand: 1)
                for k in rows[i].indices {
                    n0 += size; n1 -= size
                    u0 += rows[i][k].total; u1 -= rows[i][k].total
                    if i == 0 && k == rows[i].count - 1 { break search }  // W₁ would be empty
                    if n0 >= minimum && n1 >= minimum && cutPasses(n0, n1, u0 / n0 - u1 / n1) {
                        change = true
                        if width > 0 {
                            deleteOldest()
                            shrinking = true
                            break search
                        }
                    }
                }
            }
        }
        return change
    }

    private func cutPasses(_ n0: Double, _ n1: Double, _ difference: Double) -> Bool {
        let deltaPrime = log(2 * log(width) / delta)
        let m = 1 / (n0 - Double(minWindowLength) + 1) + 1 / (n1 - Double(minWindowLength) + 1)
        let epsilon = (2 * m * (variance / width) * deltaPrime).squareRoot() + 2.0 / 3.0 * deltaPrime * m
        return abs(difference) > epsilon
    }
}
