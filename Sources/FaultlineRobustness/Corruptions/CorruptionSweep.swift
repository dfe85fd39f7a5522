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

    /// The correct predictions behind a `Report`, as whole numbers: on the clean rows and on each cell
    /// (corruptions in order, each with its severities in order). Counts of disjoint parts of a data set
    /// (the shards of an `mpirun` job) add up exactly to the whole set's counts, and `report(_:…)` turns
    /// them into the accuracies `evaluate` gives.
    public struct Counts: Sendable, Equatable {
        /// Rows evaluated.
        public var rows: Int
        /// Rows classified correctly without corruption.
        public var clean: Int
        /// Rows classified correctly, one count per cell: corruptions × severities, severities inner.
        public var correct: [Int]

        /// Counts from their parts.
        public init(rows: Int, clean: Int, correct: [Int]) {
            (self.rows, self.clean, self.correct) = (rows, clean, correct)
        }

        /// The counts of both parts together (cell by cell). Throws `AttackError.invalidInput` when they
        /// hold different numbers of cells (counts of different grids).
        public func adding(_ other: Counts) throws -> Counts {
            guard other.correct.count == correct.count else {
                throw AttackError.invalidInput("cannot add counts of \(other.correct.count) cells to counts of \(correct.count)")
            }
            return Counts(rows: rows + other.rows, clean: clean + other.clean, correct: zip(correct, other.correct).map(+))
        }
    }

    /// Corrupts `x` (rows laid out as `shape`) with each corruption at each severity and measures the
    /// model's accuracy. Cost: one forward pass over x per cell. `progress(done, total)` counts cells.
    /// `sampleOffset`: the index of x's first row in the whole data set (see `Corruption.apply`).
    /// Throws `AttackError` for bad severities, shapes or labels, `ModelError` from the model.
    public static func evaluate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], shape: ImageShape,
                                corruptions: [Corruption] = Corruption.allCases, severities: [Int] = Array(1...5), seed: UInt64 = 0,
                                sampleOffset: Int = 0, progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        let counts = try count(model, x, labels: labels, shape: shape, corruptions: corruptions, severities: severities, seed: seed,
                               sampleOffset: sampleOffset, progress: progress)
        return try report(counts, corruptions: corruptions, severities: severities)
    }

    /// `evaluate`'s correct predictions as counts, for a part of a data set: rows `sampleOffset ..<
    /// sampleOffset + x.rows` of the whole set, every random draw keyed by the row's index in it, so each
    /// row's corrupted copy and outcome are those of the whole-set run and the parts' counts add up to its
    /// counts (`Counts.adding`, or a sum across the ranks of a job). An empty `x` counts nothing (the model
    /// is not run). Cost and errors: those of `evaluate`.
    public static func count(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], shape: ImageShape,
                             corruptions: [Corruption] = Corruption.allCases, severities: [Int] = Array(1...5), seed: UInt64 = 0,
                             sampleOffset: Int = 0, progress: ((Int, Int) -> Void)? = nil) throws -> Counts {
        try AttackInputs.check(model, x, labels: labels, targets: nil, box: .unit)
        guard !corruptions.isEmpty, !severities.isEmpty else { throw AttackError.invalidParameter("no corruption or severity given") }
        if let bad = severities.first(where: { !(1...5).contains($0) }) { throw AttackError.invalidParameter("severity \(bad) must be 1…5") }
        guard shape.features == x.columns else {
            throw AttackError.invalidInput("image shape \(shape) has \(shape.features) features but the rows have \(x.columns)")
        }
        func correct(_ input: Matrix<Float>) throws -> Int {
            input.rows == 0 ? 0 : zip(try model.predict(input), labels).filter { $0 == $1 }.count
        }
        var cells: [Int] = []
        let total = corruptions.count * severities.count
        for corruption in corruptions {
            for severity in severities {
                let corrupted = try corruption.apply(to: x, shape: shape, severity: severity, seed: seed, sampleOffset: sampleOffset)
                cells.append(try correct(corrupted))
                progress?(cells.count, total)
            }
        }
        return Counts(rows: x.rows, clean: try correct(x), correct: cells)
    }

    /// The table of `counts` (of the grid `corruptions` × `severities`, as `count` made them): each
    /// accuracy is a count over `counts.rows` (0 when there are no rows), exactly as `evaluate` computes it.
    /// Throws `AttackError.invalidInput` when the counts do not have one cell per corruption and severity.
    public static func report(_ counts: Counts, corruptions: [Corruption], severities: [Int]) throws -> Report {
        guard counts.correct.count == corruptions.count * severities.count else {
            throw AttackError.invalidInput("\(counts.correct.count) cell counts for \(corruptions.count) corruptions × \(severities.count) severities")
        }
        let rows = Double(max(counts.rows, 1))
        let cells = corruptions.enumerated().flatMap { c, corruption in
            severities.enumerated().map { s, severity in
                Cell(corruption: corruption, severity: severity, accuracy: Double(counts.correct[c * severities.count + s]) / rows)
            }
        }
        return Report(cleanAccuracy: Double(counts.clean) / rows, cells: cells)
    }
}

extension CorruptionSweep {
    /// Every corrupted copy of `x` for the grid (corruptions × severities, in that order), named
    /// `<corruption>_<severity>` — the arrays `faultline corrupt --out` saves. Each copy is
    /// `Corruption.apply` with `seed` (and `sampleOffset`, the index of x's first row in the whole set), so
    /// it is the input the sweep evaluated. Memory: one copy of x per cell.
    public static func copies(_ x: Matrix<Float>, shape: ImageShape, corruptions: [Corruption], severities: [Int],
                              seed: UInt64 = 0, sampleOffset: Int = 0) throws -> [(name: String, tensor: Tensor)] {
        try corruptions.flatMap { c in
            try severities.map { s in
                ("\(c.rawValue)_\(s)", Tensor(try c.apply(to: x, shape: shape, severity: s, seed: seed, sampleOffset: sampleOffset)))
            }
        }
    }
}
