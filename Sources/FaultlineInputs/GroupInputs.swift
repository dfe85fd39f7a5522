import FaultlineIO
import FaultlineLinalg

/// Per-row group ids (slices) and per-row 0/1 outcomes read from files, with errors that name the
/// option, the file and the first bad index.
extension Inputs {
    /// One integer id per row: a rank-1 or N×1 array of any integer or integral float dtype (any integer
    /// of magnitude ≤ 2⁵³, negative allowed), or with `column` the named column of a CSV file with a
    /// header (the other columns must be numeric, as for any CSV input). NaN, ±∞ and fractions are
    /// errors naming the index (or the CSV line).
    public static func groupIds(_ path: String, option: String, column: String? = nil) throws -> [Int] {
        try naming(option) {
            if let column {
                let lower = ArrayFile.split(path).file.lowercased()
                guard lower.hasSuffix(".csv") || lower.hasSuffix(".tsv") else {
                    throw InputError("\(option) \(path): --slice-column needs a CSV file with a header")
                }
                let table = try CSV.read(path, options: CSV.Options(delimiter: lower.hasSuffix(".tsv") ? "\t" : ",", header: .present, labelColumn: .name(column)))
                return table.labels ?? []
            }
            let t = try tensor(path, array: nil)
            guard t.rank == 1 || (t.rank == 2 && t.shape[1] == 1) else {
                throw IOError(.shapeMismatch, file: path, "slice ids have shape \(t.shape); expected one id per row (shape [N] or [N, 1])")
            }
            return try t.values(as: Double.self).enumerated().map { i, v in
                guard v.isFinite, v.rounded() == v, abs(v) <= 0x1p53, let id = Int(exactly: v) else {
                    throw IOError(.invalidValue, file: path, "slice id at index \(i) is \(v), not an integer of magnitude ≤ 2^53")
                }
                return id
            }
        }
    }

    /// One 0/1 outcome per row (rank 1 or N×1, any numeric dtype): 1 = true. Any other value is an error
    /// naming the index.
    public static func outcomes(_ path: String, option: String) throws -> [Bool] {
        try naming(option) {
            let t = try tensor(path, array: nil)
            guard t.rank == 1 || (t.rank == 2 && t.shape[1] == 1) else {
                throw IOError(.shapeMismatch, file: path, "outcomes have shape \(t.shape); expected one 0/1 value per row")
            }
            return try t.values(as: Double.self).enumerated().map { i, v in
                guard v == 0 || v == 1 else { throw IOError(.invalidValue, file: path, "value at index \(i) is \(v); outcomes must be 0 or 1") }
                return v == 1
            }
        }
    }

    /// Rows of probabilities from `--probs`-style options: probabilities checked as by
    /// `probabilities(_:option:renormalize:)`, or logits (finite; softmax per row) when `logits` is set.
    public static func scores(probs: String?, probsOption: String, logits: String?, logitsOption: String, renormalize: Bool) throws -> (Matrix<Float>, option: String, path: String) {
        switch (probs, logits) {
        case let (p?, nil): return (try probabilities(p, option: probsOption, renormalize: renormalize), probsOption, p)
        case let (nil, z?): return (try Linalg.softmaxRows(try Inputs.logits(z, option: logitsOption)), logitsOption, z)
        case (nil, nil): throw InputError("give \(probsOption) FILE or \(logitsOption) FILE")
        default: throw InputError("give \(probsOption) or \(logitsOption), not both")
        }
    }
}
