import FaultlineLinalg
import FaultlineNN
import Foundation

/// The report's failing examples: a few rows of each kind of failure, chosen by a stated key, so a
/// reader sees what the numbers are about.
///
/// - **confident errors**: test rows attributed "reliability: confident and wrong", by confidence
///   (highest first);
/// - **flipped within ε**: test rows attributed "robustness: flipped within ε", by clean confidence
///   (highest first), with the adversarial input and its perturbation;
/// - **most out of distribution**, per shifted set: every row, by the OOD score that decides "out of
///   distribution" in the attribution (highest first);
/// - **silent under shift**, per labelled shifted set: rows the model gets wrong while that score is at
///   or below the OOD threshold (the detector calls them in distribution), by confidence (highest first).
///
/// Ties go to the lower row index, NaN keys last: the choice is deterministic. At most `limit`
/// (`perCategory`, 8) examples per group; `candidates` counts every row that qualified.
///
/// Image inputs (`image` non-nil) carry their pixels as base64 of 8-bit values (C×H×W, row-major, at most
/// `maxSide` pixels a side: larger images are block-averaged), mapped linearly from `pixelRange` (0 →
/// lower, 255 → upper). Other inputs carry their `listedFeatures` most deviating features instead:
/// z = (x − mean) / sd against the training rows (sd floored at 1e-6, so a feature constant in training
/// that moved ranks first), largest |z| first, ties by feature index. Cost: O(n log n) per group plus
/// one pass over the training rows for the z-scores.
public struct FailureExamples: Codable, Sendable, Equatable {
    /// Examples per group at most.
    public static let perCategory = 8
    /// Features listed per non-image row.
    public static let listedFeatures = 5
    /// Image tiles are at most this many pixels a side.
    public static let maxSide = 64

    /// The kinds of examples, with their stable JSON keys.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Test rows attributed confident and wrong.
        case confidentError = "confident-error"
        /// Test rows right but flipped within ε.
        case flipped = "flipped-within-epsilon"
        /// A shifted set's rows with the highest OOD score.
        case mostOutOfDistribution = "most-out-of-distribution"
        /// A labelled shifted set's errors the detector calls in distribution.
        case silentUnderShift = "silent-under-shift"

        /// The sort key, as the report states it.
        public var order: String {
            switch self {
            case .confidentError: return "confidence, highest first"
            case .flipped: return "clean confidence, highest first"
            case .mostOutOfDistribution: return "OOD score, highest first"
            case .silentUnderShift: return "confidence, highest first"
            }
        }
    }

    /// The layout of the tiles' pixels (after block-averaging), and the layout of the inputs.
    public struct Layout: Codable, Sendable, Equatable {
        /// Channels of a tile.
        public var channels: Int
        /// Tile height in pixels (after block-averaging).
        public var height: Int
        /// Tile width in pixels (after block-averaging).
        public var width: Int
        /// The input's layout as "CxHxW".
        public var input: String
        /// Where the layout came from: "given", "model" (its input shape) or "square" (a square width).
        public var source: String

        /// A layout.
        public init(channels: Int, height: Int, width: Int, input: String, source: String) {
            (self.channels, self.height, self.width, self.input, self.source) = (channels, height, width, input, source)
        }
    }

    /// The input values mapped to 0 and 255, per channel; `source` is "box" or "training data".
    public struct PixelRange: Codable, Sendable, Equatable {
        /// The input value drawn as 0 (black), per channel.
        public var lower: [Float]
        /// The input value drawn as 255 (white), per channel.
        public var upper: [Float]
        /// "box" or "training data".
        public var source: String

        /// A range.
        public init(lower: [Float], upper: [Float], source: String) { (self.lower, self.upper, self.source) = (lower, upper, source) }

        /// 8-bit values of `x` (C×H×W): (x − lower[c]) / (upper[c] − lower[c]) · 255, rounded and clamped
        /// (NaN → 0, an empty or inverted interval → 128; a channel beyond the lists uses the last interval).
        public func bytes(_ x: [Float], channels: Int) -> [UInt8] {
            let plane = max(x.count / max(channels, 1), 1), last = min(lower.count, upper.count) - 1
            guard last >= 0 else { return [UInt8](repeating: 128, count: x.count) }
            return x.indices.map { i in
                let c = min(i / plane, last), (lo, hi) = (lower[c], upper[c])
                let t = hi > lo ? (x[i] - lo) / (hi - lo) : 0.5
                return t.isNaN ? 0 : UInt8(min(max((t * 255).rounded(), 0), 255))
            }
        }
    }

    /// One input feature of a non-image row.
    public struct Feature: Codable, Sendable, Equatable {
        /// The feature's column (0-based).
        public var index: Int
        /// Its value in the row, in input units.
        public var value: Double
        /// (value − training mean) / max(training sd, 1e-6).
        public var z: Double
    }

    /// One failing row.
    public struct Example: Codable, Sendable, Equatable {
        /// The row in its set (in the analysed rows: after `Options.maxSamples` sampling).
        public var row: Int
        /// Its label (nil for an unlabelled shifted set).
        public var label: Int?
        /// The analysed model's prediction.
        public var predicted: Int
        /// The analysed model's top-class probability, in [0, 1].
        public var confidence: Double
        /// The OOD score (out-of-distribution and silent groups).
        public var score: Double?
        /// Flipped rows: the prediction and confidence on the adversarial input, and ‖δ‖∞.
        public var adversarialPredicted: Int?
        /// Top-class probability on the adversarial input.
        public var adversarialConfidence: Double?
        /// ‖δ‖∞ of the adversarial perturbation, in input units.
        public var perturbationNorm: Double?
        /// Base64 of 8-bit pixels (see `FailureExamples`); the perturbation is mapped so that 128 is 0 and
        /// 0 / 255 are ∓‖δ‖∞ (scaled to full contrast).
        public var pixels: String?
        /// Base64 of the adversarial input's 8-bit pixels (flipped rows of image inputs).
        public var adversarialPixels: String?
        /// Base64 of the perturbation's 8-bit pixels (128 = 0).
        public var perturbationPixels: String?
        /// Non-image rows: the most deviating features.
        public var features: [Feature]?
    }

    /// The examples of one kind on one set.
    public struct Group: Codable, Sendable, Equatable {
        /// The kind of failure.
        public var kind: Kind
        /// "test" or the shifted set's name.
        public var set: String
        /// Rows that qualified (the examples are the first `limit` of them in `kind.order`).
        public var candidates: Int
        /// At most `perCategory` rows, in `kind.order`.
        public var examples: [Example]
    }

    /// The tiles' layout; nil: rows are shown by their most deviating features.
    public var image: Layout?
    /// The input values drawn black and white (image inputs only).
    public var pixelRange: PixelRange?
    /// ε of the flipped group's attack (the attribution's).
    public var epsilon: Float
    /// The groups: confident errors and flipped rows of the test set, then per shifted set its most out
    /// of distribution and (labelled sets) silent rows.
    public var groups: [Group]
    /// What could not be shown and why.
    public var notes: [String]

    /// The groups of `kind`, in order.
    public func groups(_ kind: Kind) -> [Group] { groups.filter { $0.kind == kind } }

    /// One shifted set's rows as the selection needs them.
    public struct ShiftedRows: Sendable {
        /// The set's name.
        public var name: String
        /// The set's rows.
        public var features: Matrix<Float>
        /// Its labels, when known.
        public var labels: [Int]?
        /// The analysed model's probabilities on the rows.
        public var probabilities: Matrix<Float>
        /// The score that decides "out of distribution" (higher: more out of distribution).
        public var oodScores: [Float]

        /// A set's rows.
        public init(name: String, features: Matrix<Float>, labels: [Int]?, probabilities: Matrix<Float>, oodScores: [Float]) {
            (self.name, self.features, self.labels, self.probabilities, self.oodScores) = (name, features, labels, probabilities, oodScores)
        }
    }

    /// Selects the examples (see the type's documentation).
    ///
    /// - Parameters:
    ///   - test: the test rows, their labels and the model's probabilities on them (`probabilities.rows`
    ///     must equal `labels.count` and `test.rows`; mismatched inputs give empty groups and a note).
    ///   - attribution: the test rows' categories (one per row).
    ///   - adversarial: the attack's output for every test row and the model's probabilities on it; nil
    ///     (attacks skipped) leaves the flipped group without adversarial tiles.
    ///   - train: the training rows (z-scores of non-image rows; the pixel range when the box is loose).
    ///   - image: the input layout, nil for non-image inputs (`ImageShape.infer`).
    ///   - box: the input box; pixels are mapped by it unless the training data spans less than a quarter of
    ///     a channel's interval, then by the training data's per-channel min/max.
    public init(test: Matrix<Float>, labels: [Int], probabilities: Matrix<Float>, attribution: FailureAttribution,
                adversarial: (inputs: Matrix<Float>, probabilities: Matrix<Float>)?, shifted: [ShiftedRows], train: Matrix<Float>,
                image: ImageShape?, imageSource: String = "given", box: InputBox = .unit, limit: Int = FailureExamples.perCategory) {
        let limit = max(limit, 0)
        epsilon = attribution.thresholds.epsilon
        notes = []
        groups = []
        let d = test.columns
        let shape = image.flatMap { $0.features == d && $0.channels > 0 && $0.height > 0 && $0.width > 0 ? $0 : nil }
        if let image, shape == nil { notes.append("The image layout \(image) does not match the \(d) input features: rows are shown as features.") }
        var mapper: PixelMapper?
        if let shape {
            let range = Self.pixelRange(box: box, train: train, shape: shape)
            let factor = (max(shape.height, shape.width) + Self.maxSide - 1) / Self.maxSide
            mapper = PixelMapper(shape: shape, factor: max(factor, 1), range: range)
            self.image = Layout(channels: shape.channels, height: (shape.height + factor - 1) / max(factor, 1),
                           width: (shape.width + factor - 1) / max(factor, 1), input: shape.description, source: imageSource)
            self.pixelRange = range
            if factor > 1 { notes.append("Tiles are block-averaged \(factor)×\(factor) (inputs \(shape)).") }
        }
        // z-scores against the training rows (non-image inputs only).
        var moments: (mean: [Double], sd: [Double])?
        if mapper == nil, train.columns == d, d > 0 { moments = Self.moments(train) }
        func describe(_ x: Matrix<Float>, _ i: Int) -> (pixels: String?, features: [Feature]?) {
            let row = Array(x.row(i))
            if let mapper { return (mapper.base64(row), nil) }
            if let m = moments { return (nil, Self.deviations(row, mean: m.mean, sd: m.sd, top: Self.listedFeatures)) }
            return (nil, nil)
        }
        func prediction(_ p: Matrix<Float>, _ i: Int) -> (Int, Double) {
            var best = 0
            for j in 0..<p.columns where p[i, j] > p[i, best] { best = j }
            return (best, p.columns > 0 ? Double(p[i, best]) : .nan)
        }

        let n = test.rows
        if probabilities.rows == n, labels.count == n, attribution.categories.count == n {
            let confidence = (0..<n).map { prediction(probabilities, $0).1 }
            for kind in [Kind.confidentError, .flipped] {
                let category: FailureAttribution.Category = kind == .confidentError ? .confidentError : .fragile
                let rows = (0..<n).filter { attribution.categories[$0] == category }
                let chosen = Self.ranked(rows, by: { confidence[$0] }, limit: limit)
                let examples = chosen.map { i -> Example in
                    let (p, c) = prediction(probabilities, i), shown = describe(test, i)
                    var e = Example(row: i, label: labels[i], predicted: p, confidence: c, pixels: shown.pixels, features: shown.features)
                    if kind == .flipped, let adversarial, adversarial.inputs.rows == n, adversarial.inputs.columns == d,
                       adversarial.probabilities.rows == n {
                        let (ap, ac) = prediction(adversarial.probabilities, i)
                        (e.adversarialPredicted, e.adversarialConfidence) = (ap, ac)
                        let a = Array(adversarial.inputs.row(i)), x = Array(test.row(i))
                        let delta = zip(a, x).map { $0 - $1 }
                        let norm = delta.map { abs($0) }.max() ?? 0
                        e.perturbationNorm = Double(norm)
                        if let mapper {
                            e.adversarialPixels = mapper.base64(a)
                            e.perturbationPixels = mapper.base64Perturbation(delta, norm: norm)
                        }
                    }
                    return e
                }
                groups.append(Group(kind: kind, set: "test", candidates: rows.count, examples: examples))
            }
            if adversarial == nil && attribution.categories.contains(.fragile) {
                notes.append("No adversarial inputs were given: flipped rows are shown clean only.")
            }
        } else {
            notes.append("The test probabilities, labels and attribution do not have one row per test row: no test examples.")
        }
        for set in shifted {
            let m = set.features.rows
            guard set.probabilities.rows == m, set.oodScores.count == m, set.features.columns == d, set.labels.map({ $0.count == m }) ?? true else {
                notes.append("The shifted set '\(set.name)' has inconsistent rows: no examples.")
                continue
            }
            func example(_ i: Int) -> Example {
                let (p, c) = prediction(set.probabilities, i), shown = describe(set.features, i)
                return Example(row: i, label: set.labels?[i], predicted: p, confidence: c, score: Double(set.oodScores[i]),
                               pixels: shown.pixels, features: shown.features)
            }
            let all = Array(0..<m)
            groups.append(Group(kind: .mostOutOfDistribution, set: set.name, candidates: m,
                                examples: Self.ranked(all, by: { Double(set.oodScores[$0]) }, limit: limit).map(example)))
            if let y = set.labels {
                let threshold = attribution.thresholds.outOfDistributionScore
                let silent = all.filter { i in prediction(set.probabilities, i).0 != y[i] && !(Double(set.oodScores[i]) > threshold) }
                groups.append(Group(kind: .silentUnderShift, set: set.name, candidates: silent.count,
                                    examples: Self.ranked(silent, by: { prediction(set.probabilities, $0).1 }, limit: limit).map(example)))
            }
        }
    }

    /// The first `limit` of `rows` by `key`, highest first; NaN keys last, ties by the lower row.
    public static func ranked(_ rows: [Int], by key: (Int) -> Double, limit: Int) -> [Int] {
        let keyed = rows.map { ($0, key($0)) }
        return keyed.sorted { a, b in
            if a.1.isNaN != b.1.isNaN { return b.1.isNaN }
            if !a.1.isNaN, a.1 != b.1 { return a.1 > b.1 }
            return a.0 < b.0
        }.prefix(max(limit, 0)).map(\.0)
    }

    /// The `top` features of `row` with the largest |z|, z = (x − mean) / max(sd, 1e-6); ties by index.
    public static func deviations(_ row: [Float], mean: [Double], sd: [Double], top: Int) -> [Feature] {
        let count = min(row.count, mean.count, sd.count)
        let all = (0..<count).map { j in Feature(index: j, value: Double(row[j]), z: (Double(row[j]) - mean[j]) / max(sd[j], 1e-6)) }
        return ranked(Array(0..<count), by: { abs(all[$0].z) }, limit: top).map { all[$0] }
    }

    /// Per-column mean and (population) standard deviation, in Float64.
    public static func moments(_ x: Matrix<Float>) -> (mean: [Double], sd: [Double]) {
        let n = x.rows, d = x.columns
        var mean = [Double](repeating: 0, count: d), m2 = [Double](repeating: 0, count: d)
        guard n > 0 else { return (mean, m2) }
        for i in 0..<n { for j in 0..<d { mean[j] += Double(x[i, j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        for i in 0..<n { for j in 0..<d { let t = Double(x[i, j]) - mean[j]; m2[j] += t * t } }
        return (mean, m2.map { ($0 / Double(n)).squareRoot() })
    }

    /// The values mapped to 0…255: the box's interval per channel, unless the training rows span less than
    /// a quarter of it in some channel (a loose box, e.g. ±1e3 around normalised data), then the training
    /// rows' min…max per channel (a constant channel gets ±0.5 around its value).
    public static func pixelRange(box: InputBox, train: Matrix<Float>, shape: ImageShape) -> PixelRange {
        let c = max(shape.channels, 1)
        let lo = (0..<c).map { box.lower.count == 1 ? box.lower[0] : box.lower[min($0, box.lower.count - 1)] }
        let hi = (0..<c).map { box.upper.count == 1 ? box.upper[0] : box.upper[min($0, box.upper.count - 1)] }
        guard train.rows > 0, train.columns == shape.features else { return PixelRange(lower: lo, upper: hi, source: "box") }
        let plane = shape.height * shape.width
        var dataLo = [Float](repeating: .infinity, count: c), dataHi = [Float](repeating: -.infinity, count: c)
        for i in 0..<train.rows {
            for j in 0..<train.columns where train[i, j].isFinite {
                let k = j / max(plane, 1)
                dataLo[k] = min(dataLo[k], train[i, j])
                dataHi[k] = max(dataHi[k], train[i, j])
            }
        }
        let loose = (0..<c).contains { (k: Int) -> Bool in
            let box: Float = hi[k] - lo[k], data: Float = dataHi[k] - dataLo[k]
            return !box.isFinite || data < 0.25 * box
        }
        guard loose, dataLo.allSatisfy(\.isFinite), dataHi.allSatisfy(\.isFinite) else { return PixelRange(lower: lo, upper: hi, source: "box") }
        var lower = dataLo, upper = dataHi
        for k in 0..<c where !(dataHi[k] > dataLo[k]) { (lower[k], upper[k]) = (dataLo[k] - 0.5, dataHi[k] + 0.5) }
        return PixelRange(lower: lower, upper: upper, source: "training data")
    }

    /// 8-bit tiles of one layout: block-averaged by `factor`, mapped by `range`.
    struct PixelMapper {
        var shape: ImageShape
        var factor: Int
        var range: PixelRange

        func reduced(_ x: [Float]) -> [Float] {
            guard factor > 1 else { return x }
            let (h, w) = ((shape.height + factor - 1) / factor, (shape.width + factor - 1) / factor)
            var out = [Float](repeating: 0, count: shape.channels * h * w)
            for c in 0..<shape.channels {
                for r in 0..<h {
                    for q in 0..<w {
                        var sum: Float = 0, count: Float = 0
                        for rr in (r * factor)..<min((r + 1) * factor, shape.height) {
                            for qq in (q * factor)..<min((q + 1) * factor, shape.width) {
                                sum += x[c * shape.height * shape.width + rr * shape.width + qq]
                                count += 1
                            }
                        }
                        out[c * h * w + r * w + q] = sum / max(count, 1)
                    }
                }
            }
            return out
        }

        func base64(_ x: [Float]) -> String { Data(range.bytes(reduced(x), channels: shape.channels)).base64EncodedString() }

        /// 128 + 127·δ/‖δ‖∞ (all 128 when δ = 0).
        func base64Perturbation(_ delta: [Float], norm: Float) -> String {
            let bytes = reduced(delta).map { v -> UInt8 in
                guard norm > 0, v.isFinite else { return 128 }
                return UInt8(min(max((128 + 127 * v / norm).rounded(), 0), 255))
            }
            return Data(bytes).base64EncodedString()
        }
    }
}
