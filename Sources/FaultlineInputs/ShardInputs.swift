import FaultlineIO
import FaultlineLinalg

/// The inputs of one rank of a distributed job: its own rows of an array file (see docs/SCALING.md).
extension Inputs {
    /// One rank's rows of an array file: the rows, which rows of the file they are, and the file's row count.
    public typealias Shard = (matrix: Matrix<Float>, rows: Range<Int>, total: Int)

    /// Rows `split(N)` of an N × D array file, where N is the file's row count: a `.npy` reads only those
    /// rows from its memory mapping (`NPY.readRows`: no rank reads another's rows, nothing is scattered), and so
    /// does a `.safetensors` tensor (`FILE.safetensors:NAME`, or the first tensor; `SafeTensors.readRows`);
    /// other formats are read whole and sliced. A shard may be empty (more ranks than rows); the file may
    /// not (an empty input is an error, as for `features`). With `finite`, a NaN or ±∞ is an error naming
    /// its row in the file. Errors name `option` and the file.
    public static func featureShard(_ path: String, option: String, finite: Bool = false,
                                    rows split: (Int) -> Range<Int>) throws -> Shard {
        try naming(option) {
            let (file, name) = ArrayFile.split(path, array: nil)
            let shard: Matrix<Float>, total: Int, range: Range<Int>
            if file.lowercased().hasSuffix(".npy") && name == nil {
                try FileAccess.checkRegularFile(file)
                let shape = try NPY.read(file, headerOnly: true).shape
                guard !shape.isEmpty else { throw IOError(.shapeMismatch, file: path, "a scalar (shape []), expected rows of features") }
                total = shape[0]
                guard shape.dropFirst().reduce(1, *) > 0 else { throw IOError(.shapeMismatch, file: path, "shape \(shape) has no features per row") }
                guard total > 0 else { throw IOError(.shapeMismatch, file: path, "shape \(shape) has no rows (an empty input)") }
                range = split(total)
                shard = try NPY.readRows(file, rows: range, as: Float.self)
            } else if file.lowercased().hasSuffix(".safetensors") {
                let tensors = try SafeTensors.tensorInfo(file)
                guard let info = name.map({ n in tensors.first { $0.name == n } }) ?? tensors.first else {
                    throw IOError(.invalidValue, file: file, name.map { "no tensor '\($0)' (tensors: \(tensors.map(\.name).joined(separator: ", ")))" }
                                  ?? "the file holds no tensor")
                }
                guard !info.shape.isEmpty else { throw IOError(.shapeMismatch, file: path, "tensor '\(info.name)' is a scalar (shape []), expected rows of features") }
                guard info.shape.dropFirst().allSatisfy({ $0 > 0 }) else { throw IOError(.shapeMismatch, file: path, "shape \(info.shape) has no features per row") }
                total = info.shape[0]
                guard total > 0 else { throw IOError(.shapeMismatch, file: path, "shape \(info.shape) has no rows (an empty input)") }
                range = split(total)
                shard = try SafeTensors.readRows(file, tensor: info.name, rows: range, as: Float.self)
            } else {
                let whole = try features(path)
                total = whole.rows
                range = split(total)
                shard = whole.gatherRows(Array(range))
            }
            if finite, let bad = shard.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
                let value = shard.withUnsafeBufferPointer { $0[bad] }
                throw IOError(.invalidValue, file: path,
                              "row \(range.lowerBound + bad / shard.columns), column \(bad % shard.columns) is \(value); the values must be finite")
            }
            return (shard, range, total)
        }
    }

    /// A shard of N×C logits (`featureShard`); every value must be finite (the error names the row in the file).
    public static func logitShard(_ path: String, option: String, rows split: (Int) -> Range<Int>) throws -> Shard {
        let s = try featureShard(path, option: option, rows: split)
        if let at = s.matrix.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
            let (row, column) = at.quotientAndRemainder(dividingBy: s.matrix.columns)
            let value = s.matrix.withUnsafeBufferPointer { $0[at] }
            throw InputError("\(option) \(path): logit[\(s.rows.lowerBound + row), \(column)] = \(value) is not finite; logits must be finite numbers")
        }
        return s
    }

    /// A shard of N×C probabilities (`featureShard`), checked (or renormalised) as `probabilities` does,
    /// rows numbered in the file.
    public static func probabilityShard(_ path: String, option: String, renormalize: Bool,
                                        rows split: (Int) -> Range<Int>) throws -> Shard {
        var s = try featureShard(path, option: option, rows: split)
        if s.matrix.rows > 0 { try checkProbabilities(&s.matrix, option: option, path: path, renormalize: renormalize, firstRow: s.rows.lowerBound) }
        return s
    }
}
