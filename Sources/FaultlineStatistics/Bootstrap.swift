import FaultlineLinalg

/// Seeded nonparametric bootstrap percentile intervals for any statistic of a sample: B resamples of
/// the n indices with replacement (resample b from Philox keyed by (seed, b), so the interval does not
/// depend on evaluation order), the statistic on each, and the α/2 and 1 − α/2 empirical quantiles
/// (linear interpolation between order statistics, numpy's default).
public enum Bootstrap {
    /// A statistic on the original sample and its percentile interval over the resamples.
    public struct Interval: Sendable, Codable, Equatable {
        /// The statistic on the original (not resampled) sample.
        public var estimate: Double
        /// The α/2 empirical quantile of the resampled statistics.
        public var lower: Double
        /// The 1 − α/2 empirical quantile of the resampled statistics.
        public var upper: Double
    }

    /// `statistic` receives resampled indices into 0..<n. Throws for n = 0, B < 1, α outside (0, 1), or
    /// what `statistic` throws.
    public static func percentile(samples n: Int, resamples: Int = 1000, alpha: Double = 0.05, seed: UInt64 = 0,
                                  statistic: ([Int]) throws -> Double) throws -> Interval {
        try percentile(samples: n, resamples: resamples, alpha: alpha, seed: seed) { [try statistic($0)] }[0]
    }

    /// Several statistics of the same resamples at once (one evaluation of `statistics` per resample,
    /// which returns the same number of values each time); one interval per statistic.
    public static func percentile(samples n: Int, resamples: Int = 1000, alpha: Double = 0.05, seed: UInt64 = 0,
                                  statistics: ([Int]) throws -> [Double]) throws -> [Interval] {
        guard n > 0, resamples >= 1 else { throw StatisticsError.invalidInput("bootstrap needs samples and at least one resample") }
        guard alpha > 0 && alpha < 1 else { throw StatisticsError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        let estimates = try statistics(Array(0..<n))
        var values = [[Double]](repeating: [], count: estimates.count)
        for b in 0..<resamples {
            var rng = Philox(seed: seed, stream: UInt64(b))
            let resampled = try statistics((0..<n).map { _ in min(Int(rng.uniform() * Double(n)), n - 1) })
            guard resampled.count == estimates.count else { throw StatisticsError.invalidInput("the statistics returned \(resampled.count) values, expected \(estimates.count)") }
            for (k, v) in resampled.enumerated() { values[k].append(v) }
        }
        return zip(estimates, values).map { estimate, sample in
            let sorted = sample.sorted()
            func quantile(_ q: Double) -> Double {
                let position = q * Double(sorted.count - 1), low = Int(position.rounded(.down)), high = min(low + 1, sorted.count - 1)
                return sorted[low] + (position - Double(low)) * (sorted[high] - sorted[low])
            }
            return Interval(estimate: estimate, lower: quantile(alpha / 2), upper: quantile(1 - alpha / 2))
        }
    }

    /// A stratified bootstrap: each resample draws, within every stratum s, `strata[s]` indices into
    /// 0..<strata[s] with replacement (Philox keyed by (seed, b), strata drawn in order), so every
    /// resample keeps each stratum's size — e.g. positives and negatives of an AUROC, which an
    /// unstratified resample can leave empty. `statistic` receives one index array per stratum (the
    /// originals first, for the estimate). Percentiles as in `percentile`. Throws when a stratum is
    /// empty, B < 1, α outside (0, 1), or what `statistic` throws.
    public static func stratifiedPercentile(strata: [Int], resamples: Int = 1000, alpha: Double = 0.05, seed: UInt64 = 0,
                                            statistic: ([[Int]]) throws -> Double) throws -> Interval {
        guard !strata.isEmpty, strata.allSatisfy({ $0 > 0 }) else { throw StatisticsError.invalidInput("every bootstrap stratum needs samples (sizes \(strata))") }
        guard resamples >= 1 else { throw StatisticsError.invalidInput("bootstrap needs at least one resample") }
        guard alpha > 0 && alpha < 1 else { throw StatisticsError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        let estimate = try statistic(strata.map { Array(0..<$0) })
        var values: [Double] = []
        values.reserveCapacity(resamples)
        for b in 0..<resamples {
            var rng = Philox(seed: seed, stream: UInt64(b))
            values.append(try statistic(strata.map { n in (0..<n).map { _ in min(Int(rng.uniform() * Double(n)), n - 1) } }))
        }
        let sorted = values.sorted()
        func quantile(_ q: Double) -> Double {
            let position = q * Double(sorted.count - 1), low = Int(position.rounded(.down)), high = min(low + 1, sorted.count - 1)
            return sorted[low] + (position - Double(low)) * (sorted[high] - sorted[low])
        }
        return Interval(estimate: estimate, lower: quantile(alpha / 2), upper: quantile(1 - alpha / 2))
    }
}
