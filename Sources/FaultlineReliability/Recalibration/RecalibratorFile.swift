import Foundation

/// A fitted recalibrator, saved as JSON (written to a temporary file, then renamed) so it can be fitted
/// on a calibration split once and applied later.
public enum Recalibrator: Sendable, Codable, Equatable {
    case temperature(TemperatureScaling)
    case vector(VectorScaling)
    case isotonic(IsotonicRegression)
    case platt(PlattScaling)
    case histogram(HistogramBinning)

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
