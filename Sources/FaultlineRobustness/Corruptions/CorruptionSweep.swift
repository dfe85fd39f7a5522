import FaultlineIO
import FaultlineLinalg
import FaultlineNN

/// Accuracy under every corruption and severity: the natural-robustness table.
public enum CorruptionSweep {
    /// Accuracy under one corruption at one severity.
    public struct Cell: Sendable, Codable, Equatable {
        /// The corruption.
        public var corruption: Corruption
        /// Its severity, 1…5.
        public var severity: Int
        /// The share of corrupted rows classified correctly.
        public var accuracy: Double

        /// A cell.
        public init(corruption: Corruption, severity: Int, accuracy: Double) {
            self.corruption = corruption
            self.severity = severity
            self.accuracy = accuracy
        }
    }

    /// The whole table.
    public struct Report: Sendable, Codable {
        /// Accuracy on the uncorrupted rows.
        public var cleanAccuracy: Double
        /// One cell per corruption and severity.
        public var cells: [Cell]
        /// Mean accuracy over all cells (the "corruption accuracy" of CIFAR-10-C).
        public var meanAccuracy: Double { cells.isEmpty ? cleanAccuracy : cells.map(\.accuracy).reduce(0, +) / Double(cells.count) }
        /// Mean accuracy over the severities of one corruption.
        public func meanAccuracy(_ corruption: Corruption) -> Double {
            let mine = cells.filter { $0.corruption == corruption }
            return mine.isEmpty ? .nan : mine.map(\.accuracy).reduce(0, +) / Double(mine.count)
        }
    }

    /// Corrupts `x` (rows laid out as `shape`) with each corruption at each severity and measures the
    /// model's accuracy. Cost: one forward pass over x per cell. `progress(done, total)` counts cells.
    /// Throws `AttackError` for bad severities, shapes or labels, `ModelError` from the model.
    public static func evaluate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], shape: ImageShape,
                                corruptions: [Corruption] = Corruption.allCases, severities: [Int] = Array(1...5), seed: UInt64 = 0,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        try AttackInputs.check(model, x, labels: labels, targets: nil, box: .unit)
        guard !corruptions.isEmpty, !severities.isEmpty else { throw AttackError.invalidParameter("no corruption or severity given") }
        func accuracy(_ input: Matrix<Float>) throws -> Double {
            let predicted = try model.predict(input)
            return Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(max(labels.count, 1))
        }
        var cells: [Cell] = []
        let total = corruptions.count * severities.count
        for corruption in corruptions {
            for severity in severities {
                let corrupted = try corruption.apply(to: x, shape: shape, severity: severity, seed: seed)
                cells.append(Cell(corruption: corruption, severity: severity, accuracy: try accuracy(corrupted)))
                progress?(cells.count, total)
            }
        }
        return Report(cleanAccuracy: try accuracy(x), cells: cells)
    }
}

extension CorruptionSweep {
    /// Every corrupted copy of `x` for the grid (corruptions × severities, in that order), named
    /// `<corruption>_<severity>` — the arrays `faultline corrupt --out` saves. Each copy is
    /// `Corruption.apply` with `seed`, so it is the input the sweep evaluated. Memory: one copy of x per cell.
    public static func copies(_ x: Matrix<Float>, shape: ImageShape, corruptions: [Corruption], severities: [Int],
                              seed: UInt64 = 0) throws -> [(name: String, tensor: Tensor)] {
        try corruptions.flatMap { c in
            try severities.map { s in ("\(c.rawValue)_\(s)", Tensor(try c.apply(to: x, shape: shape, severity: s, seed: seed))) }
        }
    }
}
