import FaultlineIO
import FaultlineLinalg
import FaultlineStatistics
import Foundation

/// A saved reference for drift monitoring: fitted once on reference features (`faultline drift fit`),
/// then used to test any number of current batches or windows (`faultline drift check`) without the
/// reference file.
///
/// It holds the feature names, each feature's reference values sorted (what the two-sample KS test
/// needs to be exact: D and its p-value equal `DriftTests.kolmogorovSmirnov` on the raw samples), and
/// the detector with its decision rule: a per-feature two-sample KS test whose p-values are adjusted
/// over the features (Benjamini–Hochberg by default, or Bonferroni) and compared with α.
///
/// File format (`.safetensors`, version 1): tensor `sorted_reference` (float32, D × N, each row
/// ascending and finite); metadata `faultline_drift_reference` = "1" (the format version),
/// `detector` = "ks", `alpha`, `correction` ("fdr" or "bonferroni"), `ks_method` (see
/// `DriftTests.KolmogorovSmirnovMethod`) and `feature_names` (a JSON array of D strings). Reading
/// checks all of it (`load`): sizes come from the safetensors header, which is checked against the
/// file's size before anything is allocated.
public struct DriftReference: Sendable, Equatable {
    /// The version `save` writes; `load` reads it and refuses later ones.
    public static let formatVersion = 1

    /// One name per feature (column), in column order.
    public var names: [String]
    /// D × N: row f holds the N reference values of feature f, ascending.
    public var sortedReference: Matrix<Float>
    /// Significance level of the per-feature decision (adjusted p-value < α).
    public var alpha: Double
    /// How the per-feature p-values are adjusted (Benjamini–Hochberg or Bonferroni).
    public var correction: DriftTests.Correction
    /// Where the KS p-values come from (SciPy's methods).
    public var method: DriftTests.KolmogorovSmirnovMethod

    /// The number of features (D).
    public var features: Int { sortedReference.rows }
    /// The number of reference rows (N).
    public var referenceRows: Int { sortedReference.columns }

    /// Fits a reference on N × D features (N ≥ 1, D ≥ 1, all finite). `names`, when given, must hold D
    /// names; otherwise features are named by their column index ("0", "1", …). O(D·N log N).
    /// Throws `ShiftError.invalidInput` naming the problem.
    public init(reference x: Matrix<Float>, names: [String]? = nil, alpha: Double = 0.05,
                correction: DriftTests.Correction = .benjaminiHochberg, method: DriftTests.KolmogorovSmirnovMethod = .auto) throws {
        guard x.rows > 0, x.columns > 0 else { throw ShiftError.invalidInput("the reference has shape \(x.rows)×\(x.columns); it needs rows and features") }
        guard alpha > 0, alpha < 1 else { throw ShiftError.invalidInput("alpha must be in (0, 1), not \(alpha)") }
        if let names, names.count != x.columns {
            throw ShiftError.invalidInput("\(names.count) feature names for \(x.columns) features")
        }
        var sorted = Matrix<Float>(uninitializedRows: x.columns, columns: x.rows)
        try x.withUnsafeBufferPointer { src in
            if let bad = src.firstIndex(where: { !$0.isFinite }) {
                throw ShiftError.invalidInput("reference row \(bad / x.columns), column \(bad % x.columns) is \(src[bad]); values must be finite")
            }
            sorted.withUnsafeMutableBufferPointer { out in
                let d = x.columns, n = x.rows
                for i in 0..<n { for f in 0..<d { out[f * n + i] = src[i * d + f] } }
                let base = UncheckedPointer(out.baseAddress!)
                Linalg.parallelForEach(d) { f in
                    var row = UnsafeMutableBufferPointer(start: base.value + f * n, count: n)
                    row.sort()
                }
            }
        }
        self.names = names ?? (0..<x.columns).map(String.init)
        (sortedReference, self.alpha, self.correction, self.method) = (sorted, alpha, correction, method)
    }

    /// A reference from its parts, checked as `load` checks a file (sorted finite rows, D names, α).
    public init(names: [String], sortedReference: Matrix<Float>, alpha: Double, correction: DriftTests.Correction,
                method: DriftTests.KolmogorovSmirnovMethod) throws {
        try Self.validate(names: names, sorted: sortedReference, alpha: alpha, source: "drift reference")
        (self.names, self.sortedReference, self.alpha, self.correction, self.method) = (names, sortedReference, alpha, correction, method)
    }

    static func validate(names: [String], sorted: Matrix<Float>, alpha: Double, source: String) throws {
        guard sorted.rows > 0, sorted.columns > 0 else {
            throw ShiftError.invalidInput("\(source): sorted_reference has shape \(sorted.rows)×\(sorted.columns); it needs features and reference values")
        }
        guard names.count == sorted.rows else {
            throw ShiftError.invalidInput("\(source): \(names.count) feature names for \(sorted.rows) features")
        }
        guard alpha > 0, alpha < 1 else { throw ShiftError.invalidInput("\(source): alpha \(alpha) is not in (0, 1)") }
        try sorted.withUnsafeBufferPointer { p in
            let n = sorted.columns
            for f in 0..<sorted.rows {
                let row = UnsafeBufferPointer(rebasing: p[(f * n)..<((f + 1) * n)])
                if let bad = row.firstIndex(where: { !$0.isFinite }) {
                    throw ShiftError.invalidInput("\(source): feature \(f) reference value \(bad) is \(row[bad]); refit the reference")
                }
                if let bad = (1..<max(n, 1)).first(where: { row[$0] < row[$0 - 1] }) {
                    throw ShiftError.invalidInput("\(source): feature \(f) reference values are not sorted (at \(bad)); refit the reference")
                }
            }
        }
    }

    // MARK: - File

    /// Writes the reference as a `.safetensors` file in the format above (atomically: a temporary file and a rename). Throws `IOError` naming `path`.
    public func save(to path: String) throws {
        let json = try JSONEncoder().encode(names)
        let metadata = [
            "faultline_drift_reference": String(Self.formatVersion), "detector": "ks", "alpha": String(alpha),
            "correction": correction.rawValue, "ks_method": method.rawValue,
            "feature_names": String(decoding: json, as: UTF8.self),
        ]
        try SafeTensors.write(SafeTensors.File(tensors: [("sorted_reference", Tensor(sortedReference))], metadata: metadata), to: path)
    }

    /// Reads and checks a reference written by `save`. Throws `IOError` for unreadable or malformed
    /// safetensors files and `ShiftError.invalidInput` naming `path` and the missing, malformed or
    /// inconsistent part (wrong kind or a later version, names, α, unsorted or non-finite values).
    public static func load(_ path: String) throws -> DriftReference {
        try load(SafeTensors.read(path), name: path)
    }

    /// `load(_:)` for a file already decoded (`SafeTensors.decode`); `name` stands for it in errors.
    public static func load(_ file: SafeTensors.File, name path: String = "drift reference") throws -> DriftReference {
        guard let version = file.metadata["faultline_drift_reference"] else {
            throw ShiftError.invalidInput("\(path) is not a Faultline drift reference (no faultline_drift_reference metadata); make one with `faultline drift fit`")
        }
        guard let v = Int(version), v >= 1 else { throw ShiftError.invalidInput("\(path): format version '\(version)' is not a positive integer") }
        guard v <= formatVersion else {
            throw ShiftError.invalidInput("\(path): format version \(v) is newer than this Faultline reads (\(formatVersion)); upgrade Faultline or refit")
        }
        guard file.metadata["detector"] == "ks" else {
            throw ShiftError.invalidInput("\(path): detector '\(file.metadata["detector"] ?? "missing")' is not one this version knows (ks)")
        }
        guard let alpha = file.metadata["alpha"].flatMap(Double.init) else { throw ShiftError.invalidInput("\(path) has no numeric metadata 'alpha'") }
        guard let correction = file.metadata["correction"].flatMap(DriftTests.Correction.init(rawValue:)) else {
            throw ShiftError.invalidInput("\(path): metadata 'correction' must be fdr or bonferroni, not '\(file.metadata["correction"] ?? "missing")'")
        }
        guard let method = file.metadata["ks_method"].flatMap(DriftTests.KolmogorovSmirnovMethod.init(rawValue:)) else {
            throw ShiftError.invalidInput("\(path): metadata 'ks_method' must be one of auto, exact, asymptotic, limiting")
        }
        guard let namesJSON = file.metadata["feature_names"], let names = try? JSONDecoder().decode([String].self, from: Data(namesJSON.utf8)) else {
            throw ShiftError.invalidInput("\(path): metadata 'feature_names' is missing or not a JSON array of strings")
        }
        guard let tensor = file["sorted_reference"] else { throw ShiftError.invalidInput("\(path) has no tensor 'sorted_reference'") }
        guard tensor.rank == 2, tensor.dtype == .float32 else {
            throw ShiftError.invalidInput("\(path): sorted_reference must be a 2-d float32 tensor, it is \(tensor.dtype) of shape \(tensor.shape)")
        }
        let sorted = try tensor.matrix(Float.self, name: path)
        try validate(names: names, sorted: sorted, alpha: alpha, source: path)
        return DriftReference(unchecked: names, sorted, alpha, correction, method)
    }

    private init(unchecked names: [String], _ sorted: Matrix<Float>, _ alpha: Double, _ correction: DriftTests.Correction,
                 _ method: DriftTests.KolmogorovSmirnovMethod) {
        (self.names, sortedReference, self.alpha, self.correction, self.method) = (names, sorted, alpha, correction, method)
    }

    // MARK: - Checking

    /// Tests M × D current features against the reference: per feature the two-sample KS statistic
    /// and p-value (equal to `DriftTests.kolmogorovSmirnov` on the raw samples), the p-values adjusted
    /// over the D features (`adjustedPValues`), and the decision of `DriftTests.rejected` (the same as
    /// adjusted p < α except for rounding when a p-value lies exactly on a BH boundary). Throws for a width
    /// other than D, no rows, or non-finite values (naming the row and column).
    /// O(D·M log M + D·(M + N)) plus the p-values; the features run in parallel, each with one M-value
    /// scratch column (results independent of the thread count).
    public func check(_ current: Matrix<Float>) throws -> DriftCheck {
        guard current.columns == features else {
            throw ShiftError.invalidInput("the current data has \(current.columns) features per row, the reference \(features)")
        }
        guard current.rows > 0 else { throw ShiftError.invalidInput("the current data has no rows") }
        return try current.withUnsafeBufferPointer { p in
            if let bad = p.firstIndex(where: { !$0.isFinite }) {
                throw ShiftError.invalidInput("current row \(bad / features), column \(bad % features) is \(p[bad]); values must be finite")
            }
            return check(rows: p.baseAddress!, count: current.rows)
        }
    }

    /// The check of `count` contiguous finite rows of D values at `rows` (in any order: the test does
    /// not depend on it, so a ring buffer of the last rows serves as a window).
    func check(rows: UnsafePointer<Float>, count: Int) -> DriftCheck {
        let d = features, n = referenceRows
        var results = [DriftTests.TestResult](repeating: DriftTests.TestResult(statistic: 0, pValue: 1), count: d)
        let source = UncheckedPointer(UnsafeMutablePointer(mutating: rows))
        sortedReference.withUnsafeBufferPointer { ref in
            let reference = UncheckedPointer(UnsafeMutablePointer(mutating: ref.baseAddress!))
            results.withUnsafeMutableBufferPointer { out in
                let slots = UncheckedPointer(out.baseAddress!)
                Linalg.parallelForEach(d) { f in
                    var column = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                        for i in 0..<count { buffer[i] = source.value[i * d + f] }
                        initialized = count
                    }
                    column.sort()
                    slots.value[f] = column.withUnsafeBufferPointer { c in
                        DriftTests.kolmogorovSmirnovSorted(UnsafeBufferPointer(start: reference.value + f * n, count: n), c, method: method)
                    }
                }
            }
        }
        let p = results.map(\.pValue)
        let adjusted = DriftTests.adjustedPValues(p, correction: correction)
        let rejected = Set(DriftTests.rejected(pValues: p, alpha: alpha, correction: correction))
        let rows = (0..<d).map {
            DriftCheck.Feature(name: names[$0], statistic: results[$0].statistic, pValue: p[$0], adjustedPValue: adjusted[$0], drifted: rejected.contains($0))
        }
        return DriftCheck(features: rows, rows: count, referenceRows: n, alpha: alpha, correction: correction)
    }
}

/// The result of testing one batch or window against a `DriftReference`.
public struct DriftCheck: Sendable, Codable, Equatable {
    /// One feature's test.
    public struct Feature: Sendable, Codable, Equatable {
        /// The feature's name.
        public var name: String
        /// The two-sample KS statistic D.
        public var statistic: Double
        /// The KS p-value before adjustment.
        public var pValue: Double
        /// The p-value adjusted over the features (Benjamini–Hochberg or Bonferroni).
        public var adjustedPValue: Double
        /// The correction rejects this feature's null at α (adjustedPValue < α).
        public var drifted: Bool

        /// A feature's result.
        public init(name: String, statistic: Double, pValue: Double, adjustedPValue: Double, drifted: Bool) {
            (self.name, self.statistic, self.pValue, self.adjustedPValue, self.drifted) = (name, statistic, pValue, adjustedPValue, drifted)
        }
    }

    /// One result per feature, in column order.
    public var features: [Feature]
    /// Rows of the current batch and of the reference.
    public var rows: Int
    /// Rows of the reference.
    public var referenceRows: Int
    /// The significance level of the decisions.
    public var alpha: Double
    /// The correction the adjusted p-values come from.
    public var correction: DriftTests.Correction

    /// Whether any feature drifted.
    public var drift: Bool { features.contains { $0.drifted } }
    /// How many features drifted.
    public var driftedCount: Int { features.filter(\.drifted).count }
    /// The feature with the smallest adjusted p-value (ties: the larger statistic, then the first).
    public var worst: Feature {
        features.min { ($0.adjustedPValue, -$0.statistic) < ($1.adjustedPValue, -$1.statistic) }!
    }
}

extension DriftTests {
    /// The two-sample KS test on samples already sorted ascending (finite), exactly as
    /// `kolmogorovSmirnov(_:_:method:)` computes it on the unsorted samples (D in integers,
    /// ties handled as SciPy, the same p-value methods). O(m + n) plus the p-value. Both samples must
    /// be non-empty (an empty one gives D = 0, p = 1).
    public static func kolmogorovSmirnovSorted(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeBufferPointer<Float>,
                                               method: KolmogorovSmirnovMethod = .auto) -> TestResult {
        guard x.count > 0, y.count > 0 else { return TestResult(statistic: 0, pValue: 1) }
        return kolmogorovSmirnovOfSorted(x, y, method: method)
    }

    /// p-values adjusted for testing them all: Bonferroni min(1, F·p); Benjamini–Hochberg (step-up),
    /// q₍ᵢ₎ = min over j ≥ i of min(1, F·p₍ⱼ₎/j) with p₍₁₎ ≤ … ≤ p₍F₎ (R's `p.adjust(method = "BH")`).
    /// q < α for the features `rejected(pValues:alpha:correction:)` returns (up to rounding when some
    /// p₍ⱼ₎ equals α·j/F exactly). O(F log F).
    public static func adjustedPValues(_ p: [Double], correction: Correction) -> [Double] {
        let f = Double(p.count)
        switch correction {
        case .bonferroni:
            return p.map { min(1, $0 * f) }
        case .benjaminiHochberg:
            // FaultlineStatistics' step-up adjustment; KS p-values always lie in [0, 1], so it cannot throw.
            return (try? MultipleTesting.adjust(p, .bh)) ?? p.map { _ in 1 }
        }
    }
}
