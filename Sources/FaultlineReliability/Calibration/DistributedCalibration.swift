import FaultlineLinalg

extension CalibrationSummary {
    /// The calibration summary of the rows of every rank of a job, on every rank: rank r passes rows
    /// `RowSplit.blockAligned(rows: totalRows, rank: r, size: K)` of the N × C scores (its shard, e.g. read
    /// with `NPY.readRows`) and their labels. Every metric is a sum over rows, so each rank sends
    /// only its sums — O(bins + C·bins) doubles, independent of N — and every rank merges them:
    /// - from logits, ECE, MCE, Brier, NLL, accuracy and the bins are **bit-identical** to
    ///   `CalibrationSummary(.logits(all rows), …)`: the shards are unions of the fixed reduction blocks of
    ///   the one-process pass, whose per-block sums are all-gathered and added in block order;
    /// - from probabilities, and the classwise and top-label ECE (sums in row order on one process), the
    ///   per-rank sums are added in rank order: equal up to rounding (≤ 1e-12 relative; bin counts exact).
    /// Equal-mass binning needs every confidence sorted and is refused.
    /// - Throws: `RankFailure` on every rank when any rank's shard is invalid (wrong row count for its
    ///   block-aligned range, labels out of range, non-finite logits or invalid probabilities: the message
    ///   names the global row); `ReliabilityError.invalidParameter` for equal-mass binning or bins < 1;
    ///   `CommunicatorError`.
    public init(shard scores: CalibrationScores, labels: [Int], totalRows: Int, binning: CalibrationMetrics.Binning, bins: Int,
                communicator: some Communicator) throws {
        guard binning.rule != nil else {
            throw ReliabilityError.invalidParameter("equal-mass binning sorts every confidence and is not distributed; use another binning or one process")
        }
        guard binning.count >= 1, bins >= 1 else { throw ReliabilityError.invalidParameter("need at least one bin") }
        guard totalRows > 0 else { throw ReliabilityError.invalidInput("the scores are empty (0 rows over all ranks)") }
        let (rank, size) = (communicator.rank, communicator.size)
        let range = RowSplit.blockAligned(rows: totalRows, rank: rank, size: size)
        let m = scores.matrix, c = m.columns
        // Rank-local part: validation and sums, agreed on before anything is merged.
        let local = try communicator.agree { () -> [Double] in
            guard m.rows == range.count else {
                throw ReliabilityError.invalidInput("this rank holds \(m.rows) rows; RowSplit.blockAligned gives it rows \(range.lowerBound)..<\(range.upperBound) of \(totalRows)")
            }
            guard labels.count == m.rows else { throw ReliabilityError.invalidInput("\(m.rows) rows but \(labels.count) labels") }
            guard c > 0 else { throw ReliabilityError.invalidInput("the scores have 0 classes") }
            if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= c }) {
                throw ReliabilityError.invalidInput("label \(labels[bad]) at row \(range.lowerBound + bad) is outside 0..<\(c)")
            }
            switch scores {
            case .logits(let z):
                if let bad = z.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
                    throw ReliabilityError.invalidInput("logits row \(range.lowerBound + bad / c) contains NaN or infinite values")
                }
                return Self.logitBlockSums(z, labels, totalRows: totalRows, rank: rank, size: size, binning: binning)
                    + Self.classSums(z, labels, logits: true, bins: bins)
            case .probabilities(let p):
                if m.rows > 0 {
                    do { try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: c, name: "probabilities") } } catch ReliabilityError.invalidInput(let message) {
                        throw ReliabilityError.invalidInput("\(message) (row numbers within the rows \(range.lowerBound)..<\(range.upperBound) of this rank)")
                    }
                }
                return Self.probabilitySums(p, labels, binning: binning) + Self.classSums(p, labels, logits: false, bins: bins)
            }
        }
        let classCounts = try communicator.allgatherv([c])
        guard classCounts.allSatisfy({ $0 == c }) else {
            throw ReliabilityError.invalidInput("the ranks' shards have different class counts \(classCounts)")
        }
        let all = try communicator.allgathervPerRank(local)
        let width = 3 * binning.count + 2
        var total = CalibrationMetrics.Accumulator(bins: binning.count)
        var classwise = [Double](repeating: 0, count: 6 * c * bins)
        for values in all {
            let blocks = (values.count - classwise.count) / width
            for b in 0..<blocks { total.merge(Self.accumulator(values[(b * width)..<((b + 1) * width)], bins: binning.count)) }
            for k in classwise.indices { classwise[k] += values[blocks * width + k] }
        }
        let metrics = CalibrationMetrics.metrics(total, rows: totalRows, binning: binning)
        (ece, mce, brier, nll, accuracy, self.bins) = (metrics.ece, metrics.mce, metrics.brier, metrics.nll, metrics.accuracy, metrics.bins)
        // Classwise: Σ_slot |freq − conf| / N / C; top label: Σ_slot |correct − conf| / N (as ClasswiseCalibration).
        let slots = c * bins, n = Double(totalRows)
        var cw = 0.0, top = 0.0
        for s in 0..<slots where classwise[s] > 0 { cw += abs(classwise[2 * slots + s] - classwise[slots + s]) / n }
        for s in 0..<slots { top += classwise[3 * slots + s] > 0 ? abs(classwise[5 * slots + s] - classwise[4 * slots + s]) / n : 0 }
        classwiseECE = cw / Double(c)
        topLabelECE = top
    }

    /// The rank's blocks of the fused logits pass, each as count, confidence, correct (bins each), NLL, Brier.
    static func logitBlockSums(_ z: Matrix<Float>, _ labels: [Int], totalRows: Int, rank: Int, size: Int,
                               binning: CalibrationMetrics.Binning) -> [Double] {
        let blocks = Swift.min(totalRows, Linalg.reductionParts)
        let mine = RowSplit.blockRange(rows: totalRows, rank: rank, size: size)
        let start = RowSplit.blockAligned(rows: totalRows, rank: rank, size: size).lowerBound
        let tier = Linalg.kernelTier(nil), c = z.columns
        var partial = [CalibrationMetrics.Accumulator](repeating: .init(bins: binning.count), count: mine.count)
        if !mine.isEmpty {
            z.withUnsafeBufferPointer { zb in
                labels.withUnsafeBufferPointer { yb in
                    partial.withUnsafeMutableBufferPointer { out in
                        let (zp, yp, op) = (zb.baseAddress!, yb.baseAddress!, out.baseAddress!)
                        Linalg.parallelForEach(mine.count) { i in
                            let global = Linalg.partition(totalRows, parts: blocks, part: mine.lowerBound + i)
                            op[i] = CalibrationMetrics.accumulate(zp, yp, rows: (global.lowerBound - start)..<(global.upperBound - start), classes: c,
                                                                  binning: binning, tier: tier)
                        }
                    }
                }
            }
        }
        return partial.flatMap(flatten)
    }

    /// The rank's rows of probabilities as one block of the same layout (rows in order, as the one-process pass).
    static func probabilitySums(_ p: Matrix<Float>, _ labels: [Int], binning: CalibrationMetrics.Binning) -> [Double] {
        var acc = CalibrationMetrics.Accumulator(bins: binning.count)
        let c = p.columns
        p.withUnsafeBufferPointer { buffer in
            for i in 0..<p.rows {
                let row = buffer.baseAddress! + i * c
                var best = 0
                for j in 1..<c where row[j] > row[best] { best = j }
                let confidence = Double(row[best]), k = CalibrationMetrics.binIndex(confidence, binning)
                acc.count[k] += 1
                acc.confidence[k] += confidence
                acc.correct[k] += best == labels[i] ? 1 : 0
                for j in 0..<c {
                    let t = Double(row[j]) - (j == labels[i] ? 1 : 0)
                    acc.brier += t * t
                }
                acc.nll -= Double.log(Swift.max(Double(row[labels[i]]), Double(Float.leastNonzeroMagnitude)))
            }
        }
        return flatten(acc)
    }

    /// Classwise (count, confidence, frequency) and top-label (count, confidence, correct) sums per
    /// (class, bin) slot, in row order, as `ClasswiseCalibration` forms them.
    static func classSums(_ m: Matrix<Float>, _ labels: [Int], logits: Bool, bins: Int) -> [Double] {
        let c = m.columns, slots = c * bins
        var out = [Double](repeating: 0, count: 6 * slots)
        ClasswiseCalibration.withRowProbabilities(m, logits: logits) { row in
            let p = UnsafeMutablePointer<Double>.allocate(capacity: c)
            defer { p.deallocate() }
            for i in 0..<m.rows {
                row(i, p)
                var top = 0
                for k in 0..<c {
                    let slot = k * bins + ClasswiseCalibration.bin(p[k], bins)
                    out[slot] += 1
                    out[slots + slot] += p[k]
                    if labels[i] == k { out[2 * slots + slot] += 1 }
                    if p[k] > p[top] { top = k }
                }
                let slot = top * bins + ClasswiseCalibration.bin(p[top], bins)
                out[3 * slots + slot] += 1
                out[4 * slots + slot] += p[top]
                if labels[i] == top { out[5 * slots + slot] += 1 }
            }
        }
        return out
    }

    static func flatten(_ a: CalibrationMetrics.Accumulator) -> [Double] {
        a.count.map(Double.init) + a.confidence + a.correct + [a.nll, a.brier]
    }

    static func accumulator(_ v: ArraySlice<Double>, bins: Int) -> CalibrationMetrics.Accumulator {
        var a = CalibrationMetrics.Accumulator(bins: bins)
        let s = v.startIndex
        a.count = v[s..<(s + bins)].map { Int($0) }
        a.confidence = Array(v[(s + bins)..<(s + 2 * bins)])
        a.correct = Array(v[(s + 2 * bins)..<(s + 3 * bins)])
        (a.nll, a.brier) = (v[s + 3 * bins], v[s + 3 * bins + 1])
        return a
    }
}
