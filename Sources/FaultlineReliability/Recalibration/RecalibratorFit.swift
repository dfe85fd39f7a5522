import FaultlineLinalg

extension Recalibrator {
    /// The recalibration methods `fit` knows: temperature and vector scaling act on logits; isotonic
    /// regression and histogram binning map the top-1 confidence (`TopLabelRecalibration`).
    public enum Method: String, CaseIterable, Sendable {
        /// Temperature or vector scaling of logits; isotonic regression or histogram binning of the top-1 confidence.
        case temperature, vector, isotonic, histogram

        /// Whether the method needs logits (not only probabilities).
        public var needsLogits: Bool { self == .temperature || self == .vector }
    }

    /// Fits `method` on calibration scores: `logits` for temperature/vector scaling (required), else
    /// `probabilities` (softmax of the logits when only logits are given). `bins` is histogram binning's.
    /// - Throws: `ReliabilityError.invalidInput` when a logit method gets no logits; what the fit throws.
    public static func fit(_ method: Method, logits: Matrix<Float>?, probabilities: Matrix<Float>?, labels: [Int],
                           bins: Int = 15) throws -> Recalibrator {
        switch method {
        case .temperature, .vector:
            guard let logits else { throw ReliabilityError.invalidInput("\(method.rawValue) scaling needs logits") }
            return method == .temperature ? .temperature(try TemperatureScaling.fit(logits: logits, labels: labels))
                                          : .vector(try VectorScaling(logits: logits, labels: labels))
        case .isotonic, .histogram:
            guard let p = try probabilities ?? logits.map({ try Linalg.softmaxRows($0) }) else {
                throw ReliabilityError.invalidInput("\(method.rawValue) recalibration needs probabilities or logits")
            }
            let (confidence, correct) = try TopLabelRecalibration.confidenceAndCorrectness(p, labels: labels)
            return method == .isotonic ? .isotonic(try IsotonicRegression(x: confidence, y: correct.map { $0 ? 1 : 0 }))
                                       : .histogram(try HistogramBinning(confidences: confidence, correct: correct, bins: bins))
        }
    }

    /// Recalibrated logits, for the logit methods (temperature, vector); nil for the others.
    public func recalibrated(logits z: Matrix<Float>) -> Matrix<Float>? {
        switch self {
        case .temperature(let t): return t.apply(z)
        case .vector(let v): return v.apply(z)
        default: return nil
        }
    }

    /// Recalibrated probabilities: the top-label maps (isotonic, histogram) through
    /// `TopLabelRecalibration.apply`; nil for the logit methods (they need logits) and for Platt scaling
    /// (a map of binary decision values, not of a top-1 confidence).
    public func recalibrated(probabilities p: Matrix<Float>) -> Matrix<Float>? {
        switch self {
        case .isotonic(let iso): return TopLabelRecalibration.apply(p) { iso($0) }
        case .histogram(let h): return TopLabelRecalibration.apply(p) { h($0) }
        default: return nil
        }
    }
}

/// Recalibration of the top-1 confidence only (isotonic regression, histogram binning, Platt scaling on
/// the confidence), as scikit-learn's `CalibratedClassifierCV` does for one-vs-rest problems reduced to
/// the top label.
public enum TopLabelRecalibration {
    /// Each row's top-1 probability and whether its argmax equals the label.
    /// - Throws: `ReliabilityError.invalidInput` when the label count differs from the rows.
    public static func confidenceAndCorrectness(_ p: Matrix<Float>, labels: [Int]) throws -> (confidence: [Double], correct: [Bool]) {
        guard labels.count == p.rows else { throw ReliabilityError.invalidInput("\(labels.count) labels for \(p.rows) rows") }
        let predicted = try Linalg.rowArgmax(p)
        return ((0..<p.rows).map { Double(p.row($0).max() ?? 0) }, (0..<p.rows).map { predicted[$0] == labels[$0] })
    }

    /// Replaces each row's top probability q by `map(q)` clamped to [1e-6, 1 − 1e-6] and rescales the
    /// other entries proportionally so the row still sums to 1 (spread evenly when they were all 0). The
    /// first maximum is the top label, as `Linalg.rowArgmax`. O(N·C).
    public static func apply(_ p: Matrix<Float>, _ map: (Double) -> Double) -> Matrix<Float> {
        var out = p
        for i in 0..<p.rows {
            let row = p.row(i)
            var top = 0
            for k in 1..<max(p.columns, 1) where row[k] > row[top] { top = k }
            let old = Double(row[top]), new = min(max(map(old), 1e-6), 1 - 1e-6)
            let rest = 1 - old
            for k in 0..<p.columns where k != top {
                out[i, k] = rest > 0 ? Float(Double(row[k]) * (1 - new) / rest) : Float((1 - new) / Double(p.columns - 1))
            }
            out[i, top] = Float(new)
        }
        return out
    }
}
