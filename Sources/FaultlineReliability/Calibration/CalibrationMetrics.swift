import FaultlineLinalg

/// Top-label calibration of a classifier: expected and maximum calibration error over confidence
/// bins, Brier score, negative log-likelihood, and the reliability diagram behind them.
///
/// Confidence is the top-1 probability; a sample is correct when its argmax (first maximum) equals its
/// label. Sums are accumulated in Double, so results do not depend on float32 accumulation order
/// (torchmetrics' float32 `scatter_add` is the source of its 1e-4 deviations, Benchmarks/WORKLOADS.md W5).
public struct CalibrationMetrics: Sendable, Codable {
    /// Σ_b (n_b/N)·|acc_b − conf_b|.
    public var ece: Double
    /// max_b |acc_b − conf_b| over non-empty bins.
    public var mce: Double
    /// Mean over samples of Σ_c (p_c − 1[c = y])² (scikit-learn's multiclass definition).
    public var brier: Double
    /// Mean −log p_y (p clamped at the smallest positive float so a zero probability gives a large, finite value).
    public var nll: Double
    /// The share of rows whose argmax (first maximum) equals the label.
    public var accuracy: Double
    /// The mean top-1 confidence.
    public var meanConfidence: Double
    /// The reliability diagram: one entry per bin, empty bins included.
    public var bins: [Bin]

    /// One confidence bin.
    public struct Bin: Sendable, Codable, Equatable {
        /// The bin's lower edge.
        public var lower: Double
        /// The bin's upper edge.
        public var upper: Double
        /// Rows whose confidence falls in it.
        public var count: Int
        /// Their mean confidence (0 when empty).
        public var meanConfidence: Double
        /// Their accuracy (0 when empty).
        public var accuracy: Double
    }

    /// How confidences are assigned to bins.
    public enum Binning: Sendable, Equatable {
        /// B equal-width bins over [0, 1]: bin b holds conf in [b/B, (b+1)/B), and confidence 1.0 falls in
        /// the last bin (Faultline's default; torchmetrics gives 1.0 a bin of its own).
        case equalWidth(bins: Int)
        /// torchmetrics' convention: [lo, hi) bins and confidence exactly 1.0 in a bin of its own (B + 1
        /// bins in `bins`, the last one [1, 1]).
        case torchmetrics(bins: Int)
        /// Equal-width with right-closed bins (lo, hi] as in Guo et al. and scikit-learn's calibration_curve
        /// (confidence 0 goes to the first bin).
        case equalWidthRightClosed(bins: Int)
        /// B bins of (nearly) equal counts over the sorted confidences; the first N mod B bins take one
        /// extra sample (adaptive ECE as torch-uncertainty computes it). Equal confidences are never
        /// split: a cut that would fall inside a run of equal values moves to the end of the run, so
        /// the run joins the bin it starts in (later bins shrink, and may end empty). The bins, and so
        /// every metric, depend only on the multiset of (confidence, correct) pairs, never on row order.
        case equalMass(bins: Int)

        /// The fixed-edge rule and its bin count (`Linalg.CalibrationBinRule`, the one definition of the
        /// edges); nil for equal-mass bins, which are assigned after sorting.
        var rule: (Linalg.CalibrationBinRule, Int)? {
            switch self {
            case .equalWidth(let b): return (.equalWidth, b)
            case .torchmetrics(let b): return (.torchmetrics, b)
            case .equalWidthRightClosed(let b): return (.rightClosed, b)
            case .equalMass: return nil
            }
        }

        var count: Int {
            switch self {
            case .equalWidth(let b), .equalWidthRightClosed(let b), .equalMass(let b): return b
            case .torchmetrics(let b): return b + 1
            }
        }
    }

    /// Computes every metric from an N × C matrix of probabilities. Throws `ReliabilityError` for rows
    /// that are not probability vectors (with the row and by how much), labels out of range, empty input,
    /// or fewer than one bin.
    public static func compute(probabilities p: Matrix<Float>, labels: [Int], binning: Binning = .equalWidth(bins: 15)) throws -> CalibrationMetrics {
        guard binning.count >= 1 else { throw ReliabilityError.invalidParameter("need at least one bin") }
        let n = p.rows, c = p.columns
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: n, classes: c, name: "probabilities") }
        try Check.labels(labels, rows: n, classes: c)
        var confidence = [Double](repeating: 0, count: n)
        var correct = [Bool](repeating: false, count: n)
        var brier = 0.0, nll = 0.0
        p.withUnsafeBufferPointer { buffer in
            for i in 0..<n {
                let row = buffer.baseAddress! + i * c
                var best = 0
                for j in 1..<c where row[j] > row[best] { best = j }
                confidence[i] = Double(row[best])
                correct[i] = best == labels[i]
                for j in 0..<c {
                    let t = Double(row[j]) - (j == labels[i] ? 1 : 0)
                    brier += t * t
                }
                nll -= Double.log(max(Double(row[labels[i]]), Double(Float.leastNonzeroMagnitude)))
            }
        }
        let bins = reliabilityBins(confidence: confidence, correct: correct, binning: binning)
        var ece = 0.0, mce = 0.0
        for b in bins where b.count > 0 {
            let gap = abs(b.accuracy - b.meanConfidence)
            ece += Double(b.count) / Double(n) * gap
            mce = max(mce, gap)
        }
        return CalibrationMetrics(ece: ece, mce: mce, brier: brier / Double(n), nll: nll / Double(n),
                                  accuracy: Double(correct.filter { $0 }.count) / Double(n),
                                  meanConfidence: confidence.reduce(0, +) / Double(n), bins: bins)
    }

    /// From logits, in one fused pass that never materialises the probabilities: per row the max, the
    /// vectorised exponentials and their sum S (confidence 1/S, NLL log S − (z_y − max), Brier from Σe²/S²),
    /// accumulated per bin in Double over `Linalg.reductionParts` row blocks (merged in block order, so the
    /// result does not depend on the thread count) on `Linalg.simdThreads` threads; `backend` selects the
    /// tier of `Linalg.softmaxCalibrationSums`. Equal-mass binning needs all confidences sorted and goes
    /// through the probabilities. Throws on non-finite logits (naming the row), labels out of range or
    /// empty input.
    public static func compute(logits: Matrix<Float>, labels: [Int], binning: Binning = .equalWidth(bins: 15),
                               backend: Backend? = nil) throws -> CalibrationMetrics {
        let n = logits.rows, c = logits.columns
        guard n > 0, c > 0 else { throw ReliabilityError.invalidInput("logits are empty (\(n)×\(c))") }
        try Check.labels(labels, rows: n, classes: c)
        guard binning.count >= 1 else { throw ReliabilityError.invalidParameter("need at least one bin") }
        if case .equalMass = binning {
            guard logits.isFinite else { throw ReliabilityError.invalidInput("logits contain NaN or infinite values") }
            return try compute(probabilities: Linalg.softmaxRows(logits), labels: labels, binning: binning)
        }
        let bins = binning.count
        let blocks = min(n, Linalg.reductionParts)  // fixed: the sums' order does not depend on the thread count
        let tier = Linalg.kernelTier(backend)
        var partial = [Accumulator](repeating: Accumulator(bins: bins), count: blocks)
        logits.withUnsafeBufferPointer { z in
            labels.withUnsafeBufferPointer { y in
                partial.withUnsafeMutableBufferPointer { out in
                    let (zp, yp, op) = (z.baseAddress!, y.baseAddress!, out.baseAddress!)
                    Linalg.parallelForEach(blocks) { b in
                        let rows = Linalg.partition(n, parts: blocks, part: b)
                        op[b] = accumulate(zp, yp, rows: rows, classes: c, binning: binning, tier: tier)
                    }
                }
            }
        }
        var total = Accumulator(bins: bins)
        for p in partial {
            if let bad = p.nonFiniteRow { throw ReliabilityError.invalidInput("logits row \(bad) contains NaN or infinite values") }
            total.merge(p)
        }
        return metrics(total, rows: n, binning: binning)
    }

    /// The metrics from the merged sums of the fused logits pass over `n` rows.
    static func metrics(_ total: Accumulator, rows n: Int, binning: Binning) -> CalibrationMetrics {
        let bins = binning.count
        let edges: [(Double, Double)]
        switch binning {
        case .torchmetrics(let b): edges = (0..<b).map { (Double($0) / Double(b), Double($0 + 1) / Double(b)) } + [(1, 1)]
        default: edges = (0..<bins).map { (Double($0) / Double(bins), Double($0 + 1) / Double(bins)) }
        }
        let binList = (0..<bins).map { k in
            Bin(lower: edges[k].0, upper: edges[k].1, count: total.count[k],
                meanConfidence: total.count[k] > 0 ? total.confidence[k] / Double(total.count[k]) : 0,
                accuracy: total.count[k] > 0 ? total.correct[k] / Double(total.count[k]) : 0)
        }
        var ece = 0.0, mce = 0.0
        for b in binList where b.count > 0 {
            let gap = abs(b.accuracy - b.meanConfidence)
            ece += Double(b.count) / Double(n) * gap
            mce = max(mce, gap)
        }
        return CalibrationMetrics(ece: ece, mce: mce, brier: total.brier / Double(n), nll: total.nll / Double(n),
                                  accuracy: total.correct.reduce(0, +) / Double(n),
                                  meanConfidence: total.confidence.reduce(0, +) / Double(n), bins: binList)
    }

    /// Per-block sums of the fused logits pass (merged in block order, so results do not depend on the
    /// thread count).
    struct Accumulator: Sendable {
        var count: [Int]
        var confidence: [Double]
        var correct: [Double]
        var brier = 0.0
        var nll = 0.0
        var nonFiniteRow: Int?

        init(bins: Int) {
            count = [Int](repeating: 0, count: bins)
            confidence = [Double](repeating: 0, count: bins)
            correct = [Double](repeating: 0, count: bins)
        }

        mutating func merge(_ o: Accumulator) {
            for k in count.indices {
                count[k] += o.count[k]
                confidence[k] += o.confidence[k]
                correct[k] += o.correct[k]
            }
            brier += o.brier
            nll += o.nll
        }
    }

    /// Rows `rows` of the fused pass through `Linalg.softmaxCalibrationSums` in the given tier.
    static func accumulate(_ z: UnsafePointer<Float>, _ y: UnsafePointer<Int>, rows: Range<Int>, classes c: Int, binning: Binning,
                           tier: Linalg.KernelTier) -> Accumulator {
        var acc = Accumulator(bins: binning.count)
        guard let (rule, b) = binning.rule else { preconditionFailure("equal-mass bins are assigned after sorting") }
        var count = [Double](repeating: 0, count: binning.count), confidence = count, correct = count, totals = [0.0, 0.0]
        acc.nonFiniteRow = Linalg.softmaxCalibrationSums(z, labels: y, first: rows.lowerBound, count: rows.count, classes: c, rule: rule, bins: b,
                                                         count: &count, confidence: &confidence, correct: &correct, totals: &totals, tier: tier)
        acc.count = count.map { Int($0) }
        acc.confidence = confidence
        acc.correct = correct
        (acc.nll, acc.brier) = (totals[0], totals[1])
        return acc
    }

    @inline(__always)
    static func binIndex(_ confidence: Double, _ binning: Binning) -> Int {
        guard let (rule, b) = binning.rule else { preconditionFailure("equal-mass bins are assigned after sorting") }
        return rule.index(confidence, bins: b)
    }

    static func reliabilityBins(confidence: [Double], correct: [Bool], binning: Binning) -> [Bin] {
        let n = confidence.count, count = binning.count
        var members = [[Int]](repeating: [], count: count)
        var edges: [(Double, Double)] = (0..<count).map { (Double($0) / Double(count), Double($0 + 1) / Double(count)) }
        switch binning {
        case .equalWidth, .equalWidthRightClosed:
            for i in 0..<n { members[binIndex(confidence[i], binning)].append(i) }
        case .torchmetrics(let b):
            edges = (0..<b).map { (Double($0) / Double(b), Double($0 + 1) / Double(b)) } + [(1, 1)]
            for i in 0..<n { members[binIndex(confidence[i], binning)].append(i) }
        case .equalMass:
            let order = (0..<n).sorted { confidence[$0] < confidence[$1] || (confidence[$0] == confidence[$1] && $0 < $1) }
            var start = 0
            for b in 0..<count {
                var end = min(Linalg.partition(n, parts: count, part: b).upperBound, n)
                if end < start { end = start }  // an earlier run took this bin's rows
                while end > 0 && end < n && confidence[order[end]] == confidence[order[end - 1]] { end += 1 }
                members[b] = Array(order[start..<end])
                start = end
            }
            edges = members.map { m in m.isEmpty ? (0, 0) : (confidence[m.first!], confidence[m.last!]) }
        }
        return (0..<count).map { b in
            let m = members[b]
            let conf = m.isEmpty ? 0 : m.reduce(0.0) { $0 + confidence[$1] } / Double(m.count)
            let acc = m.isEmpty ? 0 : Double(m.filter { correct[$0] }.count) / Double(m.count)
            return Bin(lower: edges[b].0, upper: edges[b].1, count: m.count, meanConfidence: conf, accuracy: acc)
        }
    }
}

extension CalibrationMetrics.Binning {
    /// The binnings by name: "equal-width" (ours), "right-closed" (scikit-learn's calibration_curve),
    /// "torchmetrics", "equal-mass"; nil for any other name.
    public init?(name: String, bins: Int) {
        switch name {
        case "equal-width": self = .equalWidth(bins: bins)
        case "right-closed": self = .equalWidthRightClosed(bins: bins)
        case "torchmetrics": self = .torchmetrics(bins: bins)
        case "equal-mass": self = .equalMass(bins: bins)
        default: return nil
        }
    }
}
