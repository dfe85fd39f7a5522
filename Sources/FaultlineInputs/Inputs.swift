import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import Foundation

/// The input-validation layer: reading arrays, labels, logits, probabilities and models from the files
/// users have, each checked as what it is meant to be before any kernel sees it. The command line reads
/// every input through it; Swift users can call it to get the same checks and messages.
///
/// Every reader takes the option (or any other name) the path came from (`--x`, `--labels`, …): its errors
/// (`IOError`, `InputError`, `ModelError`) name it and the file, and the row and column where one applies,
/// e.g. `--y y.npy: label at index 3 is 1e+19, …`. Sizes are checked against the file and the limits below
/// before anything is allocated.
public enum Inputs {
    /// The largest class count any command accepts (2²⁰): per-class arrays are sized by it.
    public static let maxClasses = 1 << 20
    /// Without a model or probabilities to give the class count, labels may be as large as
    /// max(number of labels, this) − 1: small files may still use any of the first 256 classes.
    public static let minimumDataClasses = 256

    /// Features from .npy/.npz(first array or `name`)/.safetensors/CSV/IDX, as an N × D float32 matrix
    /// (higher ranks flattened per sample). `FILE.npz:NAME` names one array of an archive.
    /// An array with no columns, or with no rows unless `allowEmpty`, is an error naming `option` and the file;
    /// with `finite`, so is a NaN or ±∞ (naming its row and column).
    public static func features(_ path: String, option: String? = nil, array: String? = nil, allowEmpty: Bool = false, finite: Bool = false) throws -> Matrix<Float> {
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
    public static func labels(_ path: String, option: String? = nil, classes: Int? = nil, array: String? = nil) throws -> [Int] {
        try naming(option) {
            // One implementation of the reading and the checks: FaultlineIO's `Labels`; the bound is this layer's.
            let values = try Labels.values(path, array: array)
            let bound = min(classes ?? max(values.count, minimumDataClasses), maxClasses)
            let source = classes == nil
                ? "without a model the class count comes from the data: labels must be < max(\(values.count) labels, \(minimumDataClasses)), at most \(maxClasses)"
                : "the model or the probabilities have \(classes!) classes"
            return try Labels.check(values, file: path, below: bound, reason: source)
        }
    }

    /// Features and labels of the same samples (`--x`/`--y` and the like): both read and checked as
    /// by `features` (finite values) and `labels` (labels < `classes` when given), with the same number of rows.
    /// With `labelColumn` instead of `y`, `x` is a CSV whose column of that header name (or 0-based
    /// index; negative counts from the end) holds the labels and the other columns the features
    /// (`--label-column`). With `model` (input features, class count, spec), the rows must have the
    /// model's input width.
    public static func labeled(x: String, _ xOption: String, y: String?, _ yOption: String, labelColumn: String? = nil,
                               model: ModelShape?) throws -> (Matrix<Float>, [Int]) {
        let classes = model?.classes
        if let labelColumn {
            guard y == nil else { throw InputError("give \(yOption) or --label-column, not both") }
            let (features, labels) = try csvWithLabels(x, option: xOption, labelColumn: labelColumn, classes: classes)
            if let model { try modelInput(features, xOption, x, model: model) }
            return (features, labels)
        }
        guard let y else { throw InputError("\(yOption) is required (or --label-column COLUMN when \(xOption) is a CSV with its labels)") }
        let features = try Inputs.features(x, option: xOption, finite: true)
        if let model { try modelInput(features, xOption, x, model: model) }
        let labels = try Inputs.labels(y, option: yOption, classes: classes)
        guard labels.count == features.rows else {
            throw InputError("\(xOption) \(x) has \(features.rows) rows but \(yOption) \(y) has \(labels.count) labels")
        }
        return (features, labels)
    }

    /// A CSV whose column `labelColumn` (header name, or integer index) holds integer labels: the other
    /// columns as finite float32 features, the labels checked as by `labels` (< `classes` when given).
    /// Errors name `option` and the file, and the row of a bad label.
    public static func csvWithLabels(_ path: String, option: String, labelColumn: String, classes: Int?) throws -> (Matrix<Float>, [Int]) {
        guard path.lowercased().hasSuffix(".csv") || path.lowercased().hasSuffix(".tsv") else {
            throw InputError("--label-column needs \(option) to be a .csv file (got \(path)); give the labels with their own file instead")
        }
        return try naming(option) {
            let column: CSV.LabelColumn = Int(labelColumn).map { .index($0) } ?? .name(labelColumn)
            let table = try CSV.read(path, options: CSV.Options(delimiter: path.lowercased().hasSuffix(".tsv") ? "\t" : ",", labelColumn: column))
            guard let labels = table.labels else { throw IOError(.invalidValue, file: path, "no label column '\(labelColumn)'") }
            guard table.features.rows > 0, table.features.columns > 0 else {
                throw IOError(.shapeMismatch, file: path, "no feature rows or columns besides the label column '\(labelColumn)'")
            }
            let bound = min(classes ?? max(labels.count, minimumDataClasses), maxClasses)
            if let i = labels.firstIndex(where: { $0 < 0 || $0 >= bound }) {
                throw IOError(.invalidValue, file: path, "row \(i): label \(labels[i]) in column '\(labelColumn)' is outside 0..<\(bound)")
            }
            let features = table.features.converted(to: Float.self)
            if let bad = features.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
                throw IOError(.invalidValue, file: path, "row \(bad / features.columns), feature column \(bad % features.columns) is not a finite float32 value")
            }
            return (features, labels)
        }
    }

    /// Rows of `features` (from `option path`) must have the model's input width.
    public static func modelInput(_ features: Matrix<Float>, _ option: String, _ path: String, model: ModelShape) throws {
        guard features.columns == model.inputs else {
            throw InputError("\(option) \(path) has \(features.columns) features per row but the model (\(model.spec)) takes \(model.inputs)")
        }
    }

    /// The same class count in two probability (or logit) matrices, e.g. calibration and test sets.
    public static func sameClasses(_ a: Matrix<Float>, _ aOption: String, _ aPath: String, _ b: Matrix<Float>, _ bOption: String, _ bPath: String) throws {
        guard a.columns == b.columns else {
            throw InputError("\(aOption) \(aPath) has \(a.columns) classes (columns) but \(bOption) \(bPath) has \(b.columns)")
        }
    }

    /// A weight file and optional spec (`--weights`, `--spec`) as a model; the spec's size is checked
    /// against the file before anything is allocated (`Sequential.load`). Errors name `option` and the file.
    public static func model(weights: String, spec: String?, option: String = "--weights") throws -> Sequential {
        do {
            return try naming(option) {
                try spec.map { try Sequential.load(weights: weights, spec: $0) } ?? Sequential.load(weights: weights)
            }
        } catch ModelError.invalidSpec(let message) {
            throw InputError("--spec: \(message)")
        } catch ModelError.weights(let message) {
            throw InputError("\(option) \(message)")  // the message begins with the file
        }
    }

    /// The model at `path` as a classifier: an ONNX graph (`.onnx`, `ONNXModel.load`: operators, opsets,
    /// shapes and initializer sizes checked before anything is allocated) or a `.safetensors` state_dict
    /// with its spec (`model(weights:spec:option:)`). `spec` applies to state_dicts only. Errors name
    /// `option` and the file (`ONNXError` also the node and operator).
    public static func classifier(_ path: String, spec: String?, option: String) throws -> any DifferentiableClassifier {
        try naming(option) { try PyTorchPickle.refuse(path) }  // by magic bytes, whatever the extension
        if !path.lowercased().hasSuffix(".onnx"), spec == nil, isGraphParameters(path) {  // a graph fine-tuned by `faultline train --model`
            return try naming(option) { try ONNXModel.load(parameters: path) }
        }
        guard path.lowercased().hasSuffix(".onnx") else { return try model(weights: path, spec: spec, option: option) }
        guard spec == nil else { throw InputError("--spec describes a state_dict; \(option) \(path) is an ONNX graph, which records its architecture") }
        return try naming(option) { try ONNXModel.load(path: path) }
    }

    /// Whether `path` is a .safetensors of a fine-tuned ONNX graph's parameters (its metadata names the
    /// base graph); false for anything unreadable (the caller's own reader reports that).
    public static func isGraphParameters(_ path: String) -> Bool {
        guard let file = try? SafeTensors.read(path) else { return false }
        return ONNXModel.baseGraph(of: file, path: path) != nil
    }

    /// The graph `faultline train --model` fine-tunes and the ONNX file its parameters will name: an
    /// `.onnx` file, or a parameter file train wrote before (training goes on from it). Errors name
    /// `option` and the file.
    public static func graphToTrain(_ path: String, option: String) throws -> (model: GraphModel, base: String) {
        try naming(option) { try PyTorchPickle.refuse(path) }
        if path.lowercased().hasSuffix(".onnx") { return (try naming(option) { try ONNXModel.load(path: path) }, path) }
        let file = try naming(option) { try SafeTensors.read(path) }
        guard let base = ONNXModel.baseGraph(of: file, path: path) else {
            throw InputError("\(option) \(path): fine-tuning needs an ONNX graph (.onnx) or the parameters `faultline train --model` saved; "
                             + "to train a new model give --spec instead")
        }
        return (try naming(option) { try ONNXModel.load(parameters: path) }, base)
    }

    /// `classifier(_:spec:option:)` computing on (x − mean)/std when `normalization` is given, with
    /// attacks, the ε-ball and the box in the raw input space: an ONNX graph gets two constant nodes in
    /// front (`GraphModel.normalizingInput`, still a graph with its feature taps), any other model is
    /// wrapped (`NormalizedClassifier`). A normalisation that does not fit the model's input is an
    /// error naming `normalizeOption` and the model file.
    public static func classifier(_ path: String, spec: String?, option: String, normalization: InputNormalization?,
                                  normalizeOption: String = "--normalize") throws -> any DifferentiableClassifier {
        let model = try classifier(path, spec: spec, option: option)
        guard let normalization else { return model }
        do {
            if let graph = model as? GraphModel { return try graph.normalizingInput(normalization) }
            return try normalized(model, normalization)
        } catch let error as ModelError {
            throw InputError("\(normalizeOption) does not fit \(option) \(path): \(error.description.replacingOccurrences(of: "shape mismatch: ", with: ""))")
        }
    }

    static func normalized<M: DifferentiableClassifier>(_ model: M, _ normalization: InputNormalization) throws -> any DifferentiableClassifier {
        try NormalizedClassifier(model, normalization: normalization)
    }

    /// A spec given as an option, parsed and size-checked without allocating (`ModelSpec.plan`).
    public static func plan(_ spec: String, option: String = "--spec") throws -> ModelSpec.Plan {
        do {
            return try ModelSpec.plan(spec)
        } catch ModelError.invalidSpec(let message) {
            throw InputError("\(option): \(message)")
        }
    }

    /// Runs `body`, prefixing the file of an `IOError` with the option it came from (`--x x.npy: …`).
    public static func naming<T>(_ option: String?, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as IOError {
            if let option, !error.file.hasPrefix("--") { error.file = "\(option) \(error.file)" }
            throw error
        }
    }

    /// One array of a file by its extension (`ArrayFile`, which also reads `FILE.npz:NAME`).
    public static func tensor(_ path: String, array: String?) throws -> Tensor {
        try ArrayFile.tensor(path, array: array)
    }

}

/// What the inputs of a model must look like: features per row, class count (labels are below it), and
/// the spec for messages. From a loaded model or from a planned spec (`train`, before building).
public struct ModelShape: Sendable {
    /// Features per input row (the model's input width).
    public var inputs: Int
    /// The number of output classes: labels must be below it.
    public var classes: Int
    /// The model's spec, quoted in messages.
    public var spec: String
    /// The shape of a loaded model (a `Sequential` or a `GraphModel`).
    public init(_ model: some DifferentiableClassifier) { (inputs, classes, spec) = (model.inputFeatures, model.outputFeatures, model.spec) }
    /// The shape a spec will have once built, from its plan (nothing allocated).
    public init(_ plan: ModelSpec.Plan, spec: String) { (inputs, classes, self.spec) = (plan.inputFeatures, plan.outputFeatures, spec) }
}

