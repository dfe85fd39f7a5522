import FaultlineLinalg

/// Exact and near duplicates between a training and a test set (train/test leakage), found by the
/// exact nearest-neighbour search of `KNNDetector` (`Linalg.blockedProduct` ranking, distances
/// recomputed in Double) on the raw features — Euclidean (L2) distance, no normalisation.
///
/// For every test row the `maxPairsPerTestRow` nearest training rows are found; those within the
/// threshold are reported as pairs (test index, train index, distance), ordered by test index, then
/// distance, then train index. A pair is *exact* when its distance is 0, i.e. the rows are equal value by
/// value (−0 equals +0; bit patterns otherwise agree). The threshold is either an absolute L2 distance or
/// relative: r × the median over training rows of the distance to the nearest *other* training row (the
/// data's own scale; NumPy's median, the mean of the two middle values for an even count). A threshold
/// of 0 reports exact duplicates only.
///
/// Labels (optional, one per row of each set): a test row conflicts when one of its reported training
/// duplicates carries another label — the same input with two answers, so at most one is right.
///
/// Accuracy: distances are exact in Double from the float32 rows; the ranking is float32 on rows centred
/// by the training mean, so a reported neighbour can only be missed when more than
/// `KNNDetector.candidateSlack` training rows tie with it within that rounding (a test row with more
/// than `maxPairsPerTestRow` rows within the threshold is counted in `truncatedTestRows`). Cost
/// 2·N·M·d flops (+ 2·M²·d for a relative threshold) and memory (N + M)·d floats plus
/// N·(maxPairs + slack) candidates. Bit-identical for any thread count.
public struct TrainTestDuplicates: Sendable, Codable, Equatable {
    /// How the near-duplicate distance is set.
    public enum Threshold: Sendable, Equatable {
        /// An L2 distance.
        case absolute(Double)
        /// A multiple of the median nearest-neighbour distance within the training set.
        case relativeToMedianNeighbour(Double)
    }

    /// A test row, a training row within the threshold, and their distance.
    public struct Pair: Sendable, Codable, Equatable {
        /// The test row's index.
        public var test: Int
        /// The training row's index.
        public var train: Int
        /// Their L2 distance, in Double.
        public var distance: Double
        /// Whether the distance is 0 (equal values).
        public var exact: Bool
        /// Whether the two rows carry different labels (nil without labels).
        public var labelsDiffer: Bool?
    }

    /// Rows of the training set.
    public var trainRows: Int
    /// Rows of the test set.
    public var testRows: Int
    /// Features per row.
    public var dimension: Int
    /// The factor of a relative threshold (nil for an absolute one).
    public var relativeFactor: Double?
    /// The L2 distance used.
    public var threshold: Double
    /// The median nearest-other-row distance within train (relative thresholds only).
    public var medianTrainNeighbourDistance: Double?
    /// The most training neighbours reported per test row.
    public var maxPairsPerTestRow: Int
    /// The pairs within the threshold, by test index, then distance, then train index.
    public var pairs: [Pair]
    /// Test rows with at least one exact / near (distance ≤ threshold, exact included) training duplicate.
    public var exactDuplicateTestRows: Int
    /// Test rows with at least one near duplicate (distance ≤ threshold, exact ones included).
    public var nearDuplicateTestRows: Int
    /// Test rows whose exact / near duplicates include another label (nil without labels).
    public var exactLabelConflicts: Int?
    /// Test rows whose near duplicates include another label (nil without labels).
    public var nearLabelConflicts: Int?
    /// Test rows with `maxPairsPerTestRow` pairs: more training rows may lie within the threshold.
    public var truncatedTestRows: Int

    /// Finds the duplicates of `test` rows in `train` (rows × features, same width). Throws
    /// `ShiftError.invalidInput` when train has no rows, the widths differ or are 0, a value is NaN or
    /// infinite (the row and set are named), a label array has the wrong length, the threshold is negative
    /// or not finite, a relative threshold is asked with fewer than 2 training rows, or
    /// `maxPairsPerTestRow` < 1 or test rows × (maxPairs + slack) > `maxCandidates`. A test set with no rows gives an empty result. `medianSampleRows`: the
    /// relative threshold's median is taken over that many evenly spaced training rows (row ⌊i·M/s⌋),
    /// each against the whole training set (cost s·M·d instead of M²·d); nil: every row.
    public static func find(train: Matrix<Float>, test: Matrix<Float>, threshold rule: Threshold = .relativeToMedianNeighbour(0.05),
                            trainLabels: [Int]? = nil, testLabels: [Int]? = nil, maxPairsPerTestRow: Int = 10,
                            medianSampleRows: Int? = nil, backend: Backend? = nil) throws -> TrainTestDuplicates {
        guard train.rows > 0 else { throw ShiftError.invalidInput("the training set has no rows") }
        guard train.columns > 0 else { throw ShiftError.invalidInput("the training set has no feature columns") }
        guard test.columns == train.columns || test.rows == 0 else {
            throw ShiftError.invalidInput("test rows have \(test.columns) features, training rows \(train.columns)")
        }
        try requireFinite(train, name: "training")
        try requireFinite(test, name: "test")
        if let trainLabels, trainLabels.count != train.rows { throw ShiftError.invalidInput("\(train.rows) training rows but \(trainLabels.count) training labels") }
        if let testLabels, testLabels.count != test.rows { throw ShiftError.invalidInput("\(test.rows) test rows but \(testLabels.count) test labels") }
        guard maxPairsPerTestRow >= 1 else { throw ShiftError.invalidInput("maxPairsPerTestRow = \(maxPairsPerTestRow) must be ≥ 1") }
        let factor: Double
        switch rule {
        case .absolute(let t), .relativeToMedianNeighbour(let t): factor = t
        }
        guard factor.isFinite, factor >= 0 else { throw ShiftError.invalidInput("threshold \(factor) must be finite and ≥ 0") }

        let (centredTrain, bias) = centred(train, mean: columnMeans(train))
        var median: Double?
        if case .relativeToMedianNeighbour = rule {
            guard train.rows >= 2 else { throw ShiftError.invalidInput("a relative threshold needs at least 2 training rows (the median nearest-neighbour distance)") }
            let sample = min(train.rows, max(medianSampleRows ?? train.rows, 2))
            let rows = sample == train.rows ? Array(0..<train.rows) : (0..<sample).map { $0 * train.rows / sample }
            let (rankRows, exactRows) = sample == train.rows ? (centredTrain, train) : (centredTrain.gatherRows(rows), train.gatherRows(rows))
            var nearest = [Double](repeating: 0, count: sample)
            nearest.withUnsafeMutableBufferPointer { out in
                let o = out.baseAddress!
                NeighbourSearch.run(rank: rankRows, against: centredTrain, bias: bias, exact: exactRows, exactAgainst: train,
                                    kept: min(train.rows, 2 + KNNDetector.candidateSlack), blockRows: 256, tileRows: 4096, backend: backend) { i, candidates in
                    o[i] = (candidates.first { $0.index != rows[i] }?.squaredDistance ?? 0).squareRoot()
                }
            }
            median = medianOf(nearest)
        }
        let threshold = median.map { $0 * factor } ?? factor
        var result = TrainTestDuplicates(trainRows: train.rows, testRows: test.rows, dimension: train.columns, relativeFactor: median == nil ? nil : factor,
                                         threshold: threshold, medianTrainNeighbourDistance: median, maxPairsPerTestRow: maxPairsPerTestRow,
                                         pairs: [], exactDuplicateTestRows: 0, nearDuplicateTestRows: 0,
                                         exactLabelConflicts: nil, nearLabelConflicts: nil, truncatedTestRows: 0)
        guard test.rows > 0 else {
            if trainLabels != nil && testLabels != nil { result.exactLabelConflicts = 0; result.nearLabelConflicts = 0 }
            return result
        }
        let wanted = min(maxPairsPerTestRow, train.rows), kept = min(train.rows, wanted + KNNDetector.candidateSlack)
        let (slots, overflow) = test.rows.multipliedReportingOverflow(by: kept)
        guard !overflow, slots <= maxCandidates else {
            throw ShiftError.invalidInput("\(test.rows) test rows × \(kept) candidates each exceed \(maxCandidates) (24 bytes each); "
                                          + "lower maxPairsPerTestRow or split the test set")
        }
        let (centredTest, _) = centred(test, mean: columnMeans(train))
        // Per test row, up to `wanted` (train index, squared distance) within the threshold.
        var found = [Int](repeating: -1, count: test.rows * wanted), squared = [Double](repeating: 0, count: test.rows * wanted)
        let limit = threshold * threshold
        found.withUnsafeMutableBufferPointer { pf in
            squared.withUnsafeMutableBufferPointer { ps in
                let (f, s) = (pf.baseAddress!, ps.baseAddress!)
                NeighbourSearch.run(rank: centredTest, against: centredTrain, bias: bias, exact: test, exactAgainst: train,
                                    kept: kept, blockRows: 256, tileRows: 4096, backend: backend) { i, candidates in
                    var slot = 0
                    for c in candidates where slot < wanted && (c.squaredDistance <= limit || c.squaredDistance == 0) {
                        f[i * wanted + slot] = c.index
                        s[i * wanted + slot] = c.squaredDistance
                        slot += 1
                    }
                }
            }
        }
        var exactConflicts = 0, nearConflicts = 0
        for i in 0..<test.rows {
            var anyExact = false, anyNear = false, exactConflict = false, nearConflict = false, count = 0
            for slot in 0..<wanted {
                let j = found[i * wanted + slot]
                if j < 0 { break }
                count += 1
                let d2 = squared[i * wanted + slot], exact = d2 == 0
                let differ: Bool? = trainLabels.flatMap { tl in testLabels.map { $0[i] != tl[j] } }
                result.pairs.append(Pair(test: i, train: j, distance: d2.squareRoot(), exact: exact, labelsDiffer: differ))
                anyNear = true
                if exact { anyExact = true; if differ == true { exactConflict = true } }
                if differ == true { nearConflict = true }
            }
            if anyExact { result.exactDuplicateTestRows += 1 }
            if anyNear { result.nearDuplicateTestRows += 1 }
            if exactConflict { exactConflicts += 1 }
            if nearConflict { nearConflicts += 1 }
            if count == wanted && wanted < train.rows { result.truncatedTestRows += 1 }
        }
        if trainLabels != nil && testLabels != nil {
            result.exactLabelConflicts = exactConflicts
            result.nearLabelConflicts = nearConflicts
        }
        return result
    }

    /// The most (test row, candidate) slots one call holds: 2²⁸ (about 6 GiB of candidates and pairs).
    public static let maxCandidates = 1 << 28

    static func requireFinite(_ x: Matrix<Float>, name: String) throws {
        try x.withUnsafeBufferPointer { b in
            for (e, v) in b.enumerated() where !v.isFinite {
                throw ShiftError.invalidInput("\(name) row \(e / x.columns), feature \(e % x.columns) is \(v); duplicates need finite features (drop or impute the row)")
            }
        }
    }

    static func columnMeans(_ x: Matrix<Float>) -> [Double] {
        var mean = [Double](repeating: 0, count: x.columns)
        x.withUnsafeBufferPointer { b in
            for i in 0..<x.rows { for j in 0..<x.columns { mean[j] += Double(b[i * x.columns + j]) } }
        }
        return mean.map { $0 / Double(max(x.rows, 1)) }
    }

    /// Rows minus `mean` (float32 copies for the ranking only) and −‖row‖²/2 per row.
    static func centred(_ x: Matrix<Float>, mean: [Double]) -> (Matrix<Float>, [Float]) {
        var out = x
        var bias = [Float](repeating: 0, count: x.rows)
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<x.rows {
                var s = 0.0
                for j in 0..<x.columns {
                    let v = Float(Double(p[i * x.columns + j]) - mean[j])
                    p[i * x.columns + j] = v
                    s += Double(v) * Double(v)
                }
                bias[i] = Float(-s / 2)
            }
        }
        return (out, bias)
    }

    static func medianOf(_ v: [Double]) -> Double {
        let s = v.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }
}
