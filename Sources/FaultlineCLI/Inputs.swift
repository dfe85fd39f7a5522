import ArgumentParser
import FaultlineAnalysis
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import FaultlineShift
import FaultlineStatistics
import Foundation

/// Reading user inputs for the subcommands, with errors that end the process with exit code 2.
///
/// Every reader takes the option the path came from (`--x`, `--labels`, …): its errors name the option
/// and the file, and the row where one applies, e.g. `--y y.npy: label at index 3 is 1e+19, …`.
enum Inputs {
    /// The largest class count any command accepts (2²⁰): per-class arrays are sized by it.
    static let maxClasses = 1 << 20
    /// Without a model or probabilities to give the class count, labels may be as large as
    /// max(number of labels, this) − 1: small files may still use any of the first 256 classes.
    static let minimumDataClasses = 256

    /// Features from .npy/.npz(first array or `name`)/.safetensors/CSV/IDX, as an N × D float32 matrix
    /// (higher ranks flattened per sample). `FILE.npz:NAME` names one array of an archive.
    /// An array with no columns, or with no rows unless `allowEmpty`, is an error naming `option` and the file;
    /// with `finite`, so is a NaN or ±∞ (naming its row and column).
    static func features(_ path: String, option: String? = nil, array: String? = nil, allowEmpty: Bool = false, finite: Bool = false) throws -> Matrix<Float> {
        try naming(option) {
            // A .npy is read through the memory-mapped reader: no copy for little-endian C-order float32
            // data, a chunked conversion otherwise, so a large file costs at most its own size.
            let (file, name) = ArrayFile.split(path, array: array)
            let shape: [Int], m: Matrix<Float>
            if file.lowercased().hasSuffix(".npy") && name == nil {
                try FileAccess.checkRegularFile(file)
                shape = try NPY.read(file, headerOnly: true).shape
                m = shape.isEmpty ? Matrix(rows: 1, columns: 1) : try NPY.readMatrix(file, as: Float.self)
            } else {
                let t = try tensor(path, array: array)
                (shape, m) = (t.shape, t.rank >= 1 ? try t.matrix(Float.self, name: path) : Matrix(rows: 1, columns: 1))
            }
            guard !shape.isEmpty else { throw IOError(.shapeMismatch, file: path, "a scalar (shape []), expected rows of features") }
            guard m.columns > 0 else { throw IOError(.shapeMismatch, file: path, "shape \(shape) has no features per row") }
            guard m.rows > 0 || allowEmpty else { throw IOError(.shapeMismatch, file: path, "shape \(shape) has no rows (an empty input)") }
            if finite, let bad = m.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
                let value = m.withUnsafeBufferPointer { $0[bad] }
                throw IOError(.invalidValue, file: path, "row \(bad / m.columns), column \(bad % m.columns) is \(value); the values must be finite")
            }
            return m
        }
    }

    /// Integer class labels from the same formats (any integer or integral float dtype): a rank-1
    /// array or an N×1 column. Every label must be an integer in 0..<bound, where the bound is
    /// `classes` when the caller knows the class count (a model's outputs, the columns of
    /// probabilities), else max(number of labels, `minimumDataClasses`); never above `maxClasses`.
    /// Errors name `option`, the file and the index of the first bad label. Converting with
    /// `Int(exactly:)` after these checks cannot trap (1e19, NaN, ±∞ are refused).
    static func labels(_ path: String, option: String? = nil, classes: Int? = nil, array: String? = nil) throws -> [Int] {
        try naming(option) {
            let t = try tensor(path, array: array)
            guard t.rank == 1 || (t.rank == 2 && t.shape[1] == 1) else {
                throw IOError(.shapeMismatch, file: path, "labels have shape \(t.shape); expected one label per row (shape [N] or [N, 1])")
            }
            let values = t.values(as: Double.self)
            let bound = min(classes ?? max(values.count, minimumDataClasses), maxClasses)
            let source = classes == nil
                ? "without a model the class count comes from the data: labels must be < max(\(values.count) labels, \(minimumDataClasses)), at most \(maxClasses)"
                : "the model or the probabilities have \(classes!) classes"
            return try values.enumerated().map { i, v -> Int in
                guard v.isFinite, v.rounded() == v, let label = Int(exactly: v) else {
                    throw IOError(.invalidValue, file: path, "label at index \(i) is \(v), not an integer")
                }
                guard label >= 0, label < bound else {
                    throw IOError(.invalidValue, file: path, "label at index \(i) is \(label), outside 0..<\(bound) (\(source))")
                }
                return label
            }
        }
    }

    /// Features and labels of the same samples (`--x`/`--y` and the like): both read and checked as
    /// by `features` (finite values) and `labels` (labels < `classes` when given), with the same number of rows.
    /// With `model` (input features, class count, spec), the rows must have the model's input width.
    static func labeled(x: String, _ xOption: String, y: String, _ yOption: String,
                        model: ModelShape?) throws -> (Matrix<Float>, [Int]) {
        let features = try Inputs.features(x, option: xOption, finite: true)
        if let model { try modelInput(features, xOption, x, model: model) }
        let classes = model?.classes
        let labels = try Inputs.labels(y, option: yOption, classes: classes)
        guard labels.count == features.rows else {
            throw CLIError("\(xOption) \(x) has \(features.rows) rows but \(yOption) \(y) has \(labels.count) labels")
        }
        return (features, labels)
    }

    /// Rows of `features` (from `option path`) must have the model's input width.
    static func modelInput(_ features: Matrix<Float>, _ option: String, _ path: String, model: ModelShape) throws {
        guard features.columns == model.inputs else {
            throw CLIError("\(option) \(path) has \(features.columns) features per row but the model (\(model.spec)) takes \(model.inputs)")
        }
    }

    /// The same class count in two probability (or logit) matrices, e.g. calibration and test sets.
    static func sameClasses(_ a: Matrix<Float>, _ aOption: String, _ aPath: String, _ b: Matrix<Float>, _ bOption: String, _ bPath: String) throws {
        guard a.columns == b.columns else {
            throw CLIError("\(aOption) \(aPath) has \(a.columns) classes (columns) but \(bOption) \(bPath) has \(b.columns)")
        }
    }

    /// A weight file and optional spec (`--weights`, `--spec`) as a model; the spec's size is checked
    /// against the file before anything is allocated (`Sequential.load`).
    static func model(weights: String, spec: String?) throws -> Sequential {
        do {
            return try naming("--weights") {
                try spec.map { try Sequential.load(weights: weights, spec: $0) } ?? Sequential.load(weights: weights)
            }
        } catch ModelError.invalidSpec(let message) {
            throw CLIError("--spec: \(message)")
        } catch ModelError.weights(let message) {
            throw CLIError("--weights \(message)")  // the message begins with the file
        }
    }

    /// A spec given as an option, parsed and size-checked without allocating (`ModelSpec.plan`).
    static func plan(_ spec: String, option: String = "--spec") throws -> ModelSpec.Plan {
        do {
            return try ModelSpec.plan(spec)
        } catch ModelError.invalidSpec(let message) {
            throw CLIError("\(option): \(message)")
        }
    }

    /// Runs `body`, a library call on the data of `option path`, so that a data error from the library
    /// (which knows no file names, e.g. "features have 32 dimensions, the detector 64") names them.
    static func concerning<T>(_ option: String, _ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error where !(error is CLIError || error is IOError) && inputErrorMessage(error) != nil {
            throw CLIError("\(option) \(path): \(inputErrorMessage(error)!)")
        }
    }

    /// Runs `body`, prefixing the file of an `IOError` with the option it came from (`--x x.npy: …`).
    static func naming<T>(_ option: String?, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as IOError {
            if let option, !error.file.hasPrefix("--") { error.file = "\(option) \(error.file)" }
            throw error
        }
    }

    /// One array of a file by its extension (`ArrayFile`, which also reads `FILE.npz:NAME`).
    static func tensor(_ path: String, array: String?) throws -> Tensor {
        try ArrayFile.tensor(path, array: array)
    }

    /// Runs `body`, turning Faultline's typed errors into one clear line on stderr and exit code 2.
    static func guarded<T>(_ command: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            guard let message = inputErrorMessage(error) else { throw error }
            printError("faultline \(command): \(message)")
        }
        throw ExitCode(2)
    }

    /// The one-line message of an error that means bad input (Faultline's typed errors, `CLIError`,
    /// a `LocalizedError`), or nil for anything else (`ExitCode`, ArgumentParser's errors).
    static func inputErrorMessage(_ error: Error) -> String? {
        switch error {
        case is IOError, is ModelError, is LinalgError, is AttackError, is ShiftError, is ReliabilityError, is StatisticsError, is CertificationError,
             is AnalysisError, is CLIError:
            return "\(error)"
        default:
            return (error as? LocalizedError)?.errorDescription
        }
    }
}

/// What the inputs of a model must look like: features per row, class count (labels are below it), and
/// the spec for messages. From a loaded model or from a planned spec (`train`, before building).
struct ModelShape {
    var inputs: Int
    var classes: Int
    var spec: String
    init(_ model: Sequential) { (inputs, classes, spec) = (model.inputFeatures, model.outputFeatures, model.spec) }
    init(_ plan: ModelSpec.Plan, spec: String) { (inputs, classes, self.spec) = (plan.inputFeatures, plan.outputFeatures, spec) }
}

/// A bad command-line input the library cannot see (e.g. two files that disagree).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Inputs {
    /// The image layout of rows of `features` values: `--shape CxHxW` if given (checked against the
    /// count), else the model's first convolution's input, else one square channel; nil when none fits.
    static func imageShape(_ shape: String?, model: Sequential, features: Int) throws -> ImageShape? {
        if let shape {
            let d = try OptionCheck.imageShape(shape, "--shape", features: features)
            return ImageShape(channels: d.channels, height: d.height, width: d.width)
        }
        return ImageShape.infer(model: model, features: features)
    }

    /// One `--shifted NAME=X` or `NAME=X,Y` item: a non-empty name and one or two non-empty paths.
    static func shiftedSet(_ item: String) throws -> (name: String, x: String, y: String?) {
        let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let files = parts.count == 2 ? parts[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
        guard parts.count == 2, !parts[0].isEmpty, (1...2).contains(files.count), files.allSatisfy({ !$0.isEmpty }) else {
            throw CLIError("--shifted takes NAME=X or NAME=X,Y with a name and one or two files, got '\(item)'")
        }
        return (String(parts[0]), files[0], files.count > 1 ? files[1] : nil)
    }
}
