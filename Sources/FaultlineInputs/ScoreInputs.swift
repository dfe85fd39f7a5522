import FaultlineIO
import FaultlineLinalg

/// Logits and probabilities read from files, checked as what the option says they are, with errors that
/// name the option, the file, the row and the column.
extension Inputs {
    /// N×C logits from `path`: every value must be finite.
    public static func logits(_ path: String, option: String) throws -> Matrix<Float> {
        let z = try features(path, option: option)
        try requireFiniteLogits(z, option: option, path: path)
        return z
    }

    /// Throws naming the first non-finite logit.
    /// `rowsPerMember`: `z` stacks members of that many rows each, and the message names the member.
    public static func requireFiniteLogits(_ z: Matrix<Float>, option: String, path: String, member: Int? = nil, rowsPerMember: Int? = nil) throws {
        guard let at = z.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) else { return }
        var (row, column) = at.quotientAndRemainder(dividingBy: max(z.columns, 1))
        var member = member
        if let n = rowsPerMember { (member, row) = (row / n, row % n) }
        let value = z.withUnsafeBufferPointer { $0[at] }
        throw InputError("\(option) \(path): \(member.map { "member \($0), " } ?? "")logit[\(row), \(column)] = \(value) is not finite; logits must be finite numbers")
    }

    /// N×C probabilities from `path`: values in [0, 1] whose rows sum to 1 within 1e-3 (the library's
    /// tolerance). With `renormalize`, rows of finite non-negative values with a positive sum are divided
    /// by their sum instead of being checked against 1.
    public static func probabilities(_ path: String, option: String, renormalize: Bool) throws -> Matrix<Float> {
        var p = try features(path, option: option)
        try checkProbabilities(&p, option: option, path: path, renormalize: renormalize)
        return p
    }

    /// Checks (and with `renormalize`, rescales) the rows of `p` in place; the error names the option,
    /// the file, the row and the column, and says how to fix it. Reads only, unless it renormalises (so a
    /// memory-mapped input is not copied). `rowsPerMember`: `p` stacks members of that many rows each,
    /// and messages name the member and its row.
    /// `firstRow`: `p` holds rows firstRow… of the file (a shard), and messages number rows in the file.
    public static func checkProbabilities(_ p: inout Matrix<Float>, option: String, path: String, renormalize: Bool, member: Int? = nil,
                                   rowsPerMember: Int? = nil, firstRow: Int = 0) throws {
        let c = p.columns, rows = p.rows
        func place(_ i: Int) -> String {
            if let n = rowsPerMember { return "member \(i / n), row \(i % n)" }
            return (member.map { "member \($0), " } ?? "") + "row \(firstRow + i)"
        }
        func entry(_ i: Int, _ j: Int) -> String {
            if let n = rowsPerMember { return "member \(i / n), probability[\(i % n), \(j)]" }
            return (member.map { "member \($0), " } ?? "") + "probability[\(firstRow + i), \(j)]"
        }
        guard rows > 0, c > 0 else { throw InputError("\(option) \(path): no probabilities (\(rows)×\(c))") }
        var sums = renormalize ? [Double](repeating: 0, count: rows) : []
        try p.withUnsafeBufferPointer { buffer in
            for i in 0..<rows {
                let row = buffer.baseAddress! + i * c
                var sum = 0.0
                for j in 0..<c {
                    let v = row[j]
                    guard v.isFinite, v >= 0, renormalize || v <= 1 else {
                        throw InputError("\(option) \(path): \(entry(i, j)) = \(v) is not in [0, 1]\(renormalize ? "" : "; pass logits with --logits, or --renormalize for unnormalised scores")")
                    }
                    sum += Double(v)
                }
                if renormalize {
                    guard sum > 0 else { throw InputError("\(option) \(path): \(place(i)) sums to 0 and cannot be renormalised") }
                    sums[i] = sum
                } else if abs(sum - 1) > 1e-3 {
                    throw InputError("\(option) \(path): \(place(i)) sums to \(sum), not 1 (tolerance 0.001); pass --renormalize to divide rows by their sums, or give logits")
                }
            }
        }
        guard renormalize else { return }
        p.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<rows { for j in 0..<c { buffer[i * c + j] = Float(Double(buffer[i * c + j]) / sums[i]) } }
        }
    }

    /// An M×N×C array of member outputs (`--stacked`) as an M × (N·C) matrix (memory-mapped for a .npy)
    /// and its three dimensions.
    public static func stacked(_ path: String, option: String) throws -> (flat: Matrix<Float>, members: Int, rows: Int, classes: Int) {
        let (file, name) = ArrayFile.split(path)
        let shape = file.lowercased().hasSuffix(".npy") && name == nil
            ? try naming(option) { try FileAccess.checkRegularFile(file); return try NPY.read(file, headerOnly: true).shape }
            : try tensor(path, array: nil).shape
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else { throw InputError("\(option) \(path) has shape \(shape); it needs M×N×C with every dimension ≥ 1") }
        return (try features(path, option: option), shape[0], shape[1], shape[2])
    }

    /// Ensemble members' outputs as probabilities: an M×N×C `stacked` file (option `--stacked`) and/or one
    /// N×C file per member (`--member`), logits (softmax per member, each checked finite) or probabilities
    /// (checked as by `probabilities`, or renormalised). A stacked file alone stays one M × (N·C) matrix
    /// (memory-mapped for a .npy: no copy of the members unless converted); with member files too, every
    /// member becomes a matrix of its own. Errors name the option, the file, the member and its row.
    public static func ensemble(stacked: String?, members paths: [String], logits: Bool, renormalize: Bool) throws
        -> (stacked: (flat: Matrix<Float>, members: Int, rows: Int, classes: Int)?, members: [Matrix<Float>]) {
        var members: [Matrix<Float>] = []
        var stackedInput: (flat: Matrix<Float>, members: Int, rows: Int, classes: Int)?
        if let stacked {
            var input = try Inputs.stacked(stacked, option: "--stacked")
            var view = input.flat.reshaped(rows: input.members * input.rows, columns: input.classes)
            if logits {
                try requireFiniteLogits(view, option: "--stacked", path: stacked, rowsPerMember: input.rows)
                view = try Linalg.softmaxRows(view)
            } else {
                try checkProbabilities(&view, option: "--stacked", path: stacked, renormalize: renormalize, rowsPerMember: input.rows)
            }
            input.flat = view.reshaped(rows: input.members, columns: input.rows * input.classes)
            stackedInput = input
        }
        if !paths.isEmpty, let s = stackedInput {
            members = try (0..<s.members).map { k in try Matrix(rows: s.rows, columns: s.classes, elements: Array(s.flat.row(k))) }
            stackedInput = nil
        }
        for path in paths {
            var m = try features(path, option: "--member")
            if logits {
                try requireFiniteLogits(m, option: "--member", path: path)
                m = try Linalg.softmaxRows(m)
            } else {
                try checkProbabilities(&m, option: "--member", path: path, renormalize: renormalize)
            }
            members.append(m)
        }
        return (stackedInput, members)
    }
}
