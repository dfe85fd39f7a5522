import FaultlineNN
import Foundation

/// Checks of option values (command-line options or any named setting), one function per kind of value,
/// each throwing an `InputError` that names the option, the value given and what is allowed.
///
/// Counts that size work or memory (iterations, samples, resamples, members) have documented upper
/// bounds (`Limit`), so a few typed digits cannot ask for hours of work or terabytes of memory.
public enum OptionCheck {
    /// Documented upper bounds of counts given on the command line.
    public enum Limit {
        /// `--steps` of the attacks and of `certify`'s upper-bound attack.
        public static let steps = 100_000
        /// `--restarts` of PGD/APGD.
        public static let restarts = 1_000
        /// `--queries` of the Square attack.
        public static let queries = 1_000_000
        /// `drift --permutations` (the permutations are materialised up front: P × (N + M) indices).
        public static let permutations = 100_000
        /// `drift`: P × (N + M), the permutation indices held at once (2²⁷, 1 GiB).
        public static let permutationIndices = 1 << 27
        /// `certify --n` and `--n0` (forward passes per sample).
        public static let smoothingSamples = 10_000_000
        /// `train --epochs`.
        public static let epochs = 100_000
        /// `train --members`.
        public static let members = 1_000
        /// `train --batch-size`.
        public static let batchSize = 1 << 20
        /// `calibrate --bins` (one bin record each).
        public static let bins = 100_000
        /// `calibrate --bootstrap` (one metric pass per resample).
        public static let bootstrap = 100_000
        /// `bounds --samples` (2⁴⁰ ≈ 1.1·10¹²: beyond ~10¹⁴ the Clopper–Pearson quantiles lose their accuracy).
        public static let testSamples = 1 << 40
        /// `shift fit --k`.
        public static let neighbours = 100_000
    }

    /// `value` if it lies in `range`, else an error such as `--steps must be ≥ 1 (got 0)` or
    /// `--permutations must be ≤ 100000 (got 10000000)`.
    @discardableResult
    public static func count(_ value: Int, _ option: String, _ range: ClosedRange<Int>) throws -> Int {
        if value < range.lowerBound { throw InputError("\(option) must be ≥ \(range.lowerBound) (got \(value))") }
        if value > range.upperBound { throw InputError("\(option) must be ≤ \(range.upperBound) (got \(value))") }
        return value
    }

    /// Where a real-valued option may lie. Every kind excludes NaN and ±∞.
    public enum Interval: Sendable {
        /// Any finite number.
        case finite
        /// (0, ∞)
        case positive
        /// [0, ∞)
        case nonNegative
        /// [0, 1]
        case unit
        /// (0, 1), e.g. a significance level.
        case openUnit
        /// [0, 1), e.g. a momentum or a held-out share.
        case halfOpenUnit
        /// (0, 1], e.g. a quantile.
        case positiveUnit

        /// Whether `v` is finite and inside the interval.
        public func contains(_ v: Double) -> Bool {
            guard v.isFinite else { return false }
            switch self {
            case .finite: return true
            case .positive: return v > 0
            case .nonNegative: return v >= 0
            case .unit: return v >= 0 && v <= 1
            case .openUnit: return v > 0 && v < 1
            case .halfOpenUnit: return v >= 0 && v < 1
            case .positiveUnit: return v > 0 && v <= 1
            }
        }

        /// The interval in words, for messages ("a finite number > 0").
        public var text: String {
            switch self {
            case .finite: return "a finite number"
            case .positive: return "a finite number > 0"
            case .nonNegative: return "a finite number ≥ 0"
            case .unit: return "a number in [0, 1]"
            case .openUnit: return "a number in (0, 1)"
            case .halfOpenUnit: return "a number in [0, 1)"
            case .positiveUnit: return "a number in (0, 1]"
            }
        }
    }

    /// `value` if it lies in `interval` (never NaN or ±∞), else `--lr must be a finite number > 0 (got nan)`.
    @discardableResult
    public static func real<T: BinaryFloatingPoint>(_ value: T, _ option: String, _ interval: Interval) throws -> T {
        guard interval.contains(Double(value)) else { throw InputError("\(option) must be \(interval.text) (got \(value))") }
        return value
    }

    /// A comma-separated list of numbers in `interval` (e.g. `--eps 0.01,0.1`), sorted; an empty list, an
    /// empty item (`0.1,,0.2`) or a non-number is an error naming the option and the item.
    public static func numbers(_ text: String, _ option: String, _ interval: Interval = .nonNegative) throws -> [Float] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !(items.count == 1 && items[0].isEmpty) else { throw InputError("\(option) needs at least one number (got an empty list)") }
        return try items.map { item -> Float in
            guard let v = Float(item), interval.contains(Double(v)) else {
                throw InputError("\(option): '\(item)' is not \(interval.text)")
            }
            return v
        }.sorted()
    }

    /// `--box LO,HI` (one interval for every feature, finite LO < HI) or `--box LO1,LO2,…:HI1,HI2,…`
    /// (one interval per channel of channel-major rows; one value on either side stands for every
    /// channel; at most 65536 values each), e.g. `--box=-1,1` or `--box 0,0,0:1,0.5,1`.
    public static func box(_ text: String, _ option: String = "--box") throws -> InputBox {
        func numbers(_ part: Substring) -> [Float?] {
            part.split(separator: ",", omittingEmptySubsequences: false).map { Float($0.trimmingCharacters(in: .whitespaces)) }
        }
        let usage = "\(option) must be LO,HI or per channel LO1,LO2,…:HI1,HI2,… with finite LO < HI (got '\(text.prefix(200))')"
        let halves = text.split(separator: ":", omittingEmptySubsequences: false)
        switch halves.count {
        case 1:
            let items = numbers(halves[0])
            guard items.count == 2, let lo = items[0], let hi = items[1], lo.isFinite, hi.isFinite, lo < hi else { throw InputError(usage) }
            return InputBox(lo...hi)
        case 2:
            let (lower, upper) = (numbers(halves[0]), numbers(halves[1]))
            guard lower.count <= 65_536, upper.count <= 65_536, lower.allSatisfy({ $0 != nil }), upper.allSatisfy({ $0 != nil }) else {
                throw InputError(usage)
            }
            do { return try InputBox(lower: lower.map { $0! }, upper: upper.map { $0! }) } catch ModelError.invalidSpec(let message) {
                throw InputError("\(option): \(message) (got '\(text.prefix(200))')")
            }
        default:
            throw InputError(usage)
        }
    }

    /// `--normalize MEANS:STDS`: comma-separated per-channel means, a colon, comma-separated stds (one
    /// value stands for every channel), e.g. `0.485,0.456,0.406:0.229,0.224,0.225` or `0.5:0.25`. At
    /// most 65536 values each; means finite, stds finite and > 0. (A leading minus needs
    /// `--normalize=-0.5:2`, else the value reads as an option.)
    public static func normalization(_ text: String, _ option: String = "--normalize") throws -> InputNormalization {
        let halves = text.split(separator: ":", omittingEmptySubsequences: false)
        let lists = halves.map { $0.split(separator: ",", omittingEmptySubsequences: false).map { Float($0.trimmingCharacters(in: .whitespaces)) } }
        guard halves.count == 2, lists.allSatisfy({ !$0.isEmpty && $0.count <= 65_536 && $0.allSatisfy { $0 != nil } }) else {
            throw InputError("\(option) must be MEAN[,MEAN…]:STD[,STD…] (per channel, one value for all), e.g. 0.485,0.456,0.406:0.229,0.224,0.225 (got '\(text.prefix(200))')")
        }
        do {
            return try InputNormalization(mean: lists[0].map { $0! }, std: lists[1].map { $0! })
        } catch let error as ModelError {
            throw InputError("\(option): \(error.description.replacingOccurrences(of: "invalid model spec: ", with: ""))")
        }
    }

    /// `CxHxW` with positive dimensions whose product (checked for overflow) is `features`.
    public static func imageShape(_ text: String, _ option: String, features: Int) throws -> (channels: Int, height: Int, width: Int) {
        let d = text.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard d.count == 3, let c = d[0], let h = d[1], let w = d[2], c > 0, h > 0, w > 0,
              case let (hw, o1) = h.multipliedReportingOverflow(by: w), !o1,
              case let (chw, o2) = c.multipliedReportingOverflow(by: hw), !o2, chw == features else {
            throw InputError("\(option) \(text) must be CxHxW with C·H·W = \(features) features")
        }
        return (c, h, w)
    }

    /// Refuses an output directory path (`report --out`, `train --export-split`) that is empty or
    /// exists as anything but a directory (a regular file, a FIFO, a link to a file): such a path is
    /// never replaced or deleted, only an earlier output directory is.
    public static func directoryTarget(_ path: String, _ option: String) throws {
        guard !path.isEmpty else { throw InputError("\(option) needs a directory path (got an empty one)") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw InputError("\(option) \(path) exists and is not a directory; it is left alone: choose another path")
        }
    }
}
