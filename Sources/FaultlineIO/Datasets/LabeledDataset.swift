import FaultlineLinalg

/// Feature rows with integer class labels in 0..<classCount.
public struct LabeledDataset: Sendable {
    /// A name for messages (a file, or `digits/train`).
    public var name: String
    /// One row per sample.
    public var features: Matrix<Float>
    /// One label per row, in 0..<classCount.
    public var labels: [Int]
    /// The number of classes, in 1...`maxClassCount` (classes may have no rows).
    public var classCount: Int

    /// The largest class count a data set may have (2²⁰): per-class arrays (`classCounts`, the
    /// stratified split's loop) are sized by it.
    public static let maxClassCount = 1 << 20

    /// Checks that there is one label per row, that `classCount` is in 1...`maxClassCount` and every
    /// label is in 0..<classCount.
    public init(name: String, features: Matrix<Float>, labels: [Int], classCount: Int) throws {
        guard (1...Self.maxClassCount).contains(classCount) else {
            throw IOError(.invalidValue, file: name, "class count \(classCount) is outside 1...\(Self.maxClassCount)")
        }
        guard labels.count == features.rows else {
            throw IOError(.shapeMismatch, file: name, "\(features.rows) feature rows but \(labels.count) labels")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classCount }) {
            throw IOError(.invalidValue, file: name, "label \(labels[bad]) at row \(bad) is outside 0..<\(classCount)")
        }
        self.name = name
        self.features = features
        self.labels = labels
        self.classCount = classCount
    }

    /// The number of samples.
    public var count: Int { labels.count }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: [Int], name: String? = nil) -> LabeledDataset {
        // Labels were validated when this dataset was made.
        try! LabeledDataset(name: name ?? self.name, features: features.gatherRows(indices), labels: indices.map { labels[$0] }, classCount: classCount)
    }

    /// Rows per class.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for y in labels { counts[y] += 1 }
        return counts
    }

    /// `count` of the rows 0..<n drawn uniformly without replacement (a partial Fisher–Yates shuffle of
    /// Philox draws), in increasing order; all rows when count ≥ n. Deterministic for a seed. O(n).
    public static func sampleRows(_ count: Int, of n: Int, seed: UInt64) -> [Int] {
        guard count < n else { return Array(0..<max(n, 0)) }
        var rows = Array(0..<n)
        var rng = Philox(seed: seed, stream: 0x5a4d_504c)
        for i in 0..<max(count, 0) {
            let j = i + min(Int(rng.uniform() * Double(n - i)), n - i - 1)
            rows.swapAt(i, j)
        }
        return rows[0..<max(count, 0)].sorted()
    }

    /// `count` rows drawn uniformly without replacement (`sampleRows`), in their original order.
    public func sample(_ count: Int, seed: UInt64) -> LabeledDataset {
        count >= self.count ? self : subset(Self.sampleRows(count, of: self.count, seed: seed), name: name)
    }

    /// A deterministic stratified split: within each class the rows are shuffled with Philox(seed)
    /// and cut in the given proportions (rounded per class; the test part takes the remainder), so
    /// every part has each class in about the same proportion as the whole.
    public func stratifiedSplit(train: Double = 0.6, calibration: Double = 0.2, seed: UInt64) -> Split {
        precondition(train > 0 && calibration >= 0 && train + calibration < 1, "split fractions must leave a test part")
        var parts: ([Int], [Int], [Int]) = ([], [], [])
        for c in 0..<classCount {
            var members = labels.indices.filter { labels[$0] == c }
            var rng = Philox(seed: seed, stream: UInt64(c))
            for i in stride(from: members.count - 1, to: 0, by: -1) {  // Fisher–Yates
                let j = Int(rng.uniform() * Double(i + 1))
                members.swapAt(i, j)
            }
            let nTrain = Int((Double(members.count) * train).rounded())
            let nCal = Int((Double(members.count) * calibration).rounded())
            parts.0 += members[0..<nTrain]
            parts.1 += members[nTrain..<min(nTrain + nCal, members.count)]
            parts.2 += members[min(nTrain + nCal, members.count)...]
        }
        return Split(train: subset(parts.0.sorted(), name: name + "/train"),
                     calibration: subset(parts.1.sorted(), name: name + "/calibration"),
                     test: subset(parts.2.sorted(), name: name + "/test"))
    }

    /// Three disjoint subsets of a data set, each in the original row order.
    public struct Split: Sendable {
        /// Rows to fit models on.
        public var train: LabeledDataset
        /// Held-out rows to fit recalibration, conformal thresholds and detectors' thresholds on.
        public var calibration: LabeledDataset
        /// Rows to evaluate on.
        public var test: LabeledDataset
    }
}

extension LabeledDataset {
    /// Writes the set as `DIRECTORY/NAME_x.npy` (N × D float32) and `NAME_y.npy` (N int64 labels), the
    /// layout `faultline train --export-split` produces and every command reads. Each file is written
    /// atomically (`NPY.write`). Throws `IOError` naming the file.
    public func write(to directory: String, name: String) throws {
        try NPY.write(features, to: "\(directory)/\(name)_x.npy")
        try NPY.write(Tensor(shape: [count], values: labels.map { Int64($0) }), to: "\(directory)/\(name)_y.npy")
    }
}
