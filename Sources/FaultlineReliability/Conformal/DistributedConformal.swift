import FaultlineLinalg

extension SplitConformal {
    /// Split conformal calibration on the rows of every rank of a job, on every rank: rank r passes its
    /// contiguous shard of the calibration probabilities (rows firstSample ..< firstSample + rows, the
    /// shards in rank order covering 0 ..< N; ranks may hold no rows) and labels. Each rank computes its
    /// rows' conformity scores (sample indices global, so randomised scores do not depend on the split),
    /// the scores and labels are all-gathered (8 bytes per row each: O(N) per rank) and every rank takes
    /// the exact order statistic of `init(calibration:…)`: the threshold (and class thresholds) are
    /// **bit-identical** to the one-process calibration on all the rows. Prediction sets then come from
    /// `predict(_:firstSample:)` on each rank's test shard.
    /// - Throws: `RankFailure` on every rank when a rank's shard is invalid (probabilities, labels, or
    ///   shards that are not contiguous in rank order); `ReliabilityError` for α, RAPS parameters or a
    ///   calibration set too small for α (as the one-process init); `CommunicatorError`.
    public init(calibrationShard p: Matrix<Float>, labels: [Int], firstSample: Int, alpha: Double, score: Score = .lac,
                classConditional: Bool = false, seed: UInt64 = 0, communicator: some Communicator) throws {
        guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        if case .raps(let lambda, let kReg, _) = score, !(lambda >= 0 && lambda.isFinite && kReg >= 0) {
            throw ReliabilityError.invalidParameter("RAPS needs λ ≥ 0 (finite) and k_reg ≥ 0, got λ = \(lambda), k_reg = \(kReg)")
        }
        let local = try communicator.agree { () -> [Double] in
            guard labels.count == p.rows else { throw ReliabilityError.invalidInput("\(p.rows) calibration rows but \(labels.count) labels") }
            guard p.rows > 0 else { return [] }
            do {
                try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "calibration probabilities") }
                try Check.labels(labels, rows: p.rows, classes: p.columns)
            } catch ReliabilityError.invalidInput(let message) {
                throw ReliabilityError.invalidInput("\(message) (row numbers counted from this rank's first row, sample \(firstSample))")
            }
            return (0..<p.rows).map { Self.conformityScore(p.row($0), label: labels[$0], score: score, seed: seed, sample: firstSample + $0) }
        }
        let layout = try communicator.allgathervPerRank([firstSample, p.rows, p.rows > 0 ? p.columns : -1])
        var next = 0
        for (r, l) in layout.enumerated() {
            guard l[0] == next else {
                throw ReliabilityError.invalidInput("the calibration shards are not contiguous in rank order: rank \(r) starts at sample \(l[0]), expected \(next)")
            }
            next += l[1]
        }
        let columns = Set(layout.map { $0[2] }.filter { $0 >= 0 })
        guard columns.count <= 1 else { throw ReliabilityError.invalidInput("the ranks' calibration shards have different class counts \(columns.sorted())") }
        let scores = try communicator.allgatherv(local), allLabels = try communicator.allgatherv(labels)
        func quantile(_ values: [Double], _ what: String) throws -> Double {
            let k = Self.rank(n: values.count, alpha: alpha)
            guard k <= values.count else {
                throw ReliabilityError.invalidInput("\(what) has \(values.count) samples; α = \(alpha) needs at least \(Self.minimumCalibrationSize(alpha: alpha))")
            }
            return values.sorted()[k - 1]
        }
        self.score = score
        self.alpha = alpha
        self.seed = seed
        threshold = try quantile(scores, "the calibration set")
        classThresholds = classConditional
            ? try (0..<(columns.first ?? 0)).map { c in try quantile(scores.indices.filter { allLabels[$0] == c }.map { scores[$0] }, "class \(c)") }
            : nil
    }
}

extension ConformalScore {
    /// The `SplitConformal` score this names (as `sets` uses it), or nil for the MAPIE-convention scores,
    /// which calibrate through `CumulativeProbabilitySets` (not distributed).
    public func splitScore(_ s: Settings = Settings()) -> SplitConformal.Score? {
        switch self {
        case .lac: return .lac
        case .aps: return .aps(randomized: false)
        case .apsRandomized: return .aps(randomized: true)
        case .raps: return .raps(lambda: s.lambda, kReg: s.kReg, randomized: false)
        case .topk: return .topK
        case .apsMapie, .rapsMapie: return nil
        }
    }
}
