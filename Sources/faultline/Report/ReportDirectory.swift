import FaultlineIO
import FaultlineLinalg
import Foundation

/// Writes a directory of files atomically: everything goes into a temporary sibling directory which
/// is renamed over the target, so a failure never leaves a partial report under the target name.
enum ReportDirectory {
    static func write(to path: String, files: [String: Data]) throws {
        try OptionCheck.directoryTarget(path, "--out")  // never replace (delete) a user's file
        let fm = FileManager.default
        let target = URL(fileURLWithPath: path).standardizedFileURL
        let parent = target.deletingLastPathComponent()
        let temporary = parent.appendingPathComponent(".\(target.lastPathComponent).tmp-\(UUID().uuidString)")
        do {
            try fm.createDirectory(at: temporary, withIntermediateDirectories: false)
            for (name, data) in files { try data.write(to: temporary.appendingPathComponent(name), options: .atomic) }
            if fm.fileExists(atPath: target.path) {
                let old = parent.appendingPathComponent(".\(target.lastPathComponent).old-\(UUID().uuidString)")
                try fm.moveItem(at: target, to: old)
                try fm.moveItem(at: temporary, to: target)
                try? fm.removeItem(at: old)
            } else {
                try fm.moveItem(at: temporary, to: target)
            }
        } catch {
            try? fm.removeItem(at: temporary)
            throw IOError(.unwritable, file: path, "cannot write the report: \(error.localizedDescription)")
        }
    }
}

extension Matrix where Scalar == Float {
    /// Rows rescaled to sum to 1 exactly in float32 arithmetic as far as it allows (softmax outputs drift by
    /// a few ulp; the reliability kernels check sums to 1e-3).
    func normalizedRows() -> Matrix<Float> {
        var out = self
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<rows {
                var s: Float = 0
                for j in 0..<columns { s += p[i * columns + j] }
                for j in 0..<columns { p[i * columns + j] /= s }
            }
        }
        return out
    }
}

extension Matrix {
    /// Element-wise combination of two matrices of the same shape.
    func zipMap(_ other: Matrix, _ f: (Scalar, Scalar) -> Scalar) -> Matrix {
        precondition(rows == other.rows && columns == other.columns, "zipMap: shapes differ")
        var out = self
        out.withUnsafeMutableBufferPointer { o in other.withUnsafeBufferPointer { b in for i in o.indices { o[i] = f(o[i], b[i]) } } }
        return out
    }
}
