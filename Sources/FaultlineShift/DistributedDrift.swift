import FaultlineLinalg

/// The two-sample drift tests of `faultline drift compare` over the ranks of a job (`mpirun -np K`), each
/// giving every rank the one-process result. Every function is collective: every rank of `communicator`
/// calls it, in the same order, with its own part of the data (see each function). With a
/// `SingleProcessCommunicator` each is the one-process test itself.
///
/// What moves and what is bit-identical (docs/SCALING.md, "drift"):
/// - `kolmogorovSmirnov`: each rank sends its rows of the features it does not own to their owners (feature
///   f belongs to rank `RowSplit.even(rows: D, …)`), so every feature's whole column meets on one rank, which
///   sorts it and tests it; the D (statistic, p-value) pairs are all-gathered. The statistic depends only
///   on the multiset of values, so statistics, p-values and the Bonferroni / Benjamini–Hochberg decisions
///   are bit-identical for any K. Bytes per rank: its (N + M)/K × D float32 values out, (N + M) × D/K in.
/// - `chiSquare` and `labelShift`: per-class counts (and the confusion counts) are summed over the ranks
///   as exact integers: bit-identical. Bytes per rank: O(classes²) integers.
/// - `mmd`: every rank needs every pair, so every rank holds the whole pooled sample (N + M)² kernel
///   matrix; the permutations are split, by whole column tiles of the permutation product
///   (`MMDTest.tileColumns(statistics:)`), and permutation p is drawn from Philox keyed by (seed, p), so
///   each statistic is computed by the same GEMM calls whichever rank owns it: MMD², the null and the
///   p-value are bit-identical for any K. Bytes per rank: 8 per permutation it owns, plus the rows of the
///   samples when `FeatureDrift` gathers them from shards ((N + M) × D float32 in).
///
/// Errors: a step that fails on some ranks (a bad shard) throws the same `RankFailure` on every rank
/// (`Communicator.agree`), naming them; a step whose error follows from data every rank holds throws the
/// same `ShiftError` on every rank. No rank is ever left waiting in a collective.
public enum DistributedDrift {
    /// The MMD permutation test of `MMDTest.run(_:_:count:seed:sigma2:estimator:backend:)` with its `count`
    /// permutations split over the ranks. Every rank passes the same whole samples `x` (n × d) and `y`
    /// (m × d) — the test needs every pair, so each rank forms the kernel matrix, (n + m)² float32 — and
    /// computes the statistics of the tiles of permutation columns `RowSplit.even` gives it; the
    /// statistics are all-gathered. Returns on every rank the one-process result, bit for bit (MMD², s²,
    /// the null in permutation order, the p-value), for any number of ranks. Work per rank: the kernel
    /// (O((n + m)²·d), not split) plus 1/K of the permutation product (O((n + m)²·P/2)); a rank beyond the
    /// tile count (P + 1 statistics in tiles of 16…256) computes the kernel's s² only.
    /// - Throws: `ShiftError.invalidInput` for `count` < 1; for fewer than 2 rows in a sample, mismatched
    ///   dimensions or non-finite values that error itself on one process, a `RankFailure` naming the ranks
    ///   on several; `RankFailure` when the ranks' samples disagree in shape; `CommunicatorError`.
    public static func mmd(_ x: Matrix<Float>, _ y: Matrix<Float>, count: Int, seed: UInt64 = 0, sigma2: Double? = nil,
                           estimator: MMDTest.Estimator = .unbiased, backend: Backend? = nil,
                           communicator: some Communicator) throws -> MMDTest.Result {
        guard count >= 1 else { throw ShiftError.invalidInput("need at least one permutation") }
        let n = x.rows, m = y.rows
        try communicator.agree {
            guard n >= 2, m >= 2 else { throw ShiftError.invalidInput("MMD needs at least 2 rows per sample (got \(n) and \(m))") }
            guard y.columns == x.columns else { throw ShiftError.invalidInput("x has \(x.columns) features, y \(y.columns)") }
            guard x.isFinite, y.isFinite else { throw ShiftError.invalidInput("samples contain NaN or infinite values") }
        }
        let shape = try communicator.allreduce([n, m, x.columns, -n, -m, -x.columns], .max)
        guard shape[0] == -shape[3], shape[1] == -shape[4], shape[2] == -shape[5] else {
            throw RankFailure(everyRank: "the ranks' MMD samples differ in shape (every rank must pass the whole samples)", size: communicator.size)
        }
        let statistics = count + 1, width = MMDTest.tileColumns(statistics: statistics)
        let tiles = (statistics + width - 1) / width
        let mine = RowSplit.even(rows: tiles, rank: communicator.rank, size: communicator.size)
        let first = min(mine.lowerBound * width, statistics), end = min(mine.upperBound * width, statistics)
        // Column 0 is the observed split, column c ≥ 1 permutation c − 1.
        let local = try communicator.agree { () -> (sigma2: Double, values: [Double]) in
            let permuted = MMDTest.permutations(max(first, 1) - 1..<max(end, 1) - 1, samples: n + m, seed: seed)
            let groups = (first == 0 && end > 0 ? [Array(0..<n)] : []) + permuted.map { Array($0.prefix(n)) }
            return try MMDTest.statistics(x, y, groups: groups, sigma2: sigma2, estimator: estimator, tileColumns: width, backend: backend)
        }
        let values = try communicator.allgatherv(local.values)
        guard values.count == statistics else {
            throw RankFailure(everyRank: "the ranks returned \(values.count) MMD statistics for \(statistics)", size: communicator.size)
        }
        let observed = values[0], null = Array(values.dropFirst())
        return MMDTest.Result(sigma2: local.sigma2, mmd2: observed, null: null,
                              pValue: Double(1 + null.filter { $0 >= observed }.count) / Double(1 + null.count))
    }

    /// The two-sided two-sample KS test of every feature (`DriftTests.kolmogorovSmirnov(reference:test:method:)`)
    /// when rank r holds the rows `referenceShard` of the reference and `currentShard` of the current sample
    /// (any split of the rows: the test depends only on each feature's values; a rank may hold no rows). The
    /// features are dealt out as `RowSplit.even(rows: D, …)`; each rank receives every row of its features
    /// (one gather per rank, that rank the root), tests them, and the results are all-gathered. Returns the D
    /// results on every rank, equal to the one-process ones bit for bit. Memory per rank: its shards plus
    /// (N + M) × D/K float32 values, twice while they are rearranged.
    /// - Throws: `ShiftError.invalidInput` on every rank when the ranks' shards disagree in width or a sample has
    ///   no rows at all; `RankFailure` naming the ranks whose features hold non-finite values;
    ///   `CommunicatorError`.
    public static func kolmogorovSmirnov(referenceShard a: Matrix<Float>, currentShard b: Matrix<Float>,
                                         method: DriftTests.KolmogorovSmirnovMethod = .auto,
                                         communicator: some Communicator) throws -> [DriftTests.TestResult] {
        let size = communicator.size
        if size == 1 { return try DriftTests.kolmogorovSmirnov(reference: a, test: b, method: method) }
        // Every rank's row counts, and the width (the same on every rank that holds rows).
        let counts = try communicator.allgatherv([a.rows, b.rows, a.columns, b.columns])
        let aRows = (0..<size).map { counts[4 * $0] }, bRows = (0..<size).map { counts[4 * $0 + 1] }
        var widths = Set<Int>()
        for r in 0..<size {
            if aRows[r] > 0 { widths.insert(counts[4 * r + 2]) }
            if bRows[r] > 0 { widths.insert(counts[4 * r + 3]) }
        }
        guard widths.count <= 1 else {
            throw ShiftError.invalidInput("the ranks' reference and current rows have different feature counts \(widths.sorted())")
        }
        let (n, m) = (aRows.reduce(0, +), bRows.reduce(0, +))
        guard n > 0, m > 0 else { throw ShiftError.invalidInput("KS needs two non-empty samples") }
        let d = widths.first!
        // The rows of features `features` of a shard, feature after feature (column-major).
        func columns(_ x: Matrix<Float>, _ features: Range<Int>) -> [Float] {
            guard x.rows > 0 else { return [] }
            var out = [Float](repeating: 0, count: x.rows * features.count)
            x.withUnsafeBufferPointer { p in
                for i in 0..<x.rows {
                    let row = p.baseAddress! + i * d
                    for (k, f) in features.enumerated() { out[k * x.rows + i] = row[f] }
                }
            }
            return out
        }
        var mine: (reference: Matrix<Float>, current: Matrix<Float>)?
        for owner in 0..<size {
            let features = RowSplit.even(rows: d, rank: owner, size: size)
            let received = try communicator.gatherv(columns(a, features) + columns(b, features), root: owner)
            guard let received else { continue }
            // Rank r's part: its reference rows of each feature, then its current rows of each feature.
            var reference = Matrix<Float>(rows: n, columns: features.count), current = Matrix<Float>(rows: m, columns: features.count)
            var offset = 0, (aFirst, bFirst) = (0, 0)
            for r in 0..<size {
                for k in 0..<features.count { for i in 0..<aRows[r] { reference[aFirst + i, k] = received[offset + k * aRows[r] + i] } }
                offset += aRows[r] * features.count
                for k in 0..<features.count { for i in 0..<bRows[r] { current[bFirst + i, k] = received[offset + k * bRows[r] + i] } }
                offset += bRows[r] * features.count
                (aFirst, bFirst) = (aFirst + aRows[r], bFirst + bRows[r])
            }
            mine = (reference, current)
        }
        let results = try communicator.agree { () -> [Double] in
            guard let mine, mine.reference.columns > 0 else { return [] }
            return try DriftTests.kolmogorovSmirnov(reference: mine.reference, test: mine.current, method: method).flatMap { [$0.statistic, $0.pValue] }
        }
        let all = try communicator.allgatherv(results)
        return (0..<d).map { DriftTests.TestResult(statistic: all[2 * $0], pValue: all[2 * $0 + 1]) }
    }

    /// `DriftTests.chiSquare(reference:test:classes:)` when rank r holds `referenceShard` and `currentShard`
    /// of the two label samples (any split), with classes = the largest label over every rank + 1 (as
    /// `faultline drift`): the 2 × K count table is summed over the ranks (exact integers), so the result
    /// is the one-process one bit for bit. Bytes per rank: 2·K + 2 integers.
    /// - Throws: `ShiftError.invalidInput` on every rank for a negative label or an empty sample (over all
    ///   ranks); `CommunicatorError`.
    public static func chiSquare(referenceShard a: [Int], currentShard b: [Int], communicator: some Communicator) throws -> DriftTests.TestResult {
        let range = try communicator.allreduce([max(a.max() ?? 0, b.max() ?? 0), -min(a.min() ?? 0, b.min() ?? 0)], .max)
        let classes = range[0] + 1
        guard range[1] <= 0 else { throw ShiftError.invalidInput("a label lies outside 0..<\(classes)") }
        var local = [Int](repeating: 0, count: 2 * classes)
        for y in a { local[y] += 1 }
        for y in b { local[classes + y] += 1 }
        let counts = try communicator.allreduce(local, .sum)
        let table = [Array(counts[0..<classes]), Array(counts[classes...])]
        guard table[0].reduce(0, +) > 0, table[1].reduce(0, +) > 0 else {
            throw ShiftError.invalidInput("chi-square needs two non-empty label samples")
        }
        return DriftTests.chiSquare(counts: table)
    }

    /// BBSE label-shift weights (`LabelShiftEstimate`) when rank r holds rows of the validation predictions
    /// and labels (`validationPredictions[i]` with `validationLabels[i]`) and of the target predictions, with
    /// classes = the largest of them over every rank + 1 (as `faultline drift`): the confusion counts and the
    /// target's prediction counts are summed over the ranks (exact integers), so the estimate is the
    /// one-process one bit for bit (`LabelShiftEstimate.init(confusionCounts:targetPredictionCounts:)`).
    /// Bytes per rank: K² + K + 2 integers.
    /// - Throws: `RankFailure` naming the ranks whose predictions and labels differ in length;
    ///   `ShiftError.invalidInput` on every rank for a negative label or an empty side; `ShiftError.singular`
    ///   on every rank as `LabelShiftEstimate`; `CommunicatorError`.
    public static func labelShift(validationPredictions p: [Int], validationLabels y: [Int], targetPredictions t: [Int],
                                  communicator: some Communicator) throws -> LabelShiftEstimate {
        try communicator.agree {
            guard p.count == y.count else {
                throw ShiftError.invalidInput("\(p.count) validation predictions but \(y.count) validation labels on this rank")
            }
        }
        let all = p + y + t
        let range = try communicator.allreduce([all.max() ?? 0, -(all.min() ?? 0)], .max)
        let classes = range[0] + 1
        guard range[1] <= 0 else { throw ShiftError.invalidInput("a label lies outside 0..<\(classes)") }
        var local = [Int](repeating: 0, count: classes * classes + classes)
        for (i, j) in zip(p, y) { local[i * classes + j] += 1 }
        for i in t { local[classes * classes + i] += 1 }
        let counts = try communicator.allreduce(local, .sum)
        let confusion = (0..<classes).map { Array(counts[($0 * classes)..<(($0 + 1) * classes)]) }
        return try LabelShiftEstimate(confusionCounts: confusion, targetPredictionCounts: Array(counts[(classes * classes)...]))
    }
}

extension FeatureDrift {
    /// `FeatureDrift` over the ranks of a job: rank r passes rows `referenceShard` of the reference and
    /// `currentShard` of the current sample, the shards being contiguous row ranges in rank order (rank 0
    /// the first rows; any may be empty). KS runs on the shards (`DistributedDrift.kolmogorovSmirnov`); with
    /// `permutations` > 0 the samples are all-gathered in rank order, so every rank holds them whole, and the
    /// MMD test splits its permutations (`DistributedDrift.mmd`). Every field equals the one-process
    /// `init(reference:current:…)` on the concatenated samples bit for bit, on every rank, for any number
    /// of ranks. One process (`SingleProcessCommunicator`): exactly that init.
    /// - Throws: what `DistributedDrift.mmd` and `DistributedDrift.kolmogorovSmirnov` throw.
    public init(referenceShard a: Matrix<Float>, currentShard b: Matrix<Float>, alpha: Double = 0.05,
                ksMethod: DriftTests.KolmogorovSmirnovMethod = .auto, permutations: Int = 0, seed: UInt64 = 0,
                estimator: MMDTest.Estimator = .unbiased, communicator: some Communicator) throws {
        var mmd: MMDTest.Result?
        if permutations > 0 {
            let (x, y) = communicator.size == 1 ? (a, b) : (try communicator.allgatherRows(a), try communicator.allgatherRows(b))
            var result = try DistributedDrift.mmd(x, y, count: permutations, seed: seed, estimator: estimator, communicator: communicator)
            result.null = []
            mmd = result
        }
        let ks = try DistributedDrift.kolmogorovSmirnov(referenceShard: a, currentShard: b, method: ksMethod, communicator: communicator)
        self.init(mmd: mmd, ks: ks, alpha: alpha)
    }

    /// The decisions from the MMD result and the KS results.
    init(mmd: MMDTest.Result?, ks: [DriftTests.TestResult], alpha: Double) {
        self.mmd = mmd
        (ksStatistics, ksPValues) = (ks.map(\.statistic), ks.map(\.pValue))
        ksDriftBonferroni = DriftTests.drift(pValues: ksPValues, alpha: alpha, correction: .bonferroni)
        ksDriftFDR = DriftTests.drift(pValues: ksPValues, alpha: alpha, correction: .benjaminiHochberg)
        driftedFeatures = DriftTests.rejected(pValues: ksPValues, alpha: alpha, correction: .benjaminiHochberg)
        drift = (mmd.map { $0.pValue < alpha } ?? false) || ksDriftBonferroni
    }
}
