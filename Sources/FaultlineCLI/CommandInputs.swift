import ArgumentParser
import FaultlineAnalysis
import FaultlineInputs
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import FaultlineShift
import FaultlineStatistics
import Foundation

/// The command line's side of input handling: typed errors become one line on stderr and exit code 2,
/// library data errors get the option and file they came from, and option syntax only the CLI has.
extension Inputs {
    /// Runs `body`, a library call on the data of `option path`, so that a data error from the library
    /// (which knows no file names, e.g. "features have 32 dimensions, the detector 64") names them.
    static func concerning<T>(_ option: String, _ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error where !(error is InputError || error is IOError) && inputErrorMessage(error) != nil {
            throw InputError("\(option) \(path): \(inputErrorMessage(error)!)")
        }
    }

    /// Throws an `InputError` naming `--box` when the box's channels do not fit the model's input, and
    /// naming `option path` (row, column, value and that feature's interval) for the first value of `x`
    /// outside the box.
    static func checkBox(_ box: InputBox, model: some DifferentiableClassifier, x: Matrix<Float>? = nil, _ option: String = "--x",
                         _ path: String = "", firstRow: Int = 0) throws {
        let bounds: (lower: [Float], upper: [Float])
        do { bounds = try box.perFeature(features: model.inputFeatures, image: model.inputImageShape) } catch ModelError.shapeMismatch(let message) {
            throw InputError("--box \(box): \(message)")
        }
        guard let x, x.columns == model.inputFeatures else { return }
        let d = x.columns
        if let bad = x.withUnsafeBufferPointer({ p in p.indices.first { !(p[$0] >= bounds.lower[$0 % d] && p[$0] <= bounds.upper[$0 % d]) } }) {
            let (i, j) = (bad / d, bad % d)
            throw InputError("\(option) \(path): row \(firstRow + i) column \(j) is \(x[i, j]), outside --box \(box) (\(bounds.lower[j])…\(bounds.upper[j]) "
                             + "for that feature); rescale the inputs or widen --box")
        }
    }

    /// Runs `body`, turning Faultline's typed errors into one clear line on stderr and exit code 2.
    static func guarded<T>(_ command: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            guard let message = inputErrorMessage(error) else { throw error }
            if Job.distributed { throw ExitCode(Job.fail(message, error: error, command: "faultline \(command)", code: 2)) }
            reportError(message, command: "faultline \(command)", exitCode: 2)
        }
        throw ExitCode(2)
    }

    /// The one-line message of an error that means bad input (Faultline's typed errors, `InputError`,
    /// a `LocalizedError`), or nil for anything else (`ExitCode`, ArgumentParser's errors).
    static func inputErrorMessage(_ error: Error) -> String? {
        switch error {
        case is IOError, is ModelError, is LinalgError, is AttackError, is ShiftError, is ReliabilityError, is StatisticsError, is CertificationError,
             is AnalysisError, is InputError, is GraphError, is RankFailure, is CommunicatorError:
            return "\(error)"
        default:
            return (error as? LocalizedError)?.errorDescription
        }
    }

    /// The image layout of rows of `features` values: `--shape CxHxW` if given (checked against the
    /// count), else the model's first convolution's input, else one square channel; nil when none fits.
    static func imageShape(_ shape: String?, model: some DifferentiableClassifier, features: Int) throws -> ImageShape? {
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
            throw InputError("--shifted takes NAME=X or NAME=X,Y with a name and one or two files, got '\(item)'")
        }
        return (String(parts[0]), files[0], files.count > 1 ? files[1] : nil)
    }
}

extension OptionCheck {
    /// Runs option checks from a command's `validate()`: an `InputError` becomes ArgumentParser's
    /// `ValidationError`, so bad option values are usage errors (exit 2, with the usage text) found at
    /// parse time, before any file is read.
    static func atParse(_ checks: () throws -> Void) throws {
        do { try checks() } catch let error as InputError { throw ValidationError(error.description) }
    }
}

/// The model of a command: `--model` (a `.safetensors` state_dict with its spec; ONNX graphs with
/// FaultlineONNX) or `--weights` (the same for a state_dict), and `--spec` when the file does not record
/// the architecture. Exactly one of `--model` and `--weights`; errors name the one given.
struct ModelOptions: ParsableArguments {
    @Option(help: "The model: .onnx (torch.onnx.export) or a .safetensors state_dict (PyTorch or `faultline train`).") var model: String?
    @Option(help: "Model weights (.safetensors); the same as --model.") var weights: String?
    @Option(help: ArgumentHelp("Architecture of a state_dict (default: the file's faultline_spec metadata).", discussion: ModelOptions.specHelp))
    var spec: String?
    @Option(help: ArgumentHelp("Normalise inputs per channel before the model: MEAN[,MEAN…]:STD[,STD…].",
                               discussion: "The model computes logits of (x − mean)/std (one value = every channel; k values split a row into k "
                                   + "channel blocks, C×H×W order). Attacks, --eps, the ε-ball and --box stay in the raw input space, as in "
                                   + "torchattacks and RobustBench. E.g. --normalize 0.4914,0.4822,0.4465:0.2470,0.2435,0.2616; write "
                                   + "--normalize=-0.5:2 when the first value is negative."))
    var normalize: String?

    /// The spec grammar, for `--help` (the README has the same table).
    static let specHelp = """
        Comma-separated layers, in forward order: input:CxHxW (first, for images), linear:IN-OUT, \
        conv2d:IN-OUT-K[-STRIDE[-PADDING]], batchnorm1d:F[-EPS], batchnorm2d:C[-EPS] (EPS default 1e-5, e.g. \
        batchnorm2d:64-1e-3), maxpool:K[-S], avgpool:K[-S], flatten, relu, leakyrelu[:SLOPE], tanh, sigmoid, gelu, \
        softmax, logsoftmax, dropout[:P]. A layer with tensors may name its module: linear:512-10@classifier.head, \
        conv2d:3-16-3-1-1@features.0 (its tensors are PREFIX.weight, PREFIX.bias, and for batchnorm running_mean, \
        running_var; a missing bias is zero). Without @PREFIX, an nn.Sequential's indices (0.weight, 2.weight) are \
        used, else each layer takes the module whose tensors have its shapes (ties of equal shapes go by the number \
        in the name: fc1 before fc2). Batchnorm is folded into the linear/conv2d before it at load. \
        faultline train writes the spec into the file's metadata (faultline_spec), so --spec can be left out; \
        a PyTorch file gets it with save_file(sd, path, metadata={"faultline_spec": SPEC}).
        """

    func validate() throws {
        guard (model == nil) != (weights == nil) else { throw ValidationError("give the model with --model FILE (or --weights FILE), once") }
        if let normalize { try OptionCheck.atParse { _ = try OptionCheck.normalization(normalize) } }
    }

    /// The option the model came from and its path.
    var source: (option: String, path: String) { model.map { ("--model", $0) } ?? ("--weights", weights ?? "") }

    /// The model as a classifier (for commands that need only forward and gradient passes): ONNX or state_dict.
    func classifier() throws -> any DifferentiableClassifier {
        try Inputs.classifier(source.path, spec: spec, option: source.option, normalization: normalize.map { try OptionCheck.normalization($0) })
    }
}

/// Messages for people go to stderr so stdout stays parseable.
func printError(_ message: String) {
    guard !Job.quiet else { return }  // ranks other than 0 of a distributed job print nothing
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Whether the command line asks for JSON (`--json` before any `--`): errors are then JSON too.
let jsonRequested = CommandLine.arguments.dropFirst().prefix { $0 != "--" }.contains("--json")

/// An error that ends the command, on stderr: `COMMAND: MESSAGE`, or with `--json` one JSON object
/// `{"error": {"command": …, "message": …, "exitCode": …}}` so that scripts parsing the output can parse
/// the failure too.
func reportError(_ message: String, command: String, exitCode: Int32) {
    guard !Job.quiet else { return }
    guard jsonRequested else { return printError(command.isEmpty ? message : "\(command): \(message)") }
    struct Body: Encodable { var command: String; var message: String; var exitCode: Int32 }
    struct Envelope: Encodable { var error: Body }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(Envelope(error: Body(command: command, message: message, exitCode: exitCode)))) ?? Data()
    FileHandle.standardError.write(data + Data("\n".utf8))
}
