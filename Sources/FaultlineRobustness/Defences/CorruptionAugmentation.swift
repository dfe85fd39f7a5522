import FaultlineLinalg
import FaultlineNN

/// Training on corrupted images: a `BatchAugmentation` that replaces each row of every batch by a copy
/// corrupted with one of `corruptions` at one of `severities`, both drawn uniformly per row (with
/// probability `probability`; the other rows stay clean), using the corruption kernels of
/// `CorruptionSweep` (so training sees the corruptions the report measures).
///
/// Draws are Philox keyed by (`seed`, optimisation step, row): training stays deterministic. Rows must
/// lie in [0, 1] (pixel intensities), laid out as `shape`. Cost: one corruption per row, no allocation.
public struct CorruptionAugmentation: BatchAugmentation {
    /// The corruptions drawn from.
    public let corruptions: [Corruption]
    /// The severities drawn from (1…5).
    public let severities: [Int]
    /// The layout of a row.
    public let shape: ImageShape
    /// The share of rows corrupted.
    public let probability: Double
    /// Seed of the draws.
    public let seed: UInt64

    /// Throws `AttackError.invalidParameter` for no corruptions, severities outside 1…5 or none, or a
    /// probability outside [0, 1].
    public init(_ corruptions: [Corruption] = Corruption.allCases, severities: [Int] = [1, 2, 3, 4, 5], shape: ImageShape,
                probability: Double = 0.5, seed: UInt64 = 0) throws {
        guard !corruptions.isEmpty else { throw AttackError.invalidParameter("name at least one corruption to train on") }
        guard !severities.isEmpty, severities.allSatisfy({ (1...5).contains($0) }) else {
            throw AttackError.invalidParameter("severities must be 1…5, got \(severities)")
        }
        guard probability >= 0, probability <= 1 else { throw AttackError.invalidParameter("the corruption probability must lie in [0, 1], got \(probability)") }
        (self.corruptions, self.severities, self.shape, self.probability, self.seed) = (corruptions, severities, shape, probability, seed)
    }

    public func augment<Model: TrainableClassifier>(_ model: Model, rows x: MutableMatrixPointer<Float>, labels: UnsafePointer<Int>, step: UInt64,
                                                    epoch: Int) throws {
        guard x.columns == shape.features else {
            throw AttackError.invalidInput("the image shape \(shape) has \(shape.features) features but the rows have \(x.columns)")
        }
        for r in 0..<x.rows {
            let row = x.base + r * x.rowStride
            if let j = (0..<x.columns).first(where: { !(row[$0] >= 0 && row[$0] <= 1) }) {
                throw AttackError.invalidInput("training row value \(row[j]) is outside [0, 1]; corruptions expect pixel intensities in [0, 1]")
            }
            var rng = Philox(seed: seed, stream: step << 24 | UInt64(r))
            guard rng.uniform() < probability else { continue }
            let corruption = corruptions[min(Int(rng.uniform() * Double(corruptions.count)), corruptions.count - 1)]
            let severity = severities[min(Int(rng.uniform() * Double(severities.count)), severities.count - 1)]
            corruption.apply(row, shape: shape, parameter: corruption.parameter(severity: severity), rng: &rng)
        }
    }
}
