import FaultlineIO
import FaultlineLinalg

/// Logits and probabilities read from files, checked as what the option says they are, with errors that
/// name the option, the file, the row and the column.
extension Inputs {
    /// N×C logits from `path`: every value must be finite.
    static func logits(_ path: String, option: String) throws -> Matrix<Float> {
        let z = try features(path)
        try requireFiniteLogits(z, option: option, path: path)
        return z
    }

    /// Throws naming the first non-finite logit.
    static func requireFiniteLogits(_ z: Matrix<Float>, option: String, path: String, member: Int? = nil) throws {
        guard !z.isFinite else { return }
        let at = z.elements.firstIndex { !$0.isFinite }!
        let (row, column) = at.quotientAndRemainder(dividingBy: max(z.columns, 1))
        throw CLIError("\(option) \(path): \(member.map { "member \($0), " } ?? "")logit[\(row), \(column)] = \(z.elements[at]) is not finite; logits must be finite numbers")
    }

    /// N×C probabilities from `path`: values in [0, 1] whose rows sum to 1 within 1e-3 (the library's
    /// tolerance). With `renormalize`, rows of finite non-negative values with a positive sum are divided
    /// by their sum instead of being checked against 1.
    static func probabilities(_ path: String, option: String, renormalize: Bool) throws -> Matrix<Float> {
        var p = try features(path)
        try checkProbabilities(&p, option: option, path: path, renormalize: renormalize)
        return p
    }

    /// Checks (and with `renormalize`, rescales) the rows of `p` in place; the error names the option,
    /// the file, the row and the column, and says how to fix it.
    static func checkProbabilities(_ p: inout Matrix<Float>, option: String, path: String, renormalize: Bool, member: Int? = nil) throws {
        let c = p.columns, rows = p.rows, whose = member.map { "member \($0), " } ?? ""
        guard rows > 0, c > 0 else { throw CLIError("\(option) \(path): \(whose)no probabilities (\(rows)×\(c))") }
        try p.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<rows {
                let row = buffer.baseAddress! + i * c
                var sum = 0.0
                for j in 0..<c {
                    let v = row[j]
                    guard v.isFinite, v >= 0, renormalize || v <= 1 else {
                        throw CLIError("\(option) \(path): \(whose)probability[\(i), \(j)] = \(v) is not in [0, 1]\(renormalize ? "" : "; pass logits with --logits, or --renormalize for unnormalised scores")")
                    }
                    sum += Double(v)
                }
                if renormalize {
                    guard sum > 0 else { throw CLIError("\(option) \(path): \(whose)row \(i) sums to 0 and cannot be renormalised") }
                    for j in 0..<c { row[j] = Float(Double(row[j]) / sum) }
                } else if abs(sum - 1) > 1e-3 {
                    throw CLIError("\(option) \(path): \(whose)row \(i) sums to \(sum), not 1 (tolerance 0.001); pass --renormalize to divide rows by their sums, or give logits")
                }
            }
        }
    }
}
