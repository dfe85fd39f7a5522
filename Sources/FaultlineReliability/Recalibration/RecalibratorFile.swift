import Foundation

/// A fitted recalibrator, saved as JSON (written to a temporary file, then renamed) so it can be fitted
/// on a calibration split once and applied later.
public enum Recalibrator: Sendable, Codable, Equatable {
    /// Temperature scaling of logits.
    case temperature(TemperatureScaling)
    /// Vector scaling of logits.
    case vector(VectorScaling)
    /// Isotonic regression of the top-1 confidence.
    case isotonic(IsotonicRegression)
    /// Platt scaling of a binary score.
    case platt(PlattScaling)
    /// Histogram binning of the top-1 confidence.
    case histogram(HistogramBinning)

    /// Writes the recalibrator as JSON to `path` (atomically). Throws `ReliabilityError.invalidInput` naming `path` when it cannot be written.
    public func save(to path: String) throws {
        let data = try JSONEncoder().encode(self)
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ReliabilityError.invalidInput("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Throws `ReliabilityError.invalidInput` for unreadable or malformed files.
    public static func load(_ path: String) throws -> Recalibrator {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ReliabilityError.invalidInput("cannot read \(path): \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(Recalibrator.self, from: data) } catch {
            throw ReliabilityError.invalidInput("\(path) is not a Faultline recalibrator file: \(error)")
        }
    }
}
