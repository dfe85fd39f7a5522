import FaultlineIO
import FaultlineLinalg

/// Fitted detectors saved as `.safetensors` (float32 tensors, parameters in the metadata), so a
/// user fits once on training features and scores later or elsewhere. Files are written atomically.
///
/// Metadata `faultline_detector` names the kind: `mahalanobis` (tensors `factor`, `whitening`, `centre`
/// (float64), `whitened_means`, `mean_norms`; `shrinkage`), `per-class-mahalanobis` (`whitenings` stacked
/// K·d × d, `centres` K × d (float64), `whitened_means` K × d, `log_determinants`; `shrinkage`,
/// `log_determinant`); files written before centres existed have none and load with zero centres, `relative-mahalanobis` (the same with `class_`/`background_` prefixes),
/// `knn` (`reference`, normalised; `k`), `vim` (`weight`, `bias`, `origin`, `residual_basis`; `alpha`).
/// Any kind may carry a calibrated flagging threshold (`DetectorThreshold`): metadata `threshold`,
/// `threshold_fpr`, `threshold_samples`.
public enum DetectorFile {
    /// A fitted detector of any kind, as a file holds it.
    public enum Detector: Sendable {
        /// The tied-covariance Mahalanobis score.
        case mahalanobis(MahalanobisDetector)
        /// Per-class covariances (untied Mahalanobis or Gaussian likelihood).
        case perClassMahalanobis(PerClassMahalanobisDetector)
        /// Mahalanobis relative to a background Gaussian.
        case relativeMahalanobis(RelativeMahalanobisDetector)
        /// Distance to the k-th nearest training feature.
        case knn(KNNDetector)
        /// Virtual-logit matching.
        case vim(ViMDetector)

        /// Scores features with whichever detector this is (higher = more out-of-distribution).
        public func score(_ x: Matrix<Float>) throws -> [Float] {
            switch self {
            case .mahalanobis(let d): return try d.score(x)
            case .perClassMahalanobis(let d): return try d.score(x)
            case .relativeMahalanobis(let d): return try d.score(x)
            case .knn(let d): return try d.score(x)
            case .vim(let d): return try d.score(x)
            }
        }
    }

    /// Writes `detector` (and its flagging threshold, if any) to `path`, atomically.
    public static func save(_ detector: Detector, threshold: DetectorThreshold? = nil, to path: String) throws {
        var tensors: [(name: String, tensor: Tensor)] = []
        var metadata: [String: String] = [:]
        if let threshold {
            metadata["threshold"] = "\(threshold.value)"
            metadata["threshold_fpr"] = "\(threshold.falsePositiveRate)"
            metadata["threshold_samples"] = "\(threshold.calibrationSamples)"
        }
        func mahalanobis(_ d: MahalanobisDetector, prefix: String) {
            tensors += [(prefix + "factor", Tensor(d.factor)), (prefix + "whitening", Tensor(d.whitening)),
                        (prefix + "centre", Tensor(shape: [d.centre.count], values: d.centre)), (prefix + "whitened_means", Tensor(d.whitenedMeans)),
                        (prefix + "mean_norms", Tensor(shape: [d.meanNorms.count], values: d.meanNorms))]
            metadata[prefix + "shrinkage"] = String(d.shrinkage)
        }
        switch detector {
        case .mahalanobis(let d):
            metadata["faultline_detector"] = "mahalanobis"
            mahalanobis(d, prefix: "")
        case .perClassMahalanobis(let d):
            metadata["faultline_detector"] = "per-class-mahalanobis"
            metadata["shrinkage"] = String(d.shrinkage)
            metadata["log_determinant"] = String(d.includeLogDeterminant)
            let dim = d.dimension
            tensors = [("whitenings", Tensor(shape: [d.classes * dim, dim], values: d.whitenings.flatMap(\.elements))),
                       ("centres", Tensor(shape: [d.classes, dim], values: d.centres.flatMap { $0 })),
                       ("whitened_means", Tensor(shape: [d.classes, dim], values: d.whitenedMeans.flatMap(\.elements))),
                       ("log_determinants", Tensor(shape: [d.classes], values: d.logDeterminants))]
        case .relativeMahalanobis(let d):
            metadata["faultline_detector"] = "relative-mahalanobis"
            mahalanobis(d.classes, prefix: "class_")
            mahalanobis(d.background, prefix: "background_")
        case .knn(let d):
            metadata["faultline_detector"] = "knn"
            metadata["k"] = String(d.k)
            tensors = [("reference", Tensor(d.reference))]
        case .vim(let d):
            metadata["faultline_detector"] = "vim"
            metadata["alpha"] = String(d.alpha)
            tensors = [("weight", Tensor(d.weight)), ("bias", Tensor(shape: [d.bias.count], values: d.bias)),
                       ("origin", Tensor(shape: [d.origin.count], values: d.origin)), ("residual_basis", Tensor(d.residualBasis))]
        }
        try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: metadata), to: path)
    }

    /// The flagging threshold stored with a detector, or nil when it was saved without one. Throws
    /// `ShiftError.invalidInput` naming `path` when the threshold metadata is incomplete or invalid
    /// (a NaN value, a rate outside (0, 1), a sample count that is not a positive whole number).
    public static func threshold(in file: SafeTensors.File, name path: String = "detector") throws -> DetectorThreshold? {
        let keys = ["threshold", "threshold_fpr", "threshold_samples"]
        let present = keys.filter { file.metadata[$0] != nil }
        if present.isEmpty { return nil }
        guard present.count == 3, let value = Float(file.metadata["threshold"]!), !value.isNaN,
              let rate = Double(file.metadata["threshold_fpr"]!), rate > 0, rate < 1,
              let samples = Int(file.metadata["threshold_samples"]!), samples >= 1 else {
            throw ShiftError.invalidInput("\(path): invalid threshold metadata (threshold, threshold_fpr in (0, 1), threshold_samples ≥ 1); refit with `shift fit --fpr`")
        }
        return DetectorThreshold(value: value, falsePositiveRate: rate, calibrationSamples: samples)
    }

    /// Reads a detector written by `save`. Throws `IOError` for unreadable files and
    /// `ShiftError.invalidInput` naming the missing or inconsistent part.
    public static func load(_ path: String) throws -> Detector {
        try load(SafeTensors.read(path), name: path)
    }

    /// Reads a detector from a file already in memory (decoded with `SafeTensors.decode`, e.g. from
    /// downloaded bytes), with the checks and errors of `load(_:)`; `name` stands for the source in
    /// error messages.
    public static func load(_ file: SafeTensors.File, name path: String = "detector") throws -> Detector {
        func matrix(_ name: String) throws -> Matrix<Float> {
            guard let t = file[name] else { throw ShiftError.invalidInput("\(path) has no tensor '\(name)'") }
            let m = try t.matrix(Float.self)
            guard m.isFinite else { throw ShiftError.invalidInput("\(path): tensor '\(name)' contains NaN or infinite values; refit the detector") }
            return m
        }
        func vector(_ name: String) throws -> [Float] {
            guard let t = file[name] else { throw ShiftError.invalidInput("\(path) has no tensor '\(name)'") }
            let v = t.values(as: Double.self).map(Float.init)
            guard v.allSatisfy(\.isFinite) else { throw ShiftError.invalidInput("\(path): tensor '\(name)' contains NaN or infinite values; refit the detector") }
            return v
        }
        /// A float64 vector of `count` values, or zeros when the file predates it.
        func optionalVector(_ name: String, count: Int) throws -> [Double] {
            guard let t = file[name] else { return [Double](repeating: 0, count: count) }
            let values = t.values(as: Double.self)
            guard values.count == count, values.allSatisfy(\.isFinite) else {
                throw ShiftError.invalidInput("\(path): tensor '\(name)' must hold \(count) finite values, it holds \(values.count)")
            }
            return values
        }
        func number(_ key: String) throws -> Double {
            guard let v = file.metadata[key].flatMap(Double.init) else { throw ShiftError.invalidInput("\(path) has no numeric metadata '\(key)'") }
            return v
        }
        func mahalanobis(_ prefix: String) throws -> MahalanobisDetector {
            let factor = try matrix(prefix + "factor"), whitening = try matrix(prefix + "whitening")
            let means = try matrix(prefix + "whitened_means"), norms = try vector(prefix + "mean_norms")
            guard factor.rows == factor.columns, whitening.rows == factor.rows, whitening.columns == factor.rows,
                  means.columns == factor.rows, norms.count == means.rows else {
                throw ShiftError.invalidInput("\(path): inconsistent Mahalanobis shapes")
            }
            return MahalanobisDetector(factor: factor, whitening: whitening, centre: try optionalVector(prefix + "centre", count: factor.rows),
                                       whitenedMeans: means, meanNorms: norms, shrinkage: try number(prefix + "shrinkage"))
        }
        switch file.metadata["faultline_detector"] {
        case "mahalanobis":
            return .mahalanobis(try mahalanobis(""))
        case "per-class-mahalanobis":
            let stacked = try matrix("whitenings"), means = try matrix("whitened_means")
            let logDets = try vector("log_determinants").map(Double.init), dim = stacked.columns
            guard means.columns == dim, stacked.rows == means.rows * dim, logDets.count == means.rows, means.rows > 0 else {
                throw ShiftError.invalidInput("\(path): inconsistent per-class Mahalanobis shapes")
            }
            let centres = try optionalVector("centres", count: means.rows * dim)
            return .perClassMahalanobis(PerClassMahalanobisDetector(
                whitenings: (0..<means.rows).map { stacked.sliceRows(($0 * dim)..<(($0 + 1) * dim)) },
                centres: (0..<means.rows).map { Array(centres[($0 * dim)..<(($0 + 1) * dim)]) },
                whitenedMeans: (0..<means.rows).map { means.sliceRows($0..<($0 + 1)) },
                logDeterminants: logDets, shrinkage: try number("shrinkage"),
                includeLogDeterminant: file.metadata["log_determinant"] == "true"))
        case "relative-mahalanobis":
            return .relativeMahalanobis(RelativeMahalanobisDetector(classes: try mahalanobis("class_"), background: try mahalanobis("background_")))
        case "knn":
            let reference = try matrix("reference"), rawK = try number("k")
            guard let k = Int(exactly: rawK), k >= 1, k <= reference.rows else {
                throw ShiftError.invalidInput("\(path): k = \(rawK) must be a whole number in 1…\(reference.rows) (the reference rows)")
            }
            return .knn(KNNDetector(normalisedReference: reference, k: k))
        case "vim":
            let weight = try matrix("weight"), bias = try vector("bias"), origin = try vector("origin"), basis = try matrix("residual_basis")
            guard bias.count == weight.rows, origin.count == weight.columns, basis.rows == weight.columns else {
                throw ShiftError.invalidInput("\(path): inconsistent ViM shapes")
            }
            return .vim(ViMDetector(weight: weight, bias: bias, origin: origin, residualBasis: basis, alpha: try number("alpha")))
        case let other:
            throw ShiftError.invalidInput("\(path) is not a Faultline detector file (metadata faultline_detector = \(other ?? "missing"))")
        }
    }
}
