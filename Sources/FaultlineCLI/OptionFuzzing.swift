import FaultlineInputs
import FaultlineNN

/// Entry points of the option fuzz targets (`Fuzz/Sources/FuzzOptions`, `FuzzOptionValues`), not API:
/// whole argument vectors through ArgumentParser and every command's `validate()`, and one string
/// through every option-value checker the commands' `validate()` use — number lists, boxes, image
/// shapes, `--shifted` items, model specs (planned, never built), `--normalize` values and numeric range checks — so that
/// the checkers meet far more inputs than full parses (≈ 400/s under ASan) can give them.
@_spi(Fuzzing) public enum OptionFuzzing {
    /// Runs every checker on `text`; each must return a value or throw, never trap.
    public static func checkValue(_ text: String) {
        for interval in [OptionCheck.Interval.nonNegative, .positive, .unit, .openUnit, .positiveUnit, .finite] {
            _ = try? OptionCheck.numbers(text, "--eps", interval)
        }
        _ = try? OptionCheck.box(text)
        for features in [0, 1, 64, 3 * 32 * 32, Int.max] { _ = try? OptionCheck.imageShape(text, "--shape", features: features) }
        _ = try? Inputs.shiftedSet(text)
        _ = try? ModelSpec.plan(text)
        if let normalization = try? OptionCheck.normalization(text) {
            for (features, image) in [(1, nil), (12, nil), (3 * 4 * 4, ImageShape(channels: 3, height: 4, width: 4))] as [(Int, ImageShape?)] {
                _ = try? normalization.perFeature(features: features, image: image)
            }
        }
        if let value = Double(text) {
            for interval in [OptionCheck.Interval.nonNegative, .positive, .unit, .openUnit, .halfOpenUnit, .positiveUnit, .finite] {
                _ = try? OptionCheck.real(value, "--x", interval)
                _ = try? OptionCheck.real(Float(value), "--x", interval)
            }
        }
        if let value = Int(text) {
            for range in [1...OptionCheck.Limit.steps, 0...OptionCheck.Limit.permutations, 1...Int.max, Int.min...Int.max] {
                _ = try? OptionCheck.count(value, "--n", range)
            }
        }
    }

    /// The whole command line: ArgumentParser's parse and every command's `validate()`; never runs it.
    public static func parse(_ arguments: [String]) {
        _ = try? FaultlineCommand.parseAsRoot(arguments)
    }
}
