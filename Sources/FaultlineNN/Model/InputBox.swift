/// The valid range of a model's raw inputs: one interval for every feature (`0...1` for images in
/// [0, 1]), or one interval per channel for rows laid out channel-major (C×H×W, the layout of
/// `InputNormalization` and of PyTorch tensors flattened). Attacks clamp their iterates to it,
/// certificates intersect their L∞ regions with it, and inputs outside it are refused.
///
/// A per-channel box is what data already normalised by a mean/std needs: the image range [0, 1]
/// becomes [(0 − mean_c)/std_c, (1 − mean_c)/std_c] in channel c (see `normalized(by:)`).
public struct InputBox: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The lower bound of every channel (one value: every feature).
    public let lower: [Float]
    /// The upper bound of every channel, `upper[c] ≥ lower[c]`.
    public let upper: [Float]

    /// The same interval for every feature. Finite bounds are checked where the box is used.
    public init(_ range: ClosedRange<Float>) {
        (lower, upper) = ([range.lowerBound], [range.upperBound])
    }

    /// One interval per channel: `lower[c]...upper[c]`. One value in either list stands for every
    /// channel. Throws `ModelError.invalidSpec` unless both lists are non-empty, of equal length (or
    /// one of them a single value), every bound finite and every `lower[c] < upper[c]`.
    public init(lower: [Float], upper: [Float]) throws {
        guard !lower.isEmpty, !upper.isEmpty, lower.count == upper.count || lower.count == 1 || upper.count == 1 else {
            throw ModelError.invalidSpec("a box needs as many lower as upper bounds (or one of either), got \(lower.count) and \(upper.count)")
        }
        guard lower.allSatisfy(\.isFinite), upper.allSatisfy(\.isFinite) else {
            throw ModelError.invalidSpec("box bounds must be finite, got \(Self.text(lower, upper))")
        }
        let n = max(lower.count, upper.count)
        let lo = lower.count == n ? lower : Array(repeating: lower[0], count: n)
        let hi = upper.count == n ? upper : Array(repeating: upper[0], count: n)
        if let c = (0..<n).first(where: { !(lo[$0] < hi[$0]) }) {
            throw ModelError.invalidSpec("box channel \(c) is \(lo[c])…\(hi[c]); every lower bound must be below its upper bound")
        }
        (self.lower, self.upper) = (lo, hi)
    }

    private enum CodingKeys: String, CodingKey { case lower, upper }

    /// Decodes `{"lower": […], "upper": […]}`, validated as `init(lower:upper:)` (a decoding error
    /// for an invalid box).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let (lower, upper) = (try container.decode([Float].self, forKey: .lower), try container.decode([Float].self, forKey: .upper))
        do { self = try InputBox(lower: lower, upper: upper) } catch {
            throw DecodingError.dataCorruptedError(forKey: .lower, in: container, debugDescription: "\(error)")
        }
    }

    /// [0, 1] for every feature, the default of every attack and of the report.
    public static let unit = InputBox(0...1)

    /// The number of channels (1 when one interval stands for all).
    public var channels: Int { lower.count }

    /// The interval of every feature when the box has one, else nil.
    public var uniform: ClosedRange<Float>? { channels == 1 ? lower[0]...upper[0] : nil }

    /// Whether every bound is finite.
    public var isFinite: Bool { lower.allSatisfy(\.isFinite) && upper.allSatisfy(\.isFinite) }

    /// The smallest interval that holds every channel's.
    public var hull: ClosedRange<Float> { lower.min()!...upper.max()! }

    /// The box of the same inputs after (x − mean)/std per channel: what to pass when the data given to
    /// an attack is already normalised and the raw data lay in `self`. Throws
    /// `ModelError.invalidSpec` when the channel counts differ (and neither is 1).
    public func normalized(by normalization: InputNormalization) throws -> InputBox {
        let n = max(channels, normalization.channels)
        guard channels == n || channels == 1, normalization.channels == n || normalization.channels == 1 else {
            throw ModelError.invalidSpec("the box has \(channels) channels, the normalisation \(normalization.channels)")
        }
        func at(_ values: [Float], _ c: Int) -> Float { values.count == 1 ? values[0] : values[c] }
        return try InputBox(lower: (0..<n).map { (at(lower, $0) - at(normalization.mean, $0)) / at(normalization.std, $0) },
                            upper: (0..<n).map { (at(upper, $0) - at(normalization.mean, $0)) / at(normalization.std, $0) })
    }

    /// The bounds of every feature of a row of `features` values. With an `image` layout the channel
    /// count must be 1 or the image's channels; without one it must divide `features` (channel c holds
    /// features c·features/C ..< (c + 1)·features/C). Throws `ModelError.shapeMismatch` saying what
    /// would fit. Cost: two arrays of `features` floats.
    public func perFeature(features: Int, image: ImageShape?) throws -> (lower: [Float], upper: [Float]) {
        let c = channels
        if c == 1 { return (Array(repeating: lower[0], count: features), Array(repeating: upper[0], count: features)) }
        if let image, c != image.channels {
            throw ModelError.shapeMismatch("the box has \(c) channels but the model's input is an image \(image) (give 1 or \(image.channels) intervals)")
        }
        guard features > 0, features % c == 0 else {
            throw ModelError.shapeMismatch("the box has \(c) channels, which do not split the model's \(features) input features into equal blocks")
        }
        let block = features / c
        return ((0..<features).map { lower[$0 / block] }, (0..<features).map { upper[$0 / block] })
    }

    /// `lo,hi` for one interval, `lo1,lo2,…:hi1,hi2,…` per channel: the `--box` syntax.
    public var description: String { Self.text(lower, upper) }

    static func text(_ lower: [Float], _ upper: [Float]) -> String {
        if lower.count == 1 && upper.count == 1 { return "\(lower[0]),\(upper[0])" }
        return lower.map { "\($0)" }.joined(separator: ",") + ":" + upper.map { "\($0)" }.joined(separator: ",")
    }
}
