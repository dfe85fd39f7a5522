import Foundation

/// Integer class labels read from the files users have: a `.npy` (any integer dtype, or a float dtype
/// holding integral values), one array of an `.npz` or `.safetensors` file, a CSV (its only column, or
/// a column named by header or index) or an IDX label file (MNIST's `*-labels-idx1-ubyte`, plain or gzip).
///
/// Every label is checked before it is converted, so no input traps: NaN, ±∞, fractional values and
/// values beyond `Int` are "not an integer"; negative labels and labels at or above the bound are out
/// of range. The bound is `classes` when given, else 2³¹ (labels must fit an `Int32`, as PyTorch's
/// and NumPy's usual label dtypes do). Errors are `IOError`s naming the file and the index of the first
/// bad label (its row; CSV cells that are not numbers are named by line and column), e.g.
/// `y.npy: label at index 3 is 2.5, not an integer`. Cost: one pass over the labels after the read.
public enum Labels {
    /// The bound used without a class count: labels must fit an `Int32`.
    public static let int32Bound = Int(Int32.max) + 1

    /// Reads and checks the labels of `path`. `column` picks a CSV's label column (by header name or
    /// index; negative indices count from the end); without it a CSV must have exactly one column.
    /// `array` names one array of an `.npz` or `.safetensors` file (`FILE.npz:NAME` works too).
    /// `classes`, when given, must be positive, and every label must be below it.
    /// - Throws: `IOError` (`.invalidValue`, `.shapeMismatch`, or what the format's reader throws), naming
    ///   the file and the first bad label's index.
    public static func read(_ path: String, column: CSV.LabelColumn? = nil, array: String? = nil, classes: Int? = nil) throws -> [Int] {
        if let classes, classes <= 0 {
            throw IOError(.invalidValue, file: path, "the class count must be positive (got \(classes))")
        }
        let values = try self.values(path, column: column, array: array)
        let bound = classes ?? int32Bound
        let reason = classes == nil ? "labels must fit an Int32" : "there are \(classes!) classes"
        return try check(values, file: path, below: bound, reason: reason)
    }

    /// `read` for a file URL.
    public static func read(url: URL, column: CSV.LabelColumn? = nil, array: String? = nil, classes: Int? = nil) throws -> [Int] {
        try read(url.path, column: column, array: array, classes: classes)
    }

    /// The raw label values of `path` (one per row, unchecked) in the shapes labels come in: a rank-1
    /// array or an N × 1 column, or one CSV column. Callers with their own bound (`Inputs.labels`)
    /// pass them to `check`.
    /// - Throws: `IOError.shapeMismatch` for any other shape (naming it), and what the reader throws.
    public static func values(_ path: String, column: CSV.LabelColumn? = nil, array: String? = nil) throws -> [Double] {
        let lower = ArrayFile.split(path, array: array).file.lowercased()
        let isCSV = lower.hasSuffix(".csv") || lower.hasSuffix(".tsv")
        if let column {
            guard isCSV else {
                throw IOError(.invalidValue, file: path, "a label column can only be named in a .csv or .tsv file")
            }
            let table = try CSV.read(path, options: CSV.Options(delimiter: lower.hasSuffix(".tsv") ? "\t" : ",", labelColumn: column))
            guard let labels = table.labels else { throw IOError(.invalidValue, file: path, "no label column \(column)") }
            return labels.map(Double.init)
        }
        let t = try ArrayFile.tensor(path, array: array)
        guard t.rank == 1 || (t.rank == 2 && t.shape[1] == 1) else {
            throw IOError(.shapeMismatch, file: path, "labels have shape \(t.shape); expected one label per row (shape [N] or [N, 1])"
                                                      + (isCSV ? "; name the label column of a CSV with several" : ""))
        }
        return t.values(as: Double.self)
    }

    /// Checks that every value is an integer in 0..<`bound` and converts it. `reason` says where the
    /// bound comes from; it ends the out-of-range message in parentheses.
    /// - Throws: `IOError.invalidValue` naming `file` and the index of the first bad value: "label at
    ///   index i is v, not an integer" (NaN, ±∞, fractional, beyond `Int`) or "label at index i is L,
    ///   outside 0..<bound (reason)".
    public static func check(_ values: [Double], file: String, below bound: Int, reason: String) throws -> [Int] {
        var labels = [Int]()
        labels.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            guard v.isFinite, v.rounded() == v, let label = Int(exactly: v) else {
                throw IOError(.invalidValue, file: file, "label at index \(i) is \(v), not an integer")
            }
            guard label >= 0, label < bound else {
                throw IOError(.invalidValue, file: file, "label at index \(i) is \(label), outside 0..<\(bound) (\(reason))")
            }
            labels.append(label)
        }
        return labels
    }
}

extension CSV.LabelColumn: CustomStringConvertible {
    /// `'name'` or `index i`, as messages name the column.
    public var description: String {
        switch self {
        case .name(let n): return "'\(n)'"
        case .index(let i): return "at index \(i)"
        }
    }
}
